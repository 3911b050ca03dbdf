"""The table `ttsplan calibrate` prints at the end: accuracy and FLOPs per cell, by difficulty bin."""

from __future__ import annotations

import math

import pandas as pd

from planner.core.vocab import BINS

CELL = ["policy", "prm", "method", "aggregation", "selection", "n", "beam_width"]


def cell_table(records: pd.DataFrame) -> pd.DataFrame:
    """One row per cell: problems, accuracy overall and per bin, mean FLOPs per problem; with
    early-stopping rows, also the rule (`stop`, "" for fixed N) and the mean samples drawn."""
    df = records.copy()
    df["beam_width"] = df["beam_width"].map(lambda v: "-" if pd.isna(v) else str(int(v)))
    keys = [*CELL, *(["stop"] if "stop" in df.columns else [])]
    groups = df.groupby(keys, sort=True, dropna=False)
    out = groups.agg(problems=("accuracy", "size"), accuracy=("accuracy", "mean"), flops=("flops", "mean"))
    if "stop" in df.columns:
        out["samples_used"] = groups["samples_used"].mean()
    for b in BINS:
        out[b] = df[df["difficulty"] == b].groupby(keys, dropna=False)["accuracy"].mean()
    return out.reset_index()


def summary_json(outcome) -> dict:
    table = cell_table(outcome.records)
    bins = outcome.difficulty.groupby(["policy", "difficulty"]).size().unstack(fill_value=0)
    return {
        "profile": str(outcome.profile),
        "records": len(outcome.records),
        "wall_s": round(outcome.wall_s, 1),
        "spent_flops": outcome.spent_flops,
        "separate_flops": outcome.separate_flops,
        "saved_fraction": outcome.saved_fraction,
        "difficulty_counts": {p: {b: int(v) for b, v in row.items()} for p, row in bins.iterrows()},
        "cells": [
            {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
            for row in table.to_dict(orient="records")
        ],
    }


def _pct(v: float) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f}"


def print_summary(outcome) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"calibration: {outcome.profile}")
    cells = cell_table(outcome.records)
    stops = "stop" in cells.columns  # early-stopping rows: N is the cap
    for col in (
        "policy",
        "prm",
        "method",
        "agg",
        "sel",
        "N",
        "M",
        *(("stop", "samples") if stops else ()),
        "acc %",
        *[f"{b} %" for b in BINS],
        "FLOPs",
    ):
        table.add_column(col, justify="right" if col not in ("policy", "prm", "method") else "left")
    for r in cells.itertuples(index=False):
        table.add_row(
            str(r.policy).rsplit("/", 1)[-1],
            str(r.prm).rsplit("/", 1)[-1],
            r.method,
            str(r.aggregation),
            str(r.selection),
            str(r.n),
            str(r.beam_width),
            *(
                (r.stop or "-", "-" if math.isnan(r.samples_used) else f"{r.samples_used:.2f}")
                if stops
                else ()
            ),
            _pct(r.accuracy),
            *[_pct(getattr(r, b)) for b in BINS],
            f"{r.flops:.3g}",
        )
    console = Console()
    if not console.is_terminal:  # a log file: wide enough for every column
        console = Console(width=200)
    console.print(table)
    counts = outcome.difficulty.groupby(["policy", "difficulty"]).size().to_dict()
    console.print(
        "problems per difficulty bin: " + ", ".join(f"{p} {d}: {c}" for (p, d), c in counts.items())
    )
    console.print(
        f"compute: spent {outcome.spent_flops:.3g} FLOPs; running every cell separately would take "
        f"{outcome.separate_flops:.3g} ({100 * outcome.saved_fraction:.0f}% saved by replay)"
    )
    console.print(f"wrote {outcome.profile} ({len(outcome.records)} records) in {outcome.wall_s:.0f} s")
