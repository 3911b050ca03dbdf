"""Bad input and the API key on a live ttsplan serve app (loopback), with the fake engine standing
in for the model: every bad request is an OpenAI-style 4xx error, never a 500, and the server
goes on answering."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest

from planner.cli.main import main
from planner.cli.serve import build_app
from tests.conftest import SMOLLM2
from tests.fake_engine import FakeEngine, FakeVerifier
from tests.serve_helpers import running

QUESTION = [{"role": "user", "content": "What is 2 + 2?"}]
GOOD = {"model": SMOLLM2, "messages": QUESTION, "max_tokens": 16}


class CountingEngine(FakeEngine):
    """The fake engine under the name of a registry policy, so that the planner can plan for it."""

    def __init__(self) -> None:
        super().__init__(name=SMOLLM2)


def make_app(api_key=None, verifier=True, max_prompt_tokens=64):
    engine = CountingEngine()
    the_verifier = FakeVerifier(name="arith-check") if verifier else None
    app = build_app(engine, the_verifier, None, "arith", None, None, api_key, 64, max_prompt_tokens, 16, 0)
    return app, engine


@pytest.fixture(scope="module")
def server():
    app, engine = make_app()
    with running(app) as url:
        yield url, engine


BAD = [
    ("not json", b"{model: 1", 400, "invalid_json"),
    ("not an object", b"[1, 2]", 400, "invalid_json"),
    ("no model", {"messages": QUESTION}, 400, "missing_required_parameter"),
    ("unknown model", {**GOOD, "model": "gpt-4o"}, 404, "model_not_found"),
    ("no messages", {"model": SMOLLM2}, 400, "missing_required_parameter"),
    ("messages not a list", {**GOOD, "messages": "hi"}, 400, "missing_required_parameter"),
    ("no user message", {**GOOD, "messages": [{"role": "system", "content": "x"}]}, 400, "invalid_value"),
    ("bad role", {**GOOD, "messages": [{"role": "robot", "content": "x"}]}, 400, "invalid_value"),
    (
        "image part",
        {**GOOD, "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
        400,
        "invalid_value",
    ),
    ("empty question", {**GOOD, "messages": [{"role": "user", "content": "  "}]}, 400, "invalid_value"),
    ("stream", {**GOOD, "stream": True}, 400, "invalid_value"),
    ("n=2", {**GOOD, "n": 2}, 400, "invalid_value"),
    ("max_tokens 0", {**GOOD, "max_tokens": 0}, 400, "invalid_value"),
    ("max_tokens over limit", {**GOOD, "max_tokens": 10_000}, 400, "invalid_value"),
    ("max_tokens text", {**GOOD, "max_tokens": "16"}, 400, "invalid_value"),
    ("temperature", {**GOOD, "temperature": 5}, 400, "invalid_value"),
    ("top_p", {**GOOD, "top_p": 0}, 400, "invalid_value"),
    ("seed", {**GOOD, "seed": -1}, 400, "invalid_value"),
    ("tts not object", {**GOOD, "tts": "beam"}, 400, "invalid_value"),
    ("tts unknown field", {**GOOD, "tts": {"methd": "beam"}}, 400, "invalid_value"),
    ("unknown method", {**GOOD, "tts": {"method": "mcts"}}, 400, "invalid_value"),
    ("beam n not divisible", {**GOOD, "tts": {"method": "beam", "n": 6}}, 400, "invalid_value"),
    ("cot with n", {**GOOD, "tts": {"method": "cot", "n": 4}}, 200, None),  # cot takes n = 1
    ("n without method", {**GOOD, "tts": {"n": 4}}, 400, "invalid_value"),
    (
        "n and budget",
        {**GOOD, "tts": {"method": "majority", "n": 4, "budget": {"n": 4}}},
        400,
        "invalid_value",
    ),
    ("empty budget", {**GOOD, "tts": {"budget": {}}}, 400, "invalid_value"),
    ("two budgets", {**GOOD, "tts": {"budget": {"n": 4, "flops": 1e12}}}, 400, "invalid_value"),
    ("negative budget", {**GOOD, "tts": {"budget": {"n": -4}}}, 400, "invalid_value"),
    ("text budget", {**GOOD, "tts": {"budget": {"n": "many"}}}, 400, "invalid_value"),
    (
        "nan budget",
        b'{"model": "%s", "messages": [{"role": "user", "content": "q"}], "tts": {"budget": {"n": NaN}}}'
        % SMOLLM2.encode(),
        400,
        "invalid_value",
    ),
    ("unknown budget kind", {**GOOD, "tts": {"budget": {"dollars": 1}}}, 400, "invalid_value"),
    ("budget too small", {**GOOD, "tts": {"budget": {"flops": 1}}}, 400, "invalid_value"),
    ("seconds without hardware", {**GOOD, "tts": {"budget": {"seconds": 2}}}, 400, "invalid_value"),
    ("unknown dataset", {**GOOD, "tts": {"budget": {"n": 4}, "dataset": "imagenet"}}, 400, "invalid_value"),
    (
        "over-long prompt",
        {**GOOD, "messages": [{"role": "user", "content": "7 + " * 200}]},
        400,
        "context_length_exceeded",
    ),
    ("huge body", {**GOOD, "pad": "x" * (2 << 20)}, 413, "body_too_large"),
]


@pytest.mark.parametrize("name,body,status,code", BAD, ids=[b[0] for b in BAD])
def test_bad_request_is_a_json_4xx(server, name, body, status, code):
    url, _ = server
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = httpx.post(url + "/v1/chat/completions", content=content, timeout=60)
    assert r.status_code == status, r.text
    if status != 200:
        error = r.json()["error"]
        assert (
            error["code"] == code
            and error["message"]
            and error["type"] == "invalid_request_error"
            or status == 404
        )


def test_unknown_path_and_verb_are_json(server):
    url, _ = server
    r = httpx.get(url + "/v2/anything")
    assert r.status_code == 404 and r.json()["error"]["message"]
    r = httpx.get(url + "/v1/chat/completions")
    assert r.status_code == 405 and r.json()["error"]["message"]


def test_openai_client_sees_the_errors_and_the_server_lives_on(server):
    url, _ = server
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4o", messages=QUESTION)
    with pytest.raises(openai.BadRequestError, match="mcts"):
        client.chat.completions.create(
            model=SMOLLM2, messages=QUESTION, extra_body={"tts": {"method": "mcts"}}
        )
    r = client.chat.completions.create(model=SMOLLM2, messages=QUESTION, max_tokens=16)
    assert r.choices[0].message.content
    assert httpx.get(url + "/health").json()["status"] == "ok"


def test_verifier_method_on_a_server_without_verifier_is_400():
    app, engine = make_app(verifier=False)
    with running(app) as url:
        r = httpx.post(url + "/v1/chat/completions", json={**GOOD, "tts": {"method": "beam", "n": 4}})
        assert r.status_code == 400 and r.json()["error"]["code"] == "verifier_unavailable"
        # its default plan and budgets only use methods without a verifier
        r = httpx.post(url + "/v1/chat/completions", json={**GOOD, "tts": {"budget": {"n": 8}}}, timeout=60)
        assert r.status_code == 200 and r.json()["tts"]["method"] in ("cot", "majority")


def test_api_key_required_and_nothing_runs_without_it():
    app, engine = make_app(api_key="s3cret")
    with running(app) as url:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            r = httpx.post(url + "/v1/chat/completions", json=GOOD, headers=headers)
            assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        assert httpx.get(url + "/v1/models").status_code == 401
        assert httpx.get(url + "/metrics").status_code == 401
        assert engine.calls == []  # nothing ran
        assert httpx.get(url + "/health").status_code == 200
        client = openai.OpenAI(base_url=url + "/v1", api_key="s3cret", max_retries=0)
        assert client.models.list().data[0].id == SMOLLM2
        assert client.chat.completions.create(model=SMOLLM2, messages=QUESTION, max_tokens=8).choices
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=url + "/v1", api_key="nope", max_retries=0).models.list()


@pytest.mark.parametrize(
    "args,message",
    [
        (["serve", "--engine", "tpu"], "unknown engine 'tpu'"),
        (["serve", "--policy", "no/such-model"], "not an embedded model"),
        (["serve", "--verifier", "oracle"], "unknown verifier 'oracle'"),
        (["serve", "--port", "70000"], "--port: out of range"),
        (["serve", "--plan", "/nonexistent/plan.json"], "not found"),
    ],
)
def test_serve_command_refuses_bad_flags_in_one_line(capsys, args, message):
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


class SlowEngine(CountingEngine):
    """Each generate call takes `delay` seconds (a step of a real model)."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.max_len = 4
        self.delay = delay

    def generate(self, prompts, options):
        time.sleep(self.delay)
        return super().generate(prompts, options)


