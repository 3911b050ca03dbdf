"""Profiles: measured or published accuracy/cost records of TTS configurations.

A profile is a folder with `records.parquet` (one row per configuration cell, the schema in
`SCHEMA`) and `profile.json` (name, kind, sources, assumptions, models, ...). The regressor
learns from the records; the planner reads them through `load_profiles`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from planner.core import checks
from planner.core.errors import UserError
from planner.core.files import atomic_paths, check_output_folder, finish_moves, read_bounded
from planner.core.stopping import parse_rule
from planner.core.vocab import AGGREGATIONS, BINS, METHODS, NONE, SELECTIONS

RECORDS_FILE = "records.parquet"
META_FILE = "profile.json"
# recorded samples behind a replayed profile, one row per sample (planner.predict.samples reads
# them): policy, dataset, problem_id, sample, correct, answer, score:<verifier>:<aggregation>
SAMPLES_FILE = "samples.csv"
SAMPLE_COLUMNS = ("policy", "dataset", "problem_id", "sample", "correct", "answer")
SCORE_PREFIX = "score:"  # score columns are named score:<verifier>:<aggregation>

# Column -> pandas dtype, in file order.
SCHEMA: dict[str, str] = {
    "dataset": "str",
    "problem_id": "str",
    "level": "str",
    "difficulty": "str",
    "pass1": "float64",
    "policy": "str",
    "prm": "str",
    "method": "str",
    "aggregation": "str",
    "selection": "str",
    "n": "Int64",
    "beam_width": "Int64",
    "accuracy": "float64",
    "n_problems": "int64",
    "policy_tokens": "float64",
    "prm_tokens": "float64",
    "flops": "float64",
    "source": "str",
    "note": "str",
}

# Optional columns (absent from profiles written before them; a table loaded by load_profiles
# always has them): an early-stopping cell names its rule in `stop` ("beta:0.95", "esc:4"; "" for
# a fixed-N cell), `n` is its cap and `samples_used` the mean samples it drew per problem;
# `accuracy_at_cap` the same method at the cap on the same samples in the same order (what the
# rule changed; NaN where not recorded: profiles written before it, fixed-N cells).
OPTIONAL: dict[str, str] = {"stop": "str", "samples_used": "float64", "accuracy_at_cap": "float64"}
NO_STOP = ""
FIXED_N = {"stop": NO_STOP, "samples_used": np.nan, "accuracy_at_cap": np.nan}  # OPTIONAL of a fixed-N row
# Extra column of rows that are not measurements: "extrapolated" for N above the samples per
# problem (calibration/extrapolate.py), "measured" for the replayed rows beside them.
BASIS, MEASURED, EXTRAPOLATED = "basis", "measured", "extrapolated"

# Allowed values of the categorical columns.
UNSTATED = "unstated"  # a published cell whose method, N or policy the source does not state
ALLOWED: dict[str, tuple[str, ...]] = {
    "difficulty": (*BINS, "all"),
    "method": (*METHODS, UNSTATED),
    "aggregation": (*AGGREGATIONS, NONE, UNSTATED),
    "selection": (*SELECTIONS, NONE, UNSTATED),
}

KINDS = ("published", "replay", "measured")
MAX_META_BYTES = 50_000_000
MAX_COUNT = 1e40  # tokens or FLOPs of one cell: finite and below what any run could spend

# String columns where a missing value means "" (none); the others must be given.
_BLANK_OK = ("problem_id", "level", "note")
_NON_EMPTY = ("dataset", "policy", "prm", "source")


@dataclass
class Profile:
    """One loaded profile folder."""

    records: pd.DataFrame
    meta: dict
    path: Path

    @property
    def name(self) -> str:
        return str(self.meta.get("name") or self.path.name)


def empty_records() -> pd.DataFrame:
    """A records table with no rows and the schema's dtypes."""
    return pd.DataFrame({col: pd.Series([], dtype=dtype) for col, dtype in SCHEMA.items()})


# ---------------------------------------------------------------- validation


def _coerce_str(series: pd.Series, col: str, where: str) -> pd.Series:
    values = series.astype(object)
    missing = values.isna()
    if col in _BLANK_OK:
        values = values.where(~missing, "")
    elif missing.any():
        row = int(np.flatnonzero(missing.to_numpy())[0])
        raise UserError(f"{where}: column '{col}' has a missing value (row {row})")
    if col in ("problem_id", "level"):  # whole numbers are fine as ids and levels
        values = values.map(
            lambda v: str(v) if isinstance(v, int | np.integer) and not isinstance(v, bool) else v
        )
    bad = values.map(lambda v: not isinstance(v, str))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise UserError(
            f"{where}: column '{col}' must hold strings, got {type(values.iloc[row]).__name__} "
            f"{values.iloc[row]!r} (row {row})"
        )
    return values.astype("str")


