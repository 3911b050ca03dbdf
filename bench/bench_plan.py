"""Plan-query latency: one `plan()` call over about 5,000 candidates (target <= 20 ms, median).

Three policies x the seven registered PRMs x every method, aggregation, selection and
N = 1..1024 (4,908 candidates), FLOPs budget wide enough that all are scored. The model is the
shipped one (fitted now from the shipped profiles when missing). Prints one line.
"""

from __future__ import annotations

import statistics
import time

from planner.models import specs
from planner.plan.search import Budget, PlanRequest, enumerate_candidates, plan
from planner.predict.modelio import load_planner_model

TARGET_MS = 20.0
POLICIES = ["Qwen/Qwen2.5-1.5B-Instruct", "meta-llama/Llama-3.2-1B-Instruct", "Qwen/Qwen2.5-7B-Instruct"]
REPEATS = 30


def main() -> None:
    model, _ = load_planner_model(None)
    prms = [s.name for s in specs.all_specs("prm")]
    candidates = len(enumerate_candidates(POLICIES, prms))
    budget = Budget("flops", 1e20)

    def query():
        return plan(model, PlanRequest(policies=POLICIES, budget=budget, prms=prms, dataset="math500"), top=5)

    for _ in range(3):  # warm-up: imports, caches
        query()
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        result = query()
        times.append((time.perf_counter() - start) * 1000)
    assert result.within_budget == candidates
    median = statistics.median(times)
    print(
        f"plan query: {candidates} candidates, median {median:.1f} ms over {REPEATS} runs "
        f"(min {min(times):.1f}); target {TARGET_MS:.0f} ms, ratio {median / TARGET_MS:.2f}"
    )


if __name__ == "__main__":
    main()
