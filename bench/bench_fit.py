"""Fit times: AccuracyRegressor on 100,000 synthetic configuration rows (target <= 10 s), and
`ttsplan fit` on every shipped profile (target <= 30 s on 2 cores).

Synthetic rows draw policy, PRM, method, aggregation, selection, N, difficulty and dataset at
random (seed 0); accuracy follows a logistic law plus noise. That time covers `fit` (features,
the tree model and the grouped-fold interval calibration).

`ttsplan fit --profiles <shipped profiles> --out <temp folder>` runs as a child process (the
regressor, its leave-one-policy-out CV, the per-problem scaling models with their tables,
saving): wall time, and CPU time of the command and of the table workers it starts (on a shared
machine the wall time depends on the other jobs; the load average is printed). Prints two lines.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from planner.core.vocab import AGGREGATIONS, SELECTIONS
from planner.models import specs
from planner.predict.regressor import AccuracyRegressor

TARGET_S = 10.0
PROFILES_TARGET_S = 30.0
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
    profiles_fit()


def profiles_fit() -> None:
    """`ttsplan fit` on every shipped profile into a temp folder, timed from outside."""
    from planner.core.profiles import default_profile_dirs

    dirs = [str(d) for d in default_profile_dirs()]
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        command = [sys.executable, "-m", "planner.cli.main", "fit", "--profiles", *dirs]
        command += ["--out", str(Path(tmp) / "model.skops"), "--json"]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(
        f"ttsplan fit on {len(dirs)} shipped profiles: {seconds:.1f} s wall, {cpu:.1f} s CPU (command "
        f"and its workers) on {os.cpu_count()} cores, load average {load[0]:.1f} at the start; "
        f"target {PROFILES_TARGET_S:.0f} s, ratio {seconds / PROFILES_TARGET_S:.2f}"
    )


if __name__ == "__main__":
    main()
