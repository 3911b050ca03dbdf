"""The HTTP app: OpenAI-compatible /v1/chat/completions, /v1/completions and /v1/models, plus /health
and Prometheus /metrics. Each request's strategy comes from planner.serve.strategy, runs through the
batching queue (planner.serve.batching) and is answered as an ordinary completion whose `usage` holds
prompt, completion and verifier tokens, plus a `tts` object (what ran, what it cost, what the planner
predicted). Bad input of any kind is an OpenAI-style JSON error with a 4xx status.
"""

from __future__ import annotations

import asyncio
import copy
import hmac
import time
import uuid
from dataclasses import dataclass, replace

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from planner.core.errors import UserError
from planner.executor import embedded
from planner.executor.engines.common import encode
from planner.executor.runner import FlopCounter
from planner.serve.batching import Batcher, Cancelled
from planner.serve.metrics import Metrics
from planner.serve.schema import APIError, ServeRequest, bad, parse_json, parse_request
from planner.serve.strategy import Choice, Strategist

POLL_S = 0.1  # how often a waiting request checks that its client is still there


@dataclass(frozen=True)
class Settings:
    api_key: str | None = None
    max_tokens: int = 512  # per solution; a request may ask for fewer
    max_prompt_tokens: int = 1024  # the question in its prompt template
    max_body_bytes: int = 1 << 20


class KeyCheck:
    """ASGI middleware: without the API key (Authorization: Bearer KEY) every path but /health
    answers 401 and nothing else runs."""

    def __init__(self, app, key: str) -> None:
        self.app = app
        self.key = key.encode()

    def _ok(self, scope) -> bool:
        headers = dict(scope.get("headers") or [])
        auth = headers.get(b"authorization", b"")
        token = auth[7:].strip() if auth[:7].lower() == b"bearer " else headers.get(b"x-api-key", b"")
        return hmac.compare_digest(token, self.key)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"] != "/health" and not self._ok(scope):
            error = APIError(
                401, "invalid or missing API key (Authorization: Bearer KEY)", code="invalid_api_key"
            )
            await JSONResponse(error.body(), 401, headers={"WWW-Authenticate": "Bearer"})(
                scope, receive, send
            )
            return
        await self.app(scope, receive, send)


