"""Names of the PRMs and PRM families, and where their weights are: no torch needed, so names
can be checked before any model code loads."""

from __future__ import annotations

from pathlib import Path

FAMILY_NAMES = ("math-shepherd", "rlhflow", "skywork", "qwen-prm")  # the adapters in prm_formats

# The PRMs studied by Liu et al. 2025 (their Section 3), by hub id.
KNOWN_PRMS: dict[str, str] = {
    "peiyi9979/math-shepherd-mistral-7b-prm": "math-shepherd",
    "RLHFlow/Llama3.1-8B-PRM-Mistral-Data": "rlhflow",
    "RLHFlow/Llama3.1-8B-PRM-Deepseek-Data": "rlhflow",
    "Skywork/Skywork-o1-Open-PRM-Qwen-2.5-1.5B": "skywork",
    "Skywork/Skywork-o1-Open-PRM-Qwen-2.5-7B": "skywork",
    "Qwen/Qwen2.5-Math-PRM-7B": "qwen-prm",
    "Qwen/Qwen2.5-Math-PRM-72B": "qwen-prm",
    "Qwen/Qwen2.5-Math-7B-PRM800K": "qwen-prm",  # same architecture and <extra_0> format (model card)
}


def known_prm(name: str) -> str | None:
    """The hub id of a known PRM given its id or its last part, any case; None if unknown."""
    low = name.strip().lower().rstrip("/")
    for hub_id in KNOWN_PRMS:
        if low in (hub_id.lower(), hub_id.split("/")[1].lower()):
            return hub_id
    return None


def local_copy(hub_id: str) -> Path | None:
    """The folder of a complete copy in the local Hugging Face cache, never downloading."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(hub_id, local_files_only=True))
    except Exception:  # not cached, partial, or no huggingface_hub: all mean "not here"
        return None
