"""`ttsplan calibrate` on the fake engine, SIGKILLed 20 times at random points of its progress:
after every kill what is on disk is a prefix of the uninterrupted run (no torn or changed record),
and the resumed run ends with the same profile as the run that was never killed."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from calibration import store
from calibration.calibrate import RUNS

REPO = Path(__file__).resolve().parents[1]
KILLS = 20
GRID = """
name = "fake-kill"
dataset = "arith:per_level=4"  # the fake engine knows these answers
policies = ["smollm2-135m-instruct"]
verifiers = ["arith-check"]
methods = ["cot", "majority", "best_of_n", "beam", "dvts"]
aggregations = ["last", "min"]
selections = ["max", "vote"]
n = [1, 2, 4]
tree_n = [2, 4]
beam_widths = [2]
difficulty_samples = 4
batch_size = 1
[sampling]
max_steps = 6
"""
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "FAKE_ENGINE_DELAY_S": "0.01"}


def command(grid: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "tests.fake_ttsplan", "calibrate", "--grid", str(grid), "--out", str(out)]


def records(out: Path) -> dict:
    """(batch file, step, problem) -> record, for every valid line on disk."""
    found = {}
    for path in sorted((out / RUNS).glob("*/*.jsonl")):
        for rec in store.read(path)[0]:
            key = (path.parent.name, path.name, rec["step"], rec["problem_id"])
            assert key not in found, f"{key} written twice"
            found[key] = rec
    return found


def same_profile(a: Path, b: Path) -> None:
    pd.testing.assert_frame_equal(
        pd.read_parquet(a / "records.parquet"), pd.read_parquet(b / "records.parquet")
    )
    pd.testing.assert_frame_equal(pd.read_csv(a / "difficulty.csv"), pd.read_csv(b / "difficulty.csv"))


@pytest.fixture(scope="module")
def grid(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("grid") / "kill.toml"
    path.write_text(GRID)
    return path


def test_twenty_sigkills_then_resume_equals_uninterrupted(grid, tmp_path):
    reference = tmp_path / "reference"
    done = subprocess.run(command(grid, reference), capture_output=True, text=True, timeout=300, env=ENV)
    assert done.returncode == 0, done.stderr[-2000:]
    want = records(reference)
    assert len(want) > 3 * KILLS
    rng = random.Random(12)
    # 20 points of progress (records on disk) to kill at, plus a random delay of up to 30 ms
    thresholds = sorted(rng.sample(range(1, len(want) - 1), KILLS))
    out = tmp_path / "killed"
    kills = 0
    for threshold in thresholds:
        proc = subprocess.Popen(
            command(grid, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV
        )
        deadline = time.monotonic() + 120
        while proc.poll() is None and len(records(out)) < threshold and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(rng.uniform(0, 0.03))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
        assert proc.returncode in (0, -signal.SIGKILL)
        if proc.returncode == 0:
            break  # finished before the kill: the remaining points are behind it
        have = records(out)
        assert all(have[key] == want[key] for key in have)  # a prefix of the uninterrupted run
        assert not (out / "records.parquet").exists()
    print(f"sigkills survived: {kills}")
    assert kills >= KILLS - 2  # (a run may finish between its last record and the kill)
    done = subprocess.run(command(grid, out), capture_output=True, text=True, timeout=300, env=ENV)
    assert done.returncode == 0, done.stderr[-2000:]
    assert records(out) == want
    same_profile(out, reference)
