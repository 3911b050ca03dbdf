"""Are a run's samples independent across problems? Sample j of every problem, two seeding rules.

Calibration draws K samples per problem in one seeded call. Until 2026-12-01 the vLLM engine gave
sample j of every prompt the seed `seed + j`: vLLM samples by an exponential race over the
vocabulary, so one seed favours the same token ids at the same positions in every problem, and
sample j's correctness moved together across problems. Now each prompt's seeds start from a hash
of the call's seed and the prompt (`request_seeds`).

For each rule this draws SAMPLES samples of each problem of the arith set (the calibration's
settings: T = 0.7, 256 tokens, seed 0) with the embedded model and measures how much the accuracy
(and the unanswered share) of sample index j varies across j, against what exchangeable samples
allow: the variance of the per-index means over the median of the same variance with each
problem's samples shuffled (PERMUTATIONS times; p = share of shuffles at least as far apart).
A ratio near 1: independent; above: samples correlated across problems.

Also, for the shipped CPU profiles (recorded under the old rule), the same statistic from their
runs.

    PYTHONPATH=. .venv/bin/python bench/seed_correlation.py [--model gemma-3-270m] [--per-level 20]
    # writes results/seed_correlation.json and .md; --shipped-only skips the live draws (about 6 min)
    # and keeps those already in the results file
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
SAMPLES = 16
PERMUTATIONS = 2000
PROFILES = ("cpu_arith_smollm2", "cpu_arith_gemma", "cpu_arith_qwen", "cpu_math500_qwen")


def index_effect(values: np.ndarray, rng) -> dict:
    """values: problems x samples (0/1). Variance of the per-sample-index means against shuffles."""
    observed = values.mean(axis=0).var(ddof=1)
    shuffled = np.array(
        [
            np.array([rng.permutation(row) for row in values]).mean(axis=0).var(ddof=1)
            for _ in range(PERMUTATIONS)
        ]
    )
    return {
        "index_sd_points": 100 * float(np.sqrt(observed)),
        "exchangeable_sd_points": 100 * float(np.sqrt(np.median(shuffled))),
        "variance_ratio": float(observed / np.median(shuffled)),
        "p": float((shuffled >= observed).mean()),
    }


def both(correct: np.ndarray, unanswered: np.ndarray, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "problems": int(correct.shape[0]),
        "samples": int(correct.shape[1]),
        "accuracy": float(correct.mean()),
        "correct": index_effect(correct, rng),
        "unanswered": index_effect(unanswered, rng),
    }


def shipped() -> dict:
    from calibration.samples import profile_samples

    out = {}
    for name in PROFILES:
        df = profile_samples(ROOT / "profiles" / name)
        df = df.assign(c=df["correct"].astype(float), u=df["answer"].isna().astype(float))
        piv = {
            v: df.pivot_table(index="problem_id", columns="sample", values=v, aggfunc="first") for v in "cu"
        }
        out[name] = both(piv["c"].to_numpy(), piv["u"].to_numpy(), 0)
    return out


def old_rule(ids, seed, n):
    """The rule before 2026-12-01: seed + j for sample j of every prompt (repeats continue)."""
    seen: dict = {}
    out = []
    for x in ids:
        k = seen.get(tuple(x), 0)
        seen[tuple(x)] = k + 1
        out.append([seed + k * n + j for j in range(n)])
    return out


def live(model: str, per_level: int) -> dict:
    from planner.core.config import MethodConfig
    from planner.core.datasets import load_dataset
    from planner.executor.engines import vllm_engine
    from planner.executor.grading import is_equivalent
    from planner.executor.methods import majority
    from planner.executor.methods.common import extract

    problems = load_dataset(f"arith:per_level={per_level}")
    engine = vllm_engine.VLLMEngine(model, seed=0)
    config = MethodConfig(method="majority", n=SAMPLES, temperature=0.7, max_total_tokens=256, seed=0)
    out = {}
    new_rule = vllm_engine.request_seeds
    for label, rule in (("seed + j (before)", old_rule), ("hash of seed and prompt (now)", new_rule)):
        vllm_engine.request_seeds = rule
        try:
            start = time.perf_counter()
            drawn = majority.sample(engine, problems, config)
            seconds = time.perf_counter() - start
        finally:
            vllm_engine.request_seeds = new_rule
        answers = [[extract(t) for t in texts] for texts, _ in drawn]
        correct = np.array(
            [
                [bool(a) and is_equivalent(a, p.answer) for a in row]
                for row, p in zip(answers, problems, strict=True)
            ],
            dtype=float,
        )
        unanswered = np.array([[not a for a in row] for row in answers], dtype=float)
        out[label] = {**both(correct, unanswered, 0), "seconds": seconds}
        print(label, json.dumps(out[label]), flush=True)
    return {"model": engine.name, "dataset": f"arith:per_level={per_level}", "rules": out}


def markdown(result: dict) -> str:
    lines = [
        "| source | problems x samples | accuracy | correct: index sd / exchangeable sd (points) | variance ratio | p "
        "| unanswered: variance ratio | p |",
        "|---|---|---:|---|---:|---:|---:|---:|",
    ]

    def row(label: str, r: dict) -> str:
        c, u = r["correct"], r["unanswered"]
        return (
            f"| {label} | {r['problems']} x {r['samples']} | {100 * r['accuracy']:.1f}% "
            f"| {c['index_sd_points']:.2f} / {c['exchangeable_sd_points']:.2f} | {c['variance_ratio']:.2f} "
            f"| {c['p']:.3f} | {u['variance_ratio']:.2f} | {u['p']:.3f} |"
        )

    for name, r in result["shipped"].items():
        lines.append(row(f"shipped profile {name} (seed + j)", r))
    if result.get("live"):
        for label, r in result["live"]["rules"].items():
            lines.append(row(f"{result['live']['model']}, {result['live']['dataset']}, {label}", r))
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--per-level", type=int, default=20)
    parser.add_argument("--shipped-only", action="store_true")
    args = parser.parse_args()
    result = {"load_average": os.getloadavg(), "shipped": shipped()}
    if not args.shipped_only:
        result["live"] = live(args.model, args.per_level)
    elif (RESULTS / "seed_correlation.json").is_file():  # keep the live draws measured before
        kept = json.loads((RESULTS / "seed_correlation.json").read_text()).get("live")
        if kept:
            result["live"] = kept
    RESULTS.mkdir(exist_ok=True)
    from planner.core.files import write_text_atomic

    write_text_atomic(RESULTS / "seed_correlation.json", json.dumps(result, indent=2) + "\n")
    write_text_atomic(RESULTS / "seed_correlation.md", markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
