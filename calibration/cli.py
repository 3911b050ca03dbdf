"""Commands that calibration adds to `ttsplan` (loaded through the ttsplan.commands entry point)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from planner.core.errors import UserError

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
    name: str = typer.Argument(..., help="liu2025_tables, rlhflow_bon1024, prm_tables_2026_11 or art_of_tts"),
    out: Path = typer.Option(..., "--out", help="profile folder to write"),
    data_dir: Path = typer.Option(
        None, "--data-dir", help="folder with the published CSVs (default: the copies shipped in calibration)"
    ),
) -> None:
    """Build a profile from published tables."""
    from calibration import importers
    from planner.core.profiles import write_profile

    if name not in importers.PUBLISHED:
        raise UserError(f"unknown published table set {name!r} (known: {', '.join(importers.PUBLISHED)})")
    parts = importers.SHIPPED[name](data_dir or importers.PUBLISHED_DIR)
    _done(write_profile(out, *parts).path, len(parts[0]))


@import_app.command("persample")
def persample(
    file: Path = typer.Argument(
        ...,
        help="CSV: problem_id|idx, answer|pred, correct (0/1), score|rm_score, level, source, policy, dataset",
    ),
    out: Path = typer.Option(..., "--out", help="profile folder to write"),
    dataset: str = typer.Option(
        None, "--dataset", help="dataset name, e.g. math100 (or a 'dataset' column in the file)"
    ),
    name: str = typer.Option(None, "--name", help="profile name (default: the folder name)"),
    policy: str = typer.Option(
        None, "--policy", help="default: a 'policy' column in the file, else unstated"
    ),
    prm: str = typer.Option("unstated", "--prm", help="the verifier that gave the scores"),
    aggregation: str = typer.Option("last", "--aggregation", help="how the score was made from step scores"),
    ks: str = typer.Option(None, "--ks", help="N values, e.g. 1,2,4,8 (default 1..K)"),
    vote_weight: str = typer.Option(
        "score", "--vote-weight", help="score or sigmoid (for unbounded RM scores)"
    ),
    source: str = typer.Option(None, "--source", help="source note (default: the CSV's source column)"),
    stop: list[str] = typer.Option(
        None,
        "--stop",
        help="also replay early stopping: beta:CONFIDENCE or esc:WINDOW, each k the cap (repeat)",
    ),
) -> None:
    """Replay per-sample results (one row per sampled solution) into a profile."""
    from calibration.importers import import_persample
    from planner.core.profiles import ALLOWED, write_profile

    if aggregation not in ALLOWED["aggregation"]:
        raise UserError(
            f"--aggregation must be one of {', '.join(ALLOWED['aggregation'])}, got {aggregation!r}"
        )
    try:
        records, meta, samples = import_persample(
            file,
            name=name or out.name,
            dataset=dataset,
            policy=policy,
            prm=prm,
            aggregation=aggregation,
            ks=_ks(ks),
            vote_weight=vote_weight,
            source=source,
            stops=_stops(stop),
        )
    except UserError as exc:  # the library names its parameters; these two are flags here
        text = str(exc)
        raise UserError(f"--{text}" if text.startswith(("dataset:", "policy:")) else text) from None
    _done(write_profile(out, records, meta, samples).path, len(records))


def _stops(texts: list[str] | None) -> list[str]:
    """--stop values, checked (one line naming the flag for a bad rule)."""
    from planner.core.stopping import parse_rule

    out = []
    for text in texts or []:
        try:
            out.append(str(parse_rule(text)))
        except UserError as exc:
            raise UserError(f"--{exc}") from None
    return out


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
    from planner.core.profiles import write_profile

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


# Grid keys whose flag is not "--" + the key with dashes.
_GRID_FLAGS = {
    "policies": "--policy",
    "verifiers": "--verifier",
    "methods": "--method",
    "beam_widths": "--beam-width",
    "aggregations": "--aggregation",
    "stops": "--stop",
}


def _flag_error(exc: UserError) -> UserError:
    """ "flags: n: must be ..." -> "--n: must be ..." (the grid checks name keys, not flags)."""
    text = str(exc)
    if not text.startswith("flags: "):
        return exc
    rest = text.removeprefix("flags: ")
    key, sep, message = rest.partition(":")
    if sep and key.isidentifier():
        return UserError(f"{_GRID_FLAGS.get(key, '--' + key.replace('_', '-'))}:{message}")
    return UserError(rest)


def calibrate_command(
    grid_file: Path = typer.Option(None, "--grid", help="grid TOML file (flags override its keys)"),
    out: Path = typer.Option(
        None, "--out", help="profile folder (default profiles/<grid name>); re-run to resume"
    ),
    policy: list[str] = typer.Option(None, "--policy", help="policy model (repeat for several)"),
    verifier: list[str] = typer.Option(
        None, "--verifier", help="lm-judge, arith-check or a PRM folder (repeat)"
    ),
    method: list[str] = typer.Option(None, "--method", help="cot, majority, best_of_n, beam, dvts (repeat)"),
    n: list[int] = typer.Option(None, "--n", help="N for majority/Best-of-N (repeat)"),
    tree_n: list[int] = typer.Option(None, "--tree-n", help="N for beam/DVTS (repeat; default: --n)"),
    beam_width: list[int] = typer.Option(None, "--beam-width", help="M for beam/DVTS (repeat)"),
    aggregation: list[str] = typer.Option(None, "--aggregation", help="Best-of-N aggregations (repeat)"),
    dataset: str = typer.Option(None, "--dataset", help="math500, aime24, amc23, gsm8k, arith[:options]"),
    limit: int = typer.Option(None, "--limit", help="first K problems"),
    stratify: int = typer.Option(None, "--stratify", help="K problems spread evenly over levels"),
    engine: str = typer.Option(None, "--engine", help="auto, vllm, transformers or openai"),
    base_url: str = typer.Option(None, "--base-url", help="with --engine openai: the server's URL"),
    api_key: str = typer.Option(None, "--api-key", help="with --engine openai: its API key"),
    seed: int = typer.Option(None, "--seed"),
    temperature: float = typer.Option(None, "--temperature"),
    max_total_tokens: int = typer.Option(None, "--max-total-tokens"),
    max_step_tokens: int = typer.Option(None, "--max-step-tokens"),
    max_steps: int = typer.Option(None, "--max-steps"),
    batch_size: int = typer.Option(None, "--batch-size", help="problems per batch (unit of resume)"),
    difficulty_samples: int = typer.Option(
        None, "--difficulty-samples", help="K samples for pass@1 (8 on CPU; 64 on GPU)"
    ),
    stop: list[str] = typer.Option(
        None,
        "--stop",
        help="also replay early stopping on the recorded samples: beta:CONFIDENCE or esc:WINDOW, "
        "each --n the cap (repeat; a finished run only re-derives its profile)",
    ),
    quantile_levels: bool = typer.Option(
        None, "--quantile-levels/--no-quantile-levels", help="also 5 quantile levels"
    ),
    name: str = typer.Option(None, "--name", help="grid name"),
    jobs: int = typer.Option(
        1, "--jobs", help="parallel workers (joblib processes, or Ray actors with --ray)"
    ),
    ray_address: str = typer.Option(None, "--ray", help="Ray cluster address (e.g. auto or HOST:6379)"),
    worker_gpus: float = typer.Option(
        0.0, "--worker-gpus", help="GPUs each Ray worker reserves (1 on a GPU cluster)"
    ),
    redo: list[str] = typer.Option(
        None, "--redo", help="run a step kind again: sample, score, cot, dvts, beam"
    ),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bars"),
    json_output: bool = typer.Option(False, "--json", help="print the summary as JSON"),
) -> None:
    """Measure accuracy and FLOPs over a grid of policies x verifiers x methods x N; resumable."""
    import sys

    from calibration.calibrate import calibrate as _calibrate
    from calibration.grid import Flags, Grid, load_grid
    from planner.executor.factory import set_openai_server

    set_openai_server(base_url, api_key)
    from calibration.summary import print_summary, summary_json

    grid = load_grid(grid_file) if grid_file is not None else Grid()
    flags = Flags(
        {
            "name": name,
            "policies": policy,
            "verifiers": verifier,
            "methods": method,
            "n": n,
            "tree_n": tree_n,
            "beam_widths": beam_width,
            "aggregations": aggregation,
            "dataset": dataset,
            "limit": limit,
            "stratify": stratify,
            "engine": engine,
            "seed": seed,
            "temperature": temperature,
            "max_total_tokens": max_total_tokens,
            "max_step_tokens": max_step_tokens,
            "max_steps": max_steps,
            "batch_size": batch_size,
            "difficulty_samples": difficulty_samples,
            "quantile_levels": quantile_levels,
            "stops": stop,
        }
    )
    try:
        grid = flags.apply(grid)
    except UserError as exc:
        raise _flag_error(exc) from None
    out = out or Path("profiles") / grid.name
    try:
        outcome = _calibrate(
            grid,
            out,
            jobs=jobs,
            ray_address=ray_address,
            progress=not quiet,
            command="ttsplan " + " ".join(sys.argv[1:]),
            source=f"grid file {grid_file}" if grid_file is not None else "flags",
            worker_gpus=worker_gpus,
            redo=tuple(redo or ()),
        )
    except UserError as exc:
        raise _flag_error(exc) from None
    if json_output:
        typer.echo(json.dumps(summary_json(outcome), indent=2))
    else:
        print_summary(outcome)


def register(app: typer.Typer) -> None:
    """Add calibration's commands to the ttsplan app."""
    app.add_typer(import_app, name="import")
    app.command("calibrate")(calibrate_command)
