"""Build what a run needs from names, and check the names before anything loads.

The one place that turns a policy name, a verifier name and an engine kind into objects;
`ttsplan run`, `ttsplan calibrate` and the bench scripts all call it. Checks raise a one-line
UserError naming the parameter; nothing here imports torch until a model is loaded.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from planner.core.errors import UserError
from planner.core.vocab import ENGINES
from planner.executor import embedded

VLLM_MISSING = "vllm is not installed: pip install 'tts-planner[cpu]' (CPU) or 'tts-planner[gpu]' (GPU)"
BUILTIN_VERIFIERS = ("lm-judge", "arith-check")


def check_engine_kind(kind: str) -> None:
    if kind not in ENGINES:
        raise UserError(f"engine: unknown engine {kind!r}; choose one of {', '.join(ENGINES)}")
    if kind == "vllm" and importlib.util.find_spec("vllm") is None:
        raise UserError(VLLM_MISSING)


def check_model(name: str, what: str = "policy") -> None:
    """An embedded model name or a local folder with config.json; else a one-line UserError."""
    if embedded.is_embedded(name):
        return
    path = Path(name).expanduser()
    if path.is_dir() and (path / "config.json").is_file():
        return
    if path.exists():
        raise UserError(f"{what} {name}: model path has no config.json")
    raise UserError(
        f"{what} {name!r} is not an embedded model ({', '.join(embedded.EMBEDDED)}) nor a local model folder"
    )


def canonical(name: str) -> str:
    """The registry name of an embedded model, else the name as given."""
    return embedded.canonical_name(name)


def check_verifier(name: str) -> None:
    """A verifier name that can load here: built in, lm-judge:MODEL, a PRM folder, or a known PRM
    with local weights. Imports no model code unless a PRM is named."""
    if not isinstance(name, str) or not name.strip():
        raise UserError(f"verifier: must be a non-empty name, got {name!r}")
    name = name.strip()
    if name in BUILTIN_VERIFIERS:
        return
    if name.startswith("lm-judge:"):
        check_model(name.partition(":")[2].strip(), "verifier model")
        return
    folder_or_hub = name
    family, sep, rest = name.partition(":")
    from planner.executor.verifiers.prm_names import FAMILY_NAMES, known_prm, local_copy

    if sep and family in FAMILY_NAMES:
        folder_or_hub = rest
    path = Path(folder_or_hub).expanduser()
    if path.is_dir() and (path / "config.json").is_file():
        return
    hub_id = known_prm(folder_or_hub)
    if hub_id and local_copy(hub_id) is not None:
        return
    if hub_id:
        raise UserError(
            f"verifier {name!r} is a known PRM but has no local weights; give the folder it was "
            "downloaded to (nothing is downloaded at run time)"
        )
    raise UserError(f"unknown verifier {name!r}; use lm-judge, lm-judge:MODEL, arith-check or a PRM folder")


def load_verifier(name: str, policy: str, prefix_reuse: bool = False):
    """The verifier `name` (see planner.executor.verifiers.make_verifier); the LM judge defaults to
    the policy model. prefix_reuse: for tree search, the LM judge keeps each beam's KV cache
    (the planner prices it so: cost.reuses_prefix)."""
    from planner.executor.verifiers import make_verifier

    if prefix_reuse:
        return make_verifier(name, policy_model=policy, prefix_reuse=True)
    return make_verifier(name, policy_model=policy)


def check_policy(kind: str, name: str) -> None:
    """check_model for in-process engines; an OpenAI-compatible server checks its own model names
    when the engine connects."""
    if kind != "openai":
        check_model(name, "policy")


def set_openai_server(base_url: str | None, api_key: str | None) -> None:
    """Where engine "openai" connects, for this process and the workers it starts (environment)."""
    from planner.executor.engines.openai_engine import API_KEY_ENV, BASE_URL_ENV

    if base_url:
        os.environ[BASE_URL_ENV] = base_url
    if api_key:
        os.environ[API_KEY_ENV] = api_key


def load_engine(kind: str, policy: str, seed: int, base_url: str | None = None, api_key: str | None = None):
    """A policy engine of `kind` (auto, vllm, transformers) for an embedded model or folder, or
    ("openai") the model `policy` of the server at base_url (default: $TTSPLAN_OPENAI_BASE_URL)."""
    from planner.executor.engines import make_engine

    if kind == "openai":
        return make_engine(kind, policy, seed, base_url=base_url, api_key=api_key)
    return make_engine(kind, policy, seed)
