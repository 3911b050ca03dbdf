"""Majority vote: n full samples per problem, the most frequent extracted answer wins."""

from __future__ import annotations

from collections.abc import Sequence

from planner.core.config import MethodConfig
from planner.core.scoring import answer_key
from planner.executor.base import Engine, SamplingOptions, Verifier
from planner.executor.methods.common import (
    Result,
    Usage,
    call_seed,
    extract,
    generate,
    majority_vote,
    make_result,
    question_of,
)


def _key(text: str) -> str | None:
    answer = extract(text)
    return answer_key(answer) if answer else None


def sample(
    engine: Engine, problems: Sequence, config: MethodConfig, prior: Sequence[Sequence[str]] | None = None
) -> list[tuple[list[str], Usage]]:
    """n full solutions per problem, batched across problems: (texts, usage) per problem.

    Without a stop rule, one generate call. With one (config.stop), rounds: each round the problems
    still open get the rule's round size more samples in one call (seed per round), and a problem
    closes when its answers settle or it has n; a problem's texts are those it drew.

    prior: solutions already drawn per problem (the same number for each; a probe's). They come
    first, count toward n (at most n of them are kept) and toward the stop rule; their generation
    is not in the returned usage (whoever drew them counted it)."""
    prompts = [engine.format_prompt(question_of(p)) for p in problems]
    rule = config.stop_rule
    texts: list[list[str]] = (
        [list(t)[: config.n] for t in prior] if prior is not None else [[] for _ in problems]
    )
    if len(texts) != len(problems) or len({len(t) for t in texts}) > 1:
        raise ValueError("prior: one list of solutions per problem, all of the same length")
    keys: list[list[str | None]] = [[_key(t) for t in ts] for ts in texts]  # vote keys, for the stop rule
    usages = [Usage() for _ in problems]
    open_ = [
        i
        for i in range(len(problems))
        if len(texts[i]) < config.n and not (rule and keys[i] and rule.settled(keys[i]))
    ]
    round_ = 0
    while open_:
        drawn = len(texts[open_[0]])  # every open problem has drawn the same number
        options = SamplingOptions(
            temperature=config.temperature,
            top_p=config.top_p,
            max_tokens=config.max_total_tokens,
            # a round ends on a multiple of the rule's round size (esc checks whole windows)
            n=config.n - drawn
            if rule is None
            else min(rule.round_size - drawn % rule.round_size, config.n - drawn),
            seed=call_seed(config.seed, round_),
        )
        for i, gen in zip(open_, generate(engine, [prompts[i] for i in open_], options), strict=True):
            usages[i].add_generation(gen)
            texts[i].extend(c.text for c in gen.completions)
            if rule is not None:
                keys[i].extend(_key(c.text) for c in gen.completions)
        if rule is None:
            break
        open_ = [i for i in open_ if len(texts[i]) < config.n and not rule.settled(keys[i])]
        round_ += 1
    return list(zip(texts, usages, strict=True))


def run(
    engine: Engine, verifier: Verifier | None, problems: Sequence, config: MethodConfig, prior=None
) -> list[Result]:
    """Plain vote over extracted answers (ties: the answer sampled first); no verifier. prior: see
    sample."""
    results = []
    for texts, usage in sample(engine, problems, config, prior):
        answers = [extract(t) for t in texts]
        winner = majority_vote(answers)
        candidates = [{"answer": a, "score": None, "text": t} for a, t in zip(answers, texts, strict=True)]
        answer, text = (answers[winner], texts[winner]) if winner >= 0 else ("", texts[0])
        results.append(make_result(answer, text, candidates, usage, steps=1))
    return results
