"""planner/evaluate.py and `ttsplan evaluate`: cells, regret, fixed strategies, efficiency gain,
coverage, on hand-made cells whose answers are worked out by hand in the comments."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from planner.cli.main import main
from planner.core.errors import UserError
from planner.core.profiles import SCHEMA, load_profiles, write_profile
from planner.models import cost, specs
from planner.plan.evaluate import (
    budget_levels,
    coverage,
    efficiency_gain,
    evaluate,
    measured_cells,
    price_cells,
    regret_table,
)
from tests.plan_helpers import POLICIES, true_accuracy
from tests.plan_helpers import records as helper_records

POLICY = "Qwen/Qwen2.5-1.5B-Instruct"
PRM = "Qwen/Qwen2.5-Math-PRM-7B"
T = 1e12  # FLOPs unit of the hand-made cells
META = {
    "name": "hand",
    "description": "hand-made cells for tests/test_evaluate.py",
    "kind": "measured",
    "sources": ["tests/test_evaluate.py"],
    "assumptions": [],
}


def record(method, n, accuracy, flops=np.nan, **kw) -> dict:
    prm = kw.pop("prm", "none" if method in ("cot", "majority") else PRM)
    agg = kw.pop("aggregation", "none" if method in ("cot", "majority") else "last")
    sel = {"cot": "none", "majority": "vote"}.get(method, "max")
    row = {
        "dataset": "math500",
        "problem_id": "",
        "level": "",
        "difficulty": "all",
        "pass1": np.nan,
        "policy": POLICY,
        "prm": prm,
        "method": method,
        "aggregation": agg,
        "selection": kw.pop("selection", sel),
        "n": n,
        "beam_width": 4 if method in ("beam", "dvts") else pd.NA,
        "accuracy": accuracy,
        "n_problems": 100,
        "policy_tokens": np.nan,
        "prm_tokens": np.nan,
        "flops": flops,
        "source": "hand",
        "note": "",
    }
    row.update(kw)
    return row


def frame(rows: list[dict]) -> pd.DataFrame:
    out = pd.DataFrame(rows)
    for col in ("n", "beam_width"):
        out[col] = out[col].astype("Int64")
    return out[list(SCHEMA)]


# The task of most tests (FLOPs in units of T):
#   cot 1 -> .30 | majority n=4: 4 -> .50, n=16: 16 -> .60 | best_of_n n=4: 6 -> .70,
#   n=16 last: 20 -> .65, n=16 min: 20 -> .62 | beam n=8: 12 -> .55
TASK = [
    ("cot", 1, "none", 1, 0.30),
    ("majority", 4, "none", 4, 0.50),
    ("majority", 16, "none", 16, 0.60),
    ("best_of_n", 4, "last", 6, 0.70),
    ("best_of_n", 16, "last", 20, 0.65),
    ("best_of_n", 16, "min", 20, 0.62),
    ("beam", 8, "last", 12, 0.55),
]


def task_cells(rows=TASK) -> pd.DataFrame:
    records = frame([record(m, n, acc, f * T, aggregation=a) for m, n, a, f, acc in rows])
    return measured_cells(records)


class FakeModel:
    """assess() returns chosen numbers per (method, n, aggregation)."""

    def __init__(self, pred: dict, interval: dict | None = None, in_range: dict | None = None):
        self.pred, self.interval, self.in_range = pred, interval or {}, in_range or {}
        self.difficulties: set = set()

    def assess(self, X):
        self.difficulties |= set(X["difficulty"])
        keys = [(r.method, int(r.n), r.aggregation) for r in X.itertuples()]
        pred = np.array([self.pred[k] for k in keys])
        low = np.array([self.interval.get(k, (0.0, 1.0))[0] for k in keys])
        high = np.array([self.interval.get(k, (0.0, 1.0))[1] for k in keys])
        ok = np.array([self.in_range.get(k, True) for k in keys])
        return pred, low, high, ok


# Predictions for the regret test: bon4 underestimated; maj16 ties bon16-last at .60.
PRED = {
    ("cot", 1, "none"): 0.35,
    ("majority", 4, "none"): 0.45,
    ("majority", 16, "none"): 0.60,
    ("best_of_n", 4, "last"): 0.40,
    ("best_of_n", 16, "last"): 0.60,
    ("best_of_n", 16, "min"): 0.58,
    ("beam", 8, "last"): 0.50,
}


# ---------------------------------------------------------------- cells


def test_measured_cells_pool_rows(tmp_path):
    a = [
        record("majority", 4, 0.5, 4 * T),  # the "all" row wins over the per-problem rows
        *[record("majority", 4, 1.0, 9 * T, problem_id=f"p{i}", n_problems=1) for i in range(3)],
        # cot: per-problem rows only -> 2/3; flops: mean of the rows that have them (1 and 3)
        record("cot", 1, 1.0, 1 * T, problem_id="p1", n_problems=1, difficulty="easy"),
        record("cot", 1, 0.0, 3 * T, problem_id="p2", n_problems=1, difficulty="hard"),
        record("cot", 1, 1.0, np.nan, problem_id="p3", n_problems=1, difficulty="easy"),
        # best_of_n: rows per bin only -> (0.9 * 30 + 0.1 * 10) / 40 = 0.7
        record("best_of_n", 4, 0.9, 6 * T, difficulty="easy", n_problems=30),
        record("best_of_n", 4, 0.1, 6 * T, difficulty="hard", n_problems=10),
        record("majority", 8, 0.6, 8 * T, n_problems=100),
    ]
    b = [record("majority", 8, 0.8, 8 * T, n_problems=300)]  # same cell, another profile
    write_profile(tmp_path / "a", frame(a), META)
    write_profile(tmp_path / "b", frame(b), {**META, "name": "hand-b"})
    cells = measured_cells(load_profiles([tmp_path / "a", tmp_path / "b"]))
    by = {(r.method, int(r.n)): r for r in cells.itertuples()}
    assert len(cells) == 4
    assert by[("majority", 4)].accuracy == pytest.approx(0.5)
    assert by[("majority", 4)].flops == pytest.approx(4 * T)
    assert by[("cot", 1)].accuracy == pytest.approx(2 / 3)
    assert by[("cot", 1)].flops == pytest.approx(2 * T)
    assert by[("cot", 1)].n_problems == 3
    assert by[("best_of_n", 4)].accuracy == pytest.approx(0.7)
    assert by[("majority", 8)].accuracy == pytest.approx((0.6 * 100 + 0.8 * 300) / 400)
    assert by[("majority", 8)].n_problems == 400


def test_price_cells_fills_missing_flops_with_the_cost_model():
    rows = [
        record("majority", 4, 0.5),
        record("best_of_n", 8, 0.6),
        record("cot", 1, 0.3, 7 * T),
        record("cot", 1, 0.3, policy="unstated"),
    ]
    cells = price_cells(measured_cells(frame(rows)))
    by = {(r.policy, r.method): r for r in cells.itertuples()}
    policy, prm, work = specs.resolve(POLICY), specs.resolve(PRM), cost.workload_for("math500")
    majority = by[(POLICY, "majority")]
    assert majority.flops_source == "cost model"
    assert majority.flops == pytest.approx(cost.config_flops(policy, None, "majority", 4, 1, work))
    bon = by[(POLICY, "best_of_n")]
    assert bon.flops == pytest.approx(cost.config_flops(policy, prm, "best_of_n", 8, 1, work))
    assert by[(POLICY, "cot")].flops_source == "measured" and by[(POLICY, "cot")].flops == 7 * T
    unknown = by[("unstated", "cot")]
    assert unknown.flops_source == "none" and np.isnan(unknown.flops)


def test_budget_levels_are_log_spaced_between_cheapest_and_dearest():
    levels = budget_levels([4 * T, 1 * T, 16 * T, np.nan], 3)
    assert levels == pytest.approx([1 * T, 4 * T, 16 * T])
    assert budget_levels([2 * T, 5 * T], 1) == pytest.approx([5 * T])
    with pytest.raises(UserError, match=r"budgets: must be an integer in \[1, 1000\]"):
        budget_levels([1.0], 0)


# ---------------------------------------------------------------- regret and fixed strategies


def test_regret_table_choice_oracle_and_fixed_strategies():
    model = FakeModel(PRED)
    table = regret_table(task_cells(), model, [0.5 * T, 1 * T, 5 * T, 10 * T, 13 * T, 20 * T])
    rows = table.set_index(table["budget_flops"] / T)
    assert model.difficulties == {"all"}
    # 0.5: nothing fits
    assert pd.isna(rows.loc[0.5, "choice"]) and rows.loc[0.5, "candidates"] == 0
    assert pd.isna(rows.loc[0.5, "regret_points"]) and pd.isna(rows.loc[0.5, "cot_accuracy"])
    # 1: only cot
    assert rows.loc[1, "choice"] == "cot" and rows.loc[1, "regret_points"] == pytest.approx(0)
    # 5: cot (.35) vs majority n=4 (.45) -> majority, which is also the best measured
    assert rows.loc[5, "choice"] == "majority n=4" and rows.loc[5, "regret_points"] == pytest.approx(0)
    # 10: bon4 (.70 measured) predicted .40 < majority n=4's .45 -> regret 70 - 50 = 20
    assert rows.loc[10, "choice"] == "majority n=4"
    assert rows.loc[10, "oracle_accuracy"] == pytest.approx(0.70)
    assert rows.loc[10, "regret_points"] == pytest.approx(20)
    assert rows.loc[10, "best_of_n_accuracy"] == pytest.approx(0.70)
    assert pd.isna(rows.loc[10, "beam_accuracy"])
    # 13: beam n=8 (.50 predicted) wins -> 70 - 55 = 15
    assert rows.loc[13, "choice"].startswith("beam n=8 w=4")
    assert rows.loc[13, "regret_points"] == pytest.approx(15)
    # 20: majority n=16 and bon16-last tie at .60 -> the cheaper (majority, 16) -> 70 - 60 = 10
    assert rows.loc[20, "choice"] == "majority n=16" and rows.loc[20, "choice_flops"] == 16 * T
    assert rows.loc[20, "regret_points"] == pytest.approx(10)
    # fixed strategies spend the budget: the dearest cell; bon16 last (.65) beats min (.62) at 20
    assert rows.loc[20, "cot_accuracy"] == pytest.approx(0.30)
    assert rows.loc[20, "majority_accuracy"] == pytest.approx(0.60)
    assert rows.loc[20, "best_of_n_accuracy"] == pytest.approx(0.65)
    assert rows.loc[20, "best_of_n_choice"].startswith("best_of_n n=16 last/max")
    assert rows.loc[20, "beam_accuracy"] == pytest.approx(0.55)
    assert pd.isna(rows.loc[20, "dvts_accuracy"])


# ---------------------------------------------------------------- efficiency gain


def test_efficiency_gain_when_the_planner_reaches_majoritys_best_sooner():
    # majority's best .60 first at 16 (n=32 at 32 only ties it); the planner, preferring bon4
    # from budget 6 on, measures .70 >= .60 there -> gain 16 / 6
    cells = task_cells([*TASK, ("majority", 32, "none", 32, 0.60)])
    pred = {**PRED, ("best_of_n", 4, "last"): 0.66, ("majority", 32, "none"): 0.6}
    gain = efficiency_gain(cells, FakeModel(pred))
    assert gain["majority_best_accuracy"] == pytest.approx(0.60)
    assert gain["majority_flops"] == pytest.approx(16 * T)
    assert gain["planner_flops"] == pytest.approx(6 * T)
    assert gain["gain"] == pytest.approx(16 / 6)


def test_efficiency_gain_none_when_never_reached_or_no_majority():
    stubborn = {**PRED, ("cot", 1, "none"): 0.99}  # always picks cot (.30)
    gain = efficiency_gain(task_cells(), FakeModel(stubborn))
    assert gain["gain"] is None and "never" in gain["reason"]
    assert gain["majority_flops"] == pytest.approx(16 * T)
    no_majority = [t for t in TASK if t[0] != "majority"]
    gain = efficiency_gain(task_cells(no_majority), FakeModel(PRED))
    assert gain["gain"] is None and gain["reason"] == "no majority cells"


# ---------------------------------------------------------------- coverage


def test_coverage_counts_cells_inside_the_interval():
    rows = [t for t in TASK if t[:2] in (("cot", 1), ("majority", 4), ("best_of_n", 4), ("beam", 8))]
    interval = {
        ("cot", 1, "none"): (0.2, 0.4),  # .30 inside
        ("majority", 4, "none"): (0.55, 0.7),  # .50 outside
        ("best_of_n", 4, "last"): (0.7, 0.8),  # .70 on the edge: inside
        ("beam", 8, "last"): (0.1, 0.2),  # .55 outside
    }
    in_range = {("cot", 1, "none"): False, ("beam", 8, "last"): False}
    result = coverage(task_cells(rows), FakeModel(PRED, interval, in_range))
    assert result == {"cells": 4, "inside": 2, "coverage": 0.5, "out_of_range": 2}


# ---------------------------------------------------------------- whole evaluation


def test_evaluate_holds_out_each_group_and_fits_on_the_rest():
    other = "Qwen/Qwen2.5-3B-Instruct"
    rows = [record(m, n, acc, f * T, aggregation=a) for m, n, a, f, acc in TASK]
    rows += [record(m, n, acc, f * T, aggregation=a, policy=other) for m, n, a, f, acc in TASK]
    seen = {}

    def fit(train):
        seen[len(seen)] = set(train["policy"])
        return FakeModel(PRED)

    result = evaluate(frame(rows), "policy", budgets=[10 * T], fit=fit)
    assert [g["group"] for g in result["groups"]] == [POLICY, other]
    assert seen == {0: {other}, 1: {POLICY}}  # each fit saw only the other policy
    for group in result["groups"]:
        (task,) = group["tasks"]
        assert task["policy"] == group["group"]
        assert task["budgets"][0]["regret_points"] == pytest.approx(20)
    assert result["summary"]["mean_regret_points"] == pytest.approx(20)
    assert result["flops"]["measured"] == 2 * len(TASK) and result["flops"]["cost_model"] == 0
    json.dumps(result, allow_nan=False)  # plain JSON


# ---------------------------------------------------------------- CLI


def run(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    return exc.value.code, out, err


@pytest.fixture(scope="module")
def law_profile(tmp_path_factory):
    """tests/plan_helpers.py's logistic law for 4 policies, FLOPs n * T (best_of_n: 2 n * T)."""
    records = helper_records(policies=POLICIES[:4])
    records["flops"] = records["n"].astype(float) * T * np.where(records["method"] == "best_of_n", 2, 1)
    folder = tmp_path_factory.mktemp("eval") / "law"
    write_profile(folder, records, {**META, "name": "law"})
    return folder


