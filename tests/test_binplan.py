"""Difficulty-aware plans (planner.plan.binplan, `ttsplan plan --per-bin`).

A fake regressor gives hand-made accuracies per (method, n, bin), so the best split and the best
static plan are known by construction; the exact search is also checked against brute force
over every combination of random tables.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from planner.cli.main import main
from planner.core.errors import UserError
from planner.core.vocab import BINS
from planner.plan.binplan import best_split, check_mix, mix_from_records, parse_mix, plan_by_difficulty
from planner.plan.search import Budget, PlanRequest, predict_config

POLICY = "Qwen/Qwen2.5-1.5B-Instruct"

# hand-made predicted accuracy per bin of cot and majority@n (n in 1, 2, 4, 8, 16)
TABLE = {
    "easy": {("cot", 1): 0.90, 1: 0.85, 2: 0.88, 4: 0.90, 8: 0.91, 16: 0.91},
    "medium": {("cot", 1): 0.30, 1: 0.25, 2: 0.30, 4: 0.40, 8: 0.50, 16: 0.60},
    "hard": {("cot", 1): 0.02, 1: 0.01, 2: 0.02, 4: 0.03, 8: 0.04, 16: 0.05},
}
MIX = {"easy": 0.5, "medium": 0.25, "hard": 0.25}


class TableModel:
    """Stands in for the regressor: looks each row's (method, n, difficulty) up in TABLE."""

    coverage = 0.8

    def assess(self, rows: pd.DataFrame):
        pred = np.array(
            [
                TABLE[d][("cot", 1) if m == "cot" else int(n)]
                for m, n, d in zip(rows["method"], rows["n"], rows["difficulty"], strict=True)
            ]
        )
        return pred, pred - 0.1, pred + 0.1, np.ones(len(pred), dtype=bool)


def small_plan(budget: Budget, mix=MIX) -> dict:
    return plan_by_difficulty(
        TableModel(),
        PlanRequest(
            policies=[POLICY],
            budget=budget,
            prms=["none"],
            dataset="math500",
            methods=("cot", "majority"),
            n_values=(1, 2, 4, 8, 16),
        ),
        mix=mix,
    ).to_dict()


def test_known_split_beats_static_under_mean_samples():
    # Mean n <= 4. By hand: static majority@4 scores .5*.90 + .25*.40 + .25*.03 = .5575 (cot .53,
    # majority@2 .52). Split: easy cot (n=1) frees samples, medium majority@8, hard majority@4:
    # .45 + .125 + .0075 = .5825 at mean n .5 + 2 + 1 = 3.5; medium@16 would leave hard n <= -2,
    # easy majority@2 with medium@8 + hard@4 is mean n 4 and scores only .5725.
    plan = small_plan(Budget("n", 4))
    picks = {b: (plan["bins"][b]["method"], plan["bins"][b]["n"]) for b in BINS}
    assert picks == {"easy": ("cot", 1), "medium": ("majority", 8), "hard": ("majority", 4)}
    assert plan["mean_predicted_accuracy"] == pytest.approx(0.5825)
    assert plan["mean_n"] == pytest.approx(3.5)
    static = plan["static"]
    assert (static["method"], static["n"]) == ("majority", 4)
    assert static["predicted_accuracy"] == pytest.approx(0.5575)
    assert static["predicted_accuracy_by_bin"] == pytest.approx({"easy": 0.9, "medium": 0.4, "hard": 0.03})
    assert plan["gain"] == pytest.approx(0.025)
    assert plan["mix"] == MIX and plan["mix_source"] == "given"
    assert [plan["bins"][b]["predicted_accuracy"] for b in BINS] == pytest.approx([0.9, 0.5, 0.03])
    assert all(plan["bins"][b]["weight"] == MIX[b] for b in BINS)


def test_flops_budget_matches_brute_force():
    from planner.plan.search import priced_candidates

    priced, *_ = priced_candidates(
        PlanRequest(
            policies=[POLICY],
            budget=Budget("n", 1),
            prms=["none"],
            dataset="math500",
            difficulty="all",
            methods=("cot", "majority"),
            n_values=(1, 2, 4, 8, 16),
        )
    )
    flops = dict(
        zip(zip(priced["method"], priced["n"], strict=True), priced["flops_per_problem"], strict=True)
    )
    configs = list(flops)

    def acc(b, config):
        return TABLE[b][("cot", 1) if config[0] == "cot" else config[1]]

    for budget in (flops[("majority", 2)], 3.3 * flops[("majority", 4)], flops[("majority", 16)]):
        plan = small_plan(Budget("flops", budget))
        best = max(
            (sum(MIX[b] * acc(b, c) for b, c in zip(BINS, combo, strict=True)), combo)
            for combo in itertools.product(configs, repeat=3)
            if sum(MIX[b] * flops[c] for b, c in zip(BINS, combo, strict=True)) <= budget
        )
        assert plan["mean_predicted_accuracy"] == pytest.approx(best[0])
        mean = sum(MIX[b] * plan["bins"][b]["flops_per_problem"] for b in BINS)
        assert plan["mean_flops_per_problem"] == pytest.approx(mean) and mean <= budget * (1 + 1e-9)
        static = max((sum(MIX[b] * acc(b, c) for b in BINS), c) for c in configs if flops[c] <= budget)
        assert plan["static"]["predicted_accuracy"] == pytest.approx(static[0])
        assert plan["static"]["flops_per_problem"] <= budget
        assert plan["gain"] >= -1e-12


