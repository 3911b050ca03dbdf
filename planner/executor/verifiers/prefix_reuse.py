"""Verifier prefix reuse for tree search: score only a beam's new step against its parent's state.

Beam search and DVTS score every child at every step; a child is its parent's steps plus one.
`PrefixReuseJudge` wraps the LM judge (whose prompt is tokenized piece by piece, so a child's
token ids start with its parent's exactly) and keeps, per scored solution, its KV cache and
step scores, for one round: the next call's parents are among the children scored last. A
solution whose parent was kept runs the model over its new tokens only, on a copy of the
parent's cache; anything else is read in full. A solution with the same steps as a kept one
(a blank step adds none) costs nothing. Scores equal a full read to numerical tolerance
(tests/test_verifiers.py).

Each StepScores says what was computed: tokens_scored new tokens after tokens_reused kept
ones, which is how the cost model prices the read (cost.prm_flops with a reused prefix).
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from planner.executor.base import StepScores


class PrefixReuseJudge:
    """An LM judge (LMJudgeVerifier or alike: format, model, answer_ids) with per-beam KV reuse."""

    prefix_reuse = True

    def __init__(self, judge: Any) -> None:
        self.judge = judge
        self.name = judge.name
        self.spec_name = getattr(judge, "spec_name", None)
        self.model = judge.model
        self._kept: dict[tuple, tuple[list[int], Any, list[float]]] = {}

    def reset(self) -> None:
        """Forget every kept state (a new search)."""
        self._kept = {}

    def score(self, problems: list[str], solutions: list[list[str]]) -> list[StepScores]:
        kept: dict[tuple, tuple[list[int], Any, list[float]]] = {}
        out = []
        for problem, steps in zip(problems, solutions, strict=True):
            if not steps:
                out.append(StepScores([]))
                continue
            key = (problem, tuple(steps))
            ids, positions = self.judge.format(problem, list(steps))
            same = self._kept.get(key) or kept.get(key)
            if same is not None and same[0] == ids:
                kept[key] = same
                out.append(StepScores(list(same[2]), tokens_scored=0, tokens_reused=len(ids)))
                continue
            parent = self._kept.get((problem, tuple(steps[:-1])))
            if parent is not None and ids[: len(parent[0])] != parent[0]:
                parent = None
            start = len(parent[0]) if parent is not None else 0
            cache = copy.deepcopy(parent[1]) if parent is not None else None
            new_positions = [p for p in positions if p >= start]
            scores, cache = self._forward(ids[start:], cache, start, new_positions)
            previous = list(parent[2]) if parent is not None else []
            all_scores = previous + scores
            kept[key] = (ids, cache, all_scores)
            out.append(StepScores(all_scores, tokens_scored=len(ids) - start, tokens_reused=start))
        self._kept = kept
        return out

    @torch.inference_mode()
    def _forward(self, new_ids: list[int], cache, start: int, positions: list[int]):
        """Scores at `positions` (absolute) after running `new_ids` on top of `cache`."""
        model = self.model
        device = next(model.parameters()).device
        base = getattr(model, model.base_model_prefix)
        ids = torch.tensor([new_ids], dtype=torch.long, device=device)
        mask = torch.ones((1, start + len(new_ids)), dtype=torch.long, device=device)
        kwargs = {"past_key_values": cache} if cache is not None else {}
        result = base(input_ids=ids, attention_mask=mask, use_cache=True, **kwargs)
        hidden = result.last_hidden_state[0, [p - start for p in positions]]
        weight = model.get_output_embeddings().weight[list(self.judge.answer_ids)]
        logits = hidden @ weight.T
        cap = getattr(model.config, "final_logit_softcapping", None)
        if cap is not None:
            logits = torch.tanh(logits / cap) * cap
        probs = logits.float().softmax(-1)[:, 0].tolist()
        return [float(x) for x in probs], result.past_key_values
