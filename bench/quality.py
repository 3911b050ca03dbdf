"""Planner quality on the shipped profiles, leave one policy out (`ttsplan evaluate --holdout policy`),
summarised per task (dataset x held-out policy) for the README, for two predictors side by side:

  baseline   the regressor, candidates ranked by the point estimate (the planner before issue 9)
  scaling    planner.predict.predictor.ScalingPredictor: per-problem scaling models of the
             policies with samples (never the held-out one's), the regressor elsewhere, and the
             plan's ranking rule (planner.plan.search.rank)

Tasks with at least MIN_CELLS measured cells are the ones where a choice exists (the published
tables mostly give one or two cells per policy); the summary reports them separately from the rest.

Intervals: coverage and median width of the 80% intervals, separately for
  uncalibrated  held-out policies' cells (leave one policy out), both predictors;
  calibrated    per-problem models fitted on half of a sample set's problems, checked against the
                measured majority / Best-of-N cells of the other half (2 folds, 3 repeats); the
                interval is for the accuracy on that many new problems (fit uncertainty by
                bootstrap + the new problems' draw, planner.predict.scaling.predictive_interval);
                against the regressor fitted on every profile (in-sample for it, so favourable).

    .venv/bin/python bench/quality.py            # writes bench/results/quality.json and quality.md
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
OUT = HERE / "results" / "quality"
MIN_CELLS = 10


def _write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def summarise(result: dict) -> list[dict]:
    gains = {(g["group"], g["dataset"]): g for g in result["summary"]["efficiency_gain"]}
    rows = []
    for group in result["groups"]:
        for task in group.get("tasks", []):
            regrets = [b["regret_points"] for b in task["budgets"] if b["regret_points"] is not None]
            gain = gains.get((group["group"], task["dataset"]), {})
            rows.append(
                {
                    "policy": group["group"],
                    "dataset": task["dataset"],
                    "cells": task["cells"],
                    "budgets": len(regrets),
                    "mean_regret": float(np.mean(regrets)) if regrets else None,
                    "max_regret": float(np.max(regrets)) if regrets else None,
                    "efficiency_gain": gain.get("gain"),
                    "gain_note": gain.get("reason"),
                    "coverage": group["coverage"]["coverage"],
                    "coverage_cells": group["coverage"]["cells"],
                }
            )
    return rows


def markdown(rows: list[dict], result: dict) -> str:
    def f(v, spec=".1f"):
        return "-" if v is None else format(v, spec)

    big = [r for r in rows if r["cells"] >= MIN_CELLS]
    lines = [
        f"Tasks with at least {MIN_CELLS} measured cells (leave one policy out):",
        "",
        "| held-out policy | dataset | cells | mean regret (points) | max regret | efficiency gain | interval coverage |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in big:
        gain = f(r["efficiency_gain"], ".2f") + "x" if r["efficiency_gain"] else (r["gain_note"] or "-")
        lines.append(
            f"| {r['policy']} | {r['dataset']} | {r['cells']} | {f(r['mean_regret'])} | {f(r['max_regret'])} "
            f"| {gain} | {f(r['coverage'], '.2f')} of {r['coverage_cells']} |"
        )
    all_regrets = [b for r in big for b in ([r["mean_regret"]] if r["mean_regret"] is not None else [])]
    s = result["summary"]
    lines += [
        "",
        f"Over these tasks: mean regret {f(float(np.mean(all_regrets)) if all_regrets else None)} points, "
        f"max {f(max((r['max_regret'] or 0) for r in big) if big else None)}. "
        f"Over every task ({len(rows)}, most with one or two published cells): mean regret "
        f"{f(s['mean_regret_points'])}, max {f(s['max_regret_points'])}; interval coverage "
        f"{f(s['coverage'], '.2f')} of {s['cells']} held-out cells ({s['out_of_range']} outside the calibrated range).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    from planner.core.profiles import default_profile_dirs, load_profiles
    from planner.plan.evaluate import evaluate
    from planner.predict.modelio import DEFAULT_MODEL, load_model, load_scaling
    from planner.predict.predictor import ScalingPredictor
    from planner.predict.regressor import fit_profiles

    dirs = [Path(a) for a in sys.argv[1:]] or default_profile_dirs()
    records = load_profiles(dirs)
    doc = load_scaling(DEFAULT_MODEL, load_model(DEFAULT_MODEL)[1])
    fitted: dict = {}

    def regressor(train, group):
        if group not in fitted:
            fitted[group] = fit_profiles(train)[0]
        return fitted[group]

    if "transfer" not in doc:  # a model fitted before the transfer part existed
        from planner.predict.transfer import fit_transfer

        doc["transfer"] = fit_transfer(doc["sets"], records)

    def scaling(train, group):
        return ScalingPredictor(regressor(train, group), doc).without([group], train)

    out: dict = {"profiles": [str(d) for d in dirs]}
    md = ""
    for name, fit, rule in (("baseline", regressor, False), ("scaling", scaling, True)):
        result = evaluate(records, holdout="policy", fit=fit, rule=rule)
        rows = summarise(result)
        out[name] = {"tasks": rows, "summary": result["summary"], "headline": headline(rows)}
        md += f"### {name}\n\n" + markdown(rows, result) + "\n"
        print(f"done {name}", file=sys.stderr)
    from bench_intervals import calibrated_intervals, uncalibrated_intervals

    out["intervals"] = {
        "uncalibrated": uncalibrated_intervals(records, {"baseline": regressor, "scaling": scaling}),
        "calibrated": calibrated_intervals(dirs, records, fit_profiles(records)[0]),
    }
    md += intervals_markdown(out["intervals"])
    OUT.parent.mkdir(parents=True, exist_ok=True)
    _write(OUT.with_suffix(".json"), json.dumps(out, indent=2) + "\n")
    _write(OUT.with_suffix(".md"), md)
    print(md)


def headline(rows: list[dict]) -> dict:
    big = [r for r in rows if r["cells"] >= MIN_CELLS and r["mean_regret"] is not None]
    return {
        "tasks": len(big),
        "mean_regret": float(np.mean([r["mean_regret"] for r in big])) if big else None,
        "max_regret": float(max(r["max_regret"] for r in big)) if big else None,
    }


def intervals_markdown(iv: dict) -> str:
    lines = [
        "### 80% intervals",
        "",
        "| cells | predictor | cells | coverage | median width (points) |",
        "|---|---|---:|---:|---:|",
    ]
    for kind, by in iv.items():
        for name, r in by.items():
            lines.append(
                f"| {kind} | {name} | {r['cells']} | {r['coverage']:.2f} | {r['median_width']:.1f} |"
            )
            for one in r.get("per_set", []):  # a set's cells move together by split: 6 splits each
                lines.append(
                    f"| calibrated, one set | {one['set']} ({one.get('policy')}, {one.get('dataset')}) "
                    f"| {one['cells']} | {one['coverage']:.2f} "
                    f"| {one['median_width']:.1f} |"
                )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
