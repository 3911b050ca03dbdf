"""Fakes for calibration orchestration tests: module-level loaders (picklable for joblib/Ray).

GoldEngine is tests.fake_engine.FakeEngine whose final answers are drawn from
(gold, gold + 1, gold) of the arith problem in the prompt, so some samples are right.
"""

from __future__ import annotations

from functools import cache

from planner.core.datasets import load_dataset
from tests.fake_engine import HEADER, FakeEngine, FakeVerifier

DATASET = "arith:per_level=4"


@cache
def gold_by_question() -> dict[str, str]:
    return {p.question: p.answer for p in load_dataset(DATASET)}


class GoldEngine(FakeEngine):
    def step(self, prefix: str, key: tuple) -> tuple[str, bool]:
        question = prefix.split("Problem: ", 1)[1].split("\n" + HEADER, 1)[0]
        gold = int(gold_by_question()[question])
        self.answers = (str(gold), str(gold + 1), str(gold))
        return super().step(prefix, key)


def load_engine(kind: str, policy: str, seed: int) -> GoldEngine:
    return GoldEngine(name=policy)


def load_verifier(name: str, policy: str, prefix_reuse: bool = False) -> FakeVerifier:
    return FakeVerifier(name=name)


LOADERS = (load_engine, load_verifier)
