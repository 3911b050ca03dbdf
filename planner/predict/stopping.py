"""Expected accuracy and samples of majority vote with early stopping, from the per-problem model.

For a fitted ProblemModel (planner.predict.scaling) each simulated problem draws its success rate
p from the Beta mixture (or one bin's posterior mix), its unanswered share and the split of its
wrong answers (the Dirichlet-process sticks), then a sequence of `cap` samples. The stopping rule
(planner.core.stopping) is checked after every round, as the live loop and the replay check it:
beta:C after each sample, esc:W after each window, the last round cut at the cap. The answer is
the majority of the samples drawn (ties split evenly, as the model's fixed-N majority). Returns
the expected accuracy and the expected number of samples; a bootstrap over the model's refits
gives their 80% intervals. Seeded Monte Carlo.

measured_stops turns a profile's replayed early-stopping rows into cells (ttsplan fit keeps them
in the scaling document; the planner prefers them to the simulation where they exist).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import betainc

from planner.core.errors import UserError
from planner.core.profiles import NO_STOP, static_rows
from planner.core.stopping import NEVER, StopRule
from planner.predict.scaling import LEVEL, ProblemModel, _category_probs, _draw_p, _posterior_mix, _to_score

SIMS = 8000  # simulated problems for the point estimate
BOOT_SIMS = 1000  # for each bootstrap refit
MAX_DRAWS = 2**23  # simulated problems x cap: fewer problems at large caps


def _beta_table(confidence: float, cap: int) -> np.ndarray:
    """settled[v1, v2] of the beta rule for vote counts up to cap."""
    v = np.arange(cap + 1, dtype=float)
    prob = 1.0 - betainc(v[:, None] + 1, v[None, :] + 1, 0.5)
    table = prob >= confidence
    table[0, :] = False  # no answered vote: never settled
    return table


def _checks(rule: StopRule, cap: int) -> list[int]:
    """Sample counts after which the rule is checked (the last round cut at the cap)."""
    step = rule.round_size
    return sorted({*range(step, cap + 1, step), cap})


def _top_two(counts: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(v1, v2): the two largest vote counts; unanswered samples never vote, and answers of the
    all-distinct category count one each."""
    grouped = counts[:, : width - 1].copy()
    grouped[:, 1] = 0
    singles = counts[:, width - 1]
    top = -np.partition(-grouped, 1, axis=1)[:, :2]
    a1, a2 = top.max(axis=1), top.min(axis=1)
    v1 = np.maximum(a1, (singles > 0).astype(counts.dtype))
    v2 = np.where(singles == 0, a2, np.where(a1 >= 1, np.maximum(a2, 1), (singles >= 2).astype(counts.dtype)))
    return v1, v2


def _majority_win(counts: np.ndarray, width: int) -> np.ndarray:
    """Share of the win that goes to the correct answer (ties split evenly)."""
    c, wrong, singles = counts[:, 0], counts[:, 2 : width - 1], counts[:, width - 1]
    top = np.maximum(wrong.max(axis=1), (singles > 0).astype(counts.dtype))
    ties = (wrong == c[:, None]).sum(axis=1) + np.where(c == 1, singles, 0)
    return np.where((c > 0) & (c >= top), 1.0 / (1 + ties), 0.0)


class _Vote:
    """Running score sums per answer of each simulated problem (Best-of-N, weighted vote), drawn
    from the model's latent-normal score model of one verifier and aggregation."""

    def __init__(self, sc: dict, sims: int, width: int, rng) -> None:
        self.sc, self.width, self.rng = sc, width, rng
        self.u = sc["u_mean"] + sc["u_sd"] * rng.standard_normal(sims)
        self.sums = np.zeros((sims, width))
        self.single = np.full(sims, -np.inf)  # the best score among answers seen once
        self.single_ties = np.zeros(sims, dtype=np.int64)

    def add(self, cats: np.ndarray) -> None:
        sc, rows = self.sc, np.arange(len(cats))
        right = cats == 0
        sigma = np.where(right, sc["sigma_correct"], sc["sigma_wrong"])
        t = self.u + sc["delta"] * right + sigma * self.rng.standard_normal(len(cats))
        score = np.round(_to_score(t, sc), 9)
        grouped = (cats != 1) & (cats != self.width - 1)
        self.sums[rows[grouped], cats[grouped]] += score[grouped]
        alone = cats == self.width - 1
        better = alone & (score > self.single)
        same = alone & (score == self.single)
        self.single = np.where(better, score, self.single)
        self.single_ties = np.where(better, 1, self.single_ties + same)

    def win(self, done: np.ndarray, counts: np.ndarray) -> np.ndarray:
        sums = np.round(self.sums[done], 9)
        present = counts > 0
        present[:, 1] = present[:, -1] = False
        sums = np.where(present, sums, -np.inf)
        single = self.single[done]
        top = np.maximum(sums.max(axis=1), single)
        tied = (sums == top[:, None]).sum(axis=1) + np.where(single == top, self.single_ties[done], 0)
        ok = present[:, 0] & (sums[:, 0] == top)
        return np.where(ok, 1.0 / np.maximum(tied, 1), 0.0)