def _coerce_float(series: pd.Series, col: str, where: str) -> pd.Series:
    if series.dtype == bool or pd.api.types.is_bool_dtype(series.dtype):
        raise UserError(f"{where}: column '{col}' must be numeric, got booleans")
    try:
        out = pd.to_numeric(series, errors="raise")
    except (ValueError, TypeError) as exc:
        raise UserError(f"{where}: column '{col}' must be numeric ({_one_line(exc)})") from None
    if not (pd.api.types.is_numeric_dtype(out.dtype)) or pd.api.types.is_bool_dtype(out.dtype):
        raise UserError(f"{where}: column '{col}' must be numeric, got dtype {series.dtype}")
    return out.astype("float64")


def _coerce_int(series: pd.Series, col: str, where: str, nullable: bool) -> pd.Series:
    values = _coerce_float(series, col, where)
    finite = values.dropna()
    if not np.isfinite(finite.to_numpy()).all() or (finite != np.round(finite)).any():
        raise UserError(f"{where}: column '{col}' must hold whole numbers")
    if (finite.abs() > 2**62).any():
        raise UserError(
            f"{where}: column '{col}' holds a number above 2^62 (row {_first_bad(values.abs() > 2**62)})"
        )
    if values.isna().any() and not nullable:
        raise UserError(f"{where}: column '{col}' has a missing value")
    return values.astype("Int64" if nullable else "int64")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _first_bad(mask: pd.Series) -> int:
    return int(np.flatnonzero(mask.to_numpy(dtype=bool))[0])


def _check_range(df: pd.DataFrame, col: str, where: str, lo: float, hi: float, allow_nan: bool) -> None:
    values = df[col].astype("float64")
    if not allow_nan and values.isna().any():
        raise UserError(f"{where}: column '{col}' has a missing value (row {_first_bad(values.isna())})")
    bad = values.notna() & ~values.between(lo, hi)
    if bad.any():
        row = _first_bad(bad)
        raise UserError(
            f"{where}: column '{col}' value {float(values.iloc[row])!r} is outside [{lo}, {hi}] (row {row})"
        )


def validate_records(df: pd.DataFrame, where: str = "records") -> pd.DataFrame:
    """Check a records table against `SCHEMA` and return a copy with the schema's dtypes.

    Columns come out in schema order, then the OPTIONAL ones when `stop` and `samples_used` are
    present (both or neither; accuracy_at_cap NaN when absent);
    extra columns are kept after them. Raises UserError
    naming `where` and the column for a missing column, a wrong type, an out-of-range value
    or a value not allowed.
    """
    if not isinstance(df, pd.DataFrame):
        raise UserError(f"{where}: records must be a table, got {type(df).__name__}")
    for col in SCHEMA:
        if col not in df.columns:
            raise UserError(f"{where}: column '{col}' is missing")
    out = {}
    for col, dtype in SCHEMA.items():
        series = df[col].reset_index(drop=True)
        if dtype == "str":
            out[col] = _coerce_str(series, col, where)
        elif dtype == "float64":
            out[col] = _coerce_float(series, col, where)
        else:
            out[col] = _coerce_int(series, col, where, nullable=dtype == "Int64")
    present = [c for c in OPTIONAL if c in df.columns]
    pair = [c for c in ("stop", "samples_used") if c in present]
    if present and len(pair) < 2:
        missing = next(c for c in ("stop", "samples_used") if c not in present)
        raise UserError(f"{where}: column '{missing}' is missing (it comes with '{present[0]}')")
    if present:
        out["stop"] = _coerce_str(df["stop"].reset_index(drop=True), "stop", where)
        out["samples_used"] = _coerce_float(df["samples_used"].reset_index(drop=True), "samples_used", where)
        if "accuracy_at_cap" in df.columns:
            out["accuracy_at_cap"] = _coerce_float(
                df["accuracy_at_cap"].reset_index(drop=True), "accuracy_at_cap", where
            )
        else:
            out["accuracy_at_cap"] = pd.Series(np.nan, index=out["stop"].index, dtype="float64")
    extras = [c for c in df.columns if c not in SCHEMA and c not in OPTIONAL]
    for col in extras:
        out[col] = df[col].reset_index(drop=True)
    result = pd.DataFrame(out)

    for col, allowed in ALLOWED.items():
        bad = ~result[col].isin(allowed)
        if bad.any():
            row = _first_bad(bad)
            raise UserError(
                f"{where}: column '{col}' value {result[col].iloc[row]!r} is not one of "
                f"{', '.join(allowed)} (row {row})"
            )
    for col in _NON_EMPTY:
        bad = result[col].str.strip() == ""
        if bad.any():
            raise UserError(f"{where}: column '{col}' is empty (row {_first_bad(bad)})")
    _check_range(result, "accuracy", where, 0.0, 1.0, allow_nan=False)
    _check_range(result, "pass1", where, 0.0, 1.0, allow_nan=True)
    for col in ("policy_tokens", "prm_tokens", "flops"):  # finite: NaN means not measured
        _check_range(result, col, where, 0.0, MAX_COUNT, allow_nan=True)
    for col, hi in (("n", checks.MAX_N), ("beam_width", checks.MAX_N), ("n_problems", checks.MAX_PROBLEMS)):
        _check_range(result, col, where, 1, hi, allow_nan=True)
    _check_methods(result, where)
    if present:
        _check_stopping(result, where)
    return result


