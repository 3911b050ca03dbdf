"""Property: whatever the arguments of plan, predict, cost and fit, the command line exits 0 with
one JSON object on stdout or exits 2 with one line on stderr; never a traceback, and no device,
folder or file outside the test's folder is touched."""

from __future__ import annotations

import contextlib
import io
import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.cli.main import main
from planner.core.profiles import write_profile
from tests.bad_inputs import MODEL_CONFIGS
from tests.plan_helpers import POLICIES, records

SETTINGS = settings(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

text = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=12)
numbers = st.one_of(
    st.integers(-(10**25), 10**25).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(
        ["0", "1", "2", "4", "16", "64", "1e15", "1e400", "nan", "-inf", "1_000", "0x10", "٣", ""]
    ),
    text,
)
small_ints = st.one_of(st.integers(-5, 70_000).map(str), numbers)
datasets = st.one_of(
    st.sampled_from(["math500", "aime24", "gsm8k", "arith", "arith:seed=3", "arith:size=50", "MATH500"]),
    st.sampled_from(
        ["arith:per_level=abc", "arith:bogus", "math500:x", "arith:per_level=1000000000", "arith:"]
    ),
    text,
)
policies = st.one_of(
    st.sampled_from([*POLICIES[:3], "qwen2.5-1.5b", "none", "Qwen/Qwen2.5-Math-PRM-7B"]), text
)
prms = st.one_of(
    st.sampled_from(["Qwen2.5-Math-PRM-7B", "none", "arith-check", "lm-judge:qwen2.5-1.5b"]), text
)
words = {
    "method": ["cot", "majority", "best_of_n", "beam", "dvts", "mcts"],
    "aggregation": ["last", "min", "mean", "prod", "none", "max"],
    "selection": ["max", "vote", "none", "min"],
    "difficulty": ["easy", "medium", "hard", "all", "impossible"],
    "hardware": ["h100", "a100", "cpu", "tpu"],
    "role": ["policy", "prm", "orm", "judge"],
}


def choice(name: str):
    return st.one_of(st.sampled_from(words[name]), text)


@pytest.fixture(scope="module")
def place(tmp_path_factory) -> dict:
    """Files the arguments may name: good and crafted ones, all inside one folder."""
    root = tmp_path_factory.mktemp("hostile")
    profile = root / "profile"
    meta = {
        "name": "synthetic",
        "description": "test",
        "kind": "measured",
        "sources": ["tests"],
        "assumptions": [],
    }
    write_profile(profile, records(policies=POLICIES[:3]), meta)
    (root / "empty").mkdir()
    configs = {
        **MODEL_CONFIGS,
        "list.json": [1, 2, 3],
    }
    for name, cfg in configs.items():
        (root / name).write_text(json.dumps(cfg))
    (root / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (root / "notjson.json").write_text("{hidden_size: 896")
    (root / "model.skops").write_bytes(b"\x80\x04K\x01.")  # a pickle
    return {"root": root, "profile": profile}


def paths(place: dict, *names: str):
    root = place["root"]
    return st.sampled_from([str(root / n) for n in names] + ["/dev/null", "/proc/x.json", "/", str(root)])


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv)
            code = 0
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def holds(argv: list[str]) -> None:
    code, out, err = run(argv)
    if code == 0:
        json.loads(out)  # one JSON object, nothing else on stdout
    else:
        assert code == 2, (argv, code, err[-500:])
        lines = err.strip("\n").split("\n")
        assert len(lines) == 1 and lines[0].startswith("error: "), (argv, err[-500:])
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)  # never replaced by a file


def command(data, base: list[str], flags: dict) -> list[str]:
    """A valid command line, then up to three flags set to values of their (hostile) strategy:
    click keeps the last value of a flag, so each mutation replaces or adds one argument."""
    argv = list(base)
    for _ in range(data.draw(st.integers(0, 3))):
        flag = data.draw(st.sampled_from(sorted(flags)))
        argv += [flag, data.draw(flags[flag])]
    return [*argv, "--json"]


