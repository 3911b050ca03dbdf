"""`ttsplan run` through planner.cli.main: bad input is one line + exit 2 before any model loads;
a full run, resume and Ctrl-C with the fake engine standing in for the model loaders."""

from __future__ import annotations

import importlib.util
import json

import pytest

from planner.cli import run as cli_run
from planner.cli.main import main
from planner.core.errors import UserError
from planner.core.planfile import KIND_SINGLE, PLAN_FORMAT, PLAN_VERSION
from tests.fake_engine import FakeEngine, FakeVerifier

PLAN = {  # the fields `ttsplan plan --json` prints
    "format": PLAN_FORMAT,
    "version": PLAN_VERSION,
    "kind": KIND_SINGLE,
    "policy": "HuggingFaceTB/SmolLM2-135M-Instruct",
    "prm": "Qwen/Qwen2.5-Math-PRM-7B",
    "method": "beam",
    "aggregation": "last",
    "selection": "max",
    "n": 4,
    "beam_width": 2,
    "predicted_accuracy": 0.4,
    "accuracy_interval": [0.3, 0.5],
    "flops_per_problem": 1e12,
    "in_calibrated_range": False,
    "frontier": [],
}


def write_plan(tmp_path, **changes):
    plan = {**PLAN, **changes}
    for key, value in changes.items():
        if value is None:
            del plan[key]
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    return path


@pytest.fixture
def no_models(monkeypatch):
    """Loading a model is a test failure: validation must come first."""

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before validation finished")

    monkeypatch.setattr(cli_run, "load_engine", refuse)
    monkeypatch.setattr(cli_run, "load_verifier", refuse)