def test_best_split_is_exact_on_random_tables():
    rng = np.random.default_rng(0)
    for trial in range(30):
        sizes = rng.integers(1, 9, size=3)
        tables = {
            b: pd.DataFrame(
                {
                    "flops_per_problem": rng.uniform(1, 10, s).round(1),
                    "predicted_accuracy": rng.uniform(0, 1, s),
                },
                index=[f"{b}{i}" for i in range(s)],
            )
            for b, s in zip(BINS, sizes, strict=True)
        }
        w = rng.dirichlet(np.ones(3))
        mix = dict(zip(BINS, w, strict=True))
        budget = float(rng.uniform(1, 10))
        best = None
        for combo in itertools.product(*(t.index for t in tables.values())):
            cost = sum(
                mix[b] * tables[b].loc[c, "flops_per_problem"] for b, c in zip(BINS, combo, strict=True)
            )
            acc = sum(
                mix[b] * tables[b].loc[c, "predicted_accuracy"] for b, c in zip(BINS, combo, strict=True)
            )
            if cost <= budget and (best is None or acc > best):
                best = acc
        got = best_split(tables, mix, budget)
        if best is None:
            assert got is None, trial
            continue
        choice, acc, cost = got
        assert acc == pytest.approx(best), trial
        assert cost <= budget * (1 + 1e-9)
        recomputed = sum(mix[b] * tables[b].loc[choice[b], "predicted_accuracy"] for b in BINS)
        assert recomputed == pytest.approx(acc)


def test_zero_weight_bin_gets_its_best_within_the_plain_budget():
    plan = small_plan(Budget("n", 4), mix={"easy": 0.5, "hard": 0.5})
    assert plan["bins"]["medium"]["weight"] == 0
    assert (plan["bins"]["medium"]["method"], plan["bins"]["medium"]["n"]) == ("majority", 4)  # .40, n <= 4


def test_no_candidate_fits():
    with pytest.raises(UserError, match="no candidate fits"):
        plan_by_difficulty(
            TableModel(),
            PlanRequest(policies=[POLICY], budget=Budget("flops", 1.0), prms=["none"], dataset="math500"),
            mix=MIX,
        )


# ---------------------------------------------------------------- the mix


def test_parse_mix():
    assert parse_mix("easy=0.3, medium=0.4,hard=0.3") == pytest.approx(
        {"easy": 0.3, "medium": 0.4, "hard": 0.3}
    )
    assert parse_mix("EASY=0.5,hard=0.5") == {"easy": 0.5, "medium": 0.0, "hard": 0.5}


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("", "give fractions"),
        ("easy", "BIN=FRACTION"),
        ("easy=abc,hard=1", "must be a number"),
        ("tricky=0.3,easy=0.7", "unknown bin 'tricky'"),
        ("easy=0.5,easy=0.5", "given twice"),
        ("easy=0.5,medium=0.6", "sum to 1"),
        ("easy=-0.2,medium=0.6,hard=0.6", "[0, 1]"),
        ("easy=nan,medium=1", "finite"),
    ],
)
def test_parse_mix_errors(text, pattern):
    with pytest.raises(UserError) as err:
        parse_mix(text)
    message = str(err.value)
    assert pattern in message and message.startswith("mix: ") and "\n" not in message


def test_check_mix_rejects_booleans():
    with pytest.raises(UserError, match="finite number"):
        check_mix({"easy": True})


def _records(rows):
    base = {"dataset": "math500", "prm": "none", "method": "majority", "n": 4}
    return pd.DataFrame([{**base, **r} for r in rows])


def test_mix_from_records_counts_problems_of_the_policy():
    rows = []
    for i, d in enumerate(["easy"] * 5 + ["medium"] * 3 + ["hard"] * 2):
        for n in (1, 4):  # two rows per problem: counted once
            rows.append({"problem_id": f"p{i}", "difficulty": d, "policy": POLICY, "n": n})
    rows.append({"problem_id": "x", "difficulty": "hard", "policy": "meta-llama/Llama-3.2-1B-Instruct"})
    rows.append({"problem_id": "", "difficulty": "easy", "policy": POLICY})  # not per problem
    rows.append({"problem_id": "y", "difficulty": "hard", "policy": POLICY, "dataset": "aime24"})
    records = _records(rows)
    mix, source = mix_from_records(records, ["Qwen2.5-1.5B-Instruct"], "math500")
    assert mix == pytest.approx({"easy": 0.5, "medium": 0.3, "hard": 0.2})
    assert "10 problems" in source
    mix, _ = mix_from_records(records, ["Qwen2.5-1.5B-Instruct"], None)  # every dataset: y counts
    assert mix == pytest.approx({"easy": 5 / 11, "medium": 3 / 11, "hard": 3 / 11})
    mix, source = mix_from_records(records, ["Qwen2.5-7B-Instruct"], "math500")
    assert mix == pytest.approx({b: 1 / 3 for b in BINS}) and source.startswith("equal thirds")


