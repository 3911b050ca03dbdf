"""Run-time difficulty (planner.executor.adaptive, `ttsplan run --adaptive`).

A scripted engine answers by problem: the probe's samples get hand-chosen answers (so each
problem's bin is known), the method's samples a fixed answer. Checks: routing, one method call
per bin and batch, the probe's tokens and FLOPs added to the record (against the cost model
and against a plain run of the bin's configuration), resume, the verifier-scored probe, plan
validation, the CLI; and one small run with the real SmolLM2 engine.
"""

from __future__ import annotations

import json
import re

import pytest

from planner.cli import run as cli_run
from planner.cli.main import main
from planner.core.datasets import Problem, load_dataset
from planner.core.errors import UserError
from planner.core.planfile import PLAN_FORMAT, PLAN_VERSION, plan_from_dict
from planner.core.vocab import BINS
from planner.executor.adaptive import (
    PROBE_STEP,
    adaptive_from_dict,
    agreement,
    bin_of,
    load_adaptive_plan,
    run_adaptive,
)
from planner.executor.base import Completion, Generation, StepScores
from planner.executor.methods.common import call_seed
from planner.executor.runner import read_records, run_plan
from planner.models import cost, specs
from planner.plan.search import PlanRequest
from tests.fake_engine import FakeEngine

POLICY = "HuggingFaceTB/SmolLM2-135M-Instruct"  # a registered spec: FLOPs are counted
PRM = "Qwen/Qwen2.5-Math-PRM-7B"
# probe answers per problem ("" = no answer) and the bin they must give with k = 4
PROBE = {
    "e1": (["7", "7", "7", "7"], 1.0, "easy"),
    "e2": (["5", "5", "5", "6"], 0.75, "easy"),
    "m1": (["1", "2", "1", "3"], 0.5, "medium"),  # 0.5 is medium (easy is > 0.5)
    "m2": (["1", "2", "3", "4"], 0.25, "medium"),
    "h1": (["", "", "", ""], 0.0, "hard"),
    "h2": (["", "", "", ""], 0.0, "hard"),
}
GOLD = {"e1": "7", "e2": "5", "m1": "1", "m2": "4", "h1": "0", "h2": "8"}
SOLVED = {"e1": "7", "e2": "5", "m1": "1", "m2": "2", "h1": "0", "h2": "3"}  # what the methods answer
CONFIGS = {"easy": ("cot", 1), "medium": ("majority", 3), "hard": ("majority", 5)}


def words(text: str) -> int:
    return len(text.split())


def text_for(question: str, answer: str) -> str:
    return f"work on {question}\n\nso \\boxed{{{answer}}}" if answer else f"no idea about {question}"


class ScriptEngine:
    """Probe calls (their seed) answer PROBE[q][j]; every other call answers SOLVED[q]."""

    def __init__(self, name: str = POLICY, seed: int = 0) -> None:
        self.name = name
        self.probe_seed = call_seed(seed, PROBE_STEP)
        self.calls = []

    def format_prompt(self, problem: str) -> str:
        return f"Q: {problem} A:"

    def generate(self, prompts, options):
        self.calls.append(([p.split()[1] for p in prompts], options))
        out = []
        for prompt in prompts:
            q = prompt.split()[1]
            texts = [
                text_for(q, PROBE[q][0][j] if options.seed == self.probe_seed else SOLVED[q])
                for j in range(options.n)
            ]
            comps = [Completion(t, words(t), "stop", stopped_on_eos=True) for t in texts]
            out.append(Generation(comps, words(prompt), None))
        return out


class AnswerVerifier:
    """Scores a step 0.9 when it boxes 7, else 0.05; reads the words of question and steps."""

    name = "answer-check"
    spec_name = PRM

    def __init__(self) -> None:
        self.calls = []

    def score(self, problems, solutions):
        self.calls.append(len(solutions))
        return [
            StepScores([0.9 if "boxed{7}" in s else 0.05 for s in steps], words(q) + sum(map(words, steps)))
            for q, steps in zip(problems, solutions, strict=True)
        ]


