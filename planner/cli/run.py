"""`ttsplan run`: execute a plan (file or flags) on a dataset, one JSON line per problem.

All validation (plan, flags, dataset, engine, policy, output file) happens before any model loads.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from planner.core import checks
from planner.core.datasets import load_dataset
from planner.core.errors import UserError
from planner.core.files import check_output_file
from planner.core.planfile import RunPlan, load_plan, plan_from_options
from planner.core.vocab import TREE_METHODS
from planner.executor.factory import (
    canonical,
    check_engine_kind,
    check_policy,
    load_engine,
    load_verifier,
    set_openai_server,
)
from planner.executor.runner import DEFAULT_BATCH_SIZE, Summary, read_records, run_plan

# ---------------------------------------------------------------- checks (no model loads)


def check_output(out: Path) -> None:
    check_output_file(out, "out")
    read_records(out)  # a corrupt results file is reported now, not after loading models


def build_plan(
    plan_file: Path | None,
    policy: str | None,
    verifier: str | None,
    method: str | None,
    n: int | None,
    beam_width: int | None,
    aggregation: str | None,
    selection: str | None,
) -> RunPlan:
    if plan_file is not None:
        given = {
            "--method": method,
            "--n": n,
            "--beam-width": beam_width,
            "--aggregation": aggregation,
            "--selection": selection,
        }
        clash = [flag for flag, value in given.items() if value is not None]
        if clash:
            raise UserError(f"{clash[0]} cannot be combined with a plan file (the plan fixes it)")
        plan = load_plan(plan_file)
        return plan.with_overrides(policy=policy)
    for flag, value in (("--policy", policy), ("--method", method)):
        if not value:
            raise UserError(f"{flag} is required when no plan file is given")
    if n is None and method != "cot":
        raise UserError("--n is required when no plan file is given")
    return plan_from_options(
        policy, method, n, prm=verifier, beam_width=beam_width, aggregation=aggregation, selection=selection
    )


def verifier_name(plan: RunPlan, flag: str | None) -> str | None:
    if not plan.config.uses_verifier:
        return None
    name = flag or plan.prm
    if not name:
        raise UserError(
            f"method {plan.config.method} needs a verifier: pass --verifier lm-judge|arith-check|PATH"
        )
    return name


# ---------------------------------------------------------------- loading (tests replace these)


def _flag(flag: str, check, *args):
    """Call a library function; its one-line error is prefixed with the flag it came from."""
    try:
        return check(*args)
    except UserError as exc:
        raise UserError(f"{flag}: {exc}") from None


def _prepare(plan, dataset: str, limit, engine: str, verifier_of, out: Path, seed: int):
    """Every check first (nothing loads), then the verifier and the engine.
    Returns (plan with the canonical policy name, problems, engine, verifier, verifier name)."""
    problems = load_dataset(dataset, limit)
    if not problems:
        raise UserError(f"dataset {dataset!r} has no problems")
    _flag("--engine", check_engine_kind, engine)
    _flag("--policy", check_policy, engine, plan.policy)
    plan = plan.with_overrides(policy=canonical(plan.policy))
    verifier_id = verifier_of(plan)
    check_output(out)

    # models load from here on
    # tree search: the LM judge keeps each beam's state (an adaptive plan: when a bin searches)
    reuse = any(c.method in TREE_METHODS for c in plan.configs)
    the_verifier = (
        _flag("--verifier", load_verifier, verifier_id, plan.policy, reuse) if verifier_id else None
    )
    the_engine = load_engine(engine, plan.policy, seed)
    return plan, problems, the_engine, the_verifier, verifier_id


# ---------------------------------------------------------------- output


def _fmt(value, spec: str = ".3g") -> str:
    return "-" if value is None else format(value, spec)


def print_summary(plan: RunPlan, summary: Summary, verifier: str | None) -> None:
    from rich.console import Console
    from rich.table import Table

    c = plan.config
    stop = f", stop {c.stop}" if c.stop else ""
    table = Table(title=f"ttsplan run: {c.method} n={c.n}{stop} on {plan.policy}", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right", overflow="fold")
    rows = [
        ("verifier", verifier or "none"),
        ("problems", f"{summary.problems} ({summary.run} run, {summary.skipped} already done)"),
        ("accuracy", f"{_fmt(summary.accuracy, '.3f')} ({summary.correct}/{summary.problems})"),
        ("predicted accuracy", _fmt(summary.predicted_accuracy, ".3f")),
        ("FLOPs / problem", _fmt(summary.mean_flops)),
        ("predicted FLOPs / problem", _fmt(summary.predicted_flops)),
        ("measured / predicted FLOPs", _fmt(summary.flops_ratio, ".2f")),
        ("policy tokens / problem", _fmt(summary.mean_policy_tokens, ".1f")),
        ("generated tokens / problem", _fmt(summary.mean_generated_tokens, ".1f")),
        ("PRM tokens / problem", _fmt(summary.mean_prm_tokens, ".1f")),
        ("samples / problem", _fmt(summary.mean_samples, ".2f")),
        ("wall time (s)", _fmt(summary.wall_s, ".1f")),
        ("results", summary.out),
    ]
    for row in rows:
        table.add_row(*row)
    Console().print(table)


# ---------------------------------------------------------------- the command


def run_command(
    plan_file: Annotated[
        Path | None, typer.Argument(help="Plan JSON from `ttsplan plan --json --out`.")
    ] = None,
    dataset: Annotated[str, typer.Option(help="Dataset: math500, aime24, amc23, gsm8k, arith.")] = "",
    out: Annotated[Path | None, typer.Option(help="Results file (JSON lines); re-running resumes.")] = None,
    limit: Annotated[int | None, typer.Option(help="First K problems.")] = None,
    engine: Annotated[str, typer.Option(help="auto, vllm, transformers or openai.")] = "auto",
    base_url: Annotated[
        str | None, typer.Option(help="With --engine openai: the server, e.g. http://127.0.0.1:8000/v1.")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(help="With --engine openai: its API key (or $TTSPLAN_OPENAI_API_KEY).")
    ] = None,
    policy: Annotated[str | None, typer.Option(help="Policy model (embedded name or folder).")] = None,
    verifier: Annotated[str | None, typer.Option(help="lm-judge, arith-check, or a PRM folder.")] = None,
    method: Annotated[
        str | None, typer.Option(help="Without a plan file: cot, majority, best_of_n, beam, dvts.")
    ] = None,
    n: Annotated[int | None, typer.Option("--n", help="Without a plan file: samples / beams.")] = None,
    beam_width: Annotated[int | None, typer.Option(help="Without a plan file: M for beam/dvts.")] = None,
    aggregation: Annotated[
        str | None, typer.Option(help="Without a plan file: last, min, mean, prod.")
    ] = None,
    selection: Annotated[str | None, typer.Option(help="Without a plan file: max or vote.")] = None,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    temperature: Annotated[
        float | None,
        typer.Option(help="Sampling temperature (default 0.7, 0.6 for R1-distilled; cot is greedy)."),
    ] = None,
    stop: Annotated[
        str | None,
        typer.Option(help="Early stopping for majority / Best-of-N vote: beta:CONFIDENCE or esc:WINDOW."),
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Problems per batch.")] = DEFAULT_BATCH_SIZE,
    max_steps: Annotated[int | None, typer.Option(help="Step limit (default 40).")] = None,
    max_step_tokens: Annotated[int | None, typer.Option(help="Tokens per step (default 2048).")] = None,
    max_total_tokens: Annotated[
        int | None, typer.Option(help="Tokens per solution (default 8192; 32768 R1-distilled).")
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the summary as one JSON object.")
    ] = False,
    adaptive: Annotated[
        Path | None,
        typer.Option(help="Per-bin plan (ttsplan plan --per-bin --json): probe each problem, run its bin."),
    ] = None,
) -> None:
    """Run a plan (or a method given by flags) on a dataset; resumable."""
    if not dataset:
        raise UserError("--dataset is required")
    set_openai_server(base_url, api_key)
    if out is None:
        raise UserError("--out is required")
    checks.integer(batch_size, "batch_size", 1, checks.MAX_PROBLEMS)
    if adaptive is not None:
        given = {"PLAN_FILE": plan_file, "--method": method, "--n": n, "--beam-width": beam_width}
        given.update({"--aggregation": aggregation, "--selection": selection})
        clash = [flag for flag, value in given.items() if value is not None]
        if clash:
            raise UserError(f"{clash[0]} cannot be combined with --adaptive (the per-bin plan fixes it)")
        limits = dict(max_steps=max_steps, max_step_tokens=max_step_tokens, max_total_tokens=max_total_tokens)
        overrides = dict(policy=policy, seed=seed, **limits)
        if temperature is not None:
            overrides["temperature"] = temperature
        job = _Job(dataset, limit, engine, verifier, seed, out, batch_size, json_output)
        _run_adaptive(adaptive, overrides, job)
        return
    plan = build_plan(plan_file, policy, verifier, method, n, beam_width, aggregation, selection)
    plan = plan.with_overrides(
        seed=seed, max_steps=max_steps, max_step_tokens=max_step_tokens, max_total_tokens=max_total_tokens
    )
    if temperature is not None:
        plan = plan.with_overrides(temperature=temperature)
    if stop is not None:
        plan = _flag("--stop", lambda: plan.with_overrides(stop=stop))
    plan, problems, the_engine, the_verifier, verifier_id = _prepare(
        plan, dataset, limit, engine, lambda p: verifier_name(p, verifier), out, seed
    )
    summary = _run_with_progress(plan, problems, the_engine, the_verifier, out, batch_size)
    if json_output:
        sys.stdout.write(
            json.dumps({"plan": plan.to_dict(), "verifier": verifier_id, **summary.to_dict()}) + "\n"
        )
    else:
        print_summary(plan, summary, verifier_id)


@dataclass(frozen=True)
class _Job:
    """Where and how an adaptive run goes (the flags besides the plan)."""

    dataset: str
    limit: int | None
    engine: str
    verifier: str | None
    seed: int
    out: Path
    batch_size: int
    as_json: bool


def _run_adaptive(path: Path, overrides: dict, job: _Job) -> None:
    """`ttsplan run --adaptive PLAN.json`: the checks, then planner.executor.adaptive.run_adaptive."""
    from planner.executor.adaptive import load_adaptive_plan, run_adaptive, summary_table

    plan = load_adaptive_plan(path).with_overrides(**overrides)
    out, batch_size = job.out, job.batch_size
    plan, problems, the_engine, the_verifier, verifier_id = _prepare(
        plan, job.dataset, job.limit, job.engine, lambda p: p.verifier_name(job.verifier), out, job.seed
    )
    summary = _with_progress(
        f"adaptive probe k={plan.probe['k']}",
        len(problems),
        out,
        lambda progress: run_adaptive(plan, problems, the_engine, the_verifier, out, batch_size, progress),
    )
    if job.as_json:
        obj = {"plan": plan.to_dict(), "verifier": verifier_id, **summary.to_dict()}
        sys.stdout.write(json.dumps(obj) + "\n")
    else:
        from rich.console import Console

        Console().print(summary_table(plan, summary, verifier_id))


def _run_with_progress(plan, problems, engine, verifier, out: Path, batch_size: int) -> Summary:
    return _with_progress(
        f"{plan.config.method} n={plan.config.n}",
        len(problems),
        out,
        lambda progress: run_plan(plan, problems, engine, verifier, out, batch_size, progress=progress),
    )


def _with_progress(description: str, total: int, out: Path, work):
    """work(progress) under a progress bar on stderr; Ctrl-C says where the finished problems are."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=total)
        try:
            return work(lambda k: bar.advance(task, k))
        except KeyboardInterrupt:
            bar.stop()
            done = sum(1 for _ in read_records(out)[0])
            sys.stderr.write(
                f"interrupted: finished problems are in {out} ({done} records); re-run to continue\n"
            )
            raise SystemExit(130) from None


def register(app: typer.Typer) -> None:
    app.command("run")(run_command)
