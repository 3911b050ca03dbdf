"""FLOPs of test-time scaling: per token, per call, per problem.

Convention (kept everywhere): a forward pass costs 2 FLOPs per matmul parameter per token
(`ModelSpec.matmul_params`: all parameters but the input-embedding lookup, MoE counted by
active parameters) plus attention: 2*layers*keys*(heads*head_dim) for QK^T and the same for
AV (Kaplan et al. 2020, "Scaling Laws for Neural Language Models", Table 1, with n_ctx =
the keys a token attends to). Causal: the token at position j (1-based) attends to j keys.
Sliding windows are ignored (full attention counted). Backward passes never occur here.

What the executor computes, and so what is charged:
- the output layer (vocab x hidden) runs only where logits are taken: once per prefill (its
  last position) and once per decode pass; verifiers read two token columns at step positions
  (planner.executor.verifiers.batching.logits_at), which is charged nothing;
- g generated tokens take g - 1 decode passes: the first comes from the prefill's logits;
- a problem's first generate call computes its whole prompt (what an earlier problem left in
  the prefix cache is not credited, so a problem's cost does not depend on its neighbours);
  later calls are charged their uncached tokens as the engine reports them;
- a verifier reads each scored sequence in full (no prefix reuse) unless `prm_reused` says
  which part it kept from the same beam's previous read.
`call_flops` and `record_flops` price one record from its stored counts; the planner's
per-problem formulas below count the same calls in expectation (tests/test_cost.py simulates
the executor's calls and compares).

All per-problem functions take numbers or numpy arrays (broadcast together), so a plan search
can price thousands of candidates in one call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from planner.core.errors import UserError
from planner.core.vocab import METHODS
from planner.models.specs import ModelSpec

_ALIASES = {
    "majority_vote": "majority",
    "maj": "majority",
    "bon": "best_of_n",
    "best-of-n": "best_of_n",
    "beam_search": "beam",
}
COT, MAJORITY, BEST_OF_N, BEAM, DVTS = range(len(METHODS))
PRM_METHODS = (BEST_OF_N, BEAM, DVTS)


def method_code(method: str) -> int:
    """Index of a method name in METHODS (aliases accepted)."""
    key = _ALIASES.get(str(method).strip().lower(), str(method).strip().lower())
    if key not in METHODS:
        raise UserError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    return METHODS.index(key)


def method_codes(methods) -> np.ndarray:
    """Array of method codes from names or codes."""
    arr = np.asarray(methods)
    if arr.dtype.kind in "iu":
        if arr.size and (arr.min() < 0 or arr.max() >= len(METHODS)):
            raise UserError(f"method codes must be 0..{len(METHODS) - 1}")
        return arr.astype(np.int64)
    names = np.unique(arr)
    codes = np.empty(arr.shape, dtype=np.int64)
    for name in names:
        codes[arr == name] = method_code(name)
    return codes


# ---------------------------------------------------------------- per token and per call


def _tri(x):
    """1 + 2 + ... + x: keys attended over x causal positions."""
    return x * (x + 1) / 2


def _coefficients(spec: ModelSpec) -> tuple[float, float, float]:
    """(FLOPs per token of the body, of the output layer at one position, per attended key)."""
    if spec.head == "rule":  # a rule-based checker: no model runs
        return 0.0, 0.0, 0.0
    head = 2.0 * spec.vocab * spec.hidden if spec.head == "lm" else 0.0
    return 2.0 * spec.matmul_params - head, head, 4.0 * spec.layers * spec.heads * spec.head_dim


def flops_per_token(spec: ModelSpec, context):
    """Forward FLOPs for one token that attends to `context` keys, logits included."""
    body, head, b = _coefficients(spec)
    return body + head + b * (np.asarray(context, dtype=float) if np.ndim(context) else float(context))


def prefill_flops(spec: ModelSpec, prompt_tokens, cached_tokens=0):
    """FLOPs to process a prompt whose first `cached_tokens` are already in the KV cache; the
    output layer runs at its last position only."""
    body, head, b = _coefficients(spec)
    return body * (prompt_tokens - cached_tokens) + head + b * (_tri(prompt_tokens) - _tri(cached_tokens))


def generation_flops(spec: ModelSpec, prompt_tokens, generated):
    """FLOPs to generate `generated` tokens after a prompt: generated - 1 decode passes (the
    first token comes from the prefill's logits), each with the output layer."""
    body, head, b = _coefficients(spec)
    passes = (
        np.maximum(np.asarray(generated, dtype=float) - 1, 0) if np.ndim(generated) else max(generated - 1, 0)
    )
    return (body + head) * passes + b * (_tri(prompt_tokens + passes) - _tri(prompt_tokens))


def prm_flops(spec: ModelSpec, tokens_scored, reused_prefix_tokens=0):
    """FLOPs for a verifier to read `tokens_scored` new tokens after a kept prefix: the body only
    (its head reads two token columns at step positions, or is a small value head in the body)."""
    body, _, b = _coefficients(spec)
    return body * tokens_scored + b * (
        _tri(reused_prefix_tokens + tokens_scored) - _tri(reused_prefix_tokens)
    )


def call_flops(spec: ModelSpec, prompt_tokens: int, cached_tokens: int, generated: list[int]) -> float:
    """One generate call: one prefill, then each completion's decode passes."""
    total = prefill_flops(spec, prompt_tokens, cached_tokens)
    return float(total + sum(generation_flops(spec, prompt_tokens, g) for g in generated))


def reuses_prefix(prm: ModelSpec | None) -> bool:
    """Whether the executor's verifier keeps each beam's state between tree-search steps: the LM
    judge does (verifiers/prefix_reuse.py, used for beam and dvts); the PRM adapters reread."""
    return prm is not None and prm.family == "lm-judge"


def record_flops(policy: ModelSpec | None, prm: ModelSpec | None, calls, prm_reads) -> dict:
    """FLOPs of one problem's record from its stored counts.

    calls: (prompt, cached, [generated per completion]) per prompt sent, in order; the first
    call's cached tokens are not credited (an earlier problem left them). prm_reads: tokens
    the verifier read per scored sequence, or (tokens, reused prefix tokens) pairs.
    Returns policy, prm and total; None where a model is unknown.
    """
    policy_flops = None
    if policy is not None:
        policy_flops = 0.0
        for i, (prompt, cached, generated) in enumerate(calls):
            policy_flops += call_flops(policy, prompt, 0 if i == 0 else cached, list(generated))
    reads = [(r, 0) if np.ndim(r) == 0 else (r[0], r[1]) for r in prm_reads]
    if not any(t for t, _ in reads):
        prm_flops_total = 0.0
    elif prm is None:
        prm_flops_total = None
    else:
        prm_flops_total = float(sum(prm_flops(prm, t, kept) for t, kept in reads))
    total = None if policy_flops is None or prm_flops_total is None else policy_flops + prm_flops_total
    return {"policy": policy_flops, "prm": prm_flops_total, "total": total}


def pretraining_flops(spec: ModelSpec) -> float | None:
    """6 * nominal parameters * pre-training tokens (Liu et al. 2025, Table 4); None if unknown."""
    if spec.pretraining_tokens is None:
        return None
    return 6.0 * spec.nominal_params * spec.pretraining_tokens


# ---------------------------------------------------------------- workloads


@dataclass(frozen=True)
class Workload:
    """Expected sizes of one problem: prompt tokens and a solution of `steps` steps."""

    prompt_tokens: float
    tokens_per_step: float
    steps: float
    source: str = ""
    # What a verifier reads besides the solution: its own prompt (None: the policy's prompt
    # tokens) and markup per step (e.g. the LM judge's "Is this step correct? Answer:").
    verifier_prompt_tokens: float | None = None
    verifier_step_tokens: float = 0.0

    def __post_init__(self) -> None:
        for key in ("prompt_tokens", "tokens_per_step", "steps"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise UserError(f"workload {key} must be a positive number, got {value!r}")
        for key in ("verifier_prompt_tokens", "verifier_step_tokens"):
            value = getattr(self, key)
            if value is None and key == "verifier_prompt_tokens":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise UserError(f"workload {key} must be a number >= 0, got {value!r}")

    @property
    def solution_tokens(self) -> float:
        return self.tokens_per_step * self.steps


# Liu et al. 2025, Table 1 (Mistral-PRM-Data, the RLHFlow PRM training data): 236.9 tokens per
# response, 46.6 tokens per step. Used for every dataset whose solutions are free text.
TABLE1_TOKENS_PER_RESPONSE = 236.9
TABLE1_TOKENS_PER_STEP = 46.6
_TABLE1 = "solution length: Liu et al. 2025 Table 1, Mistral-PRM-Data (236.9 tokens/response, 46.6/step)"

# Prompt tokens are ESTIMATES: mean characters of the shipped problem text / 4 (no tokenizer is
# installed here). They cover the problem text only, not the chat template or system prompt.
# Measured from planner/data/datasets (tests/test_cost.py recomputes them).
_PROMPT_ESTIMATE = "prompt: estimate, mean characters of the {} problem texts / 4, template not included"
_PROMPT_TOKENS = {"math500": 49.0, "aime24": 83.6, "amc23": 67.3, "gsm8k": 60.0}

WORKLOADS = {
    name: Workload(
        prompt_tokens,
        TABLE1_TOKENS_PER_STEP,
        TABLE1_TOKENS_PER_RESPONSE / TABLE1_TOKENS_PER_STEP,
        f"{_PROMPT_ESTIMATE.format(name)}; {_TABLE1}",
    )
    for name, prompt_tokens in _PROMPT_TOKENS.items()
}
# "arith" (synthetic, planner.core.datasets): MEASURED with the embedded models that run it, from the
# sampling runs of the shipped calibration profiles (ARITH_MEASURED_FROM, T = 0.7, 1,600 samples
# each): per profile the mean prompt tokens (Gemma's few-shot prompt 218, SmolLM2's chat template
# 70), generated tokens per sample and steps per sample ("\n\n"-split), then the mean over profiles.
# tests/test_cost.py recomputes them from profiles/*/runs.
ARITH_MEASURED_FROM = ("cpu_arith_gemma", "cpu_arith_smollm2")
WORKLOADS["arith"] = Workload(
    144.0,
    30.26,
    2.442,
    "measured: mean over the shipped cpu_arith_gemma and cpu_arith_smollm2 sampling runs "
    "(prompt tokens with the model's prompt template, generated tokens and steps per sample)",
)
# Other datasets: mean of the four text datasets' prompt estimates, Table 1 solution length.
GENERIC_WORKLOAD = Workload(
    round(sum(_PROMPT_TOKENS.values()) / len(_PROMPT_TOKENS), 1),
    TABLE1_TOKENS_PER_STEP,
    TABLE1_TOKENS_PER_RESPONSE / TABLE1_TOKENS_PER_STEP,
    f"prompt: mean of the math500/aime24/amc23/gsm8k estimates; {_TABLE1}",
)


def workload_for(dataset: str) -> Workload:
    """The default workload of a dataset ("arith:seed=1" counts as "arith")."""
    base = str(dataset).strip().lower().partition(":")[0]
    return WORKLOADS.get(base, GENERIC_WORKLOAD)


# ---------------------------------------------------------------- per problem


def _pick(cond, yes, no):
    """np.where for plain scalars (a fast path for one configuration)."""
    return yes if cond else no


def _prepare(method, n, beam_width, has_prm: bool):
    """Validated (codes, n, beam_width, scalar); scalars stay Python numbers."""
    scalar = np.ndim(method) == 0 and np.ndim(n) == 0 and np.ndim(beam_width) == 0
    if scalar:
        codes = method_code(method) if isinstance(method, str) else int(method_codes(method))
        for key, value in (("n", n), ("beam_width", beam_width)):
            if isinstance(value, bool) or not isinstance(value, int | float | np.number):
                raise UserError(f"{key} must be a number, got {value!r}")
        n, beam_width = float(n), float(beam_width)
        tree = codes in (BEAM, DVTS)
        bad_n, bad_bw, bad_mult = n < 1, tree and beam_width < 1, tree and n % max(beam_width, 1) != 0
        needs_prm = codes in PRM_METHODS
    else:
        codes = method_codes(method)
        n, beam_width = np.asarray(n), np.asarray(beam_width)
        if n.dtype.kind not in "iuf" or beam_width.dtype.kind not in "iuf":
            raise UserError("n and beam_width must be numbers")
        codes, n, beam_width = np.broadcast_arrays(codes, n.astype(float), beam_width.astype(float))
        tree = (codes == BEAM) | (codes == DVTS)
        bad_n = bool(np.any(n < 1))
        bad_bw = bool(np.any(tree & (beam_width < 1)))
        bad_mult = bool(np.any(tree & (np.mod(n, np.maximum(beam_width, 1)) != 0)))
        needs_prm = bool(np.any(np.isin(codes, PRM_METHODS)))
    if bad_n:
        raise UserError(f"n must be at least 1, got {np.min(n)!r}")
    if bad_bw:
        raise UserError(f"beam_width must be at least 1, got {np.min(beam_width)!r}")
    if bad_mult:
        raise UserError("n must be a multiple of beam_width for beam and dvts")
    if needs_prm and not has_prm:
        raise UserError("best_of_n, beam and dvts need a PRM; give prm_spec")
    return codes, n, beam_width, scalar


def _sum_tri(p, t, s, first):
    """Sum over k = first..first+s-1 of tri(p + k*t), closed form (s may be fractional)."""
    k1 = s * first + s * (s - 1) / 2  # sum of k
    k2 = s * first**2 + first * s * (s - 1) + (s - 1) * s * (2 * s - 1) / 6  # sum of k^2
    sum_x = s * p + t * k1
    sum_x2 = s * p * p + 2 * p * t * k1 + t * t * k2
    return (sum_x2 + sum_x) / 2


VLLM_BLOCK = 16  # vLLM's KV block size on GPUs; its CPU backend uses 128 (hardware.Hardware.cache_block)


def cache_block(prefix_caching) -> int:
    """Block size in tokens of a prefix cache: True is vLLM's GPU default, an int a block size,
    False or 0 none."""
    if prefix_caching is True:
        return VLLM_BLOCK
    if not prefix_caching:
        return 0
    if isinstance(prefix_caching, bool) or not isinstance(prefix_caching, int) or prefix_caching < 1:
        raise UserError(f"prefix_caching: True, False or a block size >= 1, got {prefix_caching!r}")
    return prefix_caching


def _later_calls(p: float, t: float, s: float, block: int) -> tuple[float, float]:
    """Tokens computed, and keys they attend, summed over one parent's calls at steps 1..s-1 (the
    last step weighted by the fraction of s): a prefix P = p + k*t reuses its full blocks
    below its last token and computes the rest (P - block * floor((P - 1) / block) tokens)."""
    tokens = keys = 0.0
    k = 1
    while k < s:
        weight = min(1.0, s - k)
        prefix = p + k * t
        tail = prefix - block * np.floor((prefix - 1) / block)
        tokens += weight * tail
        keys += weight * (_tri(prefix) - _tri(prefix - tail))
        k += 1
    return float(tokens), float(keys)


def _problem_counts(
    codes, n, beam_width, workload: Workload, prefix_caching, prm_reuse, scalar: bool
) -> dict:
    """Token and attended-key counts per problem, for one config or arrays of them.

    Counts the executor's generate calls: cot, majority and best_of_n send one prompt with n
    completions; beam sends the prompt once (n first steps), then each of its n/M kept beams
    once per step (M children each); dvts sends each of its n/M subtrees once per step. Every
    call runs one prefill (logits at its last position); a completion of g tokens takes g - 1
    decode passes. With prefix caching (blocks of `cache_block(prefix_caching)` tokens, as vLLM
    keeps them) the first call computes the prompt and every later one the tail of its prefix
    after its last full block; without, every prefix in full.
    `*_tokens` count tokens given to a model, `*_keys` the keys attended by the tokens computed.
    """
    where = _pick if scalar else np.where
    p, t, s = workload.prompt_tokens, workload.tokens_per_step, workload.steps
    g = workload.solution_tokens
    if scalar:
        tree, uses_prm = codes in (BEAM, DVTS), codes in PRM_METHODS
    else:
        tree, uses_prm = (codes == BEAM) | (codes == DVTS), np.isin(codes, PRM_METHODS)
    samples = where(codes == COT, 1.0, n)
    parents = samples / (
        np.maximum(beam_width, 1) if not scalar else max(beam_width, 1)
    )  # kept beams or subtrees
    beam = codes == BEAM

    # Policy calls and the prompt tokens they send (a prefix: prompt + the steps so far).
    tree_calls = where(beam, 1.0 + (s - 1) * parents, s * parents)
    calls = where(tree, tree_calls, 1.0)
    sent_beam = p + parents * ((s - 1) * p + t * s * (s - 1) / 2)
    sent_dvts = parents * (s * p + t * s * (s - 1) / 2)
    prompt_tokens = where(tree, where(beam, sent_beam, sent_dvts), p + 0 * samples)
    keys_beam = _tri(p) + parents * _sum_tri(p, t, s - 1, 1)
    keys_dvts = parents * _sum_tri(p, t, s, 0)
    full_keys = where(tree, where(beam, keys_beam, keys_dvts), _tri(p) + 0 * samples)
    block = cache_block(prefix_caching)
    if block:
        # every call after the first computes its prefix's tail after the last full cached
        # block: dvts's other n/M - 1 first-step prompts, then every parent's later steps
        tail, tail_keys = _later_calls(p, t, s, block)
        first = p - block * np.floor((p - 1) / block)
        first_keys = _tri(p) - _tri(p - first)
        computed = where(beam, p + parents * tail, p + (parents - 1) * first + parents * tail)
        prompt_keys = where(
            beam,
            _tri(p) + parents * tail_keys,
            _tri(p) + (parents - 1) * first_keys + parents * tail_keys,
        )
        computed = where(tree, computed, p + 0 * samples)
        prompt_keys = where(tree, prompt_keys, _tri(p) + 0 * samples)
    else:
        computed = prompt_tokens
        prompt_keys = full_keys
    # Decode: every completion of t (tree, per step) or g tokens takes one pass fewer.
    passes = where(tree, samples * s * max(t - 1, 0), samples * max(g - 1, 0))
    gen_keys_tree = samples * (_sum_tri(p + max(t - 1, 0), t, s, 0) - _sum_tri(p, t, s, 0))
    gen_keys = where(tree, gen_keys_tree, samples * (_tri(p + max(g - 1, 0)) - _tri(p)))

    # Verifier: best_of_n reads n full solutions; tree methods read every child at every step
    # with its prefix. With reuse (a beam's KV kept between steps) only the new step is read.
    # It reads its own prompt q and each step with its markup (tv tokens).
    q = p if workload.verifier_prompt_tokens is None else workload.verifier_prompt_tokens
    tv = t + workload.verifier_step_tokens
    gv = tv * s
    prm_tokens = where(tree, samples * (s * q + tv * s * (s + 1) / 2), samples * (q + gv))
    if prm_reuse:
        prm_computed = where(tree, q + samples * gv, samples * (q + gv))
        prm_keys = where(tree, _tri(q) + samples * (_tri(q + gv) - _tri(q)), samples * _tri(q + gv))
    else:
        prm_computed = prm_tokens
        prm_keys = where(tree, samples * _sum_tri(q, tv, s, 1), samples * _tri(q + gv))
    zero = 0 * samples
    return {
        "policy_calls": calls + zero,
        "policy_prompt_tokens": prompt_tokens + zero,
        "cached_prompt_tokens": prompt_tokens - computed + zero,
        "policy_prompt_keys": prompt_keys + zero,
        "policy_generated_tokens": where(tree, samples * s * t, samples * g),
        "decode_passes": passes,
        "policy_generated_keys": gen_keys,
        "prm_tokens": where(uses_prm, prm_tokens, zero),
        "prm_cached_tokens": where(uses_prm, prm_tokens - prm_computed, zero),
        "prm_keys": where(uses_prm, prm_keys, zero),
    }


def expected_tokens(
    method, n, beam_width, workload: Workload, prefix_caching: bool = True, prm_reuse: bool = False
) -> dict:
    """Expected tokens per problem: policy prompt (incl. cached), generated, verifier read.

    cot: one sample (n and beam_width ignored). majority and best_of_n: one call with n
    samples (the prompt computed once). beam: the prompt with n first steps, then n/M kept
    beams per step with M children each; dvts: n/M subtrees per step with M children each
    (the same children as beam; n/M prompts at the first step). Verifier: best_of_n reads n full
    solutions, beam and dvts every child with its prefix (`prm_cached_tokens`: the part kept
    from the beam's previous read when prm_reuse). Floats for scalars, arrays for arrays.
    """
    codes, n, beam_width, scalar = _prepare(method, n, beam_width, has_prm=True)
    counts = _problem_counts(codes, n, beam_width, workload, prefix_caching, prm_reuse, scalar)
    keys = (
        "policy_prompt_tokens",
        "cached_prompt_tokens",
        "policy_generated_tokens",
        "prm_tokens",
        "prm_cached_tokens",
    )
    return {k: counts[k] for k in keys}


def config_flops_parts(
    policy_spec: ModelSpec,
    prm_spec: ModelSpec | None,
    method,
    n,
    beam_width,
    workload: Workload,
    prefix_caching: bool = True,
    prm_reuse: bool = False,
) -> dict:
    """FLOPs per problem split into policy_prefill, policy_decode and prm (plus token counts)."""
    codes, n, beam_width, scalar = _prepare(method, n, beam_width, prm_spec is not None)
    c = _problem_counts(codes, n, beam_width, workload, prefix_caching, prm_reuse, scalar)
    prm = (0.0, 0.0, 0.0) if prm_spec is None else _coefficients(prm_spec)
    return _parts(c, _coefficients(policy_spec), prm)


def _parts(c: dict, policy: tuple, prm: tuple) -> dict:
    """FLOPs parts from a configuration's counts and the models' coefficients (numbers, or
    arrays with one entry per configuration)."""
    body, head, b = policy
    pbody, _, pb = prm
    computed_prompt = c["policy_prompt_tokens"] - c["cached_prompt_tokens"]
    parts = {
        "policy_prefill": body * computed_prompt + head * c["policy_calls"] + b * c["policy_prompt_keys"],
        "policy_decode": (body + head) * c["decode_passes"] + b * c["policy_generated_keys"],
        "prm": pbody * (c["prm_tokens"] - c["prm_cached_tokens"]) + pb * c["prm_keys"],
    }
    parts["total"] = parts["policy_prefill"] + parts["policy_decode"] + parts["prm"]
    parts.update({k: c[k] for k in ("policy_generated_tokens", "policy_prompt_tokens", "prm_tokens")})
    parts["computed_prompt_tokens"] = computed_prompt
    return parts


def rows_flops(
    policy_specs: Sequence[ModelSpec],
    prm_specs: Sequence[ModelSpec | None],
    method,
    n,
    beam_width,
    workload: Workload,
    prefix_caching: bool = True,
    *,
    policy_rows=None,
    prm_rows=None,
) -> np.ndarray:
    """config_flops of configurations that each name their own policy and PRM (one spec per
    row; prm_reuse per row from reuses_prefix): the token counts are computed once for all
    rows (they do not depend on the models), then weighted by each row's coefficients.
    policy_rows / prm_rows: per row, an index into policy_specs / prm_specs, which then list
    each distinct spec once (a table repeating a few models)."""
    policy_rows = _spec_rows(policy_specs, policy_rows, "policy")
    prm_rows = _spec_rows(prm_specs, prm_rows, "prm")
    if not len(policy_rows) == len(prm_rows) == len(method):
        raise UserError("policy_specs, prm_specs and method must have one entry per row")
    codes, n, beam_width, _ = _prepare(method, n, beam_width, has_prm=True)
    no_prm = np.array([s is None for s in prm_specs], dtype=bool)[prm_rows]
    if (no_prm & np.isin(codes, PRM_METHODS)).any():
        raise UserError("best_of_n, beam and dvts need a PRM; give prm_spec")
    # each spec a row names: its coefficients and reuse once
    policy_c, prm_c = np.zeros((len(policy_specs), 3)), np.zeros((len(prm_specs), 3))
    prm_reuse = np.zeros(len(prm_specs), dtype=bool)
    for i in np.unique(policy_rows).tolist():
        policy_c[i] = _coefficients(policy_specs[i])
    for i in np.unique(prm_rows).tolist():
        if prm_specs[i] is not None:
            prm_c[i] = _coefficients(prm_specs[i])
        prm_reuse[i] = reuses_prefix(prm_specs[i])
    policy, prm, reuse = policy_c[policy_rows], prm_c[prm_rows], prm_reuse[prm_rows]
    out = np.empty(len(codes))
    for value in np.unique(reuse):
        rows = np.flatnonzero(reuse == value)
        c = _problem_counts(
            codes[rows], n[rows], beam_width[rows], workload, prefix_caching, bool(value), False
        )
        out[rows] = _parts(c, tuple(policy[rows].T), tuple(prm[rows].T))["total"]
    return out


def _spec_rows(specs: Sequence, rows, name: str) -> np.ndarray:
    """Per row, the index of its spec (each row its own when `rows` is None)."""
    if rows is None:
        return np.arange(len(specs))
    rows = np.asarray(rows, dtype=np.intp)
    if len(rows) and (rows.min() < 0 or rows.max() >= len(specs)):
        raise UserError(f"{name}_rows must index {name}_specs (0..{len(specs) - 1})")
    return rows


def config_flops(
    policy_spec: ModelSpec,
    prm_spec: ModelSpec | None,
    method,
    n,
    beam_width,
    workload: Workload,
    prefix_caching: bool = True,
    prm_reuse: bool = False,
):
    """Total FLOPs per problem (policy + PRM). Scalars give a float, arrays an array.

    prefix_caching: the policy engine keeps prefixes (vLLM); prm_reuse: the verifier keeps each
    beam's state between steps (off: the executor's verifiers reread every prefix)."""
    return config_flops_parts(
        policy_spec, prm_spec, method, n, beam_width, workload, prefix_caching, prm_reuse
    )["total"]
