"""The steps one calibration batch goes through, and the worker that runs them.

Per policy and batch of problems:
  sample            one run of `sample_n` full samples per problem (majority, Best-of-N and the
                    difficulty estimate are all replayed from it)
  score:V           verifier V's step scores for every sample (every aggregation comes from them)
  cot               one greedy sample
  dvts:V:M          DVTS at the largest tree N; smaller N are subsets of its subtrees
  beam:V:M:N        beam search, run for every N
Each step returns one plain dict per problem; the runner stores them.
"""

from __future__ import annotations

from dataclasses import dataclass

from calibration.grid import Grid
from planner.core.config import MethodConfig
from planner.core.vocab import TREE_METHODS, sampling_defaults
from planner.executor import factory
from planner.executor.methods import run_method
from planner.executor.methods.common import extract, score_solutions, split_steps
from planner.executor.methods.majority import sample as sample_texts
from planner.models import cost, specs


@dataclass(frozen=True)
class Step:
    kind: str  # sample, score, cot, dvts, beam
    verifier: str | None = None
    width: int | None = None
    n: int | None = None

    @property
    def key(self) -> str:
        parts = [self.kind, self.verifier, self.width, self.n]
        return ":".join(str(p) for p in parts if p is not None)

    @property
    def needs(self) -> str | None:
        """The step whose records this one reads."""
        return "sample" if self.kind == "score" else None


def steps_for(grid: Grid) -> list[Step]:
    """Every step a policy goes through, in run order (sample before its scores)."""
    out = [Step("sample")]
    if "best_of_n" in grid.methods:
        out += [Step("score", v) for v in grid.verifiers]
    if "cot" in grid.methods:
        out.append(Step("cot"))
    for v in grid.tree_verifier_names:
        for m in grid.beam_widths:
            if "dvts" in grid.methods:
                out.append(Step("dvts", v, m, max(grid.tree_ns)))
            if "beam" in grid.methods:
                out += [Step("beam", v, m, n) for n in grid.tree_ns]
    return out


def sampling(grid: Grid, policy: str) -> dict:
    """The grid's sampling settings; those it leaves out are the policy's own (its family's)."""
    own = sampling_defaults(policy)
    chosen = {"temperature": grid.temperature, "top_p": grid.top_p, "max_total_tokens": grid.max_total_tokens}
    return {k: own[k] if v is None else v for k, v in chosen.items()}


def _config(grid: Grid, policy: str, method: str, n: int, **extra) -> MethodConfig:
    return MethodConfig(
        method=method,
        n=n,
        max_steps=grid.max_steps,
        max_step_tokens=grid.max_step_tokens,
        seed=grid.seed,
        **sampling(grid, policy),
        **extra,
    )


