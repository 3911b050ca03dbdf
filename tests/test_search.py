"""Candidate enumeration, budgets, ranking and the Pareto frontier."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from planner.core.errors import UserError
from planner.models import cost, hardware, specs
from planner.plan.search import (
    Budget,
    PlanRequest,
    enumerate_candidates,
    pareto_frontier,
    parse_budget,
    plan,
    predict_config,
    price,
    rank_value,
    score,
)
from planner.predict.regressor import fit_profiles
from tests.plan_helpers import PRM, records

POLICY = "Qwen/Qwen2.5-1.5B-Instruct"
PRMS = [PRM, "Skywork/Skywork-o1-Open-PRM-Qwen-2.5-1.5B"]


@pytest.fixture(scope="module")
def model():
    return fit_profiles(records())[0]


def test_enumeration_rules_and_count():
    n_values = [1, 2, 3, 4, 8, 12, 16]
    frame = enumerate_candidates(["p1", "p2"], ["r1", "r2", "none"], n_values=n_values, beam_width=4)
    cot = frame[frame["method"] == "cot"]
    assert (cot["n"] == 1).all() and (cot["prm"] == "none").all() and len(cot) == 2
    majority = frame[frame["method"] == "majority"]
    assert (majority["prm"] == "none").all() and len(majority) == 2 * len(n_values)
    tree = frame[frame["method"].isin(["beam", "dvts"])]
    assert ((tree["n"] % 4 == 0) & (tree["n"] >= 4)).all()
    assert (tree["beam_width"] == 4).all()
    assert frame.loc[~frame["method"].isin(["beam", "dvts"]), "beam_width"].isna().all()
    assert "none" not in set(frame.loc[frame["method"].isin(["best_of_n", "beam", "dvts"]), "prm"])
    # per policy: cot 1 + majority 7 + best_of_n 2 PRMs x 4 agg x 2 sel x 7 n + beam/dvts x 4 valid n
    per_policy = 1 + 7 + 2 * 4 * 2 * 7 + 2 * (2 * 4 * 2 * 4)
    assert len(frame) == 2 * per_policy


def test_enumerate_categorical_is_the_same_table():
    """The planner's own table (categorical name columns) holds the strings of the public one."""
    kwargs = dict(n_values=[1, 2, 4, 8], beam_width=2)
    plain = enumerate_candidates(["p1", "p2"], ["r1", "none", "r2"], **kwargs)
    coded = enumerate_candidates(["p1", "p2"], ["r1", "none", "r2"], categorical=True, **kwargs)
    assert all(plain[c].dtype == np.dtype(object) for c in plain.columns[:5])
    assert all(isinstance(coded[c].dtype, pd.CategoricalDtype) for c in plain.columns[:5])
    pd.testing.assert_frame_equal(coded.astype({c: object for c in plain.columns[:5]}), plain)


def test_enumeration_bad_input():
    with pytest.raises(UserError, match="unknown method"):
        enumerate_candidates(["p"], ["r"], methods=["mcts"])
    with pytest.raises(UserError, match="beam_width"):
        enumerate_candidates(["p"], ["r"], beam_width=0)
    with pytest.raises(UserError, match="n: must be an integer"):
        enumerate_candidates(["p"], ["r"], n_values=[0, 2])


@pytest.mark.parametrize("text", ["0", "-1", "nan", "inf", "abc", ""])
def test_parse_budget_rejects(text):
    with pytest.raises(UserError, match="--budget-flops"):
        parse_budget(text, "--budget-flops")


def test_pareto_frontier_by_hand():
    frame = pd.DataFrame(
        {
            "flops_per_problem": [1, 2, 2, 3, 4, 5],
            "predicted_accuracy": [0.5, 0.4, 0.6, 0.6, 0.7, 0.65],
        }
    )
    # (2, 0.4) is worse and costlier than (1, 0.5); (3, 0.6) ties (2, 0.6) at more cost;
    # (5, 0.65) is beaten by (4, 0.7).
    assert pareto_frontier(frame).index.tolist() == [0, 2, 4]


def _all_within(model, budget, dataset="math500", hw=None):
    """Every candidate within budget, scored independently of `plan`."""
    by_name = {s.name: s for s in [specs.resolve(POLICY), *map(specs.resolve, PRMS)]}
    cands = enumerate_candidates([POLICY], PRMS)
    priced = price(cands, by_name, dataset, hw)
    column = {"n": "n", "flops": "flops_per_problem", "seconds": "seconds_per_problem"}[budget.kind]
    inside = priced[priced[column] <= budget.value]
    return score(model, inside, by_name, dataset, "all")


