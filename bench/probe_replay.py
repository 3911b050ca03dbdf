"""Probe reuse and the posterior probe, replayed on recorded samples.

For each calibrated arithmetic profile (16 recorded samples per problem, scored by the exact
checker) the planner makes a per-bin plan over majority and Best-of-N (the methods the samples can
replay) within a mean budget of 8 samples per problem, probe k = 4 reused (`--probe-reuse`), routed
by the per-problem model's posterior (`--probe-score posterior`) or by plain agreement. Replay: the
probe is a problem's first 4 samples in a random order, its bin's method uses the first n samples
of that order (the probe's 4 among them), the static plan the first n_static; each arm's pick is
the live selection (planner.executor.methods.common). Mean over ORDERS random orders per problem.
Prints a table and writes results/probe_replay.json. Predictions (the plan's mean and routed
accuracy) come from the shipped model, fitted on these samples (in-sample).

    .venv/bin/python bench/probe_replay.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from calibration.samples import profile_samples  # noqa: E402
from planner.core.profiles import load_profiles  # noqa: E402
from planner.core.scoring import answer_signature  # noqa: E402
from planner.executor.methods.common import majority_vote, select  # noqa: E402
from planner.plan.binplan import plan_by_difficulty  # noqa: E402
from planner.plan.search import Budget, PlanRequest  # noqa: E402
from planner.predict.modelio import load_planner_model  # noqa: E402

OUT = ROOT / "bench" / "results" / "probe_replay.json"
SCORE = "score:arith-check:min"
ORDERS = 50
K = 4
BUDGET = 8


def pick(config: dict, answers: list, scores: np.ndarray) -> int:
    texts = [a or "" for a in answers]
    if config["method"] == "majority":
        return majority_vote(texts)
    return select(texts, list(scores), config["selection"])


def route(answers: list, probe: dict, score: str) -> str:
    if score == "posterior":
        pass1 = probe["posterior"].get(answer_signature(answers))
    else:
        pass1 = None
    if pass1 is None:  # agreement: the largest group of equal answers over k
        counts: dict = {}
        for a in answers:
            if a is not None:
                counts[a] = counts.get(a, 0) + 1
        pass1 = max(counts.values(), default=0) / len(answers)
    return "easy" if pass1 > probe["easy_above"] else "hard" if pass1 < probe["hard_below"] else "medium"


def replay(plan: dict, df, score: str) -> dict:
    rng = np.random.default_rng(0)
    split, static, used, sent = [], [], [], {"easy": 0, "medium": 0, "hard": 0}
    for _, g in df.sort_values(["problem_id", "sample"]).groupby("problem_id", sort=True):
        answers = [a if isinstance(a, str) and a else None for a in g["answer"]]
        correct = g["correct"].to_numpy(dtype=bool)
        scores = g[SCORE].to_numpy(dtype=float)
        for _ in range(ORDERS):
            idx = rng.permutation(len(answers))
            a, c, s = [answers[i] for i in idx], correct[idx], scores[idx]
            b = route(a[:K], plan["probe"], score)
            sent[b] += 1
            config = plan["bins"][b]
            n = config["n"] if config["method"] in ("majority", "best_of_n") else None
            take = max(n, K)  # the probe's samples are drawn whatever the bin uses
            i = pick(config, a[: max(n, 1)], s[: max(n, 1)])
            split.append(bool(i >= 0 and c[i]))
            used.append(take)
            st = plan["static"]
            j = pick(st, a[: st["n"]], s[: st["n"]])
            static.append(bool(j >= 0 and c[j]))
    total = sum(sent.values())
    return {
        "split": 100 * float(np.mean(split)),
        "static": 100 * float(np.mean(static)),
        "mean_samples": float(np.mean(used)),
        "routed_share": {b: v / total for b, v in sent.items()},
    }


def main() -> None:
    model, _ = load_planner_model(None, predictor="scaling")
    rows = []
    for folder, policy in (
        ("cpu_arith_gemma", "google/gemma-3-270m"),
        ("cpu_arith_qwen", "Qwen/Qwen2.5-Coder-0.5B-Instruct"),
        ("cpu_arith_smollm2", "HuggingFaceTB/SmolLM2-135M-Instruct"),
    ):
        df = profile_samples(ROOT / "profiles" / folder)
        records = load_profiles([ROOT / "profiles" / folder])  # the mix: the profile's difficulty counts
        request = PlanRequest(
            policies=[policy],
            budget=Budget("n", BUDGET),
            prms=["arith-check"],
            dataset="arith",
            methods=("majority", "best_of_n"),
            n_values=(1, 2, 4, 8, 16),
            aggregations=("min",),
        )
        for score in ("posterior", "agreement"):
            probe = {"k": K, "reuse": True, "score": score}
            if score == "posterior":
                probe["posterior"] = {}
            plan = plan_by_difficulty(model, request, probe=probe, records=records).to_dict()
            got = replay(plan, df, score)
            rows.append(
                {
                    "profile": folder,
                    "probe": score,
                    "bins": {
                        b: f"{v['method']} {v['n']} {v['aggregation']}/{v['selection']}"
                        for b, v in plan["bins"].items()
                    },
                    "static": f"{plan['static']['method']} {plan['static']['n']} {plan['static']['aggregation']}/{plan['static']['selection']}",
                    "predicted_split": 100 * plan["mean_predicted_accuracy"],
                    "predicted_routed": 100 * plan["routed"]["predicted_accuracy"],
                    "predicted_static": 100 * plan["static"]["predicted_accuracy"],
                    "planned_samples": plan["with_probe"]["n"],
                    "mix": plan["mix"],
                    "replayed_split": got["split"],
                    "replayed_static": got["static"],
                    "replayed_samples": got["mean_samples"],
                    "replayed_routed_share": got["routed_share"],
                    "predicted_routed_share": plan["routed"]["routed_share"],
                }
            )
    print(
        "| profile | probe | bins (easy / medium / hard) | static | predicted split (routed) % | static % | replayed split % | static % | samples |"
    )
    print("|---|---|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        bins = " / ".join(r["bins"][b] for b in ("easy", "medium", "hard"))
        print(
            f"| {r['profile']} | {r['probe']} | {bins} | {r['static']} | {r['predicted_split']:.1f} "
            f"({r['predicted_routed']:.1f}) | {r['predicted_static']:.1f} | {r['replayed_split']:.1f} "
            f"| {r['replayed_static']:.1f} | {r['replayed_samples']:.2f} |"
        )
    OUT.write_text(json.dumps({"rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
