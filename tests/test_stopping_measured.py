"""Replayed early-stopping rows in the planner: a shipped calibration profile re-derived with
stop rules (no model runs), its rows as cells in the scaling document, and the plan's adaptive
candidates taking their expected samples and accuracy change from those cells (marked measured)
where they exist, from the simulation elsewhere."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from bench.early_stopping import problems as bench_problems
from calibration.calibrate import rebuild
from calibration.replay import replay_stopping
from calibration.samples import profile_samples
from planner.cli.main import main
from planner.core.profiles import load_profile, static_rows
from planner.core.stopping import NEVER, parse_rule
from planner.plan.search import Budget, PlanRequest, predict_config, priced_candidates
from planner.plan.stopping import stopping_candidates
from planner.predict.modelio import DEFAULT_MODEL, load_planner_model, read_manifest, save_model, scaling_file
from planner.predict.predictor import ScalingPredictor
from planner.predict.samples import profile_sample_sets
from planner.predict.scalingfit import fit_set
from planner.predict.stopping import measured_stops

ROOT = Path(__file__).resolve().parents[1]
POLICY = "Qwen/Qwen2.5-Coder-0.5B-Instruct"
STOPS = ("beta:0.95", "esc:4")


@pytest.fixture(scope="module")
def replayed(tmp_path_factory) -> Path:
    """A copy of the shipped cpu_arith_qwen calibration, re-derived with two stopping rules."""
    folder = tmp_path_factory.mktemp("prof") / "cpu_arith_qwen"
    shutil.copytree(ROOT / "profiles" / "cpu_arith_qwen", folder)
    rebuild(folder, stops=STOPS)
    return folder


def test_replayed_rows_equal_the_bench_replay_of_the_same_runs(replayed):
    """calibration's stop rows (derive -> replay_table) against the bench's reading of the same
    runs (planner.predict.samples -> replay_stopping), per problem, majority and checker vote."""
    rec = load_profile(replayed).records
    df = profile_samples(replayed)
    for score, method, prm in (
        (None, "majority", "none"),
        ("score:arith-check:min", "best_of_n", "arith-check"),
    ):
        probs = bench_problems(df, score)
        ids = sorted(df["problem_id"].unique())
        for text in STOPS:
            rows = rec[
                (rec["stop"] == text) & (rec["n"] == 16) & (rec["method"] == method) & (rec["prm"] == prm)
            ]
            if method == "best_of_n":
                rows = rows[rows["aggregation"] == "min"]
            rows = rows.set_index("problem_id").loc[ids]
            got = [replay_stopping(a, t, 16, parse_rule(text), s) for a, t, s in probs]
            assert rows["accuracy"].tolist() == [c for c, _ in got]
            assert rows["accuracy_at_cap"].tolist() == [
                replay_stopping(a, t, 16, NEVER, s)[0] for a, t, s in probs
            ]
            assert rows["samples_used"].tolist() == [float(u) for _, u in got]
    beta = rec[(rec["stop"] == "beta:0.95") & (rec["n"] == 16) & (rec["method"] == "majority")]
    assert beta["samples_used"].mean() < 16  # it does stop early on this policy


def test_measured_cells_and_the_fit_keeps_them(replayed):
    rec = load_profile(replayed).records
    cells = measured_stops(rec, POLICY, "arith")
    key = {"method": "majority", "prm": "none", "aggregation": "none", "stop": "beta:0.95", "n": 16}
    mine = [c for c in cells if all(c[k] == v for k, v in key.items())]
    assert {c["bin"] for c in mine} == {"all", *set(rec["difficulty"])}
    whole = next(c for c in mine if c["bin"] == "all")
    rows = rec[(rec["stop"] == "beta:0.95") & (rec["n"] == 16) & (rec["method"] == "majority")]
    fixed = rec[(rec["stop"] == "") & (rec["n"] == 16) & (rec["method"] == "majority")]
    assert whole["problems"] == 100
    assert whole["accuracy"] == pytest.approx(rows["accuracy"].mean())
    assert whole["samples_used"] == pytest.approx(rows["samples_used"].mean())
    assert whole["at_cap"] == pytest.approx(rows["accuracy_at_cap"].mean())  # same order, same ties
    # a profile written before accuracy_at_cap: the fixed-N rows at the cap instead
    old = measured_stops(rec.drop(columns="accuracy_at_cap"), POLICY, "arith")
    old_whole = next(c for c in old if all(c[k] == v for k, v in {**key, "bin": "all"}.items()))
    assert old_whole["at_cap"] == pytest.approx(fixed["accuracy"].mean())
    parts = [c for c in mine if c["bin"] != "all"]
    assert sum(c["problems"] for c in parts) == 100
    assert sum(c["samples_used"] * c["problems"] for c in parts) / 100 == pytest.approx(whole["samples_used"])
    # the fit keeps them in the set's entry; a profile without stop rows adds no key
    (s,) = profile_sample_sets(replayed, rec)
    entry = fit_set(s, rec, n_boot=0, ns=(16,))
    assert entry["stopping"] == cells
    plain = static_rows(load_profile(ROOT / "profiles" / "cpu_arith_qwen").records)
    assert measured_stops(plain, POLICY, "arith") == []


def _predictor_with(cells: list[dict]) -> tuple[ScalingPredictor, dict]:
    """The shipped model with these cells added to the Qwen arith set's entry."""
    regressor, _ = load_planner_model(None, predictor="regressor")
    base, _ = load_planner_model(None, predictor="scaling")
    doc = json.loads(json.dumps(base.doc))
    (entry,) = [e for e in doc["sets"] if (e["policy"], e["dataset"]) == (POLICY, "arith")]
    entry["stopping"] = cells
    return ScalingPredictor(regressor, doc), doc


