"""Padding, length-sorted batching and position reads shared by the model verifiers.

Every model verifier turns a solution into one token sequence plus the positions whose
output gives the step scores, then runs many sequences per forward pass with right
padding (causal attention: padding after a sequence never changes its outputs).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from planner.executor.base import StepScores

# A formatted solution: token ids and the positions where each step's score is read.
Formatted = tuple[list[int], list[int]]


def pad_right(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask), both [batch, longest], padded on the right."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(list(s), dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids, mask


def length_batches(lengths: Sequence[int], batch_size: int, max_batch_tokens: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first), to keep padding small.

    A batch holds at most `batch_size` sequences and at most `max_batch_tokens` padded tokens
    (a single longer sequence still gets a batch of its own).
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    out: list[list[int]] = []
    for i in order:
        if out and len(out[-1]) < batch_size and lengths[out[-1][0]] * (len(out[-1]) + 1) <= max_batch_tokens:
            out[-1].append(i)
        else:
            out.append([i])
    return out


def run_batched(
    items: Sequence[Formatted | None],
    forward: Callable[[torch.Tensor, torch.Tensor, list[list[int]]], list[list[float]]],
    pad_id: int,
    batch_size: int,
    max_batch_tokens: int,
) -> list[list[float]]:
    """Scores per item: forward(ids, mask, positions) on length-sorted padded batches.

    An item None (a solution with no steps) gets []. Results come back in input order.
    """
    results: list[list[float]] = [[] for _ in items]
    live = [i for i, item in enumerate(items) if item is not None and item[1]]
    lengths = [len(items[i][0]) for i in live]  # type: ignore[index]
    for batch in length_batches(lengths, batch_size, max_batch_tokens):
        chosen = [live[j] for j in batch]
        ids, mask = pad_right([items[i][0] for i in chosen], pad_id)  # type: ignore[index]
        with torch.inference_mode():
            scores = forward(ids, mask, [list(items[i][1]) for i in chosen])  # type: ignore[index]
        for i, row in zip(chosen, scores, strict=True):
            results[i] = [float(x) for x in row]
    return results


def logits_at(
    model: torch.nn.Module,
    ids: torch.Tensor,
    mask: torch.Tensor,
    positions: list[list[int]],
    columns: Sequence[int] | None = None,
) -> list[torch.Tensor]:
    """Next-token logits (float32) of a causal LM at the given positions of each row.

    Gives [n_i, vocab] per row, or [n_i, len(columns)] when `columns` picks token ids. The model
    body runs once over every token; the output layer runs only at each row's own positions and,
    with `columns`, only for those token ids (a judge reads two), so its cost is negligible: the
    cost model charges a verifier read the body only (planner.models.cost.prm_flops).
    """
    device = next(model.parameters()).device
    base = getattr(model, model.base_model_prefix)
    hidden = base(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False).last_hidden_state
    rows = torch.tensor([i for i, row in enumerate(positions) for _ in row], dtype=torch.long, device=device)
    cols = torch.tensor([p for row in positions for p in row], dtype=torch.long, device=device)
    weight = model.get_output_embeddings().weight
    if columns is not None:
        weight = weight[list(columns)]
    logits = hidden[rows, cols] @ weight.T
    cap = getattr(model.config, "final_logit_softcapping", None)
    if cap is not None:  # Gemma 2/3: logits = cap * tanh(logits / cap), elementwise
        logits = torch.tanh(logits / cap) * cap
    logits = logits.float()
    out, start = [], 0
    for row in positions:
        out.append(logits[start : start + len(row)])
        start += len(row)
    return out


def token_at_char(offsets: Sequence[tuple[int, int]], char: int) -> int:
    """Index of the last token whose character span holds `char` (fast tokenizers' offsets).

    The last one, because byte-level tokenizers can split one character over several tokens.
    """
    found = -1
    for i, (start, end) in enumerate(offsets):
        if start <= char < end:
            found = i
        elif found >= 0:
            break
    if found < 0:
        raise ValueError(f"no token covers character {char}")
    return found


def pad_id_of(tokenizer) -> int:
    """The tokenizer's pad id, else its EOS id, else 0 (padding is masked anyway)."""
    for value in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if value is not None:
            return int(value)
    return 0


def score_solutions(verifier, problems: list[str], solutions: list[list[str]]) -> list:
    """Verifier.score for model verifiers that define format, step probabilities and batch limits."""
    if len(problems) != len(solutions):
        raise ValueError(f"{len(problems)} problems but {len(solutions)} solutions")
    items = [verifier.format(p, list(s)) if s else None for p, s in zip(problems, solutions, strict=True)]
    probs = run_batched(
        items,
        verifier.step_probs,
        pad_id_of(verifier.tokenizer),
        verifier.batch_size,
        verifier.max_batch_tokens,
    )
    return [
        StepScores(row, tokens_scored=len(item[0]) if item else 0)
        for row, item in zip(probs, items, strict=True)
    ]
