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


def run_method(engine, verifier, problems, config: MethodConfig) -> list[Result]:
    """Run config.method on a batch of problems."""
    return RUNNERS[config.method](engine, verifier, problems, config)


__all__ = ["RUNNERS", "run_method"]
