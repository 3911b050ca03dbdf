"""Answer extraction and equivalence (math-verify in a helper process)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from planner.core.datasets import load_dataset
from planner.executor import grading
from planner.executor.grading import as_number, extract_answer, grade, is_equivalent, math_verify_equal

pytest.importorskip("math_verify")

# ---------------------------------------------------------------- extraction


@pytest.mark.parametrize(
    ("text", "want"),
    [
        (r"so $x = \boxed{\frac{1}{2}}$.", r"\frac{1}{2}"),
        (r"first \boxed{3}, on second thought \boxed{4}", "4"),
        (r"\boxed{\{1, 2\}}", r"\{1, 2\}"),
        (r"\boxed{(a+5)(b+2)} and a truncated \boxed{\frac{1}{", "(a+5)(b+2)"),
        (r"thus $\boxed 5$.", "5"),
        (r"\fbox{7}", "7"),
        (r"\boxed{} The answer is 9", "9"),
        ("The answer is 42.", "42"),
        ("The answer is 42. So we are done.", "42"),
        ("The answer is 3.5", "3.5"),
        ("The answer is $5$ dollars.", "5"),
        (r"The final answer is \(\sqrt{2}\).", r"\sqrt{2}"),
        (r"Answer: $\frac{3}{4}$", r"\frac{3}{4}"),
        ("**Final Answer:** 12", "12"),
        ("She makes 9 * 2 = 18 dollars.\n#### 1,234", "1234"),
        ("#### 18\n", "18"),
        ("no answer here", None),
        ("the answer to part (a) is 3", None),
        ("", None),
        (None, None),
    ],
)
def test_extract_answer(text, want):
    assert extract_answer(text) == want


def test_as_number():
    assert as_number("1,000") == 1000 and as_number("-0.5") == as_number(r"-\frac{1}{2}")
    assert as_number(r"\dfrac12") == as_number("1/2") == as_number(".5")
    assert as_number("1,-2") is None and as_number(r"\sqrt{2}") is None and as_number("1/0") is None


# ---------------------------------------------------------------- equivalence

# Golds with intervals, tuples, matrices, text and expressions are MATH-500 answers
# (ids in comments); the predictions are the same value written another way, or a wrong one.
EQUAL = [
    ("1,000", "1000"),
    ("0.5", r"\frac{1}{2}"),
    ("23.0", "23"),
    ("1/2", "0.5"),
    ("25", "025"),
    (r"\dfrac{3}{56}", r"\frac{3}{56}"),
    (r"\sqrt{52}", r"2\sqrt{13}"),
    ("(3, \\pi/2)", r"\left( 3, \frac{\pi}{2} \right)"),  # precalculus/807
    ("(3,4]", "(3, 4]"),  # intermediate_algebra/558 written with a space
    ("(0.6, 8/3]", r"\left(\frac{3}{5},\frac{8}{3}\right]"),  # algebra/2486
    ("[-2,7]", r"x \in [-2,7]"),  # algebra/101
    (r"(9,36) \cup (0,9)", r"(0,9) \cup (9,36)"),  # intermediate_algebra/1992
    ("(1.5, -13)", r"\left( \frac{3}{2}, -13 \right)"),  # precalculus/541
    (
        r"\begin{pmatrix} -\frac{1}{3} \\ \frac{2}{3} \\ \frac{5}{3} \end{pmatrix}",
        r"\begin{pmatrix} -1/3 \\ 2/3 \\ 5/3 \end{pmatrix}",
    ),  # precalculus/1300
    ("ab+2a+5b+10", "(a+5)(b+2)"),  # intermediate_algebra/431
    ("Evelyn", r"\text{Evelyn}"),  # algebra/1349
    ("C", r"\text{(C)}"),  # precalculus/819
    (r"\frac{270}{7}", r"\frac{270}7\text{ degrees}"),  # prealgebra/1003
    ("90", r"90^\circ"),
]
DIFFERENT = [
    ("1001", "1000"),
    ("0.33", r"\frac{1}{3}"),
    ("-23", "23"),
    (r"2\sqrt{13}", r"3\sqrt{13}"),
    ("(3,4)", "(3,4]"),  # open vs half-open
    ("[3,4]", "(3,4]"),
    ("(-29,15)", "(15,-29)"),  # ordered pair, swapped
    ("(0,36)", r"(0,9) \cup (9,36)"),
    ("(a+5)(b+3)", "(a+5)(b+2)"),
    ("B", r"\text{(C)}"),
    ("Navin", r"\text{Evelyn}"),
]


@pytest.mark.parametrize(("pred", "gold"), EQUAL)
def test_equal(pred, gold):
    assert is_equivalent(pred, gold) is True


@pytest.mark.parametrize(("pred", "gold"), DIFFERENT)
def test_different(pred, gold):
    assert is_equivalent(pred, gold) is False


@pytest.mark.parametrize(
    "pred",
    [
        None,
        42,
        "",
        "   ",
        "$$",
        "}{",
        r"\frac{",
        r"\boxed{",
        "((((((",
        r"\begin{pmatrix}",
        "\x00\udcff",
        "9" * 5000,
    ],
)
def test_garbage_never_raises(pred):
    assert is_equivalent(pred, "5") is False
    assert is_equivalent("5", pred) is False
    answer, correct = grade(pred, "5")
    assert correct is False


def test_grade():
    assert grade(r"Steps...\n\nThe final answer is $\boxed{\dfrac{1}{2}}$", "0.5") == (r"\dfrac{1}{2}", True)
    assert grade("She sells 9 eggs.\n#### 1,234", "1234") == ("1234", True)
    assert grade("I am not sure.", "1") == (None, False)
    assert grade(r"\boxed{7}", "8") == ("7", False)


def test_slow_comparison_times_out_and_helper_recovers():
    math_verify_equal("1", "1")  # start the helper outside the timed part
    _spare_ready()
    start = time.monotonic()
    # 9^(9^9) has about 370 million digits: sympy cannot finish it in a second.
    assert is_equivalent("9^{9^{9}}", "1", timeout_s=1.0) is False
    assert time.monotonic() - start < 5.0
    assert is_equivalent(r"\sqrt{4}", "2") is True  # a fresh helper takes over
    _spare_ready()


def test_killed_comparison_costs_the_next_one_no_start_up():
    """The warm spare takes over at once: right after a comparison is killed at its limit, the
    next one is answered well within its own limit (a cold helper needs ~1 s to import)."""
    assert math_verify_equal(r"\sqrt{4}", "2", timeout_s=60.0)  # start (and warm) outside the timed part
    _spare_ready()
    start = time.monotonic()
    assert is_equivalent("9^{9^{9}}", "1", timeout_s=1.0) is False
    killed = time.monotonic() - start
    start = time.monotonic()
    assert is_equivalent(r"\sqrt{9}", "3", timeout_s=2.0) is True
    assert killed < 1.5 and time.monotonic() - start < 1.0
    _spare_ready()  # the tests after this one start with a warm spare again


def _spare_ready() -> None:
    """Wait until the worker's spare helper has warmed up (a loaded machine may take seconds)."""
    assert grading._WORKER._spare.wait_ready(time.monotonic() + 120.0)


