"""Evaluation problems: the shipped datasets and a synthetic graded arithmetic set.

`load_dataset(name)` returns a list of `Problem`. Names: "math500", "aime24", "amc23",
"gsm8k" (copies in planner/data/datasets, sources in SOURCES.md there) and "arith", a
synthetic set with five difficulty levels and ground-truth steps, generated from a seed
("arith:seed=1,size=50" picks other settings).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

from planner.core import checks
from planner.core.errors import UserError

DATASETS = ("math500", "aime24", "amc23", "gsm8k", "arith")
ARITH_LEVELS = (1, 2, 3, 4, 5)
MAX_ARITH_PER_LEVEL = 20_000  # 100,000 problems: checked before any is built

_FILES = {
    "math500": "math500.jsonl",
    "aime24": "aime24.jsonl",
    "amc23": "amc23.jsonl",
    "gsm8k": "gsm8k_test.jsonl",
}


@dataclass(frozen=True)
class Problem:
    """One problem: question text, gold answer (a string), level 1-5 or None, dataset name.

    `steps` holds the ground-truth steps "a op b = c" (op is +, - or *) for "arith" only.
    """

    id: str
    question: str
    answer: str
    level: int | None
    dataset: str
    steps: tuple[str, ...] = ()


# ---------------------------------------------------------------- loading


def load_dataset(name: str, limit: int | None = None, levels: Iterable[int] | None = None) -> list[Problem]:
    """Problems of a dataset in file order, filtered by `levels`, then cut to the first `limit`."""
    checks.optional_integer(limit, "limit", 1, checks.MAX_PROBLEMS)
    base, _, options = dataset_name(name).partition(":")
    if base == "arith":
        problems = arith_problems(**_parse_arith_options(options))
    else:
        problems = list(_load_file(base))
    if levels is not None:
        wanted = _check_levels(levels)
        if all(p.level is None for p in problems):
            raise UserError(f"dataset {base!r} has no levels; drop the levels filter")
        problems = [p for p in problems if p.level in wanted]
    return problems if limit is None else problems[:limit]


def dataset_name(name: object) -> str:
    """The dataset name with its options checked ("Arith: seed=1" -> "arith:seed=1"); nothing is
    built. Every command that takes a dataset goes through here."""
    if not isinstance(name, str) or not name.strip():
        raise UserError(f"dataset: must be a name, one of {', '.join(DATASETS)}, got {name!r}")
    base, sep, options = name.strip().partition(":")
    base = base.strip().lower()
    if base not in DATASETS:
        raise UserError(f"dataset: unknown dataset {checks.short(name)}; known: {', '.join(DATASETS)}")
    if not sep:
        return base
    if base != "arith":
        raise UserError(f"dataset: {base} takes no options, got {checks.short(name)}")
    _parse_arith_options(options)
    return f"arith:{options.strip()}" if options.strip() else "arith"


def _check_levels(levels: Iterable[int]) -> set[int]:
    try:
        wanted = set(levels)
    except TypeError:
        raise UserError(f"levels must be a list of integers 1-5, got {levels!r}") from None
    bad = [v for v in wanted if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 5]
    if bad or not wanted:
        raise UserError(f"levels must be integers 1-5, got {sorted(map(str, levels))}")
    return wanted


@cache
def _load_file(name: str) -> tuple[Problem, ...]:
    path = resources.files("planner") / "data" / "datasets" / _FILES[name]
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return tuple(_ROW_READERS[name](i, row) for i, row in enumerate(rows))


def _math500_row(i: int, row: dict) -> Problem:
    uid = row["unique_id"].removeprefix("test/").removesuffix(".json")
    level = int(row["level"].removeprefix("Level").strip())
    return Problem(f"math500-{uid}", row["problem"], row["answer"].strip(), level, "math500")


def _aime24_row(i: int, row: dict) -> Problem:
    answer = str(row["answer"]).strip()
    if answer.isdigit():
        answer = str(int(answer))  # "025" -> "25"
    return Problem(f"aime24-{row['id']}", row["problem"], answer, None, "aime24")


def _amc23_row(i: int, row: dict) -> Problem:
    return Problem(f"amc23-{row['id']}", row["problem"], _number_text(row["answer"]), None, "amc23")


def _gsm8k_row(i: int, row: dict) -> Problem:
    answer = row["answer"].rsplit("####", 1)[1].strip().replace(",", "")
    return Problem(f"gsm8k-{i:04d}", row["question"], answer, None, "gsm8k")


_ROW_READERS = {"math500": _math500_row, "aime24": _aime24_row, "amc23": _amc23_row, "gsm8k": _gsm8k_row}


def _number_text(value: float | int | str) -> str:
    """27.0 -> "27"; 2.5 -> "2.5"."""
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


# ---------------------------------------------------------------- sampling


def stratified(problems: Sequence[Problem], k: int, seed: int = 0) -> list[Problem]:
    """k problems spread as evenly as possible over levels, chosen at random by `seed`.

    Levels with too few problems give all they have and the rest is shared by the others;
    when k does not divide evenly, `seed` picks which levels get one more. The result keeps
    the input order. Problems without a level form one group.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise UserError(f"k must be a positive integer, got {k!r}")
    if k > len(problems):
        raise UserError(f"k={k} is more than the {len(problems)} problems given")
    rng = random.Random(f"stratified:{seed}")
    groups: dict[int | None, list[int]] = {}
    for i, p in enumerate(problems):
        groups.setdefault(p.level, []).append(i)
    keys = sorted(groups, key=lambda lv: (lv is not None, lv or 0))
    quota = dict.fromkeys(keys, 0)
    left = k
    while left:
        open_keys = [key for key in keys if quota[key] < len(groups[key])]
        share = left // len(open_keys)
        if share == 0:  # fewer left than open levels: the seed picks who gets one more
            for key in _shuffled(rng, open_keys)[:left]:
                quota[key] += 1
            break
        for key in open_keys:
            extra = min(share, len(groups[key]) - quota[key])
            quota[key] += extra
            left -= extra
    chosen = sorted(i for key in keys for i in _shuffled(rng, groups[key])[: quota[key]])
    return [problems[i] for i in chosen]