def call(argv, capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def bad_cases(tmp_path):
    out = str(tmp_path / "r.jsonl")
    good = str(write_plan(tmp_path))
    truncated = tmp_path / "truncated.json"
    truncated.write_text(json.dumps(PLAN)[:40])
    corrupt = tmp_path / "corrupt.jsonl"
    corrupt.write_text("{not json}\n")
    cases = {
        "missing plan file": ([str(tmp_path / "nope.json"), "--dataset", "arith", "--out", out], "not found"),
        "truncated plan": ([str(truncated), "--dataset", "arith", "--out", out], "truncated"),
        "empty plan": ([str(tmp_path / "empty.json"), "--dataset", "arith", "--out", out], "empty"),
        "unknown method": (["METHOD", "--dataset", "arith", "--out", out], "unknown method"),
        "missing field": (["MISSING", "--dataset", "arith", "--out", out], "missing field 'n'"),
        "N not divisible": (["NDIV", "--dataset", "arith", "--out", out], "divisible"),
        "policy not local": (["REMOTE", "--dataset", "arith", "--out", out], "not an embedded model"),
        "unknown dataset": ([good, "--dataset", "math501", "--out", out], "unknown dataset"),
        "limit 0": ([good, "--dataset", "arith", "--limit", "0", "--out", out], "limit"),
        "engine": ([good, "--dataset", "arith", "--engine", "tgi", "--out", out], "--engine"),
        "flag with plan": ([good, "--dataset", "arith", "--n", "8", "--out", out], "--n cannot"),
        "no out": ([good, "--dataset", "arith"], "--out"),
        "no dataset": ([good, "--out", out], "--dataset"),
        "no method": (["--policy", "smollm2", "--dataset", "arith", "--out", out], "--method"),
        "no verifier": (
            ["--policy", "smollm2", "--method", "dvts", "--n", "8", "--dataset", "arith", "--out", out],
            "needs a verifier",
        ),
        "bad aggregation": (
            [
                "--policy",
                "smollm2",
                "--method",
                "best_of_n",
                "--n",
                "4",
                "--aggregation",
                "max",
                "--verifier",
                "arith-check",
                "--dataset",
                "arith",
                "--out",
                out,
            ],
            "aggregation",
        ),
        "n not a number": (
            ["--policy", "smollm2", "--method", "majority", "--n", "abc", "--dataset", "arith", "--out", out],
            "--n",
        ),
        "bad batch size": ([good, "--dataset", "arith", "--batch-size", "0", "--out", out], "--batch-size"),
        "path without config": (
            [good, "--policy", str(tmp_path), "--dataset", "arith", "--out", out],
            "no config.json",
        ),
        "corrupt results": ([good, "--dataset", "arith", "--out", str(corrupt)], "line 1"),
        "out is a folder": ([good, "--dataset", "arith", "--out", str(tmp_path)], "not a regular file"),
    }
    (tmp_path / "empty.json").write_text("")
    for tag, changes in (
        ("METHOD", {"method": "mcts"}),
        ("MISSING", {"n": None}),
        ("NDIV", {"n": 6, "beam_width": 4}),
        ("REMOTE", {"policy": "Qwen/Qwen2.5-1.5B-Instruct"}),
    ):
        path = tmp_path / f"{tag}.json"
        path.write_text(json.dumps({k: v for k, v in {**PLAN, **changes}.items() if v is not None}))
        for argv, _ in cases.values():
            if argv and argv[0] == tag:
                argv[0] = str(path)
    return cases


def test_bad_inputs_are_one_line_and_load_nothing(tmp_path, capsys, no_models):
    for tag, (argv, expected) in bad_cases(tmp_path).items():
        code, out, err = call(["run", *argv], capsys)
        assert code == 2, tag
        assert err.startswith("error: ") and err.count("\n") == 1, (tag, err)
        assert expected in err, (tag, err)
        assert out == "", tag


def test_vllm_missing_names_the_extra(tmp_path, capsys, no_models, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "vllm" else real(name))
    plan = write_plan(tmp_path)
    code, _, err = call(
        ["run", str(plan), "--dataset", "arith", "--engine", "vllm", "--out", "x.jsonl"], capsys
    )
    assert code == 2 and "tts-planner[cpu]" in err and err.count("\n") == 1


@pytest.fixture
def fake_models(monkeypatch):
    made = {}

    def engine(kind, policy, seed):
        made["engine"] = FakeEngine(name=policy, fail_after=made.get("fail_after"))
        return made["engine"]

    def verifier(name, policy, prefix_reuse=False):
        made["verifier"] = name
        return FakeVerifier(name=name, spec_name="Qwen/Qwen2.5-Math-PRM-7B")

    monkeypatch.setattr(cli_run, "load_engine", engine)
    monkeypatch.setattr(cli_run, "load_verifier", verifier)
    return made


def test_run_plan_file_and_resume(tmp_path, capsys, fake_models):
    plan = write_plan(tmp_path)
    out = tmp_path / "r.jsonl"
    argv = ["run", str(plan), "--dataset", "arith", "--limit", "3", "--out", str(out), "--json"]
    code, stdout, _ = call(argv, capsys)
    assert code == 0
    summary = json.loads(stdout)  # one JSON object, nothing else on stdout
    records = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["problem_id"] for r in records] == ["arith-L1-0000", "arith-L1-0001", "arith-L1-0002"]
    assert summary["run"] == 3 and summary["skipped"] == 0
    assert summary["accuracy"] == pytest.approx(sum(r["correct"] for r in records) / 3)
    assert summary["predicted_flops"] == 1e12
    assert summary["flops_ratio"] == pytest.approx(summary["mean_flops"] / 1e12)
    assert fake_models["verifier"] == PLAN["prm"]  # the plan's PRM, as no --verifier was given
    assert records[0]["config"]["policy"] == PLAN["policy"]

    code, stdout, _ = call([*argv[:5], "5", *argv[6:]], capsys)  # --limit 5: two more
    assert code == 0 and json.loads(stdout)["skipped"] == 3 and json.loads(stdout)["run"] == 2
    assert len(out.read_text().splitlines()) == 5


