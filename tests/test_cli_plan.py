"""`ttsplan fit / plan / predict` through planner.cli.main: output and every bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from planner.cli.main import main
from planner.core.profiles import write_profile
from planner.predict.modelio import DEFAULT_MODEL, manifest_path
from tests.plan_helpers import POLICIES, records

MAIN_JOB = [
    "plan",
    "--policy",
    "Qwen2.5-1.5B-Instruct",
    "--prm",
    "Qwen2.5-Math-PRM-7B",
    "--dataset",
    "math500",
    "--budget-flops",
    "1e15",
]


def run(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def fails(argv, capsys, pattern):
    code, out, err = run(argv, capsys)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert pattern.lower() in lines[0].lower(), lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def small_profile(tmp_path_factory):
    folder = tmp_path_factory.mktemp("profiles") / "synthetic"
    meta = {
        "name": "synthetic",
        "description": "known logistic law (tests/plan_helpers.py)",
        "kind": "measured",
        "sources": ["tests/plan_helpers.py"],
        "assumptions": [],
    }
    write_profile(folder, records(policies=POLICIES[:4]), meta)
    return folder


@pytest.fixture(scope="module")
def model_file(small_profile, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "m.skops"
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--profiles", str(small_profile), "--out", str(out), "--json"])
    assert exc.value.code == 0
    return out


def test_main_job_prints_a_plan(capsys):
    code, out, err = run(MAIN_JOB, capsys)
    assert code == 0, err
    assert "frontier" in out and "Qwen2.5-1.5B-Instruct" in out
    # the legend says where each predictor's intervals come from
    legend = " ".join(out.split())
    assert "for a policy with samples, the accuracy on as many new problems" in legend
    code, out, err = run([*MAIN_JOB, "--predictor", "regressor"], capsys)
    assert code == 0, err
    legend = " ".join(out.split())
    assert "Interval: sized so that 80% of held-out policies'" in legend and "with samples" not in legend


def test_main_job_json(capsys, tmp_path):
    target = tmp_path / "plan.json"
    code, out, err = run([*MAIN_JOB, "--json", "--out", str(target)], capsys)
    assert code == 0, err
    plan = json.loads(out)  # the whole of stdout is one JSON object
    assert plan["flops_per_problem"] <= 1e15
    assert plan["policy"] == "Qwen/Qwen2.5-1.5B-Instruct"
    for key in ("prm", "method", "aggregation", "selection", "n", "beam_width", "accuracy_interval"):
        assert key in plan
    assert plan["budget"] == {"kind": "flops", "value": 1e15}
    assert plan["frontier"] and all(p["flops_per_problem"] <= 1e15 for p in plan["frontier"])
    assert json.loads(target.read_text()) == plan
    assert [p.name for p in tmp_path.iterdir()] == ["plan.json"]
    if DEFAULT_MODEL.exists():
        assert plan["model"]["path"] == "default"


def test_tied_aggregations_are_one_row_and_the_table_fills_with_other_configurations(capsys):
    """A verifier known only from published cells predicts every aggregation alike: the table shows
    such rows once ("last|min|...") and ranks further to list other configurations; the JSON keeps
    every row and the plan's own aggregation."""
    from planner.cli.plan import fold_aggregations

    argv = ["plan", "--policy", "Qwen2.5-1.5B-Instruct", "--dataset", "math500", "--budget-n", "16"]
    code, out, err = run([*argv, "--json"], capsys)
    assert code == 0, err
    plan = json.loads(out)
    rows = [plan, *plan["alternatives"]]
    assert len(rows) == 6 and len({r["aggregation"] for r in rows}) > 1
    folded = fold_aggregations(rows, 6)
    assert len(folded) < len(rows)  # the shipped model ties them: Qwen2.5-Math-PRM-72B is published-only
    first = folded[0]["aggregation"].split("|")
    assert first[0] == plan["aggregation"] and len(first) > 1
    assert sorted(a for f in folded for a in f["aggregation"].split("|")) == sorted(
        r["aggregation"] for r in rows
    )
    code, out, err = run(argv, capsys)
    assert code == 0, err
    assert "predict the same" in out and "|" in out
    table = out.split("frontier")[0]
    assert table.count("│ Qwen2.5-Math-PRM-") + table.count("│ Skywork") + table.count("│ RLHFlow") >= 4


