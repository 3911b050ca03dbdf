"""Request bodies of the OpenAI-compatible endpoints, read from plain JSON and checked field by
field; every problem is an APIError that the app turns into an OpenAI-style JSON error (4xx).

Recognised: `model`, `messages` (chat) or `prompt` (completions), `max_tokens` (or
`max_completion_tokens`), `temperature`, `top_p`, `seed`, `n` (1 only), `stream` (false only) and
the top-level `tts` object (what `extra_body={"tts": {...}}` sends):
    {"method": "beam", "n": 16, "beam_width": 4, "aggregation": "last", "selection": "max",
     "budget": {"n": 16} | {"flops": 1e13} | {"seconds": 2.0},
     "dataset": "math500", "difficulty": "hard", "candidates": true}
Other OpenAI fields are accepted and ignored. The question is the last user message (chat) or the
prompt (completions): the server puts it in the policy's own prompt template, since the methods
need its step format (steps separated by blank lines, the answer in \\boxed{}).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from planner.core.vocab import AGGREGATIONS, METHODS, NONE, SELECTIONS

BUDGET_KINDS = ("n", "flops", "seconds")  # as planner.plan.search.BUDGET_KINDS (not imported: no pandas here)
TTS_KEYS = (
    "method",
    "n",
    "beam_width",
    "aggregation",
    "selection",
    "budget",
    "dataset",
    "difficulty",
    "candidates",
)
MAX_SEED = 2**31 - 1


class APIError(Exception):
    """An error answered as {"error": {"message", "type", "param", "code"}} with `status`."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = {401: "authentication_error", 404: "not_found_error"}.get(
            status, "invalid_request_error" if status < 500 else "server_error"
        )

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def bad(message: str, param: str | None = None, code: str = "invalid_value") -> APIError:
    return APIError(400, message, param, code)


@dataclass(frozen=True)
class TTSSpec:
    """The `tts` object of a request; all optional."""

    method: str | None = None
    n: int | None = None
    beam_width: int | None = None
    aggregation: str | None = None
    selection: str | None = None
    budget: tuple[str, float] | None = None  # (kind, value)
    dataset: str | None = None
    difficulty: str | None = None
    candidates: bool = False


@dataclass(frozen=True)
class ServeRequest:
    kind: str  # "chat" or "completion"
    model: str
    question: str
    max_tokens: int | None
    temperature: float | None
    top_p: float | None
    seed: int | None
    tts: TTSSpec


def parse_json(raw: bytes) -> dict:
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise bad(f"the body is not valid JSON ({type(exc).__name__})", code="invalid_json") from None
    if not isinstance(body, dict):
        raise bad(f"the body must be a JSON object, got {type(body).__name__}", code="invalid_json")
    return body


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(body: dict, key: str, low: float, high: float, low_open: bool = False) -> float | None:
    v = body.get(key)
    if v is None:
        return None
    ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    ok = ok and (v > low if low_open else v >= low) and v <= high
    if not ok:
        side = "(" if low_open else "["
        raise bad(f"{key} must be a number in {side}{low}, {high}], got {v!r}", key)
    return float(v)


def _int(body: dict, key: str, low: int, high: int, param: str | None = None) -> int | None:
    v = body.get(key)
    if v is None:
        return None
    if not _is_int(v) or not low <= v <= high:
        raise bad(f"{param or key} must be an integer in [{low}, {high}], got {v!r}", param or key)
    return v


