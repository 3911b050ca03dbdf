"""`ttsplan evaluate` (held-out regret, efficiency gain, coverage) and `ttsplan report` (plots)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from planner.core.errors import UserError
from planner.core.files import check_output_folder
from planner.core.vocab import METHODS as FIXED


def _records(dirs: list[Path]):
    from planner.core.profiles import load_profiles

    if not dirs:
        raise UserError("no profile folders: give --profiles DIR")
    records = load_profiles(dirs)  # a missing or empty folder is a UserError naming it
    if len(records) == 0:
        raise UserError(f"profile folders hold no records: {', '.join(map(str, dirs))}")
    return records


def _budgets(values: list[str] | None) -> list[float] | None:
    from planner.plan.search import parse_budget

    if not values:
        return None
    return sorted({parse_budget(v, "--budget-flops") for v in values})


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _print_evaluation(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"held out by {result['holdout']}: planner's choice vs the best measured cell")
    for col in ("group", "task", "budget", "choice", "chosen %", "oracle %", "regret", *FIXED):
        table.add_column(
            col, overflow="fold", justify="left" if col in ("group", "task", "choice") else "right"
        )
    for group in result["groups"]:
        for task in group.get("tasks", []):
            name = f"{task['dataset']} / {task['policy'].rsplit('/', 1)[-1]}"
            for b in task["budgets"]:
                regret = "-" if b["regret_points"] is None else f"{b['regret_points']:.1f}"
                table.add_row(
                    group["group"].rsplit("/", 1)[-1],
                    name,
                    f"{b['budget_flops']:.3g}",
                    b["choice"] or "-",
                    _pct(b["chosen_accuracy"]),
                    _pct(b["oracle_accuracy"]),
                    regret,
                    *(_pct(b[f"{m}_accuracy"]) for m in FIXED),
                )
    console.print(table)
    _print_summary(console, result)


def _print_summary(console, result: dict) -> None:
    s, f = result["summary"], result["flops"]
    console.print(
        f"FLOPs: {f['measured']} cells measured, {f['cost_model']} priced with the cost model, "
        f"{f['unpriced']} left off the budget axis (no registry entry to price them)."
    )
    if s["budget_points"]:
        console.print(
            f"regret over {s['budget_points']} budget points: mean {s['mean_regret_points']:.2f}, "
            f"max {s['max_regret_points']:.2f} accuracy points"
        )
    reasons: dict[str, int] = {}
    for g in s["efficiency_gain"]:
        if g["gain"] is None:
            reasons[g["reason"]] = reasons.get(g["reason"], 0) + 1
            continue
        console.print(
            f"efficiency gain vs majority, {g['dataset']} / {g['policy']}: {g['gain']:.2f}x "
            f"(majority {g['majority_flops']:.3g} FLOPs, planner {g['planner_flops']:.3g})"
        )
    for reason, count in reasons.items():
        console.print(f"efficiency gain: none for {count} task(s): {reason}")
    for g in result["groups"]:
        if "skipped" in g:
            console.print(f"{g['group']}: skipped ({g['skipped']})")
            continue
        c = g["coverage"]
        console.print(
            f"{g['group']}: interval coverage {c['inside']}/{c['cells']} cells, "
            f"{c['out_of_range']} outside the calibrated range"
        )
    if s["coverage"] is not None:
        console.print(
            f"overall coverage {s['coverage']:.2f} of {s['cells']} held-out cells; "
            f"{s['out_of_range']} outside the calibrated range"
        )


def evaluate_command(
    profiles: list[Path] = typer.Option(
        None, "--profiles", help="Profile folder(s) (default: the shipped profiles)"
    ),
    more: list[Path] = typer.Argument(
        None, help="More profile folders (so that --profiles profiles/* works)"
    ),
    holdout: str = typer.Option("policy", "--holdout", help="Hold out each policy, prm or dataset in turn"),
    budgets: int = typer.Option(6, "--budgets", help="Budget levels per task, log-spaced over its cells"),
    budget_flops: list[str] = typer.Option(
        None, "--budget-flops", help="Explicit FLOPs budgets (repeatable) instead of --budgets levels"
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object"),
) -> None:
    """Held-out evaluation: the planner's choice among measured cells vs the best one per budget."""
    from planner.core.profiles import default_profile_dirs
    from planner.plan.evaluate import check_holdout, check_levels, evaluate

    check_holdout(holdout)
    check_levels(budgets)
    explicit = _budgets(budget_flops)
    dirs = [Path(p) for p in [*(profiles or []), *(more or [])]] or default_profile_dirs()
    result = evaluate(_records(dirs), holdout, budgets, explicit)
    if as_json:
        typer.echo(json.dumps(result))
        return
    _print_evaluation(result)


def report_command(
    profiles: list[Path] = typer.Argument(..., metavar="PROFILE_DIR...", help="Profile folder(s)"),
    out: Path = typer.Option(..., "--out", help="Folder to write the PNGs and report.md into"),
    model: Path = typer.Option(None, "--model", help="Regressor file (default: fit one on these profiles)"),
) -> None:
    """Accuracy vs FLOPs plots per (dataset, policy) and report.md."""
    from planner.plan.report import figure_class, write_report

    figure_class()  # a missing matplotlib fails before any work
    check_output_folder(out, "out")
    records = _records([Path(p) for p in profiles])
    planner_model, note = _report_model(records, model)
    written = write_report(records, out, planner_model, note)
    typer.echo("\n".join(f"wrote {p}" for p in written))


def _report_model(records, path: Path | None) -> tuple[object | None, str]:
    """(model, a line for report.md): the given file, else one fitted on the records."""
    names = ", ".join(sorted(set(records["profile"])))
    if path is not None:
        from planner.predict.modelio import load_planner_model

        model, info = load_planner_model(path)
        return (
            model,
            f"Profiles: {names}. Planner's choices (stars): model {path} (sha256 {info['sha256'][:12]}).",
        )
    from planner.predict.regressor import fit_profiles

    try:
        model, fitted = fit_profiles(records)
    except UserError as exc:
        return None, f"Profiles: {names}. Planner's choices left out: {exc}"
    return model, (
        f"Profiles: {names}. Planner's choices (stars): a model fitted on these profiles "
        f"({fitted['rows_used']} usable rows of {fitted['records']}); it has seen these cells."
    )


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate_command)
    app.command("report")(report_command)
