"""One aggregation for live runs and replay: the same samples, scored live by Best-of-N and replayed
from a recorded file, get the same scores and the same pick, a solution with no steps included."""

from __future__ import annotations

import json
import math

import pytest

from calibration.importers import import_sal
from planner.core.config import MethodConfig
from planner.core.errors import UserError
from planner.core.scoring import aggregate
from planner.core.vocab import AGGREGATIONS, STEP_DELIMITER
from planner.executor.base import Completion, Generation, StepScores
from planner.executor.grading import is_equivalent
from planner.executor.methods import RUNNERS
from planner.executor.methods.common import split_steps

QUESTION = "What is 2 + 2?"
GOLD = "4"
# (solution text, per-step scores); the third has no steps at all (the model wrote nothing).
# last picks 5 (wrong), min picks 4 (right), mean picks 4, prod picks 4.
SAMPLES = [
    ("2 + 2 = 5." + STEP_DELIMITER + "The answer is \\boxed{5}.", [0.2, 0.95]),
    ("2 + 2 = 4." + STEP_DELIMITER + "The answer is \\boxed{4}.", [0.9, 0.8]),
    ("", []),
    ("2 + 2 = 3." + STEP_DELIMITER + "The answer is \\boxed{3}.", [0.3, 0.4]),
]


class ScriptEngine:
    """Returns the recorded samples, in order, for any prompt."""

    name = "HuggingFaceTB/SmolLM2-135M-Instruct"

    def format_prompt(self, problem: str) -> str:
        return problem

    def generate(self, prompts, options):
        assert options.n == len(SAMPLES)
        completions = [Completion(text, len(text.split()), "stop", True) for text, _ in SAMPLES]
        return [Generation(completions, prompt_tokens=5) for _ in prompts]


class ScriptVerifier:
    """Scores each solution with the recorded step scores of the sample it came from."""

    name = "script"

    def score(self, problems, solutions):
        by_steps = {tuple(split_steps(text)): scores for text, scores in SAMPLES}
        return [StepScores(steps=list(by_steps[tuple(steps)]), tokens_scored=1) for steps in solutions]


def test_a_solution_without_steps_scores_zero_and_bad_scores_are_refused():
    for how in AGGREGATIONS:
        assert aggregate([], how) == 0.0
    assert aggregate([0.5, 0.2], "prod") == pytest.approx(0.1)
    with pytest.raises(UserError, match="step_scores"):
        aggregate([0.5, math.nan], "min")
    with pytest.raises(UserError, match="aggregation"):
        aggregate([0.5], "median")


@pytest.mark.parametrize("how", AGGREGATIONS)
def test_live_best_of_n_and_replay_score_and_pick_alike(tmp_path, how):
    record = {
        "problem": QUESTION,
        "answer": GOLD,
        "unique_id": "p1",
        "completions": [text for text, _ in SAMPLES],
        "scores": [scores for _, scores in SAMPLES],
    }
    path = tmp_path / "sal.jsonl"
    path.write_text(json.dumps(record) + "\n")
    replayed, _ = import_sal(path, name="t", aggregations=[how], ks=[len(SAMPLES)])
    for selection, method in (("max", "best_of_n"), ("vote", "weighted_vote")):
        config = MethodConfig("best_of_n", len(SAMPLES), aggregation=how, selection=selection)
        [live] = RUNNERS["best_of_n"](ScriptEngine(), ScriptVerifier(), [QUESTION], config)
        assert [c["score"] for c in live.candidates] == [aggregate(s, how) for _, s in SAMPLES]
        live_correct = float(bool(live.answer) and is_equivalent(live.answer, GOLD))
        row = replayed[
            (replayed["method"] == "best_of_n")
            & (replayed["selection"] == ("max" if method == "best_of_n" else "vote"))
            & (replayed["aggregation"] == how)
        ]
        assert len(row) == 1, row
        assert row["accuracy"].iloc[0] == live_correct, (how, selection, live.answer)
