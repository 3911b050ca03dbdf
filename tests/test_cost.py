"""Cost model: FLOPs per token and per problem, workloads, hardware time, `ttsplan cost`."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from planner.cli.main import main
from planner.core.errors import UserError
from planner.models import cost
from planner.models.cost import (
    METHODS,
    Workload,
    config_flops,
    config_flops_parts,
    expected_tokens,
    flops_per_token,
    generation_flops,
    prefill_flops,
    pretraining_flops,
    prm_flops,
    workload_for,
)
from planner.models.hardware import PROFILES, dollars, get_hardware, seconds, time_breakdown
from planner.models.specs import resolve

DATA = Path(__file__).parent / "data"
POLICY = resolve("Llama-3.2-1B-Instruct")
PRM = resolve("Skywork-PRM-1.5B")


# ---------------------------------------------------------------- Table 4


def test_table4_pretraining_flops_within_one_percent():
    with open(DATA / "liu2025_table4_flops.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and all(r["source"] for r in rows)
    for row in rows:
        spec = resolve(row["policy_model"])
        ours = pretraining_flops(spec)
        assert abs(ours - float(row["pretraining_flops"])) / float(row["pretraining_flops"]) < 0.01
        total = ours + float(row["inference_flops"])  # the table's total adds the inference cost
        assert abs(total - float(row["total_flops"])) / float(row["total_flops"]) < 0.01


def test_pretraining_unknown_tokens_is_none():
    assert pretraining_flops(resolve("peiyi9979/mistral-7b-sft")) is None


# ---------------------------------------------------------------- per token


def test_flops_per_token_convention_by_hand():
    # Llama-3.2-1B: 1,235,814,400 parameters, tied (the table is the LM head), 16 layers, 32x64.
    assert flops_per_token(POLICY, 0) == 2 * 1_235_814_400
    assert flops_per_token(POLICY, 1000) == 2 * 1_235_814_400 + 2 * 2 * 16 * 1000 * 32 * 64
    ctx = np.array([0, 10, 100])
    assert np.allclose(flops_per_token(POLICY, ctx), [flops_per_token(POLICY, int(c)) for c in ctx])


def test_moe_uses_active_params():
    r1 = resolve("deepseek-r1")
    assert flops_per_token(r1, 0) == pytest.approx(2 * (r1.active_params - 129280 * 7168))
    assert flops_per_token(r1, 0) < 0.06 * 2 * r1.params


@pytest.mark.parametrize(
    "name", ["HuggingFaceTB/SmolLM2-135M-Instruct", "google/gemma-3-270m", "Qwen/Qwen2.5-1.5B-Instruct"]
)
def test_matmul_flops_match_torch_flop_counter(name):
    """torch's FLOP counter over a real (meta-device) forward pass agrees with the convention.

    Eager attention computes the full L x L score matrix before masking, so the counter sees
    L*L keys where the causal count uses 1+2+...+L.
    """
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    from tests.test_specs import meta_model, registry_config

    spec = resolve(name)
    model = meta_model(registry_config(name))
    length = 64
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros((1, length), dtype=torch.long, device="meta"))
    head = 2 * spec.vocab * spec.hidden  # the meta forward takes logits at every position
    full = (
        prefill_flops(spec, length)
        + head * (length - 1)
        + 2 * 2 * spec.layers * spec.heads * spec.head_dim * (length * length - length * (length + 1) / 2)
    )
    assert counter.get_total_flops() == pytest.approx(full, rel=1e-3)  # norms are not counted there


def _loop(spec, first, last, logits=True):
    """FLOPs of the tokens at positions first..last, each attending to its position's keys."""
    head = 0 if logits else 2 * spec.vocab * spec.hidden * (spec.head == "lm")
    return sum(flops_per_token(spec, j) - head for j in range(first, last + 1))


