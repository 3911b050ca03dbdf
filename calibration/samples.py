"""Sample-level records of recorded runs as one table: one row per sample with problem_id, sample
(its index in recorded order), correct, answer (the vote key; None when unanswered) and one
`score:<verifier>:<aggregation>` column per verifier and aggregation where scores exist.

Sources: a calibration profile's runs (profiles/<name>/runs), the Qwen2.5-Math 100 x 8 file with
RM scores, and the art_of_tts per-sample tables in ../shared/data/published."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from calibration import store
from calibration.importers import PUBLISHED_DIR
from planner.core.scoring import aggregate, answer_key

SHARED_PUBLISHED = Path(__file__).resolve().parents[2] / "shared" / "data" / "published"
AGGREGATIONS = ("last", "min", "mean")


def profile_samples(folder: Path) -> pd.DataFrame:
    """One row per sample of a calibration profile's runs: problem_id, sample, correct, answer and
    one score:<verifier>:<aggregation> column per verifier and aggregation."""
    by_step: dict[str, dict[str, dict]] = {}
    for path in sorted(folder.glob("runs/*/batch-*.jsonl")):
        records, _ = store.read(path)
        for r in records:
            by_step.setdefault(r["step"], {}).setdefault(r["problem_id"], r["data"])
    rows = []
    for pid, s in by_step["sample"].items():
        for i, (a, ok) in enumerate(zip(s["answers"], s["correct"], strict=True)):
            row = {
                "problem_id": pid,
                "sample": i,
                "correct": bool(ok),
                "answer": answer_key(a) if a else None,
            }
            for step, recs in by_step.items():
                if step.startswith("score:"):
                    for agg in AGGREGATIONS:
                        row[f"{step}:{agg}"] = aggregate(recs[pid]["step_scores"][i], agg)
            rows.append(row)
    return pd.DataFrame(rows)


def qwen_math_samples() -> pd.DataFrame:
    df = pd.read_csv(PUBLISHED_DIR / "persample_qwen25math_math100_8samples_rmscores.csv")
    return pd.DataFrame(
        {
            "problem_id": df["idx"],
            "sample": df["sample"],
            "correct": df["correct"].astype(bool),
            "answer": df["pred"].astype(str).where(df["pred"].notna(), None),
            "score:qwen25-math-rm:last": df["rm_score"].astype(float),
        }
    )


def art_samples(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, dtype={"answer": str})
    df = df[df["correct"].notna()]
    return pd.DataFrame(
        {
            "problem_id": df["problem_id"],
            "sample": df["sample_idx"],
            "correct": df["correct"].astype(bool),
            "answer": df["answer"].where(df["answer"].notna(), None),
        }
    )