def problems() -> list[Problem]:
    return [Problem(q, q, GOLD[q], None, "script") for q in PROBE]


def bin_entry(method: str, n: int, acc: float, flops: float) -> dict:
    return {
        "policy": POLICY,
        "prm": "none",
        "method": method,
        "aggregation": "none",
        "selection": "none" if method == "cot" else "vote",
        "n": n,
        "beam_width": None,
        "predicted_accuracy": acc,
        "flops_per_problem": flops,
    }


def plan_dict(**probe) -> dict:
    return {
        "format": PLAN_FORMAT,
        "version": PLAN_VERSION,
        "kind": "per_bin",
        "bins": {
            "easy": bin_entry("cot", 1, 0.9, 1e9),
            "medium": bin_entry("majority", 3, 0.4, 3e9),
            "hard": bin_entry("majority", 5, 0.1, 5e9),
        },
        "probe": {"k": 4, **probe},
        "mix": {"easy": 0.5, "medium": 0.3, "hard": 0.2},
        "mean_predicted_accuracy": 0.59,
        "mean_flops_per_problem": 2.4e9,
        "probe_cost": {"n": 4, "flops_per_problem": 4e9},
    }


def by_id(records):
    return {r["problem_id"]: r for r in records}


# ---------------------------------------------------------------- routing and accounting


def test_routing_one_call_per_bin_and_probe_accounting(tmp_path):
    engine = ScriptEngine()
    plan = adaptive_from_dict(plan_dict())
    out = tmp_path / "r.jsonl"
    summary = run_adaptive(plan, problems(), engine, None, out, batch_size=10)
    records = by_id(read_records(out)[0])

    probe_call, *method_calls = engine.calls
    assert probe_call[0] == list(PROBE)  # one probe call for the whole batch
    assert (probe_call[1].n, probe_call[1].temperature) == (4, 0.7)
    ran = {(o.n, o.temperature): qs for qs, o in method_calls}
    assert ran == {(1, 0.0): ["e1", "e2"], (3, 0.7): ["m1", "m2"], (5, 0.7): ["h1", "h2"]}

    spec = specs.resolve(POLICY)
    for q, (answers, pass1, b) in PROBE.items():
        rec = records[q]
        assert rec["bin"] == b and rec["probe_pass1"] == pytest.approx(pass1)
        assert rec["probe_answers"] == answers
        method, n = CONFIGS[b]
        assert (rec["bin_config"]["method"], rec["bin_config"]["n"]) == (method, n)
        assert len(rec["candidates"]) == n and rec["answer"] == SOLVED[q]
        assert rec["correct"] == (SOLVED[q] == GOLD[q])
        # the probe by hand: one prompt read, four completions
        prompt = words(f"Q: {q} A:")
        gen = [words(text_for(q, a)) for a in answers]
        assert rec["probe_prompt_tokens"] == prompt and rec["probe_generated_tokens"] == sum(gen)
        probe_flops = cost.prefill_flops(spec, prompt, 0) + sum(
            cost.generation_flops(spec, prompt, g) for g in gen
        )
        assert rec["probe_flops"] == pytest.approx(probe_flops)
        # the rest is exactly a plain run of the bin's configuration
        alone = tmp_path / f"{q}.jsonl"
        run_plan(plan.bins[b], [p for p in problems() if p.id == q], ScriptEngine(), None, alone)
        plain = read_records(alone)[0][0]
        assert rec["flops"] == pytest.approx(plain["flops"] + probe_flops)
        assert rec["policy_flops"] == pytest.approx(plain["policy_flops"] + probe_flops)
        assert rec["policy_generated_tokens"] == plain["policy_generated_tokens"] + sum(gen)
        assert rec["policy_prompt_tokens"] == plain["policy_prompt_tokens"] + prompt
        assert rec["prm_tokens"] == 0 and rec["prm_flops"] == 0

    assert summary.problems == 6 and summary.run == 6 and summary.skipped == 0
    assert {b: s["problems"] for b, s in summary.bins.items()} == {"easy": 2, "medium": 2, "hard": 2}
    assert summary.correct == sum(SOLVED[q] == GOLD[q] for q in PROBE) == 4
    assert summary.bins["medium"]["accuracy"] == 0.5
    assert summary.mean_flops == pytest.approx(sum(r["flops"] for r in records.values()) / 6)
    assert summary.predicted_accuracy == pytest.approx((0.9 + 0.4 + 0.1) / 3)
    assert summary.predicted_flops == pytest.approx((1e9 + 3e9 + 5e9) / 3 + 4e9)
    assert summary.planned_accuracy == 0.59