def test_closed_forms_match_loops():
    head = 2 * POLICY.vocab * POLICY.hidden
    # a prefill takes logits at its last position only
    assert prefill_flops(POLICY, 57) == pytest.approx(_loop(POLICY, 1, 57, logits=False) + head)
    assert prefill_flops(POLICY, 57, cached_tokens=20) == pytest.approx(_loop(POLICY, 21, 57, False) + head)
    # 33 generated tokens: the first from the prefill's logits, then 32 decode passes at 58..89
    assert generation_flops(POLICY, 57, 33) == pytest.approx(_loop(POLICY, 58, 89))
    assert generation_flops(POLICY, 57, 1) == 0 and generation_flops(POLICY, 57, 0) == 0
    # a verifier read is the body only (PRM here has an LM head: it reads two token columns)
    assert prm_flops(PRM, 40, reused_prefix_tokens=25) == pytest.approx(_loop(PRM, 26, 65, logits=False))
    assert prm_flops(PRM, 40) == pytest.approx(_loop(PRM, 1, 40, logits=False))


# ---------------------------------------------------------------- per problem


def simulate(method, n, m, p, t, s, caching, reuse):
    """The executor's calls for one problem: policy (prompt, cached, [generated]) per prompt sent,
    verifier (tokens read, kept prefix) per scored sequence. Every solution has s steps of t."""
    g = t * s
    policy, prm = [], []
    if method == "cot":
        policy.append((p, 0, [g]))
    elif method in ("majority", "best_of_n"):
        policy.append((p, 0, [g] * n))
        if method == "best_of_n":
            prm += [(p + g, 0)] * n
    else:
        parents = [0] if method == "beam" else [0] * (n // m)  # steps written so far
        width = n if method == "beam" else m
        for k in range(s):
            for _ in parents:
                prefix = p + k * t
                # with caching (vLLM's 16-token blocks) every call after the problem's first reuses
                # its prefix's full blocks below its last token
                cached = 16 * ((prefix - 1) // 16) if caching and policy else 0
                policy.append((prefix, cached, [t] * width))
                for _ in range(width):
                    prm.append((t, prefix) if reuse else (prefix + t, 0))
            parents = [k + 1] * (n // m)
            width = m
        if reuse:  # the question (prompt) is read once per problem, then each beam's new steps
            prm = [(p, 0)] + prm
    return policy, prm


def simulate_flops(policy_spec, prm_spec, method, n, m, p, t, s, caching, reuse):
    policy, prm = simulate(method, n, m, p, t, s, caching, reuse)
    total = sum(
        prefill_flops(policy_spec, L, c) + sum(generation_flops(policy_spec, L, x) for x in gs)
        for L, c, gs in policy
    )
    return total + sum(prm_flops(prm_spec, r, kept) for r, kept in prm)


@pytest.mark.parametrize("reuse", [False, True])
@pytest.mark.parametrize("caching", [True, False])
@pytest.mark.parametrize("method", METHODS)
def test_config_matches_explicit_simulation(method, caching, reuse):
    p, t, s, n, bw = 20, 10, 3, 8, 2
    work = Workload(p, t, s)
    policy_calls, prm_calls = simulate(method, n, bw, p, t, s, caching, reuse)
    tokens = expected_tokens(method, n, bw, work, prefix_caching=caching, prm_reuse=reuse)
    assert tokens["policy_prompt_tokens"] == pytest.approx(sum(c[0] for c in policy_calls))
    assert tokens["cached_prompt_tokens"] == pytest.approx(sum(c[1] for c in policy_calls))
    assert tokens["policy_generated_tokens"] == pytest.approx(sum(sum(c[2]) for c in policy_calls))
    read = sum(r for r, _ in prm_calls)
    assert tokens["prm_tokens"] - tokens["prm_cached_tokens"] == pytest.approx(read)
    want = simulate_flops(POLICY, PRM, method, n, bw, p, t, s, caching, reuse)
    got = config_flops(POLICY, PRM, method, n, bw, work, prefix_caching=caching, prm_reuse=reuse)
    assert got == pytest.approx(want)


def test_record_flops_prices_calls_and_ignores_the_first_calls_cache():
    calls = [(30, 25, [5, 7]), (40, 30, [3])]
    got = cost.record_flops(POLICY, PRM, calls, [12, (6, 30)])
    policy = cost.call_flops(POLICY, 30, 0, [5, 7]) + cost.call_flops(POLICY, 40, 30, [3])
    assert got["policy"] == pytest.approx(policy)
    assert got["prm"] == pytest.approx(prm_flops(PRM, 12) + prm_flops(PRM, 6, 30))
    assert got["total"] == pytest.approx(policy + got["prm"])
    assert cost.record_flops(POLICY, None, calls, [12])["total"] is None  # unknown verifier
    assert cost.record_flops(POLICY, None, calls, [])["prm"] == 0.0


def test_method_relations():
    w = workload_for("math500")
    beam = expected_tokens("beam", 16, 4, w)
    dvts = expected_tokens("dvts", 16, 4, w)
    # the same children and verifier reads; dvts sends n/M prompts at the first step, beam one
    assert beam["policy_generated_tokens"] == dvts["policy_generated_tokens"]
    assert beam["prm_tokens"] == dvts["prm_tokens"]
    assert dvts["policy_prompt_tokens"] - beam["policy_prompt_tokens"] == pytest.approx(3 * w.prompt_tokens)
    assert (
        beam["policy_generated_tokens"] == expected_tokens("best_of_n", 16, 4, w)["policy_generated_tokens"]
    )
    # without verifier reuse (the executor's verifiers) tree search reads ~ steps/2 times more
    bon_read = expected_tokens("best_of_n", 16, 4, w)["prm_tokens"]
    assert beam["prm_tokens"] > 1.5 * bon_read
    assert expected_tokens("majority", 16, 1, w)["prm_tokens"] == 0
    assert expected_tokens("cot", 64, 4, w) == expected_tokens("cot", 1, 1, w)  # n ignored
    for m in ("beam", "dvts"):  # a prefix cache helps where prompts repeat across calls
        cached = config_flops(POLICY, PRM, m, 16, 4, w)
        assert cached < config_flops(POLICY, PRM, m, 16, 4, w, prefix_caching=False)
        assert config_flops(POLICY, PRM, m, 16, 4, w, prm_reuse=True) < cached
    for m in ("majority", "best_of_n"):  # one call: the prompt is computed once either way
        assert config_flops(POLICY, PRM, m, 16, 4, w) == config_flops(
            POLICY, PRM, m, 16, 4, w, prefix_caching=False
        )
    # the PRM is what separates best_of_n from majority
    diff = config_flops(POLICY, PRM, "best_of_n", 16, 4, w) - config_flops(POLICY, None, "majority", 16, 4, w)
    assert diff == pytest.approx(config_flops_parts(POLICY, PRM, "best_of_n", 16, 4, w)["prm"])


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("best_of_n", 4, 1, None), "need a PRM"),
        (("beam", 6, 4, PRM), "multiple of beam_width"),
        (("beam", 8, 0, PRM), "beam_width"),
        (("vote", 4, 1, PRM), "unknown method"),
        (("majority", 0, 1, PRM), "n must be at least 1"),
    ],
)
def test_bad_configs(args, fragment):
    method, n, bw, prm = args
    with pytest.raises(UserError, match=fragment):
        config_flops(POLICY, prm, method, n, bw, workload_for("math500"))


