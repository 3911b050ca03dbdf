"""Held-out evaluation of the planner on measured cells: regret, efficiency gain, interval coverage.

For each value g of a holdout column (policy, PRM or dataset) the regressor is fitted on the
records outside g and asked to choose among g's measured cells at several FLOPs budgets. The
choice's measured accuracy is set against the best measured cell within the same budget (the
oracle), against fixed strategies, and against what majority voting spends to reach its best
accuracy (efficiency gain, Liu et al. 2025). A plan is for one policy on one dataset, so the
budget comparisons run per (dataset, policy) task inside each group.

The arithmetic is in plain functions (`measured_cells`, `regret_table`, `efficiency_gain`,
`coverage`) that take DataFrames and any object with the regressor's `assess(X)`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from planner.core import checks
from planner.core.errors import UserError
from planner.core.profiles import static_rows
from planner.core.vocab import METHODS, TREE_METHODS
from planner.models import specs
from planner.predict.features import NO_MODEL

CELL_KEYS = ("dataset", "policy", "prm", "method", "aggregation", "selection", "n", "beam_width")
TASK_KEYS = ("dataset", "policy")
HOLDOUTS = ("policy", "prm", "dataset")
DEFAULT_LEVELS = 6
REL_TOL = 1e-9  # a cell fits a budget when flops <= budget * (1 + REL_TOL)
FLOPS_RULE = (
    "cells without measured FLOPs are priced with the cost model (planner.plan.search.price); "
    "cells it cannot price (policy or PRM not in the registry) are left off the budget axis"
)


# ---------------------------------------------------------------- cells


def _key_strings(frame: pd.DataFrame, columns: Sequence[str]) -> pd.Series:
    """One printable key per row (groupby would drop NA keys such as a missing beam width)."""
    parts = [frame[c].astype(object).map(str) for c in columns]  # NA -> "<NA>", not NaN
    key = parts[0]
    for part in parts[1:]:
        key = key + "\x1f" + part
    return key


def _source_rows(records: pd.DataFrame) -> pd.DataFrame:
    """The rows each cell's accuracy comes from, per profile: its difficulty "all" rows where
    the profile has them, else its per-problem rows, else its rows per difficulty bin (which
    split the problems between them)."""
    rows = static_rows(records).copy()  # early-stopping cells are not the fixed-N cells of a plan
    problem = rows["problem_id"].fillna("").astype(str) != ""
    whole = (rows["difficulty"] == "all") & ~problem
    rows["_rank"] = np.where(whole, 0, np.where(problem, 1, 2))
    profile = rows["profile"] if "profile" in rows else pd.Series("", index=rows.index)
    rows["_key"] = _key_strings(rows, CELL_KEYS)
    best = rows.groupby([profile.astype(str), rows["_key"]])["_rank"].transform("min")
    return rows[rows["_rank"] == best]


def measured_cells(records: pd.DataFrame) -> pd.DataFrame:
    """One row per cell (CELL_KEYS): accuracy (mean weighted by n_problems), n_problems (summed)
    and flops (per problem, mean weighted by n_problems over the rows that have it; NaN if none)."""
    rows = _source_rows(records)
    weight = pd.to_numeric(rows["n_problems"]).astype(float)
    flops = pd.to_numeric(rows["flops"]).astype(float)
    has_flops = flops.notna()
    rows = rows.assign(
        _w=weight,
        _wa=rows["accuracy"].astype(float) * weight,
        _wf=(flops * weight).where(has_flops, 0.0),
        _wok=weight.where(has_flops, 0.0),
    )
    grouped = rows.groupby("_key", sort=True)
    out = grouped[list(CELL_KEYS)].first()
    sums = grouped[["_w", "_wa", "_wf", "_wok"]].sum()
    out["accuracy"] = sums["_wa"] / sums["_w"]
    out["n_problems"] = sums["_w"]
    out["flops"] = (sums["_wf"] / sums["_wok"]).where(sums["_wok"] > 0)
    out = out.reset_index(drop=True)
    for col in ("n", "beam_width"):
        out[col] = pd.to_numeric(out[col]).astype("Int64")
    return out


def usable(cells: pd.DataFrame) -> pd.Series:
    """Cells a plan could pick: a known method and a stated N."""
    return cells["method"].isin(METHODS) & cells["n"].notna()


def _cost_model_flops(cell: pd.Series) -> float | None:
    """FLOPs per problem from the cost model, or None when a model is not in the registry."""
    from planner.plan.search import price

    try:
        by_name = {cell["policy"]: specs.resolve(cell["policy"])}
        if cell["prm"] != NO_MODEL:
            by_name[cell["prm"]] = specs.resolve(cell["prm"])
        frame = pd.DataFrame({k: [cell[k]] for k in ("policy", "prm", "method", "aggregation", "selection")})
        frame["n"] = np.array([int(cell["n"])], dtype=np.int64)
        width = cell["beam_width"] if cell["method"] in TREE_METHODS else pd.NA
        frame["beam_width"] = pd.array([width], dtype="Int64")
        return float(price(frame, by_name, str(cell["dataset"]))["flops_per_problem"].iloc[0])
    except UserError:
        return None


def price_cells(cells: pd.DataFrame) -> pd.DataFrame:
    """Cells with flops filled in by the cost model where not measured; flops_source says which
    ("measured", "cost model", or "none": left NaN, off the budget axis)."""
    out = cells.copy()
    source = np.where(out["flops"].notna(), "measured", "none").astype(object)
    for pos in np.flatnonzero(out["flops"].isna().to_numpy()):
        value = _cost_model_flops(out.iloc[pos])
        if value is not None and math.isfinite(value):
            out.iloc[pos, out.columns.get_loc("flops")] = value
            source[pos] = "cost model"
    out["flops_source"] = source
    return out


def assess_cells(model: object, cells: pd.DataFrame, difficulty: str = "all") -> pd.DataFrame:
    """Cells with predicted_accuracy, accuracy_low/high and in_calibrated_range (one assess call);
    cells already assessed come back as they are."""
    if "predicted_accuracy" in cells:
        return cells
    X = cells[list(CELL_KEYS)].copy()
    X["difficulty"] = difficulty
    if hasattr(model, "assess_frame"):
        f = model.assess_frame(X)
        pred, low, high, in_range = (
            f[c].to_numpy()
            for c in ("predicted_accuracy", "accuracy_low", "accuracy_high", "in_calibrated_range")
        )
        extrapolated = f["extrapolated"].to_numpy(dtype=bool)
    else:
        pred, low, high, in_range = model.assess(X)
        extrapolated = np.zeros(len(X), dtype=bool)
    return cells.assign(
        predicted_accuracy=np.asarray(pred, dtype=float),
        accuracy_low=np.asarray(low, dtype=float),
        accuracy_high=np.asarray(high, dtype=float),
        in_calibrated_range=np.asarray(in_range, dtype=bool),
        extrapolated=extrapolated,
    )


def config_label(cell: pd.Series | dict) -> str:
    """Compact configuration: "cot", "majority n=8", "beam n=16 w=4 last/max PRM"."""
    if cell["method"] == "cot":
        return "cot"
    text = f"{cell['method']} n={int(cell['n'])}"
    if cell["method"] in TREE_METHODS and not pd.isna(cell["beam_width"]):
        text += f" w={int(cell['beam_width'])}"
    if cell["aggregation"] != "none":
        text += f" {cell['aggregation']}/{cell['selection']}"
    if cell["prm"] != NO_MODEL:
        text += f" {str(cell['prm']).rsplit('/', 1)[-1]}"
    return text


# ---------------------------------------------------------------- choices


MAX_LEVELS = 1_000  # budget levels per task


def check_levels(levels: int) -> int:
    return checks.integer(levels, "budgets", 1, MAX_LEVELS)


def budget_levels(flops: Sequence[float], levels: int = DEFAULT_LEVELS) -> np.ndarray:
    """`levels` budgets log-spaced from the cheapest to the most expensive cell (both included)."""
    check_levels(levels)
    values = np.asarray(flops, dtype=float)
    values = values[np.isfinite(values) & (values > 0)]
    if len(values) == 0:
        return np.array([])
    low, high = values.min(), values.max()
    if levels == 1 or low == high:
        return np.array([high])
    return np.geomspace(low, high, levels)


def _within(cells: pd.DataFrame, budget: float) -> pd.DataFrame:
    return cells[cells["flops"].to_numpy(dtype=float) <= budget * (1 + REL_TOL)]


def choose(scored: pd.DataFrame, budget: float, rule: bool = True) -> pd.Series | None:
    """The planner's pick within the budget, ranked as `ttsplan plan` ranks (planner.plan.search
    rank: out-of-range or extrapolated cells by their lower bound when some are trusted), cheaper
    on ties; rule False: by the point estimate alone (the planner before that rule)."""
    from planner.plan.search import rank

    inside = _within(scored, budget)
    if inside.empty:
        return None
    if rule:
        return rank(inside, cost="flops")[0].iloc[0]
    return inside.sort_values(
        ["predicted_accuracy", "flops"], ascending=[False, True], kind="mergesort"
    ).iloc[0]


def oracle(cells: pd.DataFrame, budget: float) -> pd.Series | None:
    """The best measured cell within the budget (cheaper on ties)."""
    inside = _within(cells, budget)
    if inside.empty:
        return None
    return inside.sort_values(["accuracy", "flops"], ascending=[False, True], kind="mergesort").iloc[0]


def fixed_choice(cells: pd.DataFrame, method: str, budget: float) -> pd.Series | None:
    """A fixed strategy spends the budget: the method's most expensive cell within it (the best
    measured among equally expensive ones)."""
    inside = _within(cells[cells["method"] == method], budget)
    if inside.empty:
        return None
    return inside.sort_values(["flops", "accuracy"], ascending=[False, False], kind="mergesort").iloc[0]


def _acc(cell: pd.Series | None) -> float | None:
    return None if cell is None else float(cell["accuracy"])


def _budget_row(scored: pd.DataFrame, budget: float, rule: bool = True) -> dict:
    pick, best = choose(scored, budget, rule), oracle(scored, budget)
    row = {
        "budget_flops": float(budget),
        "candidates": int(len(_within(scored, budget))),
        "choice": None if pick is None else config_label(pick),
        "choice_flops": None if pick is None else float(pick["flops"]),
        "chosen_accuracy": _acc(pick),
        "predicted_accuracy": None if pick is None else float(pick["predicted_accuracy"]),
        "oracle": None if best is None else config_label(best),
        "oracle_accuracy": _acc(best),
        "regret_points": None if pick is None else 100 * (float(best["accuracy"]) - float(pick["accuracy"])),
    }
    for method in METHODS:
        cell = fixed_choice(scored, method, budget)
        row[f"{method}_accuracy"] = _acc(cell)
        row[f"{method}_choice"] = None if cell is None else config_label(cell)
    return row


def regret_table(
    cells: pd.DataFrame, model: object, budgets: Sequence[float], rule: bool = True
) -> pd.DataFrame:
    """One row per budget: the planner's choice, the oracle, regret in points (oracle minus the
    choice's measured accuracy) and each fixed strategy's measured accuracy. `cells`: one
    task's cells with finite flops."""
    scored = assess_cells(model, cells)
    return pd.DataFrame([_budget_row(scored, float(b), rule) for b in budgets])


