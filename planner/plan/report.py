"""`ttsplan report`: accuracy-vs-FLOPs plots of measured cells, one PNG per (dataset, policy), and
a report.md that embeds them with the best measured cell per budget.

Each PNG has one panel per difficulty bin present (easy, medium, hard, then all), one series per
(method, PRM), the measured Pareto frontier, and the planner's choices among the measured cells at
a few budgets. matplotlib is imported only here, and only when a report is drawn.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from planner.core.errors import UserError
from planner.core.files import check_output_file, check_output_folder
from planner.core.vocab import BINS as DIFFICULTY_BINS
from planner.plan.evaluate import (
    TASK_KEYS,
    assess_cells,
    budget_levels,
    choose,
    config_label,
    measured_cells,
    oracle,
    price_cells,
    usable,
)

BINS = (*DIFFICULTY_BINS, "all")
MIN_CELLS = 2  # a (dataset, policy) needs this many priced cells to be plotted
REPORT_LEVELS = 4
REPORT_FILE = "report.md"


def figure_class():
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure
    except ImportError:
        raise UserError("report needs matplotlib: pip install 'tts-planner[calibrate]'") from None
    return Figure


def slug(text: str) -> str:
    """A file name stem: lowercase letters, digits and single dashes."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "profile"


def panel_bins(records: pd.DataFrame) -> list[str]:
    """The difficulty bins of one (dataset, policy)'s records, in BINS order; "all" always
    (given directly or pooled over the problems)."""
    present = set(records["difficulty"])
    return [b for b in BINS[:-1] if b in present] + ["all"]


def _bin_cells(records: pd.DataFrame, difficulty: str) -> pd.DataFrame:
    rows = records if difficulty == "all" else records[records["difficulty"] == difficulty]
    cells = measured_cells(rows)
    cells = price_cells(cells[usable(cells)].reset_index(drop=True))
    return cells[cells["flops"].to_numpy(dtype=float) > 0].reset_index(drop=True)


def _series(cells: pd.DataFrame):
    """(label, cells) per method and PRM."""
    for (method, prm), part in cells.groupby(["method", "prm"], sort=True):
        short = str(prm).rsplit("/", 1)[-1]
        yield (method if prm == "none" else f"{method} / {short}"), part.sort_values("flops")


def _colors(cells: pd.DataFrame) -> dict[str, str]:
    """One colour per series label, the same in every panel."""
    from matplotlib import rcParams

    cycle = rcParams["axes.prop_cycle"].by_key()["color"]
    return {label: cycle[i % len(cycle)] for i, (label, _) in enumerate(_series(cells))}


def _mark_choices(ax, choices: list) -> None:
    """Budgets as dotted lines; the planner's picks as stars labelled with their budgets."""
    labels: dict[tuple, list[str]] = {}
    for i, (budget, pick) in enumerate(choices, start=1):
        ax.axvline(budget, color="grey", linestyle=":", linewidth=0.8)
        if pick is not None:
            labels.setdefault((float(pick["flops"]), float(pick["accuracy"])), []).append(f"B{i}")
    for (x, y), names in labels.items():
        ax.scatter(
            [x],
            [y],
            marker="*",
            s=180,
            facecolor="gold",
            edgecolor="black",
            zorder=5,
            label="planner's choice at budget B",
        )
        ax.annotate(",".join(names), (x, y), textcoords="offset points", xytext=(6, -12), fontsize=8)


def _draw_panel(ax, cells: pd.DataFrame, choices: list, title: str, colors: dict) -> None:
    from matplotlib.ticker import NullFormatter

    from planner.plan.search import pareto_frontier

    for label, part in _series(cells):
        color = colors.get(label, "grey")
        best = part.groupby("flops", sort=True)["accuracy"].max()  # best aggregation per cost
        ax.plot(best.index, best.to_numpy(), marker="o", markersize=4, color=color, label=label)
        ax.scatter(part["flops"], part["accuracy"], s=10, color=color, alpha=0.5)
    front = pareto_frontier(cells, x="flops", y="accuracy")
    ax.step(
        front["flops"],
        front["accuracy"],
        where="post",
        color="black",
        linestyle="--",
        linewidth=1,
        label="measured frontier",
    )
    _mark_choices(ax, choices)
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())  # labelled minor ticks overlap on short ranges
    ax.set_xlabel("FLOPs per problem")
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)


