"""Profile rows from a calibration run's step records: run cells as measured, the rest replayed.

Majority vote, Best-of-N (every aggregation, max or weighted vote) for every N come from the one
sampling run as exact expectations over subsets (calibration.replay); DVTS for a smaller N is the
expected best-of over subsets of the large run's subtrees; beam search and CoT are as run. With
the grid's `stops`, each rule is replayed on the sampling run in its recorded order, each N the
cap (calibration.replay.replay_table, the importer's code): rows with `stop` and `samples_used`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from calibration.extrapolate import extrapolated_rows
from calibration.grid import Grid
from calibration.replay import (
    best_of_n_expectation,
    majority_expectation,
    replay_table,
    weighted_vote_expectation,
)
from planner.core.profiles import BASIS, FIXED_N, MEASURED, NO_STOP, OPTIONAL, SCHEMA, validate_records
from planner.core.scoring import aggregate, answer_key
from planner.core.stopping import parse_rule
from planner.core.vocab import difficulty_from_pass1
from planner.models import cost, specs

QUANTILE_LEVELS = 5


def _keyed(answers: Sequence[str], correct: Sequence[bool]) -> tuple[list, dict]:
    """Answers as vote keys (as the executor groups them) and each key's correctness."""
    keys = [answer_key(a) if a else None for a in answers]
    table: dict = {}
    for k, c in zip(keys, correct, strict=True):
        if k is not None:
            table[k] = max(table.get(k, 0.0), float(c))
    return keys, table


def _mean(values) -> float:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else math.nan


def difficulty_table(grid: Grid, problems: list, samples: dict[tuple[str, str], dict]) -> pd.DataFrame:
    """pass@1 per policy and problem from the first K samples; the paper's bins; quantile levels."""
    k = grid.difficulty_samples
    rows = []
    for policy in grid.policies:
        for p in problems:
            s = samples[(policy, str(p.id))]
            pass1 = float(np.mean(s["correct"][:k]))
            rows.append(
                {
                    "dataset": p.dataset,
                    "problem_id": str(p.id),
                    "level": "" if p.level is None else str(p.level),
                    "policy": specs.model_label(s["policy"]),
                    "k": k,
                    "pass1": pass1,
                    "difficulty": difficulty_from_pass1(pass1),
                }
            )
    table = pd.DataFrame(rows)
    if grid.quantile_levels:
        table["quantile_level"] = table.groupby("policy")["pass1"].transform(quantile_levels).astype("Int64")
    return table


def quantile_levels(pass1: pd.Series) -> pd.Series:
    """Five levels of equal size by pass@1 (Snell et al.): 1 easiest ... 5 hardest; ties by order."""
    ranks = (-pass1).rank(method="first")
    return np.ceil(ranks * QUANTILE_LEVELS / len(pass1)).clip(1, QUANTILE_LEVELS)


