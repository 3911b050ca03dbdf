"""The plan file: the one schema the planner writes and the executor reads.

A plan document is a JSON object {"format": "ttsplan-plan", "version": 1, "kind": ..., ...}:
- kind "single": one configuration (policy, prm, method, n, beam_width, aggregation, selection,
  predicted_accuracy, accuracy_interval, flops_per_problem, in_calibrated_range, dataset) at the
  top level, plus the planner's alternatives and frontier; an adaptive configuration adds "stop"
  (its early-stopping rule, n being the cap) and "expected_samples";
- kind "per_bin": one such configuration per difficulty bin under "bins", the probe settings
  under "probe", and the best static configuration under "static".
A document of another format, of an older or newer version, or of the wrong kind is refused in
one line. Everything here is checked before any model loads.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

from planner.core import checks
from planner.core.config import MethodConfig
from planner.core.errors import UserError
from planner.core.files import read_bounded
from planner.core.vocab import (
    AGGREGATIONS,
    EASY_ABOVE,
    HARD_BELOW,
    METHODS,
    NONE,
    TEMPERATURE,
    TREE_METHODS,
    VERIFIER_METHODS,
    sampling_defaults,
)

PLAN_FORMAT = "ttsplan-plan"
MAX_PLAN_BYTES = 10_000_000
PLAN_VERSION = 1
KIND_SINGLE = "single"
KIND_PER_BIN = "per_bin"
KINDS = (KIND_SINGLE, KIND_PER_BIN)

# Probe defaults of a per-bin plan: k samples, pass@1 estimated from answer agreement.
DEFAULT_PROBE = {
    "k": 4,
    "temperature": TEMPERATURE,
    "max_tokens": None,  # None: the bins' max_total_tokens
    "score": "agreement",  # or "verifier": mean aggregated verifier score of the probe samples,
    # or "posterior": the per-problem model's posterior mean success rate given how the k answers
    # split (the table under "posterior", keyed by core.scoring.answer_signature)
    "aggregation": "last",  # how step scores make one score when score is "verifier"
    "easy_above": EASY_ABOVE,
    "hard_below": HARD_BELOW,
    "reuse": False,  # the probe's samples count toward a majority / Best-of-N bin's n
    "posterior": None,
}

# Fields a plan file must have: always, for methods with a verifier, for beam/dvts.
REQUIRED = ("policy", "method", "n")
REQUIRED_VERIFIER = ("prm", "aggregation", "selection")
REQUIRED_TREE = ("beam_width",)


def document(kind: str, body: dict) -> dict:
    """A plan document of `kind` ("single" or "per_bin") with the format and version stamped first."""
    if kind not in KINDS:
        raise UserError(f"kind: must be one of {', '.join(KINDS)}, got {kind!r}")
    return {"format": PLAN_FORMAT, "version": PLAN_VERSION, "kind": kind, **body}


def check_document(obj: object, kind: str, where: str = "plan") -> dict:
    """The document if it is a plan of this format, version and kind; else a one-line UserError."""
    if not isinstance(obj, dict):
        raise UserError(f"{where}: a plan must be a JSON object, got {type(obj).__name__}")
    if obj.get("format") != PLAN_FORMAT:
        raise UserError(
            f"{where}: not a plan file (field 'format' is {obj.get('format')!r}, expected {PLAN_FORMAT!r})"
        )
    version = obj.get("version")
    if version != PLAN_VERSION:
        older = isinstance(version, int) and not isinstance(version, bool) and version < PLAN_VERSION
        newer = isinstance(version, int) and not isinstance(version, bool) and version > PLAN_VERSION
        why = "an older" if older else "a newer" if newer else "an unknown"
        raise UserError(
            f"{where}: plan format version {version!r} is {why} version; this ttsplan reads version "
            f"{PLAN_VERSION}: make the plan again with this version"
        )
    if obj.get("kind") != kind:
        label = {KIND_SINGLE: "single-configuration", KIND_PER_BIN: "per-bin"}[kind]
        raise UserError(f"{where}: not a {label} plan (its kind is {obj.get('kind')!r})")
    return obj


def read_document(path: str | Path, kind: str) -> dict:
    """Read, parse and check a plan file of `kind`; every problem is a UserError naming the file."""
    path = Path(path)
    try:
        text = read_bounded(path, MAX_PLAN_BYTES, "plan file").decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"plan file {path}: not UTF-8 text") from None
    if not text.strip():
        raise UserError(f"plan file {path} is empty")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"plan file {path}: invalid or truncated JSON ({exc.msg} at line {exc.lineno})"
        ) from None
    except RecursionError:
        raise UserError(f"plan file {path}: JSON nested too deeply") from None
    return check_document(obj, kind, where=f"plan file {path}")


def check_probe(probe: dict | None) -> dict:
    """Probe settings of a per-bin plan over the defaults; UserError naming the bad one."""
    out = dict(DEFAULT_PROBE)
    for key, value in (probe or {}).items():
        if key not in DEFAULT_PROBE:
            raise UserError(f"probe: unknown setting {key!r}; known: {', '.join(DEFAULT_PROBE)}")
        out[key] = value
    checks.integer(out["k"], "probe_k", 1, checks.MAX_N)
    checks.number(out["temperature"], "probe: temperature", 0, checks.MAX_TEMPERATURE)
    checks.optional_integer(out["max_tokens"], "probe: max_tokens", 1, checks.MAX_TOKENS)
    if out["score"] not in ("agreement", "verifier", "posterior"):
        raise UserError(f"probe: score must be agreement, verifier or posterior, got {out['score']!r}")
    if not isinstance(out["reuse"], bool):
        raise UserError(f"probe: reuse must be true or false, got {out['reuse']!r}")
    table = out["posterior"]
    if out["score"] == "posterior" and table is None:
        raise UserError("probe: score posterior needs the table under 'posterior' (ttsplan plan writes it)")
    if table is not None:
        ok = isinstance(table, dict) and all(
            isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 1
            for k, v in table.items()
        )
        if not ok:
            raise UserError("probe: posterior must map answer signatures to success rates in [0, 1]")
    if out["aggregation"] not in AGGREGATIONS:
        raise UserError(
            f"probe: aggregation must be one of {', '.join(AGGREGATIONS)}, got {out['aggregation']!r}"
        )
    lo, hi = out["hard_below"], out["easy_above"]
    for name, v in (("hard_below", lo), ("easy_above", hi)):
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 1:
            raise UserError(f"probe: {name} must be a number in [0, 1], got {v!r}")
    if lo > hi:
        raise UserError(f"probe: hard_below ({lo}) must not exceed easy_above ({hi})")
    return out


@dataclass(frozen=True)
class RunPlan:
    """What to run: the policy, the verifier (PRM) name, the method config, and what was predicted."""

    policy: str
    prm: str | None  # None when the method uses no verifier
    config: MethodConfig
    predicted_accuracy: float | None = None
    accuracy_interval: tuple[float, float] | None = None
    flops_per_problem: float | None = None
    in_calibrated_range: bool | None = None
    dataset: str | None = None
    source: str = "flags"  # the plan file, or "flags"

    def with_overrides(self, **changes) -> RunPlan:
        """A copy with config fields (seed, max_steps, ...) or plan fields (policy, prm) replaced."""
        config_fields = set(MethodConfig.__dataclass_fields__)
        config_changes = {k: v for k, v in changes.items() if k in config_fields and v is not None}
        plan_changes = {k: v for k, v in changes.items() if k not in config_fields and v is not None}
        return replace(self, config=replace(self.config, **config_changes), **plan_changes)

    @property
    def configs(self) -> list[MethodConfig]:
        """The configurations this plan runs (one; a per-bin plan has one per bin)."""
        return [self.config]

    def to_dict(self) -> dict:
        return {
            "policy": self.policy,
            "prm": self.prm,
            **self.config.to_dict(),
            "predicted_accuracy": self.predicted_accuracy,
            "accuracy_interval": list(self.accuracy_interval) if self.accuracy_interval else None,
            "flops_per_problem": self.flops_per_problem,
            "in_calibrated_range": self.in_calibrated_range,
            "dataset": self.dataset,
            "source": self.source,
        }


def _int_field(obj: dict, key: str, where: str) -> int:
    value = obj[key]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise UserError(f"{where}: field '{key}' must be an integer, got {value!r}")
    return value


def _optional_number(obj: dict, key: str, where: str) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError(f"{where}: field '{key}' must be a finite number, got {value!r}")
    return float(value)


def _interval(obj: dict, where: str) -> tuple[float, float] | None:
    value = obj.get("accuracy_interval")
    if value is None:
        return None
    ok = isinstance(value, list) and len(value) == 2
    ok = ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    if not ok:
        raise UserError(f"{where}: field 'accuracy_interval' must be [low, high], got {value!r}")
    return float(value[0]), float(value[1])


def _name(value: object) -> str | None:
    """A model name, or None for none/null/empty."""
    if value is None:
        return None
    text = str(value).strip()
    return None if text.lower() in ("", NONE, "null") else text


def plan_from_dict(obj: object, where: str = "plan") -> RunPlan:
    """Validate a plan object (as `ttsplan plan --json` prints it)."""
    if not isinstance(obj, dict):
        raise UserError(f"{where}: a plan must be a JSON object, got {type(obj).__name__}")
    for key in REQUIRED:
        if key not in obj:
            raise UserError(f"{where}: missing field '{key}'")
    method = obj["method"]
    if method not in METHODS:
        raise UserError(f"{where}: unknown method {method!r}; choose one of {', '.join(METHODS)}")
    needed = (REQUIRED_VERIFIER if method in VERIFIER_METHODS else ()) + (
        REQUIRED_TREE if method in TREE_METHODS else ()
    )
    for key in needed:
        if obj.get(key) is None:
            raise UserError(f"{where}: missing field '{key}' (needed by {method})")
    policy = _name(obj["policy"])
    if policy is None:
        raise UserError(f"{where}: field 'policy' is empty")
    prm = _name(obj.get("prm")) if method in VERIFIER_METHODS else None
    if method in VERIFIER_METHODS and prm is None:
        raise UserError(f"{where}: method {method} needs a PRM, field 'prm' is {obj.get('prm')!r}")
    fields = {**sampling_defaults(policy), "method": method, "n": _int_field(obj, "n", where)}
    if obj.get("beam_width") is not None:
        fields["beam_width"] = _int_field(obj, "beam_width", where)
    for key in ("aggregation", "selection"):
        if obj.get(key) is not None:
            fields[key] = str(obj[key])
    if obj.get("stop") is not None:  # an adaptive plan: n is the cap, run with early stopping
        fields["stop"] = str(obj["stop"])
    try:
        config = MethodConfig(**fields)
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None
    in_range = obj.get("in_calibrated_range")
    return RunPlan(
        policy=policy,
        prm=prm,
        config=config,
        predicted_accuracy=_optional_number(obj, "predicted_accuracy", where),
        accuracy_interval=_interval(obj, where),
        flops_per_problem=_optional_number(obj, "flops_per_problem", where),
        in_calibrated_range=in_range if isinstance(in_range, bool) else None,
        dataset=obj.get("dataset") if isinstance(obj.get("dataset"), str) else None,
        source=where,
    )


def load_plan(path: str | Path) -> RunPlan:
    """Read and validate a single-configuration plan file."""
    obj = read_document(path, KIND_SINGLE)
    return plan_from_dict(obj, where=f"plan file {path}")


def plan_from_options(
    policy: str | None,
    method: str | None,
    n: int | None,
    prm: str | None = None,
    beam_width: int | None = None,
    aggregation: str | None = None,
    selection: str | None = None,
) -> RunPlan:
    """A plan from options (no predictions). prm may be None: the caller's verifier decides."""
    if not policy:
        raise UserError("policy is required when no plan file is given")
    if not method:
        raise UserError("method is required when no plan file is given")
    if n is None:
        n = 1 if method == "cot" else None
        if n is None:
            raise UserError("n is required when no plan file is given")
    fields = {**sampling_defaults(policy), "method": method, "n": n}
    for key, value in (("beam_width", beam_width), ("aggregation", aggregation), ("selection", selection)):
        if value is not None:
            fields[key] = value
    return RunPlan(policy=policy, prm=_name(prm), config=MethodConfig(**fields), source="flags")
