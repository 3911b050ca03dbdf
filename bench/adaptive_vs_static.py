"""Adaptive (probe, then the bin's configuration) against the best static plan at equal mean FLOPs.

Input: a per-bin plan (`ttsplan plan --per-bin --json --out bins.json`); its "static" entry is
the best single configuration under the same mean budget (or pass another with --static). Both
run with one embedded model on N "arith" problems spread over the levels, same seed and token
limits; the adaptive arm's FLOPs include its probe. Prints one JSON object (accuracy and mean
FLOPs per arm, per-bin counts) and writes it to bench/results/adaptive_vs_static.json; the
per-problem records go to --work-dir (re-running resumes).

    ttsplan plan --policy google/gemma-3-270m --prm none --dataset arith --budget-n 4 \\
        --per-bin --out bins.json
    .venv/bin/python bench/adaptive_vs_static.py --plan bins.json --problems 50

With probe reuse (`ttsplan plan --per-bin --probe-reuse`, or --probe-reuse here) majority /
Best-of-N bins start from the probe's samples. The report adds the paired accuracy difference
(adaptive - static) with its 95% interval.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
OUT = HERE / "results" / "adaptive_vs_static.json"
WORK = HERE / "results" / "adaptive_vs_static"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan", type=Path, required=True, help="per-bin plan JSON")
    parser.add_argument("--static", type=Path, help="static plan JSON (default: the plan's 'static')")
    parser.add_argument("--policy", default=None, help="embedded model (default: the plan's policy)")
    parser.add_argument("--dataset", default="arith")
    parser.add_argument("--problems", type=int, default=50, help="N problems, spread over levels")
    parser.add_argument("--engine", default="auto", help="auto, vllm or transformers")
    parser.add_argument("--verifier", default="arith-check", help="for configurations with a PRM")
    parser.add_argument("--probe-k", type=int, default=None, help="override the plan's probe k")
    parser.add_argument("--probe-reuse", action="store_true", help="the probe's samples count toward the bin")
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--max-step-tokens", type=int, default=None)
    parser.add_argument("--max-total-tokens", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (transformers engine)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--work-dir", type=Path, default=WORK, help="per-problem records")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    from dataclasses import replace

    from planner.core.datasets import load_dataset, stratified
    from planner.core.files import write_json_atomic
    from planner.core.planfile import load_plan, plan_from_dict
    from planner.executor import embedded
    from planner.executor.adaptive import load_adaptive_plan, run_adaptive
    from planner.executor.engines import make_engine
    from planner.executor.runner import read_records, run_plan
    from planner.executor.verifiers import make_verifier

    limits = dict(
        max_steps=args.max_steps, max_step_tokens=args.max_step_tokens, max_total_tokens=args.max_total_tokens
    )
    adaptive = load_adaptive_plan(args.plan)
    if args.probe_k is not None:
        adaptive = replace(adaptive, probe={**adaptive.probe, "k": args.probe_k}, probe_flops=None)
    if args.probe_reuse:
        adaptive = replace(adaptive, probe={**adaptive.probe, "reuse": True})
    if args.static is not None:
        static = load_plan(args.static)
    else:
        static = plan_from_dict(json.loads(args.plan.read_text())["static"], where=f"{args.plan} static")
    policy = embedded.canonical_name(args.policy or adaptive.policy)
    adaptive = adaptive.with_overrides(policy=policy, seed=args.seed, **limits)
    static = static.with_overrides(policy=policy, seed=args.seed, **limits)

    everything = load_dataset(args.dataset)
    problems = (
        stratified(everything, args.problems, seed=0) if args.problems < len(everything) else everything
    )
    needs_verifier = adaptive.uses_verifier or static.config.uses_verifier
    verifier = make_verifier(args.verifier, policy_model=policy) if needs_verifier else None
    extra = {"threads": args.threads} if args.engine == "transformers" and args.threads else {}
    engine = make_engine(args.engine, policy, seed=args.seed, **extra)

    args.work_dir.mkdir(parents=True, exist_ok=True)
    a = run_adaptive(adaptive, problems, engine, verifier, args.work_dir / "adaptive.jsonl", args.batch_size)
    s = run_plan(static, problems, engine, verifier, args.work_dir / "static.jsonl", args.batch_size)
    if hasattr(engine, "close"):
        engine.close()

    from bench.stopping_live import header, paired

    def correct(path: Path) -> list[bool]:
        by_id = {r["problem_id"]: r for r in read_records(path)[0]}
        return [bool(by_id[p.id]["correct"]) for p in problems]

    def ratio(x, y):
        return None if x is None or not y else x / y

    report = {
        **header(policy, engine, args.dataset, len(problems)),
        "verifier": args.verifier if needs_verifier else None,
        "plan": str(args.plan),
        "limits": {k: v for k, v in limits.items() if v is not None},
        "seed": args.seed,
        "adaptive": {
            "bins": {b: adaptive.bins[b].to_dict() for b in adaptive.bins},
            "probe": adaptive.probe,
            "accuracy": a.accuracy,
            "mean_flops": a.mean_flops,  # probe included
            "mean_probe_flops": a.mean_probe_flops,
            "by_bin": a.bins,
            "predicted_accuracy": a.predicted_accuracy,
            "predicted_flops": a.predicted_flops,
            "planned_accuracy": a.planned_accuracy,
            "wall_s": round(a.wall_s, 2),
        },
        "static": {
            "config": static.to_dict(),
            "accuracy": s.accuracy,
            "mean_flops": s.mean_flops,
            "predicted_accuracy": s.predicted_accuracy,
            "predicted_flops": s.predicted_flops,
            "wall_s": round(s.wall_s, 2),
        },
        "accuracy_difference": None if a.accuracy is None or s.accuracy is None else a.accuracy - s.accuracy,
        "flops_ratio": ratio(a.mean_flops, s.mean_flops),  # adaptive / static
        "paired": paired(correct(args.work_dir / "adaptive.jsonl"), correct(args.work_dir / "static.jsonl")),
    }
    print(json.dumps(report, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out, report)


if __name__ == "__main__":
    main()
