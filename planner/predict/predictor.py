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
- one sample is one answer whatever selects it: majority and Best-of-N at N = 1 are the
  policy's pass@1, for calibrated policies (the model's mean success rate) and uncalibrated ones
  (the regressor's majority@1) alike;
- a policy without samples (planner.predict.transfer, when the document has a `transfer`
  part): the same curves from predicted parameters (mu from its published cells, else the
  regressor's pass@1), for cot, majority, Best-of-N of verifiers measured on samples or in
  published cells, and tree methods with a correction; intervals from the held-out transfer
  error; rows it cannot answer (a verifier nothing measured, a tree method without correction)
  stay with the regressor, marked out of the calibrated range;
- everything else (cot of calibrated policies, verifiers without scores): the regressor; a
  sampling or tree row of a calibrated policy that its samples do not cover (a verifier that
  never scored them) is marked out of the calibrated range, so the plan's ranking rule does not
  let the regressor's guess beat the policy's measured curves on a point estimate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from planner.core.vocab import TREE_METHODS
from planner.predict.scaling import ProblemModel
from planner.predict.scalingfit import TABLE_N, apply_tree, check_doc, widen
from planner.predict.transfer import TransferModel, transfer_interval

SAMPLED = ("majority", "best_of_n")
PASS1 = ("majority", "none", "none", "vote")  # the curve every N = 1 sampled row reads


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
        self.transfer = doc.get("transfer")
        self._anchor = {(p["policy"], p["dataset"]): p for p in (self.transfer or {}).get("policies", [])}
        self._transferred: dict[tuple, TransferModel] = {}
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
        if n == 1:
            method, prm, agg, sel = PASS1
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
            if corr is not None and [agg, sel] not in corr.get("measured", [[agg, sel]]):
                corr = None  # tree cells measured at other aggregations / selections only
            bon = None if corr is None else self._sampled(key, "best_of_n", prm, agg, sel, b, n)
            if bon is None:
                return None
            return apply_tree(bon, corr), n > max(corr["n_measured"])
        return None

    def assess_frame(self, X: pd.DataFrame) -> pd.DataFrame:
        """predicted_accuracy, accuracy_low/high, in_calibrated_range, extrapolated and source
        (per-problem model or regressor) for each row of X."""
        method = X["method"].astype(object).to_numpy()
        n = pd.to_numeric(X["n"]).to_numpy(dtype=float)
        pass1 = np.isin(method, SAMPLED) & (n == 1)
        base = X
        if pass1.any():  # the regressor answers N = 1 sampled rows as majority@1
            base = X.copy()
            idx = base.index[pass1]
            base.loc[idx, ["prm", "method", "aggregation", "selection"]] = [
                "none",
                "majority",
                "none",
                "vote",
            ]
            if "prm_params" in base:
                base.loc[idx, "prm_params"] = np.nan
            if "prm_family" in base:
                base.loc[idx, "prm_family"] = "none"
        pred, low, high, in_range = (np.array(a, copy=True) for a in self.regressor.assess(base))
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
        if self.transfer is not None:
            others = [p for p in pairs if p not in self._sets]
            if others:
                self._transfer_rows(X, base, others, method, n, (pred, low, high, in_range), source)
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

    def _pair_model(self, key: tuple[str, str], mu_row: pd.DataFrame) -> tuple[TransferModel, bool]:
        """The transferred model of a (policy, dataset) without samples, and whether published
        cells anchor it (else its mu is the regressor's pass@1 for mu_row)."""
        if key not in self._transferred:
            a = self._anchor.get(key)
            if a is not None:
                model = TransferModel(self.transfer, key[1], a["mu"], a["kappa"])
            else:
                mu = float(np.asarray(self.regressor.assess(mu_row)[0])[0])
                model = TransferModel(self.transfer, key[1], mu, self.transfer["kappa"])
            self._transferred[key] = model
        return self._transferred[key], key in self._anchor

    def _transfer_rows(self, X, base, pairs, method, n, out, source) -> None:
        """Rows of policies without samples through the transferred curves (in place)."""
        pred, low, high, in_range = out
        policy = X["policy"].astype(object).to_numpy()
        ds = np.array([str(d).partition(":")[0] for d in X["dataset"].astype(object)], dtype=object)
        cols = [X[c].astype(object).to_numpy() for c in ("prm", "aggregation", "selection")]
        diff = X["difficulty"].astype(object).to_numpy() if "difficulty" in X else np.full(len(X), "all")
        reg_half = float(getattr(self.regressor, "half_width_", 1.0))
        for key in pairs:
            rows = np.flatnonzero((policy == key[0]) & (ds == key[1]))
            mu_row = base.iloc[[rows[0]]].copy()
            mu_row.loc[:, ["prm", "method", "aggregation", "selection"]] = [
                "none",
                "majority",
                "none",
                "vote",
            ]
            mu_row.loc[:, "n"] = 1
            if "difficulty" in mu_row:
                mu_row.loc[:, "difficulty"] = "all"
            for col, value in (("prm_params", np.nan), ("prm_family", "none")):
                if col in mu_row:
                    mu_row.loc[:, col] = value
            model, anchored = self._pair_model(key, mu_row)
            sub = pd.DataFrame(
                {
                    "m": method[rows],
                    "prm": cols[0][rows],
                    "agg": cols[1][rows],
                    "sel": cols[2][rows],
                    "b": diff[rows],
                }
            ).astype(str)
            for (m, prm, agg, sel, b), idx in sub.groupby(
                ["m", "prm", "agg", "sel", "b"], sort=False
            ).indices.items():
                if m not in ("cot", *SAMPLED, *TREE_METHODS):
                    continue
                i = rows[idx]
                got = model.curve(m, prm, agg, sel, b, n[i].astype(np.int64))
                ok = ~np.isnan(got)
                if m in (*SAMPLED, *TREE_METHODS):
                    in_range[i[~ok]] = False  # the regressor's guess for a row the curves cannot answer
                i, got = i[ok], got[ok]
                if not len(i):
                    continue
                half = transfer_interval(self.transfer, model.spread(m, prm), None if anchored else reg_half)
                pred[i] = got
                low[i], high[i] = half(got)
                in_range[i] = in_range[i] | anchored  # its published cells anchor the curves
                source[i] = "transferred model"

    def assess(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(prediction, low, high, in_calibrated_range), as AccuracyRegressor.assess."""
        f = self.assess_frame(X)
        return (
            f["predicted_accuracy"].to_numpy(),
            f["accuracy_low"].to_numpy(),
            f["accuracy_high"].to_numpy(),
            f["in_calibrated_range"].to_numpy(),
        )

    def without(self, policies, records: pd.DataFrame | None = None) -> ScalingPredictor:
        """The same predictor without the per-problem models of these policies (held-out checks).
        With `records` (the profile records without those policies) the transfer part is refitted
        from what is left; its held-out error is re-measured only when a set with samples left."""
        from planner.predict.transfer import fit_transfer

        drop = {str(p) for p in policies}
        sets = [e for e in self.doc["sets"] if e["policy"] not in drop]
        doc = {**self.doc, "sets": sets}
        if records is not None and self.transfer is not None:
            refit = len(sets) < len(self.doc["sets"])
            doc["transfer"] = fit_transfer(sets, records, residuals=refit)
            if not refit:
                doc["transfer"]["half_width"] = self.transfer["half_width"]
        return ScalingPredictor(self.regressor, doc)
