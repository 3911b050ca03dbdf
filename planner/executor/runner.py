"""The run loop: run a plan over problems in batches, append one JSON line per problem, resume.

Records already in the output file for the same problem id and the same config are skipped.
Each finished batch is appended (flush + fsync), so an interrupted run loses at most the batch in
flight; a torn last line (a crash mid-write) is ignored on read and cut off before appending.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from planner.core.errors import UserError
from planner.core.files import write_bytes_atomic
from planner.core.planfile import RunPlan
from planner.executor.base import Engine, Verifier
from planner.executor.grading import is_equivalent
from planner.executor.methods import run_method
from planner.executor.methods.common import Result
from planner.models import cost, specs

DEFAULT_BATCH_SIZE = 8


@dataclass
class Summary:
    """Totals over this plan's records for the problems asked for (earlier runs included)."""

    problems: int
    run: int  # solved in this call
    skipped: int  # found in the output file
    correct: int
    accuracy: float | None
    mean_flops: float | None
    mean_policy_tokens: float | None  # prompt + generated
    mean_generated_tokens: float | None
    mean_prm_tokens: float | None
    mean_samples: float | None  # final candidates per problem (fewer than n when a stop rule ended early)
    predicted_flops: float | None
    flops_ratio: float | None  # measured / predicted FLOPs per problem
    predicted_accuracy: float | None
    wall_s: float  # this call
    out: str

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------- config identity


def config_key(plan: RunPlan, engine: Engine, verifier: Verifier | None) -> dict:
    """What makes two runs the same: policy, verifier, method config (seed included)."""
    return {
        "policy": engine.name,
        "verifier": verifier.name if verifier is not None and plan.config.uses_verifier else None,
        **plan.config.to_dict(),
    }


# ---------------------------------------------------------------- the results file


