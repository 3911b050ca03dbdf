"""A deterministic fake Engine and Verifier for orchestration tests.

FakeEngine: the text of every completion is a function of (prompt, seed, completion index) only
(greedy calls ignore seed and index). A solution is a list of steps joined by "\\n\\n":
    "Step k: work W p=P"                       (not the last step)
    "Step k: so the answer is \\boxed{A} p=P"   (the last step, then EOS)
where P in {0.1, ..., 0.9} and A in `answers` are read off a sha256 of the prefix; a solution has
at most `max_len` steps and ends early (from step 2 on) when that hash is divisible by 3.
With "\\n\\n" in options.stop the engine returns one step; otherwise it writes to the end.
Tokens are whitespace-separated words; max_tokens cuts the text after that many words.
cached_prompt_tokens: the word count of the longest earlier prompt that is a prefix of this one
(a prefix cache), or None when report_cache is False.

FakeVerifier: a step scores the P written in it ("p=0.7" -> 0.7), 0.5 when there is none;
tokens_scored = words of the question + words of the steps.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace

from planner.core.vocab import STEP_DELIMITER
from planner.executor.base import Completion, Generation, SamplingOptions, StepScores

HEADER = "Solution:\n"
_WORD = re.compile(r"\S+")
_P = re.compile(r"p=([0-9.]+)")


def count_tokens(text: str) -> int:
    return len(_WORD.findall(text))


def digest(*parts: object) -> int:
    return int(hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:12], 16)


def cut_words(text: str, limit: int) -> tuple[str, bool]:
    """The text up to and including its `limit`-th word; True when something was cut."""
    words = list(_WORD.finditer(text))
    if len(words) <= limit:
        return text, False
    return text[: words[limit - 1].end()], True


class FakeEngine:
    def __init__(
        self,
        name: str = "fake-policy",
        answers: tuple[str, ...] = ("1", "2", "3"),
        max_len: int = 4,
        report_cache: bool = True,
        fail_after: int | None = None,
    ) -> None:
        self.name = name
        self.answers = answers
        self.max_len = max_len
        self.report_cache = report_cache
        self.fail_after = fail_after  # raise on the call after this many calls (a simulated crash)
        self.calls: list[tuple[list[str], SamplingOptions]] = []
        self._seen: list[str] = []

    def format_prompt(self, problem: str) -> str:
        return f"Problem: {problem}\n{HEADER}"

    def step(self, prefix: str, key: tuple) -> tuple[str, bool]:
        """The next step after `prefix` and whether it is the last one."""
        k = prefix.split(HEADER, 1)[-1].count(STEP_DELIMITER)  # steps already written
        h = digest(prefix, *key)
        p = (h % 9 + 1) / 10
        last = k + 1 >= self.max_len or (k >= 1 and (h // 9) % 3 == 0)
        if last:
            answer = self.answers[(h // 27) % len(self.answers)]
            return f"Step {k + 1}: so the answer is \\boxed{{{answer}}} p={p}", True
        return f"Step {k + 1}: work {h % 1000} p={p}", False

    def complete(self, prompt: str, options: SamplingOptions, index: int) -> Completion:
        key = ("greedy",) if options.temperature == 0 else (options.seed, index)
        stepwise = STEP_DELIMITER in options.stop
        text, eos = "", False
        while True:
            piece, eos = self.step(prompt + text, key)
            text += piece
            if eos:
                break
            if stepwise:
                if options.include_stop:
                    text += STEP_DELIMITER
                break
            text += STEP_DELIMITER
        text, cut = cut_words(text, options.max_tokens)
        return Completion(
            text=text,
            tokens=count_tokens(text),
            finish_reason="length" if cut else "stop",
            stopped_on_eos=eos and not cut,
        )

    def reset_prefix_cache(self) -> None:
        self._seen.clear()

    def cached(self, prompt: str) -> int | None:
        if not self.report_cache:
            return None
        hits = [count_tokens(p) for p in self._seen if prompt.startswith(p)]
        return max(hits, default=0)

    def generate(self, prompts: list[str], options: SamplingOptions) -> list[Generation]:
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt("simulated crash")
        self.calls.append((list(prompts), options))
        out = []
        for i, prompt in enumerate(prompts):
            seeded = options if options.seeds is None else replace(options, seed=options.seeds[i], seeds=None)
            completions = [self.complete(prompt, seeded, j) for j in range(options.n)]
            out.append(Generation(completions, count_tokens(prompt), self.cached(prompt)))
            self._seen.append(prompt)
        return out


class FakeVerifier:
    def __init__(self, name: str = "fake-prm", spec_name: str | None = None) -> None:
        self.name = name
        self.spec_name = spec_name
        self.calls: list[int] = []  # solutions per call

    @staticmethod
    def step_score(step: str) -> float:
        m = _P.search(step)
        return float(m.group(1)) if m else 0.5

    def score(self, problems: list[str], solutions: list[list[str]]) -> list[StepScores]:
        assert len(problems) == len(solutions)
        self.calls.append(len(solutions))
        return [
            StepScores(
                [self.step_score(s) for s in steps], count_tokens(q) + sum(count_tokens(s) for s in steps)
            )
            for q, steps in zip(problems, solutions, strict=True)
        ]
