"""The part of the extrapolation error that no model can remove: the same measurement on data drawn
from the scaling model itself.

bench/extrapolation.py fits the per-problem model on K samples of each problem and checks its
prediction at N > K against the exact replay of every recorded sample. Both sides are draws: the K
samples, and the recorded samples the replay averages. This bench asks what that measurement gives
when the model is exactly right. Per source:

  1. fit the model on every recorded sample (the source's best estimate of its parameters);
  2. draw REPS synthetic sources from that fit, each the size of the real one (as many problems,
     as many samples per problem): per problem a success rate, an unanswered share and a split of
     wrong answers, then per sample its answer and, per verifier, its score (the model's own
     latent-normal scores, through the real scores' distribution);
  3. on each, do what bench/extrapolation.py does with the first K samples: fit on them, predict
     N = 8 and 16 (art_of_tts and Qwen2.5-Math: as there), and compare with the exact replay of the
     synthetic source's samples.

Here the model's form is true by construction, so the error left is the draw's: the floor of the
issue's measurement (MAE and max over the same cells) for sources of this size, with this fit.
Beside it, the generating model's own prediction (its parameters known, no samples fitted): it misses
by more, because the replay is about the source's few problems, which the K samples partly track and
the population's parameters do not.

    PYTHONPATH=. python bench/extrapolation_floor.py    # results/extrapolation_floor.{json,md}
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from extrapolation import _cells, first_k, replay  # noqa: E402

from calibration.samples import SHARED_PUBLISHED, art_samples, profile_samples, qwen_math_samples  # noqa: E402
from planner.predict.scaling import ProblemModel, _category_probs, _to_score  # noqa: E402

OUT = ROOT / "bench" / "results" / "extrapolation_floor.json"
REPS = 8  # synthetic sources per real one
SEED = 11


def synthetic(params: dict, problems: int, samples: int, rng) -> pd.DataFrame:
    """One source drawn from a fitted model: the columns bench/extrapolation.py reads."""
    s = params["success"]
    comp = rng.choice(len(s["weights"]), problems, p=np.asarray(s["weights"]) / np.sum(s["weights"]))
    p = rng.beta(np.asarray(s["a"])[comp], np.asarray(s["b"])[comp])
    probs = _category_probs(p, params, rng)  # [right, unanswered, wrong answer 1..STICKS, the rest]
    last = probs.shape[1] - 1  # the all-distinct rest
    rows = []
    for i in range(problems):
        cats = rng.choice(probs.shape[1], samples, p=probs[i])
        for j, cat in enumerate(cats):
            answer = {0: "right", 1: None, last: f"u{j}"}.get(int(cat), f"w{cat}")
            rows.append({"problem_id": i, "sample": j, "correct": bool(cat == 0), "answer": answer})
    df = pd.DataFrame(rows)
    right = df["correct"].to_numpy()
    for name, sc in params["scores"].items():
        u = sc["u_mean"] + sc["u_sd"] * rng.standard_normal(problems)
        sigma = np.where(right, sc["sigma_correct"], sc["sigma_wrong"])
        t = u[df["problem_id"].to_numpy()] + sc["delta"] * right + sigma * rng.standard_normal(len(df))
        df["score:" + name] = _to_score(t, sc)
    return df


def run(label: str, real: pd.DataFrame, k: int, ns: list[int], with_scores: bool, seed: int) -> list[dict]:
    truth_model = ProblemModel.fit(real, n_boot=0, seed=0)
    params = truth_model.params
    if not with_scores:
        params = {**params, "scores": {}}
    problems = real["problem_id"].nunique()
    samples = int(real.groupby("problem_id").size().min())
    rng = np.random.default_rng([SEED, seed])
    known = {}  # the generating model's own prediction: what knowing its parameters gives
    rows = []
    for rep in range(REPS):
        df = synthetic(params, problems, samples, rng)
        model = ProblemModel.fit(first_k(df, k), n_boot=0, seed=0)
        for method, col, verifier, agg, sel in _cells(df, with_scores):
            for n in ns:
                kw = dict(
                    method=method, n=n, verifier=verifier, aggregation=agg, selection=sel, interval=False
                )
                pred = model.predict(**kw)
                if (method, col, sel, n) not in known:
                    known[(method, col, sel, n)] = 100 * truth_model.predict(**kw)["accuracy"]
                rows.append(
                    {
                        "source": label,
                        "rep": rep,
                        "method": method,
                        "verifier": verifier,
                        "aggregation": agg,
                        "selection": sel or "vote",
                        "n": n,
                        "measured": replay(df, method, n, col, sel),
                        "predicted": 100 * pred["accuracy"],
                        "known": known[(method, col, sel, n)],
                    }
                )
    print(f"done {label}", file=sys.stderr)
    return rows


def summary(rows: list[dict]) -> dict:
    """Per replicate: MAE and max over the cells (what one run of bench/extrapolation.py reports);
    then their mean and range over the replicates. known: the same for the generating model."""
    out: dict = {}
    for field, label in (("predicted", ""), ("known", "known_")):
        by: dict[int, list[float]] = {}
        for r in rows:
            by.setdefault(r["rep"], []).append(abs(r[field] - r["measured"]))
        mae = [float(np.mean(v)) for v in by.values()]
        mx = [float(np.max(v)) for v in by.values()]
        out[label + "mae"] = float(np.mean(mae))
        out[label + "mae_range"] = [min(mae), max(mae)]
        out[label + "max"] = float(np.mean(mx))
        out[label + "max_range"] = [min(mx), max(mx)]
    out["cells"] = len(rows) // len({r["rep"] for r in rows})
    return out


def main() -> None:
    rows: list[dict] = []
    for i, folder in enumerate(sorted((ROOT / "profiles").glob("cpu_*"))):
        df = profile_samples(folder)
        big_k = int(df.groupby("problem_id").size().min())
        rows += run(folder.name, df, 4, [n for n in (8, 16) if n <= big_k], True, i)
    rows += run("qwen25math_math100 (K=2)", qwen_math_samples(), 2, [8], True, 10)
    for i, path in enumerate(sorted((SHARED_PUBLISHED / "art_of_tts").glob("vanilla__*.csv.gz"))):
        df = art_samples(path)
        if df.groupby("problem_id").size().min() < 8:
            continue
        rows += run("art_of_tts/" + path.name.removesuffix(".csv.gz"), df, 4, [8], False, 100 + i)
    groups: dict[str, list[dict]] = {}
    for r in rows:
        key = "art_of_tts (32 sets, majority)" if r["source"].startswith("art_of_tts/") else r["source"]
        groups.setdefault(key, []).append(r)
    groups["all"] = rows
    table = {key: summary(rs) for key, rs in groups.items()}
    lines = [
        f"Extrapolation measured on data drawn from the model itself ({REPS} synthetic sources per real "
        "one, each its size; fitted on the first K samples; bench/extrapolation_floor.py). Points.",
        "",
        "| source | cells | fitted on first K: MAE (mean over draws) | MAE range | max (mean) | max range "
        "| generating model: MAE | max (mean) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, s in table.items():
        lines.append(
            f"| {key} | {s['cells']} | {s['mae']:.2f} | {s['mae_range'][0]:.2f}–{s['mae_range'][1]:.2f} "
            f"| {s['max']:.2f} | {s['max_range'][0]:.2f}–{s['max_range'][1]:.2f} "
            f"| {s['known_mae']:.2f} | {s['known_max']:.2f} |"
        )
    print("\n".join(lines))
    OUT.write_text(json.dumps({"summary": table, "cells": rows}, indent=1) + "\n")
    OUT.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
