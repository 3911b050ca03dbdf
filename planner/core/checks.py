"""Numbers a user gives: the one place for the checks and bounds every command applies.

Each check raises a one-line UserError that starts with the parameter's name ("n: must be an
integer in [1, 65536], got 0"); the CLI turns that name into the flag.
"""

from __future__ import annotations

import math
import numbers

from planner.core.errors import UserError

# Bounds: generous for real use, small enough that no count or size overflows or runs for hours.
MAX_N = 65_536  # samples (or beams) per problem
MAX_CONTEXT = 10_000_000  # tokens a model attends to
MAX_TOKENS = 1_000_000  # tokens per step or per solution
MAX_STEPS = 10_000  # reasoning steps per solution
MAX_PROBLEMS = 1_000_000  # problems in a dataset, a limit or a batch
MAX_SEED = 2**63 - 1
MAX_TEMPERATURE = 10.0
MAX_TOP = 10_000  # alternatives listed
MAX_JOBS = 1_024  # parallel workers


def _fmt(bound: float) -> str:
    return f"{bound:g}" if isinstance(bound, float) else f"{bound}"


def integer(value: object, name: str, lo: int, hi: int) -> int:
    """`value` as an int in [lo, hi]; a bool, a float or anything else is refused."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not ok or not lo <= value <= hi:
        raise UserError(f"{name}: must be an integer in [{lo}, {hi}], got {short(value)}")
    return int(value)


def optional_integer(value: object, name: str, lo: int, hi: int) -> int | None:
    return None if value is None else integer(value, name, lo, hi)


def number(value: object, name: str, lo: float, hi: float, *, above: bool = False) -> float:
    """`value` as a finite float in [lo, hi] ((lo, hi] with above=True)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    x = float(value) if ok and abs(value) < 1e308 else math.nan
    if not (math.isfinite(x) and (x > lo if above else x >= lo) and x <= hi):
        bracket = "(" if above else "["
        raise UserError(
            f"{name}: must be a finite number in {bracket}{_fmt(lo)}, {_fmt(hi)}], got {short(value)}"
        )
    return x


def parse_number(text: object, name: str, lo: float, hi: float, *, above: bool = False) -> float:
    """A number given as text ("1e15", "32"), checked as `number`."""
    try:
        value = float(str(text).strip())
    except ValueError:
        raise UserError(f"{name}: must be a number, got {short(text)}") from None
    return number(value, name, lo, hi, above=above)


def short(value: object) -> str:
    """repr of a value, cut so that an error stays one short line."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