def test_default_mix_from_records_with_a_note():
    records = _records([{"problem_id": "a", "difficulty": "hard", "policy": POLICY}])
    plan = plan_by_difficulty(
        TableModel(),
        PlanRequest(
            policies=[POLICY],
            budget=Budget("n", 4),
            prms=["none"],
            dataset="math500",
            methods=("cot", "majority"),
            n_values=(1, 2, 4),
        ),
        records=records,
    ).to_dict()
    assert plan["mix"] == {"easy": 0.0, "medium": 0.0, "hard": 1.0} and plan["notes"] == []
    plan = plan_by_difficulty(
        TableModel(),
        PlanRequest(
            policies=[POLICY],
            budget=Budget("n", 4),
            prms=["none"],
            dataset="math500",
            methods=("cot", "majority"),
            n_values=(1, 2, 4),
        ),
    ).to_dict()
    assert plan["mix"] == pytest.approx({b: 1 / 3 for b in BINS})
    assert "equal thirds" in plan["notes"][0]


# ---------------------------------------------------------------- the command


def run(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    return exc.value.code, out, err


PER_BIN = [
    "plan",
    "--policy",
    "Qwen2.5-1.5B-Instruct",
    "--prm",
    "Qwen2.5-Math-PRM-7B",
    "--dataset",
    "math500",
    "--budget-flops",
    "1e14",
    "--per-bin",
]


@pytest.mark.parametrize(
    "extra, pattern",
    [
        (["--mix", "easy=0.5,medium=0.6"], "--mix: fractions must sum to 1"),
        (["--mix", "hardish=1"], "unknown bin"),
        (["--difficulty", "easy"], "--difficulty cannot be combined with --per-bin"),
    ],
)
def test_cli_per_bin_errors(extra, pattern, capsys):
    code, out, err = run([*PER_BIN, *extra], capsys)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and pattern in lines[0], err


def test_cli_mix_needs_per_bin(capsys):
    code, _, err = run([*PER_BIN[:-1], "--mix", "easy=1"], capsys)
    assert code == 2 and err.strip() == "error: --mix needs --per-bin"


def test_cli_per_bin_json_and_table(capsys, tmp_path):
    target = tmp_path / "bins.json"
    code, out, err = run(
        [*PER_BIN, "--mix", "easy=0.3,medium=0.4,hard=0.3", "--json", "--out", str(target)], capsys
    )
    assert code == 0, err
    plan = json.loads(out)
    assert json.loads(target.read_text()) == plan
    assert plan["kind"] == "per_bin" and plan["probe"]["k"] == 4 and plan["probe"]["temperature"] == 0.7
    mean = sum(plan["mix"][b] * plan["bins"][b]["flops_per_problem"] for b in BINS)
    assert mean <= 1e14 * (1 + 1e-9) and plan["static"]["flops_per_problem"] <= 1e14
    assert plan["mean_predicted_accuracy"] >= plan["static"]["predicted_accuracy"] - 1e-12
    # each bin's prediction is what `predict` says for that configuration and difficulty
    from planner.predict.modelio import load_planner_model

    model, _ = load_planner_model(None)
    for b in BINS:
        rec = plan["bins"][b]
        one = predict_config(
            model,
            rec["policy"],
            rec["prm"],
            rec["method"],
            rec["aggregation"],
            rec["selection"],
            rec["n"],
            rec["beam_width"] or 4,
            "math500",
            b,
        )
        assert one["predicted_accuracy"] == pytest.approx(rec["predicted_accuracy"])
        assert one["flops_per_problem"] == pytest.approx(rec["flops_per_problem"])
    weighted = sum(plan["mix"][b] * plan["static"]["predicted_accuracy_by_bin"][b] for b in BINS)
    assert plan["static"]["predicted_accuracy"] == pytest.approx(weighted)

    code, out, err = run([*PER_BIN, "--mix", "easy=0.3,medium=0.4,hard=0.3"], capsys)
    assert code == 0, err
    assert "per-bin plan" in out and "static (one configuration for every bin)" in out


def test_cli_difficulty_still_plans_one_bin(capsys):
    code, out, err = run([*PER_BIN[:7], "--difficulty", "hard", "--budget-n", "8", "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["difficulty"] == "hard"