def efficiency_gain(cells: pd.DataFrame, model: object, rule: bool = True) -> dict:
    """Majority's cost to reach its best accuracy over the planner's (Liu et al. 2025).

    A* = best measured majority accuracy, C_maj = the least FLOPs at which majority reaches A*,
    C_plan = the least budget (scanning every cell's cost) at which the planner's choice measures
    at least A*. gain = C_maj / C_plan; None with a reason when it is not defined.
    """
    scored = assess_cells(model, cells)
    majority = scored[scored["method"] == "majority"]
    out = {"gain": None, "majority_best_accuracy": None, "majority_flops": None, "planner_flops": None}
    if majority.empty:
        return {**out, "reason": "no majority cells"}
    target = float(majority["accuracy"].max())
    c_maj = float(majority.loc[majority["accuracy"] >= target - REL_TOL, "flops"].min())
    out.update(majority_best_accuracy=target, majority_flops=c_maj)
    for budget in np.unique(scored["flops"].to_numpy(dtype=float)):
        pick = choose(scored, budget, rule)
        if pick is not None and float(pick["accuracy"]) >= target - REL_TOL:
            return {**out, "gain": c_maj / float(budget), "planner_flops": float(budget), "reason": None}
    return {**out, "reason": "the planner's choice never reaches majority's best accuracy"}


