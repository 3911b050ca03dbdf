"""bench/stopping_live.py's arms on the fake engine: the rule arms draw fewer samples than the
one-shot arm, and the paired comparison is computed from the per-problem records."""

from __future__ import annotations

import math

import pytest

from bench.stopping_live import paired, run_arms
from planner.core.datasets import Problem
from planner.core.planfile import plan_from_options
from tests.fake_engine import FakeEngine


def test_paired_difference_and_interval():
    out = paired([True, True, False, True], [True, False, False, False])
    assert out["difference"] == pytest.approx(0.5)
    sd = math.sqrt(((0 - 0.5) ** 2 * 2 + 0.5**2 * 2) / 3)
    assert out["ci95"] == pytest.approx([0.5 - 1.96 * sd / 2, 0.5 + 1.96 * sd / 2])


def test_run_arms_on_the_fake_engine(tmp_path):
    problems = [Problem(f"q{i}", f"question {i}", "1", None, "fake") for i in range(6)]
    base = plan_from_options("fake-policy", "majority", 8)
    engine = FakeEngine(name="fake-policy", answers=("1",))  # one answer: every rule settles early
    arms = run_arms(base, ["beta:0.95", "esc:2"], problems, engine, None, tmp_path, batch_size=6)
    assert arms["one-shot"]["mean_samples"] == 8 and arms["one-shot"]["accuracy"] == 1.0
    assert arms["beta:0.95"]["mean_samples"] == 4 and arms["esc:2"]["mean_samples"] == 2
    vs = arms["esc:2"]["vs_one_shot"]
    assert vs["difference"] == 0 and vs["samples_saving"] == 4 and vs["problems"] == 6
    assert vs["wall_per_sample_ratio"] is not None and vs["wall_per_sample_ratio"] > 0


def test_settled_from_and_the_correctness_oracle():
    from bench.stopping_tradeoff import settled_from

    # a leads alone at 1, ties at 2, leads alone from 3 on: settled from 3; right from the first
    assert settled_from(["a", "b", "a", "a"], {"a": 1.0, "b": 0.0}, None, 4) == (3, 1)
    # all different: no sole leader at the cap (never settled); wrong from the first sample
    assert settled_from(["x", "y", "z", "w"], {}, None, 4) == (4, 1)
    # b leads at 2 (by score), a overtakes at 4: settled only at the cap; right from 1 (a first)
    assert settled_from(["a", "b", None, "a"], {"a": 1.0}, [0.1, 0.9, 0.5, 0.9], 4) == (4, 1)
    # the weighted pick is wrong (b) at 2 and 3, right at the cap: the oracle needs all 4
    assert settled_from(["b", "a", "b", "a"], {"a": 1.0}, [0.3, 0.2, 0.3, 0.9], 4) == (4, 4)
