"""Adaptive candidates: the per-problem model's expected stopping time and accuracy against the
rule replayed on samples, the planner offering "adaptive, cap N, rule" with its expected cost, and
a plan file carrying it run by `ttsplan run` with early stopping (fake engine)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from calibration.replay import replay_stopping
from planner.cli import run as cli_run
from planner.cli.main import main
from planner.core.errors import UserError
from planner.core.planfile import load_plan
from planner.core.stopping import parse_rule
from planner.predict.scaling import ProblemModel
from planner.predict.stopping import predict_stopping
from tests.fake_engine import FakeEngine


def _samples(problems: int, k: int, seed: int, with_p: bool = False, scores: bool = False) -> pd.DataFrame:
    """Problems with p from a two-part mix (mean 0.85 or 0.15) and wrong answers from a Chinese
    restaurant process (concentration 1: the model's assumption about how wrong answers split)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(problems):
        p = rng.beta(17, 3) if i % 2 else rng.beta(3, 17)
        wrong: list[str] = []
        for _ in range(k):
            if rng.random() < p:
                answer = "A"
            elif rng.random() < 1 / (len(wrong) + 1):
                answer = f"w{len(set(wrong))}"
                wrong.append(answer)
            else:
                answer = wrong[rng.integers(len(wrong))]
                wrong.append(answer)
            rows.append({"problem_id": f"p{i}", "correct": answer == "A", "answer": answer, "p": p})
    frame = pd.DataFrame(rows)
    if scores:  # a verifier that scores right answers higher: N(1.2, 1) against N(0, 1)
        frame["score:chk:min"] = rng.standard_normal(len(frame)) + 1.2 * frame["correct"]
    return frame if with_p else frame.drop(columns=["p"])


def test_weighted_vote_with_stopping_matches_the_replay():
    rule = parse_rule("beta:0.95")
    model = ProblemModel.fit(_samples(600, 16, 0, scores=True), n_boot=0)
    got = predict_stopping(model, rule, 16, verifier="chk", aggregation="min", interval=False)
    fresh = _samples(2000, 16, 1, scores=True)
    replay, at_cap = [], []
    for _, g in fresh.groupby("problem_id", sort=False):
        table = {a: float(a == "A") for a in g["answer"]}
        scores = g["score:chk:min"].to_numpy()
        replay.append(replay_stopping(list(g["answer"]), table, 16, rule, scores))
        at_cap.append(replay_stopping(list(g["answer"]), table, 16, parse_rule("esc:1024"), scores)[0])
    acc, used = np.mean([c for c, _ in replay]), np.mean([u for _, u in replay])
    assert got["samples"] == pytest.approx(used, rel=0.06)
    assert got["accuracy"] == pytest.approx(acc, abs=0.03)
    # stopping on answer agreement costs the weighted vote here (the verifier would overturn some
    # settled wrong answers); the model sees the loss: -6.3 points replayed, -4.7 predicted
    assert acc - np.mean(at_cap) < -0.03 and got["change"] < -0.03
    assert got["change"] == pytest.approx(acc - np.mean(at_cap), abs=0.025)
    with pytest.raises(UserError, match="was not fitted"):
        predict_stopping(model, rule, 16, verifier="other", aggregation="min")


@pytest.mark.parametrize("text", ["beta:0.95", "esc:4"])
def test_predicted_stopping_matches_the_replay_on_fresh_draws(text):
    rule = parse_rule(text)
    model = ProblemModel.fit(_samples(300, 16, 0), n_boot=0)
    got = predict_stopping(model, rule, 16)
    fresh = _samples(2000, 16, 1)  # the replay runs on new problems of the same process
    replay = [
        replay_stopping(list(g["answer"]), {a: float(a == "A") for a in g["answer"]}, 16, rule)
        for _, g in fresh.groupby("problem_id", sort=False)
    ]
    acc, used = np.mean([c for c, _ in replay]), np.mean([u for _, u in replay])
    assert got["samples"] == pytest.approx(used, rel=0.06)
    assert got["accuracy"] == pytest.approx(acc, abs=0.03)
    assert used < 12  # the rule does stop early on this mix: the test is not trivial
    assert predict_stopping(model, rule, 16, bin="easy")["samples"] < got["samples"]
    with pytest.raises(UserError, match="cap"):
        predict_stopping(model, rule, 0)


def call(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_plan_offers_adaptive_candidates_and_run_executes_them(tmp_path, capsys, monkeypatch):
    plan_file = tmp_path / "plan.json"
    # the short name and the default predictor (per-problem models) are enough
    argv = ["plan", "--policy", "gemma-3-270m", "--dataset", "arith", "--budget-n", "16"]
    argv += ["--method", "majority", "--stop", "beta:0.95", "--top", "20"]
    code, stdout, err = call([*argv, "--json", "--out", str(plan_file)], capsys)
    assert code == 0, err
    plan = json.loads(stdout)
    rows = [plan, *plan["alternatives"]]
    adaptive = {r["n"]: r for r in rows if r.get("stop") == "beta:0.95"}
    fixed = {r["n"]: r for r in rows if "stop" not in r}
    assert set(adaptive) == {2, 4, 8, 16} and set(fixed) >= {8, 16}
    for cap in (8, 16):
        a = adaptive[cap]
        assert cap > a["expected_samples"] >= 1
        assert a["flops_per_problem"] < fixed[cap]["flops_per_problem"]  # priced at the expected samples
        assert abs(a["predicted_accuracy"] - fixed[cap]["predicted_accuracy"]) < 0.03
        assert a["stop_basis"] == "measured"  # the shipped profile replayed beta:0.95 at this cap
    code, _, err = call([*argv, "--predictor", "regressor"], capsys)  # the regressor alone
    assert code == 2 and "--stop needs --predictor scaling" in err
    code, _, err = call([*argv, "--stop", "esc:1"], capsys)
    assert code == 2 and err.startswith("error: --stop: esc window")

    # the adaptive record as the plan file's configuration: run with early stopping
    doc = json.loads(plan_file.read_text())
    doc.update({k: v for k, v in adaptive[16].items()})
    plan_file.write_text(json.dumps(doc))
    assert load_plan(plan_file).config.stop == "beta:0.95"
    monkeypatch.setattr(
        cli_run, "load_engine", lambda kind, policy, seed: FakeEngine(name=policy, answers=("7",))
    )
    out = tmp_path / "r.jsonl"
    code, stdout, err = call(
        ["run", str(plan_file), "--dataset", "arith", "--limit", "3", "--out", str(out), "--json"], capsys
    )
    assert code == 0, err
    records = [json.loads(x) for x in out.read_text().splitlines()]
    assert all(r["config"]["stop"] == "beta:0.95" for r in records)
    assert [len(r["candidates"]) for r in records] == [4, 4, 4]  # one answer: settled after four votes
