"""Per-problem models for policies without samples: their few parameters predicted from the
policies and verifiers that have samples, constrained by published cells (issue 9, item 2).

A (policy, dataset) without sample-level records gets a ProblemModel (planner.predict.scaling)
whose parameters come from:

  success   one Beta with mean mu and concentration kappa (a + b). mu: the policy's own published
            cells where it has them (sampled pass@1 = majority@1; majority@N, read through the
            model's majority curve; greedy CoT through the CoT offset below), else the
            regressor's majority@1 (its pass@1) for that policy and dataset. kappa: pooled
            over the calibrated sets (see "pooled" below), moved only by the policy's majority
            cells (two cells at different N fix both). Difficulty bins as the calibrated profiles bin problems: by
            pass@1 of 8 samples (hard: none of 8, easy: over 4 of 8), here of 8 simulated ones.
  wrong     the wrong-answer concentration alpha and the unanswered share: pooled over the
            calibrated sets of the same dataset (all sets where none is on it)
  pooled    over sets with at least PRIOR_MIN_K samples per problem (fewer rarely show two wrong
            answers agreeing), each source (profile) once: the median over sources of each
            source's median, so one paper's 25 sets do not outvote five other sources
  scores    per (verifier, aggregation) measured on samples: the sets' latent-normal separation
            (median delta and spreads); per verifier known only from published Best-of-N cells:
            the separation delta that makes the Best-of-N curve of the cell's policy (its own
            success model, from its own published cells) pass through the cell, median over its
            cells and aggregations, unit spreads, scores on [0, 1]
  tree      beam / DVTS: logit shift against Best-of-N at the same N and verifier, from the
            calibrated sets' tree corrections (lines in log2 N) and from published tree cells of
            anchored policies (constants); (mean shift and slope over them; spread includes their
            disagreement); a verifier without tree cells
            takes the mean over verifiers with them (outside the calibrated range, its interval
            widened by their spread); none: not predicted
  cot       greedy CoT = expit(logit(mu) - offset), offset = mean over calibrated sets of
            logit(mean p) - logit(measured CoT), CoT measured by the set's own profile (the same
            run's settings); its spread widens CoT intervals

Intervals: logit half-widths from the transfer error of held-out whole policies (each calibrated
set predicted from the others, its mu from its own CoT cell; every anchored published policy's
Best-of-N cells predicted with the verifiers fitted without it), at the 80% level; a policy with no
published cell adds the regressor's own half-width (its mu is the regressor's guess).

The result is plain JSON inside the scaling document (`transfer`).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd
from scipy.special import expit, logit

from planner.core.profiles import static_rows
from planner.core.vocab import TREE_METHODS
from planner.predict.scaling import _bon_max, _category_probs, _mean_p, _posterior_mix, majority_wins
from planner.predict.scalingfit import tree_shift

BIN_K = 8  # simulated samples per problem that bin a transferred model's problems
PLATEAU_N = 256  # a majority cell without N: majority's plateau, read at the largest N of Liu's grid
FIT_SIMS = 400  # simulated problems per mu of a majority curve while fitting mu / kappa
KAPPA_GRID = np.exp(np.linspace(math.log(0.25), math.log(16.0), 7))
KAPPA_PRIOR_SD = 1.0  # log scale
MAJ_SD = 0.1  # logit spread allowed between a policy's majority cells
DELTA_RANGE = (-3.0, 8.0)
LEVEL = 0.8
EPS = 1e-4
VOTE_SIMS = 1000  # Monte Carlo draws per weighted-vote point of a transferred model
CONT_GRID = np.linspace(0.0, 1.0, 129)  # a published verifier's scores: Phi(latent), on [0, 1]


def _lg(x) -> float:
    return float(logit(min(max(float(x), EPS), 1 - EPS)))


# ---------------------------------------------------------------- cells of one (policy, dataset)


def cells(records: pd.DataFrame, policy: str, dataset: str, method: str) -> pd.DataFrame:
    """Cells of one method over all problems: difficulty "all" rows where the profiles have them,
    else the per-problem / per-bin rows averaged by n_problems."""
    r = records[
        (records["policy"] == policy) & (records["dataset"] == dataset) & (records["method"] == method)
    ]
    if r.empty:
        return pd.DataFrame(columns=["prm", "aggregation", "selection", "n", "beam_width", "accuracy"])
    whole = (r["difficulty"] == "all") & (r["problem_id"].fillna("").astype(str) == "")
    if whole.any():
        r = r[whole]
    w = pd.to_numeric(r["n_problems"]).astype(float)
    keys = ["prm", "aggregation", "selection", "n", "beam_width"]
    g = r.assign(_wa=r["accuracy"].astype(float) * w, _w=w).groupby(keys, dropna=False)
    out = g[["_wa", "_w"]].sum()
    out["accuracy"] = out["_wa"] / out["_w"]
    return out.reset_index()[[*keys, "accuracy"]]


def _n(value) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


# ---------------------------------------------------------------- model parts


def beta(mu: float, kappa: float) -> dict:
    mu = min(max(mu, 1e-3), 1 - 1e-3)
    return {"weights": [1.0], "a": [max(mu * kappa, 0.02)], "b": [max((1 - mu) * kappa, 0.02)]}


def bins_table(mu: float, kappa: float) -> dict:
    """Difficulty bins of a Beta(mu, kappa) population, as count tables [[c, K, weight]]: a
    problem's bin is its pass@1 over BIN_K simulated samples (calibrated profiles bin by 8)."""
    from scipy import stats

    a, b = beta(mu, kappa)["a"][0], beta(mu, kappa)["b"][0]
    pmf = stats.betabinom.pmf(np.arange(BIN_K + 1), BIN_K, a, b)
    out: dict = {}
    for c, w in enumerate(pmf):
        p1 = c / BIN_K
        label = "easy" if p1 > 0.5 else "hard" if p1 < 0.1 else "medium"
        if w > 1e-9:
            out.setdefault(label, []).append([c, BIN_K, float(w)])
    return out


