"""Accuracy regressor: configuration rows -> predicted accuracy with an interval.

A histogram gradient-boosted tree model on the logit of accuracy, and an interval from
grouped split-conformal residuals. Figures below: leave-one-policy-out CV (`grouped_cv`) on
the shipped profiles (73 pooled rows, 18 policies); "a / b" is the mean absolute error in
accuracy points weighted by problems / averaged over policies. Defaults: 7.7 / 10.6, interval
coverage 0.86 averaged over policies (target 0.80). Why these choices:
- logit scale: accuracy is bounded in [0, 1] and gains from N or model size shrink near the
  top; back-transformed predictions always stay inside [0, 1].
- trees: they saturate instead of extrapolating, handle missing sizes (unstated policy), and
  fit 100k rows in seconds. Categories are one-hot (see planner.predict.features).
- monotone in log2 N (increasing; option `monotone_n`): more samples do not lower the
  expected accuracy of the sampling methods in the training data (RLHFlow BoN@1024 and
  majority@1024 >= pass@1 for every policy and verifier; the MATH-100 replay rises with N up
  to vote tie-break noise). CoT has N = 1 only, so the constraint does not touch it. It is a
  modelling choice: Liu et al. 2025 report weak PRMs whose curves stay flat, which it allows,
  but a verifier whose accuracy falls with N would be smoothed to flat. CV without: 7.8 / 10.8.
- monotone in policy log10 params (option `monotone_size`): given the other features (the
  family among them), a bigger policy does not predict lower. In every family of the shipped
  tables CoT accuracy rises with size (Liu et al. 2025 Tables 3 and 5: Qwen2.5 0.5B..72B,
  Llama-3.2 1B..3B, Llama-3.1 8B..405B). CV without: 7.6 / 12.4.
- additive parts (option `additive_policy`, `INTERACTION_GROUPS`): a tree uses the features of
  one group only, so logit(accuracy) = f(policy, dataset) + h(difficulty, dataset) +
  g(method, PRM, N, aggregation, selection, difficulty). The shipped data measure the effect
  of N and difficulty on few policies (the MATH-100 replay's is unstated); without this those
  effects stay tied to the policies they were measured on, and a query about another policy
  saw none of them (checked: every difficulty predicted alike, majority@8 below CoT). It
  costs CV accuracy on the policies of the tables: 7.0 / 10.3 without.
- interval: the policies a plan asks about are mostly ones without training rows, so the
  uncertainty that matters is that of a new policy. Fit holds out whole groups (policies) in
  `cv_folds` folds, and the interval half-width on the logit scale is the `coverage` quantile
  of the held-out absolute residuals, each group weighing the same (split-conformal with
  grouped folds), or with `sources` (profiles; fit_profiles gives them) each source the same
  and its groups alike within it, the finite-sample correction then counting sources: the
  art_of_tts profile's reasoning models, whose majority cells the folds predict well, had
  narrowed the half-width of a fit without one CPU policy from 4.3 to 1.1 logit and the
  held-out CPU policies' coverage to 0.14-0.32 (bench/quality.py). Quantile trees (10%/90%)
  in an earlier variant of this model covered about half (0.52) of the held-out policies'
  accuracies, hence this choice. 3 folds: the same CV as 5 here, and fewer fits.
- N = 1: every sampled row (majority, Best-of-N with any verifier) is predicted as majority@1,
  the policy's pass@1 (planner.predict.pass1): one sample is one answer whatever selects it.
- 30 trees at learning rate 0.3: CV as good as 100 at 0.1 in an earlier variant (7.6 / 11.3
  against 7.8 / 11.3) at a third of the prediction time, which dominates a plan query.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit, logit
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.model_selection import GroupKFold
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import ThreadpoolController

from planner.core.errors import UserError
from planner.predict.features import (
    POLICY_FEATURES,
    ConfigFeatures,
    check_config_frame,
    concat_raw,
    distinct_rows,
    prepare_training,
    subset,
)
from planner.predict.pass1 import as_pass1

# Bumped when the fitted attributes change; a model file of another format is refused.
FORMAT_VERSION = 1

# Trees may combine features of one group only (option `additive_policy`): the policy's
# effect and the configuration's effect add up on the logit scale.
INTERACTION_GROUPS = (
    ("policy_log10_params", "policy_family", "dataset"),
    ("difficulty", "dataset"),
    (
        "method",
        "aggregation",
        "selection",
        "log2_n",
        "beam_width",
        "prm_log10_params",
        "prm_family",
        "difficulty",
    ),
)


def _check_vector(values: object, name: str, length: int) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise UserError(f"{name} must be numeric") from None
    if arr.ndim != 1 or len(arr) != length:
        raise UserError(f"{name} must be 1-D with {length} values (one per row of X), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise UserError(f"{name} contains NaN or infinite values")
    return arr


class AccuracyRegressor(RegressorMixin, BaseEstimator):
    """Predict accuracy (0..1) of a test-time-scaling configuration.

    X is a DataFrame with the columns of `planner.predict.features.CONFIG_COLUMNS` (and optionally
    the spec columns for models outside the registry). RegressorMixin comes first so that
    scikit-learn's tags mark this as a regressor.
    """

    def __init__(
        self,
        max_iter: int = 30,
        learning_rate: float = 0.3,
        max_leaf_nodes: int = 15,
        min_samples_leaf: int = 3,
        l2_regularization: float = 1.0,
        monotone_n: bool = True,
        monotone_size: bool = True,
        additive_policy: bool = True,
        coverage: float = 0.8,
        cv_folds: int = 3,
        logit_eps: float = 0.01,
        random_state: int = 0,
    ):
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.monotone_n = monotone_n
        self.monotone_size = monotone_size
        self.additive_policy = additive_policy
        self.coverage = coverage
        self.cv_folds = cv_folds
        self.logit_eps = logit_eps
        self.random_state = random_state

    def _trees(self, features: ConfigFeatures) -> HistGradientBoostingRegressor:
        return HistGradientBoostingRegressor(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            categorical_features=None,
            monotonic_cst=self._monotone(features),
            interaction_cst=self._interactions(features),
            random_state=self.random_state,
        )

    def _interactions(self, features: ConfigFeatures) -> list[list[int]] | None:
        if not self.additive_policy:
            return None
        return [sorted({i for f in group for i in features.columns_[f]}) for group in INTERACTION_GROUPS]

    def _monotone(self, features: ConfigFeatures) -> list[int]:
        increasing = {"log2_n": self.monotone_n, "policy_log10_params": self.monotone_size}
        names = features.get_feature_names_out()
        return [1 if increasing.get(str(name)) else 0 for name in names]

    def _check_params(self) -> None:
        if not (isinstance(self.logit_eps, float | int) and 0 < self.logit_eps < 0.5):
            raise UserError(f"logit_eps must be in (0, 0.5), got {self.logit_eps!r}")
        if not (isinstance(self.coverage, float) and 0 < self.coverage < 1):
            raise UserError(f"coverage must be a float in (0, 1), got {self.coverage!r}")
        if isinstance(self.cv_folds, bool) or not isinstance(self.cv_folds, int) or self.cv_folds < 2:
            raise UserError(f"cv_folds must be an integer >= 2, got {self.cv_folds!r}")

    def fit(
        self,
        X: pd.DataFrame,
        y: object,
        sample_weight: object = None,
        groups: object = None,
        *,
        sources: object = None,
    ) -> AccuracyRegressor:
        """Fit on configuration rows X and accuracies y (0..1).

        groups: one label per row for the interval's held-out folds; default X["policy"].
        sources: one label per row, where its group's data came from (a profile); the interval
        then weighs each source the same and each group the same within its source (default:
        each group the same), so one source of many similar policies does not set it alone.
        """
        self._check_params()
        X = check_config_frame(X, "X")
        if len(X) < 2:
            raise UserError(f"X must have at least 2 rows to fit, got {len(X)}")
        y = _check_vector(y, "y", len(X))
        if ((y < 0) | (y > 1)).any():
            raise UserError("y must hold accuracies in [0, 1]")
        if sample_weight is None:
            sample_weight = np.ones(len(X))
        sample_weight = _check_vector(sample_weight, "sample_weight", len(X))
        if (sample_weight < 0).any() or sample_weight.sum() <= 0:
            raise UserError("sample_weight must be non-negative with a positive sum")
        groups = X["policy"] if groups is None else groups
        groups = np.asarray(groups, dtype=object).astype(str)
        if groups.shape != (len(X),):
            raise UserError(f"groups must have one label per row of X ({len(X)}), got shape {groups.shape}")
        if sources is not None:
            sources = np.asarray(sources, dtype=object).astype(str)
            if sources.shape != (len(X),):
                raise UserError(
                    f"sources must have one label per row of X ({len(X)}), got shape {sources.shape}"
                )

        self.features_ = ConfigFeatures().fit(X)
        Z = self.features_.transform(X)
        # A column with no value at all cannot be binned; it carries nothing, so it is zeroed.
        self.empty_columns_ = np.flatnonzero(np.isnan(Z).all(axis=0))
        Z[:, self.empty_columns_] = 0.0
        target = logit(np.clip(y, self.logit_eps, 1 - self.logit_eps))
        with _threads():
            self.mean_ = self._trees(self.features_).fit(Z, target, sample_weight=sample_weight)
            self.half_width_, self.interval_groups_ = self._conformal(
                Z, target, sample_weight, groups, sources
            )
        self.n_features_in_ = self.features_.n_features_in_
        self.feature_names_in_ = self.features_.feature_names_in_
        self.format_version_ = FORMAT_VERSION
        return self

    def _conformal(
        self, Z: np.ndarray, target: np.ndarray, weight: np.ndarray, groups: np.ndarray, sources=None
    ):
        """(half-width on the logit scale, number of groups it came from)."""
        labels = np.unique(groups)
        if len(labels) < 2:  # no group to hold out: in-sample residuals (optimistic)
            residual = np.abs(target - self.mean_.predict(Z))
            return float(np.quantile(residual, self.coverage)), 1
        residual = np.empty(len(target))
        for train, test in GroupKFold(n_splits=min(self.cv_folds, len(labels))).split(Z, groups=groups):
            z_train, z_test = Z[train], Z[test]
            empty = np.isnan(z_train).all(axis=0)  # see fit: empty columns cannot be binned
            z_train[:, empty] = z_test[:, empty] = 0.0
            model = self._trees(self.features_).fit(z_train, target[train], sample_weight=weight[train])
            residual[test] = np.abs(target[test] - model.predict(z_test))
        # Each group weighs the same; inside a group, rows weigh by sample_weight.
        group_total = pd.Series(weight).groupby(groups).transform("sum").to_numpy()
        row_weight = np.where(group_total > 0, weight / np.where(group_total > 0, group_total, 1), 0)
        if sources is not None:  # each source weighs the same: its groups share its weight
            row_weight = row_weight / pd.Series(groups).groupby(sources).transform("nunique").to_numpy()
        # finite-sample correction over the units the quantile weighs alike (sources, else groups)
        units = len(np.unique(sources)) if sources is not None else len(labels)
        level = min(1.0, self.coverage * (1 + 1 / units))
        order = np.argsort(residual)
        cumulative = np.cumsum(row_weight[order]) / row_weight.sum()
        index = min(int(np.searchsorted(cumulative, level)), len(order) - 1)
        return float(residual[order][index]), len(labels)

    def _logit_mean(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "mean_")
        self._check_format()
        return self._trees_logit(self.features_.raw(as_pass1(check_config_frame(X, "X"))))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Predicted accuracy in [0, 1], one per row."""
        return expit(self._logit_mean(X))

    def predict_interval(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) accuracy band that held-out policies fell in with probability `coverage`."""
        _, low, high = self.predict_all(X)
        return low, high

    def predict_all(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(prediction, low, high) from one featurisation (what the planner calls)."""
        mean = self._logit_mean(X)
        return expit(mean), expit(mean - self.half_width_), expit(mean + self.half_width_)

    def in_calibrated_range(self, X: pd.DataFrame) -> np.ndarray:
        """True where families, sizes, N, beam width and categories were all seen in fit."""
        check_is_fitted(self, "mean_")
        return self.features_.in_range(as_pass1(check_config_frame(X, "X")))

    def assess(
        self, X: pd.DataFrame, *, rows: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(prediction, low, high, in_calibrated_range) from one pass over X (the planner's call).
        rows: a boolean mask of the rows to predict (the others get NaN, their range still)."""
        return self.assess_pass1(as_pass1(check_config_frame(X, "X")), rows=rows)

    def assess_pass1(
        self, X: pd.DataFrame, *, rows: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """`assess` of rows already rewritten by `pass1.as_pass1` (the scaling predictor's, which
        rewrites its rows once for both models)."""
        check_is_fitted(self, "mean_")
        self._check_format()
        raw = self.features_.raw(check_config_frame(X, "X"))
        in_range = self.features_.range_of(raw)
        mean = np.full(len(in_range), np.nan)
        if rows is None:
            rows = np.ones(len(mean), dtype=bool)
        elif len(rows) != len(mean):
            raise UserError(f"rows: a mask of {len(mean)} rows is needed, got {len(rows)}")
        if rows.any():
            picked = np.flatnonzero(rows)
            mean[picked] = self._logit_of_raw(subset(raw, picked))
        return expit(mean), expit(mean - self.half_width_), expit(mean + self.half_width_), in_range

    def _logit_of_raw(self, raw: dict) -> np.ndarray:
        """The trees' logit for each row of a raw feature dict (`ConfigFeatures.raw`).

        When the fitted trees keep the policy's features and the configuration's in different
        interaction groups (`_separates_policy`; `additive_policy` fits them so) and the rows share
        one dataset and difficulty, every tree path varies with the policy's features or the
        configuration's, never both, so logit(p, c) = logit(b, c) + logit(p, c0) - logit(b, c0)
        for any policy b and configuration c0: the trees run once per distinct configuration
        (with the first row's policy b) and once per distinct policy (with the first row's
        configuration), not once per row (a plan's table is policies x configurations).
        The rows of policy b get logit(b, c) itself."""
        split = _policy_split(raw) if self._separates_policy() else None
        if split is None:
            return self._trees_logit(raw)
        policy, config = split  # (inverse, first row) per distinct policy / configuration
        first = np.zeros(len(config[1]), dtype=np.intp)  # the first row's policy for each configuration
        by_config = _with_policy(subset(raw, config[1]), raw, first)
        by_policy = _with_policy(subset(raw, np.zeros(len(policy[1]), dtype=np.intp)), raw, policy[1])
        logits = self._trees_logit(concat_raw(by_config, by_policy))
        per_config, per_policy = logits[: len(config[1])], logits[len(config[1]) :]
        shift = per_policy - per_policy[policy[0][0]]  # 0.0 exactly for the first row's policy
        return per_config[config[0]] + shift[policy[0]]

    def _separates_policy(self) -> bool:
        """True when the fitted trees' interaction constraints keep the policy's features and the
        configuration's (all but dataset and difficulty) in different groups (scikit-learn puts
        unlisted features in one more group)."""
        groups = getattr(self.mean_, "interaction_cst", None)
        if groups is None or isinstance(groups, str):
            return False
        columns = self.features_.columns_
        policy = {i for f in POLICY_FEATURES for i in columns[f]}
        shared = {i for f in ("dataset", "difficulty") for i in columns[f]}
        groups = [set(g) for g in groups]
        rest = set(range(len(self.features_.feature_names_out_))) - set().union(*groups)
        return all(not (g & policy) or g <= policy | shared for g in [*groups, rest])

    def _trees_logit(self, raw: dict) -> np.ndarray:
        Z = self.features_.encode(raw)
        Z[:, self.empty_columns_] = 0.0
        with _threads():
            return self.mean_.predict(Z)

    def _check_format(self) -> None:
        if getattr(self, "format_version_", None) != FORMAT_VERSION:
            raise UserError("the model was fitted by another version of planner; refit it with `ttsplan fit`")


def _policy_split(raw: dict) -> tuple | None:
    """((inverse, first row) per distinct policy, the same per distinct configuration), or None
    when the rows do not share one dataset and difficulty (the groups' common features), hold
    one policy only, or every row is a configuration of its own (nothing to save)."""
    if not all(len(np.unique(raw[col].codes)) == 1 for col in ("dataset", "difficulty")):
        return None
    config_features = [f for f in raw if f not in (*POLICY_FEATURES, "dataset", "difficulty")]
    policy, config = distinct_rows(raw, POLICY_FEATURES), distinct_rows(raw, config_features)
    if len(policy[1]) < 2 or len(config[1]) == len(raw["log2_n"]):
        return None
    return policy, config


def _with_policy(rows: dict, raw: dict, source: np.ndarray) -> dict:
    """`rows` with the policy features of raw's rows `source` (one per row of `rows`)."""
    picked = subset(raw, source)
    return {**rows, **{f: picked[f] for f in POLICY_FEATURES}}


_CONTROLLER: ThreadpoolController | None = None


def _threads():
    """One OpenMP thread for the trees. On the shared 2-core machine spinning OpenMP threads
    made a 60-row fit about 100x slower and a 100k-row fit 3x slower than one thread (measured
    while other jobs ran; on an idle machine two threads may be faster)."""
    global _CONTROLLER
    if _CONTROLLER is None:  # inspecting the loaded libraries takes milliseconds: once
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="openmp")


def fit_profiles(
    records: pd.DataFrame, model: AccuracyRegressor | None = None
) -> tuple[AccuracyRegressor, dict]:
    """Fit on profile records; returns the model and a report (rows used, rows dropped by reason)."""
    rows, dropped = prepare_training(records)
    if len(rows) < 2:
        raise UserError(f"profiles give {len(rows)} usable row(s) after dropping {dropped}; need at least 2")
    model = clone(model) if model is not None else AccuracyRegressor()
    model.fit(
        rows,
        rows["accuracy"],
        sample_weight=rows["weight"],
        groups=rows["policy"],
        sources=_sources(records, rows),
    )
    report = {"records": int(len(records)), "rows_used": int(len(rows)), "dropped": dropped}
    return model, report


def _sources(records: pd.DataFrame, rows: pd.DataFrame) -> np.ndarray | None:
    """Per training row, the profile most of its policy's records come from (None without a
    profile column): a policy in several profiles counts with its main one."""
    if "profile" not in records.columns:
        return None
    main = records.groupby("policy")["profile"].agg(lambda p: p.value_counts().index[0])
    return rows["policy"].map(main).fillna("").astype(str).to_numpy()


def grouped_cv(
    records: pd.DataFrame, group: str = "policy", model: AccuracyRegressor | None = None
) -> pd.DataFrame:
    """Leave one group out on profile records.

    One row per held-out group: rows, problems (summed weights), mae_points (weighted mean
    absolute error in accuracy points, 0..100) and coverage (weighted share of held-out
    accuracies inside the predicted interval).
    """
    rows, _ = prepare_training(records)
    if group not in rows.columns:
        raise UserError(f"group must be a column of the records, got {group!r}")
    base = model if model is not None else AccuracyRegressor()
    keys = rows[group].astype(str)
    sources = _sources(records, rows)
    out = []
    for held in sorted(keys.unique()):
        test = (keys == held).to_numpy()
        train = rows[~test]
        if len(train) < 2:
            continue
        fitted = clone(base).fit(
            train,
            train["accuracy"],
            sample_weight=train["weight"],
            groups=train["policy"],
            sources=None if sources is None else sources[~test],
        )
        pred, low, high = fitted.predict_all(rows[test])
        y = rows.loc[test, "accuracy"].to_numpy()
        w = rows.loc[test, "weight"].to_numpy()
        inside = (y >= low - 1e-9) & (y <= high + 1e-9)
        out.append(
            {
                group: held,
                "rows": int(test.sum()),
                "problems": float(w.sum()),
                "mae_points": float(np.average(np.abs(pred - y), weights=w) * 100),
                "coverage": float(np.average(inside, weights=w)),
            }
        )
    return pd.DataFrame(out, columns=[group, "rows", "problems", "mae_points", "coverage"])
