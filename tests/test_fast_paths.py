"""The fast paths give the results of the straightforward ones: the Best-of-N max integral
against a direct sum, the scaling tables with and without worker processes, ranking against
pandas' sort, and plans from the kept candidate tables and per-row results against the public
pieces (priced_candidates, score, rank, plan_record) with every cache emptied."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from planner.core.profiles import load_profiles
from planner.models import specs
from planner.plan import search
from planner.plan.search import Budget, PlanRequest, plan, plan_record, rank, score, within_budget
from planner.predict import modelio, scaling, scalingfit
from planner.predict.predictor import ScalingPredictor
from planner.predict.samples import profile_sample_sets
from tests.test_predictor import GEMMA, GEMMA_NAME

POLICIES = [GEMMA_NAME, "Qwen/Qwen2.5-1.5B-Instruct", "meta-llama/Llama-3.2-1B-Instruct"]


def _bon_max_direct(dist, missing, sc, ns):
    """Best-of-N max as first written: every N's powers of g and of g one cell down, whole arrays."""
    z = stats.norm.ppf(np.asarray(sc["cum"][:-1])) if sc["discrete"] else np.linspace(-7.0, 7.0, 281)
    z = np.concatenate([[-np.inf], z, [np.inf]])
    xu, wu = np.polynomial.hermite_e.hermegauss(scaling.U_NODES if sc["u_sd"] > 0 else 1)
    u, wu = sc["u_mean"] + sc["u_sd"] * xu, wu / wu.sum()
    cdf_c = stats.norm.cdf((z[None, :] - u[:, None] - sc["delta"]) / sc["sigma_correct"])
    cdf_w = stats.norm.cdf((z[None, :] - u[:, None]) / sc["sigma_wrong"])
    qc, qw = np.diff(cdf_c, axis=1), np.diff(cdf_w, axis=1)
    m, wm = scaling._beta_nodes(missing["a"], missing["b"], scaling.M_NODES)
    total = np.zeros(len(ns))
    for wj, aj, bj in zip(dist["weights"], dist["a"], dist["b"], strict=True):
        if wj < 1e-9:
            continue
        p, wp = scaling._beta_nodes(aj, bj, scaling.P_NODES)
        pw = ((1 - p)[:, None] * (1 - m)[None, :])[:, :, None, None] * qw[None, None]
        pc = np.broadcast_to(p[:, None, None, None] * qc[None, None], pw.shape)
        floor = ((1 - p)[:, None] * m[None, :])[:, :, None, None]
        g = np.clip(floor + np.cumsum(pc + pw, axis=-1), 0, 1)
        g_prev = np.concatenate([np.broadcast_to(floor, g.shape[:-1] + (1,)), g[..., :-1]], axis=-1)
        share = np.divide(pc, pc + pw, out=np.zeros_like(pc), where=(pc + pw) > 0)
        for i, k in enumerate(ns):
            acc = np.sum((g**k - np.clip(g_prev, 0, 1) ** k) * share, axis=-1)
            total[i] += wj * np.einsum("pmu,p,m,u->", acc, wp, wm, wu)
    return total


@pytest.fixture(scope="module")
def gemma_model() -> scaling.ProblemModel:
    """Gemma's first 30 problems (16 samples each, both verifiers), 2 bootstrap refits."""
    records = load_profiles([GEMMA])
    s = profile_sample_sets(GEMMA, records)[0]
    frame = s.frame[s.frame["problem_id"].isin(sorted(s.frame["problem_id"].unique())[:30])]
    keep = [c for c in frame.columns if c in ("problem_id", "correct", "answer") or c.startswith("score:")]
    return scaling.ProblemModel.fit(frame[keep], n_boot=2, seed=0)


