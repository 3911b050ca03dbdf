"""The plan file: what `ttsplan plan --out` writes is what the executor reads; an older, newer or
foreign document is refused in one line."""

from __future__ import annotations

import json

import pytest

from planner.cli.main import main
from planner.core.errors import UserError
from planner.core.planfile import (
    KIND_PER_BIN,
    KIND_SINGLE,
    PLAN_FORMAT,
    PLAN_VERSION,
    check_document,
    document,
    load_plan,
)
from planner.executor.adaptive import load_adaptive_plan


def run(argv, capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    captured = capsys.readouterr()
    return info.value.code, captured.out, captured.err


def test_plan_out_round_trips_into_the_executor(tmp_path, capsys):
    out = tmp_path / "plan.json"
    argv = ["plan", "--policy", "gemma-3-270m", "--prm", "arith-check", "--dataset", "arith"]
    code, _, err = run([*argv, "--budget-n", "16", "--out", str(out)], capsys)
    assert code == 0, err
    written = json.loads(out.read_text())
    assert (written["format"], written["version"], written["kind"]) == (
        PLAN_FORMAT,
        PLAN_VERSION,
        KIND_SINGLE,
    )
    plan = load_plan(out)
    assert plan.policy == written["policy"] and plan.config.n == written["n"]
    assert plan.config.method == written["method"] and plan.prm == written["prm"]
    per_bin = tmp_path / "bins.json"
    code, _, err = run([*argv, "--budget-n", "4", "--per-bin", "--out", str(per_bin)], capsys)
    assert code == 0, err
    assert json.loads(per_bin.read_text())["kind"] == KIND_PER_BIN
    assert set(load_adaptive_plan(per_bin).bins) == {"easy", "medium", "hard"}
    with pytest.raises(UserError, match="not a single-configuration plan"):
        load_plan(per_bin)
    with pytest.raises(UserError, match="not a per-bin plan"):
        load_adaptive_plan(out)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"version": PLAN_VERSION - 1}, "an older version"),
        ({"version": PLAN_VERSION + 1}, "a newer version"),
        ({"version": "1"}, "an unknown version"),
        ({"version": None}, "an unknown version"),
        ({"format": "something-else"}, "not a plan file"),
        ({"kind": "mystery"}, "not a single-configuration plan"),
    ],
)
def test_other_versions_and_formats_are_one_line_errors(tmp_path, capsys, change, message):
    obj = document(KIND_SINGLE, {"policy": "gemma-3-270m", "prm": None, "method": "cot", "n": 1})
    obj.update(change)
    with pytest.raises(UserError, match=message):
        check_document(obj, KIND_SINGLE)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(obj))
    code, out, err = run(["run", str(path), "--dataset", "arith", "--out", str(tmp_path / "r.jsonl")], capsys)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and message in err
    assert not (tmp_path / "r.jsonl").exists()


def test_document_names_its_kind():
    with pytest.raises(UserError, match="kind"):
        document("triple", {})
