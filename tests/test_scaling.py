"""planner.predict.scaling on real small data: the Qwen2.5-Math MATH-100 samples (RM scores) and
the shipped Gemma arith calibration run (arith-check step scores)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from calibration import store
from calibration.replay import best_of_n_expectation, majority_expectation
from planner.core.errors import UserError
from planner.predict.scaling import ProblemModel

ROOT = Path(__file__).resolve().parent.parent
QWEN = Path("/work/shared/data/published/persample_qwen25math_math100_8samples_rmscores.csv")
GEMMA = ROOT / "profiles" / "cpu_arith_gemma" / "runs"


def _gemma() -> pd.DataFrame:
    """Answers, correctness and the arith-check 'min' score of the Gemma run (16 samples x 100)."""
    by_step: dict = {}
    for path in sorted(GEMMA.glob("*/batch-*.jsonl")):
        for r in store.read(path)[0]:
            by_step.setdefault(r["step"], {}).setdefault(r["problem_id"], r["data"])
    rows = []
    for pid, s in by_step["sample"].items():
        steps = by_step["score:arith-check"][pid]["step_scores"]
        for i, (a, ok) in enumerate(zip(s["answers"], s["correct"], strict=True)):
            rows.append(
                {
                    "problem_id": pid,
                    "correct": bool(ok),
                    "answer": a.strip() or None,
                    "score:arith-check:min": min(steps[i]) if steps[i] else 0.0,
                }
            )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def gemma() -> pd.DataFrame:
    return _gemma()


@pytest.fixture(scope="module")
def qwen() -> pd.DataFrame:
    if not QWEN.exists():
        pytest.skip(f"{QWEN} is not on this machine")
    df = pd.read_csv(QWEN)
    return pd.DataFrame(
        {
            "problem_id": df["idx"],
            "correct": df["correct"].astype(bool),
            "answer": df["pred"].astype(str),
            "score:rm:last": df["rm_score"],
        }
    )


@pytest.fixture(scope="module")
def gemma_model(gemma) -> ProblemModel:
    return ProblemModel.fit(gemma, n_boot=8, seed=0)


def _exact(df: pd.DataFrame, method: str, n: int, score: str | None = None) -> float:
    """Exact replay (mean over all n-subsets), averaged over problems; max drops unanswered."""
    accs = []
    for _, g in df.groupby("problem_id"):
        keys = list(g["answer"])
        ok = g["correct"].to_numpy(dtype=float)
        table = {a: c for a, c in zip(keys, ok, strict=False) if a is not None}
        if method == "majority":
            accs.append(majority_expectation(keys, table, n))
        else:
            s = g[score].to_numpy(dtype=float).copy()
            s[[a is None for a in keys]] = s.min() - 1
            accs.append(best_of_n_expectation(s, ok, n))
    return float(np.mean(accs))


def _all_methods(model: ProblemModel, verifier: str, aggregation: str):
    yield {"method": "majority"}
    for sel in ("max", "vote"):
        yield {"method": "best_of_n", "verifier": verifier, "aggregation": aggregation, "selection": sel}


def test_n1_is_pass1_for_every_method(gemma_model, qwen):
    qwen_model = ProblemModel.fit(qwen, n_boot=0)
    for model, verifier, agg in ((gemma_model, "arith-check", "min"), (qwen_model, "rm", "last")):
        p = model.params["success"]
        mean_p = float(
            np.sum(np.array(p["weights"]) * np.array(p["a"]) / (np.array(p["a"]) + np.array(p["b"])))
        )
        for kw in _all_methods(model, verifier, agg):
            assert model.predict(n=1, **kw)["accuracy"] == mean_p
            for b in model.bins:  # per bin too: the mean of that bin's p
                one = model.predict(n=1, bin=b, interval=False, **kw)["accuracy"]
                assert one == model.predict(method="majority", n=1, bin=b, interval=False)["accuracy"]


def test_pass1_matches_the_data(qwen):
    model = ProblemModel.fit(qwen, n_boot=0)
    assert model.predict(method="majority", n=1)["accuracy"] == pytest.approx(
        qwen["correct"].mean(), abs=0.01
    )


def test_same_k_agrees_with_exact_replay(qwen):
    """Fit and predict on the same 8 samples: the model reproduces the exact replay within 3 points."""
    model = ProblemModel.fit(qwen, n_boot=0)
    for n in (2, 4, 8):
        assert model.predict(method="majority", n=n)["accuracy"] == pytest.approx(
            _exact(qwen, "majority", n), abs=0.03
        )
        bon = model.predict(method="best_of_n", n=n, verifier="rm", aggregation="last", selection="max")
        assert bon["accuracy"] == pytest.approx(_exact(qwen, "best_of_n", n, "score:rm:last"), abs=0.03)


def test_vote_reads_the_wrong_answers_of_problems_it_can_win(gemma, gemma_model):
    """The wrong-answer concentration comes from the problems with a right sample: Gemma's never
    solved problems scatter their wrong answers (alpha 24.5 over all problems against 10.1 over
    these), and with every problem's alpha majority@16 came out 18.0% against 15.7% replayed."""
    from planner.predict import scaling

    data = scaling._read(gemma, "problem_id", "correct", "answer", None)
    voting = [g for g, c in zip(data.wrong_groups, data.c, strict=True) if c > 0]
    assert gemma_model.params["alpha"] == scaling._fit_alpha(voting)
    assert gemma_model.params["alpha"] < 0.5 * scaling._fit_alpha(data.wrong_groups)
    for n in (4, 16):
        got = gemma_model.predict(method="majority", n=n, interval=False)["accuracy"]
        assert got == pytest.approx(_exact(gemma, "majority", n), abs=0.012)