def test_vectorised_equals_scalar_and_is_fast():
    w = workload_for("amc23")
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 5, 5000)
    n = 4 * 2 ** rng.integers(0, 8, 5000)
    bw = np.where(rng.random(5000) < 0.5, 4, 2)
    vector = config_flops(POLICY, PRM, codes, n, bw, w)
    start = time.perf_counter()
    scalar = [
        config_flops(POLICY, PRM, METHODS[c], int(k), int(b), w) for c, k, b in zip(codes, n, bw, strict=True)
    ]
    per_call = (time.perf_counter() - start) / 5000
    assert np.allclose(vector, scalar, rtol=1e-12)
    assert per_call < 1e-3  # well under a millisecond each
    names = np.array(METHODS)[codes]
    assert np.allclose(config_flops(POLICY, PRM, names, n, bw, w), vector)


def test_rows_flops_is_config_flops_of_each_row():
    """The planner's one-pass pricing: each row's own policy and PRM (verifier reuse per PRM),
    bit for bit the per-configuration cost, for every method and a checker without a model."""
    w = workload_for("arith")
    judge, checker = resolve("lm-judge:google/gemma-3-270m"), resolve("arith-check")
    policies = [POLICY, resolve("google/gemma-3-270m")]
    prms = [None, PRM, judge, checker]
    rows = [
        (pol, prm, m, n)
        for pol in policies
        for prm in prms
        for m in (METHODS if prm is not None else ("cot", "majority"))
        for n in (4, 16, 64)
    ]
    got = cost.rows_flops(
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        [r[3] for r in rows],
        [4] * len(rows),
        w,
    )
    want = [config_flops(p, v, m, n, 4, w, prm_reuse=cost.reuses_prefix(v)) for p, v, m, n in rows]
    assert got.tolist() == want
    beam = rows.index((POLICY, judge, "beam", 16))  # the judge keeps each beam's prefix: cheaper
    assert got[beam] < config_flops(POLICY, judge, "beam", 16, 4, w, prm_reuse=False)
    with pytest.raises(UserError, match="need a PRM"):
        cost.rows_flops([POLICY], [None], ["beam"], [16], [4], w)
    with pytest.raises(UserError, match="one entry per row"):
        cost.rows_flops([POLICY, POLICY], [PRM], ["beam"], [16], [4], w)
    # the same rows with each distinct spec listed once and indexed per row (how price calls it)
    indexed = cost.rows_flops(
        policies,
        prms,
        [r[2] for r in rows],
        [r[3] for r in rows],
        [4] * len(rows),
        w,
        policy_rows=[policies.index(r[0]) for r in rows],
        prm_rows=[prms.index(r[1]) for r in rows],
    )
    assert indexed.tolist() == want
    with pytest.raises(UserError, match="prm_rows must index prm_specs"):
        cost.rows_flops([POLICY], [PRM], ["beam"], [16], [4], w, policy_rows=[0], prm_rows=[1])


