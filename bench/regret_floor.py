"""The regret a planner that knew every configuration's expected accuracy would still show in
bench/quality.py's measurement, on the tasks whose cells were measured per problem.

Regret (planner.plan.evaluate) is the best measured cell within a budget minus the measured
accuracy of the planner's choice. Each measured accuracy is a mean over the task's problems, so the
best measured cell is partly the luckiest one: even the configuration with the best expected
accuracy loses some points to it. Per task with per-problem rows (the CPU calibrations), BOOT
bootstrap draws of its problems stand in for new measurements; a "perfect planner" picks, within
each of the task's budgets (the same levels as bench/quality.py), the cell with the best accuracy
over all the problems; its regret is measured in each draw as bench/quality.py measures it.

    PYTHONPATH=. python bench/regret_floor.py    # results/regret_floor.{json,md}
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from planner.core.profiles import default_profile_dirs, load_profiles, static_rows  # noqa: E402
from planner.plan.evaluate import (  # noqa: E402
    CELL_KEYS,
    _key_strings,
    budget_levels,
    measured_cells,
    price_cells,
    usable,
)

OUT = ROOT / "bench" / "results" / "regret_floor.json"
BOOT = 400
SEED = 5
MIN_CELLS = 10  # as bench/quality.py's tasks


def per_problem(records: pd.DataFrame, policy: str, dataset: str) -> pd.DataFrame:
    """cells x problems accuracy matrix of one task (index: the cells' key strings)."""
    rows = static_rows(records)
    rows = rows[(rows["policy"] == policy) & (rows["dataset"] == dataset)]
    rows = rows[rows["problem_id"].fillna("").astype(str) != ""]
    rows = rows.assign(_key=_key_strings(rows, CELL_KEYS))
    return rows.pivot_table(index="_key", columns="problem_id", values="accuracy", aggfunc="mean")


def task_floor(cells: pd.DataFrame, matrix: pd.DataFrame, rng) -> dict:
    keys = _key_strings(cells, CELL_KEYS)
    cells = cells.assign(_key=keys.to_numpy())
    cells = cells[cells["_key"].isin(matrix.index)]
    acc = matrix.loc[cells["_key"]].to_numpy(dtype=float)  # cells x problems
    flops = cells["flops"].to_numpy(dtype=float)
    full = np.nanmean(acc, axis=1)
    budgets = budget_levels(flops)
    problems = acc.shape[1]
    within = [np.flatnonzero(flops <= budget * (1 + 1e-9)) for budget in budgets]
    # the perfect planner's pick per budget: the best accuracy over all problems, cheaper on ties
    picks = [inside[np.lexsort((flops[inside], -full[inside]))[0]] for inside in within]
    regrets = np.zeros((BOOT, len(budgets)))
    for b in range(BOOT):
        draw = np.nanmean(acc[:, rng.integers(0, problems, problems)], axis=1)
        for j, (inside, pick) in enumerate(zip(within, picks, strict=True)):
            regrets[b, j] = 100 * (draw[inside].max() - draw[pick])
    per_run_mean = regrets.mean(axis=1)
    per_run_max = regrets.max(axis=1)
    return {
        "cells": int(len(cells)),
        "problems": int(problems),
        "mean_regret": float(per_run_mean.mean()),
        "max_regret": float(per_run_max.mean()),
        "max_regret_q90": float(np.quantile(per_run_max, 0.9)),
    }


def main() -> None:
    records = load_profiles(default_profile_dirs())
    cells = measured_cells(records)
    cells = price_cells(cells[usable(cells)].reset_index(drop=True))
    cells = cells[cells["flops"].notna()]
    rng = np.random.default_rng(SEED)
    out = []
    for (dataset, policy), task in cells.groupby(["dataset", "policy"], sort=True):
        if len(task) < MIN_CELLS:
            continue
        matrix = per_problem(records, policy, dataset)
        if matrix.empty:
            continue
        out.append({"policy": policy, "dataset": dataset, **task_floor(task, matrix, rng)})
        print(f"done {policy} {dataset}", file=sys.stderr)
    lines = [
        f"Regret of a planner that knows each cell's accuracy over all problems, measured on {BOOT} "
        "bootstrap draws of the problems (bench/regret_floor.py; points; 6 budgets as bench/quality.py).",
        "",
        "| policy | dataset | cells | problems | mean regret | max regret (mean over draws) | max regret, 90% of draws below |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in out:
        lines.append(
            f"| {r['policy'].split('/')[-1]} | {r['dataset']} | {r['cells']} | {r['problems']} "
            f"| {r['mean_regret']:.2f} | {r['max_regret']:.2f} | {r['max_regret_q90']:.2f} |"
        )
    print("\n".join(lines))
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    OUT.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
