"""Per-problem models of policies without samples (planner.predict.transfer): parameters recovered
from the cells they imply, the shipped profiles' transfer document, and the predictor's rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, logit

from planner.core.profiles import default_profile_dirs, load_profiles
from planner.predict.modelio import DEFAULT_MODEL, load_model, load_scaling
from planner.predict.predictor import ScalingPredictor
from planner.predict.scaling import ProblemModel, _bon_max
from planner.predict.scalingfit import tree_shift
from planner.predict.transfer import (
    TransferModel,
    _solve_delta,
    beta,
    bins_table,
    fit_success,
    fit_transfer,
    pooled_tree,
    published_scores,
)

WRONG = {"alpha": 2.0, "missing": {"a": 0.5, "b": 10.0}}
PRM = "Qwen/Qwen2.5-Math-PRM-7B"


def test_delta_is_recovered_from_a_best_of_n_cell():
    dist = beta(0.4, 1.5)
    cell = _bon_max(dist, WRONG["missing"], published_scores(1.2), 16)
    assert cell > 0.4
    assert _solve_delta(cell, dist, WRONG["missing"], 16) == pytest.approx(1.2, abs=0.02)


def test_mu_and_kappa_are_recovered_from_pass1_and_majority_cells():
    mu, kappa = 0.35, 1.0
    model = ProblemModel({"success": beta(mu, kappa), "scores": {}, **WRONG})
    maj = model.predict(method="majority", n=256, interval=False, sims=20000)["accuracy"]
    got = fit_success({"pass1": [mu], "majority": [(256, maj)]}, WRONG, kappa0=8.0, offset=0.0, offset_sd=1.0)
    assert got["mu"] == pytest.approx(mu, abs=0.02)
    assert got["kappa"] <= 2.0  # moved from the prior (8) to the truth by the majority cell
    # majority cells alone hardly tell kappa apart: mu is still found
    alone = fit_success({"majority": [(256, maj)]}, WRONG, kappa0=1.0, offset=0.0, offset_sd=1.0)
    assert alone["mu"] == pytest.approx(mu, abs=0.02)


def test_bins_split_the_population_like_eight_samples():
    table = bins_table(0.3, 1.0)
    assert set(table) == {"easy", "medium", "hard"}
    assert [c for c, _, _ in table["hard"]] == [0] and min(c for c, _, _ in table["easy"]) == 5
    assert sum(w for rows in table.values() for _, _, w in rows) == pytest.approx(1.0)


@pytest.fixture(scope="module")
def shipped():
    records = load_profiles(default_profile_dirs())
    model, manifest = load_model(DEFAULT_MODEL)
    doc = load_scaling(DEFAULT_MODEL, manifest)
    doc = {**doc, "transfer": doc.get("transfer") or fit_transfer(doc["sets"], records)}
    return records, model, doc


def test_published_cells_anchor_a_policy_without_samples(shipped):
    records, _, doc = shipped
    t = doc["transfer"]
    anchor = {(p["policy"], p["dataset"]): p for p in t["policies"]}
    llama = anchor[("meta-llama/Llama-3.2-1B-Instruct", "math500")]
    model = TransferModel(t, "math500", llama["mu"], llama["kappa"])
    maj = records[
        (records["policy"] == "meta-llama/Llama-3.2-1B-Instruct")
        & (records["method"] == "majority")
        & (records["dataset"] == "math500")
    ]["accuracy"].iloc[0]
    assert model.predict("majority", "none", "none", "vote", "all", t["plateau_n"]) == pytest.approx(
        maj, abs=0.03
    )
    # the paper's PRM is known from published Best-of-N cells of other policies, and separates
    assert t["published_verifiers"][PRM]["cells"] >= 3
    assert t["published_verifiers"][PRM]["delta"] > 0.5
    assert t["half_width"]["cells"] > 50 and 0 < t["half_width"]["logit"] < 3


def _rows(policy, prm, method, n, aggregation="last", selection="max", difficulty="all"):
    return pd.DataFrame(
        {
            "policy": policy,
            "prm": prm,
            "method": method,
            "aggregation": aggregation,
            "selection": selection,
            "n": n,
            "beam_width": [4 if m in ("beam", "dvts") else -1 for m in method],
            "difficulty": difficulty,
            "dataset": "math500",
        }
    )


def test_predictor_answers_policies_without_samples_through_the_curves(shipped):
    _, model, doc = shipped
    pred = ScalingPredictor(model, doc)
    policy = "Qwen/Qwen2.5-1.5B-Instruct"
    one = pred.assess_frame(
        _rows(
            policy,
            ["none", PRM, PRM],
            ["majority", "best_of_n", "best_of_n"],
            [1, 1, 1],
            aggregation=["none", "last", "min"],
            selection=["vote", "max", "vote"],
        )
    )
    assert (one["source"] == "transferred model").all()
    assert one["predicted_accuracy"].nunique() == 1  # one sample is one answer
    f = pred.assess_frame(
        _rows(
            policy,
            ["none", PRM, PRM, PRM],
            ["majority", "best_of_n", "beam", "dvts"],
            [64] * 4,
            aggregation=["none", "last", "last", "last"],
            selection=["vote", "max", "max", "max"],
        )
    )
    assert list(f["source"]) == ["transferred model"] * 3 + ["regressor"]  # no DVTS cell of this PRM
    assert not f["in_calibrated_range"].iloc[3]
    acc, low, high = (f[c].to_numpy() for c in ("predicted_accuracy", "accuracy_low", "accuracy_high"))
    assert np.all(low[:3] <= acc[:3]) and np.all(acc[:3] <= high[:3])
    assert acc[1] > acc[0]  # the PRM's published cells say Best-of-N beats majority


def test_transferred_rows_do_not_depend_on_column_dtypes(shipped):
    """Profile records carry nullable Int64 N and the planner categorical columns: same answers."""
    _, model, doc = shipped
    rows = _rows(
        "Qwen/Qwen2.5-1.5B-Instruct",
        ["none", PRM, PRM],
        ["majority", "best_of_n", "best_of_n"],
        [1, 4, 16],
        aggregation=["none", "last", "min"],
        selection=["vote", "max", "vote"],
    )
    typed = rows.astype({"n": "Int64", "policy": "category", "prm": "category", "method": "category"})
    plain = ScalingPredictor(model, doc).assess_frame(rows)
    other = ScalingPredictor(model, doc).assess_frame(typed)
    assert (plain["source"] == "transferred model").all()
    pd.testing.assert_frame_equal(plain.reset_index(drop=True), other.reset_index(drop=True))


def test_pooled_tree_correction():
    trees = {
        "beam:a": {"shift": 0.1, "spread": 0.2, "n_measured": [4], "measured": [["last", "max"]]},
        "beam:b": {"shift": 0.3, "spread": 0.0, "n_measured": [8], "measured": [["*", "*"]]},
        "dvts:a": {"shift": 0.5, "spread": 0.1, "n_measured": [16], "measured": [["*", "*"]]},
    }
    got = pooled_tree(trees, "beam")
    assert got["shift"] == pytest.approx(0.2) and got["n_measured"] == [4, 8]
    assert got["spread"] == pytest.approx(np.sqrt(0.02 + 0.02))  # mean spread^2 + variance of shifts
    assert got["measured"] == [["*", "*"]]
    assert pooled_tree(trees, "dvts") is None  # one verifier is not a pool


def test_beam_for_a_verifier_without_tree_cells_uses_the_pooled_shift_out_of_range(shipped):
    """RLHFlow's PRM has Best-of-N cells but no beam cell: its beam row is Best-of-N moved by the
    mean shift of the verifiers with beam cells, outside the calibrated range, with a wider
    interval than a verifier's own correction gives."""
    _, model, doc = shipped
    pred = ScalingPredictor(model, doc)
    own, other = PRM, "RLHFlow/Llama3.1-8B-PRM-Deepseek-Data"
    assert f"beam:{other}" not in doc["transfer"]["trees"]
    f = pred.assess_frame(
        _rows(
            "Qwen/Qwen2.5-1.5B-Instruct",
            [other, other, own],
            ["best_of_n", "beam", "beam"],
            [16] * 3,
            aggregation=["last"] * 3,
            selection=["max"] * 3,
        )
    )
    assert (f["source"] == "transferred model").all()
    assert list(f["in_calibrated_range"]) == [True, False, True]
    pooled = pooled_tree(doc["transfer"]["trees"], "beam")
    acc = f["predicted_accuracy"].to_numpy()
    assert acc[1] == pytest.approx(expit(logit(acc[0]) + tree_shift(pooled, 16)))
    assert tree_shift(pooled, 16) == pytest.approx(pooled["shift"] + pooled["slope"])  # one doubling past 8
    width = (f["accuracy_high"] - f["accuracy_low"]).to_numpy()
    assert width[1] > width[2]


def test_fit_transfer_reads_fixed_n_rows_only(shipped):
    """Early-stopping and extrapolated rows are not cells: adding them (with accuracies far from
    the fixed-N cells at the same N) leaves the transfer document as it was."""
    records, _, doc = shipped
    gemma = records[(records["policy"] == "google/gemma-3-270m") & (records["method"] == "majority")]
    stop = gemma.assign(stop="esc:4", samples_used=2.0, accuracy_at_cap=gemma["accuracy"], accuracy=0.0)
    extra = gemma[gemma["n"] == 16].assign(n=256, accuracy=1.0, basis="extrapolated")
    more = pd.concat([records, stop, extra], ignore_index=True)
    assert fit_transfer(doc["sets"], more) == fit_transfer(doc["sets"], records)
