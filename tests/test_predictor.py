"""Per-problem scaling models under the planner, on real data: the shipped Gemma arith calibration
run and the Qwen2.5-Math MATH-100 samples; the shipped regressor as the fallback."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from planner.core.errors import UserError
from planner.core.profiles import load_profiles, static_rows
from planner.plan.search import rank
from planner.predict import modelio
from planner.predict.predictor import ScalingPredictor
from planner.predict.samples import profile_sample_sets
from planner.predict.scalingfit import fit_set, tree_cells, tree_fit, tree_shift

ROOT = Path(__file__).resolve().parent.parent
GEMMA = ROOT / "profiles" / "cpu_arith_gemma"
QWEN = ROOT / "profiles" / "qwen25math_math100_replay"
GEMMA_NAME = "google/gemma-3-270m"
NS = (1, 2, 4, 8)


@pytest.fixture(scope="module")
def gemma_records() -> pd.DataFrame:
    return load_profiles([GEMMA])


@pytest.fixture(scope="module")
def gemma_entry(gemma_records) -> dict:
    """Gemma's first 40 problems (16 samples each), 4 bootstrap refits, N up to 8."""
    s = profile_sample_sets(GEMMA, gemma_records)[0]
    keep = sorted(s.frame["problem_id"].unique())[:40]
    s.frame = s.frame[s.frame["problem_id"].isin(keep)].reset_index(drop=True)
    return fit_set(s, gemma_records, n_boot=4, ns=NS)


@pytest.fixture(scope="module")
def predictor(gemma_entry) -> ScalingPredictor:
    regressor, _ = modelio.load_model(modelio.DEFAULT_MODEL)
    doc = {"format": "ttsplan-scaling", "version": 1, "n_boot": 4, "table_n": list(NS), "sets": [gemma_entry]}
    return ScalingPredictor(regressor, doc)


def _rows(policy: str, dataset: str, configs: list[tuple], difficulty: str = "all") -> pd.DataFrame:
    cols = ("prm", "method", "aggregation", "selection", "n", "beam_width")
    frame = pd.DataFrame([dict(zip(cols, c, strict=True)) for c in configs])
    frame["beam_width"] = pd.array(frame["beam_width"], dtype="Int64")
    frame.insert(0, "policy", policy)
    frame["dataset"] = dataset
    frame["difficulty"] = difficulty
    return frame


def test_sample_sets_from_runs_and_csv(gemma_records):
    (s,) = profile_sample_sets(GEMMA, gemma_records)
    assert (s.policy, s.dataset, s.samples_per_problem) == (GEMMA_NAME, "arith", 16)
    assert s.frame["problem_id"].nunique() == 100
    scored = {c.split(":", 1)[1].rsplit(":", 1)[0] for c in s.frame if c.startswith("score:")}
    assert scored == {"arith-check", f"lm-judge:{GEMMA_NAME}"} <= set(gemma_records["prm"])
    # pass@1 over the samples is the profile's majority@1 cell
    maj1 = static_rows(gemma_records).query("method == 'majority' and n == 1")["accuracy"].mean()
    assert s.frame["correct"].mean() == pytest.approx(maj1)
    assert set(s.frame["difficulty"]) <= {"easy", "medium", "hard"}
    (q,) = profile_sample_sets(QWEN, load_profiles([QWEN]))
    assert (q.policy, q.dataset, q.samples_per_problem) == ("unstated", "math100", 8)
    assert q.frame["correct"].mean() == pytest.approx(0.91, abs=0.01)  # the file's pass@1


def test_entry_has_table_and_tree_corrections(gemma_entry):
    assert gemma_entry["samples_per_problem"] == 16 and gemma_entry["problems"] == 40
    methods = {row[0] for row in gemma_entry["table"]}
    assert methods == {"majority", "best_of_n"}
    tree = {(t["method"], t["prm"]) for t in gemma_entry["tree"]}
    assert ("beam", "arith-check") in tree and ("dvts", "arith-check") in tree
    json.dumps(gemma_entry)  # plain JSON