def test_batches_and_resume(tmp_path):
    engine = ScriptEngine()
    plan = adaptive_from_dict(plan_dict())
    out = tmp_path / "r.jsonl"
    run_adaptive(plan, problems(), engine, None, out, batch_size=4)
    shapes = [(qs, o.n) for qs, o in engine.calls]
    assert shapes == [
        (["e1", "e2", "m1", "m2"], 4),  # probe, first batch
        (["e1", "e2"], 1),
        (["m1", "m2"], 3),
        (["h1", "h2"], 4),  # probe, second batch
        (["h1", "h2"], 5),
    ]
    again = run_adaptive(plan, problems(), engine, None, out, batch_size=4)
    assert again.run == 0 and again.skipped == 6 and len(engine.calls) == 5
    assert len(read_records(out)[0]) == 6
    other = adaptive_from_dict(plan_dict(k=2))  # another probe is another run
    assert run_adaptive(other, problems(), ScriptEngine(), None, out).run == 6
    assert len(read_records(out)[0]) == 12


def test_probe_scored_by_a_verifier(tmp_path):
    engine, verifier = ScriptEngine(), AnswerVerifier()
    plan = adaptive_from_dict(plan_dict(score="verifier", aggregation="min"))
    with pytest.raises(UserError, match="needs a verifier"):
        run_adaptive(plan, problems(), engine, None, tmp_path / "x.jsonl")
    out = tmp_path / "r.jsonl"
    run_adaptive(plan, problems(), engine, verifier, out)
    records = by_id(read_records(out)[0])
    assert verifier.calls == [24]  # every probe sample of the batch in one call
    # e1 boxes 7 every time: min(0.05, 0.9) = 0.05 per sample (the first step has no box)
    expected = {q: 0.05 for q in PROBE}
    for q, rec in records.items():
        assert rec["probe_pass1"] == pytest.approx(expected[q]) and rec["bin"] == "hard"
        steps = [text_for(q, a).split("\n\n") for a in PROBE[q][0]]
        read = [words(q) + sum(words(s) for s in st) for st in steps]
        assert rec["probe_prm_tokens"] == sum(read) == rec["prm_tokens"]
        assert rec["prm_flops"] == pytest.approx(sum(cost.prm_flops(specs.resolve(PRM), t) for t in read))
    last = adaptive_from_dict(plan_dict(score="verifier", aggregation="last"))
    run_adaptive(last, problems(), ScriptEngine(), verifier, tmp_path / "last.jsonl")
    records = by_id(read_records(tmp_path / "last.jsonl")[0])
    assert records["e1"]["probe_pass1"] == pytest.approx(0.9) and records["e1"]["bin"] == "easy"
    assert records["e2"]["probe_pass1"] == pytest.approx(0.05) and records["e2"]["bin"] == "hard"


def test_agreement_and_bins():
    assert agreement(["3", "3.0", " 3", "4"]) == 0.75  # answers are compared normalised
    assert agreement(["", "", "2", "5"]) == 0.25
    assert agreement([]) == 0.0 and agreement(["", ""]) == 0.0
    probe = {"easy_above": 0.5, "hard_below": 0.1}
    assert [bin_of(p, probe) for p in (1.0, 0.51, 0.5, 0.1, 0.099, 0.0)] == [
        "easy",
        "easy",
        "medium",
        "medium",
        "hard",
        "hard",
    ]
    twenty = ["1"] + [str(i) for i in range(2, 21)]  # 20 different answers: 0.05 -> hard
    assert bin_of(agreement(twenty), probe) == "hard"


