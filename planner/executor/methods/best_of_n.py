"""Best-of-N: n full samples, the verifier scores every step, `aggregation` gives each solution a
score, `selection` picks the highest score ("max") or the answer with the largest summed score ("vote")."""

from __future__ import annotations

from collections.abc import Sequence

from planner.core.config import MethodConfig
from planner.core.scoring import aggregate
from planner.executor.base import Engine, Verifier
from planner.executor.methods.common import (
    Result,
    extract,
    make_result,
    need_verifier,
    question_of,
    score_solutions,
    select,
    split_steps,
)
from planner.executor.methods.majority import sample


def run(
    engine: Engine, verifier: Verifier | None, problems: Sequence, config: MethodConfig, prior=None
) -> list[Result]:
    """One generate call and one verifier call for the whole batch. prior: solutions already drawn
    (majority.sample); the verifier scores them with the rest."""
    verifier = need_verifier(verifier, config.method)
    sampled = sample(engine, problems, config, prior)
    # a stop rule can leave fewer than n samples for a problem: one verifier call for all of them
    questions = [question_of(p) for p, (ts, _) in zip(problems, sampled, strict=True) for _ in ts]
    texts = [t for ts, _ in sampled for t in ts]
    scored = score_solutions(verifier, questions, [split_steps(t) for t in texts])
    results = []
    start = 0
    for ts, usage in sampled:
        mine, start = scored[start : start + len(ts)], start + len(ts)
        answers = [extract(t) for t in ts]
        scores = [aggregate(s.steps, config.aggregation) for s in mine]
        for s in mine:
            usage.add_scores(s)
        candidates = [
            {"answer": a, "score": sc, "step_scores": [float(x) for x in s.steps], "text": t}
            for a, sc, s, t in zip(answers, scores, mine, ts, strict=True)
        ]
        best = select(answers, scores, config.selection)
        results.append(make_result(answers[best], ts[best], candidates, usage, steps=1))
    return results