def _check_stopping(df: pd.DataFrame, where: str) -> None:
    """An early-stopping row: a known rule, majority or Best-of-N vote, a cap, and 1 <= samples_used
    <= n; a fixed-N row has no samples_used."""
    stop = df["stop"] != NO_STOP
    for row in np.flatnonzero(stop.to_numpy()):
        try:
            parse_rule(df["stop"].iloc[row])
        except UserError as exc:
            raise UserError(f"{where}: column 'stop' (row {row}): {exc}") from None
    used = df["samples_used"].astype("float64")
    at_cap = df["accuracy_at_cap"].astype("float64")
    n = pd.to_numeric(df["n"]).astype("float64")
    rules = [
        (stop & ~df["method"].isin(("majority", "best_of_n")), "stop", "is for majority and best_of_n only"),
        (stop & (df["method"] == "best_of_n") & (df["selection"] != "vote"), "stop", "needs selection vote"),
        (stop & n.isna(), "n", "must give the cap of an early-stopping row"),
        (stop & (~(used >= 1) | (used > n)), "samples_used", "must be in [1, n] with a stop rule"),
        (~stop & used.notna(), "samples_used", "must be empty without a stop rule"),
        (~(at_cap.isna() | ((at_cap >= 0) & (at_cap <= 1))), "accuracy_at_cap", "must be in [0, 1]"),
        (~stop & at_cap.notna(), "accuracy_at_cap", "must be empty without a stop rule"),
    ]
    for mask, col, message in rules:
        mask = mask.fillna(False).astype(bool)
        if mask.any():
            row = _first_bad(mask)
            raise UserError(f"{where}: column '{col}' value {df[col].iloc[row]!r} {message} (row {row})")


def static_rows(records: pd.DataFrame) -> pd.DataFrame:
    """The measured fixed-N rows of a records table (early-stopping and extrapolated rows left out)."""
    keep = np.ones(len(records), dtype=bool)
    if "stop" in records.columns:
        keep &= (records["stop"].fillna(NO_STOP).astype(str) == NO_STOP).to_numpy()
    if BASIS in records.columns:
        keep &= records[BASIS].astype(object).to_numpy() != EXTRAPOLATED
    return records if keep.all() else records[keep]


def _check_methods(df: pd.DataFrame, where: str) -> None:
    """Rules that follow from what each method is."""
    rules = [
        (
            df["method"].isin(("cot", "majority")) & (df["prm"] != "none"),
            "prm",
            "must be 'none' for cot and majority",
        ),
        (
            df["method"].isin(("cot", "majority")) & (df["aggregation"] != "none"),
            "aggregation",
            "must be 'none' for cot and majority",
        ),
        ((df["method"] == "cot") & (df["selection"] != "none"), "selection", "must be 'none' for cot"),
        (
            (df["method"] == "majority") & (df["selection"] != "vote"),
            "selection",
            "must be 'vote' for majority",
        ),
        ((df["method"] == "cot") & df["n"].notna() & (df["n"] != 1), "n", "must be 1 for cot"),
        (
            df["method"].isin(("best_of_n", "beam", "dvts")) & (df["prm"] == "none"),
            "prm",
            "must name a verifier (or 'unstated') for best_of_n, beam and dvts",
        ),
    ]
    for mask, col, message in rules:
        mask = mask.fillna(False).astype(bool)
        if mask.any():
            row = _first_bad(mask)
            raise UserError(
                f"{where}: column '{col}' value {df[col].iloc[row]!r} {message} (row {row}, "
                f"method {df['method'].iloc[row]!r})"
            )


