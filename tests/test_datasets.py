"""Shipped datasets, the synthetic arithmetic set and stratified sampling."""

from __future__ import annotations

import ast
import json
import operator
import re
from collections import Counter
from importlib import resources

import pytest

from planner.core.datasets import (
    DATASETS,
    Problem,
    arith_problems,
    check_step,
    load_dataset,
    parse_step,
    stratified,
)
from planner.core.errors import UserError

# ---------------------------------------------------------------- shipped files


@pytest.mark.parametrize(
    ("name", "rows"), [("math500", 500), ("aime24", 30), ("amc23", 40), ("gsm8k", 1319), ("arith", 500)]
)
def test_row_counts(name, rows):
    problems = load_dataset(name)
    assert len(problems) == rows
    assert len({p.id for p in problems}) == rows
    assert all(p.dataset == name and p.question and p.answer for p in problems)


def test_math500_levels_match_the_published_split():
    # Level counts from /work/shared/data/README.md (PRM800K MATH-500 split).
    counts = Counter(p.level for p in load_dataset("math500"))
    assert counts == {1: 43, 2: 90, 3: 105, 4: 128, 5: 134}


def test_levels_filter_and_limit():
    hard = load_dataset("math500", levels=[4, 5])
    assert len(hard) == 128 + 134 and {p.level for p in hard} == {4, 5}
    first = load_dataset("math500", limit=3, levels=[5])
    assert first == [p for p in load_dataset("math500") if p.level == 5][:3]


def test_amc23_float_answers_become_integers():
    answers = {p.id: p.answer for p in load_dataset("amc23")}
    assert answers["amc23-0"] == "27"  # 27.0 in the file
    assert all(re.fullmatch(r"-?\d+", a) for a in answers.values())
    assert "-1" in answers.values()


def test_aime24_zero_padding_removed():
    answers = {p.id: p.answer for p in load_dataset("aime24")}
    assert answers["aime24-67"] == "25"  # "025" in the file
    assert all(re.fullmatch(r"\d+", a) and 0 <= int(a) <= 999 for a in answers.values())


def test_gsm8k_answers_are_the_text_after_hashes_without_commas():
    problems = load_dataset("gsm8k")
    assert problems[0].answer == "18"  # Janet's ducks: 16 - 3 - 4 = 9 eggs at $2
    raw = resources.files("planner").joinpath("data/datasets/gsm8k_test.jsonl").read_text().splitlines()
    with_commas = [i for i, line in enumerate(raw) if "," in json.loads(line)["answer"].split("####")[1]]
    assert len(with_commas) == 14
    for i in with_commas:
        written = json.loads(raw[i])["answer"].split("####")[1].strip()
        assert problems[i].answer == written.replace(",", "")
    assert all(re.fullmatch(r"-?\d+", p.answer) for p in problems)


def test_unknown_dataset_names_the_known_ones():
    with pytest.raises(UserError) as err:
        load_dataset("math5000")
    message = str(err.value)
    assert "math5000" in message and "\n" not in message
    assert all(name in message for name in DATASETS)
    with pytest.raises(UserError):
        load_dataset("math500:seed=1")


@pytest.mark.parametrize("limit", [0, -3, 1.5, "10", True])
def test_bad_limit(limit):
    with pytest.raises(UserError, match="limit"):
        load_dataset("aime24", limit=limit)


def test_bad_levels():
    with pytest.raises(UserError, match="no levels"):
        load_dataset("gsm8k", levels=[1])
    with pytest.raises(UserError, match="levels"):
        load_dataset("math500", levels=[0, 6])
    with pytest.raises(UserError, match="levels"):
        load_dataset("math500", levels=5)


# ---------------------------------------------------------------- arith

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}


def _evaluate(expression: str) -> int:
    """Independent evaluator of "Compute ..." questions: integers, + - * and parentheses only."""

    def walk(node: ast.AST) -> int:
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        raise ValueError(f"unexpected {ast.dump(node)}")

    return walk(ast.parse(expression, mode="eval").body)


def test_arith_is_deterministic_and_seeded():
    assert arith_problems(seed=3, per_level=20) == arith_problems(seed=3, per_level=20)
    a, b = arith_problems(seed=0, per_level=20), arith_problems(seed=1, per_level=20)
    assert [p.id for p in a] == [p.id for p in b]
    assert sum(p.question != q.question for p, q in zip(a, b, strict=True)) > 80


