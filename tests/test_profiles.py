"""Profiles: schema checks, one-line errors naming the file, atomic writes, round trips."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from planner.core import profiles
from planner.core.errors import UserError
from planner.core.profiles import (
    OPTIONAL,
    SCHEMA,
    default_profile_dirs,
    fingerprint,
    load_profile,
    load_profiles,
    validate_records,
    write_profile,
)
from planner.core.vocab import difficulty_from_pass1


def _records() -> pd.DataFrame:
    base = {
        "dataset": "math500",
        "problem_id": "",
        "level": "",
        "difficulty": "all",
        "pass1": math.nan,
        "policy": "Qwen2.5-1.5B-Instruct",
        "prm": "none",
        "method": "cot",
        "aggregation": "none",
        "selection": "none",
        "n": 1,
        "beam_width": None,
        "accuracy": 0.544,
        "n_problems": 500,
        "policy_tokens": math.nan,
        "prm_tokens": math.nan,
        "flops": math.nan,
        "source": "test table",
        "note": "",
    }
    rows = [
        base,
        {**base, "method": "majority", "selection": "vote", "n": None, "accuracy": 0.684},
        {
            **base,
            "problem_id": "math500-algebra/1",
            "level": "3",
            "difficulty": "medium",
            "pass1": 0.25,
            "prm": "Qwen2.5-Math-PRM-7B",
            "method": "beam",
            "aggregation": "last",
            "selection": "max",
            "n": 16,
            "beam_width": 4,
            "accuracy": 0.75,
            "n_problems": 1,
            "policy_tokens": 1234.5,
            "prm_tokens": 2000.0,
            "flops": 3.5e12,
        },
    ]
    return pd.DataFrame(rows)


META = {
    "name": "unit",
    "description": "rows for the tests",
    "kind": "measured",
    "created": "2025-02-10",
    "sources": ["test table"],
    "assumptions": ["none"],
}


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_validate_coerces_dtypes_and_orders_columns():
    df = _records()[list(reversed(SCHEMA))]  # any column order in
    out = validate_records(df)
    assert list(out.columns) == list(SCHEMA)
    assert {c: str(out[c].dtype) for c in SCHEMA} == SCHEMA
    assert out["n"].isna().tolist() == [False, True, False]
    assert out["beam_width"].tolist()[2] == 4


def test_whole_number_levels_become_strings():
    df = _records()
    df["level"] = [0, 0, 3]
    df["problem_id"] = [7, 8, 9]
    out = validate_records(df)
    assert out["level"].tolist() == ["0", "0", "3"] and out["problem_id"].tolist() == ["7", "8", "9"]


@pytest.mark.parametrize(
    "change, column, words",
    [
        (lambda d: d.drop(columns=["accuracy"]), "accuracy", "is missing"),
        (lambda d: d.assign(accuracy=["high", "0.5", "0.5"]), "accuracy", "must be numeric"),
        (lambda d: d.assign(n=[1.5, 2, 3]), "n", "whole numbers"),
        (lambda d: d.assign(dataset=[1, 2, 3]), "dataset", "must hold strings"),
        (lambda d: d.assign(accuracy=[0.5, 1.2, 0.5]), "accuracy", "outside [0.0, 1.0]"),
        (lambda d: d.assign(accuracy=[0.5, math.nan, 0.5]), "accuracy", "missing value"),
        (lambda d: d.assign(pass1=[-0.1, 0.5, 0.5]), "pass1", "outside"),
        (lambda d: d.assign(flops=[-1.0, 1.0, 1.0]), "flops", "outside"),
        (lambda d: d.assign(method=["cot", "majority", "mcts"]), "method", "is not one of"),
        (lambda d: d.assign(difficulty=["all", "all", "tricky"]), "difficulty", "is not one of"),
        (lambda d: d.assign(n=[0, 1, 16]), "n", "is outside [1, 65536]"),
        (lambda d: d.assign(n=[1, 1e18, 16]), "n", "is outside [1, 65536]"),
        (lambda d: d.assign(flops=[1.0, float("inf"), 1.0]), "flops", "is outside"),
        (lambda d: d.assign(policy_tokens=[1.0, float("inf"), 1.0]), "policy_tokens", "is outside"),
        (lambda d: d.assign(source=["x", "", "x"]), "source", "is empty"),
        (lambda d: d.assign(policy=["x", None, "x"]), "policy", "missing value"),
        (lambda d: d.assign(prm=["Skywork-PRM-7B", "none", "x"]), "prm", "must be 'none' for cot"),
        (lambda d: d.assign(n=[4, None, 16]), "n", "must be 1 for cot"),
        (lambda d: d.assign(selection=["none", "max", "max"]), "selection", "must be 'vote' for majority"),
    ],
)
def test_schema_errors_name_where_and_column(change, column, words):
    with pytest.raises(UserError) as exc:
        validate_records(change(_records()), "some/records.parquet")
    text = _one_line(exc)
    assert text.startswith("some/records.parquet: ")
    assert f"column '{column}'" in text and words in text


def test_write_load_round_trip(tmp_path):
    target = tmp_path / "p"
    written = write_profile(target, _records(), META)
    assert sorted(p.name for p in target.iterdir()) == [
        "profile.json",
        "records.parquet",
    ]  # no temp files left
    loaded = load_profile(target)
    pd.testing.assert_frame_equal(loaded.records, written.records)
    pd.testing.assert_frame_equal(loaded.records, validate_records(_records()))
    assert loaded.meta["fingerprint"] == fingerprint(loaded.records)
    assert loaded.meta["n_records"] == 3 and loaded.meta["created"] == "2025-02-10"
    assert loaded.name == "unit" and loaded.path == target
    # overwrite in place with other rows
    write_profile(target, _records().iloc[:1], META)
    assert len(load_profile(target).records) == 1


def test_failed_write_leaves_nothing_half_written(tmp_path, monkeypatch):
    def broken(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", broken)
    with pytest.raises(UserError, match="cannot write"):
        write_profile(tmp_path / "new", _records(), META)
    assert not (tmp_path / "new").exists()
    monkeypatch.undo()

    write_profile(tmp_path / "old", _records(), META)
    before = {p.name: p.read_bytes() for p in (tmp_path / "old").iterdir()}

    def no_replace(*args):
        raise OSError("cross-device link")

    monkeypatch.setattr(profiles.os, "replace", no_replace)
    with pytest.raises(UserError, match="cannot write"):
        write_profile(tmp_path / "old", _records().iloc[:1], META)
    monkeypatch.undo()
    after = {p.name: p.read_bytes() for p in (tmp_path / "old").iterdir()}
    assert after == before  # old files intact, temp files removed


def test_write_rejects_invalid_input_before_touching_disk(tmp_path):
    with pytest.raises(UserError, match="column 'accuracy'"):
        write_profile(tmp_path / "p", _records().assign(accuracy=2.0), META)
    with pytest.raises(UserError, match="key 'kind'"):
        write_profile(tmp_path / "p", _records(), {**META, "kind": "guess"})
    with pytest.raises(UserError, match="key 'sources'"):
        write_profile(tmp_path / "p", _records(), {**META, "sources": []})
    assert not (tmp_path / "p").exists()


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(UserError) as exc:
        load_profile(tmp_path / "nope")
    assert "nope: profile folder does not exist" in _one_line(exc)

    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError) as exc:
        load_profile(tmp_path / "empty")
    assert "empty: profile folder is empty" in _one_line(exc)

    good = tmp_path / "good"
    write_profile(good, _records(), META)
    (good / "records.parquet").unlink()
    with pytest.raises(UserError) as exc:
        load_profile(good)
    assert "records.parquet: file is missing" in _one_line(exc)


def test_corrupt_parquet_and_truncated_json(tmp_path):
    a = tmp_path / "a"
    write_profile(a, _records(), META)
    data = (a / "records.parquet").read_bytes()
    (a / "records.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError) as exc:
        load_profile(a)
    assert f"{a / 'records.parquet'}: not a readable parquet file" in _one_line(exc)

    b = tmp_path / "b"
    write_profile(b, _records(), META)
    text = (b / "profile.json").read_text()
    (b / "profile.json").write_text(text[: len(text) // 2])
    with pytest.raises(UserError) as exc:
        load_profile(b)
    assert f"{b / 'profile.json'}: invalid JSON at line" in _one_line(exc)


def test_schema_error_in_a_stored_file_names_file_and_column(tmp_path):
    c = tmp_path / "c"
    write_profile(c, _records(), META)
    bad = validate_records(_records()).assign(method="mcts")
    bad.to_parquet(c / "records.parquet")
    with pytest.raises(UserError) as exc:
        load_profile(c)
    text = _one_line(exc)
    assert text.startswith(f"{c / 'records.parquet'}: column 'method'")


def test_records_that_do_not_match_the_fingerprint_are_refused(tmp_path):
    d = tmp_path / "d"
    write_profile(d, _records(), META)
    validate_records(_records().assign(accuracy=0.1)).to_parquet(d / "records.parquet")
    with pytest.raises(UserError, match="does not match the fingerprint"):
        load_profile(d)


def test_fingerprint_ignores_order_but_not_values():
    df = validate_records(_records())
    shuffled = df.iloc[[2, 0, 1]][list(reversed(df.columns))]
    assert fingerprint(df) == fingerprint(shuffled)
    changed = df.copy()
    changed.loc[0, "accuracy"] = 0.5440000000000001  # one ulp away
    assert fingerprint(changed) != fingerprint(df)
    assert fingerprint(df.assign(note="x")) != fingerprint(df)
    assert len(fingerprint(df)) == 64


def test_load_profiles_adds_profile_column(tmp_path):
    write_profile(tmp_path / "one", _records(), META)
    write_profile(tmp_path / "two", _records().iloc[:2], {**META, "name": "other"})
    both = load_profiles([tmp_path / "one", tmp_path / "two"])
    assert both["profile"].value_counts().to_dict() == {"unit": 3, "other": 2}
    assert list(both.columns) == [*SCHEMA, "profile", *OPTIONAL]  # the optional columns filled in
    with pytest.raises(UserError, match="loaded twice"):
        load_profiles([tmp_path / "one", tmp_path / "one"])
    assert load_profiles([]).empty


def test_shipped_profiles_are_found_and_load():
    dirs = default_profile_dirs()
    names = {d.name for d in dirs}
    assert {"liu2025_tables", "qwen25math_math100_replay", "rlhflow_bon1024"} <= names
    for d in dirs:
        assert d.parent == Path(profiles.__file__).resolve().parents[2] / "profiles"
    table = load_profiles(dirs)
    assert table["source"].str.len().min() > 0


@pytest.mark.parametrize(
    "pass1, expected",
    # The paper's bins: easy 50-100 %, medium 10-50 %, hard 0-10 % (the task fixes the
    # boundaries: easy > 0.5, 0.1 <= medium <= 0.5, hard < 0.1).
    [(1.0, "easy"), (0.51, "easy"), (0.5, "medium"), (0.1, "medium"), (0.099, "hard"), (0.0, "hard")],
)
def test_difficulty_bins(pass1, expected):
    assert difficulty_from_pass1(pass1) == expected


def test_difficulty_rejects_out_of_range():
    with pytest.raises(UserError, match="pass1"):
        difficulty_from_pass1(1.5)
