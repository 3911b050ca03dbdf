"""Adaptive candidates: majority vote, or Best-of-N with the score-weighted vote, with an
early-stopping rule up to a cap N ("adaptive, cap N, rule"), for policies with a per-problem
scaling model (Best-of-N for the verifiers and aggregations it has scores of).

Expected samples come from planner.predict.stopping (the model's simulated stopping time);
accuracy is the predictor's own prediction of the same method at the cap plus the rule's simulated
change against the cap (same simulated problems with and without the rule), so an adaptive
candidate never outranks its fixed-N twin by Monte Carlo noise; its interval is the twin's,
shifted by that change. Where the profile replayed the rule at that cap on the policy's recorded
samples (`ttsplan calibrate --stop`, `ttsplan import persample --stop`; the predictor's
measured_stop, for the bin asked), both come from those rows instead (`stop_basis` "measured"):
the mean samples_used, and the replayed accuracy's change against the fixed-N replay at the cap
on the same problems; the candidate also carries the replayed accuracy itself
(`measured_accuracy`). Cost: the FLOPs (and seconds) of majority at the expected number of samples, by linear
interpolation between the cost model's majority@1 and majority@2 (one prompt, then each sample's
generation, and for Best-of-N its scoring; the rounds' repeated prompts hit the prefix cache). Budget: a budget in samples
limits the cap (a problem may draw all of it); a budget in FLOPs or seconds limits the expected
cost per problem.
"""

from __future__ import annotations

import pandas as pd

from planner.core.errors import UserError
from planner.core.stopping import parse_rule
from planner.core.vocab import AGGREGATIONS
from planner.models import specs
from planner.predict.features import NO_MODEL
from planner.predict.stopping import predict_stopping

MAX_CAP = 64  # simulated stopping time costs in proportion to the cap (about 2 s per rule at 64)


def stopping_candidates(model: object, request, by_name: dict, dataset: str, difficulty: str) -> pd.DataFrame:
    """Scored adaptive candidates within the request's budget (the columns of a scored candidate
    table plus stop and expected_samples); empty when no policy has a per-problem model."""
    from planner.plan.search import price, score

    rules = [parse_rule(text) for text in request.stop_rules]
    if not rules:
        return pd.DataFrame()
    if not hasattr(model, "problem_model"):
        raise UserError(
            "stop_rules: adaptive candidates need the per-problem scaling models (predictor scaling)"
        )
    budget = request.budget
    rows = []
    for policy in request.policies:
        name = policy.name if isinstance(policy, specs.ModelSpec) else specs.resolve(policy).name  # an alias too
        found = model.problem_model(name, dataset)
        if found is None or (difficulty != "all" and difficulty not in found[0].bins):
            continue
        problem_model, sampled = found
        curves = []  # (method, prm, aggregation): majority, and Best-of-N vote per fitted verifier
        if "majority" in request.methods:
            curves.append(("majority", NO_MODEL, "none"))
        if "best_of_n" in request.methods and "vote" in (request.selections or ("vote",)):
            aggregations = request.aggregations or AGGREGATIONS
            curves += [
                ("best_of_n", v, a) for v, a in problem_model.scores if v in by_name and a in aggregations
            ]
        caps = [n for n in request.n_values if 2 <= n <= min(MAX_CAP, problem_model.n_max)]
        if budget.kind == "n":
            caps = [n for n in caps if n <= budget.value]
        for method, prm, aggregation in curves:
            unit = pd.DataFrame(
                {
                    "policy": [name, name],
                    "prm": [prm, prm],
                    "method": [method, method],
                    "aggregation": [aggregation, aggregation],
                    "selection": ["vote", "vote"],
                    "n": [1, 2],
                    "beam_width": pd.array([None, None], dtype="Int64"),
                }
            )
            unit = price(unit, by_name, dataset, request.hardware)
            twins = unit.iloc[[0] * len(caps)].reset_index(drop=True).assign(n=caps)
            twins = score(model, twins, by_name, dataset, difficulty).set_index("n") if caps else None
            scored = {} if method == "majority" else {"verifier": prm, "aggregation": aggregation}
            for rule in rules:
                for cap in caps:
                    if rule.round_size > cap:
                        continue
                    found = _measured(
                        model, name, dataset, method, prm, aggregation, str(rule), cap, difficulty
                    )
                    if found is None:
                        b = None if difficulty == "all" else difficulty
                        r = predict_stopping(problem_model, rule, cap, bin=b, interval=False, **scored)
                    else:
                        r = {"samples": found["samples_used"], "change": found["accuracy"] - found["at_cap"]}
                    twin = twins.loc[cap]
                    row = {
                        "policy": name,
                        "prm": prm,
                        "method": method,
                        "aggregation": aggregation,
                        "selection": "vote",
                        "n": cap,
                        "beam_width": pd.NA,
                        "stop": str(rule),
                        "expected_samples": r["samples"],
                        "predicted_accuracy": min(
                            max(float(twin["predicted_accuracy"]) + r["change"], 0.0), 1.0
                        ),
                        "accuracy_low": min(max(float(twin["accuracy_low"]) + r["change"], 0.0), 1.0),
                        "accuracy_high": min(max(float(twin["accuracy_high"]) + r["change"], 0.0), 1.0),
                        "in_calibrated_range": bool(twin["in_calibrated_range"]),
                        "extrapolated": bool(twin["extrapolated"]) or cap > sampled,
                        "stop_basis": "predicted" if found is None else "measured",
                        "measured_accuracy": float("nan") if found is None else found["accuracy"],
                        "measured_problems": 0 if found is None else found["problems"],
                    }
                    for col in ("flops_per_problem", "seconds_per_problem", "dollars_per_problem"):
                        if col in unit:
                            one, two = (float(v) for v in unit[col])
                            row[col] = one + (r["samples"] - 1) * (two - one)
                    rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty or budget.kind == "n":
        return out
    column = "flops_per_problem" if budget.kind == "flops" else "seconds_per_problem"
    return out[out[column].to_numpy(dtype=float) <= budget.value].reset_index(drop=True)


def _measured(model, policy, dataset, method, prm, aggregation, stop, cap, difficulty) -> dict | None:
    """The replayed cell of this candidate when the model has one (with its fixed-N twin)."""
    if not hasattr(model, "measured_stop"):
        return None
    return model.measured_stop(policy, dataset, method, prm, aggregation, stop, cap, difficulty)


def describe(rec: dict) -> str:
    """ "adaptive majority cap 16, beta:0.95 (mean 10.4 samples, predicted)" for a plan record with
    a rule; "measured 64.0% of 100" (the replayed accuracy over its problems) where the samples and
    the change come from a replay."""
    what = "majority" if rec["method"] == "majority" else f"best_of_n {rec['aggregation']}/vote"
    basis = "predicted"
    if rec.get("stop_basis") == "measured":
        basis = f"measured {100 * rec['measured_accuracy']:.1f}% of {rec['measured_problems']}"
    return (
        f"adaptive {what} cap {rec['n']}, {rec['stop']} (mean {rec['expected_samples']:.1f} samples, {basis})"
    )


def has_rule(row) -> bool:
    value = row.get("stop") if hasattr(row, "get") else None
    return isinstance(value, str) and value != ""