def test_arith_levels_spread_and_ids():
    problems = load_dataset("arith")
    assert Counter(p.level for p in problems) == {1: 100, 2: 100, 3: 100, 4: 100, 5: 100}
    assert problems[0].id == "arith-L1-0000" and problems[-1].id == "arith-L5-0099"
    assert all(re.fullmatch(rf"arith-L{p.level}-\d{{4}}", p.id) for p in problems)


def test_arith_smaller_sets_are_prefixes():
    small = load_dataset("arith:seed=0,size=50")
    assert len(small) == 50 and Counter(p.level for p in small) == dict.fromkeys(range(1, 6), 10)
    full = {p.id: p for p in load_dataset("arith")}
    assert all(full[p.id] == p for p in small)
    only3 = arith_problems(seed=0, per_level=5, levels=[3])
    assert [p.id for p in only3] == [f"arith-L3-{i:04d}" for i in range(5)]
    assert all(full[p.id] == p for p in only3)
    assert load_dataset("arith:seed=2,per_level=4", levels=[5]) == arith_problems(2, 4, [5])


def test_arith_answers_equal_their_steps():
    for p in arith_problems(seed=0, per_level=100) + arith_problems(seed=7, per_level=40):
        assert p.steps and all(check_step(s) for s in p.steps), p
        results: list[int] = []
        given = [int(n) for n in re.findall(r"\d+", p.question)]
        for step in p.steps:
            a, _, b, c = parse_step(step)
            # every operand is a number from the question or an earlier result
            for x in (a, b):
                if x in results:
                    results.remove(x)
                else:
                    assert x in given, (p.id, step)
                    given.remove(x)
            results.append(c)
        assert not given, f"{p.id}: numbers {given} of the question are unused"
        assert results == [int(p.answer)] and int(p.answer) >= 0
        if p.question.startswith("Compute "):
            assert _evaluate(p.question.removeprefix("Compute ").removesuffix(".")) == int(p.answer)


def test_arith_difficulty_grows_with_level():
    problems = arith_problems(seed=0, per_level=100)
    steps = {lv: [len(p.steps) for p in problems if p.level == lv] for lv in range(1, 6)}
    assert set(steps[1]) == {1} and set(steps[2]) == {1, 2} and set(steps[3]) == {2}
    assert set(steps[4]) == {3} and min(steps[5]) >= 4
    biggest = {lv: max(int(p.answer) for p in problems if p.level == lv) for lv in range(1, 6)}
    assert biggest[1] <= 81 and biggest[5] > 1000
    assert all(max(map(int, re.findall(r"\d+", p.question))) <= 9 for p in problems if p.level == 1)
    word = [p for p in problems if not p.question.startswith("Compute ")]
    assert word and all(p.level >= 3 for p in word)


def test_check_step():
    assert check_step("12 * 7 = 84") and check_step(" 3 - 3 = 0 ")
    assert not check_step("12 * 7 = 85") and not check_step("12 x 7 = 84") and not check_step("")


@pytest.mark.parametrize(
    "name", ["arith:size=7", "arith:seed=x", "arith:colour=3", "arith:size=10,per_level=2"]
)
def test_bad_arith_options(name):
    with pytest.raises(UserError):
        load_dataset(name)


# ---------------------------------------------------------------- stratified


def test_stratified_spreads_evenly_and_is_deterministic():
    math500 = load_dataset("math500")
    pick = stratified(math500, 50, seed=0)
    assert Counter(p.level for p in pick) == dict.fromkeys(range(1, 6), 10)
    assert pick == stratified(math500, 50, seed=0)
    assert pick != stratified(math500, 50, seed=1)
    order = {p.id: i for i, p in enumerate(math500)}
    assert [order[p.id] for p in pick] == sorted(order[p.id] for p in pick)


def test_stratified_when_a_level_runs_out():
    # 230 over 5 levels is 46 each, but level 1 has only 43: the 3 left go to the others.
    pick = stratified(load_dataset("math500"), 230, seed=0)
    counts = Counter(p.level for p in pick)
    assert counts[1] == 43 and sum(counts.values()) == 230 and len({p.id for p in pick}) == 230
    assert all(counts[lv] in (46, 47) for lv in range(2, 6))


def test_stratified_uneven_k_and_no_levels():
    counts = Counter(p.level for p in stratified(load_dataset("arith"), 7, seed=4))
    assert sorted(counts.values()) == [1, 1, 1, 2, 2]
    plain = [Problem(f"p{i}", "q", "1", None, "x") for i in range(5)]
    assert stratified(plain, 5, seed=0) == plain


@pytest.mark.parametrize("k", [0, 501, 2.0])
def test_stratified_bad_k(k):
    with pytest.raises(UserError):
        stratified(load_dataset("math500"), k, seed=0)
