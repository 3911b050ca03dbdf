"""What the planner recommends for each measured model, next to the measured best cell.

For each profile folder (as `ttsplan calibrate` writes them: one record per problem per
configuration cell) and each (dataset, policy) in it, for each difficulty bin (all, easy,
medium, hard) and each N budget: the planner's choice (`planner.plan.search.plan` over the PRMs,
methods, N values and beam width the profile measured), its predicted accuracy, its measured
accuracy on the bin's problems, and the best measured cell with n <= N in that bin.

`plan()` enumerates every aggregation and selection; where its choice was not measured (say
"prod" when the profile has last/min/mean) the table says so and names the planner's
highest-ranked candidate that was measured, with that cell's accuracy.

    .venv/bin/python bench/recommendations.py --profiles profiles/cpu_arith_* profiles/cpu_math500_qwen \\
        --budgets-n 1,4,16 --out bench/results/recommendations

Writes OUT.json (every row) and OUT.md (a table per policy), and prints the markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import fields
from pathlib import Path

import numpy as np
import pandas as pd

from planner.core import checks
from planner.core.errors import UserError
from planner.core.profiles import static_rows
from planner.core.vocab import METHODS, TREE_METHODS
from planner.models import specs
from planner.plan.search import PlanRequest
from planner.predict.features import NO_MODEL

BINS = ("all", "easy", "medium", "hard")
CELL = ("policy", "prm", "method", "aggregation", "selection", "n", "beam_width")
DEFAULT_BUDGETS = (1, 4, 16)
NEAR_POINTS = 0.5  # "matches the best" when within half an accuracy point


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one-line UserErrors (exit 2 through main)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UserError(message)


def parse_budgets(text: str) -> list[int]:
    """Budgets "1,4,16" -> [1, 4, 16]: positive whole numbers, else UserError naming --budgets-n."""
    out = []
    for part in str(text).split(","):
        part = part.strip()
        if not part.isdigit() or int(part) < 1:
            raise UserError(f"--budgets-n must be positive whole numbers separated by commas, got {text!r}")
        out.append(int(part))
    return sorted(set(out))


def out_paths(out: Path) -> tuple[Path, Path]:
    """(OUT.json, OUT.md); a given .json or .md suffix is dropped first."""
    out = Path(out)
    if out.suffix in (".json", ".md"):
        out = out.with_suffix("")
    if out.name in ("", ".", ".."):
        raise UserError(f"--out must name a file stem, got {str(out)!r}")
    return out.parent / f"{out.name}.json", out.parent / f"{out.name}.md"


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------- measured cells


def _width(value: object) -> int:
    """A beam width as an int key; -1 for methods without a beam (NA in records, None in plans)."""
    return -1 if value is None or pd.isna(value) else int(value)


def cell_key(rec: dict) -> tuple:
    return (*(str(rec[k]) for k in CELL[:5]), int(rec["n"]), _width(rec["beam_width"]))


def bin_rows(records: pd.DataFrame, difficulty: str) -> pd.DataFrame:
    """The records of one bin; "all" is every per-problem row (or the rows marked "all", if any)."""
    if difficulty != "all":
        return records[records["difficulty"] == difficulty]
    marked = records["difficulty"] == "all"
    return records[marked] if marked.any() else records


def measured_cells(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per cell: accuracy (mean over problems, weighted by n_problems), problems and
    mean FLOPs per problem. Index: the cell key."""
    frame = rows.assign(
        key=[cell_key(r) for r in rows[list(CELL)].to_dict("records")],
        weighted=rows["accuracy"] * rows["n_problems"],
        weighted_flops=rows["flops"] * rows["n_problems"],
    )
    grouped = frame.groupby("key", sort=True)
    problems = grouped["n_problems"].sum()
    return pd.DataFrame(
        {
            "accuracy": grouped["weighted"].sum() / problems,
            "problems": problems,
            "flops": grouped["weighted_flops"].sum() / problems,
        }
    )


