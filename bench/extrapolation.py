"""How well the per-problem scaling model (planner.predict.scaling) extrapolates from K to N samples.

Per source: fit on K samples of every problem, predict N > K, and compare with the exact replay
(calibration.replay: mean over all N-subsets) of every recorded sample. Two ways to pick the K:

  first K    the first K samples in recorded order (the issue's measurement: what a calibration
             that stopped after K samples would have seen)
  random K   K samples per problem drawn at random, DRAWS seeded draws; a cell's error is the
             mean over draws of its absolute error. This isolates the model's error from the
             order of the samples.

The naive baseline says "accuracy at N is accuracy at K": the replay at N = K of the same K
samples (first or drawn).

What part of an error no model fitted on K samples can remove (diagnostic columns):

  all-sample fit     the model fitted on every recorded sample, predicting N: its error is the
                     model form's (the data are then as good as they get)
  replay noise       the measured figure is itself a draw: its sd over BOOT resamplings of each
                     problem's recorded samples (majority and Best-of-N max; the exact weighted-vote
                     replay is too slow to repeat). A perfect prediction of the expected accuracy
                     still misses a normal draw of this sd by 0.8 sd on average
  draw noise at K    |accuracy at K of the K fitted samples - accuracy at K of all samples|: how far
                     the fitted samples alone are from the source before any extrapolation

  cpu_* profiles    K = 4 of 16 (math500: of 8); majority and Best-of-N for every verifier,
                    aggregation and selection (max, weighted vote); N = 8, 16
  Qwen2.5-Math      K = 2 of 8 samples with an outcome-RM score; N = 8
  art_of_tts        K = 4 of 8 samples, majority only (no scores); N = 8

Best-of-N max in the replay drops unanswered samples first (as the model does). Errors are in
accuracy points (0-100), averaged over problems.

The first K samples are not always a fair draw of the rest: in art_of_tts each sample index is a
different prompt prefix (Qwen3-235B on AIME 2024 leaves 60-80% unanswered with prefixes 0-3, 10%
with 4-5), and smollm2's first 4 samples hold 1.0% correct against 2.3% over all 16. The table's
"naive (acc@K of all samples)" and "pass@1 first K minus all" columns show how much of an error
comes from the fitted samples themselves rather than from the model.

    PYTHONPATH=. python bench/extrapolation.py     # writes results/extrapolation.json and .md
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from calibration.replay import (  # noqa: E402
    best_of_n_expectation,
    majority_expectation,
    weighted_vote_expectation,
)
from calibration.samples import SHARED_PUBLISHED, art_samples, profile_samples, qwen_math_samples  # noqa: E402
from planner.predict.scaling import ProblemModel  # noqa: E402

OUT = ROOT / "bench" / "results" / "extrapolation.json"
N_BOOT = 10
BOOT = 20  # resamplings of the recorded samples for the replay noise
DRAWS = 3  # random draws of K samples per problem, per source
SEED = 0


def replay(df: pd.DataFrame, method: str, n: int, score: str | None, selection: str | None) -> float:
    """Exact expected accuracy at N = n over every recorded sample, averaged over problems."""
    accs = []
    for _, g in df.groupby("problem_id", sort=True):
        keys = [
            None if a is None or (isinstance(a, float) and math.isnan(a)) or a == "" else a
            for a in g["answer"]
        ]
        ok = g["correct"].to_numpy(dtype=float)
        table = {}
        for a, c in zip(keys, ok, strict=False):
            if a is not None:
                table[a] = max(table.get(a, 0.0), c)
        if method == "majority":
            accs.append(majority_expectation(keys, table, n))
        elif selection == "max":
            s = g[score].to_numpy(dtype=float).copy()
            answered = np.array([a is not None for a in keys])
            s[~answered] = s.min() - 1.0  # unanswered are dropped: only picked when nothing is answered
            accs.append(best_of_n_expectation(s, ok * answered, n))
        else:
            accs.append(weighted_vote_expectation(keys, g[score].to_numpy(dtype=float), table, n))
    return 100.0 * float(np.mean(accs))


def replay_sd(df: pd.DataFrame, method: str, n: int, score: str | None, selection: str | None) -> float:
    """Sd of the replayed accuracy over BOOT resamplings (with replacement) of each problem's
    recorded samples: how much the measured figure moves with the draw of samples. NaN for the
    weighted vote (its exact replay is too slow to repeat)."""
    if method == "best_of_n" and selection == "vote":
        return math.nan
    rng = np.random.default_rng([SEED, n])
    groups = [g for _, g in df.groupby("problem_id", sort=True)]
    draws = [
        replay(
            pd.concat([g.iloc[rng.integers(0, len(g), len(g))] for g in groups]), method, n, score, selection
        )
        for _ in range(BOOT)
    ]
    return float(np.std(draws, ddof=1))


def _cells(df: pd.DataFrame, with_scores: bool) -> list[tuple]:
    """(method, score column, verifier, aggregation, selection) of every cell of a source."""
    cells = [("majority", None, None, None, None)]
    if with_scores:
        for col in [c for c in df.columns if c.startswith("score:")]:
            verifier, agg = col[len("score:") :].rsplit(":", 1)
            cells += [("best_of_n", col, verifier, agg, sel) for sel in ("max", "vote")]
    return cells


def first_k(df: pd.DataFrame, k: int) -> pd.DataFrame:
    """The first k samples of every problem in recorded order (what a calibration with K = k sees)."""
    return df[df["sample"] < k] if "sample" in df else df.groupby("problem_id").head(k)


def random_k(df: pd.DataFrame, k: int, seed: int) -> pd.DataFrame:
    """k samples of every problem drawn at random (seeded): a fair draw whatever the order."""
    rng = np.random.default_rng([SEED, seed])
    shuffled = df.assign(_r=rng.random(len(df))).sort_values(["problem_id", "_r"])
    return shuffled.groupby("problem_id").head(k).drop(columns="_r").sort_values(["problem_id", "sample"])


def evaluate(label: str, df: pd.DataFrame, k: int, ns: list[int], with_scores: bool = True) -> list[dict]:
    """Cells (method x verifier x aggregation x selection x N) of one source, fitted on the first K
    samples (draw None) and on DRAWS random draws of K samples per problem (draw 0, 1, ...)."""
    df = df.sort_values(["problem_id", "sample"])
    cells = _cells(df, with_scores)
    truth = {
        cell: {n: replay(df, cell[0], n, cell[1], cell[4]) for n in [k, *ns]} for cell in cells
    }  # n = k: the naive baseline from all samples
    noise = {cell: {n: replay_sd(df, cell[0], n, cell[1], cell[4]) for n in ns} for cell in cells}
    everything = ProblemModel.fit(df, n_boot=0, seed=0)
    rows = []
    for draw in [None, *range(DRAWS)]:
        fitted = first_k(df, k) if draw is None else random_k(df, k, draw)
        started = time.time()
        model = ProblemModel.fit(fitted, n_boot=N_BOOT, seed=0)
        fit_s = time.time() - started
        for method, col, verifier, agg, sel in cells:
            naive = replay(fitted, method, k, col, sel)
            for n in ns:
                kw = dict(method=method, n=n, verifier=verifier, aggregation=agg, selection=sel)
                pred = model.predict(**kw)
                from_all = everything.predict(interval=False, **kw)["accuracy"]
                rows.append(
                    {
                        "source": label,
                        "draw": draw,
                        "method": method,
                        "verifier": verifier,
                        "aggregation": agg,
                        "selection": sel or "vote",
                        "k": k,
                        "n": n,
                        "measured": truth[(method, col, verifier, agg, sel)][n],
                        "predicted": 100 * pred["accuracy"],
                        "low": 100 * pred["low"],
                        "high": 100 * pred["high"],
                        "naive": naive,
                        "naive_all": truth[(method, col, verifier, agg, sel)][k],
                        "predicted_all": 100 * from_all,
                        "replay_sd": noise[(method, col, verifier, agg, sel)][n],
                        "fit_s": fit_s,
                        "pass1_fit": 100 * float(fitted["correct"].mean()),
                        "pass1_all": 100 * float(df["correct"].mean()),
                    }
                )
    return rows


def summary(rows: list[dict]) -> dict:
    """Errors in points; with several random draws of one cell, its error is the mean over draws
    of the absolute error (what one random calibration of K samples gets wrong on average)."""
    per_cell: dict[tuple, list[dict]] = {}
    for r in rows:
        key = (r["source"], r["method"], r["verifier"], r["aggregation"], r["selection"], r["n"])
        per_cell.setdefault(key, []).append(r)

    def cell_errors(field: str) -> np.ndarray:
        return np.array([np.mean([abs(r[field] - r["measured"]) for r in rs]) for rs in per_cell.values()])

    err = cell_errors("predicted")
    noise = np.array([rs[0]["replay_sd"] for rs in per_cell.values()])
    drawn = np.array([np.mean([abs(r["naive"] - r["naive_all"]) for r in rs]) for rs in per_cell.values()])
    naive = cell_errors("naive")
    bias = np.mean([r["predicted"] - r["measured"] for r in rows])
    inside = [r["low"] <= r["measured"] <= r["high"] for r in rows if not math.isnan(r["low"])]
    return {
        "cells": len(per_cell),
        "fits": len({(r["source"], r["draw"]) for r in rows}),
        "mae": float(err.mean()),
        "max": float(err.max()),
        "bias": float(bias),
        "naive_mae": float(naive.mean()),
        "naive_max": float(naive.max()),
        "naive_all_mae": float(cell_errors("naive_all").mean()),
        "all_fit_mae": float(cell_errors("predicted_all").mean()),
        "all_fit_max": float(cell_errors("predicted_all").max()),
        "replay_sd": float(np.nanmean(noise)) if np.isfinite(noise).any() else math.nan,
        "draw_noise": float(drawn.mean()),
        "coverage": float(np.mean(inside)) if inside else math.nan,
        "pass1_gap": float(np.mean([r["pass1_fit"] - r["pass1_all"] for r in rows])),
    }


def main() -> None:
    rows: list[dict] = []
    for folder in sorted((ROOT / "profiles").glob("cpu_*")):
        df = profile_samples(folder)
        big_k = int(df.groupby("problem_id").size().min())
        rows += evaluate(folder.name, df, 4, [n for n in (8, 16) if n <= big_k])
        print(f"done {folder.name}", file=sys.stderr)
    rows += evaluate("qwen25math_math100 (K=2)", qwen_math_samples(), 2, [8])
    for path in sorted((SHARED_PUBLISHED / "art_of_tts").glob("vanilla__*.csv.gz")):
        df = art_samples(path)
        if df.groupby("problem_id").size().min() < 8:
            continue  # math500 has 4 samples per problem
        rows += evaluate("art_of_tts/" + path.name.removesuffix(".csv.gz"), df, 4, [8], with_scores=False)
    print("done published", file=sys.stderr)

    table = {}
    for kind, pick in (
        ("first K", lambda r: r["draw"] is None),
        ("random K", lambda r: r["draw"] is not None),
    ):
        groups: dict[str, list[dict]] = {}
        for r in filter(pick, rows):
            art = r["source"].startswith("art_of_tts/")
            groups.setdefault("art_of_tts (32 sets, majority)" if art else r["source"], []).append(r)
        groups["all"] = [r for r in rows if pick(r)]
        table[kind] = {key: summary(rs) for key, rs in groups.items()}
    print(markdown(table))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"summary": table, "cells": rows}, indent=1, allow_nan=True) + "\n")
    worst = max(
        (k for k in table["random K"] if k != "all" and not k.startswith("art_of_tts")),
        key=lambda k: table["random K"][k]["mae"],
    )
    OUT.with_suffix(".md").write_text(markdown(table) + "\n\n" + cell_table(rows, worst) + "\n")


def markdown(table: dict) -> str:
    lines = [
        "| fitted on | source | cells | MAE | max | bias | naive MAE | naive max "
        "| naive (acc@K of all samples) MAE | 80% interval coverage | pass@1 fitted minus all "
        "| all-sample fit MAE / max | replay noise sd | draw noise at K |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for kind, by in table.items():
        for key, s in by.items():
            lines.append(
                f"| {kind} | {key} | {s['cells']} | {s['mae']:.2f} | {s['max']:.2f} | {s['bias']:+.2f} "
                f"| {s['naive_mae']:.2f} | {s['naive_max']:.2f} | {s['naive_all_mae']:.2f} "
                f"| {s['coverage']:.2f} | {s['pass1_gap']:+.2f} "
                f"| {s['all_fit_mae']:.2f} / {s['all_fit_max']:.2f} | {s['replay_sd']:.2f} | {s['draw_noise']:.2f} |"
            )
    return "\n".join(lines)


def cell_table(rows: list[dict], source: str) -> str:
    """Every cell of one source: measured, the fits' predictions and the noise beside them."""
    lines = [
        f"Cells of {source} (points). random K: mean over the draws of the prediction and of its "
        "absolute error; all: the model fitted on every recorded sample.",
        "",
        "| method | verifier | aggregation | selection | N | measured | replay noise sd | all | first K "
        "| random K | random K abs error | naive abs error (random K) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    keyed: dict[tuple, list[dict]] = {}
    for r in rows:
        if r["source"] == source:
            keyed.setdefault(
                (r["method"], r["verifier"], r["aggregation"], r["selection"], r["n"]), []
            ).append(r)
    for (method, verifier, agg, sel, n), rs in keyed.items():
        first = [r for r in rs if r["draw"] is None][0]
        drawn = [r for r in rs if r["draw"] is not None]
        lines.append(
            f"| {method} | {verifier or ''} | {agg or ''} | {sel} | {n} | {first['measured']:.1f} "
            f"| {first['replay_sd']:.1f} | {first['predicted_all']:.1f} | {first['predicted']:.1f} "
            f"| {np.mean([r['predicted'] for r in drawn]):.1f} "
            f"| {np.mean([abs(r['predicted'] - r['measured']) for r in drawn]):.1f} "
            f"| {np.mean([abs(r['naive'] - r['measured']) for r in drawn]):.1f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