def summary(entry: dict) -> dict:
    """mu, kappa (moment-matched), missing share, alpha and score models of a calibrated set."""
    params = entry["model"]["params"]
    s = params["success"]
    w, a, b = (np.asarray(s[x], dtype=float) for x in ("weights", "a", "b"))
    m = a / (a + b)
    mu = float(np.sum(w * m))
    var = float(np.sum(w * (m * (1 - m) / (a + b + 1) + m**2)) - mu**2)
    kappa = max(mu * (1 - mu) / max(var, 1e-6) - 1.0, 0.05)
    return {
        "policy": entry["policy"],
        "dataset": entry["dataset"],
        "mu": mu,
        "kappa": kappa,
        "missing": params["missing"],
        "alpha": params["alpha"],
        "scores": params["scores"],
        "tree": entry.get("tree", []),
        "source": str(entry.get("source", "")).split("/")[0],  # the profile the samples came from
        "k": int(entry.get("samples_per_problem", 0)),
    }


PRIOR_MIN_K = 8  # samples per problem a set needs to inform the shared priors (kappa, wrong answers)


def _pooled(values, sources) -> float:
    """Geometric median over sources of each source's geometric median: one paper's 25 sets do
    not outvote five other sources."""
    by: dict = {}
    for v, src in zip(values, sources, strict=True):
        by.setdefault(src, []).append(math.log(max(float(v), 1e-12)))
    return float(math.exp(np.median([np.median(v) for v in by.values()])))


MU_GRID = np.linspace(-6.0, 6.0, 25)  # logit(mu) values a majority curve is evaluated at


@functools.lru_cache(maxsize=512)
def _majority_grid_cached(kappa: float, alpha: float, miss_a: float, miss_b: float, n: int) -> np.ndarray:
    return _majority_grid(kappa, {"alpha": alpha, "missing": {"a": miss_a, "b": miss_b}}, n)


def _majority_grid(kappa: float, wrong: dict, n: int) -> np.ndarray:
    """majority@n for every mu of MU_GRID at this kappa: stratified quantiles of p and seeded
    draws shared by all mu (common random numbers), so the curve is monotone in mu up to noise."""
    from scipy import special

    rng = np.random.default_rng([7, n])
    mus = expit(MU_GRID)
    q = (np.arange(FIT_SIMS) + 0.5) / FIT_SIMS
    p = special.betaincinv(mus[:, None] * kappa, (1 - mus[:, None]) * kappa, q[None, :]).ravel()
    params = {"missing": wrong["missing"], "alpha": wrong["alpha"]}
    probs = _category_probs(np.clip(p, 0.0, 1.0), params, rng)
    win = majority_wins(rng.multinomial(n, probs)).reshape(len(mus), FIT_SIMS).mean(axis=1)
    return np.maximum.accumulate(win)


