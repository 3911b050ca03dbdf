"""Verifier prefix reuse for beam search, against full rescoring, on the same beams.

Runs beam search once (transformers engine, CPU) with the LM judge and records every verifier
call; then replays those calls through the judge reading every prefix in full and through
PrefixReuseJudge (each new step on its parent's kept KV cache). Same beams, same calls: reports
the largest score difference, verifier tokens computed, verifier FLOPs (cost.prm_flops on the
tokens each read computed, with the reused prefix) and wall-clock seconds of each replay.

    PYTHONPATH=. .venv/bin/python bench/prefix_reuse.py --out bench/results/prefix_reuse.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from planner.core.config import MethodConfig
from planner.core.datasets import arith_problems
from planner.executor.engines.hf_engine import HFEngine
from planner.executor.methods import run_method
from planner.executor.verifiers.lm_judge import LMJudgeVerifier
from planner.executor.verifiers.prefix_reuse import PrefixReuseJudge
from planner.models import cost, specs


class Recorder:
    """A verifier that passes calls on and keeps them."""

    def __init__(self, inner) -> None:
        self.inner, self.name, self.spec_name, self.calls = inner, inner.name, inner.spec_name, []

    def score(self, problems, solutions):
        self.calls.append((list(problems), [list(s) for s in solutions]))
        return self.inner.score(problems, solutions)


def replay(verifier, calls, spec) -> dict:
    t0 = time.perf_counter()
    scores, tokens, flops = [], 0, 0.0
    for problems, solutions in calls:
        for s in verifier.score(problems, solutions):
            scores.append(s.steps)
            tokens += s.tokens_scored
            flops += float(cost.prm_flops(spec, s.tokens_scored, s.tokens_reused))
    return {"seconds": time.perf_counter() - t0, "tokens": tokens, "flops": flops, "scores": scores}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--policy", default="smollm2")
    ap.add_argument("--judge", default="smollm2")
    ap.add_argument("--problems", type=int, default=4)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--beam-width", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="bench/results/prefix_reuse.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    problems = arith_problems(seed=5, per_level=args.problems, levels=[3, 4])[: args.problems]
    engine = HFEngine(args.policy, seed=0, dtype="float32")
    judge = LMJudgeVerifier(args.judge, dtype=torch.float32)
    spec = specs.resolve(f"lm-judge:{judge.spec_name}")
    config = MethodConfig(
        "beam", args.n, beam_width=args.beam_width, max_steps=8, max_step_tokens=96, max_total_tokens=256
    )
    recorder = Recorder(judge)
    t0 = time.perf_counter()
    run_method(engine, recorder, problems, config)
    search_s = time.perf_counter() - t0
    full = replay(judge, recorder.calls, spec)
    reuse = replay(PrefixReuseJudge(judge), recorder.calls, spec)
    diff = max(
        (
            abs(a - b)
            for fs, rs in zip(full["scores"], reuse["scores"], strict=True)
            for a, b in zip(fs, rs, strict=True)
        ),
        default=0.0,
    )
    result = {
        "policy": engine.name,
        "judge": judge.name,
        "problems": len(problems),
        "n": args.n,
        "beam_width": args.beam_width,
        "verifier_calls": len(recorder.calls),
        "solutions_scored": sum(len(s) for _, s in recorder.calls),
        "beam_search_s": round(search_s, 2),
        "max_score_difference": diff,
        "full": {k: v for k, v in full.items() if k != "scores"},
        "reuse": {k: v for k, v in reuse.items() if k != "scores"},
        "flops_ratio_reuse_over_full": reuse["flops"] / full["flops"],
        "tokens_ratio_reuse_over_full": reuse["tokens"] / full["tokens"],
        "seconds_ratio_reuse_over_full": reuse["seconds"] / full["seconds"],
        "threads": args.threads,
        "dtype": "float32",
        "device": "cpu",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
