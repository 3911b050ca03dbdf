"""bench/recommendations.py on a hand-made per-problem profile whose best cells are known."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from planner.core.profiles import write_profile

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "recommendations.py"
POLICY = "HuggingFaceTB/SmolLM2-135M-Instruct"
PROBLEMS = {"p1": "easy", "p2": "easy", "p3": "medium", "p4": "hard"}
# cell -> accuracy on p1..p4. Chosen so that each bin's best cell per budget is unique.
ACC = {
    ("cot", "none", 1): (1.0, 0.8, 0.2, 0.0),
    ("majority", "none", 1): (0.7, 0.7, 0.3, 0.05),
    ("majority", "none", 2): (0.8, 0.8, 0.4, 0.1),
    ("majority", "none", 4): (1.0, 1.0, 0.5, 0.1),
    ("best_of_n", "last", 1): (0.7, 0.7, 0.35, 0.04),
    ("best_of_n", "last", 2): (0.85, 0.85, 0.6, 0.2),
    ("best_of_n", "last", 4): (0.9, 0.9, 0.8, 0.3),
}


def load_script():
    spec = importlib.util.spec_from_file_location("recommendations", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_profile(folder: Path) -> Path:
    rows = []
    for (method, agg, n), accs in ACC.items():
        for (pid, difficulty), acc in zip(PROBLEMS.items(), accs, strict=True):
            rows.append(
                {
                    "dataset": "arith",
                    "problem_id": pid,
                    "level": "1",
                    "difficulty": difficulty,
                    "pass1": 0.5,
                    "policy": POLICY,
                    "prm": "arith-check" if agg != "none" else "none",
                    "method": method,
                    "aggregation": agg,
                    "selection": {"cot": "none", "majority": "vote"}.get(method, "max"),
                    "n": n,
                    "beam_width": None,
                    "accuracy": acc,
                    "n_problems": 1,
                    "policy_tokens": 100.0 * n,
                    "prm_tokens": 0.0,
                    "flops": 1e9 * n,
                    "source": "hand-made",
                    "note": "",
                }
            )
    meta = {
        "name": "tiny",
        "description": "hand-made",
        "kind": "measured",
        "sources": ["test"],
        "assumptions": [],
    }
    write_profile(folder, pd.DataFrame(rows), meta)
    return folder


def bin_mean(method: str, agg: str, n: int, difficulty: str) -> float:
    """A cell's accuracy over a bin's problems, from ACC directly."""
    accs = ACC[(method, agg, n)]
    picked = [a for a, d in zip(accs, PROBLEMS.values(), strict=True) if difficulty in ("all", d)]
    return sum(picked) / len(picked)


class FakeModel:
    """Prefers larger n, "prod" over "last", "max" over "vote"; majority on hard problems.

    So outside the hard bin its first choice is best_of_n prod/max (not measured) and its
    second best_of_n last/max."""

    def assess(self, rows: pd.DataFrame):
        n = rows["n"].to_numpy(dtype=float)
        agg = rows["aggregation"].map({"prod": 0.01, "last": 0.005}).fillna(0.0).to_numpy()
        sel = np.where(rows["selection"] == "max", 0.02, 0.0)
        hard = np.where((rows["difficulty"] == "hard") & (rows["method"] == "majority"), 0.5, 0.0)
        pred = 0.1 + 0.05 * np.log2(n) + agg + sel + hard
        return pred, pred - 0.05, pred + 0.05, np.ones(len(rows), dtype=bool)


def run(tmp_path, model, budgets="1,4"):
    module = load_script()
    profile = make_profile(tmp_path / "tiny")
    out = tmp_path / "out" / "rec"
    code = module.main(["--profiles", str(profile), "--budgets-n", budgets, "--out", str(out)], model=model)
    assert code == 0
    obj = json.loads((tmp_path / "out" / "rec.json").read_text())
    md = (tmp_path / "out" / "rec.md").read_text()
    return {(r["difficulty"], r["budget_n"]): r for r in obj["rows"]}, md


def test_best_measured_and_choice_lookup(tmp_path, capsys):
    rows, md = run(tmp_path, FakeModel())
    assert capsys.readouterr().out.strip() == md.strip()
    expected_best = {
        ("all", 1): ("cot", 1, 0.5),
        ("all", 4): ("best_of_n", 4, 0.725),
        ("easy", 1): ("cot", 1, 0.9),
        ("easy", 4): ("majority", 4, 1.0),
        ("medium", 1): ("best_of_n", 1, 0.35),
        ("medium", 4): ("best_of_n", 4, 0.8),
        ("hard", 1): ("majority", 1, 0.05),
        ("hard", 4): ("best_of_n", 4, 0.3),
    }
    assert set(rows) == set(expected_best)
    for key, (method, n, acc) in expected_best.items():
        row = rows[key]
        assert (row["best"]["method"], row["best"]["n"]) == (method, n), key
        assert row["best_accuracy"] == pytest.approx(acc), key
        assert row["best_ties"] == 1
        assert row["problems"] == {"all": 4, "easy": 2, "medium": 1, "hard": 1}[key[0]]

    for (difficulty, budget), row in rows.items():
        if difficulty == "hard":  # majority is measured: the choice itself is looked up
            assert row["choice"]["method"] == "majority" and row["choice"]["n"] == budget
            assert row["choice_measured"]
            assert row["choice_accuracy"] == pytest.approx(bin_mean("majority", "none", budget, "hard"))
            assert row["measured_choice_rank"] == 1
        else:  # prod is not measured: the next candidate, best_of_n last/max, is
            choice = row["choice"]
            assert (choice["method"], choice["aggregation"], choice["selection"]) == (
                "best_of_n",
                "prod",
                "max",
            )
            assert not row["choice_measured"] and row["choice_accuracy"] is None
            second = row["measured_choice"]
            assert (second["aggregation"], second["selection"], second["n"]) == ("last", "max", budget)
            assert row["measured_choice_rank"] == 2
            want = bin_mean("best_of_n", "last", budget, difficulty)
            assert row["measured_choice_accuracy"] == pytest.approx(want)
            assert row["gap_points"] == pytest.approx(100 * (row["best_accuracy"] - want))
    assert "not measured" in md and "| easy | 4 | best_of_n n=4 prod/max |" in md


def test_fitted_model_choice_is_looked_up(tmp_path):
    from planner.core.profiles import load_profiles
    from planner.predict.regressor import fit_profiles

    model, _ = fit_profiles(load_profiles([make_profile(tmp_path / "fit")]))
    rows, _ = run(tmp_path, model, budgets="2")
    assert {r["budget_n"] for r in rows.values()} == {2}
    for (difficulty, _), row in rows.items():
        choice = row["choice"]
        assert choice["n"] <= 2
        if row["choice_measured"]:
            want = bin_mean(choice["method"], choice["aggregation"], choice["n"], difficulty)
            assert row["choice_accuracy"] == pytest.approx(want)
        assert math.isfinite(row["gap_points"]) and row["gap_points"] >= -1e-9


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--budgets-n", "0"], "--budgets-n"),
        (["--budgets-n", "4,x"], "--budgets-n"),
        (["--profiles", "/nonexistent/profile"], "does not exist"),
        (["--bogus"], "unrecognized"),
    ],
)
def test_bad_args_exit_2(tmp_path, capsys, args, needle):
    module = load_script()
    profile = make_profile(tmp_path / "tiny")
    argv = ["--profiles", str(profile), "--out", str(tmp_path / "rec"), *args]
    assert module.main(argv, model=FakeModel()) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle in err and err.count("\n") == 1
    assert not (tmp_path / "rec.json").exists()
