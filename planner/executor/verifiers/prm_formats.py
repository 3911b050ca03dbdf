"""The four PRM families of Liu et al. 2025 with their published input formats.

Each constant below says where it comes from. "Model card" means the model's page on the
Hugging Face hub; "search-and-learn" is github huggingface/search-and-learn
(src/sal/models/reward_models.py and src/sal/models/skywork_o1_prm/, the latter copied there
from github SkyworkAI/skywork-o1-prm-inference).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import Qwen2Config
from transformers.models.qwen2.modeling_qwen2 import Qwen2Model, Qwen2PreTrainedModel

from planner.core.errors import UserError
from planner.executor.verifiers.batching import Formatted, logits_at
from planner.executor.verifiers.prm_base import PRMAdapter, TextFormatPRM, clean_step, token_id

# ---------------------------------------------------------------- causal-LM PRMs


class GoodTokenPRM(TextFormatPRM):
    """A causal LM that scores a step by P(good token) over {good, bad} at the step's mark.

    Subclasses set `self.candidates = [good_id, bad_id]` and define the text format.
    """

    candidates: list[int]

    def step_probs(
        self, ids: torch.Tensor, mask: torch.Tensor, positions: list[list[int]]
    ) -> list[list[float]]:
        rows = logits_at(self.model, ids, mask, positions, self.candidates)
        return [row.softmax(-1)[:, 0].tolist() for row in rows]

    @classmethod
    def load(cls, folder: Path, device: str, dtype: torch.dtype, **kwargs: Any) -> GoodTokenPRM:
        return cls(*_load_causal_lm(folder, device, dtype), **kwargs)


# ---------------------------------------------------------------- Math-Shepherd

# Model card of peiyi9979/math-shepherd-mistral-7b-prm: good_token '+', bad_token '-',
# step_tag 'ки'; input f"{question} {output}" where output is the steps, each ending in
# " ки", joined by "\n" (the card's example); score = softmax over the logits of the two
# candidate tokens at each step-tag position, index 0 ("+"). The card gives the ids as
# candidate_tokens = encode("+ -")[1:] = [648, 387] and step_tag_id = 12902 (Mistral vocab);
# we find them through the tokenizer so the same code runs on any vocabulary.
MATH_SHEPHERD_GOOD = "+"
MATH_SHEPHERD_BAD = "-"
MATH_SHEPHERD_STEP_TAG = "ки"
MATH_SHEPHERD_STEP_JOIN = "\n"
MATH_SHEPHERD_PUBLISHED_IDS = {"candidates": (648, 387), "step_tag": 12902}  # for reference only


class MathShepherdPRM(GoodTokenPRM):
    family = "math-shepherd"
    add_special_tokens = True  # the card calls tokenizer.encode(text): BOS included

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        pair = f"{MATH_SHEPHERD_GOOD} {MATH_SHEPHERD_BAD}"  # as the card: encode("+ -")
        self.candidates = [token_id(self.tokenizer, pair, 0), token_id(self.tokenizer, pair, -1)]

    def format_text(self, problem: str, steps: list[str]) -> tuple[str, list[int]]:
        tag = MATH_SHEPHERD_STEP_TAG
        text = clean_step(problem, tag) + " "
        marks = []
        for k, step in enumerate(steps):
            if k:
                text += MATH_SHEPHERD_STEP_JOIN
            text += clean_step(step, tag) + " " + tag
            marks.append(len(text) - 1)  # read at the step tag itself
        return text, marks


# ---------------------------------------------------------------- RLHFlow

# Model cards of RLHFlow/Llama3.1-8B-PRM-Mistral-Data and -Deepseek-Data (and github
# RLHFlow/RLHF-Reward-Modeling math-rm/prm_evaluate.py, as quoted in search-and-learn): a
# chat with one user turn per step (the first one is question + " " + step) each answered
# by an assistant turn "+"; plus/minus ids = encode("+")[-1], encode("-")[-1]; the score of
# a step is softmax over those two logits at the position that predicts the assistant's "+"
# (index -3 of the chat that ends with that turn: "\n\n", "+", "<|eot_id|>"), index 0.
RLHFLOW_GOOD = "+"
RLHFLOW_BAD = "-"
RLHFLOW_FIRST_TURN = "{problem} {step}"


class RLHFlowPRM(GoodTokenPRM):
    family = "rlhflow"
    read_offset = -1  # the token before the assistant's "+" predicts it

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not getattr(self.tokenizer, "chat_template", None):
            raise ValueError(f"{self.name}: the tokenizer has no chat template (RLHFlow PRMs need one)")
        self.candidates = [token_id(self.tokenizer, RLHFLOW_GOOD), token_id(self.tokenizer, RLHFLOW_BAD)]

    def conversation(self, problem: str, steps: list[str]) -> list[dict[str, str]]:
        chat = []
        for k, step in enumerate(steps):
            text = RLHFLOW_FIRST_TURN.format(problem=problem, step=step) if k == 0 else step
            chat += [{"role": "user", "content": text}, {"role": "assistant", "content": RLHFLOW_GOOD}]
        return chat

    def format_text(self, problem: str, steps: list[str]) -> tuple[str, list[int]]:
        chat = self.conversation(problem.strip(), [clean_step(s) for s in steps])
        text = self._render(chat, add_generation_prompt=False)
        marks = []
        for k in range(len(steps)):
            # the chat up to step k's user turn, ready for the assistant: the "+" comes next
            head = self._render(chat[: 2 * k + 1], add_generation_prompt=True)
            if not text.startswith(head + RLHFLOW_GOOD):
                raise ValueError(
                    f"{self.name}: chat template is not prefix-stable; cannot place step {k + 1}"
                )
            marks.append(len(head))
        return text, marks

    def _render(self, chat: list[dict[str, str]], add_generation_prompt: bool) -> str:
        return self.tokenizer.apply_chat_template(
            chat, tokenize=False, add_generation_prompt=add_generation_prompt
        )


# ---------------------------------------------------------------- Skywork

# github SkyworkAI/skywork-o1-prm-inference (io_utils.prepare_input, model_utils/prm_model.py,
# README), as copied in search-and-learn: input ids = encode(bos_token + problem + "\n"), then
# for each step encode(step) followed by the id of the step token "\n" (their README uses
# step_token="\n"); the reward flag is on that step-token position. The model is a Qwen2
# causal LM plus a value head `v_head.summary` = Linear(hidden, 1) on the last hidden
# state; return_probs=True applies a sigmoid. Their code prepends tokenizer.bos_token as
# text; when a tokenizer has none we prepend nothing (their code would fail there).
# Our steps come split on "\n\n" and may hold single newlines; a step is scored once, at
# its end (their splitter would score each line).
SKYWORK_STEP_TOKEN = "\n"
SKYWORK_PROMPT = "{bos}{problem}\n"


class SkyworkValueHead(nn.Module):
    """The value head of Skywork's PRM_MODEL (dropout is off at inference)."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.summary = nn.Linear(hidden_size, 1)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.summary(hidden.to(self.summary.weight.dtype)).squeeze(-1)


