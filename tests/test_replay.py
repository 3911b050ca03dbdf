"""Exact replay: closed forms against brute-force enumeration, hand-worked cases, real samples."""

from __future__ import annotations

import math
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from calibration.replay import (
    best_of_n_bruteforce,
    best_of_n_expectation,
    majority_bruteforce,
    majority_expectation,
    replay_problem,
    replay_table,
    weighted_vote_bruteforce,
    weighted_vote_expectation,
)
from planner.core.errors import UserError
from planner.core.profiles import validate_records

QWEN_CSV = (
    Path(__file__).resolve().parent.parent
    / "calibration/data/published/persample_qwen25math_math100_8samples_rmscores.csv"
)


def _random_case(rng: random.Random):
    K = rng.randint(1, 8)
    k = rng.randint(1, K)
    # Few answers and few score values, so ties in counts, scores and sums are common.
    answers = [rng.choice(["a", "b", "c", "d", None]) for _ in range(K)]
    scores = [rng.choice([0.0, 0.25, 0.5, 0.75, 1.0]) for _ in range(K)]
    correct_by_answer = {a: rng.choice([0, 1]) for a in "abcd"}
    correct = [correct_by_answer[a] if a else 0 for a in answers]
    return K, k, answers, scores, correct_by_answer, correct


def test_fast_forms_match_bruteforce_on_random_small_cases():
    rng = random.Random(1234)
    seen_ties = 0
    for _ in range(600):
        K, k, answers, scores, cba, correct = _random_case(rng)
        assert best_of_n_expectation(scores, correct, k) == pytest.approx(
            best_of_n_bruteforce(scores, correct, k), abs=1e-12
        )
        assert majority_expectation(answers, cba, k) == pytest.approx(
            majority_bruteforce(answers, cba, k), abs=1e-12
        )
        assert weighted_vote_expectation(answers, scores, cba, k) == pytest.approx(
            weighted_vote_bruteforce(answers, scores, cba, k), abs=1e-12
        )
        seen_ties += len(set(scores)) < len(scores)
    assert seen_ties > 100  # the cases really exercised ties


def test_fast_forms_match_bruteforce_with_fractional_correctness_and_distinct_scores():
    rng = np.random.default_rng(7)
    for _ in range(100):
        K = int(rng.integers(2, 9))
        k = int(rng.integers(1, K + 1))
        scores = rng.normal(size=K).tolist()
        correct = rng.uniform(size=K).tolist()
        assert best_of_n_expectation(scores, correct, k) == pytest.approx(
            best_of_n_bruteforce(scores, correct, k)
        )
        # without ties, P(i is the max) = C(#below i, k-1) / C(K, k)
        ranks = np.argsort(np.argsort(scores))
        direct = sum(math.comb(int(r), k - 1) * c for r, c in zip(ranks, correct, strict=True)) / math.comb(
            K, k
        )
        assert best_of_n_expectation(scores, correct, k) == pytest.approx(direct)


def test_hand_computed_cases():
    # Best-of-2 of scores [.9, .9, .5, .1] with correctness [1, 0, 1, 0]; the 6 pairs:
    # {0,1} tie at .9 -> 1/2; {0,2} -> 1; {0,3} -> 1; {1,2} -> 0; {1,3} -> 0; {2,3} -> 1.
    # Total 3.5 / 6 = 7/12.
    assert best_of_n_expectation([0.9, 0.9, 0.5, 0.1], [1, 0, 1, 0], 2) == pytest.approx(7 / 12)
    # Majority of answers [a, a, b, c] with only a correct:
    # k=2: {a,a} -> 1; four pairs a+b or a+c tie -> 1/2 each; {b,c} -> 0. 3 / 6 = 1/2.
    # k=3: {a,a,b}, {a,a,c} -> 1; two {a,b,c} three-way ties -> 1/3 each. (2 + 2/3) / 4 = 2/3.
    assert majority_expectation(["a", "a", "b", "c"], {"a": 1, "b": 0, "c": 0}, 2) == pytest.approx(1 / 2)
    assert majority_expectation(["a", "a", "b", "c"], {"a": 1, "b": 0, "c": 0}, 3) == pytest.approx(2 / 3)
    # Weighted vote of [a .9, b .5, b .5], a correct: k=2: {a,b} twice -> a wins; {b,b} -> b. 2/3.
    # k=3: b sums 1.0 > .9 -> 0.
    assert weighted_vote_expectation(["a", "b", "b"], [0.9, 0.5, 0.5], {"a": 1, "b": 0}, 2) == pytest.approx(
        2 / 3
    )
    assert weighted_vote_expectation(["a", "b", "b"], [0.9, 0.5, 0.5], {"a": 1, "b": 0}, 3) == 0.0


