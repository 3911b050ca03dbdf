"""TTS methods, each a pure strategy `run(engine, verifier, problems, config) -> list[MethodResult]`
batched across problems. One module per method, named as in planner.core.vocab.METHODS: adding a
method is that module plus its vocabulary entry."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from planner.core.config import MethodConfig
from planner.core.vocab import METHODS
from planner.executor.methods.common import Result

RUNNERS: dict[str, Callable] = {
    name: importlib.import_module(f"planner.executor.methods.{name}").run for name in METHODS
}


SAMPLING = ("majority", "best_of_n")  # methods that can start from samples already drawn


def run_method(engine, verifier, problems, config: MethodConfig, prior=None) -> list[Result]:
    """Run config.method on a batch of problems. prior (majority and Best-of-N only): per problem,
    full solutions already drawn from the same policy (a probe's), which count toward the n."""
    if prior is None:
        return RUNNERS[config.method](engine, verifier, problems, config)
    if config.method not in SAMPLING:
        raise ValueError(f"prior: samples can be reused by majority and best_of_n, not {config.method}")
    return RUNNERS[config.method](engine, verifier, problems, config, prior=prior)


__all__ = ["RUNNERS", "SAMPLING", "run_method"]
