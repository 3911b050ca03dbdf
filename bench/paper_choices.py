"""The paper's stated compute-optimal choices on MATH-500 against `ttsplan plan`.

Liu et al. 2025 (compute-optimal-tts issue #4, as quoted in issue 9): policies under 7B -> beam
search; 7-32B -> DVTS on easy and medium problems, beam on hard; above 32B -> Best-of-N. Asked as
`ttsplan plan --prm Qwen2.5-Math-PRM-7B --dataset math500 --difficulty D --budget-n 64` for nine
(policy, difficulty) pairs, with each predictor (the regressor, the baseline; the per-problem
scaling predictor). For each pair it also lists what the repository's public data measure for
that policy on MATH-500 (profile rows: CoT, majority and the paper's compute-optimal TTS cell of
Table 5, whose method is not stated there).

    PYTHONPATH=. python bench/paper_choices.py     # prints a table, writes results/paper_choices.json and .md
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from planner.core.files import write_text_atomic  # noqa: E402
from planner.core.profiles import default_profile_dirs, load_profiles  # noqa: E402
from planner.plan.search import Budget, PlanRequest, plan  # noqa: E402
from planner.predict.modelio import load_planner_model  # noqa: E402

OUT = ROOT / "bench" / "results" / "paper_choices.json"
PRM = "Qwen/Qwen2.5-Math-PRM-7B"
QUERIES = [
    ("meta-llama/Llama-3.2-1B-Instruct", "easy", "beam"),
    ("meta-llama/Llama-3.2-1B-Instruct", "hard", "beam"),
    ("Qwen/Qwen2.5-1.5B-Instruct", "medium", "beam"),
    ("Qwen/Qwen2.5-14B-Instruct", "easy", "dvts"),
    ("Qwen/Qwen2.5-14B-Instruct", "medium", "dvts"),
    ("Qwen/Qwen2.5-14B-Instruct", "hard", "beam"),
    ("Qwen/Qwen2.5-72B-Instruct", "easy", "best_of_n"),
    ("Qwen/Qwen2.5-72B-Instruct", "medium", "best_of_n"),
    ("Qwen/Qwen2.5-72B-Instruct", "hard", "best_of_n"),
]


def public_data(records, policy: str) -> list[str]:
    rows = records[(records["policy"] == policy) & (records["dataset"] == "math500")]
    out = []
    for r in rows.itertuples():
        n = "?" if r.n is None or str(r.n) == "<NA>" else int(r.n)
        out.append(f"{r.method} n={n} {100 * r.accuracy:.1f}% ({r.profile}: {str(r.note)[:60]})")
    return out


def prm_data(records) -> list[str]:
    """Every cell of the asked PRM: what its separation and tree correction are fitted from."""
    rows = records[records["prm"] == PRM]
    return [
        f"{r.policy} {r.dataset} {r.method} {r.aggregation}/{r.selection} n={r.n} {100 * r.accuracy:.1f}% ({r.profile})"
        for r in rows.itertuples()
    ]


def main() -> None:
    records = load_profiles(default_profile_dirs())
    results = {}
    for predictor in ("regressor", "scaling"):
        model, info = load_planner_model(None, predictor=predictor)
        rows = []
        for policy, difficulty, paper in QUERIES:
            request = PlanRequest(
                policies=[policy],
                budget=Budget("n", 64),
                prms=[PRM],
                dataset="math500",
                difficulty=difficulty,
            )
            p = plan(model, request, top=3).to_dict()
            # the paper's method at its best within the same budget: how far it is from the choice
            theirs = plan(model, replace(request, methods=[paper]), top=1).to_dict()
            rows.append(
                {
                    "policy": policy,
                    "difficulty": difficulty,
                    "paper": paper,
                    "plan": p["method"],
                    "n": p["n"],
                    "aggregation": p["aggregation"],
                    "selection": p["selection"],
                    "predicted_accuracy": p["predicted_accuracy"],
                    "interval": p["accuracy_interval"],
                    "in_calibrated_range": p["in_calibrated_range"],
                    "agree": p["method"] == paper,
                    "paper_method_best": {
                        "n": theirs["n"],
                        "predicted_accuracy": theirs["predicted_accuracy"],
                        "in_calibrated_range": theirs["in_calibrated_range"],
                    },
                    "gap_points": round(100 * (p["predicted_accuracy"] - theirs["predicted_accuracy"]), 2),
                    "runners_up": [
                        (a["method"], a["n"], round(a["predicted_accuracy"], 3)) for a in p["alternatives"]
                    ],
                }
            )
        results[predictor] = {
            "model": info,
            "agree": sum(r["agree"] for r in rows),
            "of": len(rows),
            "rows": rows,
        }
    evidence = {policy: public_data(records, policy) for policy in sorted({q[0] for q in QUERIES})}
    evidence[f"cells of {PRM} (any policy)"] = prm_data(records)
    table = [
        "| policy | difficulty | paper | regressor (baseline) | scaling predictor (default) "
        "| scaling: paper's method at its best, points below the choice |",
        "|---|---|---|---|---|---|",
    ]
    for a, b in zip(results["regressor"]["rows"], results["scaling"]["rows"], strict=True):
        cell = lambda r: f"{r['plan']} n={r['n']} {100 * r['predicted_accuracy']:.1f}%"  # noqa: E731
        best = b["paper_method_best"]
        table.append(
            f"| {a['policy'].rsplit('/', 1)[-1]} | {a['difficulty']} | {a['paper']} | {cell(a)} | {cell(b)} "
            f"| n={best['n']} {100 * best['predicted_accuracy']:.1f}%, {b['gap_points']:.1f} |"
        )
    table.append("")
    for name, r in results.items():
        table.append(f"{name}: {r['agree']} of {r['of']} agree with the paper")
    print("\n".join(table))
    print("public data in the repository (MATH-500):")
    for policy, lines in evidence.items():
        print(f"  {policy}:")
        for line in lines:
            print(f"    {line}")
    write_text_atomic(OUT, json.dumps({"queries": results, "public_data": evidence}, indent=1) + "\n")
    md = ["public data in the repository (MATH-500):", ""]
    for policy, cells in evidence.items():
        md += [f"- {policy}:", *(f"  - {c}" for c in cells)]
    write_text_atomic(OUT.with_suffix(".md"), "\n".join([*table, "", *md]) + "\n")


if __name__ == "__main__":
    main()
