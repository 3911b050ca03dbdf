"""Early stopping for sampling methods: stop drawing samples for a problem once its leading answer
is settled, up to a cap N.

Two rules, named as on the command line:
- `beta:C` (Adaptive-Consistency, Aggarwal et al. 2023): with v1 and v2 votes for the two leading
  answers, the leader's share p1 against p2 has the posterior Beta(v1 + 1, v2 + 1) over
  p1 / (p1 + p2); stop when P(p1 > p2) = 1 - I_0.5(v1 + 1, v2 + 1) >= C (e.g. 0.95: four agreeing
  votes and none against).
- `esc:W` (Early-Stopping Self-Consistency, Li et al. 2024): samples come in windows of W; stop
  after a window whose W answers are all the same (and answered).
Unanswered samples never vote. The final answer is the method's own selection over every sample
drawn (majority, or the score-weighted vote), so a problem that never settles is the method at N.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from scipy.special import betainc

from planner.core.errors import UserError

RULES = ("beta", "esc")


@dataclass(frozen=True)
class StopRule:
    """A stopping rule: kind "beta" with a confidence in (0.5, 1), or "esc" with a window >= 2."""

    kind: str
    value: float

    def __post_init__(self) -> None:
        if self.kind not in RULES:
            raise UserError(f"stop: unknown rule {self.kind!r}; use beta:CONFIDENCE or esc:WINDOW")
        if self.kind == "beta" and not (math.isfinite(self.value) and 0.5 < self.value < 1):
            raise UserError(f"stop: beta confidence must be in (0.5, 1), got {self.value!r}")
        if self.kind == "esc" and (self.value != int(self.value) or not 2 <= self.value <= 1024):
            raise UserError(f"stop: esc window must be a whole number from 2 to 1024, got {self.value!r}")

    @property
    def round_size(self) -> int:
        """Samples drawn between two checks: one for beta, a window for esc."""
        return int(self.value) if self.kind == "esc" else 1

    def __str__(self) -> str:
        return f"{self.kind}:{int(self.value) if self.kind == 'esc' else self.value:g}"

    def settled(self, answers: Sequence[str | None]) -> bool:
        """True when the samples drawn so far (in order, None = unanswered) settle the answer."""
        if self.kind == "esc":
            w = int(self.value)
            if len(answers) < w or len(answers) % w:
                return False
            window = answers[-w:]
            return window[0] is not None and all(a == window[0] for a in window)
        votes = Counter(a for a in answers if a is not None).most_common(2)
        if not votes:
            return False
        v1 = votes[0][1]
        v2 = votes[1][1] if len(votes) > 1 else 0
        return 1.0 - float(betainc(v1 + 1, v2 + 1, 0.5)) >= self.value


NEVER = StopRule("esc", 1024)  # never stops before a cap of at most 1024: the method at the cap


def parse_rule(text: str) -> StopRule:
    """`beta:0.95` or `esc:8` -> StopRule; UserError naming `stop` otherwise."""
    kind, sep, value = str(text).strip().partition(":")
    if not sep:
        raise UserError(f"stop: expected beta:CONFIDENCE or esc:WINDOW, got {text!r}")
    try:
        number = float(value)
    except ValueError:
        raise UserError(f"stop: {kind} needs a number after ':', got {value!r}") from None
    return StopRule(kind.strip().lower(), number)


def samples_needed(rule: StopRule, answers: Sequence[str | None], cap: int) -> int:
    """How many of these samples (in their recorded order) the rule draws before it stops, at most
    `cap`; rounds of rule.round_size, the last one cut at the cap."""
    if cap < 1 or cap > len(answers):
        raise UserError(f"cap: must be between 1 and the {len(answers)} recorded samples, got {cap}")
    drawn = 0
    while drawn < cap:
        drawn = min(cap, drawn + rule.round_size)
        if rule.settled(answers[:drawn]):
            break
    return drawn