def best_cell(cells: pd.DataFrame, budget_n: int, problems: int) -> tuple[tuple | None, int]:
    """(key of the best measured cell with n <= budget_n, how many cells tie with it).

    Only cells measured on every problem of the bin compete. Ties: smaller n, then the simpler
    method (cot, majority, best_of_n, beam, dvts), then fewer FLOPs, then the key's order."""
    keys = list(cells.index)
    ok = [i for i, k in enumerate(keys) if k[5] <= budget_n and cells["problems"].iat[i] >= problems]
    if not ok:
        return None, 0
    acc = cells["accuracy"].to_numpy()
    flops = np.nan_to_num(cells["flops"].to_numpy(), nan=np.inf)
    top = max(acc[i] for i in ok)
    tied = [i for i in ok if acc[i] >= top - 1e-12]
    order = {m: j for j, m in enumerate(METHODS)}
    best = min(tied, key=lambda i: (keys[i][5], order.get(keys[i][2], len(order)), flops[i], keys[i]))
    return keys[best], len(tied)


# ---------------------------------------------------------------- planner


def _spec(name: str, meta: dict) -> str | specs.ModelSpec:
    """The name when the registry knows it, else a spec built from profile.json's models."""
    try:
        specs.resolve(name)
        return name
    except UserError:
        entry = (meta.get("models") or {}).get(name)
        if not isinstance(entry, dict):
            raise UserError(f"model {name!r} is neither in the registry nor in profile.json") from None
        known = {f.name for f in fields(specs.ModelSpec)}
        return specs.ModelSpec(**{k: v for k, v in entry.items() if k in known})


def _spec_name(model: str | specs.ModelSpec) -> str:
    return model.name if isinstance(model, specs.ModelSpec) else specs.resolve(model).name


def ranked_plan(model, policy, prms, budget_n, dataset, difficulty, methods, n_values, widths) -> list[dict]:
    """Every candidate within the budget, as plan() ranks them (planner.plan.search.rank_value:
    out-of-range or extrapolated candidates by their lower bound when some are trusted; cheaper
    on ties); one plan() call per beam width when the profile measured several, merged and
    ranked again by the same rule."""
    from planner.plan.search import Budget, plan, rank_value

    found: dict[tuple, dict] = {}
    for i, width in enumerate(widths):
        allowed = list(methods) if i == 0 else [m for m in methods if m in TREE_METHODS]
        if not allowed:
            continue
        result = plan(
            model,
            PlanRequest(
                policies=[policy],
                budget=Budget("n", budget_n),
                prms=prms,
                dataset=dataset,
                difficulty=None if difficulty == "all" else difficulty,
                beam_width=width,
                methods=allowed,
                n_values=n_values,
            ),
            top=checks.MAX_TOP,
        )
        assert result.within_budget <= checks.MAX_TOP + 1, "more candidates than plan lists"
        for rec in [result.best, *result.alternatives]:
            found.setdefault(cell_key(rec), rec)
    records = list(found.values())
    frame = pd.DataFrame(records)
    frame["accuracy_low"] = [r["accuracy_interval"][0] for r in records]
    value, _ = rank_value(frame)
    order = sorted(range(len(records)), key=lambda i: (-value[i], records[i]["flops_per_problem"]))
    return [records[i] for i in order]


# ---------------------------------------------------------------- one (dataset, policy)


def config_text(key: tuple | dict | None, show_prm: bool) -> str:
    """Compact cell: "cot", "majority n=4", "beam n=4 w=2 last/max", "+ PRM" when several."""
    if key is None:
        return "-"
    if isinstance(key, dict):
        key = cell_key(key)
    _, prm, method, agg, sel, n, width = key
    if method == "cot":
        return "cot"
    text = f"{method} n={n}"
    if width > 0:
        text += f" w={width}"
    if agg != "none":
        text += f" {agg}/{sel}"
    if show_prm and prm != NO_MODEL:
        text += f" ({prm.rsplit('/', 1)[-1]})"
    return text