@pytest.mark.parametrize("pred", ["7\x00999", "\x007", "7\x1b[0m", "7\x7f"])
def test_control_characters_are_never_equal(pred):
    assert is_equivalent(pred, "7") is False
    assert grade(f"The answer is {pred}", "7")[1] is False


def test_answers_over_the_size_bound_are_refused_before_parsing(monkeypatch):
    def parse(*args):
        raise AssertionError("parsed")

    monkeypatch.setattr(grading, "_compare_in_process", parse)
    monkeypatch.setattr(grading, "math_verify_equal", parse)
    long = "(" * 5000 + "1" + ")" * 5000
    start = time.monotonic()
    assert is_equivalent(long, "1") is False and is_equivalent("1", long) is False
    assert time.monotonic() - start < 0.1
    assert is_equivalent("1" * grading.MAX_ANSWER_CHARS, "1" * grading.MAX_ANSWER_CHARS) is True


def test_grading_from_worker_threads():
    pairs = EQUAL + DIFFERENT
    want = [True] * len(EQUAL) + [False] * len(DIFFERENT)
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda pg: is_equivalent(*pg), pairs))
    assert got == want
    box: list[bool] = []
    worker = threading.Thread(target=lambda: box.append(is_equivalent("9^{9^{9}}", "1", timeout_s=1.0)))
    worker.start()
    worker.join(10)
    assert box == [False]


def test_fallback_without_helper_process(monkeypatch):
    def cannot_start(*args) -> None:
        raise OSError("no processes here")

    worker = grading._Worker()
    monkeypatch.setattr(worker, "_ensure_started", cannot_start)
    assert worker.compare(r"\sqrt{4}", "2", 5.0) is True
    assert worker.broken
    assert worker.compare(r"\sqrt{5}", "2", 5.0) is False


def test_every_math500_gold_grades_against_itself():
    problems = load_dataset("math500")
    # math-verify alone (no string or number shortcut) must see each gold as equal to itself
    failed = [p.id for p in problems if not math_verify_equal(p.answer, p.answer, timeout_s=10.0)]
    assert failed == []
    # and the whole path: extraction from a boxed solution, then equivalence
    for p in problems:
        text = f"Some reasoning.\n\nThe final answer is $\\boxed{{{p.answer}}}$."
        assert grade(text, p.answer) == (p.answer, True), p.id
    # the same golds rewritten without spaces, \left/\right and \dfrac still match
    rewritten = [
        p.id
        for p in problems
        if not math_verify_equal(
            p.answer.replace(r"\left", "")
            .replace(r"\right", "")
            .replace(" ", "")
            .replace(r"\dfrac", r"\frac"),
            p.answer,
            timeout_s=10.0,
        )
    ]
    assert rewritten == []


def test_unclosed_box_after_answer_phrase_is_no_answer():
    # A solution cut off inside its box: the phrase fallback must not return "\boxed{15".
    assert extract_answer("8 + 6 = 14.\n\nThe final answer is \\boxed{15") is None
    assert extract_answer("The final answer is \\boxed{15}.") == "15"