def rows_for_problem(grid: Grid, p, policy: str, rec: dict[str, dict], diff: dict, source: str) -> list[dict]:
    """Profile rows of one policy on one problem; rec maps step key -> that step's record."""
    base = {
        "dataset": p.dataset,
        "problem_id": str(p.id),
        "level": "" if p.level is None else str(p.level),
        "difficulty": diff["difficulty"],
        "pass1": diff["pass1"],
        "policy": policy,
        "beam_width": pd.NA,
        "n_problems": 1,
        "source": source,
    }
    rows: list[dict] = []
    s = rec["sample"]
    K = len(s["answers"])
    keys, table = _keyed(s["answers"], s["correct"])
    correct = np.asarray(s["correct"], dtype=float)
    answered = [bool(a) for a in s["answers"]]  # unanswered samples are dropped before a max pick
    prompt = s["prompt_tokens"]
    gen_tokens = _mean(s["generated_tokens"])
    policy_spec = specs.spec_or_none(policy)
    prefill, gen_each = sample_flops(policy_spec, s)
    gen_flops = _mean(gen_each) if gen_each is not None else math.nan
    replay_note = f"exact mean over all N-subsets of {K} samples from one run"

    def sampled(k: int, prm_tokens: float, prm_flops: float) -> dict:
        flops = (prefill if prefill is not None else math.nan) + k * gen_flops + k * prm_flops
        return {
            "n": k,
            "policy_tokens": prompt + k * gen_tokens,
            "prm_tokens": k * prm_tokens,
            "flops": flops,
        }

    if "cot" in grid.methods:
        c = rec["cot"]
        rows.append(
            {
                **base,
                "prm": "none",
                "method": "cot",
                "aggregation": "none",
                "selection": "none",
                "n": 1,
                "accuracy": float(c["correct"]),
                "policy_tokens": c["policy_tokens"],
                "prm_tokens": 0.0,
                "flops": _num(run_flops(policy_spec, None, c, "cot")),
                "note": "greedy, as run",
            }
        )
    for k in grid.n:
        if k > K:
            continue
        if "majority" in grid.methods:
            rows.append(
                {
                    **base,
                    **sampled(k, 0.0, 0.0),
                    "prm": "none",
                    "method": "majority",
                    "aggregation": "none",
                    "selection": "vote",
                    "accuracy": majority_expectation(keys, table, k),
                    "note": replay_note,
                }
            )
        if "best_of_n" not in grid.methods:
            continue
        for v in grid.verifiers:
            sc = rec[f"score:{v}"]
            prm_tok = _mean(sc["prm_tokens"])
            prm_each = score_flops(specs.spec_or_none(specs.prm_label(v, policy)), sc)
            prm_fl = _mean(prm_each) if prm_each is not None else math.nan
            for agg in grid.aggregations:
                scores = np.array([aggregate(x, agg) for x in sc["step_scores"]], dtype=float)
                for sel in grid.selections:
                    if sel == "max":
                        acc = best_of_n_expectation(scores, correct, k, answered=answered)
                    else:
                        acc = weighted_vote_expectation(keys, scores, table, k)
                    rows.append(
                        {
                            **base,
                            **sampled(k, prm_tok, prm_fl),
                            "prm": specs.prm_label(v, policy),
                            "method": "best_of_n",
                            "aggregation": agg,
                            "selection": sel,
                            "accuracy": acc,
                            "note": replay_note,
                        }
                    )
    for v in grid.tree_verifier_names:
        prm_spec = specs.spec_or_none(specs.prm_label(v, policy))
        for m in grid.beam_widths:
            tree_base = {
                **base,
                "prm": specs.prm_label(v, policy),
                "aggregation": grid.tree_aggregation,
                "selection": "max",
                "beam_width": m,
            }
            if "dvts" in grid.methods:
                d = rec[f"dvts:{v}:{m}:{max(grid.tree_ns)}"]
                cands = d["candidates"]
                J = len(cands)
                scores = np.array([c["score"] if c["score"] is not None else 0.0 for c in cands], dtype=float)
                ok = np.array([c["correct"] for c in cands], dtype=float)
                has_answer = [bool(c.get("answer")) for c in cands]
                for n in grid.tree_ns:
                    j = n // m
                    share = j / J
                    note = (
                        "as run"
                        if j == J
                        else f"exact mean over {j}-subsets of the {J} subtrees of the N={J * m} run"
                    )
                    rows.append(
                        {
                            **tree_base,
                            "method": "dvts",
                            "n": n,
                            "accuracy": float(d["correct"])
                            if j == J
                            else best_of_n_expectation(scores, ok, j, answered=has_answer),
                            "policy_tokens": share * d["policy_tokens"],
                            "prm_tokens": share * d["prm_tokens"],
                            "flops": share * _num(run_flops(policy_spec, prm_spec, d, "dvts")),
                            "note": note,
                        }
                    )
            if "beam" in grid.methods:
                for n in grid.tree_ns:
                    b = rec[f"beam:{v}:{m}:{n}"]
                    rows.append(
                        {
                            **tree_base,
                            "method": "beam",
                            "n": n,
                            "accuracy": float(b["correct"]),
                            "policy_tokens": b["policy_tokens"],
                            "prm_tokens": b["prm_tokens"],
                            "flops": _num(run_flops(policy_spec, prm_spec, b, "beam")),
                            "note": "as run",
                        }
                    )
    return rows


