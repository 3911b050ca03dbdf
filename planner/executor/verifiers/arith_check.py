"""An exact checker for the integer equations a step states ("12 * 7 = 84"). No model.

Every equation "a op b = c" with integers a, b, c (a minus sign in front of a number is
read as a sign) and op one of + - * x × / (also − · ÷ and LaTeX \\times \\cdot \\div; spaces
optional) is checked exactly:

- a step with any wrong equation scores 0;
- a step whose equations are all right scores 1;
- a step with no such equation scores `neutral` (default 0.5: no evidence either way, so a
  verified step ranks above an unchecked one and a wrong one below both).

An equation counts only when it is the whole left side: "2 + 3 * 4 = 14" is a longer
expression and is skipped, not read as "3 * 4 = 14". Decimals ("7 / 2 = 3.5"), thousands
separators ("1,000") and fractions are skipped too. In a chain "3 * 4 = 12 + 1 = 13" the
second link "12 + 1 = 13" is checked. Division is right when b * c == a exactly.
"""

from __future__ import annotations

import re

from planner.core.errors import UserError
from planner.executor.base import StepScores

NEUTRAL_SCORE = 0.5  # a design choice (see the module doc), not a measured value

_NUMBER = r"[-−]?\d+"
_OP = r"\\times|\\cdot|\\div|[-−+*x×·/÷]"
# Lookahead so that chained equations overlap: each start position is tried.
_EQUATION = re.compile(
    rf"(?=(?<![\w.,])({_NUMBER})[ \t]*({_OP})[ \t]*({_NUMBER})[ \t]*=[ \t]*({_NUMBER})(?![\w]|[.,]\d))"
)
_EXPRESSION_CHARS = set("+-−*x×·/÷^.,)]}\\")
_CONTINUES = set("+-−*x×·/÷^\\")


def _int(text: str) -> int:
    return int(text.replace("−", "-"))


def _apply(a: int, op: str, b: int, c: int) -> bool:
    if op == "+":
        return a + b == c
    if op in ("-", "−"):
        return a - b == c
    if op in ("*", "x", "×", "·", "\\times", "\\cdot"):
        return a * b == c
    return b != 0 and b * c == a  # "/", "÷", "\\div": exact division only


def find_equations(text: str) -> list[tuple[int, str, int, int, bool]]:
    """Every simple equation in `text` as (a, op, b, c, right), in order of appearance."""
    found = []
    for match in _EQUATION.finditer(text):
        start = match.start(1)
        end = match.end(4)
        before = text[:start].rstrip(" \t")
        if before and (before[-1] in _EXPRESSION_CHARS or before[-1].isdigit()):
            continue  # part of a longer left side, e.g. "2 + 3 * 4 = 14"
        after = text[end:].lstrip(" \t")
        if after and after[0] in _CONTINUES:
            continue  # the right side goes on: "= 5 + 1"
        a, op, b, c = _int(match[1]), match[2], _int(match[3]), _int(match[4])
        found.append((a, op, b, c, _apply(a, op, b, c)))
    return found


def check_step(step: str, neutral: float = NEUTRAL_SCORE) -> float:
    """0 when an equation in the step is wrong, 1 when all are right, `neutral` when none."""
    equations = find_equations(step)
    if not equations:
        return neutral
    return 1.0 if all(eq[4] for eq in equations) else 0.0


class ArithStepChecker:
    """Verifier that checks the arithmetic of each step exactly; reads no tokens."""

    name = "arith-check"
    spec_name = None  # no model: costs nothing in the cost model

    def __init__(self, neutral: float = NEUTRAL_SCORE) -> None:
        if not 0.0 <= neutral <= 1.0:
            raise UserError(f"arith-check neutral score must be in [0, 1], got {neutral}")
        self.neutral = neutral

    def score(self, problems: list[str], solutions: list[list[str]]) -> list[StepScores]:
        if len(problems) != len(solutions):
            raise ValueError(f"{len(problems)} problems but {len(solutions)} solutions")
        return [
            StepScores([check_step(step, self.neutral) for step in steps], tokens_scored=0)
            for steps in solutions
        ]
