"""Plan-query latency: one `plan()` call over about 5,000 candidates (target <= 10 ms, median).

Three policies x the seven registered PRMs x every method, aggregation, selection and
N = 1..1024 (4,908 candidates), FLOPs budget wide enough that all are scored. The model is the
shipped one (fitted now from the shipped profiles when missing), with each predictor (the
regressor; the per-problem scaling predictor over it). A second query adds Gemma-3-270m on
arith, a policy with per-problem models, so the scaling predictor's table lookups are timed too.
Prints one line per predictor and query.
"""

from __future__ import annotations

import statistics
import time

from planner.models import specs
from planner.plan.search import Budget, PlanRequest, enumerate_candidates, plan
from planner.predict.modelio import load_planner_model

TARGET_MS = 10.0
POLICIES = ["Qwen/Qwen2.5-1.5B-Instruct", "meta-llama/Llama-3.2-1B-Instruct", "Qwen/Qwen2.5-7B-Instruct"]
REPEATS = 30


def main() -> None:
    for predictor in ("regressor", "scaling"):
        for policies, dataset in ((POLICIES, "math500"), (["google/gemma-3-270m", *POLICIES[:2]], "arith")):
            one(predictor, policies, dataset)


def one(predictor: str, policies: list[str], dataset: str) -> None:
    model, _ = load_planner_model(None, predictor=predictor)
    prms = [s.name for s in specs.all_specs("prm")]
    candidates = len(enumerate_candidates(policies, prms))
    budget = Budget("flops", 1e20)

    def query():
        return plan(model, PlanRequest(policies=policies, budget=budget, prms=prms, dataset=dataset), top=5)

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
        f"{predictor}, {dataset} ({policies[0]}, ...): {candidates} candidates, median {median:.1f} ms over {REPEATS} runs "
        f"(min {min(times):.1f}); target {TARGET_MS:.0f} ms, ratio {median / TARGET_MS:.2f}"
    )


if __name__ == "__main__":
    main()