def sample_flops(policy, s: dict) -> tuple[float | None, list[float] | None]:
    """(prefill, generation per sample) of a sampling-run record, from its token counts: one call,
    the problem's first, so its prompt is computed in full (cost.record_flops)."""
    if policy is None:
        return None, None
    prompt = s["prompt_tokens"]
    gens = [float(cost.generation_flops(policy, prompt, g)) for g in s["generated_tokens"]]
    return float(cost.prefill_flops(policy, prompt, 0)), gens


def score_flops(prm, sc: dict) -> list[float] | None:
    """Verifier FLOPs per scored sample, from the tokens it read (a rule reads nothing: zeros)."""
    tokens = sc["prm_tokens"]
    if prm is None:
        return None if any(tokens) else [0.0] * len(tokens)
    return [float(cost.prm_flops(prm, t)) for t in tokens]


def run_calls(r: dict, kind: str) -> list | None:
    """A method run's generate calls. A CoT record from before calls were kept is one call,
    rebuilt from its prompt and generated totals; an older tree record has none (None)."""
    if "calls" in r:
        return r["calls"]
    if kind == "cot":
        return [[r["policy_tokens"] - r["generated_tokens"], 0, [r["generated_tokens"]]]]
    return None


def run_flops(policy, prm, r: dict, kind: str) -> float | None:
    """FLOPs of a cot, beam or dvts record from its stored counts (cost.record_flops)."""
    calls = run_calls(r, kind)
    if calls is None:
        return r.get("flops")  # a tree record from before its counts were kept: as stored
    return cost.record_flops(policy, prm, calls, r.get("prm_reads", []))["total"]


def _num(value) -> float:
    return math.nan if value is None else float(value)


def build_records(
    grid: Grid, problems: list, by_step: dict, difficulty: pd.DataFrame, source: str
) -> pd.DataFrame:
    """by_step[(policy, problem_id)][step_key] -> record. Returns validated profile records."""
    diff = {
        (r.policy, r.problem_id): {"pass1": r.pass1, "difficulty": r.difficulty}
        for r in difficulty.itertuples()
    }
    rows = []
    for policy in grid.policies:
        for p in problems:
            rec = by_step[(policy, str(p.id))]
            name = specs.model_label(rec["sample"]["policy"])
            rows += rows_for_problem(grid, p, name, rec, diff[(name, str(p.id))], source)
    frame = pd.DataFrame(rows, columns=list(SCHEMA))
    samples = run_samples(grid, problems, by_step, source) if grid.stops or grid.extrapolated_n else None
    extra = extrapolated_records(grid, samples)
    if grid.stops:
        frame = frame.assign(**FIXED_N)
        stops = stop_records(grid, samples)
        stops = stops.drop(columns=["pass1", "difficulty"]).merge(
            frame[["policy", "problem_id", "pass1", "difficulty"]].drop_duplicates(),
            on=["policy", "problem_id"],
        )  # the bin of the run's other rows (pass@1 of the first K samples), not of all samples
        frame = pd.concat([frame, stops[[*SCHEMA, *OPTIONAL]]], ignore_index=True)
        extra = extra.assign(**FIXED_N) if len(extra) else extra
    if len(extra):
        frame = pd.concat([frame.assign(**{BASIS: MEASURED}), extra], ignore_index=True)
    return validate_records(frame, "calibration")


def run_samples(grid: Grid, problems: list, by_step: dict, source: str) -> pd.DataFrame:
    """Every policy's sampling runs as one samples table (sample_table per problem, in order)."""
    tables = []
    for policy in grid.policies:
        for p in problems:
            rec = by_step[(policy, str(p.id))]
            tables.append(sample_table(grid, p, specs.model_label(rec["sample"]["policy"]), rec, source))
    return pd.concat(tables, ignore_index=True)


