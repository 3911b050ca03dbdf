"""What every PRM adapter shares: validation, batching, token accounting.

An adapter knows its model's published input format (`format`) and how to read a step's
probability of being correct from the model's outputs (`step_probs`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from planner.executor.base import StepScores
from planner.executor.verifiers.batching import Formatted, score_solutions, token_at_char


class PRMAdapter:
    """A process reward model behind the Verifier interface."""

    family: ClassVar[str] = ""

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        name: str,
        spec_name: str | None = None,
        batch_size: int = 8,
        max_batch_tokens: int = 16384,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.spec_name = spec_name
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens

    # ---- what each family defines

    def format(self, problem: str, steps: list[str]) -> Formatted:
        """(token ids, positions): the model input and where each step's score is read."""
        raise NotImplementedError

    def step_probs(
        self, ids: torch.Tensor, mask: torch.Tensor, positions: list[list[int]]
    ) -> list[list[float]]:
        """P(step correct) at `positions` of each padded row."""
        raise NotImplementedError

    # ---- shared

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def score(self, problems: list[str], solutions: list[list[str]]) -> list[StepScores]:
        return score_solutions(self, problems, solutions)


class TextFormatPRM(PRMAdapter):
    """A PRM whose input is one text; steps are marked by characters in it.

    `format_text` gives the text and, for each step, the index of a character whose token
    is the one to read (`read_offset` -1: read the token before it, as for a model that
    predicts the marked token).
    """

    add_special_tokens: ClassVar[bool] = False
    read_offset: ClassVar[int] = 0

    def format_text(self, problem: str, steps: list[str]) -> tuple[str, list[int]]:
        raise NotImplementedError

    def format(self, problem: str, steps: list[str]) -> Formatted:
        text, marks = self.format_text(problem, steps)
        enc = self.tokenizer(text, add_special_tokens=self.add_special_tokens, return_offsets_mapping=True)
        offsets = [tuple(o) for o in enc["offset_mapping"]]
        positions = [token_at_char(offsets, m) + self.read_offset for m in marks]
        return list(enc["input_ids"]), positions


def clean_step(step: str, *reserved: str) -> str:
    """A step without surrounding whitespace and without the format's reserved markers."""
    for marker in reserved:
        step = step.replace(marker, "")
    return step.strip()


def token_id(tokenizer: Any, text: str, char: int = -1) -> int:
    """Id of the token that holds character `char` (default: the last) of `text` encoded alone."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    offsets = [tuple(o) for o in enc["offset_mapping"]]
    return int(enc["input_ids"][token_at_char(offsets, char % len(text))])