def test_n1_is_pass1_for_every_sampling_method(predictor):
    configs = [
        ("none", "majority", "none", "vote", 1, None),
        ("arith-check", "best_of_n", "last", "max", 1, None),
        ("arith-check", "best_of_n", "min", "vote", 1, None),
        (f"lm-judge:{GEMMA_NAME}", "best_of_n", "mean", "max", 1, None),
        ("Qwen/Qwen2.5-Math-PRM-72B", "best_of_n", "last", "max", 1, None),  # no scores: still pass@1
    ]
    for policy, dataset, calibrated in (
        (GEMMA_NAME, "arith", True),
        ("Qwen/Qwen2.5-1.5B-Instruct", "math500", False),
    ):
        f = predictor.assess_frame(_rows(policy, dataset, configs))
        assert np.ptp(f["predicted_accuracy"].to_numpy()) == 0.0, (policy, f)
        assert (f["source"] == "per-problem model").all() == calibrated
    pass1 = predictor.assess_frame(_rows(GEMMA_NAME, "arith", configs[:1]))["predicted_accuracy"].iloc[0]
    model = predictor._model((GEMMA_NAME, "arith"))
    assert pass1 == pytest.approx(model.predict(method="majority", n=1)["accuracy"])


def test_calibrated_rows_come_from_the_model(predictor, gemma_records):
    configs = [
        ("none", "majority", "none", "vote", 8, None),
        ("arith-check", "best_of_n", "last", "max", 8, None),
        ("arith-check", "best_of_n", "last", "vote", 4, None),
        ("arith-check", "beam", "last", "max", 8, 4),
        ("arith-check", "dvts", "last", "max", 8, 4),
        ("none", "cot", "none", "none", 1, None),
        ("arith-check", "best_of_n", "last", "max", 32, None),  # off the table: computed
        ("arith-check", "best_of_n", "last", "max", 2048, None),  # above n_max 1024: the regressor
    ]
    f = predictor.assess_frame(_rows(GEMMA_NAME, "arith", configs))
    src = f["source"].tolist()
    assert src == ["per-problem model"] * 5 + ["measured cell", "per-problem model", "regressor"]
    assert f["in_calibrated_range"].iloc[:6].all()
    assert f["extrapolated"].tolist() == [False] * 5 + [False, True, False]
    ok = f["predicted_accuracy"].between(f["accuracy_low"] - 1e-9, f["accuracy_high"] + 1e-9)
    assert ok.iloc[:6].all()
    # greedy cot: the profile's measured cell over the set's own 40 problems, not the regressor's guess
    cot = gemma_records[(gemma_records["method"] == "cot") & (gemma_records["problem_id"] != "")]
    keep = sorted(cot["problem_id"].unique())[:40]  # the fixture's sample set
    assert f["predicted_accuracy"].iloc[5] == pytest.approx(
        cot[cot["problem_id"].isin(keep)]["accuracy"].mean()
    )
    assert 0.0 < f["accuracy_high"].iloc[5] - f["accuracy_low"].iloc[5] < 0.4
    # a tree method on a verifier without measured tree cells: the regressor
    # tree cells measured at last/max only: a correction learned there is not carried to min
    g = predictor.assess_frame(_rows(GEMMA_NAME, "arith", [("arith-check", "beam", "min", "vote", 8, 4)]))
    assert g["source"].iloc[0] == "regressor" and not g["in_calibrated_range"].iloc[0]
    h = predictor.assess_frame(
        _rows(GEMMA_NAME, "arith", [("Qwen/Qwen2.5-Math-PRM-7B", "beam", "last", "max", 8, 4)])
    )
    assert h["source"].iloc[0] == "regressor" and not h["in_calibrated_range"].iloc[0]
    assert not f["in_calibrated_range"].iloc[7]  # N above n_max: the regressor, out of range


def test_beam_follows_its_measured_cells_in_n(predictor, gemma_records):
    """Gemma's beam gains on Best-of-N more as N grows (14%, 19%, 22% at N = 4, 8, 16 while
    Best-of-N last/max stays near pass@1): the tree correction is a line in log2 N, so the
    predictions follow the measured cells (a constant shift gave 18.1% at every N)."""
    tree = tree_cells(gemma_records, GEMMA_NAME, "arith")
    beam = tree[tree["method"] == "beam"].set_index("n")["accuracy"]
    assert list(beam.index) == [4, 8, 16] and beam.is_monotonic_increasing
    configs = [("arith-check", "beam", "last", "max", n, 4) for n in (4, 8, 16, 64)]
    f = predictor.assess_frame(_rows(GEMMA_NAME, "arith", configs))
    got = f["predicted_accuracy"].to_numpy()
    assert np.abs(got[:3] - beam.to_numpy()).max() < 0.02, (got, beam)
    assert f["extrapolated"].tolist() == [False, False, False, True]
    corr = next(t for t in predictor.doc["sets"][0]["tree"] if t["method"] == "beam")
    assert corr["slope"] > 0.1 and tree_shift(corr, 64) == tree_shift(corr, 16)  # held past 16