# ---------------------------------------------------------------- workloads


def test_workload_defaults_measured_from_datasets():
    from planner.core.datasets import load_dataset

    for name in ("math500", "aime24", "amc23", "gsm8k"):
        problems = load_dataset(name)
        chars = np.mean([len(p.question) for p in problems])
        w = workload_for(name)
        assert w.prompt_tokens == pytest.approx(chars / 4, abs=0.05)
        assert w.solution_tokens == pytest.approx(236.9)  # Table 1, Mistral-PRM-Data
        assert w.tokens_per_step == 46.6
        assert "estimate" in w.source
    assert workload_for("olympiad") == cost.GENERIC_WORKLOAD
    with pytest.raises(UserError):
        Workload(0, 10, 2)


# ---------------------------------------------------------------- hardware


def test_hardware_profiles_and_errors():
    assert get_hardware("H100").peak_flops == 989e12 and get_hardware("h100").mem_bandwidth == 3.35e12
    assert get_hardware("a100").peak_flops == 312e12 and get_hardware("a100").mem_bandwidth == 2.039e12
    assert set(PROFILES) >= {"h100", "h200", "a100", "l4", "cpu-2core"}
    with pytest.raises(UserError) as info:
        get_hardware("tpu")
    assert "known: a100, cpu-2core, h100, h200, l4" in str(info.value)
    assert get_hardware("l4", price_per_hour=0.8).price_per_hour == 0.8
    with pytest.raises(UserError, match="price_per_hour"):
        dollars(10, get_hardware("l4"))
    with pytest.raises(UserError):
        get_hardware("h100", price_per_hour=-1)
    assert dollars(3600, get_hardware("h100"), price_per_hour=2.0) == pytest.approx(2.0)


