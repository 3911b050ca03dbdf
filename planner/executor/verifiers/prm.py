"""`load_prm`: a PRM adapter from a known model name (with its weights on disk) or a folder.

No weights are downloaded: a known name must already be in the local Hugging Face cache,
otherwise pass the folder that holds the model (config, tokenizer and weights).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from planner.core.errors import UserError
from planner.executor.verifiers.prm_base import PRMAdapter
from planner.executor.verifiers.prm_formats import FAMILIES
from planner.executor.verifiers.prm_names import KNOWN_PRMS, known_prm, local_copy

# Words in a folder's path that tell its family, tried in this order.
_NAME_HINTS = (
    ("math-shepherd", "math-shepherd"),
    ("rlhflow", "rlhflow"),
    ("-prm-mistral-data", "rlhflow"),
    ("-prm-deepseek-data", "rlhflow"),
    ("skywork", "skywork"),
    ("qwen2.5-math-prm", "qwen-prm"),
)
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")


def load_prm(
    name_or_path: str | Path,
    device: str = "cpu",
    dtype: torch.dtype = torch.bfloat16,
    family: str | None = None,
    batch_size: int = 8,
) -> PRMAdapter:
    """A ready PRM adapter. `family` overrides the guess for a folder: one of FAMILIES."""
    if family is not None and family not in FAMILIES:
        raise UserError(f"unknown PRM family {family!r}; choices: {', '.join(FAMILIES)}")
    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.is_dir():
        folder = path
        hub_id = known_prm(path.name)
    else:
        hub_id = known_prm(text)
        if hub_id is None:
            raise UserError(f"unknown PRM {text!r} (not a folder either); known: {', '.join(KNOWN_PRMS)}")
        cached = local_copy(hub_id)
        if cached is None:
            raise UserError(
                f"PRM {hub_id}: no weights available offline (no local copy; models are not "
                "downloaded here); pass the folder that holds its weights"
            )
        folder = cached
    if not any(p.name.endswith(_WEIGHT_SUFFIXES) for p in folder.iterdir()):
        raise UserError(f"PRM folder {folder} holds no weight files (*.safetensors or *.bin)")
    family = family or (KNOWN_PRMS[hub_id] if hub_id else guess_family(folder))
    name = hub_id or str(folder)
    return FAMILIES[family].load(folder, device, dtype, name=name, spec_name=hub_id, batch_size=batch_size)


def guess_family(folder: Path) -> str:
    """The family of a model folder, from its path or its config's architecture."""
    low = str(folder.resolve()).lower()
    for word, family in _NAME_HINTS:
        if word in low:
            return family
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = {}
    architectures = set(config.get("architectures") or [])
    if "Qwen2ForProcessRewardModel" in architectures:
        return "qwen-prm"
    if "Qwen2ForPrmModel" in architectures:
        return "skywork"
    raise UserError(
        f"cannot tell which PRM family {folder} is; name it ({', '.join(FAMILIES)}), "
        "e.g. make_verifier('skywork:/path/to/folder')"
    )
