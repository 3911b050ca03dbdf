"""Plan search: enumerate configurations, predict accuracy and cost, keep those in budget, rank.

`plan(...)` returns a `Plan`: the best configuration, the next best (`alternatives`) and the
Pareto frontier of predicted accuracy against FLOPs per problem among those within budget.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from planner.core import checks
from planner.core.datasets import dataset_name
from planner.core.errors import UserError
from planner.core.planfile import KIND_SINGLE, document
from planner.core.vocab import (
    AGGREGATIONS,
    BEAM_WIDTH,
    METHODS,
    NO_VERIFIER_METHODS,
    SELECTIONS,
    TREE_METHODS,
)
from planner.models import cost, specs
from planner.predict.features import DIFFICULTIES, NO_MODEL, Column, family_of

N_VALUES = tuple(2**k for k in range(11))  # 1 .. 1024, the paper's budget axis
BUDGET_KINDS = ("n", "flops", "seconds")
# Liu et al. 2025 define difficulty levels on MATH-500 (pass@1 buckets), so a query by
# difficulty alone is priced and predicted as MATH-500 problems of that difficulty.
DIFFICULTY_DATASET = "math500"
MAX_BUDGET = 1e30  # samples, FLOPs or seconds per problem

CANDIDATE_COLUMNS = ("policy", "prm", "method", "aggregation", "selection", "n", "beam_width")
SCORE_COLUMNS = ("predicted_accuracy", "accuracy_low", "accuracy_high", "in_calibrated_range", "extrapolated")

PLAN_FIELDS = (
    "policy",
    "prm",
    "method",
    "aggregation",
    "selection",
    "n",
    "beam_width",
    "predicted_accuracy",
    "accuracy_interval",
    "flops_per_problem",
    "in_calibrated_range",
)


@dataclass(frozen=True)
class Budget:
    """A per-problem budget: at most `value` samples (n), FLOPs, or seconds on a hardware profile."""

    kind: str
    value: float

    def __post_init__(self) -> None:
        if self.kind not in BUDGET_KINDS:
            raise UserError(f"budget kind must be one of {', '.join(BUDGET_KINDS)}, got {self.kind!r}")
        checks.number(self.value, "budget", 0, MAX_BUDGET, above=True)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "value": float(self.value)}


def parse_budget(text: str, name: str) -> float:
    """A budget given as text: a number in (0, MAX_BUDGET], else UserError naming the parameter."""
    return checks.parse_number(text, name, 0, MAX_BUDGET, above=True)


@dataclass(frozen=True)
class PlanRequest:
    """What a plan is asked for: the models, the target (dataset or difficulty), the budget and
    which candidates to consider. prms None: every registered PRM."""

    policies: Sequence[str | specs.ModelSpec]
    budget: Budget
    prms: Sequence[str | specs.ModelSpec] | None = None
    dataset: str | None = None
    difficulty: str | None = None
    hardware: object | None = None
    beam_width: int = BEAM_WIDTH
    methods: Sequence[str] = METHODS
    n_values: Sequence[int] = N_VALUES
    aggregations: Sequence[str] | None = None
    selections: Sequence[str] | None = None
    stop_rules: Sequence[str] = ()  # also adaptive candidates: majority with each rule (plan/stopping.py)

    def __post_init__(self) -> None:
        checks.integer(self.beam_width, "beam_width", 1, checks.MAX_N)
        for n in self.n_values:
            checks.integer(n, "n", 1, checks.MAX_N)


def _name(model: str | specs.ModelSpec) -> str:
    return model.name if isinstance(model, specs.ModelSpec) else str(model)


def enumerate_candidates(
    policies: Sequence[str | specs.ModelSpec],
    prms: Sequence[str | specs.ModelSpec],
    methods: Sequence[str] = METHODS,
    n_values: Sequence[int] = N_VALUES,
    beam_width: int = 4,
    aggregations: Sequence[str] = AGGREGATIONS,
    selections: Sequence[str] = SELECTIONS,
    *,
    categorical: bool = False,
) -> pd.DataFrame:
    """Every valid configuration, one row each (columns policy, prm, method, aggregation,
    selection, n, beam_width). categorical: the five name columns as pandas categoricals
    (the planner's own table), else object columns of strings.

    cot: n = 1, no PRM. majority: each n, no PRM. best_of_n: each PRM x aggregation x
    selection x n. beam/dvts: the same, for n divisible by beam_width and >= beam_width.
    beam_width is NA for methods without a beam.
    """
    for method in methods:
        if method not in METHODS:
            raise UserError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    for agg in aggregations:
        if agg not in AGGREGATIONS:
            raise UserError(f"unknown aggregation {agg!r}; choose one of {', '.join(AGGREGATIONS)}")
    for sel in selections:
        if sel not in SELECTIONS:
            raise UserError(f"unknown selection {sel!r}; choose one of {', '.join(SELECTIONS)}")
    beam_width = checks.integer(beam_width, "beam_width", 1, checks.MAX_N)
    ns = sorted({checks.integer(n, "n", 1, checks.MAX_N) for n in n_values})
    if any(m in TREE_METHODS for m in methods) and not any(
        n >= beam_width and n % beam_width == 0 for n in ns
    ):
        raise UserError(
            f"beam_width: beam and dvts need an N that the beam width divides; none of N = "
            f"{', '.join(map(str, ns))} is divisible by {beam_width} (or leave out beam and dvts)"
        )
    policy_names = [_name(p) for p in policies]
    prm_names = [_name(r) for r in prms if _name(r) != NO_MODEL]
    if not policy_names:
        raise UserError("give at least one policy")

    codes: dict[str, list[np.ndarray]] = {k: [] for k in CANDIDATE_COLUMNS}
    seen: dict[str, dict[str, int]] = {k: {} for k in CANDIDATE_COLUMNS[:5]}  # value -> code, by first use

    def coded(col: str, values: list) -> np.ndarray:
        table = seen[col]
        return np.array([table.setdefault(v, len(table)) for v in values], dtype=np.int32)

    def block(policy, prm, method, agg, sel, n, width) -> None:
        """Every combination of the prm x agg x sel x n lists, in that nesting order."""
        size = len(prm) * len(agg) * len(sel) * len(n)
        if size == 0:
            return
        codes["policy"].append(np.repeat(coded("policy", [policy]), size))
        codes["prm"].append(np.repeat(coded("prm", prm), len(agg) * len(sel) * len(n)))
        codes["method"].append(np.repeat(coded("method", [method]), size))
        codes["aggregation"].append(
            np.tile(np.repeat(coded("aggregation", agg), len(sel) * len(n)), len(prm))
        )
        codes["selection"].append(np.tile(np.repeat(coded("selection", sel), len(n)), len(prm) * len(agg)))
        codes["n"].append(np.tile(np.asarray(n, dtype=np.int64), len(prm) * len(agg) * len(sel)))
        codes["beam_width"].append(np.full(size, width if width else -1, dtype=np.int64))

    for policy in policy_names:
        for method in methods:
            if method == "cot":
                block(policy, [NO_MODEL], "cot", ["none"], ["none"], [1], None)
            elif method == "majority":
                block(policy, [NO_MODEL], "majority", ["none"], ["vote"], ns, None)
            else:
                beam = method in TREE_METHODS
                valid = [n for n in ns if not beam or (n >= beam_width and n % beam_width == 0)]
                block(
                    policy, prm_names, method, aggregations, selections, valid, beam_width if beam else None
                )
    data: dict = {}  # arrays, not Series: the frame aligns no index
    for key, parts in codes.items():
        values = np.concatenate(parts) if parts else np.array([], dtype=np.int64)
        if key in seen:
            categories = list(seen[key])
            data[key] = (
                _categories(values, categories)
                if categorical
                else _objects(np.array(categories, dtype=object)[values], pd.RangeIndex(len(values)))
            )
        else:
            data[key] = values
    width = data["beam_width"]
    data["beam_width"] = pd.arrays.IntegerArray(width, width <= 0)
    return pd.DataFrame(data, index=pd.RangeIndex(len(width)), copy=False)


def check_config(
    method: str, prm: str, aggregation: str, selection: str, n: int, beam_width: int | None
) -> None:
    """One configuration's rules (what `ttsplan predict` accepts), as one-line UserErrors."""
    if method not in METHODS:
        raise UserError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    checks.integer(n, "n", 1, checks.MAX_N)
    if method in NO_VERIFIER_METHODS:
        if prm != NO_MODEL:
            raise UserError(f"prm: method {method} uses no PRM; give prm none")
        if aggregation != "none":
            raise UserError(f"aggregation: method {method} has no aggregation; give aggregation none")
        want = "none" if method == "cot" else "vote"
        if selection != want:
            raise UserError(f"selection: method {method} needs selection {want}")
        if method == "cot" and n != 1:
            raise UserError(f"n: cot takes n = 1, got {n}")
        return
    if prm == NO_MODEL:
        raise UserError(f"prm: method {method} needs a PRM")
    if aggregation not in AGGREGATIONS:
        raise UserError(f"unknown aggregation {aggregation!r}; choose one of {', '.join(AGGREGATIONS)}")
    if selection not in SELECTIONS:
        raise UserError(f"unknown selection {selection!r}; choose one of {', '.join(SELECTIONS)}")
    if method in TREE_METHODS:
        checks.integer(beam_width, "beam_width", 1, checks.MAX_N)
        if n < beam_width or n % beam_width:
            raise UserError(
                f"n: method {method} needs n divisible by and >= beam_width {beam_width}, got {n}"
            )


DEFAULT_CHECKERS = {"arith": "arith-check"}  # dataset -> the rule-based verifier it ships with


def resolve_models(
    policies: Sequence[str | specs.ModelSpec],
    prms: Sequence[str | specs.ModelSpec] | None,
    *,
    dataset: str | None = None,
) -> tuple[list[specs.ModelSpec], list[specs.ModelSpec]]:
    """Specs of the policies and reward models; when prms is None or empty, all registered PRMs
    and the dataset's own checker (the exact step checker on arith)."""
    policy_specs = [p if isinstance(p, specs.ModelSpec) else specs.resolve(p) for p in policies]
    for p in policy_specs:
        if p.role != "policy":
            raise UserError(f"{p.name} is a {p.role}, not a policy model")
    if not prms:
        checker = DEFAULT_CHECKERS.get(str(dataset or "").partition(":")[0])
        prm_specs = [*specs.all_specs("prm"), *([specs.resolve(checker)] if checker else [])]
    else:
        prm_specs = []
        for r in prms:
            if not isinstance(r, specs.ModelSpec) and str(r).lower() == NO_MODEL:
                continue
            spec = r if isinstance(r, specs.ModelSpec) else specs.resolve(r)
            if spec.role not in ("prm", "orm"):
                raise UserError(f"{spec.name} is a {spec.role} model, not a reward model (PRM/ORM)")
            prm_specs.append(spec)
    return policy_specs, prm_specs


def resolve_target(dataset: str | None, difficulty: str | None) -> tuple[str, str]:
    """(dataset used for features and cost, difficulty); exactly the rules of the plan command."""
    if dataset is None and difficulty is None:
        raise UserError("give a dataset or a difficulty")
    if difficulty is not None and difficulty not in DIFFICULTIES:
        raise UserError(f"unknown difficulty {difficulty!r}; choose one of {', '.join(DIFFICULTIES)}")
    if dataset is not None:
        return dataset_name(dataset), difficulty or "all"
    return DIFFICULTY_DATASET, difficulty


def spec_frame(
    candidates: pd.DataFrame, by_name: dict[str, specs.ModelSpec], categorical: bool = False
) -> pd.DataFrame:
    """Candidates with the policy/PRM params and family columns the features read. categorical:
    the policy, PRM and family columns as pandas categoricals (the same values; they factorize
    in microseconds)."""
    out = dict(candidates.items())  # one frame built at the end: no column inserted one by one
    index = candidates.index
    for role in ("policy", "prm"):
        names = Column(candidates[role])
        known = [by_name.get(u) for u in names.uniques]
        sizes = [k.params if k and k.head != "rule" else np.nan for k in known]  # a checker has no size
        out[f"{role}_params"] = pd.Series(names.per_row(np.array(sizes), np.nan), index=index, copy=False)
        families = [family_of(k) if k else u for k, u in zip(known, names.uniques, strict=True)]
        if categorical:
            if not isinstance(candidates[role].dtype, pd.CategoricalDtype):
                out[role] = _categorical(names.codes, names.uniques, index)
            codes, uniques = pd.factorize(np.array(families, dtype=object))
            out[f"{role}_family"] = _categorical(np.append(codes, -1)[names.codes], list(uniques), index)
        else:
            out[f"{role}_family"] = _objects(names.per_row(np.array(families, dtype=object), None), index)
    return pd.DataFrame(out, index=index, copy=False)


def _categorical(codes: np.ndarray, categories: list, index: pd.Index) -> pd.Series:
    return pd.Series(_categories(codes, categories), index=index, copy=False)


def _categories(codes: np.ndarray, categories: list) -> pd.Categorical:
    """Codes into distinct categories, both ours (not validated again); the categories an object
    index (pandas' string index costs more to build than the column)."""
    dtype = pd.CategoricalDtype(pd.Index(categories, dtype=object))
    return pd.Categorical.from_codes(codes, dtype=dtype, validate=False)


def _objects(values: np.ndarray, index: pd.Index) -> pd.Series:
    """An object column (pandas would otherwise convert the strings to Arrow, slowly)."""
    return pd.Series(values, index=index, dtype=object, copy=False)


def price(
    candidates: pd.DataFrame,
    by_name: dict[str, specs.ModelSpec],
    dataset: str,
    hardware: object | None = None,
) -> pd.DataFrame:
    """flops_per_problem (and seconds/dollars_per_problem with a hardware profile): FLOPs in one
    cost-model pass over the distinct configurations, seconds one call per (policy, PRM)."""
    workload = cost.workload_for(dataset)
    n_all = candidates["n"].to_numpy(dtype=np.int64)
    width_all = candidates["beam_width"].to_numpy(dtype=np.int64, na_value=1)
    method = Column(candidates["method"])
    method_all = np.append(cost.method_codes(method.uniques), -1)[method.codes]
    policy, prm = Column(candidates["policy"]), Column(candidates["prm"])
    # Cost depends on policy, PRM, method, n and beam width only (not aggregation or
    # selection): price each distinct one once.
    key = np.stack([policy.codes, prm.codes, method_all, n_all, width_all], axis=1)
    dims = tuple(int(d) for d in key.max(axis=0) + 1) if len(key) else (1,) * 5
    flat = np.ravel_multi_index(key.T, dims)  # one integer per row: a fast 1-D unique
    _, first, inverse = np.unique(flat, return_index=True, return_inverse=True)
    distinct = key[first]
    block = getattr(hardware, "cache_block", cost.VLLM_BLOCK)  # vLLM's prefix cache there
    policy_unique = [by_name.get(u) for u in policy.uniques]  # a category without rows: None
    prm_unique = [None if u == NO_MODEL else by_name.get(u) for u in prm.uniques]
    flops = cost.rows_flops(
        policy_unique,
        prm_unique,
        distinct[:, 2],
        distinct[:, 3],
        distinct[:, 4],
        workload,
        prefix_caching=block,
        policy_rows=distinct[:, 0],
        prm_rows=distinct[:, 1],
    )
    secs = np.empty(len(distinct))
    if hardware is not None:  # seconds: one call per (policy, PRM)
        from planner.models import hardware as hw

        pairs = distinct[:, 0] * (len(prm.uniques) + 1) + distinct[:, 1]
        for pair in np.unique(pairs):
            idx = np.flatnonzero(pairs == pair)
            prm_spec = prm_unique[distinct[idx[0], 1]]
            reuse = cost.reuses_prefix(prm_spec)  # priced as the executor's verifier runs
            args = (
                policy_unique[distinct[idx[0], 0]],
                prm_spec,
                distinct[idx, 2],
                distinct[idx, 3],
                distinct[idx, 4],
                workload,
            )
            secs[idx] = hw.seconds(*args, hardware, prefix_caching=block, prm_reuse=reuse)
    inverse = inverse.reshape(-1)
    flops, secs = flops[inverse], secs[inverse]
    out = candidates.copy(deep=False)
    out["flops_per_problem"] = flops
    if hardware is not None:
        from planner.models import hardware as hw

        out["seconds_per_problem"] = secs
        priced = getattr(hardware, "price_per_hour", None)
        out["dollars_per_problem"] = hw.dollars(secs, hardware) if priced else np.nan
    return out


def pareto_frontier(
    frame: pd.DataFrame, x: str = "flops_per_problem", y: str = "predicted_accuracy"
) -> pd.DataFrame:
    """Rows not dominated (another row with x <= and y >=, one strictly), by increasing x."""
    return frame.iloc[_frontier_rows(frame, x, y)]


def _frontier_rows(
    frame: pd.DataFrame, x: str = "flops_per_problem", y: str = "predicted_accuracy"
) -> np.ndarray:
    """Positions of `pareto_frontier`'s rows, in its order."""
    xs, ys = frame[x].to_numpy(dtype=float), frame[y].to_numpy(dtype=float)
    order = np.lexsort((-ys, xs))  # by x, then best y first
    best_before = np.maximum.accumulate(np.r_[-np.inf, ys[order]])[:-1]
    return order[ys[order] > best_before]


def plan_record(row: pd.Series, hardware: bool) -> dict:
    out = {
        "policy": str(row["policy"]),
        "prm": str(row["prm"]),
        "method": str(row["method"]),
        "aggregation": str(row["aggregation"]),
        "selection": str(row["selection"]),
        "n": int(row["n"]),
        "beam_width": None if pd.isna(row["beam_width"]) else int(row["beam_width"]),
        "predicted_accuracy": float(row["predicted_accuracy"]),
        "accuracy_interval": [float(row["accuracy_low"]), float(row["accuracy_high"])],
        "flops_per_problem": float(row["flops_per_problem"]),
        "in_calibrated_range": bool(row["in_calibrated_range"]),
        "extrapolated": bool(row.get("extrapolated", False)),
    }
    stop = row.get("stop")
    if isinstance(stop, str) and stop:  # an adaptive candidate: n is its cap
        out["stop"] = stop
        out["expected_samples"] = float(row["expected_samples"])
        basis = row.get("stop_basis")
        out["stop_basis"] = basis if isinstance(basis, str) else "predicted"
        if out["stop_basis"] == "measured":  # replayed on the profile's samples (plan/stopping.py)
            out["measured_accuracy"] = float(row["measured_accuracy"])
            out["measured_problems"] = int(row["measured_problems"])
    if hardware:
        out["seconds_per_problem"] = float(row["seconds_per_problem"])
        dollars = row["dollars_per_problem"]
        out["dollars_per_problem"] = None if pd.isna(dollars) else float(dollars)
    return out


def _records(frame: pd.DataFrame, rows: np.ndarray, hardware: bool) -> list[dict]:
    """plan_record of the rows at these positions (read from column lists: no Series built per
    row, no sub-table)."""
    columns = {c: _values(frame[c], rows) for c in frame.columns if c in RECORD_COLUMNS}
    return [plan_record({c: v[i] for c, v in columns.items()}, hardware) for i in range(len(rows))]


def _values(column: pd.Series, rows: np.ndarray) -> list:
    """The column's values at these positions as a list; a categorical's through its codes."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy()[rows]
        return np.append(np.asarray(column.cat.categories, dtype=object), None)[codes].tolist()
    return column.array.take(rows).tolist()


RECORD_COLUMNS = (
    *CANDIDATE_COLUMNS,
    *SCORE_COLUMNS,
    "flops_per_problem",
    "seconds_per_problem",
    "dollars_per_problem",
    "stop",
    "expected_samples",
    "stop_basis",
    "measured_accuracy",
    "measured_problems",
)


@dataclass
class Plan:
    """The chosen configuration, its runners-up and the accuracy/FLOPs frontier."""

    best: dict
    alternatives: list[dict]
    frontier: list[dict]
    dataset: str | None
    difficulty: str
    budget: Budget
    hardware: str | None = None
    candidates: int = 0
    within_budget: int = 0
    model: dict = field(default_factory=dict)
    ranking: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return document(
            KIND_SINGLE,
            {
                **self.best,
                "dataset": self.dataset,
                "difficulty": self.difficulty,
                "budget": self.budget.to_dict(),
                "hardware": self.hardware,
                "candidates": self.candidates,
                "within_budget": self.within_budget,
                "alternatives": self.alternatives,
                "frontier": self.frontier,
                "model": self.model,
                "ranking": self.ranking,
            },
        )


def score(
    model: object,
    candidates: pd.DataFrame,
    by_name: dict,
    dataset: str,
    difficulty: str,
    rows: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Candidates with predicted_accuracy, accuracy_low/high, in_calibrated_range and
    extrapolated (true where a per-problem model predicts past the samples it saw).
    rows: spec_frame(candidates, by_name) when already built (same index)."""
    rows = spec_frame(candidates, by_name) if rows is None else rows
    rows = rows.assign(
        difficulty=_constant(difficulty, rows.index), dataset=_constant(dataset.partition(":")[0], rows.index)
    )
    if hasattr(model, "assess_frame"):
        f = model.assess_frame(rows)
        got = {col: f[col].to_numpy() for col in SCORE_COLUMNS}
    else:
        pred, low, high, in_range = model.assess(rows)
        got = dict(zip(SCORE_COLUMNS[:4], (pred, low, high, in_range), strict=True))
        got["extrapolated"] = np.zeros(len(candidates), dtype=bool)
    kept = {c: v for c, v in candidates.items() if c not in SCORE_COLUMNS}  # then the new scores, last
    return pd.DataFrame(kept | got, index=candidates.index, copy=False)


def _constant(value: str, index: pd.Index) -> pd.Series:
    """One category repeated (a categorical column costs nothing to build or factorize)."""
    return _categorical(np.zeros(len(index), dtype=np.int8), [value], index)


RANK_RULE = (
    "ranked by predicted accuracy; when some candidates are in the calibrated range and not "
    "extrapolated, the others rank by their interval's lower bound"
)


def rank_value(scored: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(value each candidate ranks by, mask of candidates ranked by their lower bound).

    A candidate in the calibrated range and not extrapolated ranks by its predicted accuracy.
    The others (out of range, or past the sampled N) rank by the interval's lower bound when at
    least one candidate is trusted: a point estimate alone never lets them beat a measured one.
    Without any trusted candidate every one ranks by its point estimate."""
    point = scored["predicted_accuracy"].to_numpy(dtype=float)
    trusted = scored["in_calibrated_range"].to_numpy(dtype=bool)
    if "extrapolated" in scored:
        trusted = trusted & ~scored["extrapolated"].to_numpy(dtype=bool)
    if not trusted.any():
        return point, np.zeros(len(point), dtype=bool)
    low = scored["accuracy_low"].to_numpy(dtype=float)
    low = np.where(np.isfinite(low), low, point)
    return np.where(trusted, point, np.minimum(low, point)), ~trusted


def rank(scored: pd.DataFrame, cost: str = "flops_per_problem") -> tuple[pd.DataFrame, dict]:
    """Candidates best first by `rank_value` (cheaper on ties), and how the rule acted: the
    rule, whether it applied, and the point estimate's choice when it differs."""
    order, value, info = _ranking(scored, cost)
    return scored.iloc[order].assign(rank_value=value[order]), info


def _ranking(scored: pd.DataFrame, cost: str, top: int | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """(row order best first, rank values, rank's info) without building the ranked table.
    top: only the first `top` rows of the order are wanted (found without sorting the rest)."""
    value, by_low = rank_value(scored)
    costs = scored[cost].to_numpy(dtype=float)
    point = scored["predicted_accuracy"].to_numpy(dtype=float)
    order = _descending(value, costs) if top is None else _best(value, costs, top)
    # ranked by the point estimate everywhere, the order would start with the same row
    best_point = _best(point, costs, 1) if by_low.any() else order[:1]
    changed = len(scored) > 0 and point[order[0]] < point[best_point[0]] - 1e-12
    info = {
        "rule": RANK_RULE,
        "lower_bound_candidates": int(by_low.sum()),
        "changed_choice": bool(changed),
    }
    return order, value, info | ({"point_estimate_choice": scored.index[best_point[0]]} if changed else {})


def _descending(value: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Row order by value (highest first), then cost (lowest first), ties in table order; NaN
    last (as DataFrame.sort_values with kind="mergesort")."""
    v_nan, c_nan = np.isnan(value), np.isnan(cost)
    return np.lexsort((np.where(c_nan, 0.0, cost), c_nan, np.where(v_nan, 0.0, -value), v_nan))


def _best(value: np.ndarray, cost: np.ndarray, k: int) -> np.ndarray:
    """The first k rows of `_descending(value, cost)`: those at or above the k-th highest value
    sorted (np.partition finds it in linear time; the sort is stable, so ties keep table order)."""
    if k >= len(value):
        return _descending(value, cost)
    finite = np.where(np.isnan(value), -np.inf, value)
    kth = np.partition(finite, len(value) - k)[len(value) - k]
    if kth == -np.inf:  # fewer than k rows with a value: NaN rows are among the first k
        return _descending(value, cost)[:k]
    rows = np.flatnonzero(finite >= kth)
    return rows[_descending(value[rows], cost[rows])][:k]


def budget_column(budget: Budget) -> str:
    """The candidate-table column a budget limits."""
    return {"n": "n", "flops": "flops_per_problem", "seconds": "seconds_per_problem"}[budget.kind]


def within_budget(priced: pd.DataFrame, budget: Budget) -> np.ndarray:
    """Mask of the priced candidates within the budget; UserError naming the cheapest when none is."""
    column = budget_column(budget)
    if priced.empty:
        raise UserError("methods: no candidate is left by the method, aggregation and selection filters")
    fits = priced[column].to_numpy(dtype=float) <= budget.value
    if not fits.any():
        cheapest = priced.loc[priced[column].idxmin()]
        unit = {"n": "samples", "flops": "FLOPs", "seconds": "seconds"}[budget.kind]
        raise UserError(
            f"no candidate fits the budget of {budget.value:.4g} {unit} per problem; the cheapest "
            f"({cheapest['method']}, n={int(cheapest['n'])}) needs {float(cheapest[column]):.4g} {unit}"
        )
    return fits


def priced_candidates(
    request: PlanRequest, difficulty: str | None = None
) -> tuple[pd.DataFrame, dict[str, specs.ModelSpec], str, str]:
    """Every candidate with its cost, not yet scored: (table, specs by name, feature dataset,
    difficulty). Cost does not depend on difficulty, so one table serves every bin; `difficulty`
    overrides the request's."""
    grid, by_name, feature_dataset, difficulty = _priced_grid(request, difficulty)
    table = grid.priced.copy(deep=False)  # the kept one stays as is
    for col in CANDIDATE_COLUMNS[:5]:  # strings, as enumerate_candidates gives them
        table[col] = _objects(table[col].to_numpy(dtype=object), table.index)
    return table, by_name, feature_dataset, difficulty


@dataclass
class _Grid:
    """A priced candidate table and, built when first scored, its spec frame with categorical
    columns (what the features read; a categorical factorizes in microseconds)."""

    priced: pd.DataFrame
    by_name: dict
    _rows: pd.DataFrame | None = None
    _scored: weakref.WeakKeyDictionary = field(default_factory=weakref.WeakKeyDictionary)

    def rows(self) -> pd.DataFrame:
        if self._rows is None:  # the priced table's name columns are categorical already
            self._rows = spec_frame(self.priced, self.by_name, categorical=True)
        return self._rows

    def scored(self, model: object, dataset: str, difficulty: str) -> pd.DataFrame:
        """The whole table scored by this model at this difficulty, kept while the model lives
        and its fitted state is unchanged: a repeated or re-budgeted query takes rows of it."""
        key = (dataset, difficulty, _fitted_state(model))
        try:
            with _GRIDS_LOCK:
                kept = self._scored.setdefault(model, {})
                found = kept.get(key)
        except TypeError:  # a model that cannot be weakly referenced: scored each time
            return score(model, self.priced, self.by_name, dataset, difficulty, rows=self.rows())
        if found is None:
            found = score(model, self.priced, self.by_name, dataset, difficulty, rows=self.rows())
            with _GRIDS_LOCK:
                for old in [k for k in kept if k[2] != key[2]]:
                    del kept[old]  # scores of a state the model has left
                kept[key] = found
        return found


def _fitted_state(model: object) -> tuple:
    """Identities of a model's fitted attributes (scikit-learn's trailing underscore) and of its
    parts: a refit replaces them, so scores kept for the old state are not reused."""
    out = []
    for part in (model, getattr(model, "regressor", None)):
        for name, value in sorted(getattr(part, "__dict__", {}).items()):
            if name.endswith("_") or name in ("doc", "regressor"):
                out.append((name, id(value)))
    return tuple(out)


GRID_CACHE = 16  # priced candidate tables kept (they depend on the models, dataset and filters)
_GRIDS: dict[tuple, _Grid] = {}
_GRIDS_LOCK = threading.Lock()  # ttsplan serve plans from several threads


def _priced_grid(request: PlanRequest, difficulty: str | None) -> tuple[_Grid, dict, str, str]:
    """priced_candidates' work, kept for requests that differ only in budget and difficulty
    (the table depends on neither): a repeated or re-budgeted query skips enumeration and
    pricing. Keyed by the resolved specs, so an edited model config is priced afresh."""
    r = request
    if r.budget.kind == "seconds" and r.hardware is None:
        raise UserError("hardware: a budget in seconds needs a hardware profile")
    feature_dataset, difficulty = resolve_target(r.dataset, difficulty or r.difficulty)
    policy_specs, prm_specs = resolve_models(r.policies, r.prms, dataset=feature_dataset)
    by_name = {s.name: s for s in [*policy_specs, *prm_specs]}
    key = (
        tuple(policy_specs),
        tuple(prm_specs),
        feature_dataset,
        r.hardware,
        r.beam_width,
        tuple(r.methods),
        tuple(r.n_values),
        tuple(r.aggregations or AGGREGATIONS),
        tuple(r.selections or SELECTIONS),
    )
    try:
        with _GRIDS_LOCK:
            grid = _GRIDS.get(key)
    except TypeError:  # an unhashable hardware object: not kept
        key, grid = None, None
    if grid is None:
        grid = _Grid(_price_request(r, policy_specs, prm_specs, by_name, feature_dataset), by_name)
        if key is not None:
            with _GRIDS_LOCK:
                if len(_GRIDS) >= GRID_CACHE:
                    _GRIDS.pop(next(iter(_GRIDS)))
                _GRIDS[key] = grid
    return grid, by_name, feature_dataset, difficulty


def _price_request(r: PlanRequest, policy_specs, prm_specs, by_name, feature_dataset) -> pd.DataFrame:
    candidates = enumerate_candidates(
        policy_specs,
        prm_specs,
        methods=r.methods,
        n_values=r.n_values,
        beam_width=r.beam_width,
        aggregations=r.aggregations or AGGREGATIONS,
        selections=r.selections or SELECTIONS,
        categorical=True,  # the features and the predictors read codes, not strings
    )
    # Outcome reward models score whole solutions: best_of_n with the final score only.
    orms = [s.name for s in prm_specs if s.role == "orm"]
    if orms:
        is_orm = candidates["prm"].isin(orms)
        candidates = candidates[
            ~is_orm | ((candidates["method"] == "best_of_n") & (candidates["aggregation"] == "last"))
        ]
    candidates = candidates.reset_index(drop=True)
    return price(candidates, by_name, feature_dataset, r.hardware)


def plan(model: object, request: PlanRequest, *, top: int = 5, model_info: dict | None = None) -> Plan:
    """Best configuration within the budget (highest predicted accuracy, cheaper on ties)."""
    checks.integer(top, "top", 0, checks.MAX_TOP)
    grid, by_name, feature_dataset, difficulty = _priced_grid(request, None)
    priced = grid.priced
    budget, hardware = request.budget, request.hardware
    fits = within_budget(priced, budget)
    scored = grid.scored(model, feature_dataset, difficulty)
    inside = scored.copy(deep=False) if fits.all() else scored[fits]
    adaptive = 0
    if request.stop_rules:
        from planner.plan.stopping import stopping_candidates

        extra = stopping_candidates(model, request, by_name, feature_dataset, difficulty)
        adaptive = len(extra)
        if adaptive:
            inside = pd.concat([inside, extra], ignore_index=True)
    order, _, ranking = _ranking(inside, "flops_per_problem", top + 1)  # as rank(inside), top rows only
    with_hw = hardware is not None
    best = order[: top + 1]
    records = _records(inside, np.concatenate([best, _frontier_rows(inside)]), with_hw)  # one read
    records, frontier = records[: len(best)], records[len(best) :]
    if ranking["changed_choice"]:
        ranking["point_estimate_choice"] = plan_record(inside.loc[ranking["point_estimate_choice"]], with_hw)
    return Plan(
        best=records[0],
        alternatives=records[1:],
        frontier=frontier,
        dataset=None if request.dataset is None else feature_dataset,
        difficulty=difficulty,
        budget=budget,
        hardware=getattr(hardware, "name", None),
        candidates=len(priced) + adaptive,
        within_budget=int(fits.sum()) + adaptive,
        model=model_info or {},
        ranking=ranking,
    )


def predict_config(
    model: object,
    policy: str | specs.ModelSpec,
    prm: str | specs.ModelSpec,
    method: str,
    aggregation: str,
    selection: str,
    n: int,
    beam_width: int | None,
    dataset: str | None = None,
    difficulty: str | None = None,
    hardware: object | None = None,
) -> dict:
    """Predicted accuracy, interval and cost of one configuration (the fields of a plan)."""
    check_config(method, _name(prm), aggregation, selection, n, beam_width)
    from planner.predict.predictor import ScalingPredictor
    from planner.predict.scaling import N_MAX

    if isinstance(model, ScalingPredictor) and int(n) > N_MAX:
        raise UserError(
            f"n: {n} is above {N_MAX}, the largest N the per-problem model predicts "
            "(the regressor alone would guess it, outside the calibrated range)"
        )
    feature_dataset, difficulty = resolve_target(dataset, difficulty)
    prms = [] if _name(prm) == NO_MODEL else [prm]
    policy_specs, prm_specs = resolve_models([policy], prms or [NO_MODEL])
    if prm_specs and prm_specs[0].role == "orm" and (method != "best_of_n" or aggregation != "last"):
        raise UserError(
            f"prm: {prm_specs[0].name} is an outcome reward model: use method best_of_n with aggregation last"
        )
    by_name = {s.name: s for s in [*policy_specs, *prm_specs]}
    row = pd.DataFrame(
        {
            "policy": [policy_specs[0].name],
            "prm": [prm_specs[0].name if prm_specs else NO_MODEL],
            "method": [method],
            "aggregation": [aggregation],
            "selection": [selection],
            "n": [int(n)],
            "beam_width": pd.array([beam_width if method in TREE_METHODS else None], dtype="Int64"),
        }
    )
    scored = score(
        model, price(row, by_name, feature_dataset, hardware), by_name, feature_dataset, difficulty
    )
    out = plan_record(scored.iloc[0], hardware is not None)
    out.update(dataset=None if dataset is None else feature_dataset, difficulty=difficulty)
    out["hardware"] = getattr(hardware, "name", None)
    return out
