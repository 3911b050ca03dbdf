"""Difficulty-aware plans: one configuration per difficulty bin under a mean budget.

Problems come in bins (easy / medium / hard, Liu et al. 2025) with fractions `mix`. A plan
that may spend more on hard problems and less on easy ones chooses one configuration per bin
so that the mix-weighted mean predicted accuracy is highest while the mix-weighted mean cost
per problem (FLOPs, samples or seconds) stays within the budget. The choice is exact: the
optimum only uses points of each bin's accuracy/cost Pareto frontier, and merging the bins'
frontiers one at a time (keeping the Pareto set of partial sums) never drops it.

Beside it, the best single (static) configuration under the same mean budget, scored on the
same bins and mix, so the gain of splitting is visible. The plan also carries the settings of
the run-time probe that `ttsplan run --adaptive` uses to put each problem in a bin.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from planner.core.errors import UserError
from planner.core.planfile import KIND_PER_BIN, check_probe, document
from planner.core.vocab import BINS
from planner.models import specs
from planner.plan.search import (
    Budget,
    PlanRequest,
    budget_column,
    plan_record,
    price,
    priced_candidates,
    score,
    within_budget,
)

MIX_TOLERANCE = 1e-3  # how far from 1 the given fractions may sum
# ---------------------------------------------------------------- the mix


def check_mix(mix: Mapping[str, float], where: str = "mix") -> dict[str, float]:
    """Fractions per bin (missing bins are 0), each in [0, 1], summing to 1."""
    out = {b: 0.0 for b in BINS}
    for key, value in mix.items():
        if key not in BINS:
            raise UserError(f"{where}: unknown bin {key!r}; use {', '.join(BINS)}")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise UserError(f"{where}: fraction of {key} must be a finite number, got {value!r}")
        if not 0 <= value <= 1:
            raise UserError(f"{where}: fraction of {key} must be in [0, 1], got {value!r}")
        out[key] = float(value)
    total = sum(out.values())
    if abs(total - 1) > MIX_TOLERANCE:
        raise UserError(f"{where}: fractions must sum to 1, got {total:.4g}")
    return {b: v / total for b, v in out.items()}


def parse_mix(text: str) -> dict[str, float]:
    """`easy=0.3,medium=0.4,hard=0.3` -> fractions per bin (UserError naming mix)."""
    pairs = [p.strip() for p in str(text).split(",") if p.strip()]
    if not pairs:
        raise UserError("mix: give fractions like easy=0.3,medium=0.4,hard=0.3")
    mix: dict[str, float] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().lower()
        if not sep:
            raise UserError(f"mix: expected BIN=FRACTION, got {pair!r}")
        if key in mix:
            raise UserError(f"mix: bin {key!r} given twice")
        try:
            mix[key] = float(value.strip())
        except ValueError:
            raise UserError(f"mix: fraction of {key} must be a number, got {value.strip()!r}") from None
    return check_mix(mix)


def _canonical(name: str) -> str:
    try:
        return specs.resolve(name).name.lower()
    except UserError:
        return str(name).strip().lower()


def mix_from_records(
    records: pd.DataFrame | None, policies: Sequence[str | specs.ModelSpec], dataset: str | None
) -> tuple[dict[str, float], str]:
    """(mix, where it came from): the difficulty counts of per-problem records of these policies
    (and this dataset, when given); equal thirds when there are none."""
    equal = {b: 1 / len(BINS) for b in BINS}
    names = {_canonical(p.name if isinstance(p, specs.ModelSpec) else p) for p in policies}
    if records is None or len(records) == 0:
        return equal, "equal thirds (no profile records to count difficulties from)"
    rows = records[(records["problem_id"] != "") & records["difficulty"].isin(BINS)]
    if len(rows):
        rows = rows[rows["policy"].map(_canonical).isin(names)]
    if dataset is not None and len(rows):
        base = dataset.partition(":")[0].lower()
        rows = rows[rows["dataset"].str.partition(":")[0].str.lower() == base]
    if len(rows) == 0:
        what = f"{', '.join(sorted(names))}" + (f" on {dataset}" if dataset else "")
        return equal, f"equal thirds (no per-problem records with a difficulty for {what})"
    problems = rows.drop_duplicates(["dataset", "problem_id"])
    counts = problems["difficulty"].value_counts()
    total = int(counts.sum())
    mix = {b: int(counts.get(b, 0)) / total for b in BINS}
    text = ", ".join(f"{b} {int(counts.get(b, 0))}" for b in BINS)
    return mix, f"profiles: difficulty counts of {total} problems ({text})"


# ---------------------------------------------------------------- the exact split


def _frontier(costs: np.ndarray, accs: np.ndarray) -> np.ndarray:
    """Indices of the (cost, accuracy) Pareto points, by increasing cost (ties: cheaper)."""
    order = np.lexsort((-accs, costs))
    best_before = np.maximum.accumulate(np.r_[-np.inf, accs[order]])[:-1]
    return order[accs[order] > best_before]


def best_split(
    tables: Mapping[str, pd.DataFrame],
    mix: Mapping[str, float],
    budget: float,
    cost: str = "flops_per_problem",
    accuracy: str = "predicted_accuracy",
) -> tuple[dict[str, object], float, float] | None:
    """One row label per bin maximising sum(mix[b] * accuracy) subject to
    sum(mix[b] * cost) <= budget; (choice, mean accuracy, mean cost), or None when nothing fits.

    Bins with weight 0 do not count: they get their best row with cost <= budget. Exact: each
    weighted bin's Pareto frontier is merged into the Pareto set of partial sums in turn.
    Among equal accuracies the cheaper split wins.
    """
    limit = budget * (1 + 1e-9)  # a mean of equal costs may round just above them
    weighted = [b for b in tables if mix.get(b, 0) > 0]
    # partial sums: cost, accuracy, and per bin the chosen position in its table
    part_cost, part_acc = np.zeros(1), np.zeros(1)
    part_pick = np.zeros((1, 0), dtype=np.int64)
    for b in weighted:
        table, w = tables[b], float(mix[b])
        costs, accs = table[cost].to_numpy(dtype=float), table[accuracy].to_numpy(dtype=float)
        front = _frontier(costs, accs)
        new_cost = (part_cost[:, None] + w * costs[front][None, :]).ravel()
        new_acc = (part_acc[:, None] + w * accs[front][None, :]).ravel()
        rows = np.repeat(np.arange(len(part_cost)), len(front))
        picks = np.tile(front, len(part_cost))
        ok = new_cost <= limit
        if not ok.any():
            return None
        keep = np.flatnonzero(ok)[_frontier(new_cost[ok], new_acc[ok])]
        part_cost, part_acc = new_cost[keep], new_acc[keep]
        part_pick = np.column_stack([part_pick[rows[keep]], picks[keep]])
    best = int(np.lexsort((part_cost, -part_acc))[0])  # highest accuracy, then cheapest
    choice: dict[str, object] = {}
    for j, b in enumerate(weighted):
        choice[b] = tables[b].index[part_pick[best, j]]
    for b in tables:
        if b not in choice:
            table = tables[b]
            inside = table[table[cost].to_numpy(dtype=float) <= limit]
            if len(inside) == 0:
                return None
            ranked = inside.sort_values([accuracy, cost], ascending=[False, True], kind="mergesort")
            choice[b] = ranked.index[0]
    return choice, float(part_acc[best]), float(part_cost[best])


def best_static(
    tables: Mapping[str, pd.DataFrame],
    mix: Mapping[str, float],
    budget: float,
    cost: str = "flops_per_problem",
    accuracy: str = "predicted_accuracy",
) -> tuple[object, float, float] | None:
    """The one row label (the same configuration in every bin; tables share their index)
    maximising the mix-weighted accuracy with cost <= budget: (label, mean accuracy, cost)."""
    first = next(iter(tables.values()))
    costs = first[cost].astype(float)
    labels = costs.index[costs.to_numpy() <= budget * (1 + 1e-9)]
    for table in tables.values():
        labels = labels.intersection(table.index)
    if len(labels) == 0:
        return None
    mean = sum(float(mix.get(b, 0)) * t.loc[labels, accuracy].astype(float) for b, t in tables.items())
    frame = pd.DataFrame({"acc": mean.to_numpy(), "cost": costs.loc[labels].to_numpy()}, index=labels)
    label = frame.sort_values(["acc", "cost"], ascending=[False, True], kind="mergesort").index[0]
    return label, float(frame.loc[label, "acc"]), float(frame.loc[label, "cost"])


# ---------------------------------------------------------------- the plan


@dataclass
class BinPlan:
    """Per-bin choices, their mix-weighted means, and the static plan under the same budget."""

    bins: dict[str, dict]
    mix: dict[str, float]
    mix_source: str
    mean_predicted_accuracy: float
    mean_cost: dict[str, float]
    static: dict
    dataset: str | None
    budget: Budget
    probe: dict
    probe_cost: dict | None = None
    hardware: str | None = None
    candidates: int = 0
    notes: list[str] = field(default_factory=list)
    model: dict = field(default_factory=dict)
    with_probe: dict | None = None  # probe reuse: the mean cost per problem, probe included
    routed: dict | None = None  # the split's accuracy when the probe routes (per-problem model)

    @property
    def gain(self) -> float:
        """Mean predicted accuracy of the split minus that of the static plan (>= 0 unless the
        probe is reused and so counted in the budget, which the static plan does not pay)."""
        return self.mean_predicted_accuracy - self.static["predicted_accuracy"]

    def to_dict(self) -> dict:
        return document(
            KIND_PER_BIN,
            {
                "dataset": self.dataset,
                "budget": self.budget.to_dict(),
                "hardware": self.hardware,
                "mix": self.mix,
                "mix_source": self.mix_source,
                "bins": self.bins,
                "mean_predicted_accuracy": self.mean_predicted_accuracy,
                **{f"mean_{k}": v for k, v in self.mean_cost.items()},
                "static": self.static,
                "gain": self.gain,
                "probe": self.probe,
                "probe_cost": self.probe_cost,
                "with_probe": self.with_probe,
                "routed": self.routed,
                "candidates": self.candidates,
                "notes": self.notes,
                "model": self.model,
            },
        )


def plan_by_difficulty(
    model: object,
    request: PlanRequest,
    *,
    mix: Mapping[str, float] | None = None,
    records: pd.DataFrame | None = None,
    probe: Mapping | None = None,
    model_info: dict | None = None,
) -> BinPlan:
    """One configuration per bin maximising the mix-weighted mean predicted accuracy within a
    mean budget per problem, and the best static configuration under the same budget.

    `mix`: fractions per bin; None counts them from `records` (per-problem profile records of
    these policies, and this dataset when given), else equal thirds (with a note).
    """
    if request.difficulty is not None:
        raise UserError("difficulty: a per-bin plan plans every bin; give no difficulty")
    policies, dataset, budget, hardware = request.policies, request.dataset, request.budget, request.hardware
    probe = check_probe(probe)
    notes: list[str] = []
    if mix is None:
        mix, mix_source = mix_from_records(records, policies, dataset)
        if mix_source.startswith("equal"):
            notes.append(f"mix: {mix_source}; give the mix (easy=F,medium=F,hard=F) to set it")
    else:
        mix, mix_source = check_mix(mix), "given"
    priced, by_name, feature_dataset, _ = priced_candidates(request, "all")
    within_budget(priced, budget)  # nothing fits: the same error as a static plan
    column = budget_column(budget)
    costs = priced[column].to_numpy(dtype=float)
    split_budget = budget.value
    probe_price = None
    if probe["reuse"]:
        # the probe is spent first and counts toward the mean budget; a majority / Best-of-N bin
        # then draws only n - k more samples (its verifier still scores all n)
        policy, probe_price, per_sample = _probe_prices(priced, probe, by_name, feature_dataset, hardware)
        split_budget = budget.value - probe_price[column]
        if split_budget <= 0:
            raise UserError(
                f"budget: the probe alone ({probe['k']} samples, {probe_price[column]:.4g} per problem) "
                "uses the whole budget"
            )
        reused = np.where(
            priced["method"].isin(SAMPLING).to_numpy(),
            np.minimum(priced["n"].to_numpy(dtype=float), probe["k"]),
            0.0,
        )
        costs = costs - reused * per_sample[column]
    cheapest = float(costs.min())
    tables: dict[str, pd.DataFrame] = {}
    for b in BINS:
        w = mix[b]
        # a bin can take at most what the others leave at their cheapest
        cap = split_budget if w == 0 else (split_budget - (1 - w) * cheapest) / w
        # rows the split can use, and every row the static plan can use (its cost is the full one)
        keep = (costs <= cap * (1 + 1e-9)) | (
            priced[column].to_numpy(dtype=float) <= budget.value * (1 + 1e-9)
        )
        rows = priced[keep].assign(split_cost=costs[keep])
        tables[b] = score(model, rows, by_name, feature_dataset, b)
    split = best_split(tables, mix, split_budget, cost="split_cost")
    static = best_static(tables, mix, budget.value, cost=column)
    if split is None:
        raise UserError("budget: after the probe, no configuration per bin fits the budget")
    assert static is not None  # within_budget passed: the cheapest fits
    choice, mean_acc, mean_split = split
    with_hw = hardware is not None
    target = None if dataset is None else feature_dataset
    bins = {}
    for b in BINS:
        rec = plan_record(tables[b].loc[choice[b]], with_hw)
        bins[b] = {**rec, "difficulty": b, "weight": mix[b], "dataset": target}
    label, static_acc, _ = static
    static_out = {
        **plan_record(tables["easy"].loc[label], with_hw),
        "predicted_accuracy": static_acc,  # mix-weighted mean over the bins
        "accuracy_interval": None,
        "predicted_accuracy_by_bin": {b: float(tables[b].loc[label, "predicted_accuracy"]) for b in BINS},
        "in_calibrated_range": bool(all(tables[b].loc[label, "in_calibrated_range"] for b in BINS)),
        "dataset": target,
    }
    columns = [c for c in ("flops_per_problem", "n", "seconds_per_problem") if c in priced]
    mean_cost = {c: sum(mix[b] * float(tables[b].loc[choice[b], c]) for b in BINS) for c in columns}
    with_probe = None
    if probe_price is not None:
        with_probe = {
            c: probe_price[c]
            + sum(
                mix[b] * (float(tables[b].loc[choice[b], c]) - _reused(bins[b], probe) * per_sample[c])
                for b in BINS
            )
            for c in columns
        }
        with_probe["reused_samples"] = sum(mix[b] * _reused(bins[b], probe) for b in BINS)
    routed = None
    found = _problem_model(model, request, feature_dataset)
    if probe["score"] == "posterior" and found is None:
        raise UserError(
            "probe: score posterior needs a per-problem model of the policy on this dataset (predictor scaling)"
        )
    if found is not None and probe["score"] in ("posterior", "agreement"):
        from planner.predict.stopping import probe_posterior

        table = probe_posterior(found, int(probe["k"]))
        if probe["score"] == "posterior":
            probe = {**probe, "posterior": {sig: round(v["pass1"], 6) for sig, v in table.items()}}

        def accuracy(label, b: str) -> float:
            if label in tables[b].index:
                return float(tables[b].loc[label, "predicted_accuracy"])
            return float(
                score(model, priced.loc[[label]], by_name, feature_dataset, b)["predicted_accuracy"].iloc[0]
            )

        routed = _routed(table, probe, choice, accuracy)

    return BinPlan(
        bins=bins,
        mix=mix,
        mix_source=mix_source,
        mean_predicted_accuracy=mean_acc,
        mean_cost=mean_cost,
        static=static_out,
        dataset=target,
        budget=budget,
        probe=probe,
        probe_cost=_probe_cost(bins, probe, by_name, feature_dataset, hardware),
        hardware=getattr(hardware, "name", None),
        candidates=len(priced),
        notes=notes,
        model=model_info or {},
        with_probe=with_probe,
        routed=routed,
    )


SAMPLING = ("majority", "best_of_n")  # bins that can start from the probe's samples


def _reused(rec: dict, probe: dict) -> float:
    return float(min(rec["n"], probe["k"])) if probe["reuse"] and rec["method"] in SAMPLING else 0.0


def _one_policy(priced: pd.DataFrame) -> str:
    names = sorted(set(priced["policy"]))
    if len(names) != 1:
        raise UserError(f"policy: probe reuse needs one policy (the probe's), got {', '.join(names)}")
    return names[0]


def _sampling_rows(policy: str, ns: list[int]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "policy": [policy] * len(ns),
            "prm": ["none"] * len(ns),
            "method": ["majority"] * len(ns),
            "aggregation": ["none"] * len(ns),
            "selection": ["vote"] * len(ns),
            "n": ns,
            "beam_width": pd.array([None] * len(ns), dtype="Int64"),
        }
    )


def _probe_prices(priced, probe, by_name, dataset, hardware) -> tuple[str, dict, dict]:
    """(policy, the probe's cost, one more sample's cost) per cost column: the probe as
    majority@k, one sample as majority@2 - majority@1 (its generation)."""
    policy = _one_policy(priced)
    rows = price(_sampling_rows(policy, [int(probe["k"]), 1, 2]), by_name, dataset, hardware)
    cols = [c for c in ("flops_per_problem", "seconds_per_problem") if c in rows]
    probe_cost = {c: float(rows[c].iloc[0]) for c in cols} | {"n": float(probe["k"])}
    per_sample = {c: float(rows[c].iloc[2] - rows[c].iloc[1]) for c in cols} | {"n": 1.0}
    return policy, probe_cost, per_sample


def _problem_model(model: object, request: PlanRequest, dataset: str):
    """The per-problem model of the request's one policy on this dataset, else None."""
    if not hasattr(model, "problem_model") or len(request.policies) != 1:
        return None
    policy = request.policies[0]
    name = policy.name if isinstance(policy, specs.ModelSpec) else specs.resolve(policy).name
    found = model.problem_model(name, dataset)
    return None if found is None else found[0]