class Qwen2ForPrmModel(Qwen2PreTrainedModel):
    """Qwen2 backbone + value head; loads a checkpoint with keys model.* and v_head.summary.*
    (its lm_head.* is not needed for the value and is left out). The name is the architecture
    that Skywork's vLLM plugin registers for these checkpoints."""

    config_class = Qwen2Config
    _keys_to_ignore_on_load_unexpected = [r"^lm_head\."]

    def __init__(self, config: Qwen2Config) -> None:
        super().__init__(config)
        self.model = Qwen2Model(config)
        self.v_head = SkyworkValueHead(config.hidden_size)
        self.post_init()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        hidden = self.model(
            input_ids=input_ids, attention_mask=attention_mask, use_cache=False
        ).last_hidden_state
        return self.v_head(hidden)  # [batch, seq] values before the sigmoid


class SkyworkPRM(PRMAdapter):
    family = "skywork"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.step_token_id = token_id(self.tokenizer, SKYWORK_STEP_TOKEN)

    def format(self, problem: str, steps: list[str]) -> Formatted:
        bos = self.tokenizer.bos_token or ""
        ids = self._encode(SKYWORK_PROMPT.format(bos=bos, problem=problem))
        positions = []
        for step in steps:
            text = step.strip("\n")
            ids += (self._encode(text) if text else []) + [self.step_token_id]
            positions.append(len(ids) - 1)
        return ids, positions

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def step_probs(
        self, ids: torch.Tensor, mask: torch.Tensor, positions: list[list[int]]
    ) -> list[list[float]]:
        values = self.model(ids.to(self.device), attention_mask=mask.to(self.device)).float()
        return [torch.sigmoid(values[i, row]).tolist() for i, row in enumerate(positions)]

    @classmethod
    def load(cls, folder: Path, device: str, dtype: torch.dtype, **kwargs: Any) -> SkyworkPRM:
        from transformers import AutoTokenizer

        model = _load_checked(Qwen2ForPrmModel, folder, dtype, cls.family).to(device)
        return cls(model, AutoTokenizer.from_pretrained(folder), **kwargs)


