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
  model's mean success rate) and policies without samples alike;
- a policy without samples (planner.predict.transfer, when the document has a `transfer`
  part): the same curves from predicted parameters (mu from its published cells, else the
  regressor's pass@1), for cot, majority, Best-of-N of verifiers measured on samples or in
  published cells, and tree methods with a correction; intervals from the held-out transfer
  error; rows it cannot answer (a verifier nothing measured, a tree method without correction)
  stay with the regressor, marked out of the calibrated range;
- early stopping: `measured_stop` gives a calibrated policy's replayed early-stopping cell (the
  profile's rows with a rule, kept by ttsplan fit), which planner.plan.stopping prefers to the
  simulation;
- greedy CoT of a calibrated policy: the profile's measured cell in that bin (decoding is
  deterministic), its interval the measurement's spread plus the new problems' draw;
- everything else (cot without a measured cell, verifiers without scores): the regressor; a
  sampling or tree row of a calibrated policy that its samples do not cover (a verifier that
  never scored them) is marked out of the calibrated range, so the plan's ranking rule does not
  let the regressor's guess beat the policy's measured curves on a point estimate.
"""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd

from planner.core.vocab import TREE_METHODS
from planner.predict.features import Column
from planner.predict.pass1 import SAMPLED, as_pass1, set_where
from planner.predict.scaling import ProblemModel, Z
from planner.predict.scalingfit import TABLE_N, apply_tree, check_doc, widen
from planner.predict.stopping import MEASURED_KEYS
from planner.predict.transfer import TransferModel, transfer_interval

SOURCES = ("regressor", "per-problem model", "transferred model", "measured cell")  # what answered a row
_SOURCE_DTYPE = pd.CategoricalDtype(pd.Index(SOURCES, dtype=object))


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
        self._stops: dict[tuple, dict] = {}
        self._cot: dict[tuple, tuple[float, float, float]] = {}
        self._models: dict[tuple[str, str], ProblemModel] = {}
        self._scored: dict[tuple[str, str], set[tuple[str, str]]] = {}
        self._memo: dict[tuple[str, str], _Memo] = {}
        self._lock = threading.Lock()  # ttsplan serve plans from several threads
        self._grid = {int(n) for n in doc.get("table_n", TABLE_N)}  # N not tabulated here: not predicted
        self.transfer = doc.get("transfer")
        self._anchor = {(p["policy"], p["dataset"]): p for p in (self.transfer or {}).get("policies", [])}
        self._transferred: dict[tuple, TransferModel] = {}
        for e in doc["sets"]:
            pd_key = (e["policy"], e["dataset"])
            self._sets[pd_key] = e
            # (verifier, aggregation) pairs it answers Best-of-N for: its table's and its model's
            pairs = {tuple(name.rsplit(":", 1)) for name in e["model"]["params"]["scores"]}
            for method, prm, agg, sel, b, n, acc, low, high in e["table"]:
                self._table[(*pd_key, method, prm, agg, sel, b, int(n))] = (acc, low, high)
                if method == "best_of_n":
                    pairs.add((prm, agg))
            self._scored[pd_key] = pairs
            for t in e["tree"]:
                self._tree[(*pd_key, t["method"], t["prm"])] = t
            for c in e.get("stopping", []):
                self._stops[(*pd_key, *(c[k] for k in MEASURED_KEYS), c["bin"])] = c
            for b, acc, problems in e.get("cot", []):
                self._cot[(*pd_key, b)] = measured_interval(acc, problems)

    @property
    def calibrated(self) -> list[tuple[str, str]]:
        """(policy, dataset) pairs with a per-problem model."""
        return sorted(self._sets)

    def problem_model(self, policy: str, dataset: str) -> tuple[ProblemModel, int] | None:
        """(the per-problem model, samples per problem it was fitted on) of a calibrated
        (policy, dataset), else None."""
        key = (str(policy), str(dataset).partition(":")[0])
        if key not in self._sets:
            return None
        return self._model(key), int(self._sets[key]["samples_per_problem"])

    def measured_stop(
        self,
        policy: str,
        dataset: str,
        method: str,
        prm: str,
        aggregation: str,
        stop: str,
        cap: int,
        bin: str,
    ) -> dict | None:
        """The replayed early-stopping cell of this configuration (planner.predict.stopping
        .measured_stops: accuracy, samples_used, at_cap, problems), else None."""
        key = (str(policy), str(dataset).partition(":")[0], method, prm, aggregation, stop, int(cap), bin)
        return self._stops.get(key)

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
        if method == "cot":
            value = self._cot.get((*key, b))
            return None if value is None else (value, False)
        if method in TREE_METHODS:
            corr = self._tree.get((*key, method, prm))
            if corr is not None and [agg, sel] not in corr.get("measured", [[agg, sel]]):
                corr = None  # tree cells measured at other aggregations / selections only
            bon = None if corr is None else self._sampled(key, "best_of_n", prm, agg, sel, b, n)
            if bon is None:
                return None
            return apply_tree(bon, corr, n), n > max(corr["n_measured"])
        return None

    def assess_frame(self, X: pd.DataFrame) -> pd.DataFrame:
        """predicted_accuracy, accuracy_low/high, in_calibrated_range, extrapolated and source
        (per-problem model or regressor) for each row of X."""
        X = as_pass1(X)  # majority and Best-of-N at N = 1: the majority@1 row, pass@1
        method = Column(X["method"]).values()
        n = pd.to_numeric(X["n"]).to_numpy(dtype=float)
        pred, low, high = (np.full(len(X), np.nan) for _ in range(3))
        in_range = np.zeros(len(X), dtype=bool)
        known = np.zeros(len(X), dtype=bool)  # predicted by a per-problem or transferred model
        trusted = np.zeros(len(X), dtype=bool)  # ... and in range without asking the regressor
        demoted = np.zeros(len(X), dtype=bool)  # out of range whatever the regressor says
        extrapolated = np.zeros(len(X), dtype=bool)
        source = np.zeros(len(X), dtype=np.int8)  # a code into SOURCES
        policy = Column(X["policy"])
        dataset = Column(X["dataset"]) if "dataset" in X else Column(np.full(len(X), ""))
        sets = [(p, str(d).partition(":")[0]) for p in policy.uniques for d in dataset.uniques]
        transfer = self.transfer is not None and "dataset" in X
        if any(key in self._sets or transfer for key in sets):
            cols = [Column(X[c]) for c in ("method", "prm", "aggregation", "selection")]
            cols.append(Column(X["difficulty"]) if "difficulty" in X else Column(np.full(len(X), "all")))
            pair = policy.codes * len(dataset.uniques) + dataset.codes
            pair[(policy.codes < 0) | (dataset.codes < 0)] = -1
            for code, key in enumerate(sets):
                calibrated = key in self._sets
                if not (calibrated or transfer):
                    continue
                rows = np.flatnonzero(pair == code)
                if not len(rows):
                    continue
                # a policy's own samples; else its published cells anchor its transferred curves
                anchored = calibrated or self._pair_model(key, X, rows[0])[1]
                acc, lo, hi, extra, cover = self._lookup(
                    key, [Column.from_codes(c.codes[rows], c.uniques) for c in cols], n[rows]
                )
                covered = cover > 0
                # a sampling or tree row that neither the policy's samples nor its transferred
                # curves cover (a verifier that never scored them, N above n_max): the
                # regressor's guess, outside the calibrated range
                miss = rows[~covered]
                demoted[miss] = np.isin(method[miss], (*SAMPLED, *TREE_METHODS))
                hit = rows[covered]
                pred[hit], low[hit], high[hit] = acc[covered], lo[covered], hi[covered]
                extrapolated[hit] = extra[covered]
                known[hit], trusted[hit] = True, anchored
                source[hit] = 1 if calibrated else 2
                if calibrated:  # greedy CoT of a calibrated policy: its profile's measured cell
                    source[hit[method[hit] == "cot"]] = 3
                # a tree row through another verifier's correction (transfer.pooled_tree)
                demoted[rows[cover == OUT_OF_RANGE]] = True
        need = ~trusted  # the regressor's prediction, or its calibrated range, is wanted
        if need.any():
            fresh = need & ~known  # known rows want the calibrated range only
            # X is rewritten by as_pass1 already: a regressor that can skip doing it again does;
            # it reads the whole table (its range costs less than taking the rows out)
            assess = getattr(self.regressor, "assess_pass1", self.regressor.assess)
            got = assess(X, rows=fresh)
            for out, values in zip((pred, low, high), got[:3], strict=False):
                out[fresh] = np.asarray(values)[fresh]
            in_range[need] = np.asarray(got[3]).astype(bool)[need]
        in_range[trusted] = True
        in_range[demoted] = False
        return pd.DataFrame(
            {
                "predicted_accuracy": pred,
                "accuracy_low": low,
                "accuracy_high": high,
                "in_calibrated_range": in_range,
                "extrapolated": extrapolated,
                # object strings cost 10 ms here; the categories an object index (a string one costs more)
                "source": pd.Categorical.from_codes(source, dtype=_SOURCE_DTYPE, validate=False),
            },
            index=X.index,
        )

    def _lookup(self, key: tuple[str, str], cols: list[Column], n: np.ndarray):
        """(accuracy, low, high, extrapolated, covered) per row of one calibrated set: `_one` of
        each distinct (method, prm, aggregation, selection, difficulty, N), remembered under an
        integer key so that a candidate asked again costs an array lookup."""
        with self._lock:
            return self._lookup_locked(key, cols, n)

    def _lookup_locked(self, key: tuple[str, str], cols: list[Column], n: np.ndarray):
        memo = self._memo.setdefault(key, _Memo())
        names = [np.array([*c.uniques, "None"], dtype=object) for c in cols]  # missing: str(None)
        codes = [memo.codes(i, c) for i, c in enumerate(cols)]
        ok = np.isfinite(n) & (n >= 1) & (n < 2**_Memo.N_BITS) & memo.small()
        keys = memo.keys_of(codes, np.where(ok, n, 1).astype(np.int64))

        fill = self._fill if key in self._sets else self._fill_transferred
        new = ok & ~memo.has(keys)
        if new.any():
            _, first = np.unique(keys[new], return_index=True)
            rows = np.flatnonzero(new)[first]
            values = [nm[c.codes[rows]] for nm, c in zip(names, cols, strict=True)]
            memo.add(keys[rows], fill(key, values, n[rows], _split(keys[rows] >> _Memo.N_BITS)))
        out = np.empty((len(n), 5))
        out[ok] = memo.values[np.searchsorted(memo.keys, keys[ok])]
        if not ok.all():  # N outside the key's range: as asked
            rows = np.flatnonzero(~ok)
            values = [nm[c.codes[rows]] for nm, c in zip(names, cols, strict=True)]
            out[rows] = fill(key, values, n[rows], _groups(values))
        return out[:, 0], out[:, 1], out[:, 2], out[:, 3] == 1.0, out[:, 4]

    def _fill(self, key, values: list[np.ndarray], n: np.ndarray, groups: list[np.ndarray]) -> np.ndarray:
        """(accuracy, low, high, extrapolated, covered) of calibrated rows, one by one within each
        (method, prm, aggregation, selection, difficulty) group, skipping groups the set cannot
        answer (a verifier it has no scores or tree cells of); covered is 0 (not predicted here),
        1, or OUT_OF_RANGE (predicted, outside the calibrated range)."""
        out = np.full((len(n), 5), [np.nan, np.nan, np.nan, 0.0, 0.0])
        scored = self._scored[key]
        for idx, (m, prm, agg, sel, b) in zip(groups, _group_names(values, groups), strict=True):
            if (m == "best_of_n" and (prm, agg) not in scored) or (
                m in TREE_METHODS and (*key, m, prm) not in self._tree
            ):
                continue  # nothing the set holds (_one would return None for each row)
            for r in idx:
                got = self._one(key, m, prm, agg, sel, b, int(n[r]))
                if got is not None:
                    out[r] = [*got[0], float(got[1]), 1.0]
        return out

    def _fill_transferred(
        self, key, values: list[np.ndarray], n: np.ndarray, groups: list[np.ndarray]
    ) -> np.ndarray:
        """The same for a policy without samples: its transferred curves, one call per curve."""
        model, anchored = self._transferred[key], key in self._anchor
        reg_half = None if anchored else float(getattr(self.regressor, "half_width_", 1.0))
        out = np.full((len(n), 5), [np.nan, np.nan, np.nan, 0.0, 0.0])
        spread, cover = np.zeros(len(n)), np.zeros(len(n))
        ns = n.astype(np.int64)
        per_verifier: dict[tuple[str, str], tuple[float, float]] = {}
        rows, curves, per_row = [], [], []  # gathered per curve, written once
        for idx, (m, prm, agg, sel, b) in zip(groups, _group_names(values, groups), strict=True):
            if m not in ("cot", *SAMPLED, *TREE_METHODS):
                continue
            rows.append(idx)
            curves.append(model.curve(m, prm, agg, sel, b, ns[idx]))
            if (m, prm) not in per_verifier:
                per_verifier[m, prm] = (model.spread(m, prm), OUT_OF_RANGE if model.pooled(m, prm) else 1.0)
            per_row.append(per_verifier[m, prm])
        if rows:
            idx, sizes = np.concatenate(rows), [len(r) for r in rows]
            out[idx, 0] = np.concatenate(curves)
            spread[idx], cover[idx] = (np.repeat(np.array(per_row)[:, k], sizes) for k in (0, 1))
        got = np.flatnonzero(~np.isnan(out[:, 0]))  # one interval pass over every row predicted
        out[got, 1], out[got, 2] = transfer_interval(self.transfer, spread[got], reg_half)(out[got, 0])
        out[got, 4] = cover[got]
        return out

    def _pair_model(self, key: tuple[str, str], X: pd.DataFrame, row: int) -> tuple[TransferModel, bool]:
        """The transferred model of a (policy, dataset) without samples, and whether published
        cells anchor it (else its mu is the regressor's pass@1 for that row's policy)."""
        if key not in self._transferred:
            a = self._anchor.get(key)
            if a is not None:
                model = TransferModel(self.transfer, key[1], a["mu"], a["kappa"])
            else:
                mu_row = _pass1_row(X.iloc[[row]])
                mu = float(np.asarray(self.regressor.assess(mu_row)[0])[0])
                model = TransferModel(self.transfer, key[1], mu, self.transfer["kappa"])
            self._transferred[key] = model
        return self._transferred[key], key in self._anchor

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


def measured_interval(acc: float, problems: int) -> tuple[float, float, float]:
    """(accuracy, low, high) of a measured cell for as many new problems: the measurement's
    binomial spread over its problems plus the new problems' draw (variance 2 a(1 - a) / m,
    a smoothed by one right and one wrong so that 0% or 100% keeps some width)."""
    a = (acc * problems + 1.0) / (problems + 2.0)
    half = Z * float(np.sqrt(2.0 * a * (1.0 - a) / problems))  # the per-problem model's LEVEL
    return float(acc), max(0.0, acc - half), min(1.0, acc + half)


def _pass1_row(row: pd.DataFrame) -> pd.DataFrame:
    """The majority@1 row at difficulty "all" of this row's policy and dataset (its pass@1)."""
    one = np.ones(len(row), dtype=bool)
    values = {"method": "majority"} | ({"difficulty": "all"} if "difficulty" in row else {})
    row = row.assign(
        n=pd.Series(1, index=row.index, dtype=row["n"].dtype),
        **{c: set_where(row[c], one, v) for c, v in values.items()},
    )
    return as_pass1(row)


