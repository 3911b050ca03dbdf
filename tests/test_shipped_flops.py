"""Every shipped measured profile's FLOPs, recomputed from the token counts its step records keep
with the one cost function (planner.models.cost.record_flops and the per-call functions)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from calibration.calibrate import derive, load_grid, read_runs
from planner.core.profiles import load_profile

ROOT = Path(__file__).resolve().parents[1]
MEASURED = sorted(p.parent for p in (ROOT / "profiles").glob("*/grid.json"))


def test_there_are_measured_profiles():
    assert len(MEASURED) >= 4


@pytest.mark.parametrize("folder", MEASURED, ids=lambda p: p.name)
def test_every_shipped_record_is_recomputed_from_its_counts(folder):
    grid = load_grid(folder)
    _, by_step = read_runs(grid, folder)
    without = set()
    for rec in by_step.values():  # every run the records come from keeps the counts they need
        assert all(isinstance(g, int) for g in rec["sample"]["generated_tokens"])
        for key, r in rec.items():
            if key.split(":")[0] in ("beam", "dvts") and not ("calls" in r and "prm_reads" in r):
                without.add(key.split(":")[0])
    assert not without
    shipped = load_profile(folder).records
    source = shipped["source"].iloc[0]
    records, _, _ = derive(grid, folder, source)
    keys = ["problem_id", "method", "n", "prm", "aggregation", "selection", "beam_width"]
    keys += [k for k in ("stop",) if k in shipped]  # early-stopping rows: one per rule and cap
    both = pd.merge(shipped, records, on=keys, suffixes=("_shipped", "_counts"))
    assert len(both) == len(shipped) == len(records)
    assert np.isfinite(both["flops_counts"]).all()
    assert np.allclose(both["flops_shipped"], both["flops_counts"], rtol=1e-9)
    assert np.allclose(both["accuracy_shipped"], both["accuracy_counts"], rtol=1e-12)