def test_decode_is_bandwidth_bound_at_batch_one():
    spec = resolve("Llama-3.1-8B-Instruct")
    hw = get_hardware("h100")
    w = workload_for("math500")
    parts = time_breakdown(spec, None, "cot", 1, 1, w, hw)
    # one decode step reads all weights (bf16) plus a small KV cache
    weights_s = w.solution_tokens * spec.params * 2 / (0.8 * hw.mem_bandwidth)
    assert weights_s <= parts["decode"] < 1.1 * weights_s
    # prefill at 50% of peak
    assert parts["prefill"] == pytest.approx(prefill_flops(spec, w.prompt_tokens) / (0.5 * hw.peak_flops))
    # batching n samples shares the weight reads: far less than n times the single time
    t16 = seconds(spec, None, "majority", 16, 1, w, hw)
    assert parts["total"] < t16 < 4 * parts["total"]
    # faster memory, faster decode
    assert seconds(spec, None, "cot", 1, 1, w, get_hardware("h200")) < parts["total"]
    many = seconds(spec, PRM, np.array(["cot", "beam"]), np.array([1, 16]), 4, w, hw)
    assert many.shape == (2,) and many[1] > many[0]


def test_problems_decoded_together_share_weight_reads():
    from dataclasses import replace

    from planner.executor.runner import DEFAULT_BATCH_SIZE

    spec = resolve("Llama-3.1-8B-Instruct")
    w = workload_for("math500")
    alone = get_hardware("h100")
    assert alone.batch_problems == 1 and alone.utilisation == 0.5
    eight = replace(alone, batch_problems=8)
    one, shared = (
        time_breakdown(spec, None, "cot", 1, 1, w, alone),
        time_breakdown(spec, None, "cot", 1, 1, w, eight),
    )
    # the weights' share of a decode step falls 8x; the KV cache reads and prefill do not change
    assert shared["decode"] < one["decode"] / 4 and shared["prefill"] == one["prefill"]
    # the CPU profile prices what `ttsplan run` does by default: its batch of problems together
    assert get_hardware("cpu-2core").batch_problems == DEFAULT_BATCH_SIZE
    cpu = get_hardware("cpu-2core")
    assert time_breakdown(spec, None, "cot", 1, 1, w, cpu)["prefill"] == pytest.approx(
        prefill_flops(spec, w.prompt_tokens) / (cpu.utilisation * cpu.peak_flops)
    )


# ---------------------------------------------------------------- CLI


def run_cli(args, capsys):
    with pytest.raises(SystemExit) as info:
        main(args)
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


def test_cli_cost_json(capsys):
    code, out, err = run_cli(
        ["cost", "--model", "qwen2.5-1.5b-instruct", "--context", "500", "--json"], capsys
    )
    assert code == 0, err
    data = json.loads(out)
    spec = resolve("Qwen/Qwen2.5-1.5B-Instruct")
    assert data["params"] == spec.params and data["nominal_params"] == 1.5e9
    assert data["pretraining_flops"] == pytest.approx(6 * 1.5e9 * 18e12)
    assert data["context"] == 500
    assert data["flops_per_generated_token"] == flops_per_token(spec, 500)
    assert data["flops_per_prefill_token"] == pytest.approx(prefill_flops(spec, 500) / 500)


def test_cli_cost_table_and_unknown_tokens(capsys):
    code, out, _ = run_cli(["cost", "--model", "mistral-7b-sft"], capsys)
    assert code == 0 and "pretraining_flops" in out and "unknown" in out
    code, out, _ = run_cli(["cost", "--model", "mistral-7b-sft", "--json"], capsys)
    assert json.loads(out)["pretraining_flops"] is None