def _groups(values: list[np.ndarray]) -> list[np.ndarray]:
    """Row indices of each distinct combination of the arrays' values (first-seen order)."""
    code = np.zeros(len(values[0]), dtype=np.int64)
    for v in values:
        c, uniques = pd.factorize(np.asarray(v, dtype=object), use_na_sentinel=False)
        code = code * len(uniques) + c
    return _split(code)


def _group_names(values: list[np.ndarray], groups: list[np.ndarray]):
    """Each group's (method, prm, aggregation, selection, difficulty), read at its first row."""
    firsts = [int(idx[0]) for idx in groups]
    return zip(*([str(x) for x in v[firsts]] for v in values), strict=True)


def _split(code: np.ndarray) -> list[np.ndarray]:
    """Row indices of each distinct code (groups in first-seen order)."""
    order = np.argsort(code, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(code[order]) != 0]).tolist()
    ends = [*starts[1:], len(code)]
    seen = np.argsort(order[starts], kind="stable").tolist()  # a group's first row is its lowest
    return [order[starts[g] : ends[g]] for g in seen]


OUT_OF_RANGE = 2.0  # a memo row predicted here but outside the calibrated range


class _Memo:
    """Results of one calibrated set's rows under integer keys: five category codes (method,
    prm, aggregation, selection, difficulty; 8 bits each) and N."""

    N_BITS = 20  # N below 2**20 (checks.MAX_N is 2**16)

    def __init__(self) -> None:
        self.vocab: list[dict[str, int]] = [{} for _ in range(5)]
        self.keys = np.empty(0, dtype=np.int64)
        self.values = np.empty((0, 5))  # accuracy, low, high, extrapolated, covered

    def codes(self, i: int, col: Column) -> np.ndarray:
        """Per row: the code of its value in this memo's vocabulary (missing as "None")."""
        vocab = self.vocab[i]
        per_unique = [vocab.setdefault(u, len(vocab)) for u in [*col.uniques, "None"]]
        return np.array(per_unique, dtype=np.int64)[col.codes]

    def small(self) -> bool:
        return all(len(v) <= 256 for v in self.vocab)

    def keys_of(self, codes: list[np.ndarray], n: np.ndarray) -> np.ndarray:
        key = np.zeros(len(n), dtype=np.int64)
        for c in codes:
            key = key * 256 + c
        return key * 2**self.N_BITS + n

    def has(self, keys: np.ndarray) -> np.ndarray:
        if not len(self.keys):
            return np.zeros(len(keys), dtype=bool)
        pos = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        return self.keys[pos] == keys

    def add(self, keys: np.ndarray, values: np.ndarray) -> None:
        keys = np.concatenate([self.keys, keys])
        order = np.argsort(keys, kind="stable")
        self.keys, self.values = keys[order], np.concatenate([self.values, values])[order]