def group_rows(model, records: pd.DataFrame, meta: dict, profile: str, budgets: list[int]) -> list[dict]:
    """The rows of one (dataset, policy): one per difficulty bin with problems and N budget."""
    records = static_rows(records)  # fixed-N measured rows: not early-stopping or extrapolated ones
    records = records[records["method"].isin(METHODS) & (records["prm"] != "unstated")]
    records = records[(records["aggregation"] != "unstated") & records["n"].notna()]
    if records.empty:
        return []
    dataset, policy = records["dataset"].iat[0], records["policy"].iat[0]
    prm_names = sorted(set(records["prm"]) - {NO_MODEL})
    methods = [m for m in METHODS if m in set(records["method"])]
    n_values = sorted({int(n) for n in records["n"].dropna()})
    widths = sorted({int(w) for w in records["beam_width"].dropna()}) or [4]
    policy_model = _spec(policy, meta)
    prm_models = [_spec(p, meta) for p in prm_names]
    # plan() answers with registry names; the records may spell them otherwise.
    rename = {_spec_name(policy_model): policy, NO_MODEL: NO_MODEL}
    rename.update({_spec_name(m): p for m, p in zip(prm_models, prm_names, strict=True)})
    base = {"profile": profile, "dataset": dataset, "policy": policy, "prms": prm_names}
    rows = []
    for difficulty in BINS:
        in_bin = bin_rows(records, difficulty)
        if in_bin.empty:
            continue
        cells = measured_cells(in_bin)
        problems = int(cells["problems"].max())
        for budget_n in budgets:
            row = {**base, "difficulty": difficulty, "budget_n": budget_n, "problems": problems}
            best, ties = best_cell(cells, budget_n, problems)
            row["best"] = _cell_dict(best)
            row["best_accuracy"] = None if best is None else float(cells.at[best, "accuracy"])
            row["best_ties"] = ties
            try:
                ranked = ranked_plan(
                    model,
                    policy_model,
                    prm_models or [NO_MODEL],
                    budget_n,
                    dataset,
                    difficulty,
                    methods,
                    n_values,
                    widths,
                )
            except UserError as exc:
                row.update(choice=None, error=str(exc))
                rows.append(row)
                continue
            for rec in ranked:
                rec["policy"], rec["prm"] = (
                    rename.get(rec["policy"], rec["policy"]),
                    rename.get(rec["prm"], rec["prm"]),
                )
            choice = ranked[0]
            measured = [r for r in ranked if cell_key(r) in cells.index]
            first = measured[0] if measured else None
            row["choice"] = choice
            row["choice_measured"] = cell_key(choice) in cells.index
            row["choice_accuracy"] = _accuracy(cells, choice)
            row["choice_problems"] = _problems(cells, choice)
            row["measured_choice"] = first  # the planner's highest-ranked measured candidate
            row["measured_choice_rank"] = None if first is None else ranked.index(first) + 1
            row["measured_choice_accuracy"] = _accuracy(cells, first)
            if first is not None and row["best_accuracy"] is not None:
                row["gap_points"] = 100 * (row["best_accuracy"] - row["measured_choice_accuracy"])
            rows.append(row)
    return rows


def _cell_dict(key: tuple | None) -> dict | None:
    if key is None:
        return None
    out = dict(zip(CELL, key, strict=True))
    out["beam_width"] = None if out["beam_width"] < 0 else out["beam_width"]
    return out


def _accuracy(cells: pd.DataFrame, rec: dict | None) -> float | None:
    if rec is None or cell_key(rec) not in cells.index:
        return None
    return float(cells.at[cell_key(rec), "accuracy"])


def _problems(cells: pd.DataFrame, rec: dict) -> int | None:
    key = cell_key(rec)
    return int(cells.at[key, "problems"]) if key in cells.index else None


