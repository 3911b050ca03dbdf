"""Engine on plain transformers: batched, left-padded, seeded generation with stop strings.

Stop strings follow vLLM's rules, so that both engines agree: generation of a sequence ends at
the first token whose text completes a stop string; the text is cut right after that string
(or before it, without include_stop) and the token count includes that token.
"""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, StoppingCriteria, StoppingCriteriaList

from planner.core.errors import UserError
from planner.executor import embedded
from planner.executor.base import Completion, Generation, SamplingOptions
from planner.executor.engines.common import encode, engine_stops, first_stop, format_prompt, make_completion

_DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32, "float16": torch.float16}


class _StopOnStrings(StoppingCriteria):
    """Marks a row done when the text it generated so far contains a stop string."""

    def __init__(self, tokenizer, stops: tuple[str, ...], prompt_len: int) -> None:
        self.tokenizer = tokenizer
        self.stops = stops
        self.prompt_len = prompt_len
        # enough trailing tokens to hold any stop string (a token has at least one character)
        self.window = max(len(s) for s in stops) + 2

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        start = max(self.prompt_len, input_ids.shape[1] - self.window)
        tails = self.tokenizer.batch_decode(input_ids[:, start:], skip_special_tokens=True)
        for row, tail in enumerate(tails):
            done[row] = any(stop in tail for stop in self.stops)
        return done


class HFEngine:
    """Engine on transformers' generate.

    model: embedded name (see planner.executor.embedded) or a folder with config.json.
    seed: a call with options.seed=None uses seed + (number of earlier calls), so a run is
    reproducible from the engine seed; options.seed fixes one call.
    batch_size: most sequences (prompts x n) in one generate call.
    threads: torch CPU threads (process-wide); None leaves torch's setting. On a busy
    machine 1 thread can be much faster than 2 (measured: 3 s vs 19-35 s for 32 tokens).
    """

    def __init__(
        self,
        model: str,
        seed: int = 0,
        dtype: str = "bfloat16",
        device: str | None = None,
        batch_size: int = 32,
        threads: int | None = None,
    ) -> None:
        if dtype not in _DTYPES:
            raise UserError(f"dtype {dtype!r} is not one of {', '.join(_DTYPES)}")
        self.name = embedded.canonical_name(model)
        self.path = embedded.model_dir(model)
        self.style = embedded.prompt_style(model)
        self.seed = seed
        self.batch_size = batch_size
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if threads is not None:
            torch.set_num_threads(threads)
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        self.model = AutoModelForCausalLM.from_pretrained(self.path, dtype=_DTYPES[dtype]).to(self.device)
        self.model.eval()
        eos = self.model.generation_config.eos_token_id
        eos = eos if isinstance(eos, list) else [eos] if eos is not None else []
        if self.tokenizer.eos_token_id is not None and self.tokenizer.eos_token_id not in eos:
            eos.append(self.tokenizer.eos_token_id)
        self.eos_ids = set(eos)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else eos[0]
        self._calls = 0

    def format_prompt(self, problem: str) -> str:
        return format_prompt(self.tokenizer, self.style, problem)

    def count_tokens(self, text: str) -> int:
        return len(encode(self.tokenizer, text))

    def generate(self, prompts: list[str], options: SamplingOptions) -> list[Generation]:
        if options.n < 1 or options.max_tokens < 1:
            raise UserError(
                f"n and max_tokens must be >= 1 (got n={options.n}, max_tokens={options.max_tokens})"
            )
        if options.seeds is not None and len(options.seeds) != len(prompts):
            raise UserError(f"seeds: one per prompt, got {len(options.seeds)} for {len(prompts)} prompts")
        # one generator per call: every row of a batch draws its own random numbers from it, so
        # per-prompt seeds only fix the call's start (the first prompt's seed)
        seed = options.seeds[0] if options.seeds else options.seed
        seed = seed if seed is not None else self.seed + self._calls
        self._calls += 1
        torch.manual_seed(seed)
        ids = [encode(self.tokenizer, p) for p in prompts]
        per_call = max(1, self.batch_size // options.n)
        results = []
        for start in range(0, len(ids), per_call):
            results.extend(self._generate_batch(ids[start : start + per_call], options))
        return results

    @torch.inference_mode()
    def _generate_batch(self, ids: list[list[int]], options: SamplingOptions) -> list[Generation]:
        width = max(len(x) for x in ids)
        input_ids = torch.full((len(ids), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for row, x in enumerate(ids):  # left padding
            input_ids[row, width - len(x) :] = torch.tensor(x, dtype=torch.long)
            mask[row, width - len(x) :] = 1
        stops = engine_stops(self.style, tuple(options.stop))
        criteria = StoppingCriteriaList([_StopOnStrings(self.tokenizer, stops, width)]) if stops else None
        sample = options.temperature > 0
        out = self.model.generate(
            input_ids=input_ids.to(self.device),
            attention_mask=mask.to(self.device),
            max_new_tokens=options.max_tokens,
            do_sample=sample,
            temperature=options.temperature if sample else None,
            top_p=options.top_p if sample else None,
            top_k=0 if sample else None,
            num_return_sequences=options.n,
            stopping_criteria=criteria,
            eos_token_id=sorted(self.eos_ids),
            pad_token_id=self.pad_id,
        )
        new = out[:, width:].tolist()
        return [
            Generation(
                completions=[
                    self._completion(new[i * options.n + j], stops, options) for j in range(options.n)
                ],
                prompt_tokens=len(x),
                cached_prompt_tokens=None,
            )
            for i, x in enumerate(ids)
        ]

    def _completion(self, tokens: list[int], stops: tuple[str, ...], options: SamplingOptions) -> Completion:
        eos_at = next((k for k, t in enumerate(tokens) if t in self.eos_ids), None)
        if eos_at is not None:
            tokens = tokens[: eos_at + 1]  # count the EOS token, as vLLM does
        else:
            tokens = tokens[: options.max_tokens]
        decode = self._decoder(tokens)
        if stops and first_stop(decode(len(tokens)), stops) is not None:
            k = self._first_stop_token(decode, len(tokens), stops)
            start, stop = first_stop(decode(k), stops)
            text = decode(k)[: start + len(stop)]
            return make_completion(text, k, stop, False, tuple(options.stop), options.include_stop)
        return make_completion(decode(len(tokens)), len(tokens), None, eos_at is not None, (), True)

    def _decoder(self, tokens: list[int]):
        cache: dict[int, str] = {}

        def decode(k: int) -> str:
            if k not in cache:
                cache[k] = self.tokenizer.decode(tokens[:k], skip_special_tokens=True)
            return cache[k]

        return decode

    @staticmethod
    def _first_stop_token(decode, n: int, stops: tuple[str, ...]) -> int:
        """Smallest k such that the text of the first k tokens holds a stop string."""
        lo, hi = 1, n
        while lo < hi:
            mid = (lo + hi) // 2
            if first_stop(decode(mid), stops) is not None:
                hi = mid
            else:
                lo = mid + 1
        return lo
