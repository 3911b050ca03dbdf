"""Which shipped cells the faithful-methods and cost-function changes moved, and by how much.

Compares each measured profile's records.parquet at a base git revision with the working tree:
per cell (method, N, verifier, aggregation, selection, beam width) the mean accuracy over
problems and the mean FLOPs per problem, before and after. The README's cells come first.

    PYTHONPATH=. .venv/bin/python bench/faithful_changes.py --base 4a73677 \\
        --profiles profiles/cpu_* --out bench/results/faithful_changes

Writes OUT.json (every cell) and OUT.md.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from planner.core.profiles import static_rows

CELL = ["method", "n", "prm", "aggregation", "selection", "beam_width"]
# The cells the README's per-model tables quote: (method, N, verifier kind, aggregation, selection).
README = [
    ("cot", 1, "none", "none", "none"),
    ("majority", 16, "none", "none", "vote"),
    ("majority", 8, "none", "none", "vote"),
    ("best_of_n", 16, "arith-check", "min", "vote"),
    ("best_of_n", 16, "arith-check", "mean", "max"),
    ("best_of_n", 16, "lm-judge", "last", "max"),
    ("best_of_n", 8, "lm-judge", "last", "max"),
    ("beam", 16, "arith-check", "last", "max"),
    ("dvts", 16, "arith-check", "last", "max"),
]


def at_revision(base: str, path: Path) -> pd.DataFrame:
    blob = subprocess.run(
        ["git", "show", f"{base}:{path.as_posix()}"], capture_output=True, check=True
    ).stdout
    return pd.read_parquet(io.BytesIO(blob))


def cells(records: pd.DataFrame) -> pd.DataFrame:
    frame = static_rows(records).copy()  # fixed-N rows: early-stopping rows share their cells' keys
    frame["beam_width"] = frame["beam_width"].fillna(0).astype(int)
    return frame.groupby(CELL, dropna=False).agg(accuracy=("accuracy", "mean"), flops=("flops", "mean"))


def compare(base: str, folder: Path) -> pd.DataFrame:
    path = folder / "records.parquet"
    before, after = cells(at_revision(base, path)), cells(pd.read_parquet(path))
    both = pd.merge(before, after, on=CELL, how="outer", suffixes=("_before", "_after")).reset_index()
    both.insert(0, "profile", folder.name)
    both["accuracy_change_points"] = 100 * (both["accuracy_after"] - both["accuracy_before"])
    both["flops_ratio"] = both["flops_after"] / both["flops_before"]
    return both


def readme_rows(table: pd.DataFrame) -> pd.DataFrame:
    keep = []
    for r in table.itertuples():
        kind = "lm-judge" if str(r.prm).startswith("lm-judge") else r.prm
        if (r.method, r.n, kind, r.aggregation, r.selection) in README:
            keep.append(r.Index)
    return table.loc[keep]


def fmt(x: float, spec: str) -> str:
    return "–" if x is None or (isinstance(x, float) and np.isnan(x)) else format(x, spec)


def markdown(table: pd.DataFrame, base: str) -> str:
    lines = [
        f"# Shipped cells before ({base}) and after the faithful-methods and cost changes",
        "",
        "Accuracy: mean over the profile's problems; FLOPs: mean per problem. README cells first.",
        "",
        "| profile | method | N | verifier | agg/sel | accuracy before → after (points) | FLOPs before → after (×) |",
        "|---|---|---:|---|---|---|---|",
    ]

    def row(r) -> str:
        return (
            f"| {r.profile} | {r.method} | {r.n} | {r.prm} | {r.aggregation}/{r.selection} | "
            f"{fmt(100 * r.accuracy_before, '.1f')}% → {fmt(100 * r.accuracy_after, '.1f')}% "
            f"({fmt(r.accuracy_change_points, '+.1f')}) | {fmt(r.flops_before, '.2e')} → "
            f"{fmt(r.flops_after, '.2e')} ({fmt(r.flops_ratio, '.2f')}) |"
        )

    lines += [row(r) for r in readme_rows(table).itertuples()]
    moved = table[table["accuracy_change_points"].abs() > 1e-9]
    lines += [
        "",
        f"Cells whose accuracy moved: {len(moved)} of {len(table)}; largest moves:",
        "",
        "| profile | method | N | verifier | agg/sel | M | accuracy before → after (points) |",
        "|---|---|---:|---|---|---:|---|",
    ]
    top = moved.reindex(moved["accuracy_change_points"].abs().sort_values(ascending=False).index).head(20)
    for r in top.itertuples():
        lines.append(
            f"| {r.profile} | {r.method} | {r.n} | {r.prm} | {r.aggregation}/{r.selection} | {r.beam_width} | "
            f"{100 * r.accuracy_before:.1f}% → {100 * r.accuracy_after:.1f}% ({r.accuracy_change_points:+.1f}) |"
        )
    ratio = table.groupby(["profile", "method"])["flops_ratio"].median()
    lines += ["", "Median FLOPs after ÷ before per profile and method:", ""]
    lines += [f"- {p} {m}: {v:.3f}" for (p, m), v in ratio.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", required=True, help="git revision of the records before the changes")
    ap.add_argument("--profiles", nargs="+", required=True)
    ap.add_argument("--out", default="bench/results/faithful_changes")
    args = ap.parse_args(argv)
    folders = [Path(p) for p in args.profiles if (Path(p) / "grid.json").is_file()]
    table = pd.concat([compare(args.base, f) for f in folders], ignore_index=True)
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(table.to_dict(orient="records"), indent=1) + "\n")
    text = markdown(table, args.base)
    out.with_suffix(".md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