def test_majority_at_k256_is_exact_without_enumeration():
    # One answer drawn twice among 254 singletons, K = 256, k = 2 (C(256,2) = 32640 pairs):
    # the pair of its two copies wins outright (1 pair); a pair with one copy is a 2-way tie
    # (2 * 254 = 508 pairs, half a win each). P = (1 + 254) / 32640.
    answers = ["x", "x"] + [f"s{i}" for i in range(254)]
    cba = {a: int(a == "x") for a in answers}
    assert majority_expectation(answers, cba, 2) == pytest.approx(255 / 32640, rel=1e-12)
    # Two groups of 128, one correct: symmetric, so 1/2 at every k.
    halves = ["r"] * 128 + ["w"] * 128
    for k in (1, 7, 64, 255, 256):
        assert majority_expectation(halves, {"r": 1, "w": 0}, k) == pytest.approx(0.5, abs=1e-12)
    # Every answer correct: the pick is always correct.
    many = [f"g{i % 23}" for i in range(256)]
    assert majority_expectation(many, dict.fromkeys(many, 1), 100) == pytest.approx(1.0, abs=1e-12)


def test_missing_answers_fill_subsets_but_never_win():
    # [a, None, None] with a correct, k=2: {a,None} twice -> a; {None,None} -> no answer (0).
    assert majority_expectation(["a", None, None], {"a": 1}, 2) == pytest.approx(2 / 3)
    assert weighted_vote_expectation(["a", None, ""], [0.1, 5.0, 5.0], {"a": 1}, 2) == pytest.approx(2 / 3)
    assert majority_expectation([None, None], {}, 1) == 0.0


def test_k_equal_1_is_pass1_and_k_equal_K_is_the_plain_rule():
    answers = ["3", "4", "3", "5", "3"]
    scores = [0.2, 0.9, 0.3, 0.1, 0.35]
    cba = {"3": 1, "4": 0, "5": 0}
    correct = [cba[a] for a in answers]
    for fn in (
        lambda k: best_of_n_expectation(scores, correct, k),
        lambda k: majority_expectation(answers, cba, k),
        lambda k: weighted_vote_expectation(answers, scores, cba, k),
    ):
        assert fn(1) == pytest.approx(3 / 5)
    assert best_of_n_expectation(scores, correct, 5) == 0.0  # top score .9 is answer "4"
    assert majority_expectation(answers, cba, 5) == 1.0
    assert weighted_vote_expectation(answers, scores, cba, 5) == 0.0  # "4": .9 > "3": .2+.3+.35