def _randint(rng: random.Random, lo: int, hi: int) -> int:
    """Uniform in [lo, hi] from rng.random() only, whose output Python keeps stable across versions."""
    return lo + int(rng.random() * (hi - lo + 1))


def _shuffled(rng: random.Random, items: Sequence) -> list:
    out = list(items)
    for i in range(len(out) - 1, 0, -1):
        j = _randint(rng, 0, i)
        out[i], out[j] = out[j], out[i]
    return out


# ---------------------------------------------------------------- synthetic arithmetic

_STEP_RE = re.compile(r"^\s*(\d+)\s*([-+*])\s*(\d+)\s*=\s*(\d+)\s*$")


def parse_step(step: str) -> tuple[int, str, int, int] | None:
    """ "12 * 7 = 84" -> (12, "*", 7, 84); None when the text is not of that form."""
    m = _STEP_RE.match(step)
    return None if m is None else (int(m[1]), m[2], int(m[3]), int(m[4]))


def check_step(step: str) -> bool:
    """True when `step` has the form "a op b = c" and the arithmetic is right."""
    parsed = parse_step(step)
    if parsed is None:
        return False
    a, op, b, c = parsed
    return _apply(a, op, b) == c


def _apply(a: int, op: str, b: int) -> int:
    return a + b if op == "+" else a - b if op == "-" else a * b


class _Steps:
    """Records steps "a op b = c" while computing them."""

    def __init__(self) -> None:
        self.steps: list[str] = []

    def __call__(self, a: int, op: str, b: int) -> int:
        c = _apply(a, op, b)
        self.steps.append(f"{a} {op} {b} = {c}")
        return c