def validate_meta(meta: Mapping, where: str = "profile.json") -> dict:
    """Check profile.json's content; returns a plain dict copy."""
    if not isinstance(meta, Mapping):
        raise UserError(f"{where}: must hold a JSON object, got {type(meta).__name__}")
    meta = dict(meta)
    for key in ("name", "description", "kind", "created"):
        if not isinstance(meta.get(key), str) or not meta[key].strip():
            raise UserError(f"{where}: key '{key}' must be a non-empty string")
    if meta["kind"] not in KINDS:
        raise UserError(f"{where}: key 'kind' value {meta['kind']!r} is not one of {', '.join(KINDS)}")
    try:
        _dt.date.fromisoformat(meta["created"])
    except ValueError:
        raise UserError(
            f"{where}: key 'created' must be a date YYYY-MM-DD, got {meta['created']!r}"
        ) from None
    for key in ("sources", "assumptions"):
        value = meta.get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UserError(f"{where}: key '{key}' must be a list of strings")
    if not meta["sources"]:
        raise UserError(f"{where}: key 'sources' must name at least one source")
    models = meta.get("models", {})
    if not isinstance(models, dict) or not all(isinstance(v, dict) for v in models.values()):
        raise UserError(f"{where}: key 'models' must map model names to objects")
    meta["models"] = models
    return meta


# ---------------------------------------------------------------- fingerprint


def _cell(value: object) -> str:
    if value is None or value is pd.NA:
        return "<NA>"
    if isinstance(value, float | np.floating):
        return "nan" if math.isnan(value) else repr(float(value))
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    return "s:" + str(value)


def _cells(col: pd.Series) -> np.ndarray:
    """_cell of every value of one column: floats one by one (0.0 and -0.0 are equal but print
    apart), other columns once per distinct value (a column of a validated table holds one type)."""
    if col.dtype.kind == "f":
        return np.array(["nan" if math.isnan(x) else repr(x) for x in col.tolist()], dtype=object)
    codes, uniques = pd.factorize(col, use_na_sentinel=False)
    return np.array([_cell(v) for v in uniques], dtype=object)[codes]


def fingerprint(df: pd.DataFrame) -> str:
    """sha256 of a canonical form of a table: columns by name, rows sorted, exact floats.

    Row order and column order do not matter; values and column names do.
    """
    cols = sorted(str(c) for c in df.columns)
    frame = df.copy()
    frame.columns = [str(c) for c in frame.columns]
    lines = sorted("\x1f".join(row) for row in zip(*(_cells(frame[c]) for c in cols), strict=True))
    digest = hashlib.sha256()
    digest.update("\x1f".join(cols).encode())
    for line in lines:
        digest.update(b"\x1e")
        digest.update(line.encode())
    return digest.hexdigest()


# ---------------------------------------------------------------- load


def _read_records(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise UserError(f"{path}: not a readable parquet file ({_one_line(exc)})") from None


def _read_meta(path: Path) -> dict:
    try:
        text = read_bounded(path, MAX_META_BYTES, str(path)).decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno} ({exc.msg})") from None
    except RecursionError:
        raise UserError(f"{path}: JSON nested too deeply") from None


def load_profile(path: str | os.PathLike) -> Profile:
    """Read and check one profile folder. Every problem is a one-line UserError naming the file."""
    folder = Path(path)
    if not folder.exists():
        raise UserError(f"{folder}: profile folder does not exist")
    if not folder.is_dir():
        raise UserError(
            f"{folder}: is not a folder (a profile is a folder with {RECORDS_FILE} and {META_FILE})"
        )
    if not any(folder.iterdir()):
        raise UserError(f"{folder}: profile folder is empty (expected {RECORDS_FILE} and {META_FILE})")
    records_path, meta_path = folder / RECORDS_FILE, folder / META_FILE
    finish_moves(records_path)  # a write that a kill interrupted: finish it
    for file in (meta_path, records_path):
        if not file.is_file():
            raise UserError(f"{file}: file is missing")
    meta = validate_meta(_read_meta(meta_path), str(meta_path))
    records = validate_records(_read_records(records_path), str(records_path))
    stored = meta.get("fingerprint")
    if stored is not None and stored != fingerprint(records):
        raise UserError(
            f"{records_path}: does not match the fingerprint in {META_FILE} (changed or half-written)"
        )
    return Profile(records=records, meta=meta, path=folder)


