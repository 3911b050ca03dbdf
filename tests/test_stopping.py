"""Early-stopping rules: when they stop, and their replay on recorded samples."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from calibration.replay import majority_expectation, replay_stopping
from calibration.samples import profile_samples
from planner.core.errors import UserError
from planner.core.stopping import StopRule, parse_rule, samples_needed

REPO = Path(__file__).resolve().parents[1]


def test_beta_needs_four_agreeing_votes_at_095_and_more_against_dissent():
    rule = parse_rule("beta:0.95")
    assert not rule.settled(["7", "7", "7"])  # P = 1 - 0.5**4 = 0.9375
    assert rule.settled(["7", "7", "7", "7"])  # 0.96875
    assert not rule.settled(["7", "7", "7", "7", "3"])  # one vote against: 0.891
    assert not rule.settled([None] * 6)  # unanswered samples never vote
    assert rule.settled(["7", None, "7", "7", None, "7"])
    assert samples_needed(rule, ["7"] * 16, 16) == 4
    assert samples_needed(rule, ["1", "2", "3", "4"] * 4, 16) == 16  # never settles: the cap
    assert samples_needed(parse_rule("beta:0.9"), ["7"] * 16, 16) == 3


def test_esc_stops_after_a_window_of_identical_answers():
    rule = parse_rule("esc:4")
    assert rule.round_size == 4
    answers = ["1", "2", "2", "2", "2", "2", "2", "2", "5", "5", "5", "5"]
    assert samples_needed(rule, answers, 12) == 8  # the first window disagrees, the second agrees
    assert samples_needed(rule, [None] * 8, 8) == 8  # an unanswered window never settles
    assert samples_needed(rule, answers, 6) == 6  # the last round is cut at the cap
    assert str(rule) == "esc:4" and str(parse_rule("beta:0.95")) == "beta:0.95"


@pytest.mark.parametrize(
    "text, message",
    [
        ("beta", "expected beta:CONFIDENCE or esc:WINDOW"),
        ("beta:high", "needs a number"),
        ("beta:0.5", "in (0.5, 1)"),
        ("beta:1", "in (0.5, 1)"),
        ("beta:nan", "in (0.5, 1)"),
        ("esc:1", "from 2 to 1024"),
        ("esc:2.5", "from 2 to 1024"),
        ("vote:3", "unknown rule"),
    ],
)
def test_bad_rules_are_one_line_errors_naming_stop(text, message):
    with pytest.raises(UserError, match=re.escape(message)) as info:
        parse_rule(text)
    assert str(info.value).startswith("stop: ")


def test_cap_must_fit_the_recorded_samples():
    with pytest.raises(UserError, match="cap"):
        samples_needed(StopRule("beta", 0.95), ["1", "1"], 3)


def test_replay_picks_as_the_live_selection_and_never_stopping_is_the_method_at_the_cap():
    table = {"2": 1.0, "5": 0.0, "1": 0.0}
    answers = ["1", "2", "2", "2", "2", "2", "2", "2", "5", "5", "5", "5"]
    assert replay_stopping(answers, table, 12, parse_rule("esc:4")) == (1.0, 8)
    # weighted vote over the drawn samples: a heavy "5" would win only if it had been drawn
    scores = [0.1] * 8 + [0.99] * 4
    assert replay_stopping(answers, table, 12, parse_rule("esc:4"), scores) == (1.0, 8)
    assert replay_stopping(answers, table, 12, parse_rule("esc:1024"), scores) == (0.0, 12)
    # on a shipped profile, a rule that never stops equals majority over all 16 samples
    df = profile_samples(REPO / "profiles" / "cpu_arith_qwen")
    never = parse_rule("esc:1024")
    for _, g in list(df.sort_values(["problem_id", "sample"]).groupby("problem_id"))[:40]:
        keys = [a if isinstance(a, str) and a else None for a in g["answer"]]
        correct = {a: float(c) for a, c in zip(keys, g["correct"], strict=True) if a is not None}
        got, used = replay_stopping(keys, correct, 16, never)
        assert used == 16
        if majority_expectation(keys, correct, 16) in (0.0, 1.0):  # no tie at the top
            assert got == majority_expectation(keys, correct, 16)


# ---------------------------------------------------------------- at run time (fake engine)


def test_rounds_draw_only_for_open_problems_and_stop_when_settled():
    from planner.core.config import MethodConfig
    from planner.core.scoring import answer_key
    from planner.executor.methods import RUNNERS
    from planner.executor.methods.common import extract
    from tests.fake_engine import FakeEngine, FakeVerifier

    questions = [f"q{i}" for i in range(12)]
    rule = parse_rule("esc:2")
    engine = FakeEngine(answers=("1", "2"))
    results = RUNNERS["majority"](engine, None, questions, MethodConfig("majority", 8, stop="esc:2"))
    used = [len(r.candidates) for r in results]
    assert all(2 <= u <= 8 and u % 2 == 0 for u in used) and min(used) < 8 < max(used) + 1
    for r, u in zip(results, used, strict=True):
        keys = [answer_key(a) if a else None for a in (c["answer"] for c in r.candidates)]
        assert samples_needed(rule, keys + [None] * (8 - u), 8) == u  # stopped exactly where the rule says
        assert r.policy_generated_tokens == sum(len(c["text"].split()) for c in r.candidates)
        assert extract(r.text) == r.answer
    # each call holds the problems still open, n = the window, one seed per round
    open_counts = [len(prompts) for prompts, _ in engine.calls]
    assert open_counts[0] == 12 and open_counts == sorted(open_counts, reverse=True)
    assert all(opts.n == 2 for _, opts in engine.calls) and len({o.seed for _, o in engine.calls}) == len(
        engine.calls
    )
    # without a stop rule: one call, n samples each, and the config's record key has no stop field
    plain = MethodConfig("majority", 8)
    assert (
        "stop" not in plain.to_dict()
        and MethodConfig("majority", 8, stop="esc:2").to_dict()["stop"] == "esc:2"
    )
    engine = FakeEngine(answers=("1", "2"))
    assert all(len(r.candidates) == 8 for r in RUNNERS["majority"](engine, None, questions, plain))
    assert len(engine.calls) == 1
    # weighted Best-of-N stops the same way and scores only what it drew
    verifier = FakeVerifier()
    config = MethodConfig("best_of_n", 8, aggregation="min", selection="vote", stop="esc:2")
    scored = RUNNERS["best_of_n"](FakeEngine(answers=("1", "2")), verifier, questions, config)
    assert [len(r.candidates) for r in scored] == used
    assert sum(verifier.calls) == sum(used)


@pytest.mark.parametrize(
    "fields",
    [
        {"method": "beam", "n": 8, "stop": "esc:2"},
        {"method": "best_of_n", "n": 8, "selection": "max", "stop": "esc:2"},
        {"method": "majority", "n": 8, "stop": "esc:one"},
    ],
)
def test_stop_only_for_majority_and_weighted_best_of_n(fields):
    from planner.core.config import MethodConfig

    with pytest.raises(UserError, match="^stop: "):
        MethodConfig(**fields)