# ---------------------------------------------------------------- the plan file


def test_per_bin_plan_round_trip(tmp_path):
    from planner.plan.binplan import plan_by_difficulty
    from planner.plan.search import Budget
    from planner.predict.modelio import load_planner_model

    model, _ = load_planner_model(None)
    obj = plan_by_difficulty(
        model,
        PlanRequest(policies=["google/gemma-3-270m"], budget=Budget("n", 8), prms=["none"], dataset="arith"),
    ).to_dict()
    path = tmp_path / "bins.json"
    path.write_text(json.dumps(obj))
    plan = load_adaptive_plan(path)
    for b in BINS:
        assert plan.bins[b].config.method == obj["bins"][b]["method"]
        assert plan.bins[b].config.n == obj["bins"][b]["n"]
        assert plan.bins[b].predicted_accuracy == obj["bins"][b]["predicted_accuracy"]
    assert plan.probe == obj["probe"] and plan.policy == "google/gemma-3-270m"
    assert plan.predicted_accuracy == obj["mean_predicted_accuracy"]
    assert plan.probe_flops == obj["probe_cost"]["flops_per_problem"]


@pytest.mark.parametrize(
    "change, pattern",
    [
        ({"kind": None}, "not a per-bin plan"),
        ({"bins": {"easy": bin_entry("cot", 1, 0.9, 1)}}, "no 'medium' configuration"),
        ({"probe": {"k": 0}}, "probe_k: must be an integer in [1, 65536]"),
        ({"probe": {"easy_above": 0.05}}, "must not exceed"),
        ({"probe": {"rounds": 2}}, "unknown setting 'rounds'"),
        ({"probe": {"score": "vibes"}}, "agreement, verifier or posterior"),
    ],
)
def test_bad_plans(change, pattern):
    obj = {**plan_dict(), **change}
    obj = {k: v for k, v in obj.items() if v is not None}
    with pytest.raises(UserError, match=re.escape(pattern)):
        adaptive_from_dict(obj)


def test_policy_and_verifier_names():
    obj = plan_dict()
    obj["bins"]["hard"] = {**bin_entry("majority", 5, 0.1, 1), "policy": "google/gemma-3-270m"}
    with pytest.raises(UserError, match="different policies"):
        _ = adaptive_from_dict(obj).policy
    assert adaptive_from_dict(obj).with_overrides(policy="smollm2").policy == "smollm2"
    obj = plan_dict()
    for b, prm in (("medium", "prm-a"), ("hard", "prm-b")):
        obj["bins"][b] = {
            **bin_entry("best_of_n", 4, 0.3, 1),
            "prm": prm,
            "aggregation": "last",
            "selection": "max",
        }
    plan = adaptive_from_dict(obj)
    with pytest.raises(UserError, match="different PRMs"):
        plan.verifier_name(None)
    assert plan.verifier_name("arith-check") == "arith-check"
    assert adaptive_from_dict(plan_dict()).verifier_name("arith-check") is None  # nothing needs one
    assert plan_from_dict(obj["bins"]["medium"]).prm == "prm-a"


# ---------------------------------------------------------------- the command


