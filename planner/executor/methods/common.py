"""Shared pieces of the TTS methods: step handling, verifier calls, selection.

The configuration, the vocabulary and the one aggregation live in planner.core (config, vocab,
scoring); methods import them from there."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from planner.core.errors import UserError
from planner.core.scoring import answer_key
from planner.core.vocab import SELECTIONS, STEP_DELIMITER
from planner.executor.base import Engine, Generation, MethodResult, StepScores, Verifier
from planner.executor.grading import extract_answer

# ---------------------------------------------------------------- problems, steps, seeds


def question_of(problem: object) -> str:
    """The question text of a Problem-like object (has .question) or a plain string."""
    if isinstance(problem, str):
        return problem
    question = getattr(problem, "question", None)
    if not isinstance(question, str):
        raise TypeError(f"problem must be a str or have a str .question, got {type(problem).__name__}")
    return question


def split_steps(text: str) -> list[str]:
    """Steps of a solution: pieces between "\\n\\n", stripped, empty pieces dropped."""
    return [piece.strip() for piece in text.split(STEP_DELIMITER) if piece.strip()]


def call_seed(seed: int, step: int) -> int:
    """Seed for the generate call of one step, derived from the config seed (fits in 31 bits)."""
    return (seed * 1_000_003 + step * 7_919 + 17) % (2**31 - 1)


def parent_seeds(seed: int, step: int, parents: int, width: int) -> tuple[int, ...]:
    """One seed per parent of a tree-search step; parent i's children use seed_i, seed_i+1, ...

    Seeds of one step are spaced `width` apart from a mixed start, so no two children of a step
    share a seed (the children of similar prefixes would otherwise sample alike).
    """
    modulus = 2**31 - 1
    start = (call_seed(seed, step) * 2_654_435_761) % modulus
    span = max(1, parents * width)
    start = start % (modulus - span)  # room for every child's seed below 2**31 - 1
    return tuple(start + i * width for i in range(parents))


def extract(text: str) -> str:
    """The extracted final answer, "" when there is none."""
    answer = extract_answer(text)
    return answer.strip() if answer else ""


# ---------------------------------------------------------------- accounting


@dataclass
class Usage:
    """Token accounting for one problem, with the per-call detail the cost model needs."""

    prompt_tokens: int = 0
    generated_tokens: int = 0
    cached_tokens: int = 0
    prm_tokens: int = 0
    # one entry per prompt sent: (prompt tokens, cached prompt tokens, [generated tokens per completion])
    calls: list[tuple[int, int, list[int]]] = field(default_factory=list)
    # tokens the verifier computed per scored solution; (computed, reused) when it kept a prefix
    prm_reads: list = field(default_factory=list)

    def add_generation(self, gen: Generation) -> None:
        cached = gen.cached_prompt_tokens or 0
        generated = [c.tokens for c in gen.completions]
        self.prompt_tokens += gen.prompt_tokens
        self.cached_tokens += cached
        self.generated_tokens += sum(generated)
        self.calls.append((gen.prompt_tokens, cached, generated))

    def add_scores(self, scores: StepScores) -> None:
        self.prm_tokens += scores.tokens_scored
        if scores.tokens_scored and scores.tokens_reused:
            self.prm_reads.append((scores.tokens_scored, scores.tokens_reused))
        elif scores.tokens_scored:
            self.prm_reads.append(scores.tokens_scored)


@dataclass
class Result(MethodResult):
    """MethodResult plus the per-call token detail (for FLOPs) and run statistics."""

    calls: list[tuple[int, int, list[int]]] = field(default_factory=list)
    prm_reads: list = field(default_factory=list)
    steps_taken: int = 0  # generate rounds this problem took part in


def make_result(answer: str, text: str, candidates: list[dict], usage: Usage, steps: int) -> Result:
    return Result(
        answer=answer,
        text=text,
        candidates=candidates,
        policy_prompt_tokens=usage.prompt_tokens,
        policy_generated_tokens=usage.generated_tokens,
        cached_prompt_tokens=usage.cached_tokens,
        prm_tokens=usage.prm_tokens,
        calls=usage.calls,
        prm_reads=usage.prm_reads,
        steps_taken=steps,
    )


def generate(engine: Engine, prompts: list[str], options) -> list[Generation]:
    """engine.generate with a check that it kept its side of the interface."""
    if not prompts:
        return []
    gens = engine.generate(prompts, options)
    if len(gens) != len(prompts):
        raise RuntimeError(
            f"engine {engine.name!r} returned {len(gens)} generations for {len(prompts)} prompts"
        )
    for gen in gens:
        if len(gen.completions) != options.n:
            raise RuntimeError(
                f"engine {engine.name!r} returned {len(gen.completions)} completions, asked for {options.n}"
            )
    return gens


def score_solutions(
    verifier: Verifier, questions: list[str], step_lists: list[list[str]]
) -> list[StepScores]:
    """One verifier call for every solution; solutions with no steps get no scores and cost nothing."""
    todo = [i for i, steps in enumerate(step_lists) if steps]
    out = [StepScores(steps=[]) for _ in step_lists]
    if not todo:
        return out
    scored = verifier.score([questions[i] for i in todo], [step_lists[i] for i in todo])
    if len(scored) != len(todo):
        raise RuntimeError(
            f"verifier {verifier.name!r} returned {len(scored)} scores for {len(todo)} solutions"
        )
    for i, s in zip(todo, scored, strict=True):
        out[i] = s
    return out


def need_verifier(verifier: Verifier | None, method: str) -> Verifier:
    if verifier is None:
        raise UserError(f"method {method} needs a verifier (PRM); pass one")
    return verifier


# ---------------------------------------------------------------- aggregation and selection


def select_max(scores: Sequence[float]) -> int:
    """Index of the highest score; ties go to the earliest candidate. -1 when empty."""
    best = -1
    for i, s in enumerate(scores):
        if best < 0 or s > scores[best]:
            best = i
    return best


def weighted_vote(answers: Sequence[str], weights: Sequence[float]) -> int:
    """Index of the winning candidate of a score-weighted vote over extracted answers.

    Candidates without an answer take no part; the answer with the largest summed weight wins,
    equal totals go to the answer seen first; within the winning answer the highest-weighted
    (then earliest) candidate is returned. -1 when no candidate has an answer.
    """
    totals: dict[str, float] = {}
    order: list[str] = []
    for answer, w in zip(answers, weights, strict=True):
        if not answer:
            continue
        key = answer_key(answer)
        if key not in totals:
            totals[key] = 0.0
            order.append(key)
        totals[key] += float(w)
    if not order:
        return -1
    winner = max(order, key=lambda k: totals[k])  # max keeps the first of equal totals
    members = [i for i, a in enumerate(answers) if a and answer_key(a) == winner]
    return max(members, key=lambda i: (float(weights[i]), -i))


def majority_vote(answers: Sequence[str]) -> int:
    """Plain majority: weighted_vote with weight 1 each (ties to the answer seen first)."""
    return weighted_vote(answers, [1.0] * len(answers))


def select(answers: Sequence[str], scores: Sequence[float], how: str) -> int:
    """The plan's selection: "max" score or score-weighted "vote". -1 when there is nothing.

    Candidates without an answer are dropped first (as the paper's code does), so "max" never
    picks an unanswered solution over an answered one; only when no candidate has an answer
    does the highest score win (its answer is "" either way).
    """
    if how not in SELECTIONS:
        raise UserError(f"selection: unknown {how!r}; choose one of {', '.join(SELECTIONS)}")
    answered = [i for i, a in enumerate(answers) if a]
    if not answered:
        return select_max(scores)
    if how == "max":
        return answered[select_max([scores[i] for i in answered])]
    return weighted_vote(answers, scores)
