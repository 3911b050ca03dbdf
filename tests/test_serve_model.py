"""ttsplan serve end to end: the real `openai` client over loopback against the server running the
embedded SmolLM2-135M (transformers engine) with the arithmetic step checker as verifier."""

from __future__ import annotations

import threading

import httpx
import openai
import pytest

from planner.cli.serve import build_app
from planner.executor.verifiers import make_verifier
from tests.conftest import SMOLLM2
from tests.serve_helpers import running

pytestmark = pytest.mark.model


class Recording:
    """The real engine, counting every token it read and generated."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.name = engine.name
        self.tokenizer = engine.tokenizer
        self.prompt_tokens = 0
        self.generated_tokens = 0

    def format_prompt(self, problem: str) -> str:
        return self.engine.format_prompt(problem)

    def generate(self, prompts, options):
        gens = self.engine.generate(prompts, options)
        self.prompt_tokens += sum(g.prompt_tokens for g in gens)
        self.generated_tokens += sum(c.tokens for g in gens for c in g.completions)
        return gens


@pytest.fixture(scope="module")
def server(hf_engine):
    engine = Recording(hf_engine)
    app = build_app(engine, make_verifier("arith-check"), None, "arith", None, None, None, 48, 256, 16, 0)
    with running(app) as url:
        yield openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=300), url, engine


def ask(client, question: str, tts: dict, **kw):
    return client.chat.completions.create(
        model="smollm2", messages=[{"role": "user", "content": question}], extra_body={"tts": tts}, **kw
    )


def test_answer_tts_block_and_token_counts(server):
    client, _, engine = server
    before = (engine.prompt_tokens, engine.generated_tokens)
    r = ask(
        client, "What is 12 + 7?", {"method": "best_of_n", "n": 2, "candidates": True}, max_tokens=40, seed=1
    )
    tts = r.model_extra["tts"]
    text = r.choices[0].message.content
    assert r.model == SMOLLM2 and text.strip()
    assert (tts["method"], tts["n"], tts["aggregation"], tts["selection"]) == ("best_of_n", 2, "last", "max")
    assert tts["source"] == "request" and tts["verifier"] == "arith-check" and tts["seed"] == 1
    assert tts["candidates_count"] == 2 and len(tts["candidates"]) == 2
    best = max(tts["candidates"], key=lambda c: c["score"])  # selection max over the last step's score
    assert text == best["text"]
    low, high = tts["accuracy_interval"]
    assert 0 <= low <= tts["predicted_accuracy"] <= high <= 1
    assert tts["flops"] > 0 and tts["predicted_flops"] > 0
    # usage is exactly what the engine read and generated for this request
    assert r.usage.prompt_tokens == engine.prompt_tokens - before[0]
    assert r.usage.completion_tokens == engine.generated_tokens - before[1]
    assert 0 < r.usage.completion_tokens <= 2 * 40
    assert r.usage.prompt_tokens == len(
        engine.tokenizer(engine.format_prompt("What is 12 + 7?"))["input_ids"]
    )
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert r.usage.model_extra["verifier_tokens"] == 0  # the arithmetic checker reads no tokens


def test_same_seed_same_answer(server):
    client, _, _ = server
    kw = dict(model=SMOLLM2, prompt="What is 9 - 4?", max_tokens=32, seed=11)
    first = client.completions.create(**kw, extra_body={"tts": {"method": "majority", "n": 2}})
    again = client.completions.create(**kw, extra_body={"tts": {"method": "majority", "n": 2}})
    assert first.choices[0].text == again.choices[0].text and first.choices[0].text
    assert first.usage.completion_tokens == again.usage.completion_tokens
    assert first.model_extra["tts"]["seed"] == again.model_extra["tts"]["seed"] == 11


def test_budget_is_planned_and_concurrent_requests_batch(server):
    client, url, _ = server
    answers: list = [None] * 4

    def one(i: int) -> None:
        answers[i] = ask(client, f"What is {i} + 5?", {"budget": {"n": 2}}, max_tokens=24)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    blocks = [a.model_extra["tts"] for a in answers]
    assert all(
        b["source"] == "budget" and b["n"] <= 2 and b["predicted_accuracy"] is not None for b in blocks
    )
    assert max(b["batch_size"] for b in blocks) >= 2  # requests that arrived together ran together
    metrics = httpx.get(url + "/metrics").text
    assert "tts_batch_problems_count" in metrics and 'tts_flops_total{method="' in metrics


def test_bad_requests_are_4xx_with_the_real_tokenizer(server):
    client, url, engine = server
    before = engine.generated_tokens
    with pytest.raises(openai.BadRequestError, match="context_length_exceeded|more than this server's limit"):
        ask(client, "1 + 1 = 2. " * 200, {"method": "cot"})
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="google/gemma-3-270m", messages=[{"role": "user", "content": "hi"}]
        )
    with pytest.raises(openai.BadRequestError):
        ask(client, "What is 1 + 1?", {"budget": {"n": 0}})
    assert engine.generated_tokens == before
    assert httpx.get(url + "/health").json()["status"] == "ok"
