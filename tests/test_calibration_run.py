"""Calibration orchestration on a fake engine: replay against direct runs, resume, joblib, full disk."""

from __future__ import annotations

import errno
import itertools
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from calibration import store
from calibration.calibrate import RUNS, calibrate, load_batch
from calibration.grid import Grid
from planner.core.config import MethodConfig
from planner.core.datasets import load_dataset
from planner.core.errors import UserError
from planner.core.profiles import static_rows
from planner.executor.base import Completion, Generation
from planner.executor.grading import is_equivalent
from planner.executor.methods import best_of_n, majority
from planner.executor.methods.common import select_max
from tests import fake_calibration
from tests.fake_calibration import DATASET, LOADERS, GoldEngine
from tests.fake_engine import FakeVerifier, count_tokens

GRID = Grid(
    name="fake",
    dataset=DATASET,
    limit=6,
    policies=("fake-policy",),
    verifiers=("arith-check",),
    methods=("cot", "majority", "best_of_n", "beam", "dvts"),
    aggregations=("last", "min"),
    selections=("max", "vote"),
    n=(1, 2, 4),
    tree_n=(2, 4),
    beam_widths=(2,),
    difficulty_samples=4,
    max_steps=6,
    batch_size=2,
)


def run(out, grid=GRID, **kw):
    kw.setdefault("loaders", LOADERS)
    return calibrate(grid, out, progress=False, check_models=False, **kw)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("cal") / "ref"
    return run(out)


def step_records(out) -> dict:
    recs = {}
    for path in sorted((out / RUNS).glob("*/*.jsonl")):
        for step, by_pid in load_batch(path).items():
            for pid, data in by_pid.items():
                recs[(step, pid)] = data
    return recs


def test_profile_has_every_cell_and_difficulty_from_the_first_k_samples(reference):
    rec = static_rows(reference.records)  # the measured rows (extrapolated ones: below)
    assert set(rec["method"]) == {"cot", "majority", "best_of_n", "beam", "dvts"}
    bon = rec[rec["method"] == "best_of_n"]
    assert len(bon) == 6 * 3 * 2 * 2  # problems x N x aggregations x selections
    assert set(rec.loc[rec["method"] == "beam", "n"]) == {2, 4}
    steps = step_records(reference.profile)
    for p in load_dataset(DATASET)[:6]:
        correct = steps[("sample", p.id)]["correct"]
        assert len(correct) == 4  # K = 4 = largest N
        expected = float(np.mean(correct[:4]))
        row = reference.difficulty.set_index("problem_id").loc[p.id]
        assert row["pass1"] == expected
        assert row["difficulty"] == ("easy" if expected > 0.5 else "hard" if expected < 0.1 else "medium")
        assert set(rec.loc[rec["problem_id"] == p.id, "difficulty"]) == {row["difficulty"]}
    meta = json.loads((reference.profile / "profile.json").read_text())
    assert meta["kind"] == "measured" and meta["grid"]["n"] == [1, 2, 4]
    assert rec["flops"].isna().all()  # a policy the cost model does not know gets no invented FLOPs


class ReplayEngine:
    """Returns the given texts for the prompt, in order: runs a method on chosen recorded samples."""

    name = "replay"

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts

    def format_prompt(self, problem: str) -> str:
        return problem

    def generate(self, prompts, options):
        assert options.n == len(self.texts)
        return [
            Generation([Completion(t, count_tokens(t), "stop", True) for t in self.texts], 1) for _ in prompts
        ]


