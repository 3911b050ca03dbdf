"""Plans to execute: loaded from the JSON object `ttsplan plan --json` prints, or built from flags.

Everything here is checked before any model loads; bad input is a one-line UserError.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

from planner.errors import UserError
from planner.executor.methods.common import (
    METHOD_NAMES,
    NONE,
    TREE_METHODS,
    VERIFIER_METHODS,
    MethodConfig,
)

# Fields a plan file must have: always, for methods with a verifier, for beam/dvts.
REQUIRED = ("policy", "method", "n")
REQUIRED_VERIFIER = ("prm", "aggregation", "selection")
REQUIRED_TREE = ("beam_width",)


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
    if method not in METHOD_NAMES:
        raise UserError(f"{where}: unknown method {method!r}; choose one of {', '.join(METHOD_NAMES)}")
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
    fields = {"method": method, "n": _int_field(obj, "n", where)}
    if obj.get("beam_width") is not None:
        fields["beam_width"] = _int_field(obj, "beam_width", where)
    for key in ("aggregation", "selection"):
        if obj.get(key) is not None:
            fields[key] = str(obj[key])
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
    """Read and validate a plan file; every problem is a UserError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"plan file {path} not found" if not path.exists() else f"plan file {path} is not a file"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"plan file {path}: cannot read ({exc})") from None
    if not text.strip():
        raise UserError(f"plan file {path} is empty")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"plan file {path}: invalid or truncated JSON ({exc.msg} at line {exc.lineno})"
        ) from None
    return plan_from_dict(obj, where=f"plan file {path}")


def plan_from_flags(
    policy: str | None,
    method: str | None,
    n: int | None,
    prm: str | None = None,
    beam_width: int | None = None,
    aggregation: str | None = None,
    selection: str | None = None,
) -> RunPlan:
    """A plan from command-line flags (no predictions). prm may be None: the verifier flag decides."""
    if not policy:
        raise UserError("--policy is required when no plan file is given")
    if not method:
        raise UserError("--method is required when no plan file is given")
    if n is None:
        n = 1 if method == "cot" else None
        if n is None:
            raise UserError("--n is required when no plan file is given")
    fields = {"method": method, "n": n}
    for key, value in (("beam_width", beam_width), ("aggregation", aggregation), ("selection", selection)):
        if value is not None:
            fields[key] = value
    return RunPlan(policy=policy, prm=_name(prm), config=MethodConfig(**fields), source="flags")