def coverage(cells: pd.DataFrame, model: object) -> dict:
    """Share of cells whose measured accuracy lies in the model's interval, and how many cells
    lie outside the calibrated range."""
    scored = assess_cells(model, cells)
    acc = scored["accuracy"].to_numpy(dtype=float)
    inside = (acc >= scored["accuracy_low"].to_numpy() - REL_TOL) & (
        acc <= scored["accuracy_high"].to_numpy() + REL_TOL
    )
    return {
        "cells": int(len(scored)),
        "inside": int(inside.sum()),
        "coverage": float(inside.mean()) if len(scored) else None,
        "out_of_range": int((~scored["in_calibrated_range"].to_numpy(dtype=bool)).sum()),
    }


# ---------------------------------------------------------------- whole evaluation


def _fit_default(records: pd.DataFrame) -> object:
    from planner.predict.regressor import fit_profiles

    return fit_profiles(records)[0]


def _call_fit(fit: Callable, train: pd.DataFrame, group: str) -> object:
    import inspect

    if "group" in inspect.signature(fit).parameters:
        return fit(train, group=group)
    return fit(train)


def _table_records(table: pd.DataFrame) -> list[dict]:
    """Rows as plain JSON values (NaN -> None)."""
    out = []
    for row in table.to_dict(orient="records"):
        out.append({k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()})
    return out


