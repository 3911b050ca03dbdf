"""Diverse verifier tree search (DVTS, Beeching et al. 2024 as used by Liu et al. 2025).

Per problem: n/M independent subtrees. Each live subtree expands its beam into M candidate next
steps, the verifier scores them, and the subtree keeps its best one; a subtree whose kept beam has
finished stops. The final answer is the plan's selection over the subtrees' solutions (scores by the
plan's aggregation); every subtree's answer is kept in the result's candidates.
"""

from __future__ import annotations

from collections.abc import Sequence

from planner.core.config import MethodConfig
from planner.executor.base import Engine, Verifier
from planner.executor.methods.common import Result, Usage, make_result, need_verifier, question_of, select
from planner.executor.methods.tree import Beam, best_first, expand, score_beams


def run(engine: Engine, verifier: Verifier | None, problems: Sequence, config: MethodConfig) -> list[Result]:
    """One generate call and one verifier call per step for all live subtrees of all problems."""
    verifier = need_verifier(verifier, config.method)
    questions = [question_of(p) for p in problems]
    prompts = [engine.format_prompt(q) for q in questions]
    usage = [Usage() for _ in problems]
    subtrees = config.n // config.beam_width
    trees: list[list[Beam]] = [[Beam(p, g) for g in range(subtrees)] for p in range(len(problems))]
    rounds = [0] * len(problems)
    step = 0
    while step < config.max_steps:
        parents = [b for beams in trees for b in beams if not b.finished]
        if not parents:
            break
        children = expand(engine, prompts, parents, config.beam_width, step, config, usage)
        score_beams(verifier, questions, [c for cs in children for c in cs], config.aggregation, usage)
        for p in {b.problem for b in parents}:
            rounds[p] += 1
        for parent, cs in zip(parents, children, strict=True):
            trees[parent.problem][parent.group] = best_first(cs)[0]
        step += 1
    results = []
    for p, beams in enumerate(trees):
        best = select([b.answer for b in beams], [b.score for b in beams], config.selection)
        candidates = [b.to_candidate() for b in beams]
        results.append(make_result(beams[best].answer, beams[best].text, candidates, usage[p], rounds[p]))
    return results
