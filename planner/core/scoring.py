"""Scoring shared by live runs and replay: one aggregation of step scores, one answer key."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from planner.core.errors import UserError
from planner.core.vocab import AGGREGATIONS


def aggregate(step_scores: Sequence[float], how: str) -> float:
    """One solution score from its step scores: last, min, mean or prod.

    The one aggregation of the project: live methods, calibration replay and importers all call
    it, so a solution with no steps scores 0.0 everywhere; a NaN or infinite score is refused.
    """
    if how not in AGGREGATIONS:
        raise UserError(f"aggregation: unknown {how!r}; choose one of {', '.join(AGGREGATIONS)}")
    scores = [float(s) for s in step_scores]
    if not all(math.isfinite(s) for s in scores):
        raise UserError(f"step_scores: must be finite numbers, got {list(step_scores)!r}")
    if not scores:
        return 0.0
    if how == "last":
        return scores[-1]
    if how == "min":
        return min(scores)
    if how == "mean":
        return sum(scores) / len(scores)
    return math.prod(scores)


_NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)$")
_THOUSANDS = re.compile(r"^[-+]?\d{1,3}(,\d{3})+(\.\d*)?$")


def answer_key(answer: str) -> str:
    """Grouping key for votes: spaces, $ and \\left/\\right dropped; plain numbers normalised (1,000.0 -> 1000).

    A comma counts as a thousands separator only in groups of three digits: "1,2" is a pair
    (or a list), not twelve. Live runs, calibration derivation and importers all key answers here.
    """
    key = answer.replace("\\left", "").replace("\\right", "").replace("$", "")
    key = re.sub(r"\s+", "", key)
    plain = key.replace(",", "") if _THOUSANDS.match(key) else key
    if _NUMBER.match(plain):
        value = float(plain)
        key = str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return key


def answer_signature(keys: Sequence[str | None]) -> str:
    """How a handful of samples' answers split, order and values aside: the sizes of the groups of
    equal answers, largest first, and the unanswered count ("3+1/0": three agree, one differs, none
    unanswered; "0/4": none answered). The probe's posterior table is keyed by it."""
    counts: dict[str, int] = {}
    for k in keys:
        if k is not None:
            counts[k] = counts.get(k, 0) + 1
    sizes = "+".join(str(c) for c in sorted(counts.values(), reverse=True)) or "0"
    return f"{sizes}/{sum(1 for k in keys if k is None)}"