def _solve_mu(target: float, kappa: float, wrong: dict, n: int) -> float:
    """logit(mu) whose majority@n is `target` (interpolated on MU_GRID)."""
    w = wrong
    curve = _majority_grid_cached(float(kappa), w["alpha"], w["missing"]["a"], w["missing"]["b"], int(n))
    curve = curve + np.arange(len(curve)) * 1e-9  # strictly increasing for interp
    return float(np.interp(target, curve, MU_GRID))


def fit_success(anchor: dict, wrong: dict, kappa0: float, offset: float, offset_sd: float) -> dict:
    """(mu, kappa) of one policy from its published cells: {"pass1": [...], "cot": [...],
    "majority": [(n, acc), ...]}."""
    prior = None  # (logit mu, sd)
    if anchor.get("pass1"):
        prior = (float(np.mean([_lg(x) for x in anchor["pass1"]])), 0.05)
    elif anchor.get("cot"):
        prior = (float(np.mean([_lg(x) for x in anchor["cot"]])) + offset, max(offset_sd, 0.05))
    maj = [(n, acc) for n, acc in anchor.get("majority", []) if n > 1]
    if not maj:
        if prior is None:
            raise ValueError("anchor: no cell")
        return {"mu": float(expit(prior[0])), "kappa": kappa0, "cells": _count(anchor)}
    best = None
    for kappa in KAPPA_GRID:
        mus = [_solve_mu(acc, kappa, wrong, n) for n, acc in maj]
        mbar = float(np.mean(mus))
        cost = sum((m - mbar) ** 2 for m in mus) / MAJ_SD**2
        cost += (math.log(kappa) - math.log(kappa0)) ** 2 / KAPPA_PRIOR_SD**2
        if prior is not None:
            cost += (mbar - prior[0]) ** 2 / (prior[1] ** 2 + MAJ_SD**2 / len(mus))
            wp, wm = 1 / prior[1] ** 2, len(mus) / MAJ_SD**2
            mbar = (wp * prior[0] + wm * mbar) / (wp + wm)
        if best is None or cost < best[0]:
            best = (cost, mbar, float(kappa))
    return {"mu": float(expit(best[1])), "kappa": best[2], "cells": _count(anchor)}


def _count(anchor: dict) -> int:
    return len(anchor.get("pass1", [])) + len(anchor.get("cot", [])) + len(anchor.get("majority", []))


def published_scores(delta: float) -> dict:
    return {
        "delta": float(delta),
        "sigma_correct": 1.0,
        "sigma_wrong": 1.0,
        "u_mean": 0.0,
        "u_sd": 0.0,
        "discrete": False,
        "values": CONT_GRID.tolist(),
        "cum": CONT_GRID.tolist(),
        "n_mixed": 0,
    }


def _solve_delta(target: float, dist: dict, missing: dict, n: int) -> float:
    lo, hi = DELTA_RANGE
    f = lambda d: _bon_max(dist, missing, published_scores(d), n)  # noqa: E731
    if f(lo) >= target:
        return lo
    if f(hi) <= target:
        return hi
    for _ in range(13):
        mid = (lo + hi) / 2
        if f(mid) < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


# ---------------------------------------------------------------- the fit


def _wrong_defaults(sums: list[dict]) -> dict:
    """alpha and the unanswered share per dataset (median of its sets) and over all sets."""

    def med(group: list[dict]) -> dict:
        src = [s["source"] for s in group]
        share = [s["missing"]["a"] / (s["missing"]["a"] + s["missing"]["b"]) for s in group]
        m = float(expit(np.log(_pooled([v / (1 - v) if v < 1 else 1e12 for v in share], src))))
        c = _pooled([s["missing"]["a"] + s["missing"]["b"] for s in group], src)
        return {"alpha": _pooled([s["alpha"] for s in group], src), "missing": {"a": m * c, "b": (1 - m) * c}}

    out = {"*": med(sums) if sums else {"alpha": 1.0, "missing": {"a": 0.5, "b": 50.0}}}
    for d in sorted({s["dataset"] for s in sums}):
        out[d] = med([s for s in sums if s["dataset"] == d])
    return out


