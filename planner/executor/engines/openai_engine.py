"""Engine over any OpenAI-compatible `/v1/completions` endpoint (vLLM's `vllm serve`, llama.cpp's
server, Ollama, `ttsplan serve`, hosted APIs), with the official `openai` client.

Each completion is one request with n=1, sent concurrently: the server's `usage` then gives the
exact prompt and generated tokens of every completion, and a call with options.seed gives sample j
of a prompt the seed s + j, s mixing the seed with the prompt (the vLLM engine's rule, see
request_seeds), so a run is reproducible on servers that honour `seed`. Connection errors, timeouts and 5xx answers are retried with
exponential backoff; a server that stays away, an unknown model or a refused request is a one-line
UserError.

Prompts are built like the in-process engines build them: with the model's chat template when its
tokenizer is local (an embedded model name or a folder, or `tokenizer=`), else few-shot (no
template). Which stop string ended a completion comes from vLLM's `stop_reason`; a server that does
not report it is read as: an answer in \\boxed{} means the model finished, else the first stop.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

from planner.core.errors import UserError
from planner.executor import embedded
from planner.executor.base import Completion, Generation, SamplingOptions
from planner.executor.engines.common import encode, engine_stops, format_prompt, make_completion
from planner.executor.engines.vllm_engine import request_seeds

BASE_URL_ENV = "TTSPLAN_OPENAI_BASE_URL"
API_KEY_ENV = "TTSPLAN_OPENAI_API_KEY"


def _openai():
    try:
        import openai
    except ImportError:
        raise UserError(
            "the openai engine needs the openai client: pip install 'tts-planner[serve]'"
        ) from None
    return openai


class OpenAIEngine:
    """Engine on a remote OpenAI-compatible completions endpoint.

    base_url: the API root, e.g. http://127.0.0.1:8000/v1 (a URL without /v1 gets it added).
    model: the served model id; None takes the only model the server lists.
    retries / backoff_s: attempts after the first on connection errors, timeouts and 5xx, waiting
    backoff_s, 2*backoff_s, ... between them. concurrency: requests in flight at once.
    """

    per_request_seeds = True  # a request's samples depend on its seed only, not on the rest of the batch

    def __init__(
        self,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        seed: int = 0,
        retries: int = 4,
        backoff_s: float = 0.5,
        timeout_s: float = 600.0,
        concurrency: int = 16,
        tokenizer: str | None = None,
    ) -> None:
        openai = _openai()
        base_url = base_url or os.environ.get(BASE_URL_ENV)
        if not base_url:
            raise UserError(f"base_url: the openai engine needs --base-url (or ${BASE_URL_ENV})")
        base_url = base_url.rstrip("/")
        if not base_url.endswith("/v1"):
            base_url += "/v1"
        self.base_url = base_url
        self.retries = retries
        self.backoff_s = backoff_s
        self.seed = seed
        self._calls = 0
        self.client = openai.OpenAI(
            base_url=base_url,
            api_key=api_key or os.environ.get(API_KEY_ENV) or "none",
            max_retries=0,  # retried here, so that the last failure becomes one line
            timeout=timeout_s,
        )
        self._pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="openai-engine")
        served = [m.id for m in self._call(self.client.models.list).data]
        self.model = self._pick_model(model, served)
        self.name = embedded.canonical_name(self.model)
        self.tokenizer = self._load_tokenizer(tokenizer or self.model)
        self.style = "fewshot" if self.tokenizer is None else self._style(tokenizer or self.model)

    # ------------------------------------------------------------ setup

    def _pick_model(self, model: str | None, served: list[str]) -> str:
        if model is None:
            if len(served) != 1:
                raise UserError(
                    f"policy: {self.base_url} serves {len(served)} models ({', '.join(served) or 'none'}); "
                    "name one with --policy"
                )
            return served[0]
        if model in served:
            return model
        canonical = embedded.canonical_name(model)
        for m in served:  # an alias of an embedded model matches its canonical served name
            if embedded.canonical_name(m) == canonical:
                return m
        raise UserError(
            f"policy: model {model!r} is not served by {self.base_url} (it serves {', '.join(served) or 'none'})"
        )

    @staticmethod
    def _load_tokenizer(name: str):
        """The model's tokenizer when it is on this machine (embedded or a folder), else None."""
        if not embedded.is_embedded(name) and not os.path.isdir(os.path.expanduser(name)):
            return None
        try:
            from transformers import AutoTokenizer
        except ImportError:
            return None
        return AutoTokenizer.from_pretrained(embedded.model_dir(name))

    @staticmethod
    def _style(name: str) -> str:
        return embedded.prompt_style(name)

    # ------------------------------------------------------------ Engine

    def format_prompt(self, problem: str) -> str:
        tokenizer = self.tokenizer or SimpleNamespace(bos_token="")
        return format_prompt(tokenizer, self.style, problem)

    def count_tokens(self, text: str) -> int | None:
        return len(encode(self.tokenizer, text)) if self.tokenizer is not None else None

    def generate(self, prompts: list[str], options: SamplingOptions) -> list[Generation]:
        if options.n < 1 or options.max_tokens < 1:
            raise UserError(
                f"n and max_tokens must be >= 1 (got n={options.n}, max_tokens={options.max_tokens})"
            )
        if not prompts:
            return []
        seed = options.seed if options.seed is not None else self.seed + self._calls
        self._calls += 1
        stops = engine_stops(self.style, tuple(options.stop))
        seeds = request_seeds([[p] for p in prompts], seed, options.n)
        jobs = [(p, s) for p, ss in zip(prompts, seeds, strict=True) for s in ss]
        answers = list(self._pool.map(lambda job: self._complete(job[0], job[1], options, stops), jobs))
        out = []
        for i in range(len(prompts)):
            mine = answers[i * options.n : (i + 1) * options.n]
            out.append(
                Generation(
                    completions=[c for c, _, _ in mine],
                    prompt_tokens=mine[0][1],
                    cached_prompt_tokens=mine[0][2],
                )
            )
        return out

    def _complete(
        self, prompt: str, seed: int, options: SamplingOptions, stops: tuple[str, ...]
    ) -> tuple[Completion, int, int | None]:
        response = self._call(
            self.client.completions.create,
            model=self.model,
            prompt=prompt,
            max_tokens=options.max_tokens,
            temperature=options.temperature,
            top_p=options.top_p,
            n=1,
            seed=seed,
            stop=list(stops) or None,
        )
        choice = response.choices[0]
        usage = response.usage
        if usage is None:
            raise UserError(f"engine openai: {self.base_url} sent no token usage; it cannot be costed")
        details = getattr(usage, "prompt_tokens_details", None)
        cached = getattr(details, "cached_tokens", None) if details is not None else None
        completion = self._completion(choice, usage.completion_tokens, stops, options)
        return completion, usage.prompt_tokens, cached

    @staticmethod
    def _completion(choice, tokens: int, stops: tuple[str, ...], options: SamplingOptions) -> Completion:
        text = choice.text or ""
        user_stops = tuple(options.stop)
        if choice.finish_reason == "length":
            return make_completion(text, tokens, None, False, user_stops, options.include_stop)
        extra = choice.model_extra or {}
        if "stop_reason" in extra:  # vLLM and ttsplan serve: the stop string, or None for EOS
            reason = extra["stop_reason"]
            matched = reason if isinstance(reason, str) and reason in stops else None
        else:
            matched = None if "\\boxed" in text or not user_stops else user_stops[0]
        if matched is not None:
            text += matched  # the server cut the stop string off; make_completion expects it
        return make_completion(text, tokens, matched, matched is None, user_stops, options.include_stop)

    # ------------------------------------------------------------ HTTP with retries

    def _call(self, fn, **kwargs):
        openai = _openai()
        for attempt in range(self.retries + 1):
            try:
                return fn(**kwargs)
            except (openai.APIConnectionError, openai.InternalServerError) as exc:
                if attempt == self.retries:
                    raise UserError(self._describe(exc)) from None
                time.sleep(self.backoff_s * 2**attempt)
            except openai.NotFoundError as exc:
                raise UserError(
                    f"engine openai: {self.base_url}: {_message(exc)} (model {kwargs.get('model')!r})"
                ) from None
            except openai.AuthenticationError:
                raise UserError(f"engine openai: {self.base_url} refused the API key (401)") from None
            except openai.APIStatusError as exc:
                raise UserError(
                    f"engine openai: {self.base_url} answered {exc.status_code}: {_message(exc)}"
                ) from None
        raise AssertionError("unreachable")

    def _describe(self, exc) -> str:
        tries = f"after {self.retries + 1} attempts"
        if isinstance(exc, _openai().InternalServerError):
            return f"engine openai: {self.base_url} answered {exc.status_code} {tries}: {_message(exc)}"
        return f"engine openai: no server answers at {self.base_url} ({type(exc).__name__}, {tries})"

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()


def _message(exc) -> str:
    """The server's error message, on one line."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        msg = inner.get("message") if isinstance(inner, dict) else None
        if msg:
            return " ".join(str(msg).split())
    return " ".join(str(getattr(exc, "message", exc)).split())