def test_bon_max_equals_the_direct_sum(gemma_model):
    params = gemma_model.params
    continuous = {  # the continuous-score branch (281 cells), with a problem effect
        **next(iter(params["scores"].values())),
        "discrete": False,
        "u_sd": 0.4,
        "delta": 1.1,
        "sigma_correct": 0.8,
        "sigma_wrong": 1.2,
    }
    bins = [None, *sorted(gemma_model.bins)]
    ns = np.array([2.0, 4, 8, 16, 3, 5, 5, 100, 1024])  # doubling, not doubling, repeated
    checked = 0
    for missing in (params["missing"], {"a": 2.0, "b": 5.0}):  # the fitted and a large unanswered share
        for sc in [*params["scores"].values(), continuous]:
            for b in bins:
                dist = params["success"]
                dist = dist if b is None else scaling._posterior_mix(dist, gemma_model.bins[b])
                fast = scaling._bon_max(dist, missing, sc, ns)
                np.testing.assert_allclose(fast, _bon_max_direct(dist, missing, sc, ns), rtol=0, atol=1e-13)
                one = scaling._bon_max(dist, missing, sc, 7)
                assert one == pytest.approx(_bon_max_direct(dist, missing, sc, [7.0])[0], abs=1e-13)
                checked += 1
    assert checked == 2 * (len(params["scores"]) + 1) * len(bins) >= 16


def test_tables_same_with_worker_processes(gemma_model):
    ns = (1, 2, 4, 8, 16)
    alone = scalingfit.tabulate(gemma_model, ns)
    with scalingfit._pool(2) as pool:
        assert pool is not None
        spread = scalingfit.tabulate(gemma_model, ns, pool)
    assert spread == alone and len(alone) > 20


def test_rank_order_is_pandas_stable_sort():
    rng = np.random.default_rng(3)
    n = 400
    scored = pd.DataFrame(
        {
            "predicted_accuracy": rng.choice([0.2, 0.5, 0.7, np.nan], n),
            "accuracy_low": rng.choice([0.1, 0.4, np.nan], n),
            "accuracy_high": 0.9,
            "in_calibrated_range": rng.random(n) < 0.5,
            "extrapolated": rng.random(n) < 0.2,
            "flops_per_problem": rng.choice([1.0, 2.0, np.inf, np.nan], n),
        },
        index=rng.permutation(n) + 1000,
    )
    ranked, info = rank(scored)
    value, _ = search.rank_value(scored)
    by_sort = scored.assign(rank_value=value).sort_values(
        ["rank_value", "flops_per_problem"], ascending=[False, True], kind="mergesort"
    )
    assert ranked.index.tolist() == by_sort.index.tolist()
    pd.testing.assert_frame_equal(ranked, by_sort)
    by_point = scored.sort_values(
        ["predicted_accuracy", "flops_per_problem"], ascending=[False, True], kind="mergesort"
    )
    if info["changed_choice"]:
        assert info["point_estimate_choice"] == by_point.index[0]


def test_top_rows_are_the_sorted_order_head():
    """plan() takes its top rows without sorting the table: the same rows, ties and NaN included."""
    rng = np.random.default_rng(5)
    for trial in range(500):
        n = int(rng.integers(1, 80))
        value = rng.choice([0.2, 0.5, 0.7, np.nan], n) if trial % 2 else rng.random(n)
        cost = rng.choice([1.0, 2.0, np.nan], n)
        k = int(rng.integers(1, n + 2))
        assert search._best(value, cost, k).tolist() == search._descending(value, cost)[:k].tolist()


@pytest.mark.parametrize("dataset", ["arith", "math500"])
def test_additive_trees_equal_the_direct_prediction(dataset):
    """The regressor runs its trees once per distinct policy and configuration of a plan's
    table (its trees add a policy part and a configuration part): the logits of every row are
    those of the trees run on each row, for every difficulty, a policy given by its spec
    columns, and a table mixing difficulties (no split: the direct path)."""
    from planner.predict.features import CONFIG_COLUMNS
    from planner.predict.regressor import _policy_split

    model, _ = modelio.load_planner_model(None, predictor="regressor")
    prms = [s.name for s in specs.all_specs("prm")]
    policies = [*POLICIES, "Qwen/Qwen2.5-7B-Instruct"]
    table = search.enumerate_candidates(policies, prms)
    table = search.spec_frame(table, {s.name: s for s in specs.all_specs()})
    unknown = table[table["policy"] == POLICIES[1]].assign(policy="my-org/new-7b", policy_params=7e9)
    table = pd.concat([table, unknown], ignore_index=True)
    for difficulty in ("all", "easy", "hard", None):
        rows = table.assign(dataset=dataset, difficulty=difficulty or "all")
        if difficulty is None:  # two difficulties in one table
            rows.loc[rows.index % 2 == 0, "difficulty"] = "medium"
        rows = rows[[*CONFIG_COLUMNS, "policy_params", "policy_family", "prm_params", "prm_family"]]
        raw = model.features_.raw(rows)
        split = _policy_split(raw)
        assert (split is None) == (difficulty is None)
        if split is not None:
            assert len(split[0][1]) == len(policies) + 1 and len(split[1][1]) < len(rows) / 4
        Z = model.features_.transform(rows)
        Z[:, model.empty_columns_] = 0.0
        direct = model.mean_.predict(Z)
        got = model._logit_of_raw(raw)
        np.testing.assert_allclose(got, direct, rtol=0, atol=1e-12)
        first = (rows["policy"] == rows["policy"].iloc[0]).to_numpy()
        assert (got[first] == direct[first]).all()  # the first row's policy: the trees' own sums
    # trees whose constraints mix the policy with the configuration take the direct path
    assert model._separates_policy()
    mixed = copy.deepcopy(model)
    for groups in (None, "pairwise", [list(range(Z.shape[1]))], [[0, 2]]):  # 0: policy size, 2: log2 N
        mixed.mean_.interaction_cst = groups
        assert not mixed._separates_policy()