def wrong_for(doc: dict, dataset: str) -> dict:
    return doc["wrong"].get(dataset, doc["wrong"]["*"])


def _anchors(records: pd.DataFrame, skip: set) -> dict:
    """Published cells per (policy, dataset) outside `skip` (pairs with samples)."""
    out: dict = {}
    use = records[records["method"].isin(["cot", "majority"]) & (records["policy"] != "unstated")]
    for (policy, dataset), mine in use.groupby(["policy", "dataset"], sort=True):
        if (policy, dataset) in skip:
            continue
        a: dict = {"pass1": [], "cot": [], "majority": []}
        for r in cells(mine, policy, dataset, "cot").itertuples(index=False):
            a["cot"].append(float(r.accuracy))
        for r in cells(mine, policy, dataset, "majority").itertuples(index=False):
            n = _n(r.n)
            if n == 1:
                a["pass1"].append(float(r.accuracy))
            else:
                a["majority"].append((n or PLATEAU_N, float(r.accuracy)))
        out[(policy, dataset)] = a
    return out


def _verifier_from_samples(sums: list[dict]) -> dict:
    """Per "verifier:aggregation": the median of the sets' separations (the set whose delta is
    the median gives the score scale)."""
    by: dict = {}
    for s in sums:
        for name, sc in s["scores"].items():
            by.setdefault(name, []).append(sc)
    out = {}
    for name, group in sorted(by.items()):
        order = np.argsort([g["delta"] for g in group])
        mid = dict(group[int(order[len(order) // 2])])
        for k in ("delta", "sigma_correct", "sigma_wrong", "u_sd"):
            mid[k] = float(np.median([g[k] for g in group]))
        out[name] = {**mid, "from": "samples", "sets": len(group)}
    return out


def _offset(sums: list[dict], records: pd.DataFrame) -> tuple[float, float, int]:
    """logit(pass@1) - logit(greedy CoT) over the sets whose own profile measured CoT (a CoT
    cell of another source ran under other settings: R1's published 97.3% on MATH-500 against
    its 4,000-token art_of_tts samples at 83%)."""
    d = []
    for s in sums:
        own = records if "profile" not in records else records[records["profile"] == s["source"]]
        c = cells(own, s["policy"], s["dataset"], "cot")
        c = c[c["n"].isna() | (c["n"] == 1)]
        if len(c):
            d.append(_lg(s["mu"]) - _lg(float(c["accuracy"].mean())))
    if not d:
        return 0.0, 1.0, 0
    return float(np.mean(d)), float(np.std(d, ddof=1)) if len(d) > 1 else 1.0, len(d)


def fit_transfer(
    entries: list[dict], records: pd.DataFrame, residuals: bool = True, anchors: bool = True
) -> dict:
    """The transfer document from the calibrated sets' entries (planner.predict.scalingfit) and
    the profile records (published cells of policies without samples; their fixed-N rows only:
    an early-stopping or extrapolated row is not a cell)."""
    records = static_rows(records)
    sums = [summary(e) for e in entries]
    prior = [s for s in sums if s["k"] >= PRIOR_MIN_K]  # few samples: alpha, kappa barely identified
    kappa0 = _pooled([s["kappa"] for s in prior], [s["source"] for s in prior]) if prior else 2.0
    offset, offset_sd, n_offset = _offset(sums, records)
    doc: dict = {
        "kappa": kappa0,
        "offset": offset,
        "offset_sd": offset_sd,
        "offset_sets": n_offset,
        "wrong": _wrong_defaults(prior),
        "plateau_n": PLATEAU_N,
    }
    skip = {(s["policy"], s["dataset"]) for s in sums}
    fitted = {}
    for key, a in (_anchors(records, skip) if anchors else {}).items():
        if _count(a):
            fitted[key] = fit_success(a, wrong_for(doc, key[1]), kappa0, offset, offset_sd)
    doc["policies"] = [{"policy": p, "dataset": d, **v} for (p, d), v in sorted(fitted.items())]
    verifiers = _verifier_from_samples(sums)
    pub = _published_deltas(records, fitted, doc, set(v.rsplit(":", 1)[0] for v in verifiers))
    doc["verifiers"] = verifiers
    doc["published_verifiers"] = {
        prm: {
            "delta": float(np.median([c["delta"] for c in cs])),
            "cells": len(cs),
            "spread": float(np.std([c["delta"] for c in cs])),
            "policies": sorted({c["policy"] for c in cs}),
        }
        for prm, cs in sorted(pub.items())
    }
    doc["trees"] = _trees(sums, records, fitted, doc)
    doc["_cells"] = pub
    doc["half_width"] = _residual_width(entries, records, doc) if residuals else None
    del doc["_cells"]
    return doc


def _published_deltas(records: pd.DataFrame, fitted: dict, doc: dict, measured: set) -> dict:
    """Per verifier without samples: delta of each published Best-of-N (max) cell of an anchored policy."""
    bon = records[
        (records["method"] == "best_of_n")
        & records["n"].notna()
        & records["policy"].isin({p for p, _ in fitted})
        & ~records["prm"].isin(measured)
        & records["selection"].isin(("max", "none", "unstated"))
    ]  # the rows the loop reads (a per-row filter over every sampled row cost seconds)
    out: dict = {}
    for r in bon.itertuples(index=False):
        key = (r.policy, r.dataset)
        if key not in fitted:
            continue
        f = fitted[key]
        wrong = wrong_for(doc, r.dataset)
        dist = beta(f["mu"], f["kappa"])
        d = _solve_delta(float(r.accuracy), dist, wrong["missing"], int(r.n))
        out.setdefault(str(r.prm), []).append(
            {
                "policy": r.policy,
                "delta": d,
                "dist": dist,
                "missing": wrong["missing"],
                "n": int(r.n),
                "accuracy": float(r.accuracy),
            }
        )
    return out


def verifier_scores(doc: dict, prm: str, aggregation: str) -> dict | None:
    """Score model of a verifier for a policy without samples, None when nothing measured it."""
    name = f"{prm}:{aggregation}"
    if name in doc["verifiers"]:
        return doc["verifiers"][name]
    pub = doc["published_verifiers"].get(prm)
    return None if pub is None else published_scores(pub["delta"])


def _trees(sums: list[dict], records: pd.DataFrame, fitted: dict, doc: dict) -> dict:
    """Per "method:verifier": shift and spread on the logit scale against Best-of-N."""
    by: dict = {}
    for s in sums:
        for t in s["tree"]:
            cfg = [tuple(c) for c in t.get("measured", [["*", "*"]])]
            by.setdefault(f"{t['method']}:{t['prm']}", []).append(
                (t["shift"], t["spread"], t["n_measured"], cfg, t.get("slope", 0.0))
            )
    tree = records[records["method"].isin(TREE_METHODS) & records["n"].notna()]
    for r in tree.itertuples(index=False):
        key = (r.policy, r.dataset)
        sc = verifier_scores(doc, str(r.prm), str(r.aggregation)) if key in fitted else None
        if sc is None:
            continue
        f = fitted[key]
        bon = _bon_max(beta(f["mu"], f["kappa"]), wrong_for(doc, r.dataset)["missing"], sc, int(r.n))
        own = f"{r.prm}:{r.aggregation}" in doc["verifiers"]  # else a published verifier: any configuration
        cfg = [(str(r.aggregation), str(r.selection))] if own else [("*", "*")]
        by.setdefault(f"{r.method}:{r.prm}", []).append((_lg(r.accuracy) - _lg(bon), 0.0, [int(r.n)], cfg, 0.0))
    out = {}
    for name, group in sorted(by.items()):
        shifts = np.array([g[0] for g in group])
        out[name] = {
            "shift": float(shifts.mean()),
            "slope": float(np.mean([g[4] for g in group])),  # each source's line (scalingfit.tree_fit)
            "spread": _pooled_spread(shifts, [g[1] for g in group], ddof=0),
            "sources": len(group),
            "n_measured": sorted({n for g in group for n in g[2]}),
            "measured": [list(c) for c in sorted({c for g in group for c in g[3]})],  # ["*", "*"]: any
        }
    return out


# ---------------------------------------------------------------- held-out transfer error


def _residual_width(entries: list[dict], records: pd.DataFrame, doc: dict) -> dict:
    """80% quantile of |logit(measured) - logit(transferred)| over held-out whole policies."""
    res = []
    for held in sorted({e["policy"] for e in entries}):
        rest = [e for e in entries if e["policy"] != held]
        mine = [(e, cells(records, held, e["dataset"], "cot")) for e in entries if e["policy"] == held]
        anchored = [(e, c) for e, c in mine if not c.empty]  # mu from the set's own CoT cell
        if not rest or not anchored:
            continue  # nothing to predict it from, or no CoT cell to anchor it: no refit
        sub = fit_transfer(rest, records[records["policy"] != held], residuals=False, anchors=False)
        for e, c in anchored:
            mu = float(expit(_lg(float(c["accuracy"].mean())) + sub["offset"]))
            model = TransferModel(sub, e["dataset"], mu, sub["kappa"])
            for method in ("majority", "best_of_n", *TREE_METHODS):
                for r in cells(records, held, e["dataset"], method).itertuples(index=False):
                    n = _n(r.n)
                    if n is None:
                        continue
                    got = model.predict(method, str(r.prm), str(r.aggregation), str(r.selection), "all", n)
                    if got is not None:
                        res.append(abs(_lg(r.accuracy) - _lg(got)))
    cellwise = doc.get("_cells", {})  # published policies: verifiers fitted without them
    for cs in cellwise.values():
        for c in cs:
            others = [o["delta"] for o in cs if o["policy"] != c["policy"]]
            if not others:
                continue
            sc = published_scores(float(np.median(others)))
            got = _bon_max(c["dist"], c["missing"], sc, c["n"])
            res.append(abs(_lg(c["accuracy"]) - _lg(got)))
    if not res:
        return {"logit": 1.0, "cells": 0}
    return {"logit": float(np.quantile(res, LEVEL)), "cells": len(res)}


# ---------------------------------------------------------------- predictions


class TransferModel:
    """The curves of one (policy, dataset) without samples: majority, Best-of-N (max, weighted
    vote), beam/DVTS and CoT from mu, kappa and the document's shared parameters."""

    def __init__(self, doc: dict, dataset: str, mu: float, kappa: float) -> None:
        from planner.predict.scaling import ProblemModel

        self.doc, self.mu, self.kappa = doc, mu, kappa
        wrong = wrong_for(doc, dataset)
        self.params = {
            "success": beta(mu, kappa),
            "missing": wrong["missing"],
            "alpha": wrong["alpha"],
            "scores": {},
        }
        self.model = ProblemModel(self.params, bins=bins_table(mu, kappa))
        self._cache: dict = {}
        self._pooled: dict = {}  # method -> pooled_tree (the same for every verifier without cells)

    def _scores(self, prm: str, aggregation: str) -> str | None:
        name = f"{prm}:{aggregation}"
        if name not in self.params["scores"]:
            sc = verifier_scores(self.doc, prm, aggregation)  # aggregation "*": published cells
            if sc is None:
                return None
            self.params["scores"][name] = sc
        return name

    def predict(
        self, method: str, prm: str, aggregation: str, selection: str, b: str, n: int
    ) -> float | None:
        """Expected accuracy, None where the transfer has nothing to say (a verifier nothing
        measured, a tree method without a correction, weighted vote above N = 64)."""
        value = self.curve(method, prm, aggregation, selection, b, np.array([int(n)]))[0]
        return None if np.isnan(value) else float(value)

    def curve(self, method: str, prm: str, aggregation: str, selection: str, b: str, ns) -> np.ndarray:
        """`predict` at several N at once (NaN where it returns None); cached per curve."""
        ns = np.asarray(ns, dtype=np.int64)
        if method != "cot" and f"{prm}:{aggregation}" not in self.doc["verifiers"]:
            aggregation = "*"  # a verifier known from published cells: one curve for every aggregation
        known = self._cache.setdefault((method, prm, aggregation, selection, b), {})
        asked = ns.tolist()
        try:  # every N asked before (a repeated curve): no set to build
            return np.array([known[n] for n in asked], dtype=float)
        except KeyError:
            pass
        todo = sorted({n for n in asked if n not in known})
        if todo:
            known.update(zip(todo, self._curve(method, prm, aggregation, selection, b, todo), strict=True))
        return np.array([known[n] for n in asked], dtype=float)

    def _curve(self, method, prm, aggregation, selection, b, ns: list[int]) -> list[float]:
        nan = [math.nan] * len(ns)
        if b != "all" and b not in self.model.bins:
            return nan
        bin_ = None if b == "all" else b
        if method == "cot":
            dist = (
                self.params["success"]
                if bin_ is None
                else _posterior_mix(self.params["success"], self.model.bins[bin_])
            )
            return [float(expit(_lg(_mean_p(dist)) - self.doc["offset"]))] * len(ns)
        if method == "majority" or max(ns) == 1:  # one seeded draw per N: the same whatever else is asked
            return [
                self.model.predict(method="majority", n=n, bin=bin_, interval=False, sims=3000)["accuracy"]
                for n in ns
            ]
        if method in TREE_METHODS:
            corr = self.tree(method, prm)
            ok = corr is not None and any(
                c in (["*", "*"], [aggregation, selection]) for c in corr["measured"]
            )
            if not ok:
                return nan  # no tree cell of this verifier, or only at other aggregations / selections
            bon = self.curve("best_of_n", prm, aggregation, selection, b, ns)
            shift = tree_shift(corr, ns)
            return [x if math.isnan(x) else float(expit(_lg(x) + d)) for x, d in zip(bon, shift, strict=True)]
        name = self._scores(prm, aggregation)
        if name is None:
            return nan
        ok = [n for n in ns if selection != "vote" or n <= 64]
        r = self.model.predict_many(
            method="best_of_n",
            ns=ok,
            verifier=prm,
            aggregation=aggregation,
            selection=selection,
            bin=bin_,
            sims=VOTE_SIMS if selection == "vote" else 3000,
        )
        got = {n: x["accuracy"] for n, x in zip(ok, r, strict=True)}
        return [got.get(n, math.nan) for n in ns]

    def spread(self, method: str, prm: str) -> float:
        """Extra logit spread of a row beyond the transfer's held-out error."""
        if method == "cot":
            return self.doc["offset_sd"]
        if method in TREE_METHODS:
            corr = self.tree(method, prm)
            return 0.0 if corr is None else corr["spread"]
        return 0.0

    def tree(self, method: str, prm: str) -> dict | None:
        """The tree correction of this verifier; for a verifier without tree cells, the pooled one
        (pooled_tree), else None."""
        own = self.doc["trees"].get(f"{method}:{prm}")
        if own is not None:
            return own
        if method not in self._pooled:
            self._pooled[method] = pooled_tree(self.doc["trees"], method)
        return self._pooled[method]

    def pooled(self, method: str, prm: str) -> bool:
        """True where a tree row's correction is the pooled one (outside the calibrated range)."""
        return (
            method in TREE_METHODS
            and f"{method}:{prm}" not in self.doc["trees"]
            and self.tree(method, prm) is not None
        )


POOLED_MIN = 2  # verifiers with tree cells needed before their mean stands in for another verifier


def pooled_tree(trees: dict, method: str) -> dict | None:
    """A tree method's correction for a verifier with no tree cells of its own: the mean shift of
    the verifiers that have them (each counted once), its spread widened by their spread around
    that mean; None with fewer than POOLED_MIN such verifiers."""
    group = [t for name, t in sorted(trees.items()) if name.partition(":")[0] == method]
    if len(group) < POOLED_MIN:
        return None
    shifts = np.array([t["shift"] for t in group])
    return {
        "shift": float(shifts.mean()),
        "slope": float(np.mean([t.get("slope", 0.0) for t in group])),
        "spread": _pooled_spread(shifts, [t["spread"] for t in group], ddof=1),  # a new verifier: sample sd
        "sources": len(group),
        "n_measured": sorted({n for t in group for n in t["n_measured"]}),
        "measured": [["*", "*"]],
    }


def _pooled_spread(shifts: np.ndarray, spreads, ddof: int) -> float:
    """Logit spread of pooled tree shifts: their own spreads (root mean square) and how far they
    lie apart."""
    return math.sqrt(float(np.mean(np.square(spreads))) + float(np.var(shifts, ddof=ddof)))


def transfer_interval(doc: dict, spread, regressor_half: float | None):
    """A function accuracy (array) -> (low, high): the held-out transfer error's logit half-width, widened by
    the row's own spread (a number, or one per row) and, for a policy without published cells, the
    regressor's half-width."""
    h = (doc.get("half_width") or {}).get("logit", 1.0)
    half = np.sqrt(h**2 + np.asarray(spread, dtype=float) ** 2 + (regressor_half or 0.0) ** 2)

    def apply(acc):
        x = logit(np.clip(np.asarray(acc, dtype=float), EPS, 1 - EPS))
        return expit(x - half), expit(x + half)

    return apply