def test_fit_writes_model_and_manifest(model_file, small_profile, capsys):
    from planner.predict.features import prepare_training
    from planner.predict.modelio import load_model
    from tests.plan_helpers import records

    assert model_file.exists() and manifest_path(model_file).exists()
    manifest = json.loads(manifest_path(model_file).read_text())
    assert manifest["extra"]["profiles"] == ["synthetic"]
    rows, _ = prepare_training(records())
    before = load_model(model_file)[0].predict(rows)
    code, out, _ = run(["fit", "--profiles", str(small_profile), "--out", str(model_file), "--json"], capsys)
    assert code == 0
    report = json.loads(out)
    assert len(report["cv"]) == 4 and {r["policy"] for r in report["cv"]} == set(POLICIES[:4])
    # same data, same model (the skops bytes name arrays by object id, so compare predictions)
    assert report["training_fingerprint"] == manifest["training_fingerprint"]
    assert np.array_equal(load_model(model_file)[0].predict(rows), before)


def test_plan_with_model_file_and_hardware(model_file, capsys):
    argv = [
        "plan",
        "--policy",
        "Qwen2.5-3B-Instruct",
        "--policy",
        "Qwen2.5-0.5B-Instruct",
        "--difficulty",
        "medium",
        "--budget-seconds",
        "1",
        "--hardware",
        "h100",
        "--model",
        str(model_file),
        "--json",
    ]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    plan = json.loads(out)
    assert plan["seconds_per_problem"] <= 1 and plan["dollars_per_problem"] > 0
    assert plan["difficulty"] == "medium" and plan["dataset"] is None
    assert plan["model"]["path"] == str(model_file)


def test_predict_json(model_file, capsys):
    argv = ["predict", "--policy", "Qwen2.5-1.5B-Instruct", "--prm", "Qwen2.5-Math-PRM-7B", "--method"]
    argv += ["best_of_n", "--aggregation", "last", "--selection", "max", "--n", "8", "--dataset", "math500"]
    code, out, err = run([*argv, "--model", str(model_file), "--json"], capsys)
    assert code == 0, err
    rec = json.loads(out)
    assert (rec["method"], rec["n"], rec["prm"]) == ("best_of_n", 8, "Qwen/Qwen2.5-Math-PRM-7B")
    assert 0 <= rec["accuracy_interval"][0] <= rec["predicted_accuracy"] <= rec["accuracy_interval"][1] <= 1
    assert rec["flops_per_problem"] > 0 and isinstance(rec["in_calibrated_range"], bool)
    code, out, err = run(
        ["predict", "--policy", "Qwen2.5-1.5B-Instruct", "--method", "cot"] + ["--dataset", "gsm8k"], capsys
    )
    assert code == 0, err
    assert "cot" in out


PLAN = ["plan", "--policy", "Qwen2.5-1.5B-Instruct", "--dataset", "math500"]


@pytest.mark.parametrize(
    ("extra", "pattern"),
    [
        (["--budget-flops", "-1"], "--budget-flops: must be a finite number in (0"),
        (["--budget-flops", "0"], "--budget-flops: must be a finite number in (0"),
        (["--budget-flops", "nan"], "--budget-flops: must be a finite number in (0"),
        (["--budget-flops", "inf"], "--budget-flops: must be a finite number in (0"),
        (["--budget-n", "abc"], "--budget-n: must be a number"),
        (
            ["--budget-seconds", "1e400", "--hardware", "h100"],
            "--budget-seconds: must be a finite number in (0",
        ),
        ([], "give one budget"),
        (["--budget-n", "4", "--budget-flops", "1e15"], "give one budget only"),
        (["--budget-seconds", "1"], "needs a hardware profile"),
        (["--budget-seconds", "1", "--hardware", "tpu9"], "unknown hardware"),
        (["--budget-n", "4", "--prm", "Nope-PRM"], "unknown model"),
        (["--budget-n", "4", "--difficulty", "extreme"], "unknown difficulty"),
        (["--budget-flops", "1"], "no candidate fits the budget"),
    ],
)
def test_plan_bad_input(extra, pattern, capsys):
    fails([*PLAN, *extra], capsys, pattern)


def test_plan_bad_names(capsys):
    fails(["plan", "--policy", "GPT-9", "--dataset", "math500", "--budget-n", "4"], capsys, "unknown model")
    fails(
        ["plan", "--policy", "Qwen2.5-1.5B-Instruct", "--dataset", "mmlu", "--budget-n", "4"],
        capsys,
        "dataset",
    )
    fails(["plan", "--dataset", "math500", "--budget-n", "4"], capsys, "--policy")
    fails(
        ["plan", "--policy", "Qwen2.5-1.5B-Instruct", "--budget-n", "4"],
        capsys,
        "give a dataset or a difficulty",
    )


