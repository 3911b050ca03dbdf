"""Beam search batched across problems vs one problem at a time, on the vLLM engine.

One engine (Gemma-3-270m, start-up excluded), the exact arithmetic step checker as verifier (it
costs nothing, so the figure is about generation batching), 32 "arith" problems stratified over
levels. Arm "batched": one beam run over all problems; arm "one_at_a_time": one run per problem.
Same config and seed for both; the prefix cache is emptied before each arm, so neither reuses
the other's prefixes. Prints one line per arm and one-at-a-time / batched (target >= 4x on CPU),
and writes them to bench/results/beam_batching.json.

    .venv/bin/python bench/bench_beam_batching.py [--problems 32] [--max-steps 8] [--max-step-tokens 64]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

MODEL = "google/gemma-3-270m"
OUT = Path(__file__).parent / "results" / "beam_batching.json"


def timed(run) -> tuple[float, int, list]:
    """Seconds, generated policy tokens and results of run()."""
    start = time.perf_counter()
    results = run()
    seconds = time.perf_counter() - start
    return seconds, sum(r.policy_generated_tokens for r in results), results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=32)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--beam-width", type=int, default=4)
    parser.add_argument("--max-steps", type=int, default=8)
    parser.add_argument("--max-step-tokens", type=int, default=64)
    # the last step generates to the end of the total budget: cap it too, to keep it minutes
    parser.add_argument("--max-total-tokens", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from planner.core.config import MethodConfig
    from planner.core.datasets import load_dataset, stratified
    from planner.executor.engines import make_engine
    from planner.executor.methods import RUNNERS
    from planner.executor.verifiers import make_verifier

    problems = stratified(load_dataset("arith"), args.problems, seed=0)
    config = MethodConfig(
        "beam",
        args.n,
        beam_width=args.beam_width,
        max_steps=args.max_steps,
        max_step_tokens=args.max_step_tokens,
        max_total_tokens=args.max_total_tokens,
        seed=args.seed,
    )
    beam = RUNNERS["beam"]
    verifier = make_verifier("arith-check")
    engine = make_engine("vllm", MODEL, seed=args.seed)

    beam(engine, verifier, problems[:2], config)  # warm-up
    arms = {
        "batched": lambda: beam(engine, verifier, problems, config),
        "one_at_a_time": lambda: [r for p in problems for r in beam(engine, verifier, [p], config)],
    }
    report: dict = {"model": MODEL, "engine": "vllm", "machine": platform.processor() or platform.machine()}
    report |= {"cpus": os.cpu_count(), "problems": len(problems), "config": config.to_dict()}
    answers = {}
    for name, run in arms.items():
        engine.llm.reset_prefix_cache()
        seconds, tokens, results = timed(run)
        answers[name] = [r.answer for r in results]
        report[name] = {
            "seconds": round(seconds, 2),
            "tokens": tokens,
            "tokens_per_s": round(tokens / seconds, 1),
        }
        print(f"{name:14s} {seconds:8.1f} s  {tokens:7d} tokens  {tokens / seconds:7.1f} tok/s")
    report["ratio"] = round(report["one_at_a_time"]["seconds"] / report["batched"]["seconds"], 2)
    report["same_answers"] = answers["batched"] == answers["one_at_a_time"]
    print(f"one_at_a_time / batched = {report['ratio']:.2f}x  (target >= 4x)")
    print(f"same answers in both arms: {report['same_answers']}")
    engine.close()

    OUT.parent.mkdir(parents=True, exist_ok=True)
    tmp = OUT.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp, OUT)


if __name__ == "__main__":
    main()
