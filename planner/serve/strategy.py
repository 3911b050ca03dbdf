"""Which TTS configuration a request runs, in this order: an explicit `tts.method`, a `tts.budget`
(the planner picks for the served policy and verifier, within the method when one is given), or
the server's default plan (`--plan plan.json`, else the planner's pick for the default budget).

Plans and predictions are cached: the planner runs once per distinct budget and target.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, replace

from planner.core.config import MethodConfig
from planner.core.errors import UserError
from planner.core.planfile import RunPlan
from planner.core.vocab import BEAM_WIDTH, NO_VERIFIER_METHODS, NONE, TREE_METHODS, VERIFIER_METHODS
from planner.serve.schema import APIError, TTSSpec, bad

DEFAULT_N = 4  # tts.method without tts.n
CACHE_SIZE = 256


@dataclass(frozen=True)
class Choice:
    """A configuration to run and what the planner predicted for it."""

    config: MethodConfig  # seed 0: the batcher sets it
    source: str  # "request", "budget" or "plan"
    predicted_accuracy: float | None = None
    accuracy_interval: tuple[float, float] | None = None
    predicted_flops: float | None = None

    def info(self) -> dict:
        c = self.config
        return {
            "method": c.method,
            "n": c.n,
            "beam_width": c.beam_width if c.method in TREE_METHODS else None,
            "aggregation": c.aggregation,
            "selection": c.selection,
            "source": self.source,
            "predicted_accuracy": self.predicted_accuracy,
            "accuracy_interval": list(self.accuracy_interval) if self.accuracy_interval else None,
            "predicted_flops": self.predicted_flops,
        }


def shape(method: str, n: int, beam_width: int | None, aggregation: str | None, selection: str | None):
    """MethodConfig fields with the vocabulary's conventions for methods without a verifier."""
    if method == "cot":
        return {"method": method, "n": 1, "aggregation": NONE, "selection": NONE}
    if method == "majority":
        return {"method": method, "n": n, "aggregation": NONE, "selection": "vote"}
    fields = {"method": method, "n": n, "aggregation": aggregation or "last", "selection": selection or "max"}
    if method in TREE_METHODS:
        fields["beam_width"] = beam_width or BEAM_WIDTH
    return fields


