"""Model files with hash manifests: round trip, and refusal before unpickling."""

from __future__ import annotations

import hashlib
import json
import pickle

import joblib
import numpy as np
import pytest
import sklearn

from planner.core.errors import UserError
from planner.core.profiles import fingerprint
from planner.predict.features import prepare_training
from planner.predict.modelio import load_model, manifest_path, save_model
from planner.predict.regressor import AccuracyRegressor
from tests.plan_helpers import records

MARKER = {"path": None}


def _explode():
    """Runs only if a pickle is loaded: leaves a marker file, then raises."""
    MARKER["path"].write_text("unpickled")
    raise RuntimeError("this pickle was loaded")


class Booby:
    def __reduce__(self):
        return (_explode, ())


@pytest.fixture(scope="module")
def model_and_rows():
    frame = records()
    rows, _ = prepare_training(frame)
    model = AccuracyRegressor(max_iter=30).fit(rows, rows["accuracy"], sample_weight=rows["weight"])
    return model, rows, fingerprint(frame)


def test_round_trip_identical_predictions(tmp_path, model_and_rows):
    model, rows, fp = model_and_rows
    path = tmp_path / "m.joblib"
    manifest = save_model(model, path, fp, extra={"note": "test"})
    loaded, read = load_model(path)
    assert np.array_equal(loaded.predict(rows), model.predict(rows))
    assert np.array_equal(loaded.predict_interval(rows)[1], model.predict_interval(rows)[1])
    assert read == manifest
    on_disk = json.loads(manifest_path(path).read_text())
    assert on_disk["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert on_disk["training_fingerprint"] == fp
    assert on_disk["sklearn_version"] == sklearn.__version__
    assert on_disk["joblib_version"] == joblib.__version__
    assert on_disk["features"] == list(model.features_.get_feature_names_out())
    assert on_disk["extra"] == {"note": "test"}
    assert on_disk["created"][:2] == "20"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "m.joblib",
        "m.joblib.manifest.json",
    ]  # no temp files


def test_flipped_byte_is_refused(tmp_path, model_and_rows):
    model, _, fp = model_and_rows
    path = tmp_path / "m.joblib"
    save_model(model, path, fp)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(UserError, match=r"m\.joblib does not match the sha256"):
        load_model(path)


def test_refused_before_unpickling(tmp_path, model_and_rows):
    """A file swapped for a pickle that acts when loaded is refused without being loaded."""
    model, _, fp = model_and_rows
    MARKER["path"] = tmp_path / "marker"
    path = tmp_path / "m.joblib"
    save_model(model, path, fp)
    path.write_bytes(pickle.dumps(Booby()))
    with pytest.raises(UserError, match="does not match the sha256"):
        load_model(path)
    assert not MARKER["path"].exists()
    # Control: with a manifest that matches, the same bytes do get unpickled (and act).
    manifest = json.loads(manifest_path(path).read_text())
    manifest["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    manifest_path(path).write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="could not be loaded"):
        load_model(path)
    assert MARKER["path"].read_text() == "unpickled"


def test_missing_or_bad_manifest(tmp_path, model_and_rows):
    model, _, fp = model_and_rows
    path = tmp_path / "m.joblib"
    save_model(model, path, fp)
    mpath = manifest_path(path)
    mpath.write_text("{not json")
    with pytest.raises(UserError, match="model manifest invalid"):
        load_model(path)
    mpath.write_text(json.dumps({"sha256": "abc"}))
    with pytest.raises(UserError, match="no valid sha256"):
        load_model(path)
    mpath.unlink()
    with pytest.raises(UserError, match="model manifest missing"):
        load_model(path)
    with pytest.raises(UserError, match="model file not found"):
        load_model(tmp_path / "nope.joblib")


def test_save_needs_an_existing_folder(tmp_path, model_and_rows):
    model, _, fp = model_and_rows
    with pytest.raises(UserError, match="does not exist"):
        save_model(model, tmp_path / "no" / "m.joblib", fp)
