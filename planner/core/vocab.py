"""The project's vocabulary, defined once: methods, aggregations, selections, engines,
difficulty bins and the paper's sampling defaults.

Adding a method: one entry here (and in VERIFIER_METHODS / TREE_METHODS when it applies), one
module in planner/executor/methods/, one cost formula in planner/models/cost.py.
"""

from __future__ import annotations

import math

from planner.core.errors import UserError

# Methods. cot is one greedy sample; majority votes over n samples; the rest read verifier scores.
METHODS = ("cot", "majority", "best_of_n", "beam", "dvts")
NO_VERIFIER_METHODS = ("cot", "majority")
VERIFIER_METHODS = ("best_of_n", "beam", "dvts")  # methods that need step scores
TREE_METHODS = ("beam", "dvts")  # methods whose n splits into beam_width groups

# How step scores become one solution score, and how a candidate is picked.
AGGREGATIONS = ("last", "min", "mean", "prod")
SELECTIONS = ("max", "vote")
NONE = "none"  # aggregation/selection/prm of methods without a verifier

# Policy engines.
ENGINES = ("auto", "vllm", "transformers", "openai")  # openai: a remote OpenAI-compatible server

# Difficulty bins (Liu et al. 2025): by per-problem pass@1, easy > 50%, hard < 10%.
BINS = ("easy", "medium", "hard")
EASY_ABOVE = 0.5
HARD_BELOW = 0.1

# Steps end at a blank line (search-and-learn and the paper's code).
STEP_DELIMITER = "\n\n"

# The paper's sampling settings (Liu et al. 2025, section 4; search-and-learn defaults).
TEMPERATURE = 0.7
TOP_P = 1.0
BEAM_WIDTH = 4
MAX_STEPS = 40
MAX_STEP_TOKENS = 2048
MAX_TOTAL_TOKENS = 8192

# Long-reasoning policies sample with their own settings: the paper's code runs the
# DeepSeek-R1-distilled models at T = 0.6, top_p 0.95 and up to 32,768 tokens. Keyed by a
# (lower-case) piece of the model name; the first key found in a policy's name wins.
FAMILY_SAMPLING = {
    "deepseek-r1-distill": {"temperature": 0.6, "top_p": 0.95, "max_total_tokens": 32768},
}


def sampling_defaults(policy: str | None) -> dict:
    """temperature, top_p and max_total_tokens for a policy: its family's settings, else the paper's."""
    name = (policy or "").lower()
    for key, settings in FAMILY_SAMPLING.items():
        if key in name:
            return dict(settings)
    return {"temperature": TEMPERATURE, "top_p": TOP_P, "max_total_tokens": MAX_TOTAL_TOKENS}


def difficulty_from_pass1(pass1: float) -> str:
    """The paper's bin for a problem's pass@1 in [0, 1] (0.5 and 0.1 are medium)."""
    if pass1 is None or not math.isfinite(pass1) or not 0.0 <= pass1 <= 1.0:
        raise UserError(f"pass1 must be a number in [0, 1], got {pass1!r}")
    if pass1 > EASY_ABOVE:
        return "easy"
    if pass1 < HARD_BELOW:
        return "hard"
    return "medium"
