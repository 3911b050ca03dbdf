"""Small synthetic profile records for the regressor, model-file, search and CLI tests.

Accuracies follow a known logistic law, so a test can compare predictions with the truth:
logit(acc) = -1 + 1.2 * log10(params / 1e9) + gain(method) * log2(n), where gain is 0 for cot,
0.25 for majority and 0.4 for best_of_n, plus a per-policy offset for the Llama family.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from planner.core.profiles import SCHEMA
from planner.models import specs

POLICIES = (
    "Qwen/Qwen2.5-0.5B-Instruct",
    "Qwen/Qwen2.5-1.5B-Instruct",
    "Qwen/Qwen2.5-3B-Instruct",
    "Qwen/Qwen2.5-7B-Instruct",
    "Qwen/Qwen2.5-14B-Instruct",
    "meta-llama/Llama-3.2-1B-Instruct",
    "meta-llama/Llama-3.2-3B-Instruct",
    "meta-llama/Llama-3.1-8B-Instruct",
)
PRM = "Qwen/Qwen2.5-Math-PRM-7B"
GAIN = {"cot": 0.0, "majority": 0.25, "best_of_n": 0.4}


def true_accuracy(policy: str, method: str, n: int) -> float:
    spec = specs.resolve(policy)
    offset = -0.5 if spec.family.startswith("llama") else 0.0
    z = -1 + 1.2 * math.log10(spec.params / 1e9) + offset + GAIN[method] * math.log2(n)
    return 1 / (1 + math.exp(-z))


def records(policies=POLICIES, n_values=(2, 4, 8, 16)) -> pd.DataFrame:
    """Profile records (the profiles schema) following `true_accuracy`, MATH-500, difficulty all."""
    rows = []

    def add(policy, prm, method, agg, sel, n):
        rows.append(
            {
                "dataset": "math500",
                "problem_id": "",
                "level": "",
                "difficulty": "all",
                "pass1": np.nan,
                "policy": policy,
                "prm": prm,
                "method": method,
                "aggregation": agg,
                "selection": sel,
                "n": n,
                "beam_width": pd.NA,
                "accuracy": true_accuracy(policy, method, n),
                "n_problems": 500,
                "policy_tokens": np.nan,
                "prm_tokens": np.nan,
                "flops": np.nan,
                "source": "synthetic (tests/plan_helpers.py)",
                "note": "",
            }
        )

    for policy in policies:
        add(policy, "none", "cot", "none", "none", 1)
        for n in n_values:
            add(policy, "none", "majority", "none", "vote", n)
            for agg in ("last", "min"):
                add(policy, PRM, "best_of_n", agg, "max", n)
    frame = pd.DataFrame(rows)
    frame["n"] = frame["n"].astype("Int64")
    frame["beam_width"] = frame["beam_width"].astype("Int64")
    return frame[list(SCHEMA)]