def test_run_from_flags_with_table(tmp_path, capsys, fake_models):
    out = tmp_path / "r.jsonl"
    argv = [
        "run",
        "--policy",
        "gemma",
        "--method",
        "best_of_n",
        "--n",
        "4",
        "--selection",
        "vote",
        "--verifier",
        "arith-check",
        "--dataset",
        "arith",
        "--limit",
        "2",
        "--out",
        str(out),
    ]
    code, stdout, _ = call(argv, capsys)
    records = [json.loads(x) for x in out.read_text().splitlines()]
    correct = sum(r["correct"] for r in records)
    assert code == 0 and "accuracy" in stdout and f"({correct}/2)" in stdout
    record = records[0]
    assert record["config"]["selection"] == "vote" and record["config"]["verifier"] == "arith-check"


def test_ctrl_c_keeps_finished_problems(tmp_path, capsys, fake_models):
    out = tmp_path / "r.jsonl"
    argv = [
        "run",
        "--policy",
        "smollm2",
        "--method",
        "majority",
        "--n",
        "2",
        "--dataset",
        "arith",
        "--limit",
        "5",
        "--batch-size",
        "2",
        "--out",
        str(out),
        "--json",
    ]
    fake_models["fail_after"] = 1  # the second batch is interrupted
    code, stdout, err = call(argv, capsys)
    assert code == 130 and "interrupted" in err and stdout == ""
    assert len(out.read_text().splitlines()) == 2
    fake_models["fail_after"] = None
    code, stdout, _ = call(argv, capsys)
    assert code == 0 and json.loads(stdout)["skipped"] == 2 and json.loads(stdout)["run"] == 3
    ids = [json.loads(x)["problem_id"] for x in out.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 5


def test_plan_file_fields(tmp_path):
    from planner.core.planfile import load_plan

    # the extra keys `ttsplan plan --json` prints are ignored; beam_width null is fine for best_of_n
    extra = {"budget": {"kind": "flops", "value": 1e15}, "hardware": None, "candidates": 244, "model": {}}
    path = write_plan(tmp_path, method="best_of_n", n=16, beam_width=None, selection="vote", **extra)
    plan = load_plan(path)
    assert (plan.policy, plan.prm, plan.config.method, plan.config.n) == (
        PLAN["policy"],
        PLAN["prm"],
        "best_of_n",
        16,
    )
    assert (plan.config.selection, plan.config.aggregation) == ("vote", "last")
    assert plan.accuracy_interval == (0.3, 0.5) and plan.flops_per_problem == 1e12
    # cot/majority plans print prm "none" and aggregation/selection "none"
    plan = load_plan(
        write_plan(tmp_path, method="majority", n=8, prm="none", aggregation="none", selection="none")
    )
    assert plan.prm is None and plan.config.method == "majority"
    with pytest.raises(UserError, match="'beam_width'"):
        load_plan(write_plan(tmp_path, beam_width=None))
    with pytest.raises(UserError, match="must be an integer"):
        load_plan(write_plan(tmp_path, n="8"))
    with pytest.raises(UserError, match="JSON object"):
        (tmp_path / "list.json").write_text("[1, 2]")
        load_plan(tmp_path / "list.json")


def test_run_with_early_stopping(tmp_path, capsys, fake_models):
    out = tmp_path / "r.jsonl"
    argv = ["run", "--policy", "gemma", "--method", "majority", "--n", "8", "--dataset", "arith"]
    argv += ["--limit", "6", "--out", str(out), "--json"]
    code, _, err = call([*argv, "--stop", "esc:1"], capsys)
    assert code == 2 and err.startswith("error: --stop: ") and err.count("\n") == 1 and not out.exists()
    code, stdout, err = call([*argv, "--stop", "esc:2"], capsys)
    assert code == 0, err
    summary = json.loads(stdout)
    records = [json.loads(x) for x in out.read_text().splitlines()]
    assert summary["plan"]["stop"] == "esc:2" and records[0]["config"]["stop"] == "esc:2"
    assert summary["mean_samples"] == pytest.approx(sum(len(r["candidates"]) for r in records) / 6)
    assert all(len(r["candidates"]) % 2 == 0 and len(r["candidates"]) <= 8 for r in records)