def test_cli_evaluate_json_end_to_end(law_profile, capsys):
    code, out, err = run(["evaluate", "--profiles", str(law_profile), "--json"], capsys)
    assert code == 0, err
    result = json.loads(out)
    assert result["holdout"] == "policy" and result["flops"]["measured"] == 4 * 13
    assert [g["group"] for g in result["groups"]] == sorted(POLICIES[:4])
    for group in result["groups"]:
        policy = group["group"]
        (task,) = group["tasks"]
        budgets = task["budgets"]
        assert len(budgets) == 6
        # cheapest level: cot alone (1 T); dearest: every cell (best_of_n n=16 at 32 T)
        assert budgets[0]["budget_flops"] == pytest.approx(T) and budgets[0]["choice"] == "cot"
        assert budgets[0]["chosen_accuracy"] == pytest.approx(true_accuracy(policy, "cot", 1))
        assert budgets[0]["regret_points"] == pytest.approx(0)
        top = budgets[-1]
        assert top["budget_flops"] == pytest.approx(32 * T) and top["candidates"] == 13
        assert top["oracle_accuracy"] == pytest.approx(true_accuracy(policy, "best_of_n", 16))
        assert top["majority_accuracy"] == pytest.approx(true_accuracy(policy, "majority", 16))
        assert top["best_of_n_accuracy"] == pytest.approx(true_accuracy(policy, "best_of_n", 16))
        assert top["beam_accuracy"] is None
        for b in budgets:
            assert b["regret_points"] == pytest.approx(100 * (b["oracle_accuracy"] - b["chosen_accuracy"]))
            assert b["regret_points"] >= -1e-9
        gain = task["efficiency_gain"]
        assert gain["majority_flops"] == pytest.approx(16 * T)
        if gain["gain"] is not None:
            assert gain["gain"] == pytest.approx(gain["majority_flops"] / gain["planner_flops"])
        assert group["coverage"]["cells"] == 13 and 0 <= group["coverage"]["coverage"] <= 1
    summary = result["summary"]
    assert summary["budget_points"] == 4 * 6 and summary["cells"] == 4 * 13


def test_cli_evaluate_table(law_profile, capsys):
    code, out, err = run(["evaluate", "--profiles", str(law_profile), "--budget-flops", "4e12"], capsys)
    assert code == 0, err
    assert "regret" in out and "efficiency gain" in out and "overall coverage" in out


@pytest.mark.parametrize(
    ("extra", "pattern"),
    [
        (["--holdout", "model"], "--holdout: must be one of policy, prm, dataset"),
        (["--budgets", "0"], "--budgets"),
        (["--budget-flops", "abc"], "--budget-flops"),
        (["--budget-flops", "-1e12"], "--budget-flops"),
    ],
)
def test_cli_evaluate_bad_input(law_profile, extra, pattern, capsys):
    code, out, err = run(["evaluate", "--profiles", str(law_profile), *extra], capsys)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and pattern in lines[0], err


def test_cli_evaluate_missing_or_empty_profile_folder(tmp_path, capsys):
    for folder, pattern in ((tmp_path / "nope", "does not exist"), (tmp_path, "empty")):
        code, out, err = run(["evaluate", "--profiles", str(folder)], capsys)
        assert code == 2, (out, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and str(folder) in lines[0] and pattern in lines[0], err
