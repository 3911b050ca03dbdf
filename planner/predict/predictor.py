"""The planner's predictor: per-problem scaling models where a policy has samples, the regressor
elsewhere; the same `assess(rows)` interface as planner.predict.regressor.

- majority and Best-of-N (any verifier the policy's samples were scored by, any aggregation, max
  or weighted vote) of a calibrated (policy, dataset) at difficulty "all" or a bin the model has:
  the ProblemModel's prediction and its bootstrap interval (from the fitted table at N = 1, 2,
  4, ...; other N computed when asked), in_calibrated_range true, extrapolated where N exceeds the
  samples per problem;
- beam and DVTS of a calibrated policy: the Best-of-N prediction at the same N, verifier,
  aggregation and selection plus the tree correction learned from that policy's measured tree
  cells of that verifier (in range, extrapolated above the largest measured N); out of range
  (from the regressor) where there are none;
- one sample is one answer whatever selects it: majority and Best-of-N at N = 1 are asked as
  the majority@1 row (planner.predict.pass1), the policy's pass@1, for calibrated policies (the
  model's mean success rate) and uncalibrated ones (the regressor's majority@1) alike;
- everything else (cot, uncalibrated policies, verifiers without scores): the regressor; a
  sampling or tree row of a calibrated policy that its samples do not cover (a verifier that
  never scored them) is marked out of the calibrated range, so the plan's ranking rule does not
  let the regressor's guess beat the policy's measured curves on a point estimate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from planner.core.vocab import TREE_METHODS
from planner.predict.pass1 import SAMPLED, as_pass1
from planner.predict.scaling import ProblemModel
from planner.predict.scalingfit import TABLE_N, apply_tree, check_doc, widen


class ScalingPredictor:
    """Per-problem scaling models over a fallback regressor (see the module docstring)."""

    def __init__(self, regressor: object, doc: dict) -> None:
        check_doc(doc, "scaling document")
        self.regressor = regressor
        self.doc = doc
        self.coverage = getattr(regressor, "coverage", 0.8)
        self._table: dict[tuple, tuple[float, float, float]] = {}
        self._sets: dict[tuple[str, str], dict] = {}
        self._tree: dict[tuple, dict] = {}
        self._models: dict[tuple[str, str], ProblemModel] = {}
        self._grid = {int(n) for n in doc.get("table_n", TABLE_N)}  # N not tabulated here: not predicted
        for e in doc["sets"]:
            pd_key = (e["policy"], e["dataset"])
            self._sets[pd_key] = e
            for method, prm, agg, sel, b, n, acc, low, high in e["table"]:
                self._table[(*pd_key, method, prm, agg, sel, b, int(n))] = (acc, low, high)
            for t in e["tree"]:
                self._tree[(*pd_key, t["method"], t["prm"])] = t

    @property
    def calibrated(self) -> list[tuple[str, str]]:
        """(policy, dataset) pairs with a per-problem model."""
        return sorted(self._sets)

    def _model(self, key: tuple[str, str]) -> ProblemModel:
        if key not in self._models:
            self._models[key] = ProblemModel.from_dict(self._sets[key]["model"])
        return self._models[key]

    def _sampled(self, key, method, prm, agg, sel, b, n) -> tuple[float, float, float] | None:
        """Majority / Best-of-N from the table, else computed (N off the table's grid)."""
        found = self._table.get((*key, method, prm, agg, sel, b, n))
        if found is not None or n in self._grid:
            return found  # on the grid but not tabulated: not predicted here
        model = self._model(key)
        if n > model.n_max or (b != "all" and b not in model.bins):
            return None
        if method == "best_of_n" and (prm, agg) not in model.scores:
            return None
        kw = {} if method == "majority" else {"verifier": prm, "aggregation": agg, "selection": sel}
        r = model.predict(method=method, n=n, bin=None if b == "all" else b, **kw)
        value = widen(r)
        self._table[(*key, method, prm, agg, sel, b, n)] = value
        return value

    def _one(self, key, method, prm, agg, sel, b, n) -> tuple[tuple[float, float, float], bool] | None:
        """((accuracy, low, high), extrapolated) of one row of a calibrated policy, or None."""
        k = self._sets[key]["samples_per_problem"]
        if method in SAMPLED:
            value = self._sampled(key, method, prm, agg, sel, b, n)
            return None if value is None else (value, n > k)
        if method in TREE_METHODS:
            corr = self._tree.get((*key, method, prm))
            bon = None if corr is None else self._sampled(key, "best_of_n", prm, agg, sel, b, n)
            if bon is None:
                return None
            return apply_tree(bon, corr), n > max(corr["n_measured"])
        return None

    def assess_frame(self, X: pd.DataFrame) -> pd.DataFrame:
        """predicted_accuracy, accuracy_low/high, in_calibrated_range, extrapolated and source
        (per-problem model or regressor) for each row of X."""
        X = as_pass1(X)  # majority and Best-of-N at N = 1: the majority@1 row, pass@1
        method = X["method"].astype(object).to_numpy()
        n = pd.to_numeric(X["n"]).to_numpy(dtype=float)
        pred, low, high, in_range = (np.array(a, copy=True) for a in self.regressor.assess(X))
        in_range = in_range.astype(bool)
        extrapolated = np.zeros(len(X), dtype=bool)
        source = np.full(len(X), "regressor", dtype=object)
        policy = X["policy"].astype(object).to_numpy()
        dataset = X["dataset"].astype(object).to_numpy() if "dataset" in X else np.full(len(X), "")
        pairs = {(str(p), str(d).partition(":")[0]) for p, d in set(zip(policy, dataset, strict=True))}
        mine = [p for p in pairs if p in self._sets]
        if mine:
            ds = np.array([str(d).partition(":")[0] for d in dataset], dtype=object)
            hit = np.zeros(len(X), dtype=bool)
            for p, d in mine:
                hit |= (policy == p) & (ds == d)
            cols = [X[c].astype(object).to_numpy() for c in ("prm", "aggregation", "selection")]
            diff = X["difficulty"].astype(object).to_numpy() if "difficulty" in X else np.full(len(X), "all")
            for i in np.flatnonzero(hit):
                got = self._one(
                    (str(policy[i]), ds[i]),
                    method[i],
                    str(cols[0][i]),
                    str(cols[1][i]),
                    str(cols[2][i]),
                    str(diff[i]),
                    int(n[i]),
                )
                if got is None:
                    # a sampling or tree row of a calibrated policy that its samples do not cover
                    # (a verifier that never scored them, N above n_max): the regressor's guess,
                    # outside this policy's calibrated range
                    in_range[i] = in_range[i] and method[i] not in (*SAMPLED, *TREE_METHODS)
                    continue
                (pred[i], low[i], high[i]), extrapolated[i] = got
                in_range[i] = True
                source[i] = "per-problem model"
        return pd.DataFrame(
            {
                "predicted_accuracy": pred,
                "accuracy_low": low,
                "accuracy_high": high,
                "in_calibrated_range": in_range,
                "extrapolated": extrapolated,
                "source": source,
            },
            index=X.index,
        )

    def assess(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(prediction, low, high, in_calibrated_range), as AccuracyRegressor.assess."""
        f = self.assess_frame(X)
        return (
            f["predicted_accuracy"].to_numpy(),
            f["accuracy_low"].to_numpy(),
            f["accuracy_high"].to_numpy(),
            f["in_calibrated_range"].to_numpy(),
        )

    def without(self, policies) -> ScalingPredictor:
        """The same predictor without the per-problem models of these policies (held-out checks)."""
        drop = {str(p) for p in policies}
        doc = {**self.doc, "sets": [e for e in self.doc["sets"] if e["policy"] not in drop]}
        return ScalingPredictor(self.regressor, doc)