def _level1(rng: random.Random, s: _Steps) -> str:
    a, b, op = _randint(rng, 1, 9), _randint(rng, 1, 9), "+-*"[_randint(rng, 0, 2)]
    if op == "-" and a < b:
        a, b = b, a
    s(a, op, b)
    return f"Compute {a} {op} {b}."


def _level2(rng: random.Random, s: _Steps) -> str:
    if _randint(rng, 0, 1) == 0:  # two-digit + or -
        a, b, op = _randint(rng, 10, 99), _randint(rng, 10, 99), "+-"[_randint(rng, 0, 1)]
        if op == "-" and a < b:
            a, b = b, a
        s(a, op, b)
        return f"Compute {a} {op} {b}."
    a, b, op = _randint(rng, 2, 9), _randint(rng, 2, 9), "+-"[_randint(rng, 0, 1)]
    c = _randint(rng, 1, min(9, a * b))  # keeps a*b - c >= 0
    s(s(a, "*", b), op, c)
    return f"Compute {a} * {b} {op} {c}."


def _level3(rng: random.Random, s: _Steps) -> str:
    kind = _randint(rng, 0, 3)
    a, b = _randint(rng, 10, 99), _randint(rng, 10, 99)
    if kind in (0, 2):  # a + b - c
        c = _randint(rng, 10, min(99, a + b))
        s(s(a, "+", b), "-", c)
        if kind == 0:
            return f"Compute {a} + {b} - {c}."
        return (
            f"Mia has {a} stickers. She buys {b} more and then gives {c} to a friend. "
            "How many stickers does she have now?"
        )
    if a < b:  # a - b + c
        a, b = b, a
    c = _randint(rng, 10, 99)
    s(s(a, "-", b), "+", c)
    if kind == 1:
        return f"Compute {a} - {b} + {c}."
    return (
        f"A library has {a} books. It lends out {b} of them and then receives {c} new ones. "
        "How many books are in the library now?"
    )


def _level4(rng: random.Random, s: _Steps) -> str:
    kind = _randint(rng, 0, 3)
    a, b, d = _randint(rng, 10, 99), _randint(rng, 10, 99), _randint(rng, 2, 9)
    if kind in (0, 2):  # a*d + b*e
        e = _randint(rng, 2, 9)
        s(s(a, "*", d), "+", s(b, "*", e))
        if kind == 0:
            return f"Compute {a} * {d} + {b} * {e}."
        return (
            f"A shop sells {a} boxes with {d} pens each and {b} boxes with {e} pens each. "
            "How many pens does it sell in total?"
        )
    c = _randint(rng, 10, min(99, (a + b) * d))  # (a + b)*d - c >= 0
    s(s(s(a, "+", b), "*", d), "-", c)
    if kind == 1:
        return f"Compute ({a} + {b}) * {d} - {c}."
    return (
        f"Each of {d} classes has {a} boys and {b} girls. {c} of the students are absent today. "
        "How many students are present?"
    )


