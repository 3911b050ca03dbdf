"""Which part of the per-problem scaling model errs when it extrapolates (bench/extrapolation.py
gives the totals). Per calibration profile with 16 samples per problem, fitted on every sample
("all"), on the first 4 and on 3 random draws of 4 per problem:

  pass@N     coverage 1 - E[(1 - p)^N] of the fitted Beta mixture against the exact unbiased
             estimate from every sample (1 - C(K - c, N) / C(K, N), averaged): the p part alone
  majority   the model against the replay and against the plug-in (each problem's recorded samples
             drawn with replacement, BOOT times): the plug-in keeps each problem's own wrong-answer
             split, the model replaces it by one population concentration

    PYTHONPATH=. python bench/extrapolation_parts.py     # writes results/extrapolation_parts.md
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import special

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from extrapolation import first_k, random_k, replay  # noqa: E402

from calibration.samples import profile_samples  # noqa: E402
from planner.predict.scaling import ProblemModel  # noqa: E402

OUT = ROOT / "bench" / "results" / "extrapolation_parts.md"
NS = (4, 8, 16)
BOOT = 20


def exact_pass(df: pd.DataFrame, n: int) -> float:
    g = df.groupby("problem_id")["correct"]
    c, k = g.sum().to_numpy(), g.size().to_numpy()
    miss = np.where(
        k - c < n,
        0.0,
        np.exp(
            special.gammaln(k - c + 1)
            - special.gammaln(np.maximum(k - c - n, 0) + 1)
            - special.gammaln(k + 1)
            + special.gammaln(k - n + 1)
        ),
    )
    return 100 * float(np.mean(1 - miss))


def beta_pass(success: dict, n: int) -> float:
    w, a, b = (np.asarray(success[x], dtype=float) for x in ("weights", "a", "b"))
    return 100 * float(np.sum(w * (1 - np.exp(special.betaln(a, b + n) - special.betaln(a, b)))))


def plug_in(df: pd.DataFrame, n: int) -> float:
    rng = np.random.default_rng([0, n])
    groups = [g for _, g in df.groupby("problem_id", sort=True)]
    return float(
        np.mean(
            [
                replay(
                    pd.concat([g.iloc[rng.integers(0, len(g), len(g))] for g in groups]),
                    "majority",
                    n,
                    None,
                    None,
                )
                for _ in range(BOOT)
            ]
        )
    )


def main() -> None:
    lines = [
        "Parts of the scaling model's extrapolation error (points; bench/extrapolation_parts.py).",
        "",
        "| source | part | N | measured | all | first 4 | random 4 (3 draws) | plug-in |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for folder in sorted((ROOT / "profiles").glob("cpu_arith_*")):
        df = profile_samples(folder).sort_values(["problem_id", "sample"])
        fits = {"all": df, "first": first_k(df, 4), **{f"r{d}": random_k(df, 4, d) for d in range(3)}}
        models = {key: ProblemModel.fit(sub, n_boot=0) for key, sub in fits.items()}
        for n in NS:
            pred = {key: beta_pass(m.params["success"], n) for key, m in models.items()}
            drawn = " / ".join(f"{pred[f'r{d}']:.1f}" for d in range(3))
            lines.append(
                f"| {folder.name} | pass@N | {n} | {exact_pass(df, n):.1f} | {pred['all']:.1f} "
                f"| {pred['first']:.1f} | {drawn} | |"
            )
        for n in NS:
            pred = {
                key: 100 * m.predict(method="majority", n=n, interval=False)["accuracy"]
                for key, m in models.items()
            }
            drawn = " / ".join(f"{pred[f'r{d}']:.1f}" for d in range(3))
            lines.append(
                f"| {folder.name} | majority | {n} | {replay(df, 'majority', n, None, None):.1f} "
                f"| {pred['all']:.1f} | {pred['first']:.1f} | {drawn} | {plug_in(df, n):.1f} |"
            )
        print(f"done {folder.name}", file=sys.stderr)
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