def simulate(
    params: dict, dist: dict, rule: StopRule, cap: int, sims: int, rng, scores: dict | None = None
) -> tuple[float, float]:
    """(expected accuracy, expected samples) of majority (or, with `scores`, the score-weighted
    vote of Best-of-N) with `rule` up to `cap`: samples drawn one at a time for every simulated
    problem still open, the rule (on answers alone) checked after each round."""
    probs = _category_probs(_draw_p(dist, sims, rng), params, rng)
    width = probs.shape[1]  # 0 correct, 1 unanswered, 2..width-2 wrong answers, width-1 all distinct
    cum = np.cumsum(probs, axis=1)
    cum[:, -1] = 1.0
    counts = np.zeros((sims, width), dtype=np.int32)
    rows = np.arange(sims)
    checks = set(_checks(rule, cap))
    w = rule.round_size
    window = np.zeros((sims, w), dtype=np.int64)  # the last w categories (esc)
    table = _beta_table(rule.value, cap) if rule.kind == "beta" else None
    vote = _Vote(scores, sims, width, rng) if scores is not None else None
    open_ = np.ones(sims, dtype=bool)
    win = np.zeros(sims)
    used = np.full(sims, float(cap))
    for t in range(1, cap + 1):
        cats = np.minimum((rng.random(sims)[:, None] > cum).sum(axis=1), width - 1)
        counts[rows, cats] += 1
        if vote is not None:
            vote.add(cats)
        window[:, (t - 1) % w] = cats
        if t not in checks:
            continue
        if t == cap:
            settled = np.ones(sims, dtype=bool)
        elif table is not None:
            v1, v2 = _top_two(counts, width)
            settled = table[v1, v2]
        else:
            first = window[:, :1]
            settled = (window == first).all(axis=1) & (first[:, 0] != 1) & (first[:, 0] != width - 1)
        done = open_ & settled
        if done.any():
            win[done] = _majority_win(counts[done], width) if vote is None else vote.win(done, counts[done])
            used[done] = t
            open_ &= ~done
        if not open_.any():
            break
    return float(win.mean()), float(used.mean())