@pytest.mark.parametrize("budget", [Budget("n", 16), Budget("flops", 1e13), Budget("flops", 1e15)])
def test_plan_respects_budget_and_is_best(model, budget):
    result = plan(
        model, PlanRequest(policies=[POLICY], budget=budget, prms=PRMS, dataset="math500"), top=5
    ).to_dict()
    column = {"n": "n", "flops": "flops_per_problem"}[budget.kind]
    for rec in [result, *result["alternatives"], *result["frontier"]]:
        assert rec[column] <= budget.value
        if rec["method"] in ("beam", "dvts"):
            assert rec["n"] % rec["beam_width"] == 0 and rec["n"] >= rec["beam_width"]
        low, high = rec["accuracy_interval"]
        assert low <= rec["predicted_accuracy"] <= high
    everything = _all_within(model, budget)
    assert result["within_budget"] == len(everything)
    # best by the ranking rule: point estimate for in-range candidates, the interval's lower
    # bound for the others (there are in-range ones here)
    value, by_low = rank_value(everything)
    everything = everything.assign(rank_value=value)
    top = everything[everything["rank_value"] == value.max()]
    chosen = (
        result["accuracy_interval"][0] if not result["in_calibrated_range"] else result["predicted_accuracy"]
    )
    assert chosen == pytest.approx(value.max())
    assert result["flops_per_problem"] == pytest.approx(top["flops_per_problem"].min())  # cheaper on ties
    ranks = [
        a["predicted_accuracy"] if a["in_calibrated_range"] else a["accuracy_interval"][0]
        for a in result["alternatives"]
    ]
    assert ranks == sorted(ranks, reverse=True) and len(ranks) == 5
    point = everything["predicted_accuracy"].max()
    assert result["ranking"]["changed_choice"] == (result["predicted_accuracy"] < point)
    # The flops of the chosen config agree with the cost model called directly.
    prm = None if result["prm"] == "none" else specs.resolve(result["prm"])
    direct = cost.config_flops(
        specs.resolve(POLICY),
        prm,
        result["method"],
        result["n"],
        result["beam_width"] or 1,
        cost.workload_for("math500"),
    )
    assert result["flops_per_problem"] == pytest.approx(direct)


def test_frontier_is_pareto(model):
    budget = Budget("flops", 1e15)
    frontier = plan(
        model, PlanRequest(policies=[POLICY], budget=budget, prms=PRMS, dataset="math500")
    ).frontier
    everything = _all_within(model, budget)
    flops = everything["flops_per_problem"].to_numpy()
    acc = everything["predicted_accuracy"].to_numpy()
    for point in frontier:
        dominated = (flops <= point["flops_per_problem"]) & (acc >= point["predicted_accuracy"])
        dominated &= (flops < point["flops_per_problem"]) | (acc > point["predicted_accuracy"])
        assert not dominated.any(), point
    xs = [p["flops_per_problem"] for p in frontier]
    ys = [p["predicted_accuracy"] for p in frontier]
    assert xs == sorted(xs) and ys == sorted(ys) and len(set(ys)) == len(ys)
    # Every within-budget candidate is matched or beaten by some frontier point.
    for f, a in zip(flops, acc, strict=True):
        assert any(p["flops_per_problem"] <= f and p["predicted_accuracy"] >= a for p in frontier)


def test_seconds_budget_with_hardware(model):
    hw = hardware.get_hardware("h100")
    result = plan(
        model,
        PlanRequest(
            policies=[POLICY], budget=Budget("seconds", 0.5), prms=PRMS, dataset="math500", hardware=hw
        ),
    ).to_dict()
    for rec in [result, *result["alternatives"], *result["frontier"]]:
        assert rec["seconds_per_problem"] <= 0.5
        assert rec["dollars_per_problem"] == pytest.approx(
            rec["seconds_per_problem"] / 3600 * hw.price_per_hour
        )
    assert result["hardware"] == "h100"
    with pytest.raises(UserError, match="needs a hardware profile"):
        plan(
            model, PlanRequest(policies=[POLICY], budget=Budget("seconds", 0.5), prms=PRMS, dataset="math500")
        )


def test_no_candidate_within_budget_names_cheapest(model):
    with pytest.raises(UserError, match=r"cheapest \(cot, n=1\) needs .* FLOPs"):
        plan(
            model, PlanRequest(policies=[POLICY], budget=Budget("flops", 10.0), prms=PRMS, dataset="math500")
        )


