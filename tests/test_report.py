"""`ttsplan report` on a hand-made per-problem profile: PNGs, report.md, bad input."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from planner.cli.main import main
from planner.core.profiles import SCHEMA, load_profiles, write_profile
from planner.plan.report import REPORT_FILE, panel_bins, slug

matplotlib_image = pytest.importorskip("matplotlib.image")

POLICY = "google/gemma-3-270m"
PROBLEMS = {"p1": "easy", "p2": "easy", "p3": "easy", "p4": "hard", "p5": "hard", "p6": "hard"}
# method, n, prm, FLOPs per problem, problems solved
CELLS = [
    ("cot", 1, "none", 1e11, {"p1", "p2"}),
    ("majority", 2, "none", 2e11, {"p1", "p2"}),
    ("majority", 4, "none", 4e11, {"p1", "p2", "p3"}),
    ("majority", 8, "none", 8e11, {"p1", "p2", "p3", "p4"}),
    ("best_of_n", 4, "arith-check", 4e11, {"p1", "p2", "p3", "p4"}),
    ("best_of_n", 8, "arith-check", 8e11, {"p1", "p2", "p3", "p4", "p5"}),
]
META = {
    "name": "hand-arith",
    "description": "hand-made per-problem cells for tests/test_report.py",
    "kind": "measured",
    "sources": ["tests/test_report.py"],
    "assumptions": [],
}


def _row(method, n, prm, flops, problem, solved, dataset="arith", policy=POLICY) -> dict:
    return {
        "dataset": dataset,
        "problem_id": problem,
        "level": "1",
        "difficulty": PROBLEMS.get(problem, "all"),
        "pass1": np.nan,
        "policy": policy,
        "prm": prm,
        "method": method,
        "aggregation": "none" if prm == "none" else "min",
        "selection": {"cot": "none", "majority": "vote"}.get(method, "max"),
        "n": n,
        "beam_width": pd.NA,
        "accuracy": 1.0 if problem in solved else 0.0,
        "n_problems": 1,
        "policy_tokens": np.nan,
        "prm_tokens": np.nan,
        "flops": flops,
        "source": "hand",
        "note": "",
    }


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    rows = [_row(*cell[:4], p, cell[4]) for cell in CELLS for p in PROBLEMS]
    # a second (dataset, policy) with one cell: listed, not plotted
    rows.append(_row("cot", 1, "none", 1e11, "q1", {"q1"}, dataset="gsm8k"))
    records = pd.DataFrame(rows)
    for col in ("n", "beam_width"):
        records[col] = records[col].astype("Int64")
    folder = tmp_path_factory.mktemp("report") / "hand"
    write_profile(folder, records[list(SCHEMA)], META)
    return folder


def run(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def test_panel_bins_follow_the_difficulties_present(profile):
    records = load_profiles([profile])
    assert panel_bins(records[records["dataset"] == "arith"]) == ["easy", "hard", "all"]
    assert panel_bins(records[records["dataset"] == "gsm8k"]) == ["all"]


def test_report_writes_pngs_and_markdown(profile, tmp_path, capsys):
    out = tmp_path / "report"
    code, stdout, err = run(["report", str(profile), "--out", str(out)], capsys)
    assert code == 0, err
    png = out / f"{slug(f'arith-{POLICY}')}.png"
    assert png.name == "arith-google-gemma-3-270m.png"
    assert sorted(p.name for p in out.iterdir()) == [png.name, REPORT_FILE]
    image = matplotlib_image.imread(png)
    # three panels (easy, hard, all): 4.5 in each plus 2.5 in of legend, 4 in high, at 100 dpi
    assert image.shape[:2] == (400, 1600)
    assert image[..., :3].std() > 0  # something is drawn
    text = (out / REPORT_FILE).read_text()
    assert f"]({png.name})" in text
    assert "gsm8k / google/gemma-3-270m: 1 cell(s) with FLOPs" in text
    # best measured cell at the dearest budget (8e11): best_of_n n=8 solves 5 of 6
    last = [line for line in text.splitlines() if line.startswith("| 8e+11")]
    assert len(last) == 1 and "best_of_n n=8 min/max arith-check | 83.3%" in last[0]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".report-")]


def test_report_into_an_existing_folder_replaces_files(profile, tmp_path, capsys):
    out = tmp_path / "again"
    out.mkdir()
    (out / REPORT_FILE).write_text("old")
    code, _, err = run(["report", str(profile), "--out", str(out)], capsys)
    assert code == 0, err
    assert (out / REPORT_FILE).read_text().startswith("# Test-time scaling report")
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_report_without_matplotlib_is_a_user_error(profile, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    out = tmp_path / "none"
    code, _, err = run(["report", str(profile), "--out", str(out)], capsys)
    assert code == 2 and "tts-planner[calibrate]" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("bad", ["missing-parent", "missing-profile", "out-is-a-file"])
def test_report_bad_input(profile, tmp_path, capsys, bad):
    out, profiles = tmp_path / "out", [str(profile)]
    if bad == "missing-parent":
        out = tmp_path / "no" / "out"
    elif bad == "missing-profile":
        profiles = [str(tmp_path / "nope")]
    else:
        out.write_text("x")
    code, _, err = run(["report", *profiles, "--out", str(out)], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert not [p for p in tmp_path.rglob(".report-*")]
