"""The two small interfaces every TTS method is written against.

An Engine generates continuations for a batch of prefixes; a Verifier scores the steps
of candidate solutions. Methods never touch vLLM or transformers directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from planner.core.vocab import MAX_STEP_TOKENS, TEMPERATURE, TOP_P


@dataclass(frozen=True)
class SamplingOptions:
    """Sampling settings for one generate call (vLLM's SamplingParams, trimmed)."""

    temperature: float = TEMPERATURE
    top_p: float = TOP_P
    max_tokens: int = MAX_STEP_TOKENS
    stop: tuple[str, ...] = ()
    n: int = 1
    seed: int | None = None
    include_stop: bool = True  # keep the matched stop string at the end of the text
    # One seed per prompt (overrides seed): prompt i's n samples draw from seeds[i], seeds[i]+1, ...
    # Tree search gives every parent its own, so sibling beams of a step are not correlated.
    seeds: tuple[int, ...] | None = None


@dataclass
class Completion:
    """One sampled continuation of one prefix."""

    text: str
    tokens: int  # generated tokens
    finish_reason: str  # "stop" (stop string or EOS) or "length"
    stopped_on_eos: bool = False  # True when the model ended the text itself (not a step stop)


@dataclass
class Generation:
    """All continuations of one prefix, with token accounting."""

    completions: list[Completion]
    prompt_tokens: int
    cached_prompt_tokens: int | None = None  # prefix-cache hits, when the engine reports them


@dataclass
class StepScores:
    """Per-step scores in [0, 1] for one candidate solution, plus tokens the verifier read."""

    steps: list[float]
    tokens_scored: int = 0  # tokens the verifier computed for this solution
    tokens_reused: int = 0  # tokens before them it took from a kept state (prefix reuse)


@runtime_checkable
class Engine(Protocol):
    name: str  # model name as in the spec registry, for the cost model

    def generate(self, prompts: list[str], options: SamplingOptions) -> list[Generation]:
        """One Generation per prompt, each with options.n completions, in order."""
        ...

    def format_prompt(self, problem: str) -> str:
        """The full prompt text (chat template or few-shot) that starts a solution."""
        ...


@runtime_checkable
class Verifier(Protocol):
    name: str

    def score(self, problems: list[str], solutions: list[list[str]]) -> list[StepScores]:
        """Score each solution, given as its list of steps; one StepScores per solution.

        problems[i] is the question for solutions[i]; batched across problems.
        """
        ...


@dataclass
class MethodResult:
    """What a method returns for one problem."""

    answer: str  # the chosen final answer (extracted), "" when none
    text: str  # the chosen full solution text
    candidates: list[dict] = field(default_factory=list)  # every final candidate: text, answer, scores
    policy_prompt_tokens: int = 0
    policy_generated_tokens: int = 0
    cached_prompt_tokens: int = 0
    prm_tokens: int = 0
