"""Model files with a hash manifest.

`save_model` writes `<path>` (joblib) and `<path>.manifest.json` (sha256 of the file, the
training-data fingerprint, library versions, date, features). `load_model` reads the manifest
first and hashes the bytes; only bytes that match are unpickled. A pickle runs code when
loaded, so a changed or unlisted file is refused before that.

The per-problem scaling models (planner.predict.scalingfit) are plain JSON beside the model,
`<path>.scaling.json`; the manifest's extra.scaling holds its file name and sha256, checked
before it is used. `load_planner_model` returns the regressor, or with predictor="scaling" the
ScalingPredictor over it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import sys
from importlib import resources
from pathlib import Path

import joblib
import sklearn

from planner.core.errors import UserError
from planner.core.files import write_bytes_atomic
from planner.core.profiles import default_profile_dirs, fingerprint, load_profiles
from planner.predict.regressor import fit_profiles

DEFAULT_MODEL = Path(str(resources.files("planner") / "data" / "default_model.joblib"))
MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_VERSION = 1
SCALING_SUFFIX = ".scaling.json"
PREDICTORS = ("scaling", "regressor")
DEFAULT_PREDICTOR = "regressor"


def scaling_path(path: str | os.PathLike) -> Path:
    return Path(str(path) + SCALING_SUFFIX)


def save_scaling(doc: dict, path: str | os.PathLike) -> dict:
    """Write the scaling document beside the model file; returns the manifest entry for it."""
    data = (json.dumps(doc, separators=(",", ":"), allow_nan=True) + "\n").encode()
    target = scaling_path(path)
    write_bytes_atomic(target, data)
    return {"file": target.name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def load_scaling(path: str | os.PathLike, manifest: dict) -> dict | None:
    """The scaling document the manifest lists (None when it lists none); refused when its
    sha256 differs."""
    entry = (manifest.get("extra") or {}).get("scaling")
    if not entry:
        return None
    target = Path(path).parent / entry["file"]
    try:
        data = target.read_bytes()
    except OSError:
        raise UserError(f"scaling file missing: {target} (listed in the manifest of {path})") from None
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise UserError(f"scaling file {target} does not match the sha256 in the manifest; refusing it")
    return json.loads(data)


def manifest_path(path: str | os.PathLike) -> Path:
    return Path(str(path) + MANIFEST_SUFFIX)


def save_model(
    model: object, path: str | os.PathLike, training_fingerprint: str, extra: dict | None = None
) -> dict:
    """Write the model and its manifest atomically; returns the manifest."""
    path = Path(path)
    if not path.parent.is_dir():
        raise UserError(f"folder for the model file does not exist: {path.parent}")
    buffer = io.BytesIO()
    joblib.dump(model, buffer, compress=3)
    data = buffer.getvalue()
    features = getattr(model, "feature_names_out_", None)
    if features is None and hasattr(model, "features_"):
        features = model.features_.get_feature_names_out()
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "file": path.name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "training_fingerprint": str(training_fingerprint),
        "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
        "sklearn_version": sklearn.__version__,
        "joblib_version": joblib.__version__,
        "python_version": sys.version.split()[0],
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "features": [str(f) for f in features] if features is not None else [],
        "extra": extra or {},
    }
    # Model first, manifest last: a crash in between leaves a pair that load refuses.
    write_bytes_atomic(path, data)
    write_bytes_atomic(manifest_path(path), (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    return manifest


def read_manifest(path: str | os.PathLike) -> dict:
    """The manifest of a model file, or UserError naming the file when missing or invalid."""
    mpath = manifest_path(path)
    try:
        manifest = json.loads(mpath.read_text())
    except FileNotFoundError:
        raise UserError(f"model manifest missing: {mpath} (refusing to load {path})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"model manifest invalid: {mpath} ({type(exc).__name__})") from None
    sha = manifest.get("sha256") if isinstance(manifest, dict) else None
    if not (isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)):
        raise UserError(f"model manifest invalid: {mpath} has no valid sha256")
    return manifest


def load_model(path: str | os.PathLike) -> tuple[object, dict]:
    """(model, manifest). Refuses, before unpickling, a file whose sha256 differs from its manifest."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"model file not found: {path}")
    manifest = read_manifest(path)
    data = path.read_bytes()  # hash and load the same bytes
    digest = hashlib.sha256(data).hexdigest()
    if digest != manifest["sha256"]:
        raise UserError(f"model file {path} does not match the sha256 in its manifest; refusing to load it")
    try:
        model = joblib.load(io.BytesIO(data))
    except Exception as exc:  # hash matched but the content is not a model joblib can read
        raise UserError(f"model file {path} could not be loaded: {type(exc).__name__}") from None
    return model, manifest


def _with_scaling(model, manifest: dict, path, info: dict, predictor: str):
    if predictor not in PREDICTORS:
        raise UserError(f"predictor: must be one of {', '.join(PREDICTORS)}, got {predictor!r}")
    info = {**info, "predictor": "regressor"}
    if predictor == "regressor":
        return model, info
    doc = load_scaling(path, manifest)
    if doc is None:
        raise UserError(f"predictor: {path} has no per-problem scaling models; refit it with `ttsplan fit`")
    from planner.predict.predictor import ScalingPredictor

    scaling = manifest["extra"]["scaling"]
    return ScalingPredictor(model, doc), {**info, "predictor": "scaling", "scaling_sha256": scaling["sha256"]}


def load_planner_model(
    path: str | os.PathLike | None = None, predictor: str = DEFAULT_PREDICTOR
) -> tuple[object, dict]:
    """(model, info): the given model file, else the shipped one, else one fitted now from the
    shipped profiles (with a note on stderr). predictor "scaling": the per-problem models over it."""
    if path is not None:
        model, manifest = load_model(path)
        return _with_scaling(
            model, manifest, path, {"path": str(path), "sha256": manifest["sha256"]}, predictor
        )
    if DEFAULT_MODEL.exists():
        model, manifest = load_model(DEFAULT_MODEL)
        info = {"path": "default", "sha256": manifest["sha256"]}
        return _with_scaling(model, manifest, DEFAULT_MODEL, info, predictor)
    dirs = default_profile_dirs()
    if not dirs:
        raise UserError(f"no shipped model ({DEFAULT_MODEL}) and no shipped profiles to fit one from")
    records = load_profiles(dirs)
    sys.stderr.write("note: no shipped model file; fitting one from the shipped profiles\n")
    model, _ = fit_profiles(records)
    return model, {
        "path": None,
        "fitted_from": "shipped profiles",
        "training_fingerprint": fingerprint(records),
    }