# ---------------------------------------------------------------- output


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def markdown(rows: list[dict]) -> str:
    """One table per (profile, dataset, policy)."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["profile"], row["dataset"], row["policy"]), []).append(row)
    parts = []
    for (profile, dataset, policy), items in groups.items():
        prms = items[0]["prms"]
        show_prm = len(prms) > 1
        parts.append(
            f"### {policy.rsplit('/', 1)[-1]} on {dataset} (profile {profile}; "
            f"verifiers: {', '.join(prms) or 'none'})\n"
        )
        parts.append(
            "| difficulty | budget N | planner's choice | predicted % [interval] | measured % of that "
            "choice | best measured cell | its % | problems |"
        )
        parts.append("|---|---:|---|---:|---:|---|---:|---:|")
        for row in items:
            parts.append("| " + " | ".join(_cells(row, show_prm)) + " |")
        parts.append("\n" + _summary(items) + "\n")
    return "\n".join(parts)


def _cells(row: dict, show_prm: bool) -> list[str]:
    best = config_text(row["best"] and cell_key(row["best"]), show_prm)
    if row["best"] is not None and row["best_ties"] > 1:
        best += f" (+{row['best_ties'] - 1} tied)"
    head = [row["difficulty"], str(row["budget_n"])]
    tail = [best, _pct(row["best_accuracy"]), str(row["problems"])]
    choice = row.get("choice")
    if choice is None:
        return [*head, f"no plan: {row.get('error', '')}", "-", "-", *tail]
    low, high = choice["accuracy_interval"]
    predicted = f"{_pct(choice['predicted_accuracy'])} [{100 * low:.0f}-{100 * high:.0f}]"
    if row["choice_measured"]:
        measured = _pct(row["choice_accuracy"])
    elif row["measured_choice"] is None:
        measured = "not measured"
    else:
        first = row["measured_choice"]
        measured = (
            f"not measured; next measured (#{row['measured_choice_rank']}) "
            f"{config_text(first, show_prm)}: {_pct(row['measured_choice_accuracy'])}"
        )
    return [*head, config_text(choice, show_prm), predicted, measured, *tail]


def _summary(items: list[dict]) -> str:
    gaps = [r["gap_points"] for r in items if r.get("gap_points") is not None]
    unmeasured = sum(1 for r in items if r.get("choice") is not None and not r["choice_measured"])
    if not gaps:
        return "No row has both a measured planner choice and a measured best."
    near = sum(1 for g in gaps if g <= NEAR_POINTS)
    text = (
        f"The planner's choice (where not measured: its highest-ranked measured candidate) is within "
        f"{NEAR_POINTS} points of the measured best in {near} of {len(gaps)} rows; mean gap "
        f"{np.mean(gaps):.1f} points, largest {max(gaps):.1f}."
    )
    if unmeasured:
        text += f" In {unmeasured} rows the choice itself was not measured."
    return text


# ---------------------------------------------------------------- main


def build(model, dirs: list[Path], budgets: list[int]) -> list[dict]:
    from planner.core.profiles import load_profile

    rows = []
    for folder in dirs:
        profile = load_profile(folder)
        records = profile.records
        if records.empty:
            raise UserError(f"{folder}: profile holds no records")
        for (dataset, policy), group in records.groupby(["dataset", "policy"], sort=True):
            try:
                rows.extend(group_rows(model, group, profile.meta, profile.name, budgets))
            except UserError as exc:  # e.g. a published profile's model the registry lacks
                sys.stderr.write(f"note: skipped {profile.name} {dataset} {policy}: {exc}\n")
    if not rows:
        raise UserError("no (dataset, policy) in the --profiles folders could be planned")
    return rows


def main(argv: list[str] | None = None, model: object | None = None) -> int:
    """Run; returns the exit code (2 with a one-line error on stderr for bad input).
    `model` replaces the planner model file (tests)."""
    parser = _Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=Path, nargs="+", required=True, help="profile folders")
    parser.add_argument("--model", type=Path, default=None, help="planner model (default: shipped)")
    parser.add_argument("--budgets-n", default=",".join(map(str, DEFAULT_BUDGETS)), help="e.g. 1,4,16")
    parser.add_argument("--out", type=Path, required=True, help="output stem: writes OUT.json and OUT.md")
    try:
        args = parser.parse_args(argv)
        budgets = parse_budgets(args.budgets_n)
        json_path, md_path = out_paths(args.out)
        info: dict = {"path": "given object"}
        if model is None:
            from planner.predict.modelio import load_planner_model

            if args.model is not None and not args.model.is_file():
                raise UserError(f"--model file does not exist: {args.model}")
            model, info = load_planner_model(args.model)
        rows = build(model, list(args.profiles), budgets)
    except UserError as exc:
        sys.stderr.write(f"error: {str(exc).splitlines()[0] if str(exc) else 'bad input'}\n")
        return 2
    text = markdown(rows)
    obj = {"model": info, "budgets_n": budgets, "profiles": [str(p) for p in args.profiles], "rows": rows}
    write_atomic(json_path, json.dumps(obj, indent=2) + "\n")
    write_atomic(md_path, text + "\n")
    sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