def _routed(table: dict, probe: dict, choice: dict, accuracy) -> dict:
    """The split's expected accuracy when the probe routes each problem: over how the k probe
    answers split (the model's probability of each), the posterior share of each true bin times
    the accuracy there of the configuration the probe's bin runs. Also how often each bin is
    chosen. The per-bin accuracies are not conditioned on the probe's answers (an approximation)."""
    k = int(probe["k"])
    total, chosen = 0.0, {b: 0.0 for b in BINS}
    for signature, entry in table.items():
        if probe["score"] == "posterior":
            pass1 = entry["pass1"]
        else:  # agreement: the largest group of equal answers over k
            pass1 = int(signature.split("/")[0].split("+")[0]) / k
        routed_to = (
            "easy" if pass1 > probe["easy_above"] else "hard" if pass1 < probe["hard_below"] else "medium"
        )
        chosen[routed_to] += entry["probability"]
        total += entry["probability"] * sum(
            share * accuracy(choice[routed_to], b) for b, share in entry["bins"].items()
        )
    return {"predicted_accuracy": total, "routed_share": chosen, "score": probe["score"]}


def _probe_cost(bins: dict, probe: dict, by_name: dict, dataset: str, hardware: object | None) -> dict | None:
    """Predicted cost of the probe (k full samples, as majority@k) for the bins' policy; None
    when the bins use different policies (one engine runs the probe and every bin)."""
    policies = {rec["policy"] for rec in bins.values()}
    if len(policies) != 1:
        return None
    row = pd.DataFrame(
        {
            "policy": [policies.pop()],
            "prm": ["none"],
            "method": ["majority"],
            "aggregation": ["none"],
            "selection": ["vote"],
            "n": [int(probe["k"])],
            "beam_width": pd.array([None], dtype="Int64"),
        }
    )
    priced = price(row, by_name, dataset, hardware).iloc[0]
    out = {"n": int(probe["k"]), "flops_per_problem": float(priced["flops_per_problem"])}
    if hardware is not None:
        out["seconds_per_problem"] = float(priced["seconds_per_problem"])
    return out