def test_curves_rise_for_a_separating_verifier(qwen):
    """With equal spread for correct and wrong scores and delta > 0 the likelihood ratio rises with
    the score, so BoN-max cannot fall as N grows; majority rises here too (a dominant right answer)."""
    fitted = ProblemModel.fit(qwen, n_boot=0)
    assert fitted.params["scores"]["rm:last"]["delta"] > 0.5
    d = fitted.to_dict()
    sc = d["params"]["scores"]["rm:last"]
    sc["sigma_wrong"] = sc["sigma_correct"]
    model = ProblemModel.from_dict(d)
    ns = [1, 2, 4, 8, 16, 64, 256, 1024]
    kw = {
        "method": "best_of_n",
        "verifier": "rm",
        "aggregation": "last",
        "selection": "max",
        "interval": False,
    }
    bon = [model.predict(n=n, **kw)["accuracy"] for n in ns]
    maj = [model.predict(method="majority", n=n, interval=False)["accuracy"] for n in ns]
    assert all(b >= a - 1e-9 for a, b in zip(bon, bon[1:], strict=False))
    assert all(
        b >= a - 0.005 for a, b in zip(maj, maj[1:], strict=False)
    )  # Monte Carlo: half a point of slack
    assert bon[-1] > bon[0] + 0.03 and maj[-1] > maj[0] + 0.01


def test_interval_is_seeded_and_brackets_the_point(gemma, gemma_model):
    kw = {
        "method": "best_of_n",
        "n": 16,
        "verifier": "arith-check",
        "aggregation": "min",
        "selection": "vote",
    }
    a = gemma_model.predict(**kw)
    assert a == gemma_model.predict(**kw)  # deterministic
    assert a["low"] <= a["accuracy"] <= a["high"] and a["high"] - a["low"] > 0
    again = ProblemModel.fit(gemma, n_boot=8, seed=0)
    assert again.predict(**kw) == a


def test_json_round_trip(gemma_model):
    text = json.dumps(gemma_model.to_dict())
    back = ProblemModel.from_dict(json.loads(text))
    kw = {"method": "best_of_n", "n": 64, "verifier": "arith-check", "aggregation": "min", "selection": "max"}
    assert back.predict(**kw) == gemma_model.predict(**kw)
    assert back.predict(method="majority", n=8, bin="hard") == gemma_model.predict(
        method="majority", n=8, bin="hard"
    )


def test_bins_order_by_difficulty(gemma_model):
    acc = {
        b: gemma_model.predict(method="majority", n=8, bin=b, interval=False)["accuracy"]
        for b in gemma_model.bins
    }
    assert acc["hard"] < acc["medium"] < acc["easy"]


def test_unanswered_never_win(gemma):
    """A problem whose wrong samples are all unanswered is always solved by majority and BoN-max."""
    df = gemma.copy()
    df.loc[~df["correct"], "answer"] = None
    model = ProblemModel.fit(df, n_boot=0)
    solved_any = df.groupby("problem_id")["correct"].any().mean()
    maj = model.predict(method="majority", n=1024, interval=False)["accuracy"]
    kw = {"verifier": "arith-check", "aggregation": "min", "interval": False}
    bon = model.predict(method="best_of_n", n=1024, selection="max", **kw)["accuracy"]
    assert maj == pytest.approx(bon, abs=0.01)
    assert maj > solved_any - 0.1  # no wrong answer to lose to: only never-right problems fail


