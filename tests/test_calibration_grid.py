"""Grid checks: every bad grid is a one-line error (exit code 2) before any model loads."""

from __future__ import annotations

import tomllib

import pytest

from calibration.calibrate import calibrate
from calibration.grid import Grid, check_grid, grid_from_dict, load_grid
from planner.cli.main import main
from planner.core.errors import UserError

GOOD = """
name = "g"
dataset = "arith:per_level=1"
policies = ["smollm2-135m-instruct"]
verifiers = ["arith-check"]
methods = ["cot", "majority", "best_of_n", "beam", "dvts"]
n = [1, 2, 4]
tree_n = [4]
beam_widths = [4]
[sampling]
temperature = 0.7
max_total_tokens = 64
"""


def write(tmp_path, text: str):
    path = tmp_path / "grid.toml"
    path.write_text(text)
    return path


def test_good_grid_loads_with_table_keys_flattened(tmp_path):
    grid = check_grid(load_grid(write(tmp_path, GOOD)))
    assert grid.policies == ("smollm2-135m-instruct",)
    assert grid.max_total_tokens == 64 and grid.n == (1, 2, 4) and grid.tree_ns == (4,)
    assert grid.sample_n == 8  # difficulty needs K = 8 samples even though max N is 4


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"bogus": 1}, "unknown key 'bogus'"),
        ({"sampling": {"warmth": 1}}, "unknown key 'sampling.warmth'"),
        ({"policies": ["no-such-model"]}, "no-such-model"),
        ({"verifiers": ["no-such-prm"]}, "unknown verifier 'no-such-prm'"),
        ({"methods": ["cot", "magic"]}, "unknown method 'magic'"),
        ({"aggregations": ["median"]}, "aggregation 'median' unknown"),
        ({"tree_n": [2]}, "beam width M=4 is larger than N=2"),
        ({"tree_n": [6]}, "N=6 is not divisible by beam width M=4"),
        ({"tree_n": [8], "beam_widths": [3]}, "N=8 is not divisible by beam width M=3"),
        ({"n": [0, 2]}, "must be an integer in [1, 65536]"),
        ({"n": [2, 2]}, "repeated value"),
        ({"dataset": "math9000"}, "unknown dataset 'math9000'"),
        ({"engine": "tpu"}, "engine: unknown 'tpu'"),
        ({"sampling": {"temperature": 0.0}}, "temperature: 0 gives identical samples"),
        ({"policies": []}, "must be a non-empty list"),
        ({"verifiers": ["Qwen/Qwen2.5-Math-PRM-7B"]}, "no local weights"),
        ({"limit": 5, "stratify": 2}, "limit 5 is larger than stratify 2"),
    ],
)
def test_bad_grid_is_one_line_error(tmp_path, change, message):
    obj = tomllib.loads(GOOD)
    for key, value in change.items():
        if isinstance(value, dict):
            obj[key] = {**obj.get(key, {}), **value}
        else:
            obj[key] = value
    with pytest.raises(UserError) as err:
        check_grid(grid_from_dict(obj, source="grid file g.toml"), source="grid file g.toml")
    assert message in str(err.value)
    assert "\n" not in str(err.value) and str(err.value).startswith("grid file g.toml")


def test_bad_toml_names_the_file(tmp_path):
    path = write(tmp_path, "name = [unclosed")
    with pytest.raises(UserError, match="not valid TOML"):
        load_grid(path)


def run(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    out, err = capsys.readouterr()
    return exit_.value.code, out, err


def test_cli_exit_2_one_line_and_nothing_written(tmp_path, capsys):
    path = write(tmp_path, GOOD.replace("tree_n = [4]", "tree_n = [2]"))
    out = tmp_path / "profile"
    code, stdout, err = run(["calibrate", "--grid", str(path), "--out", str(out)], capsys)
    assert code == 2 and stdout == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: grid file {path}") and "M=4" in lines[0]
    assert not out.exists()


def test_flags_override_and_are_checked(tmp_path, capsys):
    path = write(tmp_path, GOOD)
    out = tmp_path / "profile"
    code, _, err = run(["calibrate", "--grid", str(path), "--out", str(out), "--beam-width", "3"], capsys)
    assert code == 2 and "not divisible by beam width M=3" in err
    assert not out.exists()


def test_grid_is_checked_before_any_model_loads(tmp_path):
    def boom(*args):
        raise AssertionError("a model was loaded")

    grid = grid_from_dict(
        {"policies": ["smollm2-135m-instruct"], "verifiers": ["nope"], "dataset": "arith:per_level=1"}
    )
    with pytest.raises(UserError, match="unknown verifier"):
        calibrate(grid, tmp_path / "p", loaders=(boom, boom), progress=False)
    assert not (tmp_path / "p").exists()


def test_resuming_with_another_grid_is_refused(tmp_path):
    from tests.fake_calibration import DATASET, LOADERS

    grid = Grid(
        policies=("fake",), dataset=DATASET, limit=2, methods=("cot",), verifiers=(), difficulty_samples=2
    )
    calibrate(grid, tmp_path / "p", loaders=LOADERS, progress=False, check_models=False)
    other = grid_from_dict({"seed": 1}, base=grid)
    with pytest.raises(UserError, match="different grid \\(seed"):
        calibrate(other, tmp_path / "p", loaders=LOADERS, progress=False, check_models=False)
