"""Sample-level records of recorded runs as one table: one row per sample with problem_id, sample
(its index in recorded order), correct, answer (the vote key; None when unanswered) and one
`score:<verifier>:<aggregation>` column per verifier and aggregation where scores exist.

Sources: a calibration profile's runs (profiles/<name>/runs), the Qwen2.5-Math 100 x 8 file with
RM scores, and the art_of_tts per-sample tables in ../shared/data/published."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from calibration.importers import PUBLISHED_DIR
from planner.core.errors import UserError
from planner.core.profiles import load_profile
from planner.predict.samples import profile_sample_sets

SHARED_PUBLISHED = Path(__file__).resolve().parents[2] / "shared" / "data" / "published"


def profile_samples(folder: Path) -> pd.DataFrame:
    """One row per sample of a calibration profile's run (planner.predict.samples reads it):
    problem_id, sample, correct, answer, difficulty and score:<verifier>:<aggregation> columns."""
    sets = profile_sample_sets(folder, load_profile(folder).records)
    if len(sets) != 1:
        raise UserError(f"{folder}: expected one calibration run, found {len(sets)}")
    return sets[0].frame


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