def test_tree_fit_line_and_fallback():
    line = tree_fit([0.1, 0.3, 0.5], [4, 8, 16])
    assert line["slope"] == pytest.approx(0.2) and line["shift"] == pytest.approx(0.3)
    assert line["spread"] == pytest.approx(0.0, abs=1e-12)
    corr = {**line, "n_measured": [4, 8, 16]}
    assert tree_shift(corr, 2) == pytest.approx(0.1) and tree_shift(corr, 1024) == pytest.approx(0.5)
    two = tree_fit([0.1, 0.5], [4, 16])  # two cells: no line, their mean and spread
    assert two["slope"] == 0.0 and two["shift"] == pytest.approx(0.3)
    assert two["spread"] == pytest.approx(np.std([0.1, 0.5], ddof=1))
    assert tree_shift({"shift": 0.3, "n_measured": [8]}, 64) == 0.3  # a correction without a slope


def test_held_out_policy_falls_back(predictor):
    rows = _rows(GEMMA_NAME, "arith", [("none", "majority", "none", "vote", 8, None)])
    assert predictor.without([GEMMA_NAME]).assess_frame(rows)["source"].iloc[0] == "regressor"


def test_rank_rule_lower_bound_for_untrusted():
    scored = pd.DataFrame(
        {
            "predicted_accuracy": [0.5, 0.6, 0.45],
            "accuracy_low": [0.45, 0.3, 0.44],
            "accuracy_high": [0.55, 0.9, 0.46],
            "in_calibrated_range": [True, False, True],
            "extrapolated": [False, False, True],
            "flops_per_problem": [1.0, 1.0, 1.0],
        }
    )
    ranked, info = rank(scored)
    assert ranked.index.tolist() == [0, 2, 1]
    assert info["changed_choice"] and info["point_estimate_choice"] == 1
    assert info["lower_bound_candidates"] == 2
    untrusted = scored.assign(in_calibrated_range=False)
    ranked, info = rank(untrusted)
    assert ranked.index[0] == 1 and not info["changed_choice"]


def test_scaling_file_sha_checked(tmp_path, gemma_entry):
    doc = {"format": "ttsplan-scaling", "version": 1, "sets": [gemma_entry], "table_n": list(NS)}
    model, manifest = modelio.load_model(modelio.DEFAULT_MODEL)
    out = tmp_path / "m.skops"
    target, data, entry = modelio.scaling_file(doc, out)
    modelio.save_model(model, out, "fp", extra={"scaling": entry}, companions={target: data})
    loaded, info = modelio.load_planner_model(out, predictor="scaling")
    assert isinstance(loaded, ScalingPredictor) and info["predictor"] == "scaling"
    assert modelio.load_planner_model(out)[1]["predictor"] == modelio.DEFAULT_PREDICTOR
    path = modelio.scaling_path(out)
    path.write_text(path.read_text().replace('"arith"', '"arith2"', 1))
    with pytest.raises(UserError, match="sha256"):
        modelio.load_planner_model(out, predictor="scaling")
    with pytest.raises(UserError, match="predictor"):
        modelio.load_planner_model(out, predictor="magic")


def test_predict_many_matches_predict(predictor):
    model = predictor._model((GEMMA_NAME, "arith"))
    ns = [1, 2, 8, 64, 1024]
    kw = {"method": "best_of_n", "verifier": "arith-check", "aggregation": "mean", "selection": "max"}
    many = model.predict_many(ns=ns, bin="hard", **kw)
    for n, r in zip(ns, many, strict=True):
        one = model.predict(n=n, bin="hard", **kw)
        assert r["accuracy"] == pytest.approx(one["accuracy"], abs=1e-12)
        assert r["low"] <= r["high"]
    maj = model.predict_many(method="majority", ns=ns, sims=20000)
    for n, r in zip(ns, maj, strict=True):
        assert r["accuracy"] == pytest.approx(model.predict(method="majority", n=n)["accuracy"], abs=0.01)
    with pytest.raises(UserError, match="n must be"):
        model.predict_many(method="majority", ns=[2, 4096])


def test_measured_interval_keeps_width_at_the_bounds():
    """A measured 100% (Gemma's CoT on its 9 easy problems) still has an interval below it; a
    middle value gets the binomial spread of the measurement plus the new problems' draw."""
    from planner.predict.predictor import measured_interval

    acc, low, high = measured_interval(1.0, 9)
    assert acc == high == 1.0 and 0.7 < low < 0.95
    acc, low, high = measured_interval(0.14, 100)
    assert low < 0.14 < high and high - low == pytest.approx(
        2 * 1.2816 * (2 * (15 / 102) * (87 / 102) / 100) ** 0.5, rel=1e-3
    )
