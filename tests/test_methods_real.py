"""Every TTS method on a real embedded model (Gemma-3-270m, few-shot) with transformers, and with
vLLM when it is installed: 2 arithmetic problems, n=4, M=2, short token limits, the exact
arithmetic step checker as verifier.

Asserts structure, token counts, batching, reproducibility with the same seed and graded answers;
accuracy itself is only reported (printed), not asserted. Each method runs once per engine
(cached), beam search twice for reproducibility.
"""

from __future__ import annotations

import importlib.util

import pytest

from planner.core.config import MethodConfig
from planner.core.datasets import load_dataset
from planner.core.planfile import RunPlan
from planner.executor.grading import is_equivalent
from planner.executor.methods import RUNNERS
from planner.executor.runner import run_plan

pytestmark = pytest.mark.model

MODEL = "google/gemma-3-270m"  # few-shot answers are short, so 32 tokens reach a \boxed answer
LIMITS = dict(max_steps=2, max_step_tokens=16, max_total_tokens=32)
KINDS = ["transformers"]
if importlib.util.find_spec("vllm") is not None:
    KINDS.append(pytest.param("vllm", marks=pytest.mark.vllm))
EXPECTED_CANDIDATES = {"cot": 1, "majority": 4, "best_of_n": 4, "beam": 2, "dvts": 2}


class Counting:
    """Counts generate calls (prompts per call) of a real engine."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.name = engine.name
        self.calls: list[int] = []

    def format_prompt(self, problem: str) -> str:
        return self.engine.format_prompt(problem)

    def generate(self, prompts, options):
        self.calls.append(len(prompts))
        return self.engine.generate(prompts, options)


def config(method: str, seed: int = 5) -> MethodConfig:
    return MethodConfig(method, 1 if method == "cot" else 4, beam_width=2, seed=seed, **LIMITS)


@pytest.fixture(scope="module", params=KINDS)
def engine(request):
    from planner.executor.engines import make_engine

    engine = make_engine(request.param, MODEL, seed=0)
    yield engine
    if hasattr(engine, "close"):
        engine.close()


@pytest.fixture(scope="module")
def verifier():
    from planner.executor.verifiers import make_verifier

    return make_verifier("arith-check")


@pytest.fixture(scope="module")
def problems():
    return load_dataset("arith", limit=2)


@pytest.fixture(scope="module")
def runs(engine, verifier, problems):
    """method -> (results, prompts per generate call), one run each."""
    out = {}
    for method in RUNNERS:
        counted = Counting(engine)
        out[method] = RUNNERS[method](counted, verifier, problems, config(method)), counted.calls
    return out


@pytest.mark.parametrize("method", list(RUNNERS))
def test_method_on_a_real_model(method, runs, engine, problems):
    results, calls = runs[method]
    assert len(results) == len(problems)
    # batched across problems: the first call carries every problem; one call per step at most
    assert calls[0] >= len(problems)
    assert len(calls) <= (LIMITS["max_steps"] if method in ("beam", "dvts") else 1)
    correct = 0
    for p, r in zip(problems, results, strict=True):
        assert len(r.candidates) == EXPECTED_CANDIDATES[method]
        assert r.policy_prompt_tokens > 0 and r.policy_generated_tokens > 0
        if method in ("best_of_n", "beam", "dvts"):
            assert all(0.0 <= c["score"] <= 1.0 for c in r.candidates)
        assert r.answer in [c["answer"] for c in r.candidates]
        correct += bool(r.answer) and is_equivalent(r.answer, p.answer)
    print(
        f"\n{engine.name} {method}: {correct}/{len(problems)} correct; answers {[r.answer for r in results]}"
    )


def test_cot_token_counts(runs, engine, problems):
    results, _ = runs["cot"]
    for p, r in zip(problems, results, strict=True):
        assert r.policy_prompt_tokens == engine.count_tokens(engine.format_prompt(p.question))
        assert 0 < r.policy_generated_tokens <= LIMITS["max_total_tokens"]


def test_beam_is_reproducible(runs, engine, verifier, problems):
    results, _ = runs["beam"]
    again = RUNNERS["beam"](engine, verifier, problems, config("beam"))
    assert [r.candidates for r in again] == [r.candidates for r in results]


def test_run_plan_on_a_real_model(engine, problems, tmp_path):
    plan = RunPlan(MODEL, None, config("cot"))
    summary = run_plan(plan, problems, engine, None, tmp_path / "r.jsonl")
    assert summary.run == len(problems) and summary.mean_flops > 0  # Gemma is in the spec registry
    assert summary.correct == sum(
        bool(r.answer) and is_equivalent(r.answer, p.answer)
        for r, p in zip(RUNNERS["cot"](engine, None, problems, config("cot")), problems, strict=True)
    )
