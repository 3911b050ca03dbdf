"""Majority vote: n full samples per problem, the most frequent extracted answer wins."""

from __future__ import annotations

from collections.abc import Sequence

from planner.core.config import MethodConfig
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


def sample(engine: Engine, problems: Sequence, config: MethodConfig) -> list[tuple[list[str], Usage]]:
    """n full solutions per problem in one generate call: (texts, usage) per problem."""
    prompts = [engine.format_prompt(question_of(p)) for p in problems]
    options = SamplingOptions(
        temperature=config.temperature,
        top_p=config.top_p,
        max_tokens=config.max_total_tokens,
        n=config.n,
        seed=call_seed(config.seed, 0),
    )
    out = []
    for gen in generate(engine, prompts, options):
        usage = Usage()
        usage.add_generation(gen)
        out.append(([c.text for c in gen.completions], usage))
    return out


def run(engine: Engine, verifier: Verifier | None, problems: Sequence, config: MethodConfig) -> list[Result]:
    """Plain vote over extracted answers (ties: the answer sampled first); no verifier."""
    results = []
    for texts, usage in sample(engine, problems, config):
        answers = [extract(t) for t in texts]
        winner = majority_vote(answers)
        candidates = [{"answer": a, "score": None, "text": t} for a, t in zip(answers, texts, strict=True)]
        answer, text = (answers[winner], texts[winner]) if winner >= 0 else ("", texts[0])
        results.append(make_result(answer, text, candidates, usage, steps=1))
    return results
