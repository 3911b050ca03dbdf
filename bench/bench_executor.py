"""Executor overhead: N-sample (majority-style) generation through VLLMEngine vs bare vllm.LLM.

Both sides run on the same vllm.LLM and produce the same tokens (per-sample seeds, the way
VLLMEngine runs a seeded call); the script checks that, then prints wall times and
ours / bare. The target is <= 1.05.

    .venv/bin/python bench/bench_executor.py [--model smollm2] [--n 8] [--problems 8] [--max-tokens 64]
"""

from __future__ import annotations

import argparse
import statistics
import time

PROBLEMS = [
    f"What is {a} + {b}?" for a, b in [(3, 5), (12, 9), (7, 8), (21, 4), (6, 6), (15, 27), (9, 1), (33, 8)]
]


def bare_generate(llm, sampling_params_cls, ids: list[list[int]], n: int, seed: int, max_tokens: int):
    """What VLLMEngine.generate does for a seeded call, without any of our code around it."""
    requests = [{"prompt_token_ids": x} for x in ids for _ in range(n)]
    params = [
        sampling_params_cls(
            n=1,
            temperature=0.8,
            top_p=1.0,
            max_tokens=max_tokens,
            seed=seed + j,
            include_stop_str_in_output=True,
        )
        for _ in ids
        for j in range(n)
    ]
    outputs = llm.generate(requests, params, use_tqdm=False)
    return [list(o.outputs[0].token_ids) for o in outputs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--problems", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dtype", default="bfloat16")
    args = parser.parse_args()

    import vllm

    from planner.executor.base import SamplingOptions
    from planner.executor.engines.common import encode
    from planner.executor.engines.vllm_engine import VLLMEngine

    engine = VLLMEngine(args.model, seed=0, dtype=args.dtype)
    prompts = [engine.format_prompt(p) for p in PROBLEMS[: args.problems]]
    options = SamplingOptions(temperature=0.8, max_tokens=args.max_tokens, n=args.n, seed=1234)

    def ours():
        return engine.generate(prompts, options)

    def bare():
        ids = [encode(engine.tokenizer, p) for p in prompts]
        return bare_generate(engine.llm, vllm.SamplingParams, ids, args.n, options.seed, args.max_tokens)

    ours(), bare()  # warm up both paths
    ours_s, bare_s = [], []
    for r in range(args.repeats):  # alternate the order, so that drift hits both sides
        for name in ("ours", "bare") if r % 2 == 0 else ("bare", "ours"):
            t = time.perf_counter()
            result = ours() if name == "ours" else bare()
            (ours_s if name == "ours" else bare_s).append(time.perf_counter() - t)
            if name == "ours":
                ours_tokens = [c.tokens for g in result for c in g.completions]
            else:
                bare_tokens = [len(x) for x in result]
    if ours_tokens != bare_tokens:
        raise SystemExit("token counts differ between VLLMEngine and bare vllm: not the same work")
    total = sum(bare_tokens)
    o, b = statistics.median(ours_s), statistics.median(bare_s)
    print(
        f"model {engine.name} dtype {args.dtype}: {args.problems} prompts x n={args.n}, {total} generated tokens"
    )
    print(f"ours  median {o:.3f} s  ({total / o:.0f} tok/s)  runs {[round(x, 3) for x in ours_s]}")
    print(f"bare  median {b:.3f} s  ({total / b:.0f} tok/s)  runs {[round(x, 3) for x in bare_s]}")
    print(f"ours / bare = {o / b:.3f}  (target <= 1.05)")
    engine.close()


if __name__ == "__main__":
    main()
