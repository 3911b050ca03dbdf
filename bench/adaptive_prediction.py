"""Adaptive candidates checked by replay: the planner's expected samples and accuracy of majority
with a stopping rule (planner.predict.stopping, from the per-problem models shipped with the
default model) against the rule replayed on the recorded samples (calibration.replay
.replay_stopping), for every shipped sample set, rule and cap.

Two replays: the samples in their recorded order (what `ttsplan import persample --stop` writes),
and the mean over ORDERS random orders of each problem's samples (the expectation the model
predicts, without the noise of one order). The models were fitted on these same samples
(in-sample: this checks the stopping simulation and the model's fit, not extrapolation to new
problems). Also the art_of_tts sets (8 samples, majority), each with a model fitted here.

    .venv/bin/python bench/adaptive_prediction.py    # table; writes results/adaptive_prediction.json
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.early_stopping import problems  # noqa: E402
from calibration.replay import majority_expectation, replay_stopping  # noqa: E402
from calibration.samples import SHARED_PUBLISHED, art_samples, profile_samples, qwen_math_samples  # noqa: E402
from planner.core.stopping import NEVER, parse_rule  # noqa: E402
from planner.predict.modelio import DEFAULT_MODEL  # noqa: E402
from planner.predict.scaling import ProblemModel  # noqa: E402
from planner.predict.stopping import predict_stopping  # noqa: E402

OUT = ROOT / "bench" / "results" / "adaptive_prediction.json"
RULES = ("beta:0.9", "beta:0.95", "beta:0.99", "esc:2", "esc:4", "esc:8")
ORDERS = 100


def replay(probs, rule, cap: int, orders: int, seed: int = 0) -> tuple[float, float, float, float]:
    """(accuracy, samples) in recorded order and (accuracy, samples) averaged over random orders."""
    rec = [replay_stopping(a, t, cap, rule, s) for a, t, s in probs]
    rng = np.random.default_rng(seed)
    shuffled = []
    for a, t, s in probs:
        for _ in range(orders):
            idx = rng.permutation(len(a))
            shuffled.append(replay_stopping([a[i] for i in idx], t, cap, rule, None if s is None else s[idx]))
    return (
        float(np.mean([c for c, _ in rec])),
        float(np.mean([u for _, u in rec])),
        float(np.mean([c for c, _ in shuffled])),
        float(np.mean([u for _, u in shuffled])),
    )


def acc_cap(probs, cap: int, orders: int = ORDERS, seed: int = 1) -> float:
    """Weighted vote over `cap` samples, averaged over random orders (the subset drawn)."""
    rng = np.random.default_rng(seed)
    got = []
    for a, t, s in probs:
        for _ in range(orders):
            idx = rng.permutation(len(a))
            got.append(replay_stopping([a[i] for i in idx], t, cap, NEVER, s[idx])[0])
    return float(np.mean(got))


def shipped_sets():
    doc = json.loads(DEFAULT_MODEL.with_name(DEFAULT_MODEL.name + ".scaling.json").read_text())
    for e in doc["sets"]:
        folder = e["source"].split("/", 1)[0]
        if folder == "art_of_tts":  # the shipped model's 25 art_of_tts sets: art_sets() below
            continue
        df = (
            qwen_math_samples()
            if folder == "qwen25math_math100_replay"
            else profile_samples(ROOT / "profiles" / folder)
        )
        yield folder, ProblemModel.from_dict(e["model"]), df


def art_sets():
    for path in sorted((SHARED_PUBLISHED / "art_of_tts").glob("vanilla__*.csv.gz")):
        df = art_samples(path)
        if df.groupby("problem_id").size().min() < 8:
            continue
        df = df[df.groupby("problem_id")["sample"].rank(method="first") <= 8]
        label = "art_of_tts/" + path.name.removesuffix(".csv.gz").removeprefix("vanilla__")
        yield label, ProblemModel.fit(df, n_boot=0), df


def evaluate(label: str, model: ProblemModel, df, rules=RULES, score: str | None = None) -> list[dict]:
    """Rows per cap and rule: majority, or with `score` (a score:<verifier>:<aggregation> column
    the model has) Best-of-N with the score-weighted vote."""
    probs = problems(df, score)
    k = min(len(a) for a, _, _ in probs)
    kw = {}
    if score is not None:
        verifier, aggregation = score.removeprefix("score:").rsplit(":", 1)
        kw = {"verifier": verifier, "aggregation": aggregation}
    rows = []
    for cap in sorted({k, 8} & set(range(2, k + 1))):
        for text in rules:
            rule = parse_rule(text)
            if rule.round_size > cap:
                continue
            t0 = time.perf_counter()
            pred = predict_stopping(model, rule, cap, interval=False, **kw)
            seconds = time.perf_counter() - t0
            acc, used, acc_mean, used_mean = replay(probs, rule, cap, ORDERS)
            if score is None:
                model_fixed = model.predict(method="majority", n=cap, interval=False)["accuracy"]
                exact_fixed = float(np.mean([majority_expectation(a, t, cap) for a, t, _ in probs]))
            else:
                fixed = model.predict(method="best_of_n", n=cap, selection="vote", interval=False, **kw)
                model_fixed = fixed["accuracy"]
                exact_fixed = acc_cap(probs, cap)
            rows.append(
                {
                    "source": label,
                    "method": "majority"
                    if score is None
                    else "weighted vote " + score.removeprefix("score:"),
                    "rule": text,
                    "cap": cap,
                    "problems": len(probs),
                    "predicted_samples": pred["samples"],
                    "replayed_samples": used,
                    "replayed_samples_mean_order": used_mean,
                    "samples_ratio": pred["samples"] / used_mean,
                    "predicted_accuracy": 100 * pred["accuracy"],
                    "replayed_accuracy": 100 * acc,
                    "replayed_accuracy_mean_order": 100 * acc_mean,
                    "accuracy_diff_points": 100 * (pred["accuracy"] - acc_mean),
                    "model_majority_at_cap": 100 * model_fixed,
                    "exact_majority_at_cap": 100 * exact_fixed,
                    # what stopping costs against the fixed cap: the model's and the replay's
                    "predicted_change_points": 100 * (pred["accuracy"] - model_fixed),
                    "replayed_change_points": 100 * (acc_mean - exact_fixed),
                    "predict_seconds": seconds,
                }
            )
    return rows


def main() -> None:
    rows = []
    for label, model, df in shipped_sets():
        rows += evaluate(label, model, df)
        if "score:arith-check:min" in df and ("arith-check", "min") in model.scores:
            rows += evaluate(label, model, df, ("beta:0.95", "esc:4"), "score:arith-check:min")
    for label, model, df in art_sets():
        rows += evaluate(label, model, df, ("beta:0.95", "esc:4"))
    print(
        "| source | method | rule | cap | samples predicted | replayed (recorded order) | replayed (mean of 100 orders) "
        "| ratio | accuracy predicted % | replayed % (recorded) | replayed % (mean order) | diff (points) "
        "| change vs cap, predicted | replayed |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        if r["source"].startswith("art_of_tts/"):
            continue
        print(
            f"| {r['source']} | {r['method']} | {r['rule']} | {r['cap']} | {r['predicted_samples']:.2f} | {r['replayed_samples']:.2f} "
            f"| {r['replayed_samples_mean_order']:.2f} | {r['samples_ratio']:.3f} | {r['predicted_accuracy']:.1f} "
            f"| {r['replayed_accuracy']:.1f} | {r['replayed_accuracy_mean_order']:.1f} | {r['accuracy_diff_points']:+.1f} "
            f"| {r['predicted_change_points']:+.1f} | {r['replayed_change_points']:+.1f} |"
        )
    summary = {}
    for group, sel in (
        ("shipped", lambda r: not r["source"].startswith("art")),
        ("art_of_tts", lambda r: r["source"].startswith("art")),
    ):
        part = [r for r in rows if sel(r)]
        ratios = np.array([r["samples_ratio"] for r in part])
        diffs = np.array([r["accuracy_diff_points"] for r in part])
        change = np.array([r["predicted_change_points"] - r["replayed_change_points"] for r in part])
        summary[group] = {
            "rows": len(part),
            "samples_ratio_median": float(np.median(ratios)),
            "samples_ratio_min": float(ratios.min()),
            "samples_ratio_max": float(ratios.max()),
            "accuracy_abs_diff_mean": float(np.abs(diffs).mean()),
            "accuracy_abs_diff_max": float(np.abs(diffs).max()),
            "change_vs_cap_abs_diff_mean": float(np.abs(change).mean()),
            "change_vs_cap_abs_diff_max": float(np.abs(change).max()),
        }
        print(
            f"\n{group}: {len(part)} rows; predicted / replayed samples median {summary[group]['samples_ratio_median']:.3f} "
            f"(range {ratios.min():.3f}-{ratios.max():.3f}); accuracy |predicted - replayed| mean "
            f"{summary[group]['accuracy_abs_diff_mean']:.1f} points, max {summary[group]['accuracy_abs_diff_max']:.1f}; "
            f"change against the cap, |predicted - replayed| mean {np.abs(change).mean():.2f} points, max {np.abs(change).max():.2f}"
        )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
