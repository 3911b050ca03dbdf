"""Chain of thought: one greedy sample per problem (temperature 0, as in the paper)."""

from __future__ import annotations

from collections.abc import Sequence

from planner.core.config import MethodConfig
from planner.executor.base import Engine, SamplingOptions, Verifier
from planner.executor.methods.common import (
    Result,
    Usage,
    call_seed,
    extract,
    generate,
    make_result,
    question_of,
)


def run(engine: Engine, verifier: Verifier | None, problems: Sequence, config: MethodConfig) -> list[Result]:
    """One generate call for the whole batch; the verifier is not used."""
    prompts = [engine.format_prompt(question_of(p)) for p in problems]
    options = SamplingOptions(
        temperature=0.0, top_p=1.0, max_tokens=config.max_total_tokens, n=1, seed=call_seed(config.seed, 0)
    )
    results = []
    for gen in generate(engine, prompts, options):
        usage = Usage()
        usage.add_generation(gen)
        text = gen.completions[0].text
        answer = extract(text)
        candidates = [{"answer": answer, "score": None, "text": text}]
        results.append(make_result(answer, text, candidates, usage, steps=1))
    return results
