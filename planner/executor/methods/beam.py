"""Beam search over steps (Liu et al. 2025 / OpenR style).

Per problem: sample n first steps, score them, keep the best n/M; expand each kept beam M times,
score, keep the best n/M again, and so on. A kept beam that has finished (EOS, an answer, or its
token budget) stays in the pool, holds its slot and is not expanded, so the live slots shrink
(n/M minus finished). Stops when no slot is live or at the step limit; the last allowed step
generates to the end. The final answer is the plan's selection over the n/M final beams.
"""

from __future__ import annotations

from collections.abc import Sequence

from planner.core.config import MethodConfig
from planner.executor.base import Engine, Verifier
from planner.executor.methods.common import Result, Usage, make_result, need_verifier, question_of, select
from planner.executor.methods.tree import Beam, best_first, expand, score_beams


def run(engine: Engine, verifier: Verifier | None, problems: Sequence, config: MethodConfig) -> list[Result]:
    """One generate call and one verifier call per step for all live beams of all problems."""
    verifier = need_verifier(verifier, config.method)
    questions = [question_of(p) for p in problems]
    prompts = [engine.format_prompt(q) for q in questions]
    usage = [Usage() for _ in problems]
    keep = config.n // config.beam_width
    final: list[list[Beam]] = [[] for _ in problems]
    active: list[list[Beam]] = [[Beam(p)] for p in range(len(problems))]
    rounds = [0] * len(problems)
    step = 0
    while step < config.max_steps and any(active):
        parents = [b for beams in active for b in beams]
        width = config.n if step == 0 else config.beam_width
        children = expand(engine, prompts, parents, width, step, config, usage)
        flat = [c for cs in children for c in cs]
        score_beams(verifier, questions, flat, config.aggregation, usage)
        pools: list[list[Beam]] = [[] for _ in problems]
        for c in flat:
            pools[c.problem].append(c)
        for p, pool in enumerate(pools):
            if not pool:
                continue
            rounds[p] += 1
            chosen = best_first(pool)[: keep - len(final[p])]
            final[p] += [b for b in chosen if b.finished]
            active[p] = [b for b in chosen if not b.finished]
        step += 1
    results = []
    for p in range(len(problems)):
        beams = final[p] + active[p]  # active is empty unless max_steps cut a beam short
        best = select([b.answer for b in beams], [b.score for b in beams], config.selection)
        candidates = [b.to_candidate() for b in beams]
        results.append(make_result(beams[best].answer, beams[best].text, candidates, usage[p], rounds[p]))
    return results
