"""Plan-query latency: one `plan()` call over about 5,000 candidates (target <= 10 ms, median).

Three policies x the seven registered PRMs x every method, aggregation, selection and
N = 1..1024 (4,908 candidates), FLOPs budget wide enough that all are scored. The model is the
shipped one (fitted now from the shipped profiles when missing), with each predictor (the
regressor; the per-problem scaling predictor over it). A second query adds Gemma-3-270m on
arith, a policy with per-problem models, so the scaling predictor's table lookups are timed too.

Three ways of asking, each timed REPEATS times (median wall time, and the median CPU time of
this process, which other jobs on a shared machine disturb less):
- repeated: the same query again (the priced candidate table, its scores for this model and
  difficulty and the predictor's per-row results are kept between calls: what a server
  answering one user's queries sees);
- re-budgeted: the same models with another budget (six FLOPs budgets from the cheapest 1% to
  all candidates) and difficulty each time: the table and its scores per difficulty are kept,
  the budget's rows are taken from them and ranked;
- rescored: the same query with the kept scores emptied, the per-row results kept (what a
  difficulty asked for the first time costs, or a query before scores were kept);
- cold: the priced tables and remembered per-row results emptied before each call (close to
  what a first query pays, less the imports and model loading).
Prints one line per predictor, query and way.
"""

from __future__ import annotations

import itertools
import os
import statistics
import time

import numpy as np

from planner.models import specs
from planner.plan import search
from planner.plan.search import Budget, PlanRequest, enumerate_candidates, plan, priced_candidates
from planner.predict.modelio import load_planner_model

TARGET_MS = 10.0
POLICIES = ["Qwen/Qwen2.5-1.5B-Instruct", "meta-llama/Llama-3.2-1B-Instruct", "Qwen/Qwen2.5-7B-Instruct"]
REPEATS = 30
DIFFICULTIES = ("all", "easy", "medium", "hard")


def main() -> None:
    print(f"# load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")
    for predictor in ("regressor", "scaling"):
        for policies, dataset in ((POLICIES, "math500"), (["google/gemma-3-270m", *POLICIES[:2]], "arith")):
            one(predictor, policies, dataset)
    print(f"# load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def clear(model: object) -> None:
    """Empty the priced tables and the per-row results a plan query keeps (where they exist)."""
    getattr(search, "_GRIDS", {}).clear()
    getattr(model, "_memo", {}).clear()


def one(predictor: str, policies: list[str], dataset: str) -> None:
    model, _ = load_planner_model(None, predictor=predictor)
    prms = [s.name for s in specs.all_specs("prm")]
    candidates = len(enumerate_candidates(policies, prms))
    wide = PlanRequest(policies=policies, budget=Budget("flops", 1e20), prms=prms, dataset=dataset)
    costs = priced_candidates(wide)[0]["flops_per_problem"].to_numpy()
    budgets = [float(np.quantile(costs, q)) for q in (0.01, 0.1, 0.3, 0.5, 0.8, 1.0)]
    variants = itertools.cycle(itertools.product(budgets, DIFFICULTIES))

    def repeated():
        result = plan(model, wide, top=5)
        assert result.within_budget == candidates
        return result

    def rebudgeted():
        value, difficulty = next(variants)
        difficulty = None if difficulty == "all" else difficulty
        request = PlanRequest(
            policies=policies,
            budget=Budget("flops", value),
            prms=prms,
            dataset=dataset,
            difficulty=difficulty,
        )
        return plan(model, request, top=5)

    def rescored():
        for grid in list(search._GRIDS.values()):
            grid._scored.clear()
        return repeated()

    def cold():
        clear(model)
        return repeated()

    ways = (("repeated", repeated), ("re-budgeted", rebudgeted), ("rescored", rescored), ("cold", cold))
    for way, query in ways:
        for _ in range(3):  # warm-up: imports, caches
            query()
        wall, cpu = [], []
        for _ in range(REPEATS):
            start, start_cpu = time.perf_counter(), time.process_time()
            query()
            wall.append((time.perf_counter() - start) * 1000)
            cpu.append((time.process_time() - start_cpu) * 1000)
        median = statistics.median(wall)
        print(
            f"{predictor}, {dataset} ({policies[0]}, ...), {way}: {candidates} candidates, median "
            f"{median:.1f} ms over {REPEATS} runs (min {min(wall):.1f}; CPU median "
            f"{statistics.median(cpu):.1f} ms); target {TARGET_MS:.0f} ms, ratio {median / TARGET_MS:.2f}"
        )


if __name__ == "__main__":
    main()
