"""PRM scoring at real size on a GPU: Qwen2.5-Math-PRM-7B's architecture through our adapter.

No weights can be fetched, so the model is randomly initialised: time and memory depend on the
architecture, not on the values. Scores real MATH solutions (Qwen2.5-Math's 8-sample file) and
sets the measured time against the cost model's PRM FLOPs and the hardware profile.

    python bench/bench_prm_gpu.py --tokenizer DIR --solutions FILE.json [--hardware h100]
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def main() -> None:
    from transformers import AutoTokenizer, Qwen2Config

    from planner.executor.verifiers.prm_formats import (
        QWEN_PRM_STEP_TAG,
        Qwen2ForProcessRewardModel,
        QwenMathPRM,
    )
    from planner.models.cost import prm_flops
    from planner.models.hardware import get_hardware
    from planner.models.specs import resolve

    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--solutions", required=True)
    ap.add_argument("--hardware", default="h100")
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args()

    spec = resolve("Qwen2.5-Math-PRM-7B")
    config = Qwen2Config(
        vocab_size=spec.vocab,
        hidden_size=spec.hidden,
        intermediate_size=spec.intermediate,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        num_key_value_heads=spec.kv_heads,
        max_position_embeddings=spec.context,
        torch_dtype="bfloat16",
    )
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = Qwen2ForProcessRewardModel(config).to(torch.bfloat16)
    n_params = sum(p.numel() for p in model.parameters())
    tok = AutoTokenizer.from_pretrained(args.tokenizer)
    tok.add_special_tokens({"additional_special_tokens": [QWEN_PRM_STEP_TAG]})
    prm = QwenMathPRM(model, tok, name=spec.name, spec_name=spec.name, batch_size=args.batch_size)

    items = json.load(open(args.solutions))
    problems = [it["problem"] for it in items]
    solutions = [[s for s in it["solution"].split("\n\n") if s.strip()] for it in items]
    torch.cuda.synchronize()
    prm.score(problems[:4], solutions[:4])  # warm-up
    torch.cuda.reset_peak_memory_stats()
    torch.cuda.synchronize()
    start = time.perf_counter()
    scores = prm.score(problems, solutions)
    torch.cuda.synchronize()
    wall = time.perf_counter() - start
    tokens = sum(s.tokens_scored for s in scores)
    steps = sum(len(s.steps) for s in scores)
    assert all(len(s.steps) == len(sol) for s, sol in zip(scores, solutions, strict=True))
    assert all(0.0 <= v <= 1.0 for s in scores for v in s.steps)
    flops = float(prm_flops(spec, tokens))
    hw = get_hardware(args.hardware)
    out = {
        "device": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "params_built": n_params,
        "params_spec": spec.params,
        "solutions": len(items),
        "steps": steps,
        "tokens_scored": tokens,
        "wall_s": wall,
        "tokens_per_s": tokens / wall,
        "cost_model_flops": flops,
        "achieved_flops_per_s": flops / wall,
        "utilisation_of_peak": flops / wall / hw.peak_flops,
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30,
        "batch_size": args.batch_size,
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