def _level5(rng: random.Random, s: _Steps) -> str:
    kind = _randint(rng, 0, 3)
    a, b = _randint(rng, 11, 99), _randint(rng, 11, 99)
    if kind == 0:  # a*b + c*d - e
        c, d = _randint(rng, 11, 99), _randint(rng, 11, 99)
        e = _randint(rng, 100, min(999, a * b + c * d))
        s(s(s(a, "*", b), "+", s(c, "*", d)), "-", e)
        return f"Compute {a} * {b} + {c} * {d} - {e}."
    if kind == 1:  # (a*b - c)*d + e
        c, d, e = _randint(rng, 10, 99), _randint(rng, 2, 9), _randint(rng, 100, 999)
        s(s(s(s(a, "*", b), "-", c), "*", d), "+", e)
        return f"Compute ({a} * {b} - {c}) * {d} + {e}."
    if kind == 2:  # a*b*d - c + e, told as a story
        d, e = _randint(rng, 2, 9), _randint(rng, 10, 99)
        c = _randint(rng, 100, min(999, a * b * d))
        s(s(s(s(a, "*", b), "*", d), "-", c), "+", e)
        return (
            f"A warehouse has {a} shelves with {b} boxes on each shelf, and every box holds {d} items. "
            f"{c} items are sold and then {e} items are delivered. How many items are in the warehouse now?"
        )
    # a*b - c*d + e*f with c*d < a*b
    c, d = _randint(rng, 2, 9), _randint(rng, 11, 99)
    e, f = _randint(rng, 11, 99), _randint(rng, 2, 9)
    if c * d > a * b:
        a, b, c, d = c, d, a, b  # swap the products so the difference stays >= 0
    s(s(s(a, "*", b), "-", s(c, "*", d)), "+", s(e, "*", f))
    return f"Compute {a} * {b} - {c} * {d} + {e} * {f}."


_LEVEL_MAKERS = {1: _level1, 2: _level2, 3: _level3, 4: _level4, 5: _level5}


def arith_problem(seed: int, level: int, index: int) -> Problem:
    """Problem number `index` of `level`: depends only on (seed, level, index)."""
    rng = random.Random(f"arith:{seed}:{level}:{index}")  # str seeds hash with SHA-512: stable
    s = _Steps()
    question = _LEVEL_MAKERS[level](rng, s)
    answer = int(s.steps[-1].rsplit("=", 1)[1])
    return Problem(f"arith-L{level}-{index:04d}", question, str(answer), level, "arith", tuple(s.steps))


def arith_problems(
    seed: int = 0, per_level: int = 100, levels: Iterable[int] = ARITH_LEVELS
) -> list[Problem]:
    """`per_level` problems for each level, level by level; problem i of a level never depends
    on per_level or on the other levels, so a smaller set is a prefix of a bigger one."""
    checks.integer(seed, "seed", -checks.MAX_SEED, checks.MAX_SEED)
    checks.integer(per_level, "per_level", 1, MAX_ARITH_PER_LEVEL)
    return [
        arith_problem(seed, level, i) for level in sorted(_check_levels(levels)) for i in range(per_level)
    ]


def _parse_arith_options(options: str) -> dict:
    """ "seed=1,size=50" -> {"seed": 1, "per_level": 10}. size must split evenly over 5 levels."""
    values = {"seed": 0, "size": None, "per_level": None}
    for item in filter(None, (part.strip() for part in options.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or key not in values:
            raise UserError(
                f"dataset: bad arith option {checks.short(item)}; use arith:seed=N,size=N or per_level=N"
            )
        text = value.strip()
        if not re.fullmatch(r"-?\d{1,19}", text):
            raise UserError(f"dataset: arith option {key} must be an integer, got {checks.short(text)}")
        values[key] = int(text)
    size, per_level = values["size"], values["per_level"]
    if size is not None and per_level is not None:
        raise UserError("dataset: give arith size or per_level, not both")
    if size is not None:
        most = MAX_ARITH_PER_LEVEL * len(ARITH_LEVELS)
        if not 1 <= size <= most or size % len(ARITH_LEVELS):
            raise UserError(
                f"dataset: arith size must be a multiple of {len(ARITH_LEVELS)} in [5, {most}], got {size}"
            )
        per_level = size // len(ARITH_LEVELS)
    per_level = 100 if per_level is None else per_level
    if not 1 <= per_level <= MAX_ARITH_PER_LEVEL:
        raise UserError(f"dataset: arith per_level must be in [1, {MAX_ARITH_PER_LEVEL}], got {per_level}")
    checks.integer(values["seed"], "dataset: arith seed", -checks.MAX_SEED, checks.MAX_SEED)
    return {"seed": values["seed"], "per_level": per_level}