def predict_stopping(
    model: ProblemModel,
    rule: StopRule,
    cap: int,
    *,
    bin: str | None = None,
    verifier: str | None = None,
    aggregation: str | None = None,
    sims: int = SIMS,
    boot_sims: int = BOOT_SIMS,
    interval: bool = True,
    boot: int | None = None,
) -> dict:
    """Majority (or, given a verifier and aggregation the model has scores of, Best-of-N with
    the score-weighted vote) with `rule` up to `cap` samples: {"accuracy", "low", "high",
    "samples", "samples_low", "samples_high", "level", "at_cap", "change"}, over all problems or
    one bin's; "change" is the rule's effect against the same method at the cap, measured on the
    same simulated problems and samples (so its Monte Carlo noise is small). boot: how
    many of the model's bootstrap refits make the interval (default all)."""
    if not isinstance(rule, StopRule):
        raise UserError(f"rule: must be a StopRule, got {type(rule).__name__}")
    if isinstance(cap, bool) or not isinstance(cap, (int, np.integer)) or not 1 <= cap <= model.n_max:
        raise UserError(f"cap: must be a whole number from 1 to {model.n_max}, got {cap!r}")
    if bin is not None and bin not in model.bins:
        raise UserError(f"bin must be one of {', '.join(model.bins)}, got {bin!r}")
    cap = int(cap)
    name = None
    if verifier is not None or aggregation is not None:
        name = f"{verifier}:{aggregation}"
        if name not in model.params["scores"]:
            known = ", ".join(f"{v}/{a}" for v, a in model.scores) or "none"
            raise UserError(f"verifier/aggregation {verifier}/{aggregation} was not fitted (fitted: {known})")

    def one(params: dict, draws: int, replicate: int, stop: StopRule = rule) -> tuple[float, float]:
        dist = params["success"] if bin is None else _posterior_mix(params["success"], model.bins[bin])
        rng = np.random.default_rng([model.seed, cap, int(rule.value * 1000), replicate, name is not None])
        sc = None if name is None else params["scores"][name]
        return simulate(params, dist, stop, cap, max(100, min(draws, MAX_DRAWS // cap)), rng, sc)

    acc, used = one(model.params, sims, 0)
    # the same simulated problems and samples without stopping: the rule's effect, with the
    # Monte Carlo noise of the two runs shared (common random numbers)
    at_cap, _ = one(model.params, sims, 0, NEVER)
    out = {"accuracy": acc, "samples": used, "level": LEVEL, "at_cap": at_cap, "change": acc - at_cap}
    refits = model.boot if boot is None else model.boot[: max(int(boot), 0)]
    reps = [one(b, boot_sims, i + 1) for i, b in enumerate(refits)] if interval else []
    if reps:
        q = [50 * (1 - LEVEL), 50 * (1 + LEVEL)]
        lo, hi = np.percentile(np.array(reps), q, axis=0)
        out.update(low=min(float(lo[0]), acc), high=max(float(hi[0]), acc))
        out.update(samples_low=min(float(lo[1]), used), samples_high=max(float(hi[1]), used))
    else:
        out.update(low=acc, high=acc, samples_low=used, samples_high=used)
    return out


# ---------------------------------------------------------------- the probe's posterior

PROBE_SIMS = 100_000


def probe_posterior(model: ProblemModel, k: int, *, sims: int = PROBE_SIMS) -> dict[str, dict]:
    """What k probe samples say about a problem, by how their answers split (core.scoring
    .answer_signature): per signature its probability, the posterior mean success rate p and the
    posterior share of each difficulty bin (by p: easy > 0.5, hard < 0.1), simulated from the
    model's prior over problems. Seeded."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= 64:
        raise UserError(f"k: must be a whole number from 1 to 64, got {k!r}")
    rng = np.random.default_rng([model.seed, int(k), 7])
    params = model.params
    p = _draw_p(params["success"], sims, rng)
    probs = _category_probs(p, params, rng)
    width = probs.shape[1]
    counts = rng.multinomial(int(k), probs)  # (sims, width); the draws' order does not matter
    singles = counts[:, -1]
    groups = np.concatenate(
        [
            counts[:, :1],
            counts[:, 2 : width - 1],
            (np.arange(k)[None, :] < singles[:, None]).astype(np.int64),
        ],
        axis=1,
    )
    sizes = -np.sort(-groups, axis=1)[:, :k]
    keys = np.concatenate([sizes, counts[:, 1:2]], axis=1)  # group sizes, then the unanswered count
    code = keys @ (int(k) + 1) ** np.arange(keys.shape[1], dtype=np.int64)  # one integer per split
    _, first, inverse = np.unique(code, return_index=True, return_inverse=True)
    uniq = keys[first]
    inverse = inverse.reshape(-1)
    total = np.bincount(inverse, minlength=len(uniq)).astype(float)
    mean_p = np.bincount(inverse, weights=p, minlength=len(uniq)) / total
    easy = np.bincount(inverse, weights=(p > 0.5).astype(float), minlength=len(uniq)) / total
    hard = np.bincount(inverse, weights=(p < 0.1).astype(float), minlength=len(uniq)) / total
    out = {}
    for row, n, m, e, h in zip(uniq, total, mean_p, easy, hard, strict=True):
        answered = "+".join(str(int(x)) for x in row[:-1] if x > 0) or "0"
        out[f"{answered}/{int(row[-1])}"] = {
            "probability": float(n / sims),
            "pass1": float(m),
            "bins": {"easy": float(e), "medium": float(1 - e - h), "hard": float(h)},
        }
    return out


# ---------------------------------------------------------------- measured (replayed) cells

MEASURED_KEYS = ("method", "prm", "aggregation", "stop", "n")


def measured_stops(records: pd.DataFrame, policy: str, dataset: str) -> list[dict]:
    """The early-stopping rows of one (policy, dataset) (a replay: `ttsplan calibrate --stop`,
    `ttsplan import persample --stop`) as cells: per method, verifier, aggregation, rule and cap,
    over all its problems ("all") and per difficulty bin, the mean accuracy and samples_used and
    `at_cap`: the same selection at the cap in the same order (the rows' accuracy_at_cap, so the
    difference is the rule's alone), else (rows written before that column) the fixed-N row at the
    cap on the same problems (its weighted-vote row for Best-of-N). A row with neither is left out."""
    if "stop" not in records.columns:
        return []
    mine = records[(records["policy"] == policy) & (records["dataset"] == dataset)]
    stop = mine[mine["stop"].fillna(NO_STOP).astype(str) != NO_STOP]
    if stop.empty:
        return []
    fixed = static_rows(mine)
    fixed = fixed[fixed["method"].isin(["majority", "best_of_n"]) & (fixed["selection"] == "vote")]
    twin = fixed[["problem_id", "method", "prm", "aggregation", "n", "accuracy"]].rename(
        columns={"accuracy": "at_cap"}
    )
    both = stop.merge(twin, on=["problem_id", "method", "prm", "aggregation", "n"], how="left")
    if "accuracy_at_cap" in both.columns:
        both["at_cap"] = both["accuracy_at_cap"].astype("float64").fillna(both["at_cap"])
    both = both[both["at_cap"].notna()]
    out = []
    for b, part in [("all", both), *both.groupby("difficulty", sort=True, observed=True)]:
        g = part.groupby(list(MEASURED_KEYS), sort=True)
        cells = g.agg(
            problems=("problem_id", "nunique"),
            accuracy=("accuracy", "mean"),
            samples_used=("samples_used", "mean"),
            at_cap=("at_cap", "mean"),
        ).reset_index()
        for row in cells.to_dict("records"):
            out.append(
                {
                    **{k: row[k] for k in MEASURED_KEYS},
                    "n": int(row["n"]),
                    "bin": str(b),
                    "problems": int(row["problems"]),
                    **{k: float(row[k]) for k in ("accuracy", "samples_used", "at_cap")},
                }
            )
    return out
