"""Verifiers: PRM adapters, an LM judge and an exact arithmetic step checker.

`make_verifier(name)` builds one by name:

- "arith-check": exact check of the "a op b = c" equations in each step (no model);
- "lm-judge": a causal LM asked "Is this step correct?" after each step; the model is the
  policy's (`policy_model`) or, without one, the embedded SmolLM2; "lm-judge:MODEL" names
  an embedded model or a local folder; with prefix_reuse=True it keeps each beam's KV cache
  between tree-search steps (verifiers/prefix_reuse.py; priced with cost prm_reuse=True);
- a known PRM hub id (see KNOWN_PRMS; its weights must be on disk) or a PRM folder, with an
  optional family prefix ("skywork:/path/to/folder") when the folder does not tell.

Every verifier has `name` and `spec_name` (the model's name for the cost model, or None).
Torch and transformers are imported only for the model verifiers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from planner.core.errors import UserError
from planner.executor.verifiers.arith_check import ArithStepChecker
from planner.executor.verifiers.prm_names import FAMILY_NAMES, KNOWN_PRMS, known_prm

DEFAULT_JUDGE_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"


def make_verifier(
    name: str, policy_model: str | None = None, device: str | None = None, **options: Any
) -> Any:
    """A verifier by name; `options` go to its constructor (e.g. dtype, batch_size).

    device None: the GPU when torch sees one, else the CPU.
    """
    if not isinstance(name, str) or not name.strip():
        raise UserError(f"verifier name must be a non-empty string, got {name!r}")
    name = name.strip()
    reuse = options.pop("prefix_reuse", False)  # only the LM judge implements it
    if name == "arith-check":
        return ArithStepChecker(**options)
    family, sep, rest = name.partition(":")
    is_judge = name == "lm-judge" or name.startswith("lm-judge:")
    is_prm = (sep and family in FAMILY_NAMES) or known_prm(name) or Path(name).expanduser().is_dir()
    if not (is_judge or is_prm):  # refused before torch is imported
        raise UserError(
            f"unknown verifier {name!r}; choices: arith-check, lm-judge, lm-judge:MODEL, "
            f"a PRM folder, or one of {', '.join(KNOWN_PRMS)}"
        )
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    if is_judge:
        from planner.executor.verifiers.lm_judge import LMJudgeVerifier

        model = rest.strip() if family == "lm-judge" else ""
        judge = LMJudgeVerifier(model or policy_model or DEFAULT_JUDGE_MODEL, device=device, **options)
        if reuse:  # tree search: score each new step on its parent's kept KV cache
            from planner.executor.verifiers.prefix_reuse import PrefixReuseJudge

            return PrefixReuseJudge(judge)
        return judge

    from planner.executor.verifiers.prm import load_prm

    if sep and family in FAMILY_NAMES:
        return load_prm(rest, device=device, family=family, **options)
    return load_prm(name, device=device, **options)


__all__ = ["ArithStepChecker", "make_verifier", "DEFAULT_JUDGE_MODEL"]