def extrapolated_records(grid: Grid, samples: pd.DataFrame | None) -> pd.DataFrame:
    """Majority and Best-of-N (max, weighted vote) at the grid's extrapolated N, per policy and
    verifier x aggregation: the per-problem model fitted on the sampling run (calibration.extrapolate)."""
    if not grid.extrapolated_n:
        return pd.DataFrame()
    parts = []
    for policy in samples["policy"].unique():  # in the grid's order
        mine = samples[samples["policy"] == policy]
        for (prm, _), group in mine.groupby(["prm", "aggregation"], sort=True):
            method = "majority" if prm == "none" else "best_of_n"  # the scored groups: Best-of-N only
            if method not in grid.methods:
                continue
            rows = extrapolated_rows(
                group.reset_index(drop=True), grid.extrapolated_n, majority=prm == "none"
            )
            if method == "best_of_n" and len(rows):
                rows = rows[rows["selection"].isin(grid.selections)]
            parts.append(rows)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def sample_table(grid: Grid, p, policy: str, rec: dict[str, dict], source: str) -> pd.DataFrame:
    """The sampling run of one problem as a samples table for calibration.replay (one row per
    sample in recorded order, per verifier x aggregation when Best-of-N votes, else one group):
    vote keys, correctness by key (as the fixed-N rows count it), the prompt's tokens and
    prefill on the first sample (one call computed it), each sample's generation and scoring."""
    s = rec["sample"]
    keys, table = _keyed(s["answers"], s["correct"])
    correct = [table[k] if k is not None else float(c) for k, c in zip(keys, s["correct"], strict=True)]
    prefill, gens = sample_flops(specs.spec_or_none(policy), s)
    flops = (
        [math.nan] * len(keys)
        if gens is None
        else [g + (prefill if i == 0 else 0.0) for i, g in enumerate(gens)]
    )
    base = pd.DataFrame(
        {
            "answer": keys,
            "correct": correct,
            "policy_tokens": [
                g + (s["prompt_tokens"] if i == 0 else 0) for i, g in enumerate(s["generated_tokens"])
            ],
            "flops": flops,
        }
    ).assign(
        dataset=p.dataset,
        problem_id=str(p.id),
        level="" if p.level is None else str(p.level),
        policy=policy,
        source=source,
    )
    groups = [base.assign(prm="none", aggregation="none")]
    if "best_of_n" in grid.methods and "vote" in grid.selections:
        for v in grid.verifiers:
            sc = rec[f"score:{v}"]
            prm_each = score_flops(specs.spec_or_none(specs.prm_label(v, policy)), sc)
            for agg in grid.aggregations:
                groups.append(
                    base.assign(
                        prm=specs.prm_label(v, policy),
                        aggregation=agg,
                        score=[aggregate(x, agg) for x in sc["step_scores"]],
                        prm_tokens=[float(t) for t in sc["prm_tokens"]],
                        prm_flops=math.nan if prm_each is None else prm_each,
                    )
                )
    return pd.concat(groups, ignore_index=True)


def stop_records(grid: Grid, samples: pd.DataFrame) -> pd.DataFrame:
    """The early-stopping rows of the grid's stops: each rule replayed on every sampling run
    (run_samples) in its recorded order, each N the cap, majority and (with best_of_n and vote)
    the weighted vote per verifier and aggregation."""
    rows = replay_table(samples, grid.n, methods=(), stops=[parse_rule(r) for r in grid.stops])
    rows = rows[rows["stop"] != NO_STOP]
    if "majority" not in grid.methods:
        rows = rows[rows["method"] != "majority"]
    return rows.reset_index(drop=True)


def spent_flops(by_step: dict) -> float:
    """FLOPs the run actually spent, over every step record, priced from their stored counts."""
    total = 0.0
    for rec in by_step.values():
        policy = specs.model_label(rec["sample"]["policy"])
        policy_spec = specs.spec_or_none(policy)
        for key, r in rec.items():
            kind, _, rest = key.partition(":")
            verifier = rest.split(":")[0] if rest else None
            prm = specs.spec_or_none(specs.prm_label(verifier, policy)) if verifier else None
            if kind == "sample":
                prefill, gens = sample_flops(policy_spec, r)
                total += (prefill or 0.0) + sum(gens or [])
            elif kind == "score":
                total += sum(score_flops(prm, r) or [])
            else:
                total += run_flops(policy_spec, prm, r, kind) or 0.0
    return total