def _text(content: object, where: str) -> str:
    """A message's content: a string or a list of {"type": "text", "text": ...} parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if (
                not isinstance(part, dict)
                or part.get("type") != "text"
                or not isinstance(part.get("text"), str)
            ):
                raise bad(f"{where}: only text content parts are supported", where)
            parts.append(part["text"])
        return "\n".join(parts)
    raise bad(f"{where} must be a string or a list of text parts", where)


def question_of_messages(messages: object) -> str:
    """The question: the last user message (system messages are replaced by the policy's prompt)."""
    if not isinstance(messages, list) or not messages:
        raise bad("messages must be a non-empty list", "messages", "missing_required_parameter")
    question = None
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or "content" not in m:
            raise bad(f"messages[{i}] must be an object with role and content", f"messages[{i}]")
        if m["role"] not in ("system", "developer", "user", "assistant", "tool"):
            raise bad(f"messages[{i}].role {m['role']!r} is not a chat role", f"messages[{i}].role")
        if m["role"] == "user":
            question = _text(m["content"], f"messages[{i}].content")
    if question is None:
        raise bad("messages hold no user message", "messages")
    return question


def question_of_prompt(prompt: object) -> str:
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise bad("prompt must be a string (or a list of one string)", "prompt", "missing_required_parameter")
    return prompt


def parse_budget(value: object) -> tuple[str, float]:
    if not isinstance(value, dict) or len(value) != 1:
        raise bad('tts.budget must be an object with one of n, flops, seconds: {"n": 16}', "tts.budget")
    ((kind, amount),) = value.items()
    if kind not in BUDGET_KINDS:
        raise bad(f"tts.budget: unknown kind {kind!r}; give one of {', '.join(BUDGET_KINDS)}", "tts.budget")
    ok = isinstance(amount, int | float) and not isinstance(amount, bool) and math.isfinite(amount)
    if not ok or amount <= 0:
        raise bad(f"tts.budget.{kind} must be a positive finite number, got {amount!r}", f"tts.budget.{kind}")
    return kind, float(amount)


def parse_tts(value: object) -> TTSSpec:
    if value is None:
        return TTSSpec()
    if not isinstance(value, dict):
        raise bad("tts must be an object", "tts")
    unknown = [k for k in value if k not in TTS_KEYS]
    if unknown:
        raise bad(f"tts: unknown field {unknown[0]!r}; known: {', '.join(TTS_KEYS)}", f"tts.{unknown[0]}")
    method = value.get("method")
    if method is not None and method not in METHODS:
        raise bad(f"tts.method: unknown method {method!r}; choose one of {', '.join(METHODS)}", "tts.method")
    for key, choices in (("aggregation", (*AGGREGATIONS, NONE)), ("selection", (*SELECTIONS, NONE))):
        if value.get(key) is not None and value[key] not in choices:
            raise bad(f"tts.{key}: unknown {value[key]!r}; choose one of {', '.join(choices)}", f"tts.{key}")
    for key in ("dataset", "difficulty"):
        if value.get(key) is not None and not isinstance(value[key], str):
            raise bad(f"tts.{key} must be a string", f"tts.{key}")
    candidates = value.get("candidates", False)
    if not isinstance(candidates, bool):
        raise bad("tts.candidates must be true or false", "tts.candidates")
    budget = parse_budget(value["budget"]) if value.get("budget") is not None else None
    n = _int(value, "n", 1, 1024, "tts.n")
    if budget is not None and n is not None:
        raise bad("tts: give n or a budget, not both", "tts.n")
    return TTSSpec(
        method=method,
        n=n,
        beam_width=_int(value, "beam_width", 1, 1024, "tts.beam_width"),
        aggregation=value.get("aggregation"),
        selection=value.get("selection"),
        budget=budget,
        dataset=value.get("dataset"),
        difficulty=value.get("difficulty"),
        candidates=candidates,
    )


def parse_request(body: dict, kind: str, max_tokens_limit: int) -> ServeRequest:
    """A checked request of `kind` ("chat" or "completion")."""
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise bad("model is required (a string)", "model", "missing_required_parameter")
    if body.get("stream"):
        raise bad("stream is not supported: the answer is chosen after every candidate is done", "stream")
    n = body.get("n")
    if n is not None and n != 1:
        raise bad("n must be 1: the samples of test-time scaling are set by tts.n or tts.budget", "n")
    question = (
        question_of_messages(body.get("messages"))
        if kind == "chat"
        else question_of_prompt(body.get("prompt"))
    )
    if not question.strip():
        raise bad("the question is empty", "messages" if kind == "chat" else "prompt")
    key = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    return ServeRequest(
        kind=kind,
        model=model.strip(),
        question=question,
        max_tokens=_int(body, key, 1, max_tokens_limit),
        temperature=_number(body, "temperature", 0.0, 2.0),
        top_p=_number(body, "top_p", 0.0, 1.0, low_open=True),
        seed=_int(body, "seed", 0, MAX_SEED),
        tts=parse_tts(body.get("tts")),
    )
