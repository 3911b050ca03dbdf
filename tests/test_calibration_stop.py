"""`ttsplan calibrate --stop`: early-stopping rules replayed on the calibration's own sampling run
(fake engine), through the importer's replay code; a finished run only re-derives its profile."""

from __future__ import annotations

import shutil
from dataclasses import replace

import pandas as pd
import pytest

from calibration.calibrate import calibrate, load_grid, rebuild
from planner.cli.main import main
from planner.core.profiles import OPTIONAL, load_profile, static_rows
from planner.core.scoring import aggregate, answer_key
from tests.fake_calibration import DATASET, LOADERS
from tests.test_calibration_run import GRID as RUN_GRID
from tests.test_calibration_run import step_records

GRID = replace(
    RUN_GRID,
    name="fake_stop",
    methods=("majority", "best_of_n"),
    aggregations=("min",),
    n=(2, 4, 8),
    batch_size=3,
)
STOPS = ("beta:0.95", "esc:2")


def _cli(args: list[str]) -> int:
    try:
        return main(args) or 0
    except SystemExit as exc:
        return exc.code


def _run(out, grid=GRID, loaders=LOADERS):
    return calibrate(grid, out, progress=False, check_models=False, loaders=loaders)


@pytest.fixture(scope="module")
def stopped(tmp_path_factory):
    out = tmp_path_factory.mktemp("cal") / "stop"
    return _run(out, replace(GRID, stops=STOPS))


def _esc2(keys: list, cap: int) -> int:
    """Samples ESC with a window of 2 draws: the first pair (samples 2m-1, 2m) of one answer."""
    for m in range(2, cap + 1, 2):
        if keys[m - 2] is not None and keys[m - 2] == keys[m - 1]:
            return m
    return cap


def test_stop_rows_replay_the_recorded_order_with_the_cap_as_n(stopped):
    rec = stopped.records
    steps = step_records(stopped.profile)
    esc = rec[(rec["stop"] == "esc:2") & (rec["method"] == "majority")]
    assert sorted(set(esc["n"])) == [2, 4, 8]
    for row in esc.itertuples():
        answers = steps[("sample", row.problem_id)]["answers"]
        keys = [answer_key(a) if a else None for a in answers]
        assert row.samples_used == _esc2(keys, row.n)
    beta = rec[rec["stop"] == "beta:0.95"]
    assert set(beta["method"]) == {"majority", "best_of_n"}
    assert set(beta.loc[beta["method"] == "best_of_n", "selection"]) == {"vote"}
    assert (beta["samples_used"] <= beta["n"]).all() and (beta["samples_used"] >= 1).all()
    assert beta["samples_used"].lt(beta["n"]).any()  # the rule does stop early on some problems
    # the cost is that of the samples drawn: fewer samples, fewer tokens than the fixed cap
    fixed = static_rows(rec)
    cap8 = fixed[(fixed["method"] == "majority") & (fixed["n"] == 8)].set_index("problem_id")
    for row in beta[(beta["method"] == "majority") & (beta["n"] == 8)].itertuples():
        gen = steps[("sample", row.problem_id)]["generated_tokens"]
        prompt = steps[("sample", row.problem_id)]["prompt_tokens"]
        assert row.policy_tokens == prompt + sum(gen[: int(row.samples_used)])
        assert row.difficulty == cap8.loc[row.problem_id, "difficulty"]  # the run's bin
        assert row.pass1 == cap8.loc[row.problem_id, "pass1"]
        if row.samples_used == 8:  # never stopped: the method at the cap
            assert row.policy_tokens == pytest.approx(cap8.loc[row.problem_id, "policy_tokens"])
            assert row.accuracy == row.accuracy_at_cap
    meta = load_profile(stopped.profile).meta
    assert meta["grid"]["stops"] == list(STOPS)
    assert any("Early-stopping rows" in a and "beta:0.95" in a for a in meta["assumptions"])


