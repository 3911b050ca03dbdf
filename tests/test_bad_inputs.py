"""Every bad input of tests/bad_inputs.py, with and without --json: one line on stderr that
starts with "error: ", exit code 2, nothing on stdout, no model loaded, no device, pipe or
folder replaced, no code from a model file run."""

from __future__ import annotations

import os
import stat

import pytest

from planner.cli import run as run_cli
from planner.cli.main import main
from planner.executor import factory
from tests.bad_inputs import CASES, JSON_COMMANDS, T, materialize


def _no_model(*args, **kwargs):
    raise AssertionError("a model was loaded for a bad input")


def _no_verifier_model(name, policy, prefix_reuse=False):
    """Names are checked (as loading does first); a name that passes would load a model."""
    factory.check_verifier(name)
    _no_model()


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad")
    materialize(folder)
    return folder


@pytest.fixture(autouse=True)
def no_models(monkeypatch):
    for module in (factory, run_cli):
        monkeypatch.setattr(module, "load_engine", _no_model)
        monkeypatch.setattr(module, "load_verifier", _no_verifier_model)


def test_the_table_has_300_distinct_bad_inputs():
    argvs = [tuple(argv) for _, _, argv in CASES]
    assert len(set(argvs)) == len(argvs) >= 300
    assert {command for command, _, _ in CASES} >= {
        "plan", "predict", "cost", "fit", "evaluate", "report", "run", "calibrate", "import",
    }  # fmt: skip


def variants():
    for command, name, argv in CASES:
        yield pytest.param(argv, id=name)
        if command in JSON_COMMANDS:
            yield pytest.param([*argv, "--json"], id=f"{name}--json")


@pytest.mark.parametrize("argv", list(variants()))
def test_bad_input_is_one_line_and_exit_2(root, argv, capsys):
    argv = [a.replace(T, str(root)) for a in argv]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    assert exc.value.code == 2, (argv, out[-300:], err[-300:])
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert out == "", out[-300:]
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode) and stat.S_ISCHR(os.stat("/dev/full").st_mode)
    assert stat.S_ISFIFO(os.stat(root / "fifo").st_mode)
    assert (root / "mdir.skops.manifest.json").is_dir() and (root / "emptydir").is_dir()
    assert not (root / "PWNED").exists()  # the pickle's payload never ran
