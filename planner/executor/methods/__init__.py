"""TTS methods, each a pure strategy `run(engine, verifier, problems, config) -> list[MethodResult]`
batched across problems."""

from __future__ import annotations

from collections.abc import Callable

from planner.executor.methods import beam, best_of_n, cot, dvts, majority
from planner.executor.methods.common import METHOD_NAMES, MethodConfig, Result, aggregate

METHODS: dict[str, Callable] = {
    "cot": cot.run,
    "majority": majority.run,
    "best_of_n": best_of_n.run,
    "beam": beam.run,
    "dvts": dvts.run,
}
assert tuple(METHODS) == METHOD_NAMES


def run_method(engine, verifier, problems, config: MethodConfig) -> list[Result]:
    """Run config.method on a batch of problems."""
    return METHODS[config.method](engine, verifier, problems, config)


__all__ = ["METHODS", "MethodConfig", "Result", "aggregate", "run_method"]
