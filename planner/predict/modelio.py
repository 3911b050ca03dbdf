"""Model files that load without running code, with a hash manifest.

`save_model` writes `<path>` (skops.io format: a zip of JSON and NumPy arrays, no pickle) and
`<path>.manifest.json` (sha256 of the file, the training-data fingerprint, library versions,
date, features) as one unit: a kill leaves the old pair or the new pair. `load_model` refuses a
file over MAX_MODEL_BYTES, reads the manifest, hashes the bytes, and builds only the types in
TRUSTED_TYPES: a pickle or joblib file, or a skops file naming any other type, is refused
before anything in it is built. The hash catches corruption; the type list stops a crafted file.

The per-problem scaling models (planner.predict.scalingfit) are plain JSON beside the model,
`<path>.scaling.json`; the manifest's extra.scaling holds its file name and sha256, checked
before it is used. `load_planner_model` returns the regressor, or with predictor="scaling" the
ScalingPredictor over it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import sys
import types
import zipfile
from importlib import resources
from pathlib import Path

import sklearn

from planner.core.errors import UserError
from planner.core.files import atomic_paths, check_output_file, finish_moves
from planner.core.profiles import default_profile_dirs, fingerprint, load_profiles
from planner.predict.regressor import AccuracyRegressor, fit_profiles

DEFAULT_MODEL = Path(str(resources.files("planner") / "data" / "default_model.skops"))
MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_VERSION = 2  # 2: skops.io model files (1 was joblib)
MAX_MODEL_BYTES = 50_000_000
MAX_MANIFEST_BYTES = 1_000_000
# The types a model file may hold beyond those skops trusts by default (NumPy, built-ins,
# scikit-learn estimators): ours and the histogram trees' predictor.
TRUSTED_TYPES = (
    "planner.predict.features.ConfigFeatures",
    "planner.predict.regressor.AccuracyRegressor",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
)


def _skops_version() -> str:
    from importlib.metadata import version

    return version("skops")


SCALING_SUFFIX = ".scaling.json"
PREDICTORS = ("scaling", "regressor")
DEFAULT_PREDICTOR = "scaling"  # the default; a model file without scaling models falls back to "regressor"


def scaling_path(path: str | os.PathLike) -> Path:
    return Path(str(path) + SCALING_SUFFIX)


def scaling_file(doc: dict, path: str | os.PathLike) -> tuple[Path, bytes, dict]:
    """(where, bytes, manifest entry) of the scaling document of the model at `path`; save_model
    writes it together with the model and manifest."""
    data = (json.dumps(doc, separators=(",", ":"), allow_nan=True) + "\n").encode()
    target = scaling_path(path)
    return target, data, {"file": target.name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


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


_TORCH_SHIM = "sklearn.externals.array_api_compat.torch"


def _skops_io():
    """skops.io, imported when a model is read or written (not at import: it takes a second).

    skops lists scikit-learn's estimators when imported (sklearn.utils.all_estimators), and the
    package walk behind that imports every subpackage to look inside, scikit-learn's array-API
    shim for torch among them, which imports torch: 1.5 s more per command where torch is
    installed, for a package the walk then skips (scikit-learn ignores its externals). While
    skops imports, that one shim is an empty placeholder (no subpackages); it is removed after,
    so a later real use imports the shim itself. The estimator list is the same (checked)."""
    if "skops.io" in sys.modules or "torch" in sys.modules or _TORCH_SHIM in sys.modules:
        import skops.io as sio

        return sio
    placeholder = types.ModuleType(_TORCH_SHIM)
    placeholder.__path__ = []
    sys.modules[_TORCH_SHIM] = placeholder
    try:
        import skops.io as sio
    finally:
        if sys.modules.get(_TORCH_SHIM) is placeholder:
            del sys.modules[_TORCH_SHIM]
    return sio


def manifest_path(path: str | os.PathLike) -> Path:
    return Path(str(path) + MANIFEST_SUFFIX)


def model_bytes(model: object) -> bytes:
    """The model in skops.io format (deflate-compressed)."""
    return _skops_io().dumps(model, compression=zipfile.ZIP_DEFLATED, compresslevel=9)


def save_model(
    model: object,
    path: str | os.PathLike,
    training_fingerprint: str,
    extra: dict | None = None,
    companions: dict[Path, bytes] | None = None,
) -> dict:
    """Write the model, its manifest and any companion files (the scaling JSON) as one unit;
    returns the manifest."""
    path = check_output_file(path, "out")
    check_output_file(manifest_path(path), "out")
    data = model_bytes(model)
    features = getattr(model, "feature_names_out_", None)
    if features is None and hasattr(model, "features_"):
        features = model.features_.get_feature_names_out()
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "file": path.name,
        "format": "skops",
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "training_fingerprint": str(training_fingerprint),
        "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
        "sklearn_version": sklearn.__version__,
        "skops_version": _skops_version(),
        "python_version": sys.version.split()[0],
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "features": [str(f) for f in features] if features is not None else [],
        "extra": extra or {},
    }
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    others = companions or {}
    for target in others:
        check_output_file(target, "out")
    with atomic_paths(path, manifest_path(path), *others) as (model_tmp, manifest_tmp, *other_tmps):
        model_tmp.write_bytes(data)
        manifest_tmp.write_text(text, encoding="utf-8")
        for tmp, content in zip(other_tmps, others.values(), strict=True):
            tmp.write_bytes(content)
    return manifest


def read_manifest(path: str | os.PathLike) -> dict:
    """The manifest of a model file, or UserError naming the file when missing or invalid."""
    mpath = manifest_path(path)
    if not mpath.is_file():
        raise UserError(f"model: manifest missing: {mpath} (refusing to load {path})")
    if mpath.stat().st_size > MAX_MANIFEST_BYTES:
        raise UserError(f"model: manifest {mpath} is over {MAX_MANIFEST_BYTES} bytes")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise UserError(f"model: manifest invalid: {mpath} ({type(exc).__name__})") from None
    sha = manifest.get("sha256") if isinstance(manifest, dict) else None
    if not (isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)):
        raise UserError(f"model: manifest invalid: {mpath} has no valid sha256")
    return manifest


def load_model(path: str | os.PathLike) -> tuple[object, dict]:
    """(model, manifest). Refuses, before building anything, a file too big, not matching the
    sha256 in its manifest, not in skops format, or naming a type outside TRUSTED_TYPES."""
    path = Path(path)
    finish_moves(path)  # a save that a kill interrupted: finish it (the new pair)
    if not path.is_file():
        raise UserError(f"model: file not found: {path}")
    if path.stat().st_size > MAX_MODEL_BYTES:
        raise UserError(f"model: {path} is over {MAX_MODEL_BYTES} bytes; refusing to read it")
    manifest = read_manifest(path)
    data = path.read_bytes()  # hash and load the same bytes
    digest = hashlib.sha256(data).hexdigest()
    if digest != manifest["sha256"]:
        raise UserError(f"model: {path} does not match the sha256 in its manifest; refusing to load it")
    sio = _skops_io()
    if not data.startswith(b"PK"):
        raise UserError(f"model: {path} is not a skops model file (pickle files run code: not loaded)")
    try:
        untrusted = [t for t in sio.get_untrusted_types(data=data) if t not in TRUSTED_TYPES]
    except Exception as exc:  # not a zip, no schema: not a model file
        raise UserError(f"model: {path} is not a skops model file ({type(exc).__name__})") from None
    if untrusted:
        raise UserError(
            f"model: {path} holds a type that is not trusted ({untrusted[0]}); refusing to load it"
        )
    try:
        model = sio.loads(data, trusted=list(TRUSTED_TYPES))
    except Exception as exc:  # trusted types only, but the content does not build a model
        raise UserError(f"model: {path} could not be loaded ({type(exc).__name__})") from None
    if not isinstance(model, AccuracyRegressor):
        raise UserError(f"model: {path} holds a {type(model).__name__}, not an AccuracyRegressor")
    return model, manifest


def _with_scaling(model, manifest: dict, path, info: dict, predictor: str | None):
    if predictor is not None and predictor not in PREDICTORS:
        raise UserError(f"predictor: must be one of {', '.join(PREDICTORS)}, got {predictor!r}")
    info = {**info, "predictor": "regressor"}
    if predictor == "regressor":
        return model, info
    doc = load_scaling(path, manifest)
    if doc is None:
        if predictor is None:  # the default, on a model fitted without scaling models
            return model, info
        raise UserError(f"predictor: {path} has no per-problem scaling models; refit it with `ttsplan fit`")
    from planner.predict.predictor import ScalingPredictor

    scaling = manifest["extra"]["scaling"]
    return ScalingPredictor(model, doc), {**info, "predictor": "scaling", "scaling_sha256": scaling["sha256"]}


def load_planner_model(
    path: str | os.PathLike | None = None, predictor: str | None = None
) -> tuple[object, dict]:
    """(model, info): the given model file, else the shipped one, else one fitted now from the
    shipped profiles (with a note on stderr). predictor "scaling": the per-problem models over it
    (and the transferred ones for policies without samples); "regressor": the regressor alone;
    None (DEFAULT_PREDICTOR): "scaling" where the model file has scaling models, else the regressor."""
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