def test_predict_bad_input(capsys):
    base = ["predict", "--policy", "Qwen2.5-1.5B-Instruct", "--dataset", "math500"]
    fails([*base, "--method", "mcts", "--n", "4"], capsys, "unknown method")
    fails([*base, "--method", "best_of_n", "--n", "4"], capsys, "--aggregation")
    fails([*base, "--method", "majority"], capsys, "--n")
    fails(
        [
            *base,
            "--method",
            "beam",
            "--prm",
            "Qwen2.5-Math-PRM-7B",
            "--aggregation",
            "last",
            "--selection",
            "max",
            "--n",
            "6",
        ],
        capsys,
        "divisible",
    )
    fails([*base, "--method", "cot", "--prm", "Nope"], capsys, "--prm: method cot uses no prm")
    fails(
        ["predict", "--policy", "Qwen2.5-1.5B-Instruct", "--method", "cot", "--dataset", "nope"],
        capsys,
        "dataset",
    )


def test_fit_bad_folders(tmp_path, capsys):
    out = str(tmp_path / "m.skops")
    fails(["fit", "--profiles", str(tmp_path / "missing"), "--out", out], capsys, "does not exist")
    empty = tmp_path / "empty"
    empty.mkdir()
    fails(["fit", "--profiles", str(empty), "--out", out], capsys, "is empty")
    fails(["fit", "--out", out], capsys, "--profiles")
    assert not (tmp_path / "m.skops").exists()


def test_corrupt_model_is_refused(model_file, tmp_path, capsys):
    bad = tmp_path / "bad.skops"
    data = bytearray(model_file.read_bytes())
    data[100] ^= 0x01
    bad.write_bytes(bytes(data))
    manifest_path(bad).write_text(manifest_path(model_file).read_text())
    line = fails([*MAIN_JOB, "--model", str(bad)], capsys, "does not match the sha256")
    assert "bad.skops" in line
    manifest_path(bad).unlink()
    fails([*MAIN_JOB, "--model", str(bad)], capsys, "manifest missing")


def test_model_config_policy(model_file, tmp_path, capsys):
    """A policy outside the registry, given by its config.json (here the registry's Qwen2.5-3B one)."""
    from importlib import resources

    registry = json.loads(resources.files("planner").joinpath("data/models/registry.json").read_text())
    entry = next(m for m in registry["models"] if m["name"] == "Qwen/Qwen2.5-3B-Instruct")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**entry["config"], "_name_or_path": "my-org/private-3b"}))
    argv = ["plan", "--model-config", str(config), "--dataset", "math500", "--budget-n", "8"]
    code, out, err = run([*argv, "--model", str(model_file), "--json"], capsys)
    assert code == 0, err
    plan = json.loads(out)
    assert plan["policy"] == "my-org/private-3b"
    assert plan["n"] <= 8
    fails(
        ["plan", "--model-config", str(tmp_path / "nope.json"), "--dataset", "math500", "--budget-n", "8"],
        capsys,
        "config.json",
    )


def test_gemma_on_arith_is_planned_from_the_shipped_cpu_profile(capsys):
    """The shipped model was fitted on profiles/cpu_arith_gemma: a plan for Gemma-3-270m on arith is
    inside its calibrated range, and it ranks by what was measured there (the exact checker helps)."""
    manifest = json.loads(DEFAULT_MODEL.with_name(DEFAULT_MODEL.name + ".manifest.json").read_text())
    assert "cpu_arith_gemma" in manifest["extra"]["profiles"]
    argv = [
        "plan",
        "--policy",
        "gemma-3-270m",
        "--prm",
        "arith-check",
        "--dataset",
        "arith",
        "--budget-n",
        "16",
        "--aggregation",
        "min",
        "--aggregation",
        "mean",
        "--json",
    ]
    code, out, _ = run(argv, capsys)
    plan = json.loads(out)
    assert code == 0 and plan["policy"] == "google/gemma-3-270m" and plan["in_calibrated_range"] is True
    base = ["plan", "--policy", "gemma-3-270m", "--dataset", "arith", "--budget-n", "1"]
    cot = json.loads(run([*base, "--method", "cot", "--json"], capsys)[1])
    assert plan["predicted_accuracy"] > cot["predicted_accuracy"]
