"""Policy engines: vLLM in process, transformers, and any OpenAI-compatible server, behind
planner.executor.base.Engine.

All are imported lazily, so that `import planner` needs neither torch, vllm nor openai.
"""

from __future__ import annotations

import importlib.util

from planner.core.errors import UserError
from planner.core.vocab import ENGINES


def make_engine(kind: str, model: str, seed: int = 0, **kwargs):
    """An Engine for `model` (embedded name or folder; for "openai" the served model id, with
    base_url and api_key in kwargs). kind "auto": vLLM when installed."""
    if kind not in ENGINES:
        raise UserError(f"engine {kind!r} is not one of {', '.join(ENGINES)}")
    if kind == "openai":
        from planner.executor.engines.openai_engine import OpenAIEngine

        return OpenAIEngine(model=model, seed=seed, **kwargs)
    if kind == "auto":
        kind = "vllm" if importlib.util.find_spec("vllm") is not None else "transformers"
    if kind == "vllm":
        from planner.executor.engines.vllm_engine import VLLMEngine

        return VLLMEngine(model, seed=seed, **kwargs)
    if importlib.util.find_spec("transformers") is None:
        raise UserError("transformers is not installed: pip install 'tts-planner[hf]'")
    from planner.executor.engines.hf_engine import HFEngine

    return HFEngine(model, seed=seed, **kwargs)