class Service:
    """Everything a request needs: the engine, verifier, strategist, batcher, metrics."""

    def __init__(
        self, engine, verifier, strategist: Strategist, settings: Settings, batcher: Batcher | None = None
    ):
        self.engine = engine
        self.verifier = verifier
        self.strategist = strategist
        self.settings = settings
        self.metrics = Metrics()
        self.batcher = batcher or Batcher(engine, verifier, on_batch=self._on_batch)
        if batcher is not None:
            batcher.on_batch = self._on_batch
        # a tokenizer of our own: the engine's is busy on the worker thread
        tokenizer = getattr(engine, "tokenizer", None)
        self.tokenizer = copy.deepcopy(tokenizer) if tokenizer is not None else None
        self.flops = FlopCounter(engine.name, getattr(verifier, "spec_name", None))
        self.created = int(time.time())

    def _on_batch(self, size: int, wall_s: float) -> None:
        self.metrics.batch.observe(size)

    def close(self) -> None:
        """Stop the batcher, then the engine and verifier (vLLM's engine runs in child processes
        that outlive a server which only returns)."""
        self.batcher.close()
        for part in (self.engine, self.verifier):
            close = getattr(part, "close", None)
            if close is not None:
                close()

    # ------------------------------------------------------------ checks

    def check_model(self, name: str) -> None:
        served = self.engine.name
        if (
            name == served
            or name == getattr(self.engine, "model", None)
            or embedded.canonical_name(name) == served
        ):
            return
        raise APIError(
            404,
            f"model {name!r} is not served here; this server serves {served!r}",
            "model",
            "model_not_found",
        )

    def check_length(self, question: str) -> None:
        limit = self.settings.max_prompt_tokens
        if self.tokenizer is not None:
            size, unit = len(encode(self.tokenizer, self.engine.format_prompt(question))), "tokens"
        else:  # no local tokenizer (a remote model): about 4 characters a token
            size, unit, limit = len(question), "characters", 4 * limit
        if size > limit:
            raise bad(
                f"the prompt has {size} {unit}, more than this server's limit of {limit}",
                "messages",
                "context_length_exceeded",
            )

    def config_for(self, req: ServeRequest, choice: Choice):
        total = req.max_tokens or self.settings.max_tokens
        changes = {"max_total_tokens": total, "max_step_tokens": min(choice.config.max_step_tokens, total)}
        if req.temperature is not None:
            changes["temperature"] = req.temperature
        if req.top_p is not None:
            changes["top_p"] = req.top_p
        try:
            return replace(choice.config, **changes)
        except UserError as exc:
            raise bad(str(exc)) from None

    # ------------------------------------------------------------ answering

    def answer(self, req: ServeRequest, choice: Choice, config, outcome, wall_s: float) -> dict:
        result = outcome.result
        policy_flops = self.flops.policy_flops(result)
        prm_flops = self.flops.prm_flops(result) if config.uses_verifier else 0.0
        flops = None if policy_flops is None or prm_flops is None else policy_flops + prm_flops
        usage = {
            "prompt_tokens": result.policy_prompt_tokens,
            "completion_tokens": result.policy_generated_tokens,
            "total_tokens": result.policy_prompt_tokens + result.policy_generated_tokens,
            "verifier_tokens": result.prm_tokens,
        }
        tts = {
            **choice.info(),
            "n": config.n,
            "seed": outcome.seed,
            "verifier": self.verifier.name if config.uses_verifier else None,
            "answer": result.answer,
            "flops": flops,
            "policy_flops": policy_flops,
            "verifier_flops": prm_flops,
            "candidates_count": len(result.candidates),
            "batch_size": outcome.batch_size,
            "wall_s": round(wall_s, 4),
        }
        if req.tts.candidates:
            tts["candidates"] = [
                {k: c.get(k) for k in ("text", "answer", "score", "step_scores") if k in c}
                for c in result.candidates
            ]
        ident, now = uuid.uuid4().hex, int(time.time())
        if req.kind == "chat":
            choices = [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": result.text},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ]
            head = {"id": f"chatcmpl-{ident}", "object": "chat.completion"}
        else:
            choices = [{"index": 0, "text": result.text, "finish_reason": "stop", "logprobs": None}]
            head = {"id": f"cmpl-{ident}", "object": "text_completion"}
        m = self.metrics
        for kind in ("prompt", "completion", "verifier"):
            m.tokens.labels(kind, config.method).inc(usage[f"{kind}_tokens"])
        if flops is not None:
            m.flops.labels(config.method).inc(flops)
        m.latency.labels(config.method).observe(wall_s)
        return {
            **head,
            "created": now,
            "model": self.engine.name,
            "choices": choices,
            "usage": usage,
            "tts": tts,
        }

    async def read_body(self, request: Request) -> bytes:
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise APIError(413, f"the body is larger than {limit} bytes", code="body_too_large")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise APIError(413, f"the body is larger than {limit} bytes", code="body_too_large")
            chunks.append(chunk)
        return b"".join(chunks)

    async def wait(self, job, request: Request):
        future = asyncio.wrap_future(job.future)
        try:
            while True:
                done, _ = await asyncio.wait({future}, timeout=POLL_S)
                if done:
                    return future.result()
                if await request.is_disconnected():
                    job.cancel()
                    raise Cancelled()
        except asyncio.CancelledError:
            job.cancel()
            raise

    async def handle(self, request: Request, kind: str, endpoint: str) -> Response:
        t0 = time.perf_counter()
        method = "none"
        try:
            with self.batcher.arriving():  # a batch being gathered waits for this request
                body = parse_json(await self.read_body(request))
                req = parse_request(body, kind, self.settings.max_tokens)
                self.check_model(req.model)
                self.check_length(req.question)
                choice = await run_in_threadpool(self.strategist.choose, req.tts)
                config = self.config_for(req, choice)
                method = config.method
                job = self.batcher.submit(req.question, config, req.seed)
            outcome = await self.wait(job, request)
            answer = self.answer(req, choice, config, outcome, time.perf_counter() - t0)
            self.metrics.requests.labels(endpoint, method, "200").inc()
            return JSONResponse(answer)
        except APIError as exc:
            self.metrics.requests.labels(endpoint, method, str(exc.status)).inc()
            return JSONResponse(exc.body(), exc.status)
        except Cancelled:
            self.metrics.cancelled.inc()
            self.metrics.requests.labels(endpoint, method, "499").inc()
            return Response(status_code=499)
        except UserError as exc:  # the engine or verifier could not answer (a remote backend away)
            self.metrics.requests.labels(endpoint, method, "502").inc()
            error = APIError(502, f"the policy backend failed: {exc}", code="backend_error")
            return JSONResponse(error.body(), 502)


def create_app(service: Service) -> FastAPI:
    app = FastAPI(title="ttsplan serve", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = service

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        error = APIError(
            exc.status_code, str(exc.detail), code="not_found" if exc.status_code == 404 else None
        )
        return JSONResponse(error.body(), exc.status_code)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        error = APIError(500, f"internal error ({type(exc).__name__})", code="internal_error")
        return JSONResponse(error.body(), 500)

    @app.get("/health")
    async def health():
        return {
            "status": "ok",
            "model": service.engine.name,
            "verifier": getattr(service.verifier, "name", None),
            "default": service.strategist.default.info(),
        }

    @app.get("/metrics")
    async def metrics():
        data, content_type = service.metrics.render()
        return Response(data, media_type=content_type)

    @app.get("/v1/models")
    async def models():
        model = {
            "id": service.engine.name,
            "object": "model",
            "created": service.created,
            "owned_by": "tts-planner",
        }
        return {"object": "list", "data": [model]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        return await service.handle(request, "chat", "chat")

    @app.post("/v1/completions")
    async def completions(request: Request):
        return await service.handle(request, "completion", "completions")

    if service.settings.api_key:
        app.add_middleware(KeyCheck, key=service.settings.api_key)
    return app