def _reference(model, request: PlanRequest, top: int) -> dict:
    """plan() from the public pieces, every cache emptied first."""
    search._GRIDS.clear()
    priced, by_name, dataset, difficulty = search.priced_candidates(request)
    inside = score(model, priced[within_budget(priced, request.budget)], by_name, dataset, difficulty)
    ranked, info = rank(inside)
    hw = request.hardware is not None
    if info["changed_choice"]:
        info["point_estimate_choice"] = plan_record(inside.loc[info["point_estimate_choice"]], hw)
    return {
        "records": [plan_record(row, hw) for _, row in ranked.head(top + 1).iterrows()],
        "frontier": [plan_record(row, hw) for _, row in search.pareto_frontier(inside).iterrows()],
        "ranking": info,
        "within": len(inside),
    }


@pytest.mark.parametrize("predictor", ["regressor", "scaling"])
def test_plans_equal_the_public_pieces(predictor):
    loaded, _ = modelio.load_planner_model(None, predictor=predictor)
    prms = [s.name for s in specs.all_specs("prm")]
    requests = [
        PlanRequest(policies=POLICIES, budget=Budget("flops", 1e20), prms=prms, dataset="arith"),
        PlanRequest(
            policies=POLICIES, budget=Budget("flops", 3e11), prms=prms, dataset="arith", difficulty="hard"
        ),
        PlanRequest(policies=POLICIES[:1], budget=Budget("n", 16), prms=["arith-check"], dataset="arith"),
        PlanRequest(
            policies=POLICIES[:2],
            budget=Budget("n", 48),
            prms=None,
            dataset="arith",
            n_values=[1, 2, 3, 4, 6, 8, 12, 24, 48],
            difficulty="medium",
        ),
        # policies without samples whose published cells anchor their transferred curves
        PlanRequest(
            policies=POLICIES[1:], budget=Budget("n", 64), prms=None, dataset="math500", difficulty="hard"
        ),
    ]
    for request in requests:
        fresh = ScalingPredictor(loaded.regressor, loaded.doc) if predictor == "scaling" else loaded
        want = _reference(fresh, request, 5)
        for _ in range(2):  # the first call fills the caches, the second reads them
            got = plan(loaded, request, top=5)
            assert [got.best, *got.alternatives] == want["records"]
            assert got.frontier == want["frontier"]
            assert got.ranking == want["ranking"] and got.within_budget == want["within"]


def test_kept_scores_follow_a_refit_in_place():
    """Scores kept for a model are not reused once a fitted attribute is replaced (what an
    in-place refit does): the plan equals the one from the public pieces with the new state."""
    model, _ = modelio.load_planner_model(None, predictor="regressor")
    request = PlanRequest(policies=POLICIES, budget=Budget("n", 16), prms=["arith-check"], dataset="arith")
    before = plan(model, request, top=3)
    model.half_width_ = model.half_width_ * 3  # wider intervals, same point estimates
    after = plan(model, request, top=3)
    want = _reference(model, request, 3)
    assert [after.best, *after.alternatives] == want["records"]
    low = [r["accuracy_interval"][0] for r in (before.best, after.best)]
    assert low[1] < low[0]