def test_enumerate_switch_and_limit():
    answers = list("aabbc")
    assert best_of_n_expectation([1, 2, 3, 4, 5], [0, 1, 0, 1, 1], 3, method="enumerate") == pytest.approx(
        best_of_n_expectation([1, 2, 3, 4, 5], [0, 1, 0, 1, 1], 3)
    )
    assert majority_expectation(answers, {"a": 1, "b": 0, "c": 0}, 3, method="enumerate") == pytest.approx(
        majority_expectation(answers, {"a": 1, "b": 0, "c": 0}, 3)
    )
    with pytest.raises(UserError, match="method"):
        best_of_n_expectation([1.0], [1], 1, method="sample")
    big = [f"a{i % 5}" for i in range(40)]
    with pytest.raises(UserError, match=r"C\(40,10\)=847660528 .*exceeds the limit 200000"):
        weighted_vote_expectation(big, [0.5] * 40, dict.fromkeys(big, 0), 10)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: best_of_n_expectation([0.1, 0.2], [1, 0], 3), "between 1 and"),
        (lambda: best_of_n_expectation([0.1, 0.2], [1, 0], 0), "between 1 and"),
        (lambda: best_of_n_expectation([0.1, float("nan")], [1, 0], 1), "finite"),
        (lambda: best_of_n_expectation([0.1, 0.2], [1], 1), "differ in length"),
        (lambda: best_of_n_expectation([0.1, 0.2], [1, 2], 1), r"\[0, 1\]"),
        (lambda: majority_expectation(["a", "b"], {"a": 1}, 1), "'b' has no entry"),
        (lambda: weighted_vote_expectation(["a"], [0.1, 0.2], {"a": 1}, 1), "differ in length"),
    ],
)
def test_bad_input_is_a_user_error(call, message):
    with pytest.raises(UserError, match=message):
        call()


def _samples(**over) -> pd.DataFrame:
    base = {
        "dataset": "arith",
        "problem_id": "p1",
        "level": "2",
        "policy": "pol",
        "prm": "ver",
        "aggregation": "last",
        "source": "test",
        "answer": ["1", "2", "1", None],
        "correct": [1, 0, 1, 0],
        "score": [0.9, 0.8, 0.1, 0.95],
        "policy_tokens": [10.0, 20.0, 30.0, 40.0],
    }
    base.update(over)
    return pd.DataFrame(base)


def test_replay_problem_rows_follow_the_schema():
    rows = replay_problem(_samples(), [1, 2, 4, 9])
    rows = validate_records(rows, "replay")  # raises if the rows break the schema
    assert sorted(set(rows["n"])) == [1, 2, 4]  # k = 9 > K = 4 is skipped
    assert len(rows) == 3 * 3
    assert (rows["pass1"] == 0.5).all() and (rows["difficulty"] == "medium").all()
    maj = rows[rows["method"] == "majority"]
    assert (
        set(maj["prm"]) == {"none"} and set(maj["selection"]) == {"vote"} and (maj["prm_tokens"] == 0).all()
    )
    bon = rows[(rows["method"] == "best_of_n") & (rows["selection"] == "max")].set_index("n")
    # best-of-4 drops the .95 sample, which has no answer, and picks the .9 one (correct)
    assert bon.loc[4, "accuracy"] == 1.0
    assert bon.loc[2, "policy_tokens"] == pytest.approx(2 * 25.0)  # k * mean tokens
    assert (rows["n_problems"] == 1).all() and rows["beam_width"].isna().all()


def test_replay_problem_without_scores_gives_majority_only():
    rows = replay_problem(_samples(score=[np.nan] * 4), [1, 2])
    assert set(rows["method"]) == {"majority"}
    with pytest.raises(UserError, match="some samples have a score"):
        replay_problem(_samples(score=[0.1, np.nan, 0.2, 0.3]), [1])


def test_replay_rejects_contradictory_grades_and_mixed_context():
    with pytest.raises(UserError, match="both correct and incorrect"):
        replay_problem(_samples(correct=[1, 0, 0, 0]), [1])
    with pytest.raises(UserError, match="'policy' must be constant"):
        replay_problem(_samples(policy=["a", "b", "a", "a"]), [1])


def test_replay_table_groups_problems():
    two = pd.concat(
        [_samples(), _samples(problem_id="p2", correct=[0, 1, 0, 0], answer=["7", "8", "9", None])]
    )
    rows = replay_table(two, [1, 2])
    assert set(rows["problem_id"]) == {"p1", "p2"}
    assert rows.groupby("problem_id").size().tolist() == [6, 6]
    p2 = rows[(rows["problem_id"] == "p2") & (rows["n"] == 1)]
    assert (p2["accuracy"] == 0.25).all()
    with pytest.raises(UserError, match="no k values"):
        replay_table(two, [])