def _bad(df: pd.DataFrame, **kw):
    with pytest.raises(UserError) as err:
        ProblemModel.fit(df, n_boot=0, **kw)
    assert "\n" not in str(err.value)
    return str(err.value)


def test_bad_input(gemma, gemma_model):
    small = gemma[gemma["problem_id"].isin(gemma["problem_id"].unique()[:5])].copy()
    nan = small.copy()
    nan.loc[nan.index[3], "score:arith-check:min"] = np.nan
    assert "score:arith-check:min" in _bad(nan)
    one = small.groupby("problem_id").head(1)
    assert _bad(one).startswith("k must be at least 2 samples per problem, got 1")
    empty = small.copy()
    empty["problem_id"] = pd.Categorical(
        empty["problem_id"], categories=[*empty["problem_id"].unique(), "ghost"]
    )
    assert "ghost" in _bad(empty)
    no_correct = small.astype({"correct": object})
    no_correct.loc[no_correct.index[0], "correct"] = np.nan
    assert "correct" in _bad(no_correct)
    assert "problem_id" in _bad(small.drop(columns="problem_id"))
    with pytest.raises(UserError, match="n must be"):
        gemma_model.predict(method="majority", n=1025)
    with pytest.raises(UserError, match="n must be"):
        gemma_model.predict(method="majority", n=0)
    with pytest.raises(UserError, match="not fitted"):
        gemma_model.predict(method="best_of_n", n=4, verifier="lm-judge", aggregation="min", selection="max")
    with pytest.raises(UserError, match="selection"):
        gemma_model.predict(
            method="best_of_n", n=4, verifier="arith-check", aggregation="min", selection="top"
        )
    with pytest.raises(UserError, match="method"):
        gemma_model.predict(method="beam", n=4)


def test_interval_is_for_the_accuracy_on_new_problems(gemma):
    """The interval adds the new problems' draw to the fit's uncertainty: fitted on half of
    Gemma's problems, the pass@1 interval for the other 50 is sqrt(sd_fit^2 + a(1-a)/50) wide
    on each side (times z), narrower for more problems, and the other half's measured pass@1
    lies in it."""
    from planner.predict.scaling import Z

    ids = sorted(gemma["problem_id"].unique())
    train, test = gemma[gemma["problem_id"].isin(ids[::2])], gemma[gemma["problem_id"].isin(ids[1::2])]
    model = ProblemModel.fit(train, n_boot=8, seed=0)
    r = model.predict(method="majority", n=1, problems=50)
    a = r["accuracy"]
    assert r["problems"] == 50 and r["sd_fit"] > 0
    assert r["high"] - a == pytest.approx(Z * np.sqrt(r["sd_fit"] ** 2 + a * (1 - a) / 50))
    assert r["low"] <= test["correct"].mean() <= r["high"]
    wide = model.predict(method="majority", n=1, problems=10)
    default = model.predict(method="majority", n=1)  # as many problems as fitted: 50
    assert (
        wide["high"] - wide["low"] > r["high"] - r["low"] == pytest.approx(default["high"] - default["low"])
    )
    many = model.predict_many(method="majority", ns=[1, 4], problems=50)
    assert (
        many[0]["low"] == pytest.approx(r["low"]) and many[1]["low"] < many[1]["accuracy"] < many[1]["high"]
    )
    for bad in (0, -3, 2.5, True):
        with pytest.raises(UserError, match="problems must be"):
            model.predict(method="majority", n=4, problems=bad)


def test_beta_mixture_gradient_matches_finite_differences():
    """The fit's analytic gradient against central differences of the likelihood, 1-3 parts."""
    from scipy import optimize

    from planner.predict.scaling import _beta_mix_nll, _beta_mix_nll_grad

    rng = np.random.default_rng(0)
    k = np.full(40, 16.0)
    c = rng.binomial(16, rng.beta(0.5, 1.5, 40)).astype(float)
    w = rng.integers(1, 4, 40).astype(float)
    for j in (1, 2, 3):
        theta = rng.normal(size=3 * j - 1)
        value, grad = _beta_mix_nll_grad(theta, c, k, w, j)
        numeric = optimize.approx_fprime(theta, lambda t, j=j: _beta_mix_nll(t, c, k, w, j), 1e-6)
        assert value == _beta_mix_nll(theta, c, k, w, j)
        np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-3)