def call(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    captured = capsys.readouterr()
    return exc.value.code, captured.out, captured.err


@pytest.fixture
def plan_file(tmp_path):
    path = tmp_path / "bins.json"
    path.write_text(json.dumps(plan_dict()))
    return path


@pytest.mark.parametrize(
    "extra, pattern",
    [
        (["PLAN"], "PLAN_FILE cannot be combined with --adaptive"),
        (["--method", "cot"], "--method cannot be combined with --adaptive"),
        (["--n", "4"], "--n cannot be combined with --adaptive"),
    ],
)
def test_cli_clashes_fail_before_models(extra, pattern, plan_file, tmp_path, capsys, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before validation finished")

    monkeypatch.setattr(cli_run, "load_engine", refuse)
    extra = [str(plan_file) if e == "PLAN" else e for e in extra]
    argv = [
        "run",
        *extra,
        "--adaptive",
        str(plan_file),
        "--dataset",
        "arith",
        "--out",
        str(tmp_path / "r.jsonl"),
    ]
    code, _, err = call(argv, capsys)
    assert code == 2 and err.strip().splitlines() == [f"error: {pattern} (the per-bin plan fixes it)"]


def test_cli_missing_plan_file(tmp_path, capsys):
    argv = [
        "run",
        "--adaptive",
        str(tmp_path / "no.json"),
        "--dataset",
        "arith",
        "--out",
        str(tmp_path / "r"),
    ]
    code, _, err = call(argv, capsys)
    assert code == 2 and "not found" in err and len(err.strip().splitlines()) == 1


def test_cli_adaptive_run(plan_file, tmp_path, capsys, monkeypatch):
    made = {}

    def engine(kind, policy, seed):
        made["engine"] = FakeEngine(name=policy)
        return made["engine"]

    monkeypatch.setattr(cli_run, "load_engine", engine)
    out = tmp_path / "r.jsonl"
    argv = ["run", "--adaptive", str(plan_file), "--dataset", "arith", "--limit", "3", "--out", str(out)]
    code, stdout, err = call([*argv, "--json", "--max-total-tokens", "64"], capsys)
    assert code == 0, err
    summary = json.loads(stdout)
    records = read_records(out)[0]
    assert [r["problem_id"] for r in records] == [p.id for p in load_dataset("arith", 3)]
    assert summary["problems"] == 3 and sum(s["problems"] for s in summary["bins"].values()) == 3
    assert all(r["bin"] in BINS and r["probe_flops"] > 0 for r in records)
    assert all(r["bin_config"]["max_total_tokens"] == 64 for r in records)
    probe_calls = [o for _, o in made["engine"].calls if o.n == 4]
    assert len(probe_calls) == 1 and probe_calls[0].max_tokens == 64  # the probe follows the limit
    code, stdout, err = call(argv + ["--max-total-tokens", "64"], capsys)  # table output; resumes
    assert code == 0, err
    assert "ttsplan run --adaptive" in stdout and len(made["engine"].calls) == 0
    assert len(read_records(out)[0]) == 3


# ---------------------------------------------------------------- a real model


class Counting:
    def __init__(self, engine) -> None:
        self.engine, self.name, self.calls = engine, engine.name, []

    def format_prompt(self, problem: str) -> str:
        return self.engine.format_prompt(problem)

    def generate(self, prompts, options):
        self.calls.append((len(prompts), options.n, options.max_tokens))
        return self.engine.generate(prompts, options)


@pytest.mark.model
def test_real_smollm2_two_arith_problems(hf_engine, tmp_path):
    obj = plan_dict()
    obj["bins"]["medium"]["n"] = obj["bins"]["hard"]["n"] = 2
    obj["probe"] = {"k": 2}
    plan = adaptive_from_dict(obj).with_overrides(max_total_tokens=12)
    engine = Counting(hf_engine)
    out = tmp_path / "r.jsonl"
    summary = run_adaptive(plan, load_dataset("arith", 2), engine, None, out)
    records = read_records(out)[0]
    assert len(records) == 2 and summary.problems == 2
    assert engine.calls[0] == (2, 2, 12)  # the probe: both problems, k = 2
    assert len(engine.calls) == 1 + len({r["bin"] for r in records})  # then one call per bin
    for rec in records:
        answers = rec["probe_answers"]
        top = max((sum(1 for a in answers if a and a == b) for b in answers if b), default=0)
        assert rec["bin"] == bin_of(top / 2, plan.probe)
        assert 0 < rec["probe_generated_tokens"] <= 2 * 12
        assert rec["policy_generated_tokens"] > rec["probe_generated_tokens"]
        assert rec["probe_flops"] > 0 and rec["flops"] > rec["probe_flops"]