class Strategist:
    """policy: the served engine's model name; verifier: the served verifier's name or None.
    plan: the server's default plan; default_budget_n: the default without one."""

    def __init__(
        self,
        policy: str,
        verifier: str | None,
        plan: RunPlan | None = None,
        dataset: str = "math500",
        hardware: object | None = None,
        model_path: str | None = None,
        default_budget_n: int = DEFAULT_N,
        limits: dict | None = None,
    ) -> None:
        self.policy = policy
        self.verifier = verifier
        self.dataset = plan.dataset if plan is not None and plan.dataset else dataset
        self.hardware = hardware
        self.model_path = model_path
        self.limits = limits or {}  # max_steps, max_step_tokens, max_total_tokens
        self._model = None
        self._lock = threading.Lock()
        self._cache: OrderedDict = OrderedDict()
        if plan is not None:
            config = replace(plan.config, seed=0, **self.limits)
            self._check_verifier(config.method)
            self.default = Choice(
                config, "plan", plan.predicted_accuracy, plan.accuracy_interval, plan.flops_per_problem
            )
        else:
            try:
                self.default = replace(
                    self.choose(TTSSpec(budget=("n", float(default_budget_n)))), source="plan"
                )
            except APIError:  # the planner does not know this policy: majority vote
                self.default = Choice(
                    MethodConfig(**shape("majority", default_budget_n, None, None, None), **self.limits),
                    "plan",
                )

    # ------------------------------------------------------------ the planner

    def model(self):
        with self._lock:
            if self._model is None:
                from planner.predict.modelio import load_planner_model

                self._model = load_planner_model(self.model_path)[0]
            return self._model

    def _cached(self, key, compute):
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        value = compute()
        with self._lock:
            self._cache[key] = value
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return value

    def _target(self, tts: TTSSpec) -> tuple[str | None, str | None]:
        if tts.difficulty is not None and tts.dataset is None:
            return None, tts.difficulty
        return tts.dataset or self.dataset, tts.difficulty

    def _check_verifier(self, method: str) -> None:
        if method in VERIFIER_METHODS and self.verifier is None:
            raise bad(
                f"tts.method: {method} needs a verifier and this server has none (start it with --verifier); "
                f"use one of {', '.join(NO_VERIFIER_METHODS)}",
                "tts.method",
                "verifier_unavailable",
            )

    def _plan(self, tts: TTSSpec) -> Choice:
        from planner.plan.search import Budget, PlanRequest, plan

        methods = (tts.method,) if tts.method else VERIFIER_METHODS + NO_VERIFIER_METHODS
        if self.verifier is None:
            methods = tuple(m for m in methods if m in NO_VERIFIER_METHODS)
        dataset, difficulty = self._target(tts)
        kind, value = tts.budget
        request = PlanRequest(
            policies=[self.policy],
            prms=[self.verifier] if self.verifier else None,
            budget=Budget(kind, value),
            dataset=dataset,
            difficulty=difficulty,
            hardware=self.hardware,
            beam_width=tts.beam_width or BEAM_WIDTH,
            methods=methods,
        )
        best = plan(self.model(), request, top=0).best
        fields = shape(best["method"], best["n"], best["beam_width"], best["aggregation"], best["selection"])
        return Choice(
            MethodConfig(**fields, **self.limits),
            "budget",
            best["predicted_accuracy"],
            tuple(best["accuracy_interval"]),
            best["flops_per_problem"],
        )

    def _predict(self, config: MethodConfig, tts: TTSSpec) -> Choice:
        from planner.plan.search import predict_config

        dataset, difficulty = self._target(tts)
        prm = self.verifier if config.uses_verifier else NONE
        beam = config.beam_width if config.method in TREE_METHODS else None
        try:
            rec = predict_config(
                self.model(),
                self.policy,
                prm,
                config.method,
                config.aggregation,
                config.selection,
                config.n,
                beam,
                dataset,
                difficulty,
            )
        except UserError:  # a policy or verifier the planner does not know: run without a prediction
            return Choice(config, "request")
        return Choice(
            config,
            "request",
            rec["predicted_accuracy"],
            tuple(rec["accuracy_interval"]),
            rec["flops_per_problem"],
        )

    # ------------------------------------------------------------ per request

    def choose(self, tts: TTSSpec) -> Choice:
        """The configuration for a request's `tts` object; APIError (400) when it cannot run."""
        if tts.budget is not None and tts.budget[0] == "seconds" and self.hardware is None:
            raise bad("tts.budget.seconds needs a server started with --hardware", "tts.budget")
        if tts.method is not None:
            self._check_verifier(tts.method)
        if tts.budget is not None:
            key = ("plan", tts.method, tts.budget, tts.beam_width, self._target(tts))
            return self._cached(key, lambda: self._guard(lambda: self._plan(tts), "tts.budget"))
        if tts.method is not None:
            fields = shape(tts.method, tts.n or DEFAULT_N, tts.beam_width, tts.aggregation, tts.selection)
            config = self._guard(lambda: MethodConfig(**fields, **self.limits), "tts")
            key = ("predict", config, self._target(tts))
            return self._cached(key, lambda: self._predict(config, tts))
        if tts.n is not None or tts.aggregation or tts.selection or tts.beam_width:
            raise bad("tts: n, beam_width, aggregation and selection need tts.method", "tts.method")
        return self.default

    @staticmethod
    def _guard(compute, param: str):
        try:
            return compute()
        except UserError as exc:
            raise bad(f"{param}: {exc}", param) from None
