"""Beam/DVTS predictions of calibrated policies: the tree correction as a line in log2 N against a
constant shift, in-sample and out of sample.

For each CPU profile with tree cells (Gemma-3-270m, Qwen2.5-Coder-0.5B, SmolLM2-135M on arith): the per-problem model
and its tree corrections are fitted on half the problems (3 seeded splits x 2 directions) and the
other half's measured beam/DVTS cells are predicted, over all problems and per difficulty bin.
"line" is the fit as shipped (`scalingfit.tree_fit`); "constant" the same fit with the slope set to
0 (the shift before: the mean difference, the same value at N = 8 for cells at N = 4, 8, 16).
In-sample: the whole profile fitted and its own cells predicted. Each fit has N_BOOT bootstrap
refits, so the 80% intervals' coverage and width are reported too (the shipped model has 20).

    PYTHONPATH=. python bench/tree_holdout.py   # prints a table, writes results/tree_holdout.json and .md
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from planner.core.files import write_text_atomic  # noqa: E402
from planner.core.profiles import load_profiles  # noqa: E402
from planner.predict import modelio  # noqa: E402
from planner.predict.predictor import ScalingPredictor  # noqa: E402
from planner.predict.samples import profile_sample_sets  # noqa: E402
from planner.predict.scalingfit import fit_set, tree_cells  # noqa: E402

OUT = ROOT / "bench" / "results" / "tree_holdout.json"
PROFILES = ("cpu_arith_gemma", "cpu_arith_qwen", "cpu_arith_smollm2")
NS = (1, 2, 4, 8, 16)
SEEDS = 3
N_BOOT = 8  # bootstrap refits per fit: the intervals' fit uncertainty (the shipped model uses 20)


def cells_of(records: pd.DataFrame, policy: str, dataset: str, problems: int) -> pd.DataFrame:
    """Measured tree cells per difficulty bin and over all problems."""
    parts = [tree_cells(records, policy, dataset).assign(difficulty="all", problems=problems)]
    for b, rows in records[records["difficulty"].notna()].groupby("difficulty", sort=True):
        count = rows["problem_id"].nunique()
        parts.append(tree_cells(rows, policy, dataset).assign(difficulty=str(b), problems=count))
    return pd.concat(parts, ignore_index=True)


def errors(entry: dict, cells: pd.DataFrame, policy: str, dataset: str, regressor) -> dict:
    """Prediction minus measurement (points) per cell, for the line and the constant."""
    X = cells.drop(columns=["accuracy", "problems"]).assign(policy=policy, dataset=dataset)
    X["beam_width"] = pd.array(X["beam_width"], dtype="Int64")
    constant = copy.deepcopy(entry)
    for t in constant["tree"]:
        t["slope"] = 0.0
    out = {}
    acc = cells["accuracy"].to_numpy()
    for name, e in (("line", entry), ("constant", constant)):
        doc = {"format": "ttsplan-scaling", "version": 1, "n_boot": N_BOOT, "table_n": list(NS), "sets": [e]}
        f = ScalingPredictor(regressor, doc).assess_frame(X)
        low, high = f["accuracy_low"].to_numpy(), f["accuracy_high"].to_numpy()
        inside = (acc >= low - 1e-9) & (acc <= high + 1e-9)
        out[name] = (100 * (f["predicted_accuracy"].to_numpy() - acc), inside, 100 * (high - low))
    return out


def main() -> None:
    regressor, _ = modelio.load_model(modelio.DEFAULT_MODEL)
    rows = []
    for name in PROFILES:
        folder = ROOT / "profiles" / name
        records = load_profiles([folder])
        whole = profile_sample_sets(folder, records)[0]
        problems = np.array(sorted(whole.frame["problem_id"].unique()))
        splits = [("in-sample", problems, problems)]
        for seed in range(SEEDS):
            perm = np.random.default_rng(seed).permutation(problems)
            half = len(perm) // 2
            splits += [(f"half {seed}a", perm[:half], perm[half:]), (f"half {seed}b", perm[half:], perm[:half])]
        for split, fit_on, score_on in splits:
            s = copy.copy(whole)
            s.frame = whole.frame[whole.frame["problem_id"].isin(fit_on)].reset_index(drop=True)
            keep = records["problem_id"].isin(fit_on) | records["problem_id"].isna()
            entry = fit_set(s, records[keep], n_boot=N_BOOT, ns=NS)
            cells = cells_of(records[records["problem_id"].isin(score_on)], whole.policy, whole.dataset, len(score_on))
            errs = errors(entry, cells, whole.policy, whole.dataset, regressor)
            for i, c in enumerate(cells.itertuples(index=False)):
                for model, (e, inside, width) in errs.items():
                    rows.append(
                        {
                            "profile": name,
                            "split": split,
                            "model": model,
                            "method": c.method,
                            "n": int(c.n),
                            "difficulty": c.difficulty,
                            "problems": int(c.problems),
                            "error_points": float(e[i]),
                            "inside": bool(inside[i]),
                            "width_points": float(width[i]),
                        }
                    )
        print(f"done {name}", file=sys.stderr)
    frame = pd.DataFrame(rows)
    frame["where"] = np.where(frame["split"] == "in-sample", "in-sample", "out of sample")
    frame["scope"] = np.where(frame["difficulty"] == "all", "all problems", "per bin")
    frame["abs"] = frame["error_points"].abs()
    summary = (
        frame.groupby(["where", "scope", "model"])
        .agg(
            cells=("abs", "size"),
            mae=("abs", "mean"),
            max=("abs", "max"),
            bias=("error_points", "mean"),
            coverage=("inside", "mean"),
            width=("width_points", "median"),
        )
        .reset_index()
    )
    md = [
        "| cells | scope | tree correction | cells | MAE (points) | max | bias | 80% coverage | median width |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in summary.itertuples(index=False):
        md.append(
            f"| {r.where} | {r.scope} | {r.model} | {r.cells} | {r.mae:.2f} | {r.max:.1f} | {r.bias:+.2f} "
            f"| {r.coverage:.2f} | {r.width:.1f} |"
        )
    text = "\n".join(md) + "\n"
    print(text)
    write_text_atomic(OUT, json.dumps({"summary": summary.to_dict(orient="records"), "cells": rows}, indent=1) + "\n")
    write_text_atomic(OUT.with_suffix(".md"), text)


if __name__ == "__main__":
    main()
