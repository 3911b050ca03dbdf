"""Fit time of AccuracyRegressor on 100,000 synthetic configuration rows (target <= 10 s).

Rows draw policy, PRM, method, aggregation, selection, N, difficulty and dataset at random
(seed 0); accuracy follows a logistic law plus noise. The time covers `fit` (features, the
tree model and the grouped-fold interval calibration). Prints one line.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd

from planner.core.vocab import AGGREGATIONS, SELECTIONS
from planner.models import specs
from planner.predict.regressor import AccuracyRegressor

TARGET_S = 10.0
ROWS = 100_000


def synthetic_rows(rows: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    policies = specs.all_specs("policy")
    prms = specs.all_specs("prm")
    policy = rng.choice([p.name for p in policies], rows)
    size = {p.name: np.log10(p.params) for p in policies}
    method = rng.choice(["cot", "majority", "best_of_n", "beam", "dvts"], rows)
    log2_n = rng.integers(0, 11, rows)
    log2_n = np.where(
        method == "cot", 0, np.where(np.isin(method, ["beam", "dvts"]), np.maximum(log2_n, 2), log2_n)
    )
    no_prm = np.isin(method, ["cot", "majority"])
    frame = pd.DataFrame(
        {
            "policy": policy,
            "prm": np.where(no_prm, "none", rng.choice([p.name for p in prms], rows)),
            "method": method,
            "aggregation": np.where(no_prm, "none", rng.choice(AGGREGATIONS, rows)),
            "selection": np.where(
                method == "cot", "none", np.where(no_prm, "vote", rng.choice(SELECTIONS, rows))
            ),
            "n": 2**log2_n,
            "beam_width": pd.array(np.where(np.isin(method, ["beam", "dvts"]), 4, -1), dtype="Int64"),
            "difficulty": rng.choice(["easy", "medium", "hard", "all"], rows),
            "dataset": rng.choice(["math500", "aime24", "gsm8k"], rows),
        }
    )
    frame.loc[frame["beam_width"] < 0, "beam_width"] = pd.NA
    z = 1.2 * (frame["policy"].map(size).to_numpy() - 9.5) + 0.2 * log2_n * (method != "cot")
    z += frame["difficulty"].map({"easy": 1.5, "medium": 0.0, "hard": -2.0, "all": 0.3}).to_numpy()
    accuracy = 1 / (1 + np.exp(-(z + rng.normal(0, 0.3, rows))))
    return frame, accuracy


def main() -> None:
    frame, accuracy = synthetic_rows(ROWS)
    start = time.perf_counter()
    model = AccuracyRegressor().fit(frame, accuracy)
    seconds = time.perf_counter() - start
    print(
        f"fit: {ROWS} rows in {seconds:.2f} s on {os.cpu_count()} cores "
        f"(interval from {model.interval_groups_} policy groups); target {TARGET_S:.0f} s, "
        f"ratio {seconds / TARGET_S:.2f}"
    )


if __name__ == "__main__":
    main()