# ---------------------------------------------------------------- Qwen2.5-Math-PRM

# Model card of Qwen/Qwen2.5-Math-PRM-7B (same for -72B): messages = system (below), user =
# query, assistant = "<extra_0>".join(steps) + "<extra_0>"; apply_chat_template(tokenize=
# False, add_generation_prompt=False), then encode; the step score is softmax over the 2
# logits at each "<extra_0>" position, index 1. The head (remote code modeling_qwen2_rm.py,
# also in vLLM/SGLang as Qwen2ForProcessRewardModel): Qwen2Model + score = Sequential(
# Linear(h, h), ReLU, Linear(h, 2)). vLLM's default step_tag_id for it is 151651.
QWEN_PRM_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."
QWEN_PRM_STEP_TAG = "<extra_0>"
QWEN_PRM_PUBLISHED_STEP_TAG_ID = 151651  # vLLM's default for this model, for reference only


class Qwen2ForProcessRewardModel(Qwen2PreTrainedModel):
    """Qwen2.5-Math-PRM's architecture; loads its checkpoint keys model.* and score.*."""

    config_class = Qwen2Config

    def __init__(self, config: Qwen2Config) -> None:
        super().__init__(config)
        self.model = Qwen2Model(config)
        self.score = nn.Sequential(
            nn.Linear(config.hidden_size, config.hidden_size),
            nn.ReLU(),
            nn.Linear(config.hidden_size, 2),
        )
        self.post_init()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        hidden = self.model(
            input_ids=input_ids, attention_mask=attention_mask, use_cache=False
        ).last_hidden_state
        return self.score(hidden)  # [batch, seq, 2]


class QwenMathPRM(TextFormatPRM):
    family = "qwen-prm"

    def format_text(self, problem: str, steps: list[str]) -> tuple[str, list[int]]:
        tag = QWEN_PRM_STEP_TAG
        answer = "".join(clean_step(s, tag) + tag for s in steps)
        messages = [
            {"role": "system", "content": QWEN_PRM_SYSTEM},
            {"role": "user", "content": clean_step(problem, tag)},
            {"role": "assistant", "content": answer},
        ]
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
        marks = [i for i in range(len(text)) if text.startswith(tag, i)]
        if len(marks) != len(steps):
            raise ValueError(f"{self.name}: found {len(marks)} step tags for {len(steps)} steps")
        return text, marks

    def step_probs(
        self, ids: torch.Tensor, mask: torch.Tensor, positions: list[list[int]]
    ) -> list[list[float]]:
        logits = self.model(ids.to(self.device), attention_mask=mask.to(self.device)).float()
        return [logits[i, row].softmax(-1)[:, 1].tolist() for i, row in enumerate(positions)]

    @classmethod
    def load(cls, folder: Path, device: str, dtype: torch.dtype, **kwargs: Any) -> QwenMathPRM:
        from transformers import AutoTokenizer

        model = _load_checked(Qwen2ForProcessRewardModel, folder, dtype, cls.family).to(device)
        return cls(model, AutoTokenizer.from_pretrained(folder), **kwargs)


# ---------------------------------------------------------------- shared

FAMILIES: dict[str, type[PRMAdapter]] = {
    cls.family: cls for cls in (MathShepherdPRM, RLHFlowPRM, SkyworkPRM, QwenMathPRM)
}


def _load_checked(model_cls: type, folder: Path, dtype: torch.dtype, family: str) -> torch.nn.Module:
    """from_pretrained that refuses a checkpoint lacking some of the model's weights."""
    model, info = model_cls.from_pretrained(folder, dtype=dtype, output_loading_info=True)
    if info["missing_keys"]:
        missing = sorted(info["missing_keys"])
        raise UserError(f"{folder} is not a {family} PRM checkpoint: it lacks {', '.join(missing[:3])}")
    return model


def _load_causal_lm(folder: Path, device: str, dtype: torch.dtype) -> tuple[torch.nn.Module, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).to(device)
    return model, AutoTokenizer.from_pretrained(folder)