def read_records(path: Path) -> tuple[list[dict], bool]:
    """Complete records in `path` and whether its last line is torn (no newline at the end)."""
    if not path.exists():
        return [], False
    if not path.is_file():
        raise UserError(f"output {path} is not a file")
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    torn = end < len(data)
    records = []
    for lineno, line in enumerate(data[:end].splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise UserError(f"output {path} line {lineno}: not a JSON record; move the file away") from None
        if not isinstance(record, dict) or "problem_id" not in record or "config" not in record:
            raise UserError(f"output {path} line {lineno}: not a run record; move the file away")
        records.append(record)
    return records, torn


def drop_torn_tail(path: Path) -> None:
    """Rewrite `path` without its torn last line (temp file in the same folder + os.replace)."""
    data = path.read_bytes()
    keep = data[: data.rfind(b"\n") + 1]
    write_bytes_atomic(path, keep)


def append_records(path: Path, records: list[dict]) -> None:
    """Append whole lines, then flush and fsync."""
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


# ---------------------------------------------------------------- FLOPs


class FlopCounter:
    """FLOPs of one problem's record: policy (per generate call) plus verifier reads, priced by
    cost.record_flops from the counts the record keeps (the planner prices the same calls)."""

    def __init__(self, policy_name: str, prm_name: str | None) -> None:
        self.policy = specs.spec_or_none(policy_name)
        self.prm = specs.spec_or_none(prm_name)

    def flops(self, result: Result) -> dict:
        return cost.record_flops(self.policy, self.prm, result.calls, result.prm_reads)

    def policy_flops(self, result: Result) -> float | None:
        return self.flops(result)["policy"]

    def prm_flops(self, result: Result) -> float | None:
        return self.flops(result)["prm"]


# ---------------------------------------------------------------- records


def make_record(problem, key: dict, result: Result, flops: FlopCounter, wall_s: float) -> dict:
    gold = str(problem.answer)
    policy_flops = flops.policy_flops(result)
    prm_flops = flops.prm_flops(result)
    total = None if policy_flops is None or prm_flops is None else policy_flops + prm_flops
    return {
        "problem_id": str(problem.id),
        "dataset": getattr(problem, "dataset", None),
        "level": getattr(problem, "level", None),
        "config": key,
        "answer": result.answer,
        "gold": gold,
        "correct": bool(result.answer) and is_equivalent(result.answer, gold),
        "candidates": [c.get("answer", "") for c in result.candidates],
        "candidate_scores": [c.get("score") for c in result.candidates],
        "text": result.text,
        "steps": result.steps_taken,
        "policy_prompt_tokens": result.policy_prompt_tokens,
        "policy_generated_tokens": result.policy_generated_tokens,
        "cached_prompt_tokens": result.cached_prompt_tokens,
        "prm_tokens": result.prm_tokens,
        # the counts the FLOPs come from (cost.record_flops): per generate call (prompt, cached,
        # generated per completion) and tokens read per verifier call
        "calls": [[p, c, list(g)] for p, c, g in result.calls],
        "prm_reads": list(result.prm_reads),
        "policy_flops": policy_flops,
        "prm_flops": prm_flops,
        "flops": total,
        "wall_s": wall_s,  # the batch's wall time divided by its problems
    }


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def summarize(
    plan: RunPlan, records: list[dict], run: int, skipped: int, wall_s: float, out: Path
) -> Summary:
    correct = sum(bool(r["correct"]) for r in records)
    flops = [r.get("flops") for r in records]
    mean_flops = _mean(flops) if all(f is not None for f in flops) else None
    predicted = plan.flops_per_problem
    return Summary(
        problems=len(records),
        run=run,
        skipped=skipped,
        correct=correct,
        accuracy=correct / len(records) if records else None,
        mean_flops=mean_flops,
        mean_policy_tokens=_mean([r["policy_prompt_tokens"] + r["policy_generated_tokens"] for r in records]),
        mean_generated_tokens=_mean([r["policy_generated_tokens"] for r in records]),
        mean_prm_tokens=_mean([r["prm_tokens"] for r in records]),
        mean_samples=_mean([len(r["candidates"]) for r in records]),
        predicted_flops=predicted,
        flops_ratio=mean_flops / predicted if mean_flops is not None and predicted else None,
        predicted_accuracy=plan.predicted_accuracy,
        wall_s=wall_s,
        out=str(out),
    )


# ---------------------------------------------------------------- the loop


def check_inputs(problems: Sequence, batch_size: int) -> list[str]:
    """The problems' ids, after checking the batch size and that no id repeats."""
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise UserError(f"batch size must be an integer >= 1, got {batch_size!r}")
    ids = [str(p.id) for p in problems]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise UserError(f"duplicate problem id {dup!r}")
    return ids


def resume(out_path: str | Path, key: dict, problems: Sequence) -> tuple[Path, dict, list]:
    """(output path, records already there for `key` by problem id, problems still to run);
    a torn last line is cut off first."""
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    existing, torn = read_records(out)
    if torn:
        drop_torn_tail(out)
    done = {r["problem_id"]: r for r in existing if r["config"] == key}
    return out, done, [p for p in problems if str(p.id) not in done]


def run_plan(
    plan: RunPlan,
    problems: Sequence,
    engine: Engine,
    verifier: Verifier | None,
    out_path: str | Path,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> Summary:
    """Run `plan` on `problems` (each with id, question, answer; level and dataset optional).

    progress(k) is called after each batch with the number of problems it finished (and once
    with the number skipped). Interrupting (Ctrl-C) keeps every finished batch on disk.
    """
    if plan.config.uses_verifier and verifier is None:
        raise UserError(f"method {plan.config.method} needs a verifier")
    ids = check_inputs(problems, batch_size)
    key = config_key(plan, engine, verifier)
    out, done, todo = resume(out_path, key, problems)
    skipped = len(problems) - len(todo)
    if progress and skipped:
        progress(skipped)
    flops = FlopCounter(
        engine.name, getattr(verifier, "spec_name", None) if plan.config.uses_verifier else None
    )
    start = time.perf_counter()
    for i in range(0, len(todo), batch_size):
        batch = todo[i : i + batch_size]
        t0 = time.perf_counter()
        results = run_method(engine, verifier, batch, plan.config)
        per_problem = (time.perf_counter() - t0) / len(batch)
        records = [make_record(p, key, r, flops, per_problem) for p, r in zip(batch, results, strict=True)]
        append_records(out, records)
        for r in records:
            done[r["problem_id"]] = r
        if progress:
            progress(len(batch))
    wall = time.perf_counter() - start
    mine = [done[i] for i in ids]
    return summarize(plan, mine, run=len(todo), skipped=skipped, wall_s=wall, out=out)
