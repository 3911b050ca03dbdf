"""Commands that calibration adds to `ttsplan` (loaded through the ttsplan.commands entry point)."""

from __future__ import annotations

from pathlib import Path

import typer

from planner.errors import UserError

import_app = typer.Typer(
    name="import",
    help="Build profile folders from published tables or recorded samples.",
    no_args_is_help=True,
)


def _ks(text: str | None) -> list[int] | None:
    """'1,2,4,8' -> [1, 2, 4, 8]; None -> None (every k up to K)."""
    if text is None:
        return None
    try:
        ks = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"--ks must be whole numbers separated by commas, got {text!r}") from None
    if not ks or min(ks) < 1:
        raise UserError(f"--ks must be positive whole numbers, got {text!r}")
    return ks


def _done(path: Path, n: int) -> None:
    typer.echo(f"wrote {path} ({n} records)")


@import_app.command("published")
def published(
    name: str = typer.Argument(..., help="liu2025_tables or rlhflow_bon1024"),
    out: Path = typer.Option(..., "--out", help="profile folder to write"),
    data_dir: Path = typer.Option(
        None, "--data-dir", help="folder with the published CSVs (default: the copies shipped in calibration)"
    ),
) -> None:
    """Build a profile from published tables."""
    from calibration import importers
    from planner.profiles import write_profile

    if name not in importers.PUBLISHED:
        raise UserError(f"unknown published table set {name!r} (known: {', '.join(importers.PUBLISHED)})")
    records, meta = importers.SHIPPED[name](data_dir or importers.PUBLISHED_DIR)
    _done(write_profile(out, records, meta).path, len(records))


@import_app.command("persample")
def persample(
    file: Path = typer.Argument(
        ..., help="CSV: problem_id|idx, answer|pred, correct (0/1), score|rm_score, level, source"
    ),
    out: Path = typer.Option(..., "--out", help="profile folder to write"),
    dataset: str = typer.Option(..., "--dataset", help="dataset name, e.g. math100"),
    name: str = typer.Option(None, "--name", help="profile name (default: the folder name)"),
    policy: str = typer.Option("unstated", "--policy"),
    prm: str = typer.Option("unstated", "--prm", help="the verifier that gave the scores"),
    aggregation: str = typer.Option("last", "--aggregation", help="how the score was made from step scores"),
    ks: str = typer.Option(None, "--ks", help="N values, e.g. 1,2,4,8 (default 1..K)"),
    vote_weight: str = typer.Option(
        "score", "--vote-weight", help="score or sigmoid (for unbounded RM scores)"
    ),
    source: str = typer.Option(None, "--source", help="source note (default: the CSV's source column)"),
) -> None:
    """Replay per-sample results (one row per sampled solution) into a profile."""
    from calibration.importers import import_persample
    from planner.profiles import ALLOWED, write_profile

    if aggregation not in ALLOWED["aggregation"]:
        raise UserError(
            f"--aggregation must be one of {', '.join(ALLOWED['aggregation'])}, got {aggregation!r}"
        )
    records, meta = import_persample(
        file,
        name=name or out.name,
        dataset=dataset,
        policy=policy,
        prm=prm,
        aggregation=aggregation,
        ks=_ks(ks),
        vote_weight=vote_weight,
        source=source,
    )
    _done(write_profile(out, records, meta).path, len(records))


@import_app.command("sal")
def sal(
    file: Path = typer.Argument(
        ..., help="search-and-learn output JSONL (completions, per-step scores, answer)"
    ),
    out: Path = typer.Option(..., "--out", help="profile folder to write"),
    name: str = typer.Option(None, "--name", help="profile name (default: the folder name)"),
    dataset: str = typer.Option("math500", "--dataset"),
    policy: str = typer.Option("unstated", "--policy"),
    prm: str = typer.Option("unstated", "--prm"),
    aggregations: str = typer.Option(
        "last,min,mean,prod", "--aggregations", help="step-score aggregations to replay"
    ),
    ks: str = typer.Option(None, "--ks", help="N values, e.g. 1,2,4 (default 1..K)"),
    source: str = typer.Option(None, "--source", help="source note (default: the file name)"),
) -> None:
    """Replay a search-and-learn best-of-N output into a profile."""
    from calibration.importers import import_sal
    from planner.profiles import write_profile

    aggs = [a.strip() for a in aggregations.split(",") if a.strip()]
    records, meta = import_sal(
        file,
        name=name or out.name,
        dataset=dataset,
        policy=policy,
        prm=prm,
        aggregations=aggs,
        ks=_ks(ks),
        source=source,
    )
    _done(write_profile(out, records, meta).path, len(records))


@import_app.command("shipped")
def shipped(
    root: Path = typer.Option(
        ..., "--root", help="folder to write the shipped profiles into (the repo's profiles/)"
    ),
) -> None:
    """Rebuild every shipped profile from the copies in calibration/data/published."""
    from calibration.importers import build_shipped

    for path in build_shipped(root):
        typer.echo(f"wrote {path}")


def register(app: typer.Typer) -> None:
    """Add calibration's commands to the ttsplan app."""
    app.add_typer(import_app, name="import")
