"""A verifier from any causal LM: the probability that the model calls a step correct.

One forward pass per solution (many solutions per batch). The prompt is plain text, the
same for chat and base models (a short few-shot part shows the task to a base model):

    Check each step of a math solution. After each step, answer Yes if the step is
    correct and No if it is wrong.

    Problem: Compute 3 + 4 * 2.
    Step 1: 4 * 2 = 8
    Is this step correct? Answer: Yes
    Step 2: 3 + 8 = 12
    Is this step correct? Answer: No

    Problem: {problem}
    Step 1: {step 1}
    Is this step correct? Answer:        <- read P(" Yes") / (P(" Yes") + P(" No")) here
    Step 2: {step 2}
    Is this step correct? Answer:        <- and here
    ...

The judged solution's questions stay unanswered; with causal attention the text after a
question never changes the prediction read at it, so each step's score sees the problem
and the steps up to it. tokens_scored counts every token of that sequence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from planner.executor.base import StepScores
from planner.executor.verifiers.batching import Formatted, logits_at, score_solutions

JUDGE_HEADER = (
    "Check each step of a math solution. After each step, answer Yes if the step is correct "
    "and No if it is wrong.\n\n"
)
JUDGE_EXAMPLES = (
    "Problem: Compute 3 + 4 * 2.\n"
    "Step 1: 4 * 2 = 8\nIs this step correct? Answer: Yes\n"
    "Step 2: 3 + 8 = 12\nIs this step correct? Answer: No\n\n"
)
JUDGE_PROBLEM = "Problem: {problem}\n"
JUDGE_STEP = "Step {k}: {step}"
JUDGE_QUESTION = "\nIs this step correct? Answer:"
JUDGE_BETWEEN = "\n"  # after a question, before the next step
YES, NO = " Yes", " No"


class LMJudgeVerifier:
    """Scores steps with a causal LM asked "Is this step correct?" after each step."""

    def __init__(
        self,
        model_dir_or_name: str | Path,
        dtype: torch.dtype = torch.bfloat16,
        device: str = "cpu",
        batch_size: int = 8,
        max_batch_tokens: int = 8192,
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder, spec_name = resolve_model(model_dir_or_name)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).to(device)
        self._setup(
            model, tokenizer, f"lm-judge:{spec_name or folder}", spec_name, batch_size, max_batch_tokens
        )

    @classmethod
    def from_loaded(
        cls,
        model: torch.nn.Module,
        tokenizer: Any,
        name: str = "lm-judge",
        spec_name: str | None = None,
        batch_size: int = 8,
        max_batch_tokens: int = 8192,
    ) -> LMJudgeVerifier:
        """A judge around a model and tokenizer already in memory."""
        judge = cls.__new__(cls)
        judge._setup(model, tokenizer, name, spec_name, batch_size, max_batch_tokens)
        return judge

    def _setup(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        name: str,
        spec_name: str | None,
        batch_size: int,
        max_batch_tokens: int,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.spec_name = spec_name
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.answer_ids = [self._continuation_id(YES), self._continuation_id(NO)]
        if self.answer_ids[0] == self.answer_ids[1]:
            raise ValueError(f"{name}: ' Yes' and ' No' start with the same token")
        probe = self._encode("a", special=True)
        bos = tokenizer.bos_token_id
        self.prefix = [bos] if bos is not None and probe and probe[0] == bos else []

    def _encode(self, text: str, special: bool = False) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=special)["input_ids"])

    def _continuation_id(self, answer: str) -> int:
        """The token that follows the question when `answer` is written after it."""
        head = self._encode(JUDGE_QUESTION)
        full = self._encode(JUDGE_QUESTION + answer)
        if full[: len(head)] == head and len(full) > len(head):
            return full[len(head)]
        return self._encode(answer)[0]

    def format(self, problem: str, steps: list[str]) -> Formatted:
        """(token ids, positions): the judge prompt and where each step's answer is read."""
        ids = self.prefix + self._encode(
            JUDGE_HEADER + JUDGE_EXAMPLES + JUDGE_PROBLEM.format(problem=problem.strip())
        )
        positions = []
        for k, step in enumerate(steps):
            piece = (
                (JUDGE_BETWEEN if k else "") + JUDGE_STEP.format(k=k + 1, step=step.strip()) + JUDGE_QUESTION
            )
            ids += self._encode(piece)
            positions.append(len(ids) - 1)
        return ids, positions

    def format_text(self, problem: str, steps: list[str]) -> str:
        """The judge prompt as text (what `format` tokenizes piece by piece)."""
        text = JUDGE_HEADER + JUDGE_EXAMPLES + JUDGE_PROBLEM.format(problem=problem.strip())
        for k, step in enumerate(steps):
            text += (
                (JUDGE_BETWEEN if k else "") + JUDGE_STEP.format(k=k + 1, step=step.strip()) + JUDGE_QUESTION
            )
        return text

    def step_probs(
        self, ids: torch.Tensor, mask: torch.Tensor, positions: list[list[int]]
    ) -> list[list[float]]:
        rows = logits_at(self.model, ids, mask, positions, self.answer_ids)
        return [row.softmax(-1)[:, 0].tolist() for row in rows]

    def score(self, problems: list[str], solutions: list[list[str]]) -> list[StepScores]:
        return score_solutions(self, problems, solutions)


def resolve_model(model_dir_or_name: str | Path) -> tuple[Path, str | None]:
    """(folder, spec name): a local model folder (spec name None) or an embedded model."""
    from planner.executor.embedded import model_dir, resolve

    name = str(model_dir_or_name)
    return Path(model_dir(name)), resolve(name) or None
