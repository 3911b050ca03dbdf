"""Turn configuration rows into the numeric matrix the accuracy regressor reads.

A configuration row names a policy, a PRM ("none" for cot/majority), a method, how step
scores are aggregated and how the final answer is selected, N, the beam width, a difficulty
bucket and a dataset. Models are described by size and family (looked up in the spec
registry), so the regressor can generalise to policies it never saw.

Unstated policy or PRM ("unstated"): the size is unknown, so it is left missing (NaN) and the
family is the category "unstated". The gradient-boosted trees route missing sizes along a
learned branch, so such rows still teach the effect of N, method and difficulty without a
made-up size. They are never "inside the calibrated range" for size.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from planner.core.errors import UserError
from planner.core.profiles import BASIS, EXTRAPOLATED, UNSTATED
from planner.core.vocab import (
    BINS,
    METHODS,
    NO_VERIFIER_METHODS,
    NONE,
    TREE_METHODS,
)
from planner.models import specs

DIFFICULTIES = (*BINS, "all")
NO_MODEL = NONE

CONFIG_COLUMNS = (
    "policy",
    "prm",
    "method",
    "aggregation",
    "selection",
    "n",
    "beam_width",
    "difficulty",
    "dataset",
)
# Optional columns that describe a model directly (used for models outside the registry).
SPEC_COLUMNS = ("policy_params", "policy_family", "prm_params", "prm_family")

NUMERIC_FEATURES = ("policy_log10_params", "prm_log10_params", "log2_n", "beam_width")
CATEGORICAL_FEATURES = (
    "policy_family",
    "prm_family",
    "method",
    "aggregation",
    "selection",
    "difficulty",
    "dataset",
)
FEATURES = NUMERIC_FEATURES + CATEGORICAL_FEATURES

# Datasets drawn from the same problems share one feature value: MATH-500 (PRM800K split) and
# the 100-problem replay ("math100", Qwen2.5-Math's math_cot_100 example) are both problems of
# the MATH test set. This lets the difficulty buckets of the replay inform MATH-500 queries.
DATASET_GROUPS = {"math500": "math", "math100": "math", "math": "math"}

Lookup = Callable[[str], "tuple[float, str] | None"]


def family_of(spec: specs.ModelSpec) -> str:
    """Family as a feature; outcome reward models are marked (they score whole solutions only)."""
    return f"{spec.family}/orm" if spec.role == "orm" else str(spec.family)


def registry_lookup(name: str) -> tuple[float, str] | None:
    """(params, family) of a registered model, or None when the registry does not know it."""
    try:
        spec = specs.resolve(name)
    except UserError:
        return None
    if spec.head == "rule":  # a checker, not a model: no size
        return math.nan, family_of(spec)
    return float(spec.params), family_of(spec)


def attach_specs(rows: pd.DataFrame, lookup: Lookup | None = None) -> pd.DataFrame:
    """Copy of `rows` with policy/PRM params and family filled in.

    Values already present in SPEC_COLUMNS are kept (a model given by its config file).
    "none" gives no size and family "none"; "unstated" gives no size and family "unstated";
    a name the registry does not know gives no size and no family (NaN).
    """
    lookup = lookup or registry_lookup
    out = rows.copy()
    for role in ("policy", "prm"):
        params_col, family_col = f"{role}_params", f"{role}_family"
        params = pd.to_numeric(out[params_col], errors="coerce") if params_col in out else None
        family = out[family_col].astype(object) if family_col in out else None
        names = out[role].astype(str)
        cache: dict[str, tuple[float, object]] = {}
        for name in names.unique():
            if name in (NO_MODEL, UNSTATED):
                cache[name] = (math.nan, name)
            else:
                found = lookup(name)
                cache[name] = (found[0], found[1]) if found else (math.nan, np.nan)
        looked_params = names.map({k: v[0] for k, v in cache.items()}).astype(float)
        looked_family = names.map({k: v[1] for k, v in cache.items()}).astype(object)
        out[params_col] = looked_params if params is None else params.fillna(looked_params)
        out[family_col] = looked_family if family is None else family.where(family.notna(), looked_family)
    return out


def check_config_frame(X: object, name: str = "X") -> pd.DataFrame:
    """The DataFrame itself, or UserError naming the argument and the missing columns."""
    if not isinstance(X, pd.DataFrame):
        raise UserError(f"{name} must be a pandas DataFrame of configuration rows, got {type(X).__name__}")
    missing = [c for c in CONFIG_COLUMNS if c not in X.columns]
    if missing:
        raise UserError(f"{name} is missing column(s): {', '.join(missing)}")
    return X


class Column:
    """A categorical column as pandas.factorize gives it: per-row codes into `uniques`
    (-1 for missing), so that lookups run once per distinct value."""

    def __init__(self, values: object = None):
        if values is None:
            return
        if isinstance(getattr(values, "dtype", None), pd.CategoricalDtype):
            # a categorical's own codes (pandas.factorize would first turn it into objects);
            # its unused categories stay among the uniques, with no row
            cat = values.array if isinstance(values, pd.Series) else values
            self.codes = np.asarray(cat.codes, dtype=np.intp)
            self.uniques = [str(u) for u in cat.categories]
            return
        codes, uniques = pd.factorize(values)
        self.codes = np.asarray(codes)
        self.uniques = [str(u) for u in uniques]

    @classmethod
    def from_codes(cls, codes: np.ndarray, uniques: list) -> Column:
        column = cls()
        column.codes, column.uniques = codes, uniques
        return column

    def per_row(self, per_unique: np.ndarray, missing: object) -> np.ndarray:
        """Spread a value per distinct entry to the rows (`missing` where the row has none)."""
        extended = np.append(
            np.asarray(per_unique, dtype=object if per_unique.dtype == object else float), missing
        )
        return extended[self.codes]  # code -1 picks the appended value

    def values(self) -> np.ndarray:
        return self.per_row(np.asarray(self.uniques, dtype=object), None)


def _model_columns(rows: pd.DataFrame, role: str, lookup: Lookup) -> tuple[np.ndarray, Column]:
    """(params per row, family Column) of the policy or PRM: spec columns where given, else
    the registry by name."""
    names = Column(rows[role])
    looked = [_describe(name, lookup) for name in names.uniques]
    params = names.per_row(np.array([p for p, _ in looked], dtype=float), np.nan).astype(float)
    family_codes, family_uniques = pd.factorize(np.array([f for _, f in looked], dtype=object))
    family = Column.from_codes(np.append(family_codes, -1)[names.codes], [str(u) for u in family_uniques])
    if f"{role}_params" in rows:
        given = pd.to_numeric(rows[f"{role}_params"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        params = np.where(np.isnan(given), params, given)
    if f"{role}_family" in rows:
        given = rows[f"{role}_family"]
        missing = given.isna().to_numpy()
        if not missing.any():  # every row has one (the planner's candidates): as given
            family = Column(given)
        elif not missing.all():
            family = Column(np.where(missing, family.values(), given.to_numpy(dtype=object, na_value=None)))
    return params, family


def raw_features(rows: pd.DataFrame, lookup: Lookup | None = None) -> dict:
    """Numeric arrays and factorized categorical columns (before categories are coded).

    Sizes and families come from the spec columns where a row has them, else from the
    registry by name (see `attach_specs` for the rules).
    """
    lookup = lookup or registry_lookup
    n = pd.to_numeric(rows["n"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    if (n <= 0).any():
        raise UserError("n must be a positive integer")
    out: dict = {}
    for role in ("policy", "prm"):
        params, out[f"{role}_family"] = _model_columns(rows, role, lookup)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"{role}_log10_params"] = np.log10(np.where(params > 0, params, np.nan))
    with np.errstate(divide="ignore", invalid="ignore"):
        out["log2_n"] = np.log2(n)
    for col in ("method", "aggregation", "selection", "difficulty"):
        out[col] = Column(rows[col])
    # Methods without a beam get width 0 (a value, not "unknown"); an unstated width stays NaN.
    beam_codes = [i for i, u in enumerate(out["method"].uniques) if u in TREE_METHODS]
    width = pd.to_numeric(rows["beam_width"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    out["beam_width"] = np.where(np.isin(out["method"].codes, beam_codes), width, 0.0)
    dataset = Column(rows["dataset"])
    dataset.uniques = [_dataset_group(u) for u in dataset.uniques]  # "arith:seed=1" -> "arith"
    out["dataset"] = dataset
    return out


POLICY_FEATURES = ("policy_log10_params", "policy_family")


def subset(raw: dict, rows: np.ndarray) -> dict:
    """The raw features (`raw_features`) of the given row indices."""
    return {
        f: Column.from_codes(v.codes[rows], v.uniques) if isinstance(v, Column) else v[rows]
        for f, v in raw.items()
    }


def concat_raw(first: dict, second: dict) -> dict:
    """Rows of `first` then of `second` (same features; a categorical's codes are recoded into
    one list of values)."""
    out = {}
    for f, a in first.items():
        b = second[f]
        if isinstance(a, Column):
            uniques = list(dict.fromkeys([*a.uniques, *b.uniques]))
            index = {u: i for i, u in enumerate(uniques)}
            recode = [np.append([index[u] for u in c.uniques], -1).astype(np.intp)[c.codes] for c in (a, b)]
            out[f] = Column.from_codes(np.concatenate(recode), uniques)
        else:
            out[f] = np.concatenate([a, b])
    return out


def distinct_rows(raw: dict, features: list | tuple) -> tuple[np.ndarray, np.ndarray]:
    """(per row, the index of its distinct combination of `features`; per combination, its
    first row), combinations numbered in order of first appearance."""
    key, size = np.zeros(len(raw["log2_n"]), dtype=np.int64), 1
    for f in features:
        v = raw[f]
        codes = v.codes + 1 if isinstance(v, Column) else pd.factorize(v, use_na_sentinel=True)[0] + 1
        radix = int(codes.max(initial=0)) + 1
        if size * radix >= 2**62:  # renumber before the mixed radix overflows
            key = np.unique(key, return_inverse=True)[1].reshape(-1)
            size = int(key.max(initial=0)) + 1
        key, size = key * radix + codes, size * radix
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(first, kind="stable")  # number combinations by first appearance
    rank = np.empty(len(order), dtype=np.intp)
    rank[order] = np.arange(len(order))
    return rank[inverse], first[order]


def _describe(name: str, lookup: Lookup) -> tuple[float, object]:
    if name in (NO_MODEL, UNSTATED):
        return math.nan, name
    found = lookup(name)
    return (float(found[0]), found[1]) if found else (math.nan, None)


def _dataset_group(name: object) -> str | None:
    if name is None:
        return None
    base = str(name).partition(":")[0].lower()
    return DATASET_GROUPS.get(base, base)


class ConfigFeatures(TransformerMixin, BaseEstimator):
    """Configuration rows -> float matrix: the numeric features, then one 0/1 column per
    category seen in fit for each categorical feature (`get_feature_names_out` names them).

    One-hot rather than the trees' native categories: scikit-learn's histogram trees ignore a
    category with under 10 (weighted) samples when splitting, which on a few dozen training
    rows ruled out every difficulty and most methods. A category not seen in fit gets all
    zeros in its block and marks the row as outside the calibrated range. Fit also records
    what was seen, for `in_range`.
    """

    def __init__(self, lookup: Lookup | None = None):
        self.lookup = lookup

    def _frame(self, X: pd.DataFrame) -> dict:
        return raw_features(check_config_frame(X), self.lookup)

    def fit(self, X: pd.DataFrame, y: object = None) -> ConfigFeatures:
        raw = self._frame(X)
        self.categories_ = {
            col: sorted({u for u in raw[col].uniques if u is not None and u != "None"})
            for col in CATEGORICAL_FEATURES
        }
        names = list(NUMERIC_FEATURES)
        for col in CATEGORICAL_FEATURES:
            names += [f"{col}={v}" for v in self.categories_[col]]
        self.feature_names_out_ = np.asarray(names, dtype=object)
        self.columns_ = {
            f: [i for i, n in enumerate(names) if n == f or n.startswith(f"{f}=")] for f in FEATURES
        }
        self.feature_names_in_ = np.asarray(CONFIG_COLUMNS, dtype=object)
        self.n_features_in_ = len(CONFIG_COLUMNS)
        # Seen ranges: model size per (role, family); N and beam width per method.
        self.size_range_ = {}
        for role in ("policy", "prm"):
            family = raw[f"{role}_family"].values()
            size = raw[f"{role}_log10_params"]
            for fam in sorted(set(family.tolist()) - {None}):
                sizes = size[(family == fam) & ~np.isnan(size)]
                if len(sizes):
                    self.size_range_[(role, str(fam))] = (float(sizes.min()), float(sizes.max()))
        # Difficulty buckets are measured on few policies: a bucket counts as calibrated only
        # for a policy family seen with it.
        family, difficulty = raw["policy_family"].values(), raw["difficulty"].values()
        self.family_difficulty_ = sorted({(str(f), str(d)) for f, d in zip(family, difficulty, strict=True)})
        self.n_range_ = {}
        self.beam_widths_ = {}
        method = raw["method"].values()
        for name in sorted(set(method.tolist()) - {None}):
            rows = method == name
            n = raw["log2_n"][rows]
            n = n[~np.isnan(n)]
            if len(n):
                self.n_range_[str(name)] = (float(n.min()), float(n.max()))
            widths = raw["beam_width"][rows]
            self.beam_widths_[str(name)] = sorted(float(b) for b in np.unique(widths[~np.isnan(widths)]))
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "categories_")
        return self._encode(self._frame(X))

    def raw(self, X: pd.DataFrame) -> dict:
        """`raw_features` of X with this transformer's lookup (for `encode` and `range_of`)."""
        return self._frame(X)

    def encode(self, raw: dict) -> np.ndarray:
        """`transform` of rows already read by `raw`."""
        check_is_fitted(self, "categories_")
        return self._encode(raw)

    def range_of(self, raw: dict) -> np.ndarray:
        """`in_range` of rows already read by `raw`."""
        check_is_fitted(self, "categories_")
        return self._in_range(raw)

    def _category_index(self, raw: dict, col: str) -> np.ndarray:
        """Per row: index of its category among those seen in fit, -1 when unseen or missing."""
        index = {v: i for i, v in enumerate(self.categories_[col])}
        column = raw[col]
        per_unique = np.array([index.get(u, -1) for u in column.uniques], dtype=np.int64)
        return np.append(per_unique, -1)[column.codes]

    def _encode(self, raw: dict) -> np.ndarray:
        out = np.zeros((len(raw["log2_n"]), len(self.feature_names_out_)), dtype=float)
        for j, col in enumerate(NUMERIC_FEATURES):
            out[:, j] = raw[col]
        rows = np.arange(len(out))
        for col in CATEGORICAL_FEATURES:
            index = self._category_index(raw, col)
            seen = index >= 0
            if self.columns_[col]:
                out[rows[seen], self.columns_[col][0] + index[seen]] = 1.0
        return out

    def __getstate__(self) -> dict:
        """State with string keys only (a model file stores JSON-like data, see predict.modelio)."""
        state = super().__getstate__()
        if isinstance(state.get("size_range_"), dict):
            ranges = [[role, fam, lo, hi] for (role, fam), (lo, hi) in state["size_range_"].items()]
            state = {**state, "size_range_": ranges}
        return state

    def __setstate__(self, state: dict) -> None:
        if isinstance(state.get("size_range_"), list):
            ranges = {(role, fam): (lo, hi) for role, fam, lo, hi in state["size_range_"]}
            state = {**state, "size_range_": ranges}
        super().__setstate__(state)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        check_is_fitted(self, "categories_")
        return self.feature_names_out_.copy()

    def in_range(self, X: pd.DataFrame) -> np.ndarray:
        """True where every category was seen in fit and sizes, N and beam width lie in seen ranges."""
        check_is_fitted(self, "categories_")
        return self._in_range(self._frame(X))

    def _in_range(self, raw: dict) -> np.ndarray:
        eps = 1e-9
        ok = np.ones(len(raw["log2_n"]), dtype=bool)
        for col in CATEGORICAL_FEATURES:
            ok &= self._category_index(raw, col) >= 0
        for role in ("policy", "prm"):
            family = raw[f"{role}_family"]
            bounds = [self.size_range_.get((role, u), (np.nan, np.nan)) for u in family.uniques]
            low = family.per_row(np.array([b[0] for b in bounds], dtype=float), np.nan).astype(float)
            high = family.per_row(np.array([b[1] for b in bounds], dtype=float), np.nan).astype(float)
            size = raw[f"{role}_log10_params"]
            no_model = family.per_row(np.array([u == NO_MODEL for u in family.uniques], dtype=bool), False)
            # a model-free verifier (family "rule") has no size: its family check above is enough
            sizeless = np.isnan(size) & np.isnan(low)
            ok &= no_model.astype(bool) | sizeless | ((size >= low - eps) & (size <= high + eps))
        pairs = set(map(tuple, self.family_difficulty_))
        family, difficulty = raw["policy_family"], raw["difficulty"]
        key = family.codes * (len(difficulty.uniques) + 1) + difficulty.codes
        for k in np.unique(key):
            f, d = divmod(int(k), len(difficulty.uniques) + 1)
            seen = (
                f >= 0 and d < len(difficulty.uniques) and (family.uniques[f], difficulty.uniques[d]) in pairs
            )
            if not seen:
                ok[key == k] = False
        method = raw["method"]
        bounds = [self.n_range_.get(u, (np.nan, np.nan)) for u in method.uniques]
        low = method.per_row(np.array([b[0] for b in bounds], dtype=float), np.nan).astype(float)
        high = method.per_row(np.array([b[1] for b in bounds], dtype=float), np.nan).astype(float)
        ok &= (raw["log2_n"] >= low - eps) & (raw["log2_n"] <= high + eps)
        beam = raw["beam_width"]
        for code, name in enumerate(method.uniques):
            widths = self.beam_widths_.get(name, [])
            rows = (method.codes == code) & ~np.isnan(beam)
            if widths and rows.any():
                ok[rows] &= np.isin(beam[rows], widths)
        return ok


