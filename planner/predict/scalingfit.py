"""Fit the per-problem scaling models of every (policy, dataset) with sample-level records.

For each sample set (planner.predict.samples) it fits a ProblemModel and tabulates its predictions
(accuracy and 80% bootstrap interval) for majority and Best-of-N (every verifier, aggregation and
selection) at N = 1, 2, 4, ..., per difficulty bin and over all problems: the plan scores
thousands of candidates in milliseconds from the table; other N are computed when asked
(planner.predict.predictor). Beam search and DVTS: a correction on the logit scale to the
Best-of-N prediction at the same N, verifier and aggregation, learned from the profile's
measured tree cells of that policy and verifier (mean and spread of logit(measured) -
logit(Best-of-N predicted)). Greedy CoT: the profile's measured cell per bin (decoding is
deterministic; nothing to model). Early stopping: the profile's replayed rows with a rule (`stop`),
as cells (planner.predict.stopping.measured_stops), which the planner prefers to simulation.

The result is one plain JSON document (no pickle).
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit, logit

from planner.core.errors import UserError
from planner.core.profiles import static_rows
from planner.core.vocab import TREE_METHODS
from planner.predict.samples import SampleSet, profile_sample_sets
from planner.predict.scaling import SCORE_PREFIX, ProblemModel
from planner.predict.stopping import measured_stops

DOC_FORMAT = "ttsplan-scaling"
DOC_VERSION = 1
N_BOOT = 20  # bootstrap refits: intervals from their 10th/90th percentiles
TABLE_N = tuple(2**k for k in range(11))  # the plan's N axis, 1 .. 1024
VOTE_N_MAX = 64  # weighted vote costs Monte Carlo time in proportion to N: tabulated up to here
SIMS, BOOT_SIMS = 3000, 300  # Monte Carlo draws per table entry (point, each bootstrap refit)
EPS = 1e-4


def _clip_logit(x):
    return logit(np.clip(np.asarray(x, dtype=float), EPS, 1 - EPS))


def curves(model: ProblemModel) -> list[tuple[str, str, str, str]]:
    """(method, prm, aggregation, selection) of every curve a model predicts."""
    out = [("majority", "none", "none", "vote")]
    for verifier, agg in model.scores:
        out += [("best_of_n", verifier, agg, sel) for sel in ("max", "vote")]
    return out


def tabulate(model: ProblemModel, ns=TABLE_N, pool=None) -> list[list]:
    """Rows [method, prm, aggregation, selection, bin, n, accuracy, low, high]. Weighted vote
    (Monte Carlo time in proportion to N) up to VOTE_N_MAX and over all problems only.
    pool: an executor to spread the curves over (each is seeded: the same rows either way)."""
    tasks = _curves_and_bins(model)
    if pool is None:
        parts = [_curve_rows(model, ns, task) for task in tasks]
    else:
        parts = [f.result() for f in [pool.submit(_curve_rows, model, ns, task) for task in tasks]]
    return [row for part in parts for row in part]


def _curves_and_bins(model: ProblemModel) -> list[tuple[str, str, str, str, str]]:
    out = []
    for method, prm, agg, sel in curves(model):
        vote = method == "best_of_n" and sel == "vote"
        out += [(method, prm, agg, sel, b) for b in (["all"] if vote else ["all", *sorted(model.bins)])]
    return out


def _curve_rows(model: ProblemModel, ns, task: tuple[str, str, str, str, str]) -> list[list]:
    """The table rows of one curve in one bin."""
    method, prm, agg, sel, b = task
    vote = method == "best_of_n" and sel == "vote"
    grid = [n for n in ns if n <= model.n_max and (not vote or n <= VOTE_N_MAX)]
    kw = {} if method == "majority" else {"verifier": prm, "aggregation": agg, "selection": sel}
    preds = model.predict_many(
        method=method, ns=grid, bin=None if b == "all" else b, sims=SIMS, boot_sims=BOOT_SIMS, **kw
    )
    return [[method, prm, agg, sel, b, n, *widen(r)] for n, r in zip(grid, preds, strict=True)]


def widen(r: dict) -> tuple[float, float, float]:
    """(accuracy, low, high) with the interval stretched to hold the point (a bootstrap percentile
    interval of few refits, with Monte Carlo noise, can miss it)."""
    acc = float(r["accuracy"])
    low, high = float(r["low"]), float(r["high"])
    if not (math.isfinite(low) and math.isfinite(high)):
        return acc, acc, acc
    return acc, min(low, acc), max(high, acc)


def tree_cells(records: pd.DataFrame, policy: str, dataset: str) -> pd.DataFrame:
    """Measured beam/DVTS cells of one policy and dataset over all its problems."""
    r = records[
        (records["policy"] == policy)
        & (records["dataset"] == dataset)
        & records["method"].isin(TREE_METHODS)
        & records["n"].notna()
    ]
    if r.empty:
        return pd.DataFrame(
            columns=["method", "prm", "aggregation", "selection", "n", "beam_width", "accuracy"]
        )
    w = pd.to_numeric(r["n_problems"]).astype(float)
    keys = ["method", "prm", "aggregation", "selection", "n", "beam_width"]
    g = r.assign(_wa=r["accuracy"].astype(float) * w, _w=w).groupby(keys, dropna=False)
    out = g[["_wa", "_w"]].sum()
    out["accuracy"] = out["_wa"] / out["_w"]
    return out.reset_index()[[*keys, "accuracy"]]


def cot_cells(records: pd.DataFrame, policy: str, dataset: str, problems=None) -> list[list]:
    """Measured greedy-CoT cells of one policy and dataset, per problem rows averaged: [bin,
    accuracy, problems] for "all" and each difficulty bin (none without per-problem rows);
    problems: only these (the sample set's), when given."""
    r = static_rows(records)
    r = r[
        (r["policy"] == policy)
        & (r["dataset"] == dataset)
        & (r["method"] == "cot")
        & (r["problem_id"].fillna("") != "")
    ]
    if problems is not None:
        r = r[r["problem_id"].isin(set(problems))]
    if r.empty:
        return []
    per_problem = r.groupby("problem_id").agg(accuracy=("accuracy", "mean"), bin=("difficulty", "first"))
    out = [["all", float(per_problem["accuracy"].mean()), len(per_problem)]]
    for b, g in per_problem.groupby("bin", sort=True):
        out.append([str(b), float(g["accuracy"].mean()), len(g)])
    return out


def tree_corrections(model: ProblemModel, cells: pd.DataFrame) -> list[dict]:
    """Per (method, prm): logit(measured tree accuracy) - logit(Best-of-N predicted) as a line in
    log2 N (`tree_fit`), and its spread."""
    out = []
    for (method, prm), g in cells.groupby(["method", "prm"], sort=True):
        diffs, ns, configs = [], [], set()
        for row in g.itertuples(index=False):
            if (str(prm), str(row.aggregation)) not in model.scores:
                continue
            configs.add((str(row.aggregation), str(row.selection)))
            bon = model.predict(
                method="best_of_n",
                n=int(row.n),
                verifier=str(prm),
                aggregation=str(row.aggregation),
                selection=str(row.selection),
                interval=False,
                sims=SIMS,
            )["accuracy"]
            diffs.append(float(_clip_logit(row.accuracy) - _clip_logit(bon)))
            ns.append(int(row.n))
        if diffs:
            out.append(
                {
                    "method": str(method),
                    "prm": str(prm),
                    **tree_fit(diffs, ns),
                    "cells": len(diffs),
                    "n_measured": sorted(set(ns)),
                    "measured": [list(c) for c in sorted(configs)],  # (aggregation, selection) it holds for
                }
            )
    return out


TREE_CENTER = 3.0  # log2 N at which a tree correction's shift is stated (N = 8)


def tree_fit(diffs, ns) -> dict:
    """shift (at N = 8), slope (logit per doubling of N) and spread of a tree method's logit
    differences against Best-of-N. A tree search gains on Best-of-N by an amount that changes
    with N (Gemma-3-270m's beam: +0.23, +0.59, +0.77 at N = 4, 8, 16), so with three or more cells
    at two or more N the shift is a least-squares line in log2 N and the spread its residuals'
    (two parameters fitted); else the mean, no slope, and the differences' spread."""
    d, x = np.asarray(diffs, dtype=float), np.log2(np.asarray(ns, dtype=float)) - TREE_CENTER
    if len(d) >= 3 and np.ptp(x) > 0:
        slope = float(np.sum((x - x.mean()) * (d - d.mean())) / np.sum((x - x.mean()) ** 2))
        shift = float(d.mean() - slope * x.mean())
        spread = float(np.sqrt(np.sum((d - shift - slope * x) ** 2) / (len(d) - 2)))
        return {"shift": shift, "slope": slope, "spread": spread}
    spread = float(np.std(d, ddof=1)) if len(d) > 1 else abs(float(d[0]))
    return {"shift": float(d.mean()), "slope": 0.0, "spread": spread}


def tree_shift(corr: dict, n) -> np.ndarray:
    """A tree correction's logit shift at N (an array shaped like n): its line in log2 N within
    the N its cells were measured at, held at the nearest of them outside (a correction without
    a slope, as older model files hold: constant)."""
    lo, hi = np.log2(min(corr["n_measured"])), np.log2(max(corr["n_measured"]))
    x = np.clip(np.log2(np.asarray(n, dtype=float)), lo, hi) - TREE_CENTER
    return corr["shift"] + corr.get("slope", 0.0) * x


def fit_set(s: SampleSet, records: pd.DataFrame, n_boot: int = N_BOOT, seed: int = 0, ns=TABLE_N) -> dict:
    """One sample set's entry: the fitted model, its table and its tree corrections."""
    return _finish(*_start_set(s, records, n_boot, seed, ns, None))


def _start_set(s: SampleSet, records: pd.DataFrame, n_boot: int, seed: int, ns, pool) -> tuple:
    """Fit the set's model, hand its table's curves to the pool (when given), and fit its tree
    corrections meanwhile; _finish collects the entry."""
    started = time.perf_counter()
    frame = s.frame
    bins = "difficulty" if frame["difficulty"].notna().all() else None
    keep = ["problem_id", "correct", "answer", *(["difficulty"] if bins else [])]
    keep += [c for c in frame.columns if isinstance(c, str) and c.startswith(SCORE_PREFIX)]
    try:
        model = ProblemModel.fit(frame[keep], bins=bins, n_boot=n_boot, seed=seed)
    except UserError as exc:
        raise UserError(f"samples: {s.source}: {str(exc).removeprefix('samples: ')}") from None
    done = []  # when this set's work ended: its last curve in the pool, or its own steps here
    if pool is None:
        table = tabulate(model, ns)
    else:
        table = [pool.submit(_curve_rows, model, ns, task) for task in _curves_and_bins(model)]
        for part in table:
            part.add_done_callback(lambda _: done.append(time.perf_counter()))
    entry = {
        "policy": s.policy,
        "dataset": s.dataset,
        "source": s.source,
        "problems": int(frame["problem_id"].nunique()),
        "samples_per_problem": s.samples_per_problem,
        "model": model.to_dict(),
        "table": table,
        "tree": tree_corrections(model, tree_cells(records, s.policy, s.dataset)),
        "stopping": measured_stops(records, s.policy, s.dataset),
        "cot": cot_cells(records, s.policy, s.dataset, frame["problem_id"].unique()),
    }
    done.append(time.perf_counter())
    return entry, started, done


def _finish(entry: dict, started: float, done: list[float]) -> dict:
    if entry["table"] and not isinstance(entry["table"][0], list):  # the pool's curves
        entry["table"] = [row for part in entry["table"] for row in part.result()]
    # from its start until its own work ended (not until collected: the main process may have
    # had other work meanwhile)
    entry["fit_seconds"] = round(max(done) - started, 2)
    optional = [k for k in ("stopping", "cot") if entry[k]]
    keys = (*list(entry)[:6], "table", "tree", *optional, "fit_seconds")
    return {k: entry[k] for k in keys}  # no "stopping" / "cot" key without such rows: documents as before


def fit_scaling(
    dirs: list[Path],
    records: pd.DataFrame,
    n_boot: int = N_BOOT,
    ns=TABLE_N,
    workers: int | None = None,
    *,
    meanwhile: Callable[[], None] | None = None,
) -> dict:
    """The scaling document of every sample set in the profile folders (records: their records,
    with a `profile` column as load_profiles gives). workers: processes that compute the tables
    (default: the usable cores, at most MAX_WORKERS; 1: none); the document is the same for any
    number (every curve is seeded on its own). meanwhile: other work for the main process, called
    once the transfer part is fitted, while the pool still computes the tables."""
    from threadpoolctl import threadpool_limits

    from planner.predict.transfer import fit_transfer

    with threadpool_limits(limits=1):  # L-BFGS on a shared 2-core machine: one BLAS thread
        with _pool(workers) as pool:
            started = _start_all(dirs, records, n_boot, ns, pool)
            keys = [(e["policy"], e["dataset"]) for e, *_ in started]
            if len(set(keys)) != len(keys):
                dup = next(k for k in keys if keys.count(k) > 1)
                raise UserError(f"profiles: two sample sets for policy {dup[0]} on {dup[1]}; keep one")
            # the transfer part reads the sets' models and tree corrections, not their tables:
            # fitted while the pool still computes the tables
            transfer = fit_transfer([e for e, *_ in started], records)
            if meanwhile is not None:
                meanwhile()
            entries = [_finish(*one) for one in started]
    return {
        "format": DOC_FORMAT,
        "version": DOC_VERSION,
        "n_boot": n_boot,
        "table_n": [int(n) for n in ns],
        "vote_n_max": VOTE_N_MAX,
        "sets": entries,
        "transfer": transfer,  # policies without samples
    }


MAX_WORKERS = 8


@contextlib.contextmanager
def _pool(workers: int | None):
    """A process pool for the tables' curves, or None for one process. Forked where the system
    can (the workers start at once and run NumPy/SciPy only)."""
    if workers is None:
        workers = min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1, MAX_WORKERS)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise UserError(f"workers must be a whole number >= 1, got {workers!r}")
    if workers == 1:
        yield None
        return
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method)) as pool:
        yield pool


def _start_all(dirs: list[Path], records: pd.DataFrame, n_boot: int, ns, pool=None) -> list[tuple]:
    """_start_set of every sample set of the profile folders."""
    started = []
    for folder in dirs:
        folder = Path(folder)
        mine = records[records["profile"] == folder.name] if "profile" in records else records
        for s in profile_sample_sets(folder, mine):
            started.append(_start_set(s, mine, n_boot, 0, ns, pool))
    return started


def check_doc(doc: object, where: str) -> dict:
    if not isinstance(doc, dict) or doc.get("format") != DOC_FORMAT or doc.get("version") != DOC_VERSION:
        raise UserError(f"{where}: not a {DOC_FORMAT} document of version {DOC_VERSION}")
    return doc


def apply_tree(bon: tuple[float, float, float], corr: dict, n: int) -> tuple[float, float, float]:
    """A tree method's (accuracy, low, high) at N from Best-of-N's at the same N and its correction."""
    acc, low, high = (float(_clip_logit(x)) for x in bon)
    shift, spread = float(tree_shift(corr, n)), corr["spread"]
    if not math.isfinite(low):
        low, high = acc, acc
    return float(expit(acc + shift)), float(expit(low + shift - spread)), float(expit(high + shift + spread))