class Grader:
    """Correctness of an answer against a gold answer, cached (the same answers repeat)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], bool] = {}

    def __call__(self, answer: str, gold: str) -> bool:
        if not answer:
            return False
        key = (answer, gold)
        if key not in self._cache:
            from planner.executor.grading import is_equivalent

            self._cache[key] = bool(is_equivalent(answer, gold))
        return self._cache[key]


class Worker:
    """Holds one engine (for the current policy) and its verifiers; runs steps on batches."""

    def __init__(self, grid: Grid, load_engine=None, load_verifier=None) -> None:
        self.grid = grid
        self._load_engine = load_engine or factory.load_engine
        self._load_verifier = load_verifier or factory.load_verifier
        self.policy: str | None = None
        self.engine = None
        self.verifiers: dict[str, object] = {}
        self.grade = Grader()

    def use(self, policy: str) -> None:
        if policy != self.policy:
            self.engine = None
            self.verifiers = {}
            self.engine = self._load_engine(self.grid.engine, policy, self.grid.seed)
            self.policy = policy

    def verifier(self, name: str):
        if name not in self.verifiers:
            self.verifiers[name] = self._load_verifier(name, self.policy)
        return self.verifiers[name]

    def spec_names(self, verifier: str | None) -> tuple[str, str | None]:
        prm = getattr(self.verifier(verifier), "spec_name", None) if verifier else None
        return self.engine.name, prm

    def run(self, policy: str, step: Step, problems: list, earlier: dict[str, list[dict]]) -> list[dict]:
        """One dict per problem. `earlier[step_key]` holds the batch's records of earlier steps."""
        self.use(policy)
        # A step's FLOPs count no cache hits of earlier steps: each cell is priced as if run
        # alone, and a run resumed after a kill gives the same figures as one never killed.
        reset = getattr(self.engine, "reset_prefix_cache", None)
        if reset is not None:
            reset()
        if step.kind == "sample":
            return self._sample(problems)
        if step.kind == "score":
            return self._score(step, problems, earlier["sample"])
        if step.kind == "cot":
            return self._method(problems, _config(self.grid, policy, "cot", 1), None)
        config = _config(
            self.grid,
            policy,
            step.kind,
            step.n,
            beam_width=step.width,
            aggregation=self.grid.tree_aggregation,
        )
        return self._method(problems, config, step.verifier)

    # ------------------------------------------------------------ steps
    def _sample(self, problems: list) -> list[dict]:
        config = _config(self.grid, self.policy, "majority", self.grid.sample_n)
        spec = _spec(self.engine.name)
        out = []
        for p, (texts, usage) in zip(problems, sample_texts(self.engine, problems, config), strict=True):
            prompt, cached, generated = usage.calls[0]
            answers = [extract(t) for t in texts]
            out.append(
                {
                    "policy": self.engine.name,
                    "texts": texts,
                    "answers": answers,
                    "correct": [self.grade(a, str(p.answer)) for a in answers],
                    "prompt_tokens": prompt,
                    "cached_tokens": cached,
                    "generated_tokens": generated,
                    "prefill_flops": float(cost.prefill_flops(spec, prompt, cached)) if spec else None,
                    "generation_flops": [float(cost.generation_flops(spec, prompt, g)) for g in generated]
                    if spec
                    else None,
                }
            )
        return out

    def _score(self, step: Step, problems: list, samples: list[dict]) -> list[dict]:
        verifier = self.verifier(step.verifier)
        _, prm_name = self.spec_names(step.verifier)
        prm = _spec(prm_name)
        questions = [p.question for p, s in zip(problems, samples, strict=True) for _ in s["texts"]]
        steps = [split_steps(t) for s in samples for t in s["texts"]]
        scored = score_solutions(verifier, questions, steps)
        out, i = [], 0
        for s in samples:
            mine = scored[i : i + len(s["texts"])]
            i += len(s["texts"])
            out.append(
                {
                    "step_scores": [[float(x) for x in sc.steps] for sc in mine],
                    "prm_tokens": [sc.tokens_scored for sc in mine],
                    "prm_flops": _prm_flops(prm, [sc.tokens_scored for sc in mine]),
                }
            )
        return out

    def _method(self, problems: list, config: MethodConfig, verifier: str | None) -> list[dict]:
        from planner.executor.runner import FlopCounter

        v = self.verifier(verifier) if verifier else None
        policy_name, prm_name = self.spec_names(verifier)
        if config.method in TREE_METHODS and cost.reuses_prefix(_spec(prm_name)) and hasattr(v, "answer_ids"):
            from planner.executor.verifiers.prefix_reuse import PrefixReuseJudge

            v = PrefixReuseJudge(v)  # each beam's new step on its parent's kept state, as `run` does
        flops = FlopCounter(policy_name, prm_name)
        out = []
        for p, r in zip(problems, run_method(self.engine, v, problems, config), strict=True):
            gold = str(p.answer)
            pf, mf = flops.policy_flops(r), flops.prm_flops(r)
            out.append(
                {
                    "answer": r.answer,
                    "correct": self.grade(r.answer, gold),
                    "candidates": [
                        {
                            "answer": c.get("answer", ""),
                            "score": c.get("score"),
                            "correct": self.grade(c.get("answer", ""), gold),
                        }
                        for c in r.candidates
                    ],
                    "policy_tokens": r.policy_prompt_tokens + r.policy_generated_tokens,
                    "generated_tokens": r.policy_generated_tokens,
                    "prm_tokens": r.prm_tokens,
                    # the counts its FLOPs are computed from: per generate call (prompt, cached,
                    # generated per completion) and tokens the verifier read per scored sequence
                    "calls": [[p_, c_, list(g_)] for p_, c_, g_ in r.calls],
                    "prm_reads": list(r.prm_reads),
                    "flops": None if pf is None or mf is None else pf + mf,
                }
            )
        return out


def _prm_flops(prm, tokens: list[int]) -> list[float] | None:
    """FLOPs per scored sample; zeros when the verifier read nothing (a rule), None when unknown."""
    if prm is not None:
        return [float(cost.prm_flops(prm, t)) for t in tokens]
    return None if any(tokens) else [0.0] * len(tokens)


def _spec(name: str | None):
    return specs.spec_or_none(name)