def prepare_training(
    records: pd.DataFrame, lookup: Lookup | None = None
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Profile records -> fit-ready rows (CONFIG_COLUMNS + spec columns, accuracy, weight, policy).

    Drops rows that cannot give features and says how many, by reason. Per-problem rows also
    enter once more pooled as difficulty "all" (each copy at half weight). Rows with identical
    features are pooled: accuracy averaged with weights n_problems, weight summed (the same
    squared-error fit, far fewer rows). Weight n_problems: the variance of a measured accuracy
    falls as 1/n_problems.
    """
    needed = [*CONFIG_COLUMNS, "accuracy", "n_problems"]
    missing = [c for c in needed if c not in records.columns]
    if missing:
        raise UserError(f"profile records are missing column(s): {', '.join(missing)}")
    rows = attach_specs(records, lookup)
    dropped: dict[str, int] = {}

    def drop(mask: pd.Series, reason: str) -> None:
        nonlocal rows
        count = int(mask.sum())
        if count:
            dropped[reason] = dropped.get(reason, 0) + count
            rows = rows[~mask]

    if "stop" in rows:
        drop(rows["stop"].fillna("").astype(str) != "", "early stopping (samples_used, not a fixed N)")
    if BASIS in rows:
        drop(rows[BASIS].astype(object) == EXTRAPOLATED, "extrapolated (a per-problem model's prediction)")
    drop(~rows["method"].isin(METHODS), "method unstated or unknown")
    drop(pd.to_numeric(rows["n"], errors="coerce").isna(), "N unstated")
    drop(pd.to_numeric(rows["accuracy"], errors="coerce").isna(), "accuracy missing")
    drop(rows["policy_family"].isna(), "policy not in registry")
    prm_needed = ~rows["method"].isin(NO_VERIFIER_METHODS)
    drop(prm_needed & rows["prm_family"].isna(), "PRM not in registry")
    drop(~rows["difficulty"].isin(DIFFICULTIES), "difficulty unknown")

    rows = rows.copy()
    rows["accuracy"] = pd.to_numeric(rows["accuracy"]).astype(float)
    weight = pd.to_numeric(rows["n_problems"], errors="coerce").astype(float)
    rows["weight"] = weight.where(weight > 0, 1.0)
    # Per-problem rows (a replay) also count once more as difficulty "all" (the dataset's
    # accuracy is the mean over its problems), so that one policy has both the buckets and
    # the whole set and the difference between them is measured. Each copy weighs half.
    per_problem = rows["problem_id"].fillna("").astype(str).str.len().gt(0) if "problem_id" in rows else None
    if per_problem is not None and per_problem.any():
        rows.loc[per_problem, "weight"] /= 2
        whole = rows[per_problem & (rows["difficulty"] != "all")].copy()
        whole["difficulty"] = "all"
        rows = pd.concat([rows, whole], ignore_index=True)
    keys = [*CONFIG_COLUMNS, *SPEC_COLUMNS]
    for col in keys:  # groupby drops NaN keys; pool on a printable form instead
        rows[f"_k_{col}"] = rows[col].astype(str)
    rows["_wacc"] = rows["accuracy"] * rows["weight"]
    agg = {col: (col, "first") for col in keys}
    agg.update(weight=("weight", "sum"), _wacc=("_wacc", "sum"))
    pooled = (
        rows.groupby([f"_k_{c}" for c in keys], sort=True, dropna=False).agg(**agg).reset_index(drop=True)
    )
    pooled["accuracy"] = pooled.pop("_wacc") / pooled["weight"]
    return pooled, dropped