def test_client_that_goes_away_stops_costing_compute():
    engine = SlowEngine(delay=0.4)
    app = build_app(engine, FakeVerifier(name="arith-check"), None, "arith", None, None, None, 64, 64, 16, 0)
    body = {**GOOD, "seed": 3, "tts": {"method": "beam", "n": 4, "beam_width": 2}}
    with running(app) as url:
        # how many generate calls the search takes when the client waits for it
        done = httpx.post(url + "/v1/chat/completions", json=body, timeout=60)
        assert done.status_code == 200
        full_calls = len(engine.calls)
        assert full_calls >= 3
        engine.calls.clear()
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(url + "/v1/chat/completions", json=body, timeout=0.6)
        time.sleep(3 * 0.4 + 0.5)  # long enough for the whole search, had it gone on
        spent = [p for prompts, _ in engine.calls for p in prompts]
        assert len(engine.calls) < full_calls  # it stopped at a step boundary
        metrics = httpx.get(url + "/metrics").text
        assert "tts_cancelled_total 1.0" in metrics
        assert spent  # the first step ran before the client left


def test_closing_the_service_stops_the_batcher_then_closes_engine_and_verifier():
    """What `ttsplan serve` runs after uvicorn returns: vLLM's engine processes otherwise outlive it."""
    closed = []

    class Closing(FakeEngine):
        def close(self):
            closed.append("engine")

    class ClosingVerifier(FakeVerifier):
        def close(self):
            closed.append("verifier")

    app = build_app(
        Closing(), ClosingVerifier(name="arith-check"), None, "arith", None, None, None, 64, 64, 16, 0
    )
    service = app.state.service
    service.close()
    assert closed == ["engine", "verifier"] and not service.batcher._thread.is_alive()