def test_replayed_cells_equal_running_the_smaller_n_on_the_same_samples(reference):
    """Majority and Best-of-N at N=2 from the N=4 run == the real methods run on every ordered pair."""
    steps = step_records(reference.profile)
    rec = reference.records
    for p in load_dataset(DATASET)[:6]:
        texts = steps[("sample", p.id)]["texts"]
        mine = rec[(rec["problem_id"] == p.id) & (rec["n"] == 2)]
        for method, agg in (("majority", "none"), ("best_of_n", "last"), ("best_of_n", "min")):
            hits = []
            for pair in itertools.permutations(range(len(texts)), 2):
                engine = ReplayEngine([texts[i] for i in pair])
                if method == "majority":
                    config = MethodConfig("majority", 2)
                    result = majority.run(engine, None, [p.question], config)[0]
                else:
                    config = MethodConfig("best_of_n", 2, aggregation=agg, selection="max")
                    result = best_of_n.run(engine, FakeVerifier(), [p.question], config)[0]
                hits.append(bool(result.answer) and is_equivalent(result.answer, p.answer))
            row = mine[
                (mine["method"] == method)
                & (mine["aggregation"] == agg)
                & (mine["selection"].isin(["vote", "max"]))
            ]
            row = row[row["selection"] == ("vote" if method == "majority" else "max")]
            assert row["accuracy"].item() == pytest.approx(np.mean(hits)), (p.id, method, agg)


def test_dvts_smaller_n_is_the_mean_over_subtree_subsets(reference):
    steps = step_records(reference.profile)
    rec = reference.records
    for p in load_dataset(DATASET)[:6]:
        cands = steps[("dvts:arith-check:2:4", p.id)]["candidates"]
        assert len(cands) == 2  # N=4 / M=2 subtrees
        hits = []  # every ordered choice of one subtree out of two, selected by max score
        for subset in itertools.permutations(range(2), 1):
            chosen = subset[select_max([cands[i]["score"] for i in subset])]
            hits.append(cands[chosen]["correct"])
        row = rec[(rec["problem_id"] == p.id) & (rec["method"] == "dvts") & (rec["n"] == 2)]
        assert row["accuracy"].item() == pytest.approx(np.mean(hits))
        full = rec[(rec["problem_id"] == p.id) & (rec["method"] == "dvts") & (rec["n"] == 4)]
        assert full["accuracy"].item() == float(steps[("dvts:arith-check:2:4", p.id)]["correct"])
        assert row["flops"].isna().all() or row["flops"].item() == pytest.approx(full["flops"].item() / 2)


def crash_after(calls: int):
    def load_engine(kind, policy, seed):
        return GoldEngine(name=policy, fail_after=calls)

    return (load_engine, fake_calibration.load_verifier)


def no_duplicates(out) -> None:
    for path in (out / RUNS).glob("*/*.jsonl"):
        records, _ = store.read(path)
        keys = [(r["step"], r["problem_id"]) for r in records]
        assert len(keys) == len(set(keys)), path


@pytest.mark.parametrize("calls", [1, 4, 9, 17])
def test_interrupted_then_resumed_equals_uninterrupted(tmp_path, reference, calls):
    out = tmp_path / "p"
    with pytest.raises(KeyboardInterrupt):
        run(out, loaders=crash_after(calls))
    assert not (out / "records.parquet").exists()
    resumed = run(out)
    no_duplicates(out)
    pd.testing.assert_frame_equal(resumed.records, reference.records)
    pd.testing.assert_frame_equal(resumed.difficulty, reference.difficulty)


def test_joblib_shards_give_the_same_profile(tmp_path, reference):
    out = tmp_path / "p"
    got = run(out, jobs=2)
    pd.testing.assert_frame_equal(got.records, reference.records)
    no_duplicates(out)


def test_full_disk_stops_with_a_clear_error_and_resumes(tmp_path, reference, monkeypatch):
    out = tmp_path / "p"
    real_write = store.os.write
    count = {"n": 0}

    def flaky(fd, data):
        count["n"] += 1
        if count["n"] == 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(store.os, "write", flaky)
    with pytest.raises(UserError, match="No space left on device"):
        run(out)
    monkeypatch.setattr(store.os, "write", real_write)
    resumed = run(out)
    pd.testing.assert_frame_equal(resumed.records, reference.records)