def _qwen():
    return pd.read_csv(QWEN_CSV, dtype={"pred": str, "gt": str}, keep_default_na=False)


def test_qwen_samples_pass_at_1_and_8_match_the_source():
    df = _qwen()
    samples = pd.DataFrame(
        {
            "dataset": "math100",
            "problem_id": df["idx"].astype(str),
            "policy": "unstated",
            "prm": "rm",
            "aggregation": "last",
            "source": "qwen",
            "answer": df["pred"],
            "correct": df["correct"],
            "score": df["rm_score"],
        }
    )
    rows = replay_table(samples, [1, 8])
    per_problem = rows.drop_duplicates("problem_id")
    assert len(per_problem) == 100
    assert per_problem["pass1"].mean() == pytest.approx(0.91)  # the shared README: pass@1 0.91
    assert (per_problem["pass1"] > 0).mean() == pytest.approx(0.96)  # pass@8 0.96

    # At k = K = 8 there is one subset, so the replay must agree with the file's own rules
    # (Qwen2.5-Math rm_maj_eval: RM picks the first max score; majority the most common pred)
    # on every problem without a tie.
    at8 = rows[rows["n"] == 8]
    checked = 0
    for idx, g in df.groupby("idx"):
        scores, preds, correct = g["rm_score"].tolist(), g["pred"].tolist(), g["correct"].tolist()
        mine = at8[at8["problem_id"] == str(idx)]
        if scores.count(max(scores)) == 1:
            rm_pick = correct[scores.index(max(scores))]
            got = mine[(mine["method"] == "best_of_n") & (mine["selection"] == "max")]["accuracy"].item()
            assert got == rm_pick
            checked += 1
        counts = Counter(preds).most_common()
        if len(counts) == 1 or counts[0][1] > counts[1][1]:
            maj_pick = correct[preds.index(counts[0][0])]
            assert mine[mine["method"] == "majority"]["accuracy"].item() == maj_pick
            checked += 1
    assert checked >= 150  # most problems have no tie at k = 8


def test_weighted_vote_over_several_chunks_matches_bruteforce():
    # C(16, 7) = 11440 subsets: more than one vectorised chunk of 8192.
    rng = random.Random(5)
    answers = [rng.choice("abcde") for _ in range(16)]
    scores = [rng.choice([0.125, 0.25, 0.5, 1.0]) for _ in range(16)]
    cba = {"a": 1, "b": 0, "c": 1, "d": 0, "e": 0}
    assert weighted_vote_expectation(answers, scores, cba, 7) == pytest.approx(
        weighted_vote_bruteforce(answers, scores, cba, 7), abs=1e-12
    )


def test_best_of_n_drops_unanswered_samples_before_the_pick():
    scores, correct = [0.9, 0.1, 0.5, 0.7], [0, 1, 0, 1]
    answered = [False, True, True, False]
    # by hand, k = 2: of the 6 pairs, {0,3} has no answer (0); {0,1} picks 1 (1); {0,2} picks 2 (0);
    # {1,2} picks 2 (0); {1,3} picks 1 (1); {2,3} picks 2 (0) -> 2/6
    assert best_of_n_expectation(scores, correct, 2, answered=answered) == pytest.approx(2 / 6)
    rng = random.Random(3)
    for _ in range(40):
        K = rng.randint(1, 7)
        s = [rng.choice([0.1, 0.4, 0.4, 0.8]) for _ in range(K)]
        c = [rng.randint(0, 1) for _ in range(K)]
        a = [rng.random() < 0.6 for _ in range(K)]
        for k in range(1, K + 1):
            assert best_of_n_expectation(s, c, k, answered=a) == pytest.approx(
                best_of_n_bruteforce(s, c, k, answered=a)
            )
