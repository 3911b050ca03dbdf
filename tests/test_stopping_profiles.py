"""Early-stopping cells in profiles: `ttsplan import persample --stop` writes them with the cap as n,
samples_used and the cost of the samples drawn; they load beside fixed-N cells and stay out of the
regressor's training rows and the measured fixed-N cells."""

from __future__ import annotations

import pandas as pd
import pytest

from planner.cli.main import main
from planner.core.errors import UserError
from planner.core.profiles import load_profile, load_profiles, static_rows, validate_records
from planner.plan.evaluate import measured_cells
from planner.predict.features import prepare_training

# Three problems x 8 samples in this order; tokens 10 per sample, FLOPs 1e9 per sample.
ORDERS = {
    "a": (["5"] * 8, "5"),  # settles at 4 under beta:0.95 (1 - 0.5**5 >= 0.95 > 1 - 0.5**4)
    "b": (["1", "2"] * 4, "1"),  # never settles: the cap; the 4-4 tie goes to the answer drawn first
    "c": (["3"] * 4 + ["4"] * 4, "4"),  # settles at 4 on a wrong answer
}


def _csv(path):
    rows = []
    for pid, (answers, gold) in ORDERS.items():
        for i, a in enumerate(answers):
            score = 0.9 if a == gold else 0.2
            rows.append(
                {
                    "idx": pid,
                    "pred": a,
                    "correct": int(a == gold),
                    "rm_score": score,
                    "tokens": 10 + i,
                    "flops": 1e9 * (1 + i),
                    "level": 1,
                }
            )
    pd.DataFrame(rows).to_csv(path, index=False)


def _run(args, capsys):
    try:
        code = main(args)
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _persample(csv, source: str, *more: str) -> list[str]:
    """`ttsplan import persample CSV --dataset toy --source SOURCE MORE...`."""
    return ["import", "persample", str(csv), "--dataset", "toy", "--source", source, *more]


def test_import_persample_with_stop_writes_samples_used_and_spent_cost(tmp_path, capsys):
    csv = tmp_path / "s.csv"
    _csv(csv)
    stops = ["--stop", "beta:0.95", "--stop", "esc:4"]
    args = _persample(csv, "unit test", "--out", str(tmp_path / "p"), "--ks", "2,8", *stops)
    code, out, err = _run(args, capsys)
    assert code == 0, err
    profile = load_profile(tmp_path / "p")
    rec = profile.records
    assert profile.meta["replay"]["stops"] == ["beta:0.95", "esc:4"]
    beta = rec[(rec["stop"] == "beta:0.95") & (rec["n"] == 8)]
    maj = beta[beta["method"] == "majority"].set_index("problem_id")
    assert maj["samples_used"].to_dict() == {"toy-a": 4.0, "toy-b": 8.0, "toy-c": 4.0}
    assert maj["accuracy"].to_dict() == {"toy-a": 1.0, "toy-b": 1.0, "toy-c": 0.0}
    # tokens and FLOPs of the samples drawn (10 + i and 1e9 (1 + i) for sample i)
    assert maj.loc["toy-a", "policy_tokens"] == 10 + 11 + 12 + 13
    assert maj.loc["toy-b", "flops"] == pytest.approx(1e9 * sum(range(1, 9)))
    vote = beta[beta["method"] == "best_of_n"].set_index("problem_id")
    assert set(vote["selection"]) == {"vote"} and vote.loc["toy-b", "accuracy"] == 1.0  # 0.9 x 4 > 0.2 x 4
    esc = rec[(rec["stop"] == "esc:4") & (rec["n"] == 8) & (rec["method"] == "majority")]
    assert esc.set_index("problem_id")["samples_used"].to_dict() == {"toy-a": 4.0, "toy-b": 8.0, "toy-c": 4.0}
    # a cap below the rule's window: the round is cut at the cap
    assert set(rec[(rec["stop"] == "esc:4") & (rec["n"] == 2)]["samples_used"]) == {2.0}
    # fixed-N rows: no rule, no samples_used, k times the mean cost
    fixed = rec[(rec["stop"] == "") & (rec["method"] == "majority") & (rec["n"] == 8)]
    assert fixed["samples_used"].isna().all() and fixed["flops"].iloc[0] == pytest.approx(1e9 * 36)


def test_early_stopping_rows_stay_out_of_fixed_n_cells_and_training(tmp_path, capsys):
    csv = tmp_path / "s.csv"
    _csv(csv)
    base = _persample(csv, "t", "--ks", "8", "--policy", "Qwen2.5-0.5B-Instruct")
    assert _run([*base, "--out", str(tmp_path / "plain")], capsys)[0] == 0
    assert _run([*base, "--out", str(tmp_path / "stop"), "--stop", "beta:0.95"], capsys)[0] == 0
    plain = load_profiles([tmp_path / "plain"])  # written without the optional columns: filled in
    assert set(plain["stop"]) == {""} and plain["samples_used"].isna().all()
    both = load_profiles([tmp_path / "stop"])
    assert len(static_rows(both)) == len(plain)
    cells = measured_cells(both)
    assert cells.equals(measured_cells(plain))  # fixed-N cells unchanged by the adaptive rows
    rows, dropped = prepare_training(both)
    assert dropped["early stopping (samples_used, not a fixed N)"] == 3 * 2  # majority + vote, 3 problems
    assert len(rows) == len(prepare_training(plain)[0])


@pytest.mark.parametrize(
    "change, message",
    [
        ({"stop": "beta:2"}, "column 'stop'"),
        ({"samples_used": 9.0}, "column 'samples_used'"),
        ({"samples_used": float("nan")}, "column 'samples_used'"),
        ({"accuracy_at_cap": 1.5}, "column 'accuracy_at_cap'"),
        ({"method": "cot", "n": 1, "selection": "none"}, "column 'stop'"),
    ],
)
def test_bad_early_stopping_rows_are_refused(tmp_path, capsys, change, message):
    csv = tmp_path / "s.csv"
    _csv(csv)
    out = tmp_path / "p"
    args = _persample(csv, "t", "--out", str(out), "--ks", "8", "--stop", "esc:4")
    assert _run(args, capsys)[0] == 0
    rec = load_profile(out).records
    row = rec[(rec["stop"] == "esc:4") & (rec["method"] == "majority")].index[0]
    for col, value in change.items():
        rec.loc[row, col] = value
    with pytest.raises(UserError, match=message):
        validate_records(rec, "t")
    with pytest.raises(UserError, match="column 'samples_used' is missing"):
        validate_records(rec.drop(columns=["samples_used"]), "t")


def test_bad_stop_flag_is_one_line_exit_2(tmp_path, capsys):
    csv = tmp_path / "s.csv"
    _csv(csv)
    code, out, err = _run(
        [
            "import",
            "persample",
            str(csv),
            "--out",
            str(tmp_path / "x"),
            "--dataset",
            "t",
            "--source",
            "t",
            "--stop",
            "beta:1.5",
        ],
        capsys,
    )
    assert code == 2 and err.startswith("error: --stop: beta confidence") and err.count("\n") == 1
    assert not (tmp_path / "x").exists()
