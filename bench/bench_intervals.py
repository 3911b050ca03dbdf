"""Interval coverage and width for bench/quality.py: held-out policies (uncalibrated) and held-out
problems of policies with samples (calibrated). See bench/quality.py's docstring."""

from __future__ import annotations

import numpy as np
import pandas as pd

from planner.plan.evaluate import assess_cells, measured_cells, usable
from planner.predict.samples import profile_sample_sets
from planner.predict.scaling import SCORE_PREFIX, ProblemModel
from planner.predict.scalingfit import BOOT_SIMS, SIMS, widen

FOLDS = 2
REPEATS = 3  # 2-fold splits with different seeds: one split's cells all move together
N_BOOT = 20
SEED = 0
CELLS: list[dict] = []  # every calibrated cell checked, for diagnostics


def _stats(acc: np.ndarray, low: np.ndarray, high: np.ndarray) -> dict:
    inside = (acc >= low - 1e-9) & (acc <= high + 1e-9)
    return {
        "cells": int(len(acc)),
        "coverage": float(inside.mean()) if len(acc) else float("nan"),
        "median_width": float(np.median(high - low) * 100) if len(acc) else float("nan"),
    }


def uncalibrated_intervals(records: pd.DataFrame, fits: dict) -> dict:
    """Leave one policy out: every held-out cell's measured accuracy against each predictor's interval."""
    cells = measured_cells(records)
    cells = cells[usable(cells)].reset_index(drop=True)
    out = {}
    for name, fit in fits.items():
        acc, low, high = [], [], []
        for group in sorted(cells["policy"].astype(str).unique()):
            train = records[records["policy"].astype(str) != group]
            held = assess_cells(fit(train, group), cells[cells["policy"].astype(str) == group])
            acc += held["accuracy"].tolist()
            low += held["accuracy_low"].tolist()
            high += held["accuracy_high"].tolist()
        out[name] = _stats(np.array(acc), np.array(low), np.array(high))
    return out


def _half_cells(records: pd.DataFrame, policy: str, dataset: str, problems, verifiers) -> pd.DataFrame:
    r = records[
        (records["policy"] == policy)
        & (records["dataset"] == dataset)
        & records["problem_id"].isin(problems)
        & records["method"].isin(["majority", "best_of_n"])
    ]
    r = r[(r["prm"] == "none") | r["prm"].isin(verifiers)]
    keys = ["dataset", "policy", "prm", "method", "aggregation", "selection", "n"]
    out = r.groupby(keys, as_index=False)["accuracy"].mean()
    out["beam_width"] = pd.array([pd.NA] * len(out), dtype="Int64")
    return out


def calibrated_intervals(dirs, records: pd.DataFrame, regressor) -> dict:
    """Per sample set, REPEATS x 2 folds over problems: per-problem model fitted on one half, the
    other half's measured cells checked; the regressor (fitted on everything) on the same cells.

    The interval is asked for the held-out half's size (`problems`): it holds the fit's own
    uncertainty (bootstrap over the training half's problems) and the draw of that many new
    problems. Cells of one split move together (the halves differ in difficulty), so a set's
    coverage rests on its REPEATS x FOLDS splits, not on its cell count."""
    rng = np.random.default_rng(SEED)
    acc, low, high, r_low, r_high, per_set = [], [], [], [], [], []
    for folder in dirs:
        mine = records[records["profile"] == folder.name]
        for s in profile_sample_sets(folder, mine):
            problems = np.array(sorted(s.frame["problem_id"].unique()))
            splits = [np.array_split(rng.permutation(problems), FOLDS) for _ in range(REPEATS)]
            scores = [c for c in s.frame.columns if isinstance(c, str) and c.startswith(SCORE_PREFIX)]
            verifiers = {c[len(SCORE_PREFIX) :].rsplit(":", 1)[0] for c in scores}
            set_acc, set_low, set_high = [], [], []
            for folds, i in [(f, i) for f in splits for i in range(FOLDS)]:
                test = set(folds[i])
                train = s.frame[~s.frame["problem_id"].isin(test)]
                model = ProblemModel.fit(
                    train[["problem_id", "correct", "answer", *scores]], n_boot=N_BOOT, seed=SEED
                )
                cells = _half_cells(mine, s.policy, s.dataset, test, verifiers)
                for c in cells.itertuples(index=False):
                    kw = {}
                    if c.method == "best_of_n":
                        kw = {"verifier": c.prm, "aggregation": c.aggregation, "selection": c.selection}
                    r = model.predict(
                        method=c.method, n=int(c.n), sims=SIMS, boot_sims=BOOT_SIMS, problems=len(test), **kw
                    )
                    point, lo, hi = widen(r)
                    CELLS.append(
                        {"set": s.source, "method": c.method, "n": int(c.n), "measured": c.accuracy, **r}
                    )
                    set_acc.append(c.accuracy)
                    set_low.append(lo)
                    set_high.append(hi)
                X = cells.assign(difficulty="all")
                _, rl, rh, _ = regressor.assess(X)
                r_low += list(rl)
                r_high += list(rh)
            per_set.append(
                {
                    "set": s.source,
                    "policy": s.policy,
                    "dataset": s.dataset,
                    **_stats(np.array(set_acc), np.array(set_low), np.array(set_high)),
                }
            )
            acc += set_acc
            low += set_low
            high += set_high
    acc, low, high = np.array(acc), np.array(low), np.array(high)
    return {
        "scaling": {**_stats(acc, low, high), "per_set": per_set},
        "baseline (in-sample)": _stats(acc, np.array(r_low), np.array(r_high)),
    }
