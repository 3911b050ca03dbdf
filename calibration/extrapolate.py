"""Profile rows past the recorded samples: majority and Best-of-N at N above the K samples per
problem, from the per-problem model (planner.predict.scaling) fitted on those samples.

The rows are aggregate cells (problem_id "", n_problems the problems fitted), difficulty "all"
and each bin the model has, with `basis` "extrapolated" (the replayed rows next to them say
"measured"). They are predictions, kept apart from measured cells: the regressor does not train
on them and the planner's held-out checks do not score against them
(planner.core.profiles.static_rows).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from planner.core.errors import UserError
from planner.core.profiles import BASIS, EXTRAPOLATED
from planner.predict.scaling import N_MAX, ProblemModel

NOTE = "extrapolated by the per-problem model from {k} samples per problem; a prediction, not a measurement"


def check_ks(ks: Sequence[int], n_max: int = N_MAX) -> None:
    """Every k a whole number from 1 to n_max (the largest N the per-problem model predicts)."""
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n_max:
            raise UserError(
                f"ks: {k!r} is outside 1..{n_max}, the largest N the per-problem model extrapolates to"
            )


def extrapolated_rows(
    samples: pd.DataFrame, ks: Sequence[int], *, majority: bool = True, seed: int = 0
) -> pd.DataFrame:
    """Aggregate rows for each k above the samples per problem.

    samples: one row per sample with problem_id, answer, correct, score (NaN without a verifier)
    and the context columns every row carries (dataset, policy, prm, aggregation, source;
    policy_tokens / flops per sample when known). Without scores: majority rows alone;
    majority=False: the scored rows alone (a caller that has the majority rows already).
    """
    per_problem = samples.groupby("problem_id").size()
    k_min = int(per_problem.min())
    above = sorted({int(k) for k in ks if k > int(per_problem.max())})
    if not above:
        return pd.DataFrame()
    check_ks(above)
    first = samples.iloc[0]
    prm, aggregation = str(first["prm"]), str(first["aggregation"])
    scored = "score" in samples and bool(samples["score"].notna().all())
    frame = samples[["problem_id", "answer", "correct"]].copy()
    frame["correct"] = frame["correct"].astype(bool)
    if scored:
        frame[f"score:{prm}:{aggregation}"] = samples["score"].to_numpy(dtype=float)
    model = ProblemModel.fit(frame, n_boot=0, seed=seed)
    configs = [("majority", None)] if majority else []
    if scored:
        configs += [("best_of_n", "max"), ("best_of_n", "vote")]
    tokens = _mean(samples, "policy_tokens")
    flops = _mean(samples, "flops")
    rows = []
    for bin_ in [None, *sorted(model.bins)]:
        problems = sum(row[2] for row in model.bins[bin_]) if bin_ else int(len(per_problem))
        for method, selection in configs:
            kw = (
                {}
                if selection is None
                else {"verifier": prm, "aggregation": aggregation, "selection": selection}
            )
            for k in above:
                if method == "best_of_n" and selection == "vote" and k > 64:
                    continue  # the weighted vote is simulated up to 64 samples only
                got = model.predict(method=method, n=k, bin=bin_, interval=False, **kw)
                rows.append(
                    {
                        "dataset": first["dataset"],
                        "problem_id": "",
                        "level": "",
                        "difficulty": bin_ or "all",
                        "pass1": np.nan,
                        "policy": first["policy"],
                        "prm": prm if method == "best_of_n" else "none",
                        "method": method,
                        "aggregation": aggregation if method == "best_of_n" else "none",
                        "selection": selection or "vote",
                        "n": k,
                        "beam_width": pd.NA,
                        "accuracy": float(got["accuracy"]),
                        "n_problems": problems,
                        "policy_tokens": tokens * k,
                        "prm_tokens": np.nan,
                        "flops": flops * k,
                        "source": first["source"],
                        "note": NOTE.format(k=k_min),
                        BASIS: EXTRAPOLATED,
                    }
                )
    if not rows:
        return pd.DataFrame()
    return pd.DataFrame(rows).astype({"n": "Int64", "beam_width": "Int64", "n_problems": "int64"})


def _mean(samples: pd.DataFrame, col: str) -> float:
    return float(samples[col].mean()) if col in samples and samples[col].notna().any() else np.nan
