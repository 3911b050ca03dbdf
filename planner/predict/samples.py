"""Sample-level records of a profile folder, one row per sample, for planner.predict.scaling.

Two sources, both optional in a profile folder:
  runs/<policy>/batch-*.jsonl   a calibration run's step records (written by calibration.store:
                                one JSON line {"sum", "rec"} per (step, problem); lines whose
                                checksum fails are a torn tail and are not read)
  samples.csv                   recorded samples: policy, dataset, problem_id, correct, answer
                                and score:<verifier>:<aggregation> columns

The shipped profiles/qwen25math_math100_replay/samples.csv holds the 800 samples of
calibration/data/published/persample_qwen25math_math100_8samples_rmscores.csv (the file that
profile replays): problem_id 'math100-' + idx, answer = pred, correct, and
score:Qwen/Qwen2.5-Math-RM-72B:last = sigmoid(rm_score), the weight of that profile's weighted vote.

The profile's records.parquet gives each problem's difficulty bin (so the per-problem model bins
problems as the profile does) and the profile labels of policy and verifiers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from planner.core import runfile
from planner.core.errors import UserError
from planner.core.profiles import SAMPLES_FILE
from planner.core.scoring import aggregate, answer_key
from planner.models import specs

RUN_GLOB = "runs/*/batch-*.jsonl"
DEFAULT_AGGREGATIONS = ("last", "min", "mean")


@dataclass
class SampleSet:
    """One (policy, dataset)'s samples: `frame` has problem_id, correct, answer, difficulty and
    score:<verifier>:<aggregation> columns (verifier as the profile's prm column names it)."""

    policy: str
    dataset: str
    frame: pd.DataFrame
    source: str

    @property
    def samples_per_problem(self) -> int:
        return int(self.frame.groupby("problem_id").size().min())


def _bins(records: pd.DataFrame) -> dict:
    rows = records[records["problem_id"].fillna("").astype(str) != ""]
    return dict(zip(rows["problem_id"].astype(str), rows["difficulty"].astype(str), strict=True))


def _run_sets(folder: Path, records: pd.DataFrame, aggregations) -> list[SampleSet]:
    out = []
    for run in sorted({p.parent for p in folder.glob(RUN_GLOB)}):
        by_step: dict[str, dict] = {}
        for path in sorted(run.glob("batch-*.jsonl")):
            for r in runfile.read(path)[0]:
                by_step.setdefault(r["step"], {}).setdefault(str(r["problem_id"]), r["data"])
        if "sample" not in by_step:
            continue
        first = next(iter(by_step["sample"].values()))
        policy = specs.model_label(first["policy"])
        mine = records[records["policy"] == policy]
        if mine.empty:
            raise UserError(f"{run}: policy {policy} has no records in the profile")
        bins = _bins(mine)
        verifiers = [s[len("score:") :] for s in by_step if s.startswith("score:")]
        rows = []
        for pid, s in by_step["sample"].items():
            for i, (a, ok) in enumerate(zip(s["answers"], s["correct"], strict=True)):
                row = {
                    "problem_id": pid,
                    "sample": i,  # its index in recorded order
                    "correct": bool(ok),
                    "answer": answer_key(a) if a else None,
                    "difficulty": bins.get(pid),
                }
                for v in verifiers:
                    steps = by_step[f"score:{v}"][pid]["step_scores"][i]
                    for agg in aggregations:
                        row[f"score:{specs.prm_label(v, policy)}:{agg}"] = aggregate(steps, agg)
                rows.append(row)
        frame = pd.DataFrame(rows)
        dataset = str(mine["dataset"].iloc[0])
        out.append(SampleSet(policy, dataset, frame, f"{folder.name}/{run.relative_to(folder)}"))
    return out


def _csv_sets(folder: Path, records: pd.DataFrame) -> list[SampleSet]:
    path = folder / SAMPLES_FILE
    if not path.is_file():
        return []
    df = pd.read_csv(path, dtype={"answer": str, "problem_id": str, "policy": str, "dataset": str})
    for col in ("policy", "dataset", "problem_id", "correct", "answer"):
        if col not in df.columns:
            raise UserError(f"{path}: column '{col}' is missing")
    out = []
    for (policy, dataset), g in df.groupby(["policy", "dataset"], sort=True):
        # each set's own bins: several policies' samples of one dataset share problem ids
        bins = _bins(records[(records["policy"] == policy) & (records["dataset"] == dataset)])
        frame = g.drop(columns=["policy", "dataset"]).reset_index(drop=True)
        frame["difficulty"] = frame["problem_id"].map(bins)
        frame["answer"] = frame["answer"].where(frame["answer"].notna(), None)
        out.append(SampleSet(str(policy), str(dataset), frame, f"{folder.name}/{SAMPLES_FILE}"))
    return out


def profile_sample_sets(folder: str | Path, records: pd.DataFrame) -> list[SampleSet]:
    """Every sample set of one profile folder (none when it has neither runs/ nor samples.csv).

    records: the profile's records (problem difficulty bins and labels)."""
    folder = Path(folder)
    aggregations = DEFAULT_AGGREGATIONS
    grid = folder / "grid.json"
    if grid.is_file():
        aggregations = tuple(json.loads(grid.read_text()).get("aggregations", aggregations))
    sets = _run_sets(folder, records, aggregations) + _csv_sets(folder, records)
    for s in sets:
        if s.frame["difficulty"].isna().any():
            s.frame["difficulty"] = None  # a problem without a profile bin: bin all by pass@1
    return sets