def _adaptive(model, difficulty=None):
    request = PlanRequest(
        policies=[POLICY],
        budget=Budget("n", 16),
        prms=["arith-check"],
        dataset="arith",
        difficulty=difficulty,
        methods=("majority", "best_of_n"),
        aggregations=("min",),
        selections=("vote",),
        stop_rules=("beta:0.95", "beta:0.9"),
    )
    _, by_name, dataset, diff = priced_candidates(request)
    return stopping_candidates(model, request, by_name, dataset, diff).set_index(
        ["method", "prm", "stop", "n"]
    )


def test_adaptive_candidates_use_the_measured_cells(replayed):
    rec = load_profile(replayed).records
    cells = measured_stops(rec, POLICY, "arith")
    model, _ = _predictor_with(cells)
    base, _ = load_planner_model(None, predictor="scaling")
    got, before = _adaptive(model), _adaptive(_predictor_with([])[0])  # before: no replayed cells

    def cell(method, prm, stop, n, b="all"):
        agg = "none" if method == "majority" else "min"
        want = {"method": method, "prm": prm, "aggregation": agg, "stop": stop, "n": n, "bin": b}
        return next(c for c in cells if all(c[k] == v for k, v in want.items()))

    for method, prm in (("majority", "none"), ("best_of_n", "arith-check")):
        key = (method, prm, "beta:0.95", 16)
        row, old, c = got.loc[key], before.loc[key], cell(method, prm, "beta:0.95", 16)
        assert row["stop_basis"] == "measured" and old["stop_basis"] == "predicted"
        assert row["expected_samples"] == pytest.approx(c["samples_used"])
        assert row["measured_accuracy"] == pytest.approx(c["accuracy"]) and row["measured_problems"] == 100
        # the fixed-N twin's prediction plus the replayed change against the cap
        twin = _fixed(base, method, prm, 16)
        assert row["predicted_accuracy"] == pytest.approx(
            twin["predicted_accuracy"] + c["accuracy"] - c["at_cap"]
        )
        # priced at the replayed samples (one prompt, then each sample: linear from N = 1 to 2)
        one, two = (_fixed(base, method, prm, n)["flops_per_problem"] for n in (1, 2))
        assert row["flops_per_problem"] == pytest.approx(one + (c["samples_used"] - 1) * (two - one))
    # a rule the profile did not replay stays simulated
    assert got.loc[("majority", "none", "beta:0.9", 16), "stop_basis"] == "predicted"
    assert math.isnan(got.loc[("majority", "none", "beta:0.9", 16), "measured_accuracy"])
    # one bin: that bin's cell
    hard = _adaptive(model, "hard").loc[("majority", "none", "beta:0.95", 16)]
    assert hard["expected_samples"] == pytest.approx(
        cell("majority", "none", "beta:0.95", 16, "hard")["samples_used"]
    )


def _fixed(model, method: str, prm: str, n: int) -> dict:
    """The planner's fixed-N record of this method (weighted vote with the checker's min score)."""
    agg = "none" if method == "majority" else "min"
    return predict_config(model, POLICY, prm, method, agg, "vote", n, None, dataset="arith")


def test_plan_table_shows_measured_and_predicted(replayed, tmp_path, capsys, monkeypatch):
    """`ttsplan plan --model M --stop ...` with a model file whose scaling document has the cells."""
    monkeypatch.setenv("COLUMNS", "200")  # the table's width: one line per row
    rec = load_profile(replayed).records
    model, doc = _predictor_with(measured_stops(rec, POLICY, "arith"))
    out = tmp_path / "m.skops"
    target, data, entry = scaling_file(doc, out)
    extra = {**read_manifest(DEFAULT_MODEL)["extra"], "scaling": entry}
    save_model(model.regressor, out, "test", extra=extra, companions={target: data})
    argv = ["plan", "--policy", POLICY, "--dataset", "arith", "--budget-n", "16", "--model", str(out)]
    argv += ["--predictor", "scaling", "--method", "majority", "--stop", "beta:0.95", "--stop", "beta:0.9"]
    argv += ["--top", "20"]
    try:
        main([*argv, "--json"])
    except SystemExit as exc:
        assert exc.code == 0
    plan = json.loads(capsys.readouterr().out)
    rows = {(r["stop"], r["n"]): r for r in [plan, *plan["alternatives"]] if r.get("stop")}
    assert rows[("beta:0.95", 16)]["stop_basis"] == "measured"
    assert (
        rows[("beta:0.9", 16)]["stop_basis"] == "predicted"
        and "measured_accuracy" not in rows[("beta:0.9", 16)]
    )
    try:
        main(argv)
    except SystemExit as exc:
        assert exc.code == 0
    text = capsys.readouterr().out
    acc = 100 * rows[("beta:0.95", 16)]["measured_accuracy"]
    assert f"samples, measured {acc:.1f}% of 100)" in text
    assert "predicted)" in text
    assert np.isfinite(rows[("beta:0.95", 16)]["expected_samples"])
