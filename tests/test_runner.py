"""The run loop on the fake engine: records, summary, resume after a crash, torn lines."""

from __future__ import annotations

import json

import pytest

from planner.core.config import MethodConfig
from planner.core.datasets import Problem
from planner.core.errors import UserError
from planner.core.planfile import RunPlan
from planner.executor.runner import read_records, run_plan
from tests.fake_engine import FakeEngine, FakeVerifier

PROBLEMS = [
    Problem(f"p{i}", f"Question {i}: pick a number.", str(i % 3 + 1), i % 5 + 1, "fake") for i in range(7)
]


def make_plan(method="beam", n=4, **kw) -> RunPlan:
    return RunPlan(policy="fake-policy", prm="fake-prm", config=MethodConfig(method, n, beam_width=2, **kw))


def lines(path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_records_and_summary(tmp_path):
    out = tmp_path / "run.jsonl"
    plan = make_plan("best_of_n", 4)
    summary = run_plan(plan, PROBLEMS, FakeEngine(), FakeVerifier(), out, batch_size=3)
    records = lines(out)
    assert [r["problem_id"] for r in records] == [p.id for p in PROBLEMS]
    for p, r in zip(PROBLEMS, records, strict=True):
        assert (r["dataset"], r["level"], r["gold"]) == (p.dataset, p.level, p.answer)
        assert r["correct"] == (r["answer"] == p.answer)  # plain integers: string equality is the truth
        assert len(r["candidates"]) == 4 and r["answer"] in r["candidates"]
        assert r["config"]["method"] == "best_of_n" and r["config"]["verifier"] == "fake-prm"
        assert r["policy_generated_tokens"] > 0 and r["prm_tokens"] > 0 and r["wall_s"] >= 0
        assert r["flops"] is None  # "fake-policy" is not a known model: FLOPs are unknown, not made up
    correct = sum(r["correct"] for r in records)
    assert (summary.problems, summary.run, summary.skipped, summary.correct) == (7, 7, 0, correct)
    assert summary.accuracy == pytest.approx(correct / 7)
    mean_gen = sum(r["policy_generated_tokens"] for r in records) / 7
    assert summary.mean_generated_tokens == pytest.approx(mean_gen)
    assert summary.flops_ratio is None


def test_batches_are_batched(tmp_path):
    engine = FakeEngine()
    run_plan(make_plan("majority", 4), PROBLEMS, engine, None, tmp_path / "o.jsonl", batch_size=3)
    assert [len(prompts) for prompts, _ in engine.calls] == [3, 3, 1]


def test_resume_after_a_crash(tmp_path):
    out = tmp_path / "run.jsonl"
    plan = make_plan("beam", 4)
    reference = tmp_path / "ref.jsonl"
    run_plan(plan, PROBLEMS, FakeEngine(), FakeVerifier(), reference, batch_size=2)

    crashing = FakeEngine(fail_after=5)  # dies in the middle of a later batch
    with pytest.raises(KeyboardInterrupt):
        run_plan(plan, PROBLEMS, crashing, FakeVerifier(), out, batch_size=2)
    first = lines(out)
    assert 0 < len(first) < len(PROBLEMS) and len(first) % 2 == 0  # whole batches only

    engine = FakeEngine()
    summary = run_plan(plan, PROBLEMS, engine, FakeVerifier(), out, batch_size=2)
    assert (summary.skipped, summary.run) == (len(first), len(PROBLEMS) - len(first))
    records = lines(out)
    assert sorted(r["problem_id"] for r in records) == sorted(p.id for p in PROBLEMS)  # no duplicates
    # the resumed run gives what an uninterrupted run gives (seeds depend on config and step only)
    drop = ("wall_s",)
    by_id = {r["problem_id"]: {k: v for k, v in r.items() if k not in drop} for r in lines(reference)}
    assert all({k: v for k, v in r.items() if k not in drop} == by_id[r["problem_id"]] for r in records)
    # a third run has nothing to do and never calls the engine
    idle = FakeEngine()
    again = run_plan(plan, PROBLEMS, idle, FakeVerifier(), out, batch_size=2)
    assert (again.run, again.skipped, idle.calls) == (0, len(PROBLEMS), [])
    assert again.accuracy == summary.accuracy


def test_torn_last_line_is_ignored_and_rewritten(tmp_path):
    out = tmp_path / "run.jsonl"
    plan = make_plan("majority", 2)
    run_plan(plan, PROBLEMS[:3], FakeEngine(), None, out)
    with open(out, "a") as f:
        f.write('{"problem_id": "p3", "config": {"meth')  # a crash mid-write
    records, torn = read_records(out)
    assert len(records) == 3 and torn
    summary = run_plan(plan, PROBLEMS, FakeEngine(), None, out)
    assert (summary.skipped, summary.run) == (3, 4)
    text = out.read_text()
    assert text.endswith("\n") and '"meth\n' not in text and '{"meth' not in text
    assert [r["problem_id"] for r in lines(out)] == [p.id for p in PROBLEMS]


def test_other_config_is_not_skipped(tmp_path):
    out = tmp_path / "run.jsonl"
    run_plan(make_plan("majority", 2), PROBLEMS[:2], FakeEngine(), None, out)
    summary = run_plan(make_plan("majority", 2, seed=1), PROBLEMS[:2], FakeEngine(), None, out)
    assert (summary.run, summary.skipped) == (2, 0)
    assert len(lines(out)) == 4


def test_bad_inputs(tmp_path):
    out = tmp_path / "run.jsonl"
    out.write_text('{"problem_id": "p0", "config": {}}\nnot json\n{"problem_id": "p1", "config": {}}\n')
    with pytest.raises(UserError, match="line 2"):
        run_plan(make_plan("majority", 2), PROBLEMS, FakeEngine(), None, out)
    with pytest.raises(UserError, match="batch size"):
        run_plan(make_plan("majority", 2), PROBLEMS, FakeEngine(), None, tmp_path / "a.jsonl", batch_size=0)
    with pytest.raises(UserError, match="duplicate"):
        run_plan(make_plan("majority", 2), PROBLEMS[:2] * 2, FakeEngine(), None, tmp_path / "b.jsonl")
    with pytest.raises(UserError, match="verifier"):
        run_plan(make_plan("beam", 4), PROBLEMS, FakeEngine(), None, tmp_path / "c.jsonl")
    with pytest.raises(UserError, match="not a file"):
        run_plan(make_plan("majority", 2), PROBLEMS, FakeEngine(), None, tmp_path)


def test_flops_from_the_cost_model(tmp_path):
    from planner.models.specs import resolve

    policy, prm = resolve("HuggingFaceTB/SmolLM2-135M-Instruct"), resolve("Qwen/Qwen2.5-Math-PRM-7B")
    engine = FakeEngine(name=policy.name)
    verifier = FakeVerifier(spec_name=prm.name)
    plan = RunPlan(policy.name, prm.name, MethodConfig("best_of_n", 4), flops_per_problem=1e12)
    summary = run_plan(plan, PROBLEMS[:3], engine, verifier, tmp_path / "o.jsonl")
    records = lines(tmp_path / "o.jsonl")

    def tri(x):
        return x * (x + 1) / 2

    # Kaplan et al. convention written out: 2 * matmul params per token + 4 * layers * heads * head_dim
    # per key; the output layer (2 * vocab * hidden) only where logits are taken: the prefill's last
    # position and each of the g - 1 decode passes; the problem's one call computes its whole prompt
    head = 2 * policy.vocab * policy.hidden
    a, b = 2 * policy.matmul_params - head, 4 * policy.layers * policy.heads * policy.head_dim
    a2, b2 = 2 * prm.matmul_params, 4 * prm.layers * prm.heads * prm.head_dim  # a value head: in the body
    ((prompts, options),) = engine.calls
    for prompt, problem, r in zip(prompts, PROBLEMS[:3], records, strict=True):
        p = r["policy_prompt_tokens"]
        gens = [engine.complete(prompt, options, j).tokens for j in range(4)]
        assert r["calls"] == [[p, r["cached_prompt_tokens"], gens]]  # the counts are kept
        expected = a * p + head + b * tri(p)
        expected += sum((a + head) * (g - 1) + b * (tri(p + g - 1) - tri(p)) for g in gens)
        assert r["policy_flops"] == pytest.approx(expected)
        reads = [
            len(problem.question.split()) + len(t.split())
            for t in (engine.complete(prompt, options, j).text for j in range(4))
        ]
        assert sum(reads) == r["prm_tokens"]
        assert r["prm_flops"] == pytest.approx(sum(a2 * t + b2 * tri(t) for t in reads))
        assert r["flops"] == pytest.approx(r["policy_flops"] + r["prm_flops"])
    mean = sum(r["flops"] for r in records) / 3
    assert summary.mean_flops == pytest.approx(mean)
    assert summary.flops_ratio == pytest.approx(mean / 1e12)