def test_jobs_must_be_positive(tmp_path):
    with pytest.raises(UserError, match="jobs: must be an integer"):
        run(tmp_path / "p", jobs=0)


def test_redo_runs_one_step_kind_again_and_keeps_the_rest(tmp_path, reference):
    out = tmp_path / "p"
    run(out)
    before = {k: v for k, v in step_records(out).items() if not k[0].startswith("dvts")}
    calls = []

    def counting_engine(kind, policy, seed):
        engine = GoldEngine(name=policy)
        real = engine.generate

        def generate(prompts, options):
            calls.append(len(prompts))
            return real(prompts, options)

        engine.generate = generate
        return engine

    redone = run(out, loaders=(counting_engine, fake_calibration.load_verifier), redo=("dvts",))
    after = step_records(out)
    assert {k: v for k, v in after.items() if not k[0].startswith("dvts")} == before
    assert any(k[0].startswith("dvts") for k in after) and calls  # dvts ran again, and only dvts
    pd.testing.assert_frame_equal(redone.records, reference.records)
    with pytest.raises(UserError, match="redo: unknown step 'dvtz'"):
        run(out, redo=("dvtz",))


def test_quantile_levels_split_problems_evenly_by_pass1(tmp_path):
    grid = Grid(
        name="q",
        dataset=DATASET,
        limit=10,
        policies=("fake-policy",),
        verifiers=(),
        methods=("majority",),
        n=(1, 4),
        tree_n=None,
        difficulty_samples=4,
        quantile_levels=True,
        batch_size=5,
    )
    got = run(tmp_path / "p", grid=grid).difficulty
    assert sorted(got["quantile_level"].value_counts().to_dict().items()) == [(k, 2) for k in range(1, 6)]
    by_level = got.groupby("quantile_level")["pass1"]
    assert (by_level.min().to_numpy()[:-1] >= by_level.max().to_numpy()[1:]).all()  # 1 easiest ... 5 hardest
    saved = pd.read_csv(tmp_path / "p" / "difficulty.csv")
    assert list(saved["quantile_level"]) == list(got["quantile_level"])


def test_profile_extrapolates_sampling_methods_to_n_max(reference, tmp_path):
    """N above the 4 sampled, to the grid's n_max (256): aggregate rows from the per-problem
    model marked extrapolated; a stored grid without n_max (written before it) derives none."""
    from calibration.calibrate import GRID_FILE, load_grid, rebuild

    rec = reference.records
    extra = rec[rec["basis"] == "extrapolated"]
    assert set(rec["basis"]) == {"measured", "extrapolated"}
    assert set(extra["n"]) == {8, 16, 32, 64, 128, 256} and (extra["problem_id"] == "").all()
    assert set(extra["method"]) == {"majority", "best_of_n"} and "all" in set(extra["difficulty"])
    bon = extra[(extra["method"] == "best_of_n") & (extra["difficulty"] == "all")]
    assert set(zip(bon["aggregation"], bon["selection"], strict=True)) == {
        (a, s) for a in ("last", "min") for s in ("max", "vote")
    }
    assert set(bon.loc[bon["selection"] == "vote", "n"]) == {8, 16, 32, 64}  # the vote is simulated to 64
    assert extra["accuracy"].between(0, 1).all() and (bon["n_problems"] == 6).all()
    maj = extra[(extra["method"] == "majority") & (extra["difficulty"] == "all")].set_index("n")["accuracy"]
    at4 = static_rows(rec).query("method == 'majority' and n == 4")["accuracy"].mean()
    assert abs(maj[8] - at4) < 0.25  # one doubling past the samples moves majority a little
    folder = tmp_path / "old"
    shutil.copytree(reference.profile, folder)
    stored = json.loads((folder / GRID_FILE).read_text())
    del stored["n_max"]
    (folder / GRID_FILE).write_text(json.dumps(stored))
    assert load_grid(folder).n_max == 0
    assert "basis" not in rebuild(folder).records.columns