def test_cli_cost_model_config(tmp_path, capsys):
    from tests.test_specs import SMOLLM2_135M

    (tmp_path / "config.json").write_text(json.dumps(SMOLLM2_135M))
    code, out, err = run_cli(["cost", "--model-config", str(tmp_path), "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["params"] == resolve("SmolLM2-135M-Instruct").params


@pytest.mark.parametrize(
    "args",
    [
        ["cost", "--model", "qwen2.5-1.6b-instruct"],
        ["cost", "--model-config", "/nonexistent/model"],
        ["cost"],
        ["cost", "--model", "gemma-3-270m", "--context", "0"],
    ],
)
def test_cli_cost_bad_input(args, capsys):
    code, out, err = run_cli(args, capsys)
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1


def test_arith_workload_is_measured_from_the_shipped_calibration_runs():
    from pathlib import Path

    from calibration.calibrate import load_batch
    from planner.executor.methods.common import split_steps

    root = Path(__file__).resolve().parent.parent / "profiles"
    per_profile = []
    for name in cost.ARITH_MEASURED_FROM:
        prompts, generated, steps = [], [], []
        for path in sorted((root / name / "runs").glob("*/*.jsonl")):
            for rec in load_batch(path)["sample"].values():
                prompts.append(rec["prompt_tokens"])
                generated += rec["generated_tokens"]
                steps += [max(1, len(split_steps(t))) for t in rec["texts"]]
        assert len(prompts) == 100 and len(generated) == 1600
        per_profile.append((np.mean(prompts), np.mean(generated), np.mean(steps)))
    prompt, gen, n_steps = (np.mean([x[i] for x in per_profile]) for i in range(3))
    w = workload_for("arith:seed=1")
    assert w.prompt_tokens == pytest.approx(prompt, abs=0.05)
    assert w.steps == pytest.approx(n_steps, abs=0.0005)
    assert w.tokens_per_step == pytest.approx(gen / n_steps, abs=0.005)
    assert "measured" in w.source


@pytest.mark.parametrize("method", ["best_of_n", "beam", "dvts"])
def test_verifier_reads_its_own_prompt_and_step_markup(method):
    p, t, s, n, bw, q, v = 20, 10, 3, 8, 2, 35, 4
    work = Workload(p, t, s, verifier_prompt_tokens=q, verifier_step_tokens=v)
    if method == "best_of_n":
        reads = [(q + (t + v) * s, 0)] * n
    else:  # every child of every step, with its prefix
        reads = [(q + (k + 1) * (t + v), 0) for k in range(s) for _ in range(n)]
    assert expected_tokens(method, n, bw, work)["prm_tokens"] == pytest.approx(sum(r for r, _ in reads))
    got = config_flops_parts(POLICY, PRM, method, n, bw, work)["prm"]
    assert got == pytest.approx(sum(prm_flops(PRM, r) for r, _ in reads))
    with pytest.raises(UserError, match="verifier_step_tokens"):
        Workload(p, t, s, verifier_step_tokens=-1)


def test_the_planner_prices_verifier_reuse_where_the_executor_has_it():
    from planner.plan.search import price

    judge, checker = resolve("lm-judge:google/gemma-3-270m"), resolve("arith-check")
    assert cost.reuses_prefix(judge) and not cost.reuses_prefix(PRM) and not cost.reuses_prefix(None)
    gemma = resolve("google/gemma-3-270m")
    frame = pd.DataFrame(
        {
            "policy": [gemma.name] * 2,
            "prm": [judge.name, PRM.name],
            "method": ["beam", "beam"],
            "n": [16, 16],
            "beam_width": [4, 4],
        }
    )
    priced = price(
        frame, {gemma.name: gemma, judge.name: judge, PRM.name: PRM, checker.name: checker}, "arith"
    )
    work = workload_for("arith")
    assert priced["flops_per_problem"].iloc[0] == pytest.approx(
        config_flops(gemma, judge, "beam", 16, 4, work, prm_reuse=True)
    )
    assert priced["flops_per_problem"].iloc[1] == pytest.approx(config_flops(gemma, PRM, "beam", 16, 4, work))
