"""AccuracyRegressor, features and grouped CV on small synthetic and shipped profile records."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone, is_regressor
from sklearn.exceptions import NotFittedError

from planner.core.errors import UserError
from planner.core.profiles import default_profile_dirs, load_profiles
from planner.predict.features import ConfigFeatures, prepare_training
from planner.predict.regressor import AccuracyRegressor, fit_profiles, grouped_cv
from tests.plan_helpers import POLICIES, PRM, records, true_accuracy


@pytest.fixture(scope="module")
def fitted():
    model, report = fit_profiles(records())
    return model, report


def config(policy, method="best_of_n", n=8, prm=PRM, agg="last", sel="max", width=None, **extra):
    if method in ("cot", "majority"):
        prm, agg, sel = "none", "none", ("none" if method == "cot" else "vote")
    row = {
        "policy": policy,
        "prm": prm,
        "method": method,
        "aggregation": agg,
        "selection": sel,
        "n": n,
        "beam_width": width,
        "difficulty": "all",
        "dataset": "math500",
        **extra,
    }
    return pd.DataFrame([row])


def test_is_a_regressor_and_clones():
    model = AccuracyRegressor(max_iter=20)
    assert is_regressor(model)
    assert clone(model).get_params()["max_iter"] == 20


def test_fits_the_known_law(fitted):
    model, report = fitted
    rows, _ = prepare_training(records())
    pred = model.predict(rows)
    truth = rows["accuracy"].to_numpy()
    assert report["rows_used"] == len(rows) == len(records())  # nothing dropped, nothing pooled
    assert np.all((pred >= 0) & (pred <= 1))
    assert np.mean(np.abs(pred - truth)) < 0.03  # in-sample, on a smooth law


def test_monotone_in_n_and_size(fitted):
    model, _ = fitted
    policy = "Qwen/Qwen2.5-3B-Instruct"
    by_n = [model.predict(config(policy, n=n))[0] for n in (2, 4, 8, 16)]
    assert all(b >= a for a, b in zip(by_n, by_n[1:], strict=False))
    assert by_n[-1] > by_n[0]
    sizes = ["Qwen/Qwen2.5-0.5B-Instruct", "Qwen/Qwen2.5-3B-Instruct", "Qwen/Qwen2.5-14B-Instruct"]
    by_size = [model.predict(config(p, method="cot", n=1))[0] for p in sizes]
    assert by_size[0] < by_size[1] < by_size[2]


def test_interval_brackets_prediction(fitted):
    model, _ = fitted
    rows = pd.concat([config(p, n=4) for p in POLICIES], ignore_index=True)
    pred, low, high = model.predict_all(rows)
    low2, high2 = model.predict_interval(rows)
    assert np.array_equal(low, low2) and np.array_equal(high, high2)
    assert np.all((0 <= low) & (low <= pred) & (pred <= high) & (high <= 1))
    assert model.half_width_ > 0


def test_generalises_to_a_held_out_policy():
    """Qwen2.5-7B left out of training: its predictions stay near the known law."""
    train = records(policies=[p for p in POLICIES if p != "Qwen/Qwen2.5-7B-Instruct"])
    model, _ = fit_profiles(train)
    held = "Qwen/Qwen2.5-7B-Instruct"
    for method, n in (("cot", 1), ("majority", 8), ("best_of_n", 8)):
        pred = model.predict(config(held, method=method, n=n))[0]
        assert abs(pred - true_accuracy(held, method, n)) < 0.12


def test_calibrated_range(fitted):
    model, _ = fitted
    inside = config("Qwen/Qwen2.5-3B-Instruct", n=8)
    assert model.in_calibrated_range(inside).tolist() == [True]
    cases = [
        config("Qwen/Qwen2.5-72B-Instruct", n=8),  # size beyond the Qwen2.5 sizes seen
        config("Qwen/Qwen2.5-3B-Instruct", n=64),  # N beyond what was seen
        config("Qwen/Qwen2.5-3B-Instruct", method="beam", n=8, width=4),  # method never seen
        config("Qwen/Qwen2.5-3B-Instruct", prm="Skywork/Skywork-o1-Open-PRM-Qwen-2.5-7B"),  # PRM family
        config("Qwen/Qwen2.5-3B-Instruct", agg="prod"),  # aggregation never seen
        config("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", n=8),  # policy family never seen
        config("Qwen/Qwen2.5-3B-Instruct", dataset="aime24"),
    ]
    for row in cases:
        assert model.in_calibrated_range(row).tolist() == [False], row.iloc[0].to_dict()
        pred = model.predict(row)  # unknown categories must not crash
        assert 0 <= pred[0] <= 1


def test_model_given_by_its_spec_columns(fitted):
    """A policy outside the registry, described by params and family columns."""
    model, _ = fitted
    row = config("my-private-model", n=8, policy_params=3.09e9, policy_family="qwen2.5")
    same = config("Qwen/Qwen2.5-3B-Instruct", n=8)
    assert model.predict(row)[0] == pytest.approx(model.predict(same)[0], abs=0.02)
    assert model.in_calibrated_range(row).tolist() == [True]


def test_bad_arguments_name_themselves():
    rows, _ = prepare_training(records())
    model = AccuracyRegressor(max_iter=10)
    with pytest.raises(UserError, match="X must be a pandas DataFrame"):
        model.fit(rows.to_numpy(), rows["accuracy"])
    with pytest.raises(UserError, match="X is missing column.*difficulty"):
        model.fit(rows.drop(columns=["difficulty"]), rows["accuracy"])
    with pytest.raises(UserError, match=r"y must hold accuracies in \[0, 1\]"):
        model.fit(rows, rows["accuracy"] * 100)
    with pytest.raises(UserError, match="y must be 1-D"):
        model.fit(rows, rows["accuracy"][:3])
    with pytest.raises(UserError, match="y contains NaN"):
        model.fit(rows, rows["accuracy"].where(rows.index > 0))
    with pytest.raises(UserError, match="sample_weight must be non-negative"):
        model.fit(rows, rows["accuracy"], sample_weight=-rows["weight"])
    with pytest.raises(UserError, match="coverage must be"):
        AccuracyRegressor(coverage=1.5).fit(rows, rows["accuracy"])
    with pytest.raises(UserError, match="sources must have one label per row"):
        model.fit(rows, rows["accuracy"], sources=["a", "b"])
    with pytest.raises(NotFittedError):
        model.predict(rows)
    with pytest.raises(NotFittedError):
        model.in_calibrated_range(rows)


def test_features_one_hot_and_unknown():
    rows, _ = prepare_training(records())
    features = ConfigFeatures().fit(rows)
    names = list(features.get_feature_names_out())
    Z = features.transform(rows)
    assert Z.shape == (len(rows), len(names))
    assert "method=best_of_n" in names and "prm_family=qwen2.5-math-prm" in names
    block = [names.index(n) for n in names if n.startswith("method=")]
    assert np.all(Z[:, block].sum(axis=1) == 1)
    unknown = config("Qwen/Qwen2.5-3B-Instruct", method="dvts", n=8, width=4)
    assert features.transform(unknown)[0, block].sum() == 0  # unseen category: all zeros
    assert Z[:, names.index("log2_n")].max() == 4  # log2(16)


def test_prepare_training_drops_with_counts():
    base = records(policies=POLICIES[:2])
    extra = base.iloc[:4].copy()
    extra["method"] = "unstated"
    extra2 = base.iloc[:3].copy()
    extra2["n"] = pd.NA
    extra2["method"] = "majority"
    extra3 = base.iloc[:2].copy()
    extra3["policy"] = "GPT-4o"
    extra4 = base.iloc[:5].copy()
    extra4["policy"] = "unstated"  # kept: size missing, family "unstated"
    frame = pd.concat([base, extra, extra2, extra3, extra4], ignore_index=True)
    rows, dropped = prepare_training(frame)
    assert dropped == {"method unstated or unknown": 4, "N unstated": 3, "policy not in registry": 2}
    assert len(rows) == len(base) + 5
    unstated = rows[rows["policy"] == "unstated"]
    assert unstated["policy_params"].isna().all() and (unstated["policy_family"] == "unstated").all()


def test_pooling_identical_rows_weights_by_problems():
    base = records(policies=POLICIES[:1]).iloc[:1]  # one cot row, 500 problems
    twin = base.copy()
    twin["accuracy"] = 0.0
    twin["n_problems"] = 100
    rows, _ = prepare_training(pd.concat([base, twin], ignore_index=True))
    assert len(rows) == 1
    assert rows["weight"].iloc[0] == 600
    assert rows["accuracy"].iloc[0] == pytest.approx(base["accuracy"].iloc[0] * 500 / 600)


def test_grouped_cv_shape():
    frame = records(policies=POLICIES[:4])
    cv = grouped_cv(frame, group="policy", model=AccuracyRegressor(max_iter=30, cv_folds=3))
    assert list(cv.columns) == ["policy", "rows", "problems", "mae_points", "coverage"]
    assert sorted(cv["policy"]) == sorted(POLICIES[:4])
    assert cv["rows"].sum() == len(frame)
    assert (cv["mae_points"] >= 0).all() and (cv["mae_points"] <= 100).all()
    assert cv["coverage"].between(0, 1).all()
    with pytest.raises(UserError, match="group must be a column"):
        grouped_cv(frame, group="nope")


def test_shipped_profiles_fit_and_report_drops():
    frame = load_profiles(default_profile_dirs())
    if frame.empty:
        pytest.skip("no shipped profiles")
    model, report = fit_profiles(frame, AccuracyRegressor(max_iter=30))
    known = {"cot", "majority", "best_of_n", "beam", "dvts"}
    unstated_method = (~frame["method"].isin(known)).sum()
    assert report["dropped"].get("method unstated or unknown", 0) == unstated_method
    assert report["records"] == len(frame)
    pred = model.predict(config("Qwen/Qwen2.5-1.5B-Instruct", method="cot", n=1))[0]
    assert 0.05 < pred < 0.95


def test_model_of_another_format_is_refused(fitted):
    model, _ = fitted
    stale = clone(model)
    stale.__dict__.update(model.__dict__)
    stale.format_version_ = 0
    with pytest.raises(UserError, match="refit it"):
        stale.predict(config("Qwen/Qwen2.5-3B-Instruct"))


def test_each_source_weighs_the_same_in_the_interval():
    """Held-out Qwen2.5-Coder-0.5B (arith and MATH-500): the shipped profiles hold six art_of_tts
    reasoning models the grouped folds predict well; with every policy weighing the same they set
    the half-width, and the held-out CPU policy's cells fall outside it; with each profile weighing
    the same they do not. (Gemma-3-270m showed it until Qwen2.5-Coder's tree cells joined the
    profiles: held out now, it is covered 0.88 either way.)"""
    held_out = "Qwen/Qwen2.5-Coder-0.5B-Instruct"
    frame = load_profiles(default_profile_dirs())
    train = frame[frame["policy"] != held_out]
    by_source, _ = fit_profiles(train)
    by_policy, _ = fit_profiles(train.drop(columns="profile"))  # no sources known: each policy the same
    assert by_source.half_width_ > by_policy.half_width_ + 0.5
    held, _ = prepare_training(frame[frame["policy"] == held_out])
    y = held["accuracy"].to_numpy()
    covered = {}
    for name, model in (("source", by_source), ("policy", by_policy)):
        _, low, high = model.predict_all(held)
        covered[name] = ((y >= low - 1e-9) & (y <= high + 1e-9)).mean()
    assert covered["source"] >= 0.8 > covered["policy"]
