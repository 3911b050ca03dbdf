"""Installed from a built wheel (not editable), the planner keeps its data: the shipped profiles and
default model load, and `ttsplan plan` / `ttsplan evaluate` work from any folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(site folder holding the installed wheel, the wheel's file names)."""
    tmp = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"), str(REPO)],
        check=True,
        capture_output=True,
    )
    [wheel] = (tmp / "dist").glob("tts_planner-*.whl")
    site = tmp / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True)
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    return site, names


def ttsplan(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site)}  # ahead of the editable install
    code = "import sys; from planner.cli.main import main; main(sys.argv[1:])"
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_every_package_and_the_data_are_in_the_wheel(installed):
    _, names = installed
    listed = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    on_disk = {
        ".".join(p.parent.relative_to(REPO).parts)
        for top in ("planner", "calibration")
        for p in (REPO / top).rglob("__init__.py")
    }
    assert on_disk <= set(listed), f"packages missing from pyproject.toml: {on_disk - set(listed)}"
    for package in on_disk:
        assert f"{package.replace('.', '/')}/__init__.py" in names
    for profile in (REPO / "profiles").iterdir():
        if (profile / "profile.json").is_file():
            assert f"planner/shipped_profiles/{profile.name}/records.parquet" in names
    assert "planner/data/default_model.skops" in names
    assert "planner/data/datasets/math500.jsonl" in names


def test_plan_and_evaluate_run_from_another_folder(installed, tmp_path):
    site, _ = installed
    where = ttsplan(site, tmp_path, "version")
    assert where.returncode == 0, where.stderr
    check = subprocess.run(
        [sys.executable, "-c", "import planner, sys; print(planner.__file__)"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
    )
    assert check.stdout.strip().startswith(str(site)), check.stdout
    plan = ttsplan(
        site, tmp_path, "plan", "--policy", "gemma-3-270m", "--prm", "arith-check", "--dataset", "arith",
        "--budget-n", "16", "--json",
    )  # fmt: skip
    assert plan.returncode == 0, plan.stderr
    obj = json.loads(plan.stdout)
    assert obj["format"] == "ttsplan-plan" and obj["n"] <= 16 and obj["in_calibrated_range"]
    assert obj["model"]["path"] == "default"
    evaluated = ttsplan(site, tmp_path, "evaluate", "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    report = json.loads(evaluated.stdout)
    assert "cpu_arith_gemma" in report["profiles"] and len(report["profiles"]) >= 7