def test_stop_rows_equal_the_persample_import_of_the_same_samples(stopped, tmp_path, capsys):
    """The same samples written as a per-sample CSV and imported with --stop give the same rows."""
    steps = step_records(stopped.profile)
    rows = []
    for (step, pid), data in steps.items():
        if step != "sample":
            continue
        scores = steps[("score:arith-check", pid)]["step_scores"]
        for i, (a, ok) in enumerate(zip(data["answers"], data["correct"], strict=True)):
            rows.append(
                {"idx": pid, "pred": a, "correct": int(ok), "score": aggregate(scores[i], "min"), "level": 1}
            )
    csv = tmp_path / "s.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    args = ["import", "persample", str(csv), "--out", str(tmp_path / "p"), "--dataset", "x", "--source", "t"]
    args += ["--ks", "2,4,8", "--prm", "arith-check", "--aggregation", "min"]
    args += [f for s in STOPS for f in ("--stop", s)]
    assert _cli(args) == 0, capsys.readouterr().err
    imported = load_profile(tmp_path / "p").records
    imported = imported[imported["stop"] != ""].assign(problem_id=lambda d: d["problem_id"].str[2:])
    mine = stopped.records[stopped.records["stop"] != ""]
    keys = ["problem_id", "method", "stop", "n"]
    cols = ["accuracy", "samples_used", "accuracy_at_cap"]
    a = mine.set_index(keys)[cols].sort_index()
    b = imported.set_index(keys)[cols].sort_index()
    assert len(a) == len(b) == 6 * 3 * 2 * 2  # problems x caps x rules x (majority, vote)
    pd.testing.assert_frame_equal(a, b)


def _refuse(*args, **kw):
    raise AssertionError("a finished run must not load an engine to add stop rows")


def test_stops_on_a_finished_run_only_rederive(stopped, tmp_path):
    plain = _run(tmp_path / "plain")
    assert "stop" not in plain.records.columns
    again = _run(tmp_path / "plain", replace(GRID, stops=STOPS), loaders=(_refuse, _refuse))
    assert static_rows(again.records).drop(columns=list(OPTIONAL)).equals(static_rows(plain.records))
    pd.testing.assert_frame_equal(
        again.records.drop(columns="source").reset_index(drop=True),
        stopped.records.drop(columns="source").reset_index(drop=True),
    )
    assert again.separate_flops == pytest.approx(plain.separate_flops)  # stop rows are not cells run
    # rebuild with other rules (grid.json records them); () drops the stop rows again
    shutil.copytree(tmp_path / "plain", tmp_path / "re")
    one = rebuild(tmp_path / "re", stops=("esc:4",))
    assert set(one.records["stop"]) == {"", "esc:4"} and load_grid(tmp_path / "re").stops == ("esc:4",)
    none = rebuild(tmp_path / "re", stops=())
    assert none.records.equals(plain.records)


def test_bad_stop_flag_is_one_line_exit_2(tmp_path, capsys):
    out = tmp_path / "x"
    code = _cli(["calibrate", "--policy", "p", "--dataset", DATASET, "--out", str(out), "--stop", "beta:2"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: --stop: beta confidence") and err.count("\n") == 1
    assert not out.exists()
    code = _cli(["calibrate", "--policy", "p", "--out", str(out), "--method", "cot", "--stop", "esc:4"])
    err = capsys.readouterr().err
    assert (
        code == 2
        and err == "error: --stop: early stopping needs majority or best_of_n in methods\n"
        and not out.exists()
    )


def test_summary_keeps_stop_rows_apart_from_fixed_cells(stopped):
    from calibration.summary import summary_json

    cells = [c for c in summary_json(stopped)["cells"] if c["method"] == "majority" and c["n"] == 8]
    by_stop = {c["stop"]: c for c in cells}
    assert set(by_stop) == {"", *STOPS}
    rec = stopped.records
    fixed = rec[(rec["stop"] == "") & (rec["method"] == "majority") & (rec["n"] == 8)]
    assert (
        by_stop[""]["accuracy"] == pytest.approx(fixed["accuracy"].mean())
        and by_stop[""]["samples_used"] is None
    )
    beta = rec[(rec["stop"] == "beta:0.95") & (rec["method"] == "majority") & (rec["n"] == 8)]
    assert by_stop["beta:0.95"]["samples_used"] == pytest.approx(beta["samples_used"].mean())
