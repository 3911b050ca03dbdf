"""Importers: the shipped profiles rebuild from the copied sources; sal and per-sample imports."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from calibration import importers
from calibration.importers import (
    PUBLISHED_DIR,
    build_shipped,
    import_liu2025_tables,
    import_prm_tables,
    import_qwen25math_math100,
    import_rlhflow_bon1024,
    import_sal,
)
from planner.cli.main import main
from planner.core.errors import UserError
from planner.core.profiles import fingerprint, load_profile
from planner.core.scoring import aggregate
from planner.executor.grading import extract_answer, is_equivalent

REPO = Path(__file__).resolve().parent.parent
SAL = PUBLISHED_DIR / "search_and_learn_output_example.jsonl"


def _csv(name: str) -> pd.DataFrame:
    return pd.read_csv(PUBLISHED_DIR / name, dtype=str, keep_default_na=False)


def test_shipped_profiles_rebuild_identically(tmp_path):
    built = build_shipped(tmp_path)
    assert [p.name for p in built] == [
        "liu2025_tables",
        "qwen25math_math100_replay",
        "rlhflow_bon1024",
        "prm_tables_2026_11",
        "art_of_tts",
    ]
    for path in built:
        fresh, shipped = load_profile(path), load_profile(REPO / "profiles" / path.name)
        pd.testing.assert_frame_equal(fresh.records, shipped.records)
        assert fingerprint(fresh.records) == fingerprint(shipped.records)
        samples = path / "samples.csv"  # the replays keep their samples, byte for byte
        assert samples.is_file() == (path.name in ("qwen25math_math100_replay", "art_of_tts"))
        if samples.is_file():
            assert samples.read_bytes() == (REPO / "profiles" / path.name / "samples.csv").read_bytes()
        drop = ("created",)
        assert {k: v for k, v in fresh.meta.items() if k not in drop} == {
            k: v for k, v in shipped.meta.items() if k not in drop
        }


def test_every_published_source_file_has_a_source_note():
    notes = (PUBLISHED_DIR / "SOURCES.md").read_text()
    for path in PUBLISHED_DIR.iterdir():
        if path.name != "SOURCES.md":
            assert f"| {path.name} |" in notes


def test_prm_tables_rows_match_the_csvs():
    records, meta = import_prm_tables()
    assert meta["kind"] == "published"
    zhang = _csv("tables_2026_11/zhang2025_lessons_prm_bon.csv")
    one = zhang[(zhang["method"] == "pass@k") & (zhang["N"] == "1") & (zhang["dataset"] == "MATH")]
    got = records[(records["method"] == "majority") & (records["n"] == 1) & (records["dataset"] == "math")]
    assert len(one) == 1 and got["accuracy"].tolist() == [float(one["accuracy"].iloc[0]) / 100]
    greedy = records[records["method"] == "beam"]
    assert (greedy["beam_width"] == greedy["n"]).all() and len(greedy) == 3
    assert set(records["dataset"]) == {"math", "math500"}
    key = ["dataset", "policy", "prm", "method", "aggregation", "n"]
    assert not records.duplicated(key).any()
    assert not records["prm"].str.contains("judge").any()


def test_liu2025_tables_rows_match_the_csvs():
    records, meta = import_liu2025_tables()
    assert meta["kind"] == "published" and len(meta["assumptions"]) >= 8
    t2, t3, t5, t6 = (
        _csv("liu2025_table2_voting_methods_math500.csv"),
        _csv("liu2025_table3_small_vs_frontier.csv"),
        _csv("liu2025_table5_cot_majority_tts_math500.csv"),
        _csv("liu2025_table6_vs_longcot.csv"),
    )
    # one row per table cell: T2 one per row, T3 and T6 two benchmarks per row, T5 three columns
    assert len(records) == len(t2) + 2 * len(t3) + 3 * len(t5) + 2 * len(t6)
    for table in ("Table 2", "Table 3", "Table 5", "Table 6"):
        assert records["source"].str.contains(table).any()
    assert set(records["difficulty"]) == {"all"} and set(records["problem_id"]) == {""}
    assert records["accuracy"].between(0, 1).all()

    table2 = records[records["source"].str.contains("Table 2")]
    assert set(table2["policy"]) == {"unstated"} and table2["n"].isna().all()
    assert table2["note"].str.contains("not stated").all()
    row = table2[(table2["aggregation"] == "mean") & (table2["selection"] == "max")]
    assert sorted(row["accuracy"].round(3)) == [0.858, 0.878]  # PRM-Avg-Max: 85.8 and 87.8

    table5 = records[records["source"].str.contains("Table 5")]
    llama1b = table5[table5["policy"].str.contains("Llama-3.2-1B")]
    by_method = dict(zip(llama1b["method"], llama1b["accuracy"].round(3), strict=True))
    assert by_method == {"cot": 0.26, "majority": 0.39, "unstated": 0.662}  # 26.0 / 39.0 / 66.2
    assert table5[table5["method"] == "majority"]["n"].isna().all()
    assert (table5[table5["method"] == "cot"]["n"] == 1).all()

    table3 = records[records["source"].str.contains("Table 3") & (records["method"] == "unstated")]
    budgets = table3["n"].dropna().unique().tolist()
    assert budgets == [512]  # the only budget the table states as a number
    assert table3["note"].str.contains("<=256").sum() == 2 * (t3["budget_N"] == "<=256").sum()
    aime = records[(records["dataset"] == "aime24")]
    assert set(aime["n_problems"]) == {30}


def test_rlhflow_rows():
    records, meta = import_rlhflow_bon1024()
    table = _csv("rlhflow_math_rm_bon1024.csv")
    assert len(records) == 2 * len(table)
    cot = records[records["method"] == "cot"]
    assert (cot["n"] == 1).all() and cot["note"].str.contains("not greedy").all()
    bon = records[records["method"] == "best_of_n"]
    assert (bon["n"] == 1024).all()
    assert set(bon[bon["prm"].str.contains("PRM")]["aggregation"]) == {"mean"}
    assert set(bon[bon["prm"].str.contains("ORM")]["aggregation"]) == {"last"}
    assert bon["note"].str.contains("OOD").sum() == 4
    math_prm = bon[(bon["dataset"] == "math500") & (bon["prm"].str.endswith("PRM-Deepseek-Data"))]
    assert math_prm["accuracy"].round(3).tolist() == [0.581]  # README: Deepseek-PRM@1024 on MATH 58.1


def test_qwen_replay_profile():
    records, meta, _ = import_qwen25math_math100()
    raw = pd.read_csv(PUBLISHED_DIR / "persample_qwen25math_math100_8samples_rmscores.csv")
    assert len(records) == 100 * 8 * 3
    assert set(records["policy"]) == {"unstated"}
    per_problem = records.drop_duplicates("problem_id").set_index("problem_id")
    pass1 = raw.groupby("idx")["correct"].mean()
    pass1.index = "math100-" + pass1.index.astype(str)
    pd.testing.assert_series_equal(per_problem["pass1"].sort_index(), pass1.sort_index(), check_names=False)
    assert pass1.mean() == pytest.approx(0.91)
    # difficulty bins, counted straight from the CSV
    expected = {"easy": int((pass1 > 0.5).sum()), "hard": int((pass1 < 0.1).sum())}
    expected["medium"] = 100 - expected["easy"] - expected["hard"]
    assert per_problem["difficulty"].value_counts().to_dict() == expected
    levels = raw.groupby("idx")["level"].first()
    assert per_problem.loc["math100-0", "level"] == str(levels.loc[0])
    # N = 1 of every method is pass@1; more samples never hurt best-of-N on average here
    n1 = records[records["n"] == 1]
    assert n1["accuracy"].mean() == pytest.approx(0.91)
    bon = records[(records["method"] == "best_of_n") & (records["selection"] == "max")]
    curve = bon.groupby("n")["accuracy"].mean()
    assert curve.is_monotonic_increasing and curve.loc[8] <= 0.96  # bounded by pass@8
    assert set(bon["aggregation"]) == {"last"} and bon["note"].str.contains("outcome score").all()


def test_sal_import_agrees_with_the_recorded_picks():
    records, meta = import_sal(SAL, name="sal", policy="Llama-3.2-3B-Instruct")
    rows = [json.loads(line) for line in SAL.read_text().splitlines() if line.strip()]
    assert records["problem_id"].nunique() == len(rows) == 10
    assert sorted(records["n"].unique()) == [1, 2, 3, 4]
    # majority once; best-of-N and weighted vote for each of the 4 aggregations
    assert len(records) == 10 * 4 * (1 + 2 * 4)
    # search-and-learn's agg_scores are the last step score
    for r in rows:
        assert [aggregate(s, "last") for s in r["scores"]] == r["agg_scores"]
    # At k = K = 4 (one subset) a 0/1 accuracy must be the grade of the file's own pick.
    full = records[(records["n"] == 4) & records["aggregation"].isin(["last", "none"])]
    checked = 0
    for r in rows:
        uid = "math500-" + r["unique_id"].removeprefix("test/").removesuffix(".json")
        mine = full[full["problem_id"] == uid]
        for key, method, selection in (
            ("pred_naive@4", "best_of_n", "max"),
            ("pred_weighted@4", "best_of_n", "vote"),
            ("pred_maj@4", "majority", "vote"),
        ):
            acc = mine[(mine["method"] == method) & (mine["selection"] == selection)]["accuracy"].item()
            if acc in (0.0, 1.0):  # no tie, or a tie that cannot change the grade
                assert acc == float(is_equivalent(extract_answer(r[key]), r["answer"])), (uid, key)
                checked += 1
    assert checked >= 25
    # tokens: k times the mean of completion_tokens
    first = rows[0]
    uid = "math500-" + first["unique_id"].removeprefix("test/").removesuffix(".json")
    row = records[(records["problem_id"] == uid) & (records["n"] == 2)].iloc[0]
    assert row["policy_tokens"] == pytest.approx(2 * sum(first["completion_tokens"]) / 4)


def test_sal_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"completions": ["a"], "answer": "1"}\n')
    with pytest.raises(UserError, match="line 1: field 'scores' is missing"):
        import_sal(bad, name="x")
    bad.write_text('{"completions": ["a"], "scores": [[0.5]], "answer": "1"}\n{"comp')
    with pytest.raises(UserError, match="line 2: invalid JSON"):
        import_sal(bad, name="x")
    with pytest.raises(UserError, match="aggregation must be one of"):
        import_sal(SAL, name="x", aggregations=["median"])


def _run(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def test_cli_import_commands(tmp_path, capsys):
    code, out, err = _run(["import", "published", "rlhflow_bon1024", "--out", str(tmp_path / "r")], capsys)
    assert code == 0, err
    assert len(load_profile(tmp_path / "r").records) == 20

    code, out, err = _run(
        [
            "import",
            "sal",
            str(SAL),
            "--out",
            str(tmp_path / "s"),
            "--aggregations",
            "last,min",
            "--ks",
            "1,4",
        ],
        capsys,
    )
    assert code == 0, err
    sal = load_profile(tmp_path / "s")
    assert sal.meta["name"] == "s" and set(sal.records["aggregation"]) == {"last", "min", "none"}
    assert sorted(sal.records["n"].unique()) == [1, 4]

    csv = tmp_path / "samples.csv"
    pd.DataFrame(
        {
            "idx": [0, 0, 0, 1, 1, 1],
            "pred": ["4", "4", "5", "7", "", "8"],
            "correct": [1, 1, 0, 0, 0, 1],
            "rm_score": [0.2, 0.3, 0.9, 0.1, 0.5, 0.6],
            "level": [1, 1, 1, 2, 2, 2],
        }
    ).to_csv(csv, index=False)
    code, out, err = _run(
        [
            "import",
            "persample",
            str(csv),
            "--out",
            str(tmp_path / "p"),
            "--dataset",
            "toy",
            "--source",
            "unit test",
        ],
        capsys,
    )
    assert code == 0, err
    rec = load_profile(tmp_path / "p").records
    maj3 = rec[(rec["method"] == "majority") & (rec["n"] == 3)].set_index("problem_id")["accuracy"]
    # toy-0: "4" twice beats "5"; toy-1: "7" and "8" tie (the empty answer never wins) -> 1/2
    assert maj3.to_dict() == {"toy-0": 1.0, "toy-1": 0.5}


def test_cli_errors_are_one_line_exit_2(tmp_path, capsys):
    code, out, err = _run(["import", "published", "nope", "--out", str(tmp_path / "x")], capsys)
    assert code == 2 and err.startswith("error: unknown published table set 'nope'") and err.count("\n") == 1
    csv = tmp_path / "bad.csv"
    csv.write_text("idx,pred,score\n0,1,0.5\n")
    code, out, err = _run(
        ["import", "persample", str(csv), "--out", str(tmp_path / "y"), "--dataset", "t"], capsys
    )
    assert code == 2 and "column 'correct' is missing" in err
    assert not (tmp_path / "y").exists()


def test_canonical_names_fall_back_to_the_source_name():
    assert importers.canonical("some model nobody registered") == "some model nobody registered"
    assert importers.canonical("unstated") == "unstated"


def test_persample_import_keys_answers_like_live_runs(tmp_path):
    csv = tmp_path / "samples.csv"
    pd.DataFrame(
        {
            "idx": [0, 0, 0, 0, 0],
            "pred": ["1,000", "1000.0", "7", "7", "1,2"],
            "correct": [1, 1, 0, 0, 0],
            "rm_score": [0.2, 0.3, 0.9, 0.1, 0.5],
        }
    ).to_csv(csv, index=False)
    records, _, _ = importers.import_persample(csv, name="k", dataset="t", source="unit test", ks=[5])
    maj = records[records["method"] == "majority"]
    # "1,000" and "1000.0" are one answer with two votes against "7"'s two: a tie split evenly
    assert maj["accuracy"].tolist() == [0.5]


def test_persample_without_scores_gives_majority_rows_alone(tmp_path):
    """Most published rollouts carry no verifier score: the replay keeps the majority-vote rows."""
    src = (
        Path(importers.__file__).parent
        / "data"
        / "published"
        / "persample_qwen25math_math100_8samples_rmscores.csv"
    )
    df = pd.read_csv(src, dtype=str, keep_default_na=False)
    df = df[df["idx"].astype(int) < 10].drop(columns=["rm_score"])
    path = tmp_path / "noscore.csv"
    df.to_csv(path, index=False)
    records, meta, _ = importers.import_persample(path, name="noscore", dataset="math100", ks=[1, 2, 8])
    assert set(records["method"]) == {"majority"} and set(records["prm"]) == {"none"}
    assert sorted(records["n"].unique()) == [1, 2, 8] and records["problem_id"].nunique() == 10
    maj1 = records[records["n"] == 1].set_index("problem_id")["accuracy"]
    correct = df.assign(c=df["correct"].astype(int)).groupby("idx")["c"].mean()
    assert sorted(maj1.round(6)) == sorted(correct.round(6))  # majority@1 is pass@1 per problem


QWEN_SAMPLES = PUBLISHED_DIR / "persample_qwen25math_math100_8samples_rmscores.csv"


def test_persample_ks_above_the_samples_are_extrapolated_and_marked(tmp_path):
    """N above the 8 samples per problem: rows from the per-problem model, basis "extrapolated";
    the replayed rows are those of an import without them, and no measured-cell use sees them."""
    from planner.core.profiles import static_rows
    from planner.predict.features import prepare_training

    plain, _, _ = importers.import_persample(
        QWEN_SAMPLES, name="q", dataset="math100", prm="Qwen2.5-Math-RM-72B", ks=[4, 8]
    )
    records, meta, _ = importers.import_persample(
        QWEN_SAMPLES, name="q", dataset="math100", prm="Qwen2.5-Math-RM-72B", ks=[4, 8, 32, 128]
    )
    assert meta["replay"]["extrapolated_ks"] == [32, 128]
    measured = records[records["basis"] == "measured"].drop(columns="basis").reset_index(drop=True)
    pd.testing.assert_frame_equal(measured, plain)
    extra = records[records["basis"] == "extrapolated"]
    assert set(extra["n"]) == {32, 128} and (extra["problem_id"] == "").all()
    assert {(m, s) for m, s in zip(extra["method"], extra["selection"], strict=True)} == {
        ("majority", "vote"),
        ("best_of_n", "max"),
        ("best_of_n", "vote"),
    }
    every = extra[extra["difficulty"] == "all"].set_index(["method", "selection", "n"])["accuracy"]
    at8 = plain[plain["n"] == 8].groupby(["method", "selection"])["accuracy"].mean()
    for (method, selection), acc in at8.items():
        # the file: majority@8 92.5%, Best-of-N@8 94.0%; more samples move them by a few points at most
        assert abs(every[(method, selection, 32)] - acc) < 0.05
    assert (extra["note"].str.contains("prediction")).all()
    assert len(static_rows(records)) == len(plain)
    _, dropped = prepare_training(records.assign(policy="Qwen/Qwen2.5-Math-7B-Instruct"))
    assert dropped.get("extrapolated (a per-problem model's prediction)") == len(extra)


def test_persample_extrapolation_without_scores_is_majority_alone_and_bounded(tmp_path):
    df = pd.read_csv(QWEN_SAMPLES, dtype=str, keep_default_na=False).drop(columns=["rm_score"])
    path = tmp_path / "noscore.csv"
    df.to_csv(path, index=False)
    records, _, _ = importers.import_persample(path, name="n", dataset="math100", ks=[8, 16])
    extra = records[records["basis"] == "extrapolated"]
    assert len(extra) and set(extra["method"]) == {"majority"}
    with pytest.raises(UserError, match=r"^ks: 4096 is outside 1\.\.1024"):
        importers.import_persample(path, name="n", dataset="math100", ks=[8, 4096])
    one = df[df.groupby("idx").cumcount() == 0]  # one sample per problem: nothing to fit
    one.to_csv(tmp_path / "one.csv", index=False)
    with pytest.raises(UserError, match="at least 2 samples per problem"):
        importers.import_persample(tmp_path / "one.csv", name="n", dataset="math100", ks=[1, 4])


def test_persample_cli_refuses_n_beyond_extrapolation(tmp_path, capsys):
    out = tmp_path / "p"
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "import",
                "persample",
                str(QWEN_SAMPLES),
                "--out",
                str(out),
                "--dataset",
                "math100",
                "--ks",
                "8,2048",
            ]
        )
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith("error: --ks: 2048 is outside") and err.count("\n") == 1
    assert not out.exists()


def test_persample_import_keeps_its_samples_and_fit_calibrates_the_policy(tmp_path, capsys):
    """An imported per-sample file becomes a calibrated policy: the profile keeps samples.csv
    (as the live runs keep theirs), and `ttsplan fit` fits the per-problem model on it."""
    from planner.predict.modelio import load_planner_model

    out = tmp_path / "imp"
    args = ["import", "persample", str(QWEN_SAMPLES), "--out", str(out), "--dataset", "math100"]
    more = ["--policy", "Qwen2.5-0.5B-Instruct", "--prm", "Qwen2.5-Math-RM-72B", "--ks", "1,2,4,8"]
    assert _run([*args, *more], capsys)[0] == 0
    samples = pd.read_csv(out / "samples.csv", dtype={"answer": str})
    raw = pd.read_csv(QWEN_SAMPLES)
    assert len(samples) == len(raw) == 800 and set(samples["policy"]) == {"Qwen/Qwen2.5-0.5B-Instruct"}
    assert samples["correct"].tolist() == raw["correct"].astype(bool).tolist()
    assert samples["score:Qwen/Qwen2.5-Math-RM-72B:last"].tolist() == pytest.approx(raw["rm_score"].tolist())
    model_file = tmp_path / "m.skops"
    assert _run(["fit", "--profiles", str(out), "--out", str(model_file), "--json"], capsys)[0] == 0
    model, _ = load_planner_model(model_file)
    fitted = model.problem_model("Qwen/Qwen2.5-0.5B-Instruct", "math100")
    assert fitted is not None and fitted[1] == 8
    # its majority@8 comes back close to the exact replay of the same samples (92.5%)
    replayed = load_profile(out).records
    maj8 = replayed[(replayed["method"] == "majority") & (replayed["n"] == 8)]["accuracy"].mean()
    got = fitted[0].predict(method="majority", n=8, interval=False)["accuracy"]
    assert abs(got - maj8) < 0.03


def test_persample_file_of_several_sets(tmp_path, capsys):
    """policy and dataset columns: each (policy, dataset) replayed on its own, with its own
    difficulty bins, in one profile; flags that would contradict the columns are refused."""
    raw = pd.read_csv(QWEN_SAMPLES, dtype=str, keep_default_na=False)
    raw = raw[raw["idx"].astype(int) < 20]
    a = raw.assign(policy="Qwen2.5-0.5B-Instruct", dataset="toy")
    b = raw.assign(policy="Qwen2.5-1.5B-Instruct", dataset="toy")
    later = b["sample"].astype(int) >= 1  # the second policy right in its first sample at most
    b.loc[later, "correct"], b.loc[later, "pred"] = "0", "-1"
    path = tmp_path / "two.csv"
    pd.concat([a, b]).drop(columns=["rm_score"]).to_csv(path, index=False)
    out = tmp_path / "two"
    assert _run(["import", "persample", str(path), "--out", str(out), "--ks", "1,4"], capsys)[0] == 0
    records = load_profile(out).records
    per = records[records["problem_id"] != ""].groupby("policy")["pass1"].mean()
    assert set(per.index) == {"Qwen/Qwen2.5-0.5B-Instruct", "Qwen/Qwen2.5-1.5B-Instruct"}
    assert per["Qwen/Qwen2.5-1.5B-Instruct"] < per["Qwen/Qwen2.5-0.5B-Instruct"]
    from planner.predict.samples import profile_sample_sets

    sets = {s.policy: s for s in profile_sample_sets(out, records)}
    assert set(sets) == set(per.index)
    hard = sets["Qwen/Qwen2.5-1.5B-Instruct"].frame  # its own bins, not the other policy's
    assert (hard["difficulty"] != "easy").all() and (
        sets["Qwen/Qwen2.5-0.5B-Instruct"].frame["difficulty"] == "easy"
    ).any()
    for flag in (["--dataset", "toy"], ["--policy", "x"]):
        code, _, err = _run(["import", "persample", str(path), "--out", str(tmp_path / "no"), *flag], capsys)
        assert code == 2 and err.startswith(f"error: {flag[0]}: given") and err.count("\n") == 1
    code, _, err = _run(["import", "persample", str(QWEN_SAMPLES), "--out", str(tmp_path / "no")], capsys)
    assert code == 2 and err.startswith("error: --dataset: not given") and err.count("\n") == 1
    assert not (tmp_path / "no").exists()


def test_persample_single_sample_problems_stay_out_of_samples_csv(tmp_path, capsys):
    """A problem with one sample is replayed (majority@1) but kept out of samples.csv, which the
    per-problem model needs two samples of each problem for; a file of single samples keeps none,
    and fit still works on what the profile has."""
    raw = pd.read_csv(QWEN_SAMPLES, dtype=str, keep_default_na=False)
    raw = raw[raw["idx"].astype(int) < 10]
    raw = raw[(raw["idx"] != "0") | (raw["sample"] == "0")]  # problem 0 keeps one sample
    path = tmp_path / "some.csv"
    raw.to_csv(path, index=False)
    out = tmp_path / "p"
    argv = [
        "import",
        "persample",
        str(path),
        "--out",
        str(out),
        "--dataset",
        "m",
        "--policy",
        "Qwen2.5-0.5B-Instruct",
    ]
    assert _run(argv, capsys)[0] == 0
    kept = pd.read_csv(out / "samples.csv", dtype=str)
    assert sorted(kept["problem_id"].unique()) == [f"m-{i}" for i in range(1, 10)] and len(kept) == 72
    profile = load_profile(out)
    assert "m-0" in set(profile.records["problem_id"])
    assert any("1 problem(s) with a single sample" in a for a in profile.meta["assumptions"])
    assert _run(["fit", "--profiles", str(out), "--out", str(tmp_path / "m.skops"), "--json"], capsys)[0] == 0
    one = raw[raw["sample"] == "0"]
    one.to_csv(tmp_path / "one.csv", index=False)
    assert (
        _run(
            [
                "import",
                "persample",
                str(tmp_path / "one.csv"),
                "--out",
                str(tmp_path / "q"),
                "--dataset",
                "m",
            ],
            capsys,
        )[0]
        == 0
    )
    assert not (tmp_path / "q" / "samples.csv").exists()