def _panels(records: pd.DataFrame, model: object | None, budgets: np.ndarray) -> list[tuple]:
    """(bin, cells, choices) per difficulty bin with priced cells; choices: (budget, pick)."""
    out = []
    for difficulty in panel_bins(records):
        cells = _bin_cells(records, difficulty)
        if cells.empty:
            continue
        choices = []
        if model is not None:
            scored = assess_cells(model, cells, difficulty)
            choices = [(b, choose(scored, b)) for b in budgets]
        out.append((difficulty, cells, choices))
    return out


def draw_task(path: Path, title: str, panels: list[tuple]) -> None:
    """One PNG: a panel per difficulty bin."""
    figure = figure_class()(figsize=(4.5 * len(panels) + 2.5, 4), dpi=100, layout="constrained")
    axes = figure.subplots(1, len(panels), squeeze=False, sharey=True)[0]
    colors = _colors(panels[-1][1])  # the "all" panel holds every series
    for ax, (difficulty, cells, choices) in zip(axes, panels, strict=True):
        problems = int(cells["n_problems"].max())
        _draw_panel(ax, cells, choices, f"{difficulty} ({problems} problems)", colors)
    axes[0].set_ylabel("accuracy")
    handles = {}
    for ax in axes:  # one legend entry per label over all panels
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    figure.legend(handles.values(), handles.keys(), loc="outside right center", fontsize=7)
    figure.suptitle(title)
    figure.savefig(path, format="png")


def _best_table(cells: pd.DataFrame, scored: pd.DataFrame | None, budgets: np.ndarray) -> list[str]:
    lines = [
        "| budget (FLOPs) | best measured cell | accuracy | its FLOPs | planner's choice | its accuracy |",
        "|---|---|---|---|---|---|",
    ]
    for budget in budgets:
        best = oracle(cells, budget)
        pick = None if scored is None else choose(scored, budget)
        cols = [f"{budget:.3g}"]
        cols += (
            ["-", "-", "-"]
            if best is None
            else [config_label(best), f"{100 * best['accuracy']:.1f}%", f"{best['flops']:.3g}"]
        )
        cols += ["-", "-"] if pick is None else [config_label(pick), f"{100 * pick['accuracy']:.1f}%"]
        lines.append("| " + " | ".join(cols) + " |")
    return lines


def build_report(records: pd.DataFrame, folder: Path, model: object | None, note: str) -> list[str]:
    """Write the PNGs and report.md into `folder` (a fresh temp folder); returns the file names."""
    lines = ["# Test-time scaling report", "", note, ""]
    files, used, skipped = [], set(), []
    for (dataset, policy), rows in records.groupby(list(TASK_KEYS), sort=True):
        whole = _bin_cells(rows, "all")
        title = f"{dataset} / {policy}"
        if len(whole) < MIN_CELLS:
            skipped.append(f"- {title}: {len(whole)} cell(s) with FLOPs")
            continue
        budgets = budget_levels(whole["flops"], REPORT_LEVELS)
        name = slug(f"{dataset}-{policy}")
        while name in used:
            name += "-x"
        used.add(name)
        draw_task(folder / f"{name}.png", title, _panels(rows, model, budgets))
        files.append(f"{name}.png")
        scored = None if model is None else assess_cells(model, whole)
        lines += [f"## {title}", "", f"![{title}]({name}.png)", ""]
        lines += [*_best_table(whole, scored, budgets), ""]
    if not files:
        raise UserError(f"no (dataset, policy) has {MIN_CELLS} or more cells with FLOPs to plot")
    if skipped:
        lines += [f"## Not plotted (fewer than {MIN_CELLS} cells with FLOPs)", "", *skipped, ""]
    (folder / REPORT_FILE).write_text("\n".join(lines), encoding="utf-8")
    return [*files, REPORT_FILE]


def write_report(records: pd.DataFrame, out: Path, model: object | None, note: str) -> list[Path]:
    """Build the report in a temp folder, then move it into place: the whole folder at once when
    `out` is new, else file by file with os.replace (report.md last). Nothing half-written."""
    out = Path(out)
    check_output_folder(out, "out")
    fresh = not out.exists()
    tmp = Path(tempfile.mkdtemp(prefix=".report-", dir=out.parent if fresh else out))
    try:
        names = build_report(records, tmp, model, note)
        for name in names:
            os.chmod(tmp / name, 0o644)
        if fresh:
            os.chmod(tmp, 0o755)  # mkdtemp makes 0700
            os.replace(tmp, out)
        else:
            for name in names:  # only regular files are replaced
                check_output_file(out / name, "out")
            for name in names:  # report.md is last: it never points at a missing PNG
                os.replace(tmp / name, out / name)
            tmp.rmdir()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [out / name for name in names]
