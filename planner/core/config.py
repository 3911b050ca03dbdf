"""The sampling configuration of one TTS run (method, N, beam width, aggregation, selection,
sampling settings), validated on construction; defaults are the paper's settings."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from planner.core import checks
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


def validate_config(c: MethodConfig) -> None:
    """Raise UserError naming the first bad field."""
    if c.method not in METHODS:
        raise UserError(f"method: unknown method {c.method!r}; choose one of {', '.join(METHODS)}")
    checks.integer(c.n, "n", 1, checks.MAX_N)
    if c.method == "cot" and c.n != 1:
        raise UserError(f"n: cot takes one greedy sample (n=1), got n={c.n}")
    checks.integer(c.beam_width, "beam_width", 1, checks.MAX_N)
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
    checks.number(c.temperature, "temperature", 0, checks.MAX_TEMPERATURE)
    checks.number(c.top_p, "top_p", 0, 1, above=True)
    checks.integer(c.max_steps, "max_steps", 1, checks.MAX_STEPS)
    checks.integer(c.max_step_tokens, "max_step_tokens", 1, checks.MAX_TOKENS)
    checks.integer(c.max_total_tokens, "max_total_tokens", 1, checks.MAX_TOKENS)
    checks.integer(c.seed, "seed", 0, checks.MAX_SEED)
    if c.stop is not None:
        parse_rule(c.stop)
        if c.method not in STOPPABLE or (c.method == "best_of_n" and c.selection != "vote"):
            raise UserError("stop: early stopping is for majority and Best-of-N with selection vote")
