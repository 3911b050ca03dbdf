"""The sampling configuration of one TTS run (method, N, beam width, aggregation, selection,
sampling settings), validated on construction; defaults are the paper's settings."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from planner.core.errors import UserError
from planner.core.stopping import StopRule, parse_rule
from planner.core.vocab import (
    AGGREGATIONS,
    BEAM_WIDTH,
    MAX_STEP_TOKENS,
    MAX_STEPS,
    MAX_TOTAL_TOKENS,
    METHODS,
    NONE,
    SELECTIONS,
    TEMPERATURE,
    TOP_P,
    TREE_METHODS,
    VERIFIER_METHODS,
)

STOPPABLE = ("majority", "best_of_n")  # sampling methods that can stop a problem early


@dataclass(frozen=True)
class MethodConfig:
    """One TTS configuration; defaults are the paper's settings."""

    method: str
    n: int
    beam_width: int = BEAM_WIDTH
    aggregation: str = "last"
    selection: str = "max"
    temperature: float = TEMPERATURE
    top_p: float = TOP_P
    max_steps: int = MAX_STEPS
    max_step_tokens: int = MAX_STEP_TOKENS
    max_total_tokens: int = MAX_TOTAL_TOKENS
    seed: int = 0
    stop: str | None = None  # early stopping (majority, Best-of-N vote): "beta:0.95" or "esc:8"

    def __post_init__(self) -> None:
        validate_config(self)

    def to_dict(self) -> dict:
        out = asdict(self)
        if self.stop is None:  # records and resume keys of runs without early stopping stay as they were
            del out["stop"]
        return out

    @property
    def stop_rule(self) -> StopRule | None:
        return None if self.stop is None else parse_rule(self.stop)

    @property
    def uses_verifier(self) -> bool:
        return self.method in VERIFIER_METHODS


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def validate_config(c: MethodConfig) -> None:
    """Raise UserError naming the first bad field."""
    if c.method not in METHODS:
        raise UserError(f"method: unknown method {c.method!r}; choose one of {', '.join(METHODS)}")
    if not _is_int(c.n) or c.n < 1:
        raise UserError(f"n: must be an integer >= 1, got {c.n!r}")
    if c.method == "cot" and c.n != 1:
        raise UserError(f"n: cot takes one greedy sample (n=1), got n={c.n}")
    if not _is_int(c.beam_width) or c.beam_width < 1:
        raise UserError(f"beam_width: must be an integer >= 1, got {c.beam_width!r}")
    if c.method in TREE_METHODS:
        if c.n < c.beam_width:
            raise UserError(f"n: {c.method} needs n >= beam_width ({c.beam_width}), got n={c.n}")
        if c.n % c.beam_width:
            raise UserError(f"n: {c.method} needs n divisible by beam_width ({c.beam_width}), got n={c.n}")
    aggregations = AGGREGATIONS if c.uses_verifier else (*AGGREGATIONS, NONE)
    if c.aggregation not in aggregations:
        raise UserError(f"aggregation: unknown {c.aggregation!r}; choose one of {', '.join(aggregations)}")
    selections = SELECTIONS if c.uses_verifier else (*SELECTIONS, NONE)
    if c.selection not in selections:
        raise UserError(f"selection: unknown {c.selection!r}; choose one of {', '.join(selections)}")
    if not _is_number(c.temperature) or c.temperature < 0:
        raise UserError(f"temperature: must be a number >= 0, got {c.temperature!r}")
    if not _is_number(c.top_p) or not 0 < c.top_p <= 1:
        raise UserError(f"top_p: must be in (0, 1], got {c.top_p!r}")
    for name in ("max_steps", "max_step_tokens", "max_total_tokens"):
        value = getattr(c, name)
        if not _is_int(value) or value < 1:
            raise UserError(f"{name}: must be an integer >= 1, got {value!r}")
    if not _is_int(c.seed) or c.seed < 0:
        raise UserError(f"seed: must be an integer >= 0, got {c.seed!r}")
    if c.stop is not None:
        parse_rule(c.stop)
        if c.method not in STOPPABLE or (c.method == "best_of_n" and c.selection != "vote"):
            raise UserError("stop: early stopping is for majority and Best-of-N with selection vote")