valid_budget = st.one_of(
    st.tuples(st.just("--budget-n"), st.sampled_from(["1", "4", "16", "1024", "3.5"])),
    st.tuples(st.just("--budget-flops"), st.sampled_from(["1e13", "1e15", "1e17"])),
)


@settings(SETTINGS, max_examples=150)
@given(data=st.data())
def test_plan_arguments(place, data):
    flag, value = data.draw(valid_budget)
    base = ["plan", "--policy", data.draw(st.sampled_from(POLICIES[:3])), "--dataset", "math500", flag, value]
    argv = command(
        data,
        base,
        {
            "--policy": policies,
            "--prm": prms,
            "--dataset": datasets,
            "--difficulty": choice("difficulty"),
            "--budget-n": numbers,
            "--budget-flops": numbers,
            "--budget-seconds": numbers,
            "--hardware": choice("hardware"),
            "--beam-width": small_ints,
            "--top": small_ints,
            "--method": choice("method"),
            "--aggregation": choice("aggregation"),
            "--selection": choice("selection"),
            "--out": paths(place, "plan.json", "nodir/plan.json"),
            "--model": paths(place, "model.skops", "missing.skops"),
            "--model-config": paths(place, "good.json", "huge.json", "deep.json"),
            "--probe-k": small_ints,
        },
    )
    if data.draw(st.integers(0, 9)) == 0:  # a per-bin plan reads the shipped profiles: seconds
        argv += [
            "--per-bin",
            "--mix",
            data.draw(st.sampled_from(["easy=0.3,medium=0.4,hard=0.3", "easy=2", "x"])),
        ]
    holds(argv)


@settings(SETTINGS, max_examples=200)
@given(data=st.data())
def test_predict_arguments(place, data):
    method = data.draw(st.sampled_from(["cot", "majority", "best_of_n", "beam"]))
    base = ["predict", "--policy", data.draw(st.sampled_from(POLICIES[:3])), "--dataset", "math500"]
    base += ["--method", method, "--n", data.draw(st.sampled_from(["1", "4", "16"]))]
    if method in ("best_of_n", "beam"):
        base += ["--prm", "Qwen2.5-Math-PRM-7B", "--aggregation", "last", "--selection", "max"]
    argv = command(
        data,
        base,
        {
            "--method": choice("method"),
            "--policy": policies,
            "--prm": prms,
            "--aggregation": choice("aggregation"),
            "--selection": choice("selection"),
            "--n": small_ints,
            "--beam-width": small_ints,
            "--dataset": datasets,
            "--difficulty": choice("difficulty"),
            "--hardware": choice("hardware"),
            "--model": paths(place, "model.skops"),
            "--model-config": paths(place, "good.json", "floats.json", "strings.json", "list.json"),
        },
    )
    holds(argv)


@settings(SETTINGS, max_examples=200)
@given(data=st.data())
def test_cost_arguments(place, data):
    base = data.draw(
        st.one_of(
            st.sampled_from(POLICIES[:3]).map(lambda p: ["cost", "--model", p]),
            st.just(["cost", "--model-config", str(place["root"] / "good.json")]),
        )
    )
    configs = (
        "good.json",
        "huge.json",
        "floats.json",
        "strings.json",
        "list.json",
        "deep.json",
        "notjson.json",
    )
    argv = command(
        data,
        base,
        {
            "--model": policies,
            "--model-config": paths(place, *configs),
            "--context": small_ints,
            "--role": choice("role"),
        },
    )
    holds(argv)


@settings(SETTINGS, max_examples=20)
@given(data=st.data())
def test_fit_arguments(place, data):
    folder = data.draw(
        st.sampled_from([str(place["profile"]), str(place["root"] / "empty"), "/dev/null", "/proc"])
    )
    out = data.draw(paths(place, "m.skops", "m.skops", "nodir/m.skops"))
    holds(["fit", "--profiles", folder, "--out", out, "--json"])
    if Path(out) == place["root"] / "m.skops" and Path(out).exists():
        assert Path(str(out) + ".manifest.json").is_file()
