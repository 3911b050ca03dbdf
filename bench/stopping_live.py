"""Early stopping at run time against one-shot sampling: the same method at the cap N drawn in one
call per batch, and the same with each stopping rule (rounds, batched over the problems still
open), on the same problems, engine, seed and token limits. Reports per arm accuracy, mean samples,
mean FLOPs and wall time per problem; against the one-shot arm the paired accuracy difference with
a 95% interval (normal approximation over the per-problem differences), the FLOPs ratio and the
wall time per sample ratio (the rounds must not lose the batching: near 1 is good). Prints one
JSON object and writes it to --out; records go to --work-dir (re-running resumes).

    .venv/bin/python bench/stopping_live.py --policy google/gemma-3-270m --dataset arith:seed=1,per_level=8 \\
        --n 16 --stop beta:0.95 --stop esc:4 --engine vllm
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

OUT = HERE / "results" / "stopping_live.json"
WORK = HERE / "results" / "stopping_live"


def header(policy: str, engine: object, dataset: str, problems: int) -> dict:
    """What a live bench report starts with: when, where, which model, engine and problems."""
    return {
        "date": dt.date.today().isoformat(),
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "policy": policy,
        "engine": type(engine).__name__,
        "dataset": dataset,
        "problems": problems,
    }


def paired(a: list[bool], b: list[bool]) -> dict:
    """Mean of a - b over paired problems and its 95% interval (normal approximation)."""
    d = [float(x) - float(y) for x, y in zip(a, b, strict=True)]
    n = len(d)
    mean = sum(d) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1)) if n > 1 else 0.0
    half = 1.96 * sd / math.sqrt(n) if n else math.nan
    return {"difference": mean, "ci95": [mean - half, mean + half], "problems": n}


def run_arms(base, rules, problems, engine, verifier, work_dir: Path, batch_size: int) -> dict:
    """The one-shot arm and one arm per rule; their summaries and the comparisons."""
    from planner.executor.runner import read_records, run_plan

    work_dir.mkdir(parents=True, exist_ok=True)
    arms = {"one-shot": base, **{rule: base.with_overrides(stop=rule) for rule in rules}}
    out, correct = {}, {}
    for name, plan in arms.items():
        path = work_dir / f"{name.replace(':', '_')}.jsonl"
        s = run_plan(plan, problems, engine, verifier, path, batch_size)
        by_id = {r["problem_id"]: r for r in read_records(path)[0]}
        correct[name] = [bool(by_id[p.id]["correct"]) for p in problems]
        out[name] = {
            "config": plan.config.to_dict(),
            "accuracy": s.accuracy,
            "mean_samples": s.mean_samples,
            "mean_flops": s.mean_flops,
            "wall_s": round(s.wall_s, 3),
            "wall_per_problem_s": s.wall_s / len(problems) if s.run == len(problems) else None,
        }
    one = out["one-shot"]
    for rule in rules:
        arm = out[rule]
        arm["vs_one_shot"] = {
            **paired(correct[rule], correct["one-shot"]),
            "flops_ratio": arm["mean_flops"] / one["mean_flops"]
            if arm["mean_flops"] and one["mean_flops"]
            else None,
            "samples_saving": one["mean_samples"] / arm["mean_samples"] if arm["mean_samples"] else None,
            # wall time per sample drawn, rounds over one shot (measured only when both ran now)
            "wall_per_sample_ratio": (arm["wall_s"] / arm["mean_samples"])
            / (one["wall_s"] / one["mean_samples"])
            if arm["wall_per_problem_s"] and one["wall_per_problem_s"]
            else None,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default="google/gemma-3-270m")
    parser.add_argument("--dataset", default="arith:seed=1,per_level=8")
    parser.add_argument("--problems", type=int, default=None, help="first K problems (default all)")
    parser.add_argument("--method", default="majority", help="majority or best_of_n (selection vote)")
    parser.add_argument("--n", type=int, default=16, help="the cap")
    parser.add_argument("--stop", action="append", required=True, help="beta:C or esc:W (repeat)")
    parser.add_argument("--engine", default="auto")
    parser.add_argument("--verifier", default="arith-check", help="for best_of_n")
    parser.add_argument("--aggregation", default="min")
    parser.add_argument("--max-steps", type=int, default=8)
    parser.add_argument("--max-step-tokens", type=int, default=96)
    parser.add_argument("--max-total-tokens", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=40)
    parser.add_argument("--work-dir", type=Path, default=WORK)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    from planner.core.datasets import load_dataset
    from planner.core.files import write_json_atomic
    from planner.core.planfile import plan_from_options
    from planner.core.stopping import parse_rule
    from planner.executor import embedded
    from planner.executor.engines import make_engine
    from planner.executor.verifiers import make_verifier

    rules = [str(parse_rule(r)) for r in args.stop]
    policy = embedded.canonical_name(args.policy)
    bon = args.method == "best_of_n"
    base = plan_from_options(
        policy,
        args.method,
        args.n,
        prm=args.verifier if bon else None,
        aggregation=args.aggregation if bon else None,
        selection="vote" if bon else None,
    ).with_overrides(
        seed=args.seed,
        max_steps=args.max_steps,
        max_step_tokens=args.max_step_tokens,
        max_total_tokens=args.max_total_tokens,
    )
    problems = load_dataset(args.dataset)
    problems = problems[: args.problems] if args.problems else problems
    verifier = make_verifier(args.verifier, policy_model=policy) if bon else None
    engine = make_engine(args.engine, policy, seed=args.seed)
    arms = run_arms(base, rules, problems, engine, verifier, args.work_dir, args.batch_size)
    if hasattr(engine, "close"):
        engine.close()
    report = {**header(policy, engine, args.dataset, len(problems)), "arms": arms}
    print(json.dumps(report, indent=2))
    write_json_atomic(args.out, report)


if __name__ == "__main__":
    main()