def _task(
    cells: pd.DataFrame, model: object, levels: int, budgets: Sequence[float] | None, rule: bool = True
) -> dict:
    first = cells.iloc[0]
    levels_used = budget_levels(cells["flops"], levels) if budgets is None else budgets
    return {
        "dataset": str(first["dataset"]),
        "policy": str(first["policy"]),
        "cells": int(len(cells)),
        "budgets": _table_records(regret_table(cells, model, levels_used, rule)),
        "efficiency_gain": efficiency_gain(cells, model, rule),
    }


def evaluate_group(
    records: pd.DataFrame,
    cells: pd.DataFrame,
    holdout: str,
    group: str,
    levels: int = DEFAULT_LEVELS,
    budgets: Sequence[float] | None = None,
    fit: Callable[[pd.DataFrame], object] | None = None,
    rule: bool = True,
) -> dict:
    """Fit on the records outside `group`, then score the group's cells (priced, usable).
    fit(train_records) may also take the held-out group's name as a keyword `group`."""
    train = records[records[holdout].astype(str) != group]
    try:
        model = _fit_default(train) if fit is None else _call_fit(fit, train, group)
    except UserError as exc:
        return {"group": group, "skipped": str(exc)}
    held = assess_cells(model, cells[cells[holdout].astype(str) == group])
    priced = held[held["flops"].notna()]
    tasks = [
        _task(task, model, levels, budgets, rule) for _, task in priced.groupby(list(TASK_KEYS), sort=True)
    ]
    return {
        "group": group,
        "train_records": int(len(train)),
        "cells": int(len(held)),
        "priced_cells": int(len(priced)),
        "coverage": coverage(held, model),
        "tasks": tasks,
    }


def summarise(groups: list[dict]) -> dict:
    """Mean and max regret over every (task, budget) with a choice; gains; pooled coverage."""
    done = [g for g in groups if "skipped" not in g]
    regrets = [
        b["regret_points"]
        for g in done
        for t in g["tasks"]
        for b in t["budgets"]
        if b["regret_points"] is not None
    ]
    cells = sum(g["coverage"]["cells"] for g in done)
    inside = sum(g["coverage"]["inside"] for g in done)
    gains = [
        {"group": g["group"], "dataset": t["dataset"], "policy": t["policy"], **t["efficiency_gain"]}
        for g in done
        for t in g["tasks"]
    ]
    return {
        "budget_points": len(regrets),
        "mean_regret_points": float(np.mean(regrets)) if regrets else None,
        "max_regret_points": float(np.max(regrets)) if regrets else None,
        "efficiency_gain": gains,
        "coverage": inside / cells if cells else None,
        "cells": cells,
        "out_of_range": sum(g["coverage"]["out_of_range"] for g in done),
        "groups_skipped": [g["group"] for g in groups if "skipped" in g],
    }


def check_holdout(holdout: str) -> str:
    if holdout not in HOLDOUTS:
        raise UserError(f"holdout: must be one of {', '.join(HOLDOUTS)}, got {holdout!r}")
    return holdout


def evaluate(
    records: pd.DataFrame,
    holdout: str = "policy",
    levels: int = DEFAULT_LEVELS,
    budgets: Sequence[float] | None = None,
    fit: Callable[[pd.DataFrame], object] | None = None,
    rule: bool = True,
) -> dict:
    """The whole evaluation as one JSON-ready dict (groups, per-task budget tables, summary)."""
    check_holdout(holdout)
    check_levels(levels)
    all_cells = measured_cells(records)
    ok = usable(all_cells)
    cells = price_cells(all_cells[ok].reset_index(drop=True))
    groups = [
        evaluate_group(records, cells, holdout, str(g), levels, budgets, fit, rule)
        for g in sorted(cells[holdout].astype(str).unique())
    ]
    if not any("skipped" not in g for g in groups):
        reasons = "; ".join(f"{g['group']}: {g['skipped']}" for g in groups) or "no usable cells"
        raise UserError(f"no held-out {holdout} could be evaluated ({reasons})")
    sources = cells["flops_source"].value_counts()
    return {
        "holdout": holdout,
        "profiles": sorted(set(records["profile"])) if "profile" in records else [],
        "budgets": {"levels": levels} if budgets is None else {"flops": [float(b) for b in budgets]},
        "flops": {
            "rule": FLOPS_RULE,
            "measured": int(sources.get("measured", 0)),
            "cost_model": int(sources.get("cost model", 0)),
            "unpriced": int(sources.get("none", 0)),
        },
        "cells": {"usable": int(ok.sum()), "unusable": int((~ok).sum())},
        "groups": groups,
        "summary": summarise(groups),
    }
