"""One sample is one answer whatever selects it: majority and Best-of-N at N = 1 are pass@1.

Every predictor asks its model about a sampled row at N = 1 as the policy's majority@1 row
(no verifier, no aggregation, vote), so the prediction, interval and calibrated range of
majority@1 and of every Best-of-N@1 (any verifier, aggregation, selection) are one prediction
by construction. CoT is greedy decoding, a different thing, and keeps its own prediction.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from planner.core.vocab import NONE

SAMPLED = ("majority", "best_of_n")
PASS1 = ("majority", NONE, NONE, "vote")  # (method, prm, aggregation, selection) of every N = 1 sampled row


def pass1_mask(X: pd.DataFrame) -> np.ndarray:
    """True for the sampled rows (majority, Best-of-N) at N = 1."""
    if "method" not in X or "n" not in X:
        return np.zeros(len(X), dtype=bool)
    n = pd.to_numeric(X["n"], errors="coerce").to_numpy(dtype=float)
    method = X["method"]
    if isinstance(method.dtype, pd.CategoricalDtype):  # compare the few categories, then codes
        sampled = np.flatnonzero(np.isin(np.asarray(method.cat.categories, dtype=object), SAMPLED))
        return np.isin(method.cat.codes.to_numpy(), sampled) & (n == 1)
    return np.isin(method.astype(object).to_numpy(), SAMPLED) & (n == 1)


def as_pass1(X: pd.DataFrame) -> pd.DataFrame:
    """X with every sampled N = 1 row rewritten as the majority@1 row (X itself when there is none)."""
    mask = pass1_mask(X)
    if not mask.any():
        return X
    values = dict(zip(("method", "prm", "aggregation", "selection"), PASS1, strict=True))
    values |= {"prm_params": np.nan, "prm_family": NONE}  # a verifier's spec columns, when given
    return X.assign(**{col: set_where(X[col], mask, v) for col, v in values.items() if col in X})


def set_where(column: pd.Series, where: np.ndarray, value: object) -> pd.Series:
    """The column with `value` in the rows `where` (a categorical stays one: cheap to factorize)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        cat = column.array
        cat = cat if value in cat.categories else cat.add_categories([value])
        codes = np.where(where, cat.categories.get_loc(value), cat.codes)
        return pd.Series(
            pd.Categorical.from_codes(codes, dtype=cat.dtype, validate=False), index=column.index
        )
    if pd.api.types.is_float_dtype(column.dtype):
        return pd.Series(np.where(where, value, column.to_numpy()), index=column.index)
    return pd.Series(np.where(where, value, column.to_numpy(dtype=object)), index=column.index, dtype=object)