def load_profiles(paths: Iterable[str | os.PathLike]) -> pd.DataFrame:
    """Records of several profiles in one table, with a `profile` column (the profile's name)."""
    frames = []
    for path in paths:
        profile = load_profile(path)
        frames.append(profile.records.assign(profile=profile.name))
    if not frames:
        return empty_records().assign(
            profile=pd.Series([], dtype="str"),
            stop=pd.Series([], dtype="str"),
            samples_used=pd.Series([], dtype="float64"),
            accuracy_at_cap=pd.Series([], dtype="float64"),
        )
    names = [f["profile"].iloc[0] for f in frames if len(f)]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise UserError(f"profile name {dup!r} is loaded twice")
    out = pd.concat(frames, ignore_index=True)
    out["profile"] = out["profile"].astype("str")
    out["stop"] = out["stop"].fillna(NO_STOP).astype("str") if "stop" in out else NO_STOP
    for col in ("samples_used", "accuracy_at_cap"):
        out[col] = out[col].astype("float64") if col in out else np.nan
    return out


def shipped_profiles_root() -> Path:
    """Where the shipped profiles are: profiles/ in a source checkout, else the copy an installed
    wheel carries as planner/shipped_profiles."""
    checkout = Path(__file__).resolve().parents[2] / "profiles"
    if checkout.is_dir():
        return checkout
    return Path(str(resources.files("planner"))) / "shipped_profiles"


def default_profile_dirs() -> list[Path]:
    """The shipped profile folders (each with profile.json), sorted by name."""
    root = shipped_profiles_root()
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / META_FILE).is_file())


def check_samples(samples: pd.DataFrame, where: str) -> pd.DataFrame:
    """A samples table as samples.csv holds it: SAMPLE_COLUMNS, then score:<verifier>:<aggregation>
    columns of finite numbers; correct True/False; at least one sample."""
    missing = [c for c in SAMPLE_COLUMNS if c not in samples.columns]
    if missing:
        raise UserError(f"{where}: column '{missing[0]}' is missing")
    scores = [c for c in samples.columns if isinstance(c, str) and c.startswith(SCORE_PREFIX)]
    extra = [c for c in samples.columns if c not in SAMPLE_COLUMNS and c not in scores]
    if extra:
        raise UserError(f"{where}: unexpected column {extra[0]!r}")
    if samples.empty:
        raise UserError(f"{where}: no samples")
    if not samples["correct"].isin((True, False)).all():
        raise UserError(f"{where}: column 'correct' must be True/False")
    for c in scores:
        if not np.isfinite(pd.to_numeric(samples[c], errors="coerce").to_numpy(dtype=float)).all():
            raise UserError(f"{where}: column {c!r} must hold a finite number for every sample")
    return samples[[*SAMPLE_COLUMNS, *scores]].reset_index(drop=True)


def _json_default(value: object) -> object:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, _dt.date):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def write_profile(
    path: str | os.PathLike, records: pd.DataFrame, meta: Mapping, samples: pd.DataFrame | None = None
) -> Profile:
    """Validate, then write records.parquet and profile.json (and samples.csv, given the
    samples behind the records) atomically.

    The files are written to temp files in the folder and moved into place with os.replace;
    on any failure the temp files are removed (and the folder too, if this call made it).
    profile.json gets `fingerprint` and `n_records`; `created` defaults to today.
    """
    folder = check_output_folder(path, "out")
    meta = dict(meta)
    meta.setdefault("created", _dt.date.today().isoformat())
    meta.setdefault("models", {})
    meta = validate_meta(meta, f"{folder / META_FILE}")
    records = validate_records(records, f"{folder / RECORDS_FILE}")
    meta["fingerprint"] = fingerprint(records)
    meta["n_records"] = len(records)
    try:
        meta_text = json.dumps(meta, indent=2, sort_keys=False, default=_json_default, allow_nan=False) + "\n"
    except (TypeError, ValueError) as exc:
        raise UserError(f"{folder / META_FILE}: cannot be written as JSON ({_one_line(exc)})") from None

    if samples is not None:
        samples = check_samples(samples, f"{folder / SAMPLES_FILE}")
    targets = [folder / RECORDS_FILE, folder / META_FILE] + (
        [folder / SAMPLES_FILE] if samples is not None else []
    )
    made = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_paths(*targets) as tmps:
            records.to_parquet(tmps[0], index=False)
            tmps[1].write_text(meta_text, encoding="utf-8")
            if samples is not None:
                samples.to_csv(tmps[2], index=False)
    except BaseException:
        if made and not any(folder.iterdir()):
            folder.rmdir()
        raise
    return Profile(records=records, meta=meta, path=folder)