def test_targets(model):
    by_dataset = plan(
        model, PlanRequest(policies=[POLICY], budget=Budget("n", 4), prms=[PRM], dataset="aime24")
    ).to_dict()
    assert (by_dataset["dataset"], by_dataset["difficulty"]) == ("aime24", "all")
    by_difficulty = plan(
        model, PlanRequest(policies=[POLICY], budget=Budget("n", 4), prms=[PRM], difficulty="hard")
    ).to_dict()
    assert (by_difficulty["dataset"], by_difficulty["difficulty"]) == (None, "hard")
    with pytest.raises(UserError, match="unknown dataset"):
        plan(model, PlanRequest(policies=[POLICY], budget=Budget("n", 4), prms=[PRM], dataset="mmlu"))
    with pytest.raises(UserError, match="unknown difficulty"):
        plan(model, PlanRequest(policies=[POLICY], budget=Budget("n", 4), prms=[PRM], difficulty="extreme"))
    with pytest.raises(UserError, match="give a dataset or a difficulty"):
        plan(model, PlanRequest(policies=[POLICY], budget=Budget("n", 4), prms=[PRM]))
    with pytest.raises(UserError, match="not a reward model"):
        plan(model, PlanRequest(policies=[POLICY], budget=Budget("n", 4), prms=[POLICY], dataset="math500"))


def test_orm_only_scores_whole_solutions(model):
    orm = "RLHFlow/Llama3.1-8B-ORM-Mistral-Data"
    result = plan(
        model, PlanRequest(policies=[POLICY], budget=Budget("n", 64), prms=[orm], dataset="math500"), top=1000
    ).to_dict()
    with_orm = [r for r in [result, *result["alternatives"]] if r["prm"] != "none"]
    assert with_orm and all(r["method"] == "best_of_n" and r["aggregation"] == "last" for r in with_orm)


def test_predict_config_matches_plan_fields(model):
    rec = predict_config(model, POLICY, PRM, "beam", "min", "max", 16, 4, dataset="math500")
    assert rec["n"] == 16 and rec["beam_width"] == 4 and rec["in_calibrated_range"] is False
    assert 0 <= rec["predicted_accuracy"] <= 1
    with pytest.raises(UserError, match="divisible"):
        predict_config(model, POLICY, PRM, "beam", "min", "max", 6, 4, dataset="math500")
    with pytest.raises(UserError, match="prm: method cot uses no PRM"):
        predict_config(model, POLICY, PRM, "cot", "none", "none", 1, None, dataset="math500")
    with pytest.raises(UserError, match="needs a PRM"):
        predict_config(model, POLICY, "none", "best_of_n", "last", "max", 4, None, dataset="math500")
    np.testing.assert_allclose(
        predict_config(model, POLICY, "none", "cot", "none", "none", 1, None, dataset="math500")[
            "predicted_accuracy"
        ],
        model.predict(
            pd.DataFrame(
                [
                    {
                        "policy": POLICY,
                        "prm": "none",
                        "method": "cot",
                        "aggregation": "none",
                        "selection": "none",
                        "n": 1,
                        "beam_width": None,
                        "difficulty": "all",
                        "dataset": "math500",
                    }
                ]
            )
        )[0],
    )


def test_rule_checker_prm_is_in_range_and_can_be_restricted():
    """arith-check (a rule, no model size) planned with a model that saw it: in the calibrated range;
    --aggregation/--selection filters keep only those verifier configurations."""
    from planner.plan.search import Budget, plan
    from planner.predict.regressor import fit_profiles
    from tests import plan_helpers

    rows = plan_helpers.records(policies=plan_helpers.POLICIES[:4])
    checked = rows[rows["prm"] == plan_helpers.PRM].copy()
    checked["prm"] = "arith-check"
    records = pd.concat([rows, checked], ignore_index=True)
    model, _ = fit_profiles(records)
    result = plan(
        model,
        PlanRequest(
            policies=[plan_helpers.POLICIES[1]],
            budget=Budget("n", 8),
            prms=["arith-check"],
            dataset="math500",
            methods=("best_of_n",),
            aggregations=("min",),
            selections=("max",),
        ),
    )
    assert result.best["prm"] == "arith-check" and result.best["in_calibrated_range"] is True
    assert {(r["aggregation"], r["selection"]) for r in [result.best, *result.alternatives]} == {
        ("min", "max")
    }


def test_default_verifiers_add_the_datasets_own_checker():
    """Without prms: every registered PRM, plus the exact step checker on arith (the verifier the
    embedded models were calibrated with); named PRMs stay as given."""
    from planner.plan.search import priced_candidates

    def prms(dataset, given=None):
        request = PlanRequest(policies=["gemma-3-270m"], budget=Budget("n", 8), dataset=dataset, prms=given)
        return set(priced_candidates(request)[0]["prm"])

    registered = {s.name for s in specs.all_specs("prm")}
    assert prms("arith") == registered | {"arith-check", "none"}
    assert prms("math500") == registered | {"none"}
    assert prms("arith", ["Qwen2.5-Math-PRM-7B"]) == {"Qwen/Qwen2.5-Math-PRM-7B", "none"}
