"""Probe reuse and the posterior probe: a majority / Best-of-N bin starts from the probe's samples
and draws only n - k more (fake engine), the per-problem model's posterior table routes problems,
and a per-bin plan with reuse counts the probe in its mean budget and prices bins at n - k."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from planner.core.config import MethodConfig
from planner.core.errors import UserError
from planner.core.scoring import answer_signature
from planner.core.vocab import BINS
from planner.executor.adaptive import adaptive_from_dict, run_adaptive
from planner.executor.methods.majority import sample
from planner.executor.runner import read_records
from planner.plan.binplan import plan_by_difficulty
from planner.plan.search import Budget, PlanRequest
from planner.predict.scaling import ProblemModel
from planner.predict.stopping import probe_posterior
from tests.fake_engine import FakeEngine, count_tokens
from tests.test_adaptive import PROBE, SOLVED, ScriptEngine, bin_entry, plan_dict, problems, text_for, words
from tests.test_binplan import MIX, TableModel
from tests.test_binplan import POLICY as BIN_POLICY
from tests.test_stopping_plan import _samples


def test_sample_starts_from_prior_solutions():
    engine = FakeEngine(answers=("7",))
    prior = [["a \\boxed{1}", "b \\boxed{2}"], ["c \\boxed{3}", "d \\boxed{3}"]]
    out = sample(engine, ["q1", "q2"], MethodConfig("majority", 5), prior)
    assert [o.n for _, o in engine.calls] == [3]  # one call, only the samples still missing
    assert [texts[:2] for texts, _ in out] == prior and all(len(t) == 5 for t, _ in out)
    assert all(u.generated_tokens == sum(map(count_tokens, texts[2:])) for texts, u in out)  # new ones only
    # a stop rule counts the prior: four agreeing answers settle beta:0.95 before any call
    engine = FakeEngine(answers=("7",))
    out = sample(engine, ["q"], MethodConfig("majority", 8, stop="beta:0.95"), [["x \\boxed{4}"] * 4])
    assert engine.calls == [] and len(out[0][0]) == 4
    # esc:4 after a prior of 2: the first round fills the window up to 4
    engine = FakeEngine(answers=("7",))
    sample(engine, ["q"], MethodConfig("majority", 8, stop="esc:4"), [["x \\boxed{7}"] * 2])
    assert engine.calls[0][1].n == 2
    with pytest.raises(ValueError, match="prior"):
        sample(engine, ["q1", "q2"], MethodConfig("majority", 4), [["a"], ["a", "b"]])


def reuse_plan(**probe):
    doc = plan_dict(reuse=True, **probe)
    doc["bins"]["medium"] = bin_entry("majority", 6, 0.4, 6e9)
    return adaptive_from_dict(doc)


def test_adaptive_run_reuses_the_probe_samples(tmp_path):
    engine = ScriptEngine()
    out = tmp_path / "r.jsonl"
    run_adaptive(reuse_plan(), problems(), engine, None, out, batch_size=10)
    records = {r["problem_id"]: r for r in read_records(out)[0]}
    _, *method_calls = engine.calls
    ran = {(o.n, o.temperature): qs for qs, o in method_calls}
    # medium majority@6 and hard majority@5 draw 2 and 1 beyond the probe's 4; cot draws its own
    assert ran == {(1, 0.0): ["e1", "e2"], (2, 0.7): ["m1", "m2"], (1, 0.7): ["h1", "h2"]}
    for q in ("m1", "m2", "h1"):
        rec = records[q]
        answers, _, b = PROBE[q]
        got = rec["candidates"]  # the answers, in order: the probe's samples come first
        assert got[:4] == answers and len(got) == (6 if b == "medium" else 5)
        assert got[4:] == [SOLVED[q]] * (len(got) - 4)
        new = (len(got) - 4) * words(text_for(q, SOLVED[q]))
        assert rec["policy_generated_tokens"] == rec["probe_generated_tokens"] + new  # nothing counted twice
    # m2's probe said 1, 2, 3, 4; the two new samples say 2: the vote over all six picks 2
    assert records["m2"]["answer"] == SOLVED["m2"] == "2"
    assert records["m1"]["candidates"] == ["1", "2", "1", "3", "1", "1"]


def test_posterior_table_routes_the_probe(tmp_path):
    table = {"4/0": 0.05, "3+1/0": 0.3, "2+1+1/0": 0.9, "1+1+1+1/0": 0.9}  # "0/4" left out
    plan = adaptive_from_dict(plan_dict(score="posterior", posterior=table))
    out = tmp_path / "r.jsonl"
    run_adaptive(plan, problems(), ScriptEngine(), None, out)
    bins = {r["problem_id"]: (r["bin"], r["probe_pass1"]) for r in read_records(out)[0]}
    assert bins == {
        "e1": ("hard", 0.05),  # four agreeing answers, but the table says p = 0.05
        "e2": ("medium", 0.3),
        "m1": ("easy", 0.9),
        "m2": ("easy", 0.9),
        "h1": ("hard", 0.0),  # a split the table does not hold: the agreement estimate
        "h2": ("hard", 0.0),
    }
    assert answer_signature(["1", "2", None, "1"]) == "2+1/1" and answer_signature([None, None]) == "0/2"
    with pytest.raises(UserError, match="posterior"):
        adaptive_from_dict(plan_dict(score="posterior"))
    with pytest.raises(UserError, match="reuse"):
        adaptive_from_dict(plan_dict(reuse="yes"))


def test_probe_posterior_from_the_model():
    model = ProblemModel.fit(_samples(1500, 8, 0), n_boot=0)  # enough problems to fit the mix well
    table = probe_posterior(model, 4, sims=100_000)
    assert sum(v["probability"] for v in table.values()) == pytest.approx(1.0)
    # agreement raises the posterior: all four agreeing is easy far more often than four different
    assert table["4/0"]["pass1"] > 0.7 > 0.2 > table["1+1+1+1/0"]["pass1"]
    # against the truth: fresh problems of the same process, their p known, grouped by how their
    # first four answers split
    fresh = _samples(4000, 4, 1, with_p=True)
    truth: dict[str, list] = {}
    for _, g in fresh.groupby("problem_id", sort=False):
        sig = answer_signature(list(g["answer"]))
        truth.setdefault(sig, []).append((g["p"].iloc[0], g["p"].iloc[0] > 0.5))
    for sig, rows in truth.items():
        if len(rows) >= 200:
            assert table[sig]["pass1"] == pytest.approx(np.mean([p for p, _ in rows]), abs=0.04), sig
            assert table[sig]["bins"]["easy"] == pytest.approx(np.mean([e for _, e in rows]), abs=0.08), sig
    # the posterior mean averages back to the prior mean
    prior = sum(v["probability"] * v["pass1"] for v in table.values())
    assert prior == pytest.approx(model.predict(method="majority", n=1, interval=False)["accuracy"], abs=0.01)


def test_per_bin_plan_with_reuse_counts_the_probe_and_prices_n_minus_k():
    # Mean n <= 8 with a probe of 4 reused: bins cost max(n - 4, 0) more and have 4 left on average.
    # By hand (test_binplan's TABLE): easy majority@4 (free) .90, medium majority@16 (12) .60, hard
    # majority@8 (4) .04: .45 + .15 + .01 = .61 at .25*12 + .25*4 = 4; anything better costs more.
    request = PlanRequest(
        policies=[BIN_POLICY],
        budget=Budget("n", 8),
        prms=["none"],
        dataset="math500",
        methods=("cot", "majority"),
        n_values=(1, 2, 4, 8, 16),
    )
    plan = plan_by_difficulty(TableModel(), request, mix=MIX, probe={"k": 4, "reuse": True}).to_dict()
    picks = {b: (plan["bins"][b]["method"], plan["bins"][b]["n"]) for b in BINS}
    assert picks == {"easy": ("majority", 4), "medium": ("majority", 16), "hard": ("majority", 8)}
    assert plan["mean_predicted_accuracy"] == pytest.approx(0.61)
    assert plan["with_probe"]["n"] == pytest.approx(8.0)
    assert plan["with_probe"]["reused_samples"] == pytest.approx(4.0)
    assert (
        plan["with_probe"]["flops_per_problem"]
        < plan["mean_flops_per_problem"] + plan["probe_cost"]["flops_per_problem"]
    )
    assert (plan["static"]["method"], plan["static"]["n"]) == ("majority", 8)  # the whole budget, no probe
    json.dumps(plan)
    with pytest.raises(UserError, match="the probe alone"):
        plan_by_difficulty(
            TableModel(),
            PlanRequest(**{**request.__dict__, "budget": Budget("n", 4)}),
            mix=MIX,
            probe={"k": 4, "reuse": True},
        )
    assert isinstance(pd.DataFrame([plan["with_probe"]]), pd.DataFrame)


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            ["--per-bin", "--probe-score", "posterior", "--predictor", "regressor"],
            "--probe-score: score posterior needs a per-problem model",
        ),
        (
            ["--per-bin", "--probe-score", "vibes"],
            "--probe-score: score must be agreement, verifier or posterior",
        ),
        (["--per-bin", "--probe-reuse", "--probe-k", "4"], "--budget-n: the probe alone"),
        (["--probe-reuse"], "--probe-reuse and --probe-score need --per-bin"),
        (
            ["--per-bin", "--stop", "beta:0.95", "--predictor", "scaling"],
            "--stop cannot be combined with --per-bin",
        ),
    ],
)
def test_cli_probe_errors_are_one_line(extra, message, capsys):
    from planner.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(["plan", "--policy", "google/gemma-3-270m", "--dataset", "arith", "--budget-n", "4", *extra])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith(f"error: {message}") and err.count("\n") == 1
