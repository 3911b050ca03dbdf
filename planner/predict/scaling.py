"""Per-problem scaling model: expected majority / Best-of-N accuracy at any N from a few samples.

From K >= 2 recorded samples per problem of one (policy, dataset) it fits a few parameters:

  success   the per-problem success rate p ~ a mixture of 1-3 Betas, fitted by maximum likelihood
            to the Beta-binomial counts (c correct of K); a difficulty bin's p is the mix of the
            Beta posteriors of the problems in it
  missing   the share of wrong samples with no answer ~ Beta (fitted the same way)
  wrong     how wrong answers split into distinct answers: a Dirichlet process with
            concentration alpha, fitted by the Ewens sampling formula to the observed partitions
            (small alpha: one dominant wrong answer; large: every wrong answer differs) of the
            problems with at least one right sample, where the split decides a vote (problems
            never solved scatter their wrong answers more: on the CPU arith runs alpha is 10 or
            less there against 13-28 over all problems, and the vote was overpredicted)
  scores    per (verifier, aggregation): scores map to a latent normal scale through their pooled
            distribution (mid-ranks, so ties stay ties); there t = u + delta * correct + e, with
            a per-problem effect u ~ N(mu, tau) and e ~ N(0, sigma_correct or sigma_wrong).
            delta and sigma come from within-problem contrasts, so verifiers that score easy
            problems high are not mistaken for good ones

Predictions: Best-of-N with max selection by a closed form integrated by quadrature; majority and
weighted vote by seeded Monte Carlo. At N = 1 every method returns the mean of p (one sample is
its own vote and its own pick). Unanswered samples never win a vote and are dropped before max
selection. The 80% interval is for the accuracy measured on a set of new problems (as many as
were fitted, unless told): the bootstrap over problems (seeded) gives the fit's uncertainty, the
new problems' draw adds point (1 - point) / problems (see predictive_interval).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special, stats
from threadpoolctl import threadpool_limits

from planner.core.errors import UserError
from planner.core.profiles import SCORE_PREFIX
from planner.core.vocab import difficulty_from_pass1

N_MAX = 1024
METHODS = ("majority", "best_of_n")
SELECTIONS = ("max", "vote")
LEVEL = 0.8  # central interval: point -/+ Z sd
Z = float(stats.norm.ppf(0.5 + LEVEL / 2))
STICKS = 24  # wrong answers tracked one by one; the rest are all distinct
DISCRETE_MAX = 64  # a verifier with at most this many distinct scores keeps them exactly
P_NODES, M_NODES, U_NODES = 24, 6, 8  # quadrature nodes for p, the missing share, u
BON_BLOCK = 65536  # elements per (p nodes, M, U, cells) block in _bon_max (cache-sized)
LOG_BOUNDS = (math.log(0.02), math.log(2000.0))


# ---------------------------------------------------------------- input


@dataclass
class _Data:
    """One entry per problem."""

    c: np.ndarray  # correct samples
    k: np.ndarray  # samples
    missing: np.ndarray  # unanswered samples (all wrong)
    wrong_groups: list  # sizes of the groups of equal wrong answers
    scores: dict  # name -> list of (scores of answered samples, their correctness)
    bins: np.ndarray

    def take(self, idx: np.ndarray) -> _Data:
        return _Data(
            self.c[idx],
            self.k[idx],
            self.missing[idx],
            [self.wrong_groups[i] for i in idx],
            {name: [rows[i] for i in idx] for name, rows in self.scores.items()},
            self.bins[idx],
        )


def _is_missing(a) -> bool:
    return a is None or a is pd.NA or (isinstance(a, float) and math.isnan(a)) or str(a).strip() == ""


def _read(samples: pd.DataFrame, problem: str, correct: str, answer: str, bins: str | None) -> _Data:
    if not isinstance(samples, pd.DataFrame) or samples.empty:
        raise UserError("samples must be a non-empty DataFrame")
    for col in (problem, correct, answer) + ((bins,) if bins else ()):
        if col not in samples.columns:
            raise UserError(f"samples: column '{col}' is missing")
    ok = samples[correct]
    if ok.isna().any() or not ok.isin([0, 1, True, False]).all():
        raise UserError(f"samples: column '{correct}' must be True/False for every sample")
    score_cols = [c for c in samples.columns if isinstance(c, str) and c.startswith(SCORE_PREFIX)]
    for col in score_cols:
        name = col[len(SCORE_PREFIX) :]
        if ":" not in name:
            raise UserError(f"samples: score column '{col}' must be named score:<verifier>:<aggregation>")
        values = pd.to_numeric(samples[col], errors="coerce").to_numpy(dtype=float)
        bad = int((~np.isfinite(values)).sum())
        if bad:
            raise UserError(f"samples: '{col}' has no finite score for {bad} of {len(values)} samples")
    ids = samples[problem]
    if isinstance(ids.dtype, pd.CategoricalDtype):
        empty = sorted(set(ids.cat.categories) - set(ids.dropna()))
        if empty:
            raise UserError(f"samples: problem {empty[0]!r} has no samples")
    if ids.isna().any():
        raise UserError(f"samples: column '{problem}' has missing problem ids")
    c, k, miss, groups, bin_labels = [], [], [], [], []
    scores = {col[len(SCORE_PREFIX) :]: [] for col in score_cols}
    for pid, g in samples.groupby(problem, sort=True, observed=True):
        if len(g) < 2:
            raise UserError(f"k must be at least 2 samples per problem, got {len(g)} (problem {pid!r})")
        right = g[correct].astype(bool).to_numpy()
        answered = np.array([not _is_missing(a) for a in g[answer]])
        if (right & ~answered).any():
            raise UserError(f"samples: problem {pid!r} has a correct sample without an answer")
        wrong = g[answer][~right & answered].astype(str)
        c.append(int(right.sum()))
        k.append(len(g))
        miss.append(int((~answered).sum()))
        groups.append(wrong.value_counts().to_numpy())
        for col in score_cols:
            s = g[col].to_numpy(dtype=float)
            scores[col[len(SCORE_PREFIX) :]].append((s[answered], right[answered]))
        if bins:
            labels = g[bins].unique()
            if len(labels) != 1:
                raise UserError(f"samples: '{bins}' must be constant within problem {pid!r}")
            bin_labels.append(str(labels[0]))
        else:
            bin_labels.append(difficulty_from_pass1(right.mean()))
    return _Data(np.array(c), np.array(k), np.array(miss), groups, scores, np.array(bin_labels))


# ---------------------------------------------------------------- fits


def _beta_mix_nll(theta: np.ndarray, c: np.ndarray, k: np.ndarray, w: np.ndarray, j: int) -> float:
    return _beta_mix_nll_grad(theta, c, k, w, j)[0]


def _beta_mix_nll_grad(
    theta: np.ndarray, c: np.ndarray, k: np.ndarray, w: np.ndarray, j: int
) -> tuple[float, np.ndarray]:
    """Negative log likelihood of Beta-binomial counts under a j-part Beta mixture and its
    gradient in theta = (log weights of parts 2..j against part 1, log a, log b): with part
    responsibilities r, d/dv_m = r_m - pi_m and d/dlog a_m = r_m a_m (psi(c + a) - psi(k + a + b)
    - psi(a) + psi(a + b)), b alike with k - c (finite differences cost 2j more likelihoods)."""
    logw = np.concatenate([[0.0], theta[: j - 1]])
    logw = logw - special.logsumexp(logw)
    a, b = np.exp(theta[j - 1 : 2 * j - 1]), np.exp(theta[2 * j - 1 :])
    ca, kb = c[:, None] + a, (k - c)[:, None] + b
    ll = logw + special.betaln(ca, kb) - special.betaln(a, b)
    total = special.logsumexp(ll, axis=1)
    r = w[:, None] * np.exp(ll - total[:, None])  # weighted responsibilities
    both = special.digamma(ca + kb) - special.digamma(a + b)
    grad_a = a * np.sum(r * (special.digamma(ca) - special.digamma(a) - both), axis=0)
    grad_b = b * np.sum(r * (special.digamma(kb) - special.digamma(b) - both), axis=0)
    grad_v = (r.sum(axis=0) - w.sum() * np.exp(logw))[1:]
    return -float(np.sum(w * total)), -np.concatenate([grad_v, grad_a, grad_b])


def _fit_beta_mix(c, k, components=None, start=None) -> dict:
    """Mixture of Betas for p by maximum likelihood on Beta-binomial counts; 1-3 parts by BIC."""
    pairs, counts = np.unique(np.stack([c, k], axis=1), axis=0, return_counts=True)
    cc, kk, w = pairs[:, 0].astype(float), pairs[:, 1].astype(float), counts.astype(float)
    best = None
    for j in [components] if components else [1, 2, 3]:
        starts = [start] if start is not None else _starts(j, cc.sum() / kk.sum())
        bounds = [(-8, 8)] * (j - 1) + [LOG_BOUNDS] * (2 * j)
        for x0 in starts:
            res = optimize.minimize(
                _beta_mix_nll_grad, x0, args=(cc, kk, w, j), jac=True, method="L-BFGS-B", bounds=bounds
            )
            bic = 2 * res.fun + (3 * j - 1) * math.log(w.sum())
            if best is None or bic < best[0] - 1e-9:
                best = (bic, j, res.x)
    _, j, x = best
    logw = np.concatenate([[0.0], x[: j - 1]])
    weights = np.exp(logw - special.logsumexp(logw))
    return {
        "weights": weights.tolist(),
        "a": np.exp(x[j - 1 : 2 * j - 1]).tolist(),
        "b": np.exp(x[2 * j - 1 :]).tolist(),
        "theta": x.tolist(),
    }


def _starts(j: int, mean: float) -> list[np.ndarray]:
    mean = min(max(mean, 0.02), 0.98)
    if j == 1:
        return [np.log([mean * 2, (1 - mean) * 2]), np.log([mean * 0.5, (1 - mean) * 0.5])]
    out = []
    for means in ([0.05, 0.8], [0.2, 0.9], [0.02, 0.5, 0.95], [0.1, 0.4, 0.8]):
        if len(means) != j:
            continue
        m = np.array(means)
        out.append(np.concatenate([np.zeros(j - 1), np.log(m * 4), np.log((1 - m) * 4)]))
    return out


def _voting(data: _Data) -> list:
    """Wrong-answer groups of the problems with a right sample (those where the split of wrong
    answers decides a vote); all problems' when those hold no two wrong answers."""
    right = [g for g, c in zip(data.wrong_groups, data.c, strict=True) if c > 0]
    return right if any(g.sum() >= 2 for g in right) else data.wrong_groups


def _fit_alpha(groups: list) -> float:
    """Dirichlet-process concentration of wrong answers, by the Ewens sampling formula."""
    parts = [g for g in groups if g.sum() >= 2]
    if not parts:
        return 1.0
    n = np.array([g.sum() for g in parts], dtype=float)
    kinds = np.array([len(g) for g in parts], dtype=float)

    def nll(log_a: float) -> float:
        a = math.exp(log_a)
        return -float(np.sum(kinds * log_a + special.gammaln(a) - special.gammaln(a + n)))

    return float(math.exp(optimize.minimize_scalar(nll, bounds=(-6, 8), method="bounded").x))


def _fit_scores(rows: list) -> dict:
    """Latent-normal score model of one (verifier, aggregation); see the module docstring."""
    pooled = np.concatenate([s for s, _ in rows]) if rows else np.zeros(0)
    if len(pooled) == 0:
        pooled = np.zeros(1)
    uniq = np.unique(pooled)
    if len(uniq) <= DISCRETE_MAX:
        values = uniq
        cum = np.searchsorted(np.sort(pooled), uniq, side="right") / len(pooled)
    else:
        cum = np.linspace(0.0, 1.0, 2 * DISCRETE_MAX + 1)
        values = np.quantile(pooled, cum)
    ranks = stats.rankdata(pooled)  # average ranks: tied scores share one latent value
    latent = stats.norm.ppf((ranks - 0.5) / len(pooled))
    t, pos = [], 0
    for s, _ in rows:
        t.append(latent[pos : pos + len(s)])
        pos += len(s)
    # delta: within-problem difference of class means, weighted by n_c n_w / (n_c + n_w)
    num = den = 0.0
    for ti, (_, ok) in zip(t, rows, strict=True):
        nc, nw = ok.sum(), (~ok).sum()
        if nc and nw:
            h = nc * nw / (nc + nw)
            num += h * (ti[ok].mean() - ti[~ok].mean())
            den += h
    delta = num / den if den else 0.0
    # sigma per class: pooled within-problem, within-class spread
    sig = {}
    for cls in (True, False):
        ss = df = 0.0
        for ti, (_, ok) in zip(t, rows, strict=True):
            x = ti[ok == cls]
            if len(x) >= 2:
                ss += float(((x - x.mean()) ** 2).sum())
                df += len(x) - 1
        sig[cls] = math.sqrt(ss / df) if df else None
    s_c = sig[True] if sig[True] is not None else sig[False]
    s_w = sig[False] if sig[False] is not None else sig[True]
    s_c, s_w = max(s_c or 0.0, 1e-3), max(s_w or 0.0, 1e-3)
    # problem effect u: spread of problem means beyond what the within-problem noise explains
    u, noise = [], []
    for ti, (_, ok) in zip(t, rows, strict=True):
        if len(ti):
            u.append(float(np.mean(ti - delta * ok)))
            noise.append(float(np.sum(np.where(ok, s_c**2, s_w**2))) / len(ti) ** 2)
    mu = float(np.mean(u)) if u else 0.0
    tau = math.sqrt(max(float(np.var(u)) - float(np.mean(noise)), 0.0)) if len(u) > 1 else 0.0
    return {
        "delta": float(delta),
        "sigma_correct": s_c,
        "sigma_wrong": s_w,
        "u_mean": mu,
        "u_sd": tau,
        "discrete": bool(len(uniq) <= DISCRETE_MAX),
        "values": values.tolist(),
        "cum": cum.tolist(),
        "n_mixed": int(sum(1 for _, ok in rows if ok.any() and (~ok).any())),
    }


def _fit_params(data: _Data, components=None, start=None) -> dict:
    wrong = data.k - data.c
    has_wrong = wrong > 0
    if has_wrong.any():
        missing = _fit_beta_mix(data.missing[has_wrong], wrong[has_wrong], components=1)
    else:
        missing = {"weights": [1.0], "a": [0.5], "b": [50.0]}
    return {
        "success": _fit_beta_mix(data.c, data.k, components, start),
        "missing": {"a": missing["a"][0], "b": missing["b"][0]},
        "alpha": _fit_alpha(_voting(data)),
        "scores": {name: _fit_scores(rows) for name, rows in data.scores.items()},
    }


# ---------------------------------------------------------------- p distributions


def _posterior_mix(success: dict, table: list) -> dict:
    """Mixture of the Beta posteriors of problems with counts [[c, K, n_problems], ...]."""
    w0, a0, b0 = (np.asarray(success[x], dtype=float) for x in ("weights", "a", "b"))
    weights, a, b = [], [], []
    total = sum(n for _, _, n in table)
    for c, k, n in table:
        logw = np.log(w0) + special.betaln(c + a0, k - c + b0) - special.betaln(a0, b0)
        post = np.exp(logw - special.logsumexp(logw))
        weights += list(post * n / total)
        a += list(a0 + c)
        b += list(b0 + k - c)
    return {"weights": weights, "a": a, "b": b}


def _mean_p(dist: dict) -> float:
    w, a, b = (np.asarray(dist[x], dtype=float) for x in ("weights", "a", "b"))
    return float(np.sum(w * a / (a + b)))


def _beta_nodes(a: float, b: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Jacobi nodes and weights (summing to 1) for the Beta(a, b) distribution.

    Above a + b = 500 (sd under 0.023) a and b are scaled down to that sum, keeping the mean
    exact: scipy's Jacobi weights overflow near a + b = 1000."""
    scale = min(1.0, 500.0 / (a + b))
    y, w = special.roots_jacobi(n, b * scale - 1.0, a * scale - 1.0)
    return (1.0 + y) / 2.0, w / w.sum()


# ---------------------------------------------------------------- predictions


def _bon_max(dist: dict, missing: dict, sc: dict, n):
    """Best-of-N, max selection: sum over score cells v of P(top cell is v) * P(pick correct | v).
    n: one N (returns a float) or an array of them (returns an array)."""
    ns = np.atleast_1d(np.asarray(n, dtype=float))
    if sc["discrete"]:
        z = stats.norm.ppf(np.asarray(sc["cum"][:-1]))
    else:
        z = np.linspace(-7.0, 7.0, 281)
    z = np.concatenate([[-np.inf], z, [np.inf]])
    xu, wu = np.polynomial.hermite_e.hermegauss(U_NODES if sc["u_sd"] > 0 else 1)
    u = sc["u_mean"] + sc["u_sd"] * xu
    wu = wu / wu.sum()
    cdf_c = stats.norm.cdf((z[None, :] - u[:, None] - sc["delta"]) / sc["sigma_correct"])
    cdf_w = stats.norm.cdf((z[None, :] - u[:, None]) / sc["sigma_wrong"])
    qc, qw = np.diff(cdf_c, axis=1), np.diff(cdf_w, axis=1)  # (U, cells)
    m, wm = _beta_nodes(missing["a"], missing["b"], M_NODES)
    order = np.argsort(ns)
    total = np.zeros(len(ns))
    # Blocks of p nodes, buffers reused (about BON_BLOCK elements: they stay in cache); the same
    # arithmetic per element as one (P, M, U, cells) pass.
    block = int(np.clip(BON_BLOCK // (len(m) * len(u) * qc.shape[1]), 1, P_NODES))
    shape = (block, len(m), len(u), qc.shape[1])
    pw, pc, g, share, diff = (np.empty(shape) for _ in range(5))
    acc = np.empty((P_NODES, len(m), len(u), len(ns)))
    for wj, aj, bj in zip(dist["weights"], dist["a"], dist["b"], strict=True):
        if wj < 1e-9:
            continue  # a posterior part with no weight (bins mix one part per count pattern)
        p_all, wp = _beta_nodes(aj, bj, P_NODES)
        for start in range(0, P_NODES, block):
            p = p_all[start : start + block]
            rows = slice(0, len(p))
            np.multiply(((1 - p)[:, None] * (1 - m)[None, :])[:, :, None, None], qw[None, None], out=pw[rows])
            np.multiply(p[:, None, None, None], qc[None, None], out=pc[rows])
            floor = ((1 - p)[:, None] * m[None, :])[:, :, None, None]  # unanswered: below every score
            mass = np.add(pc[rows], pw[rows], out=diff[rows])
            np.cumsum(mass, axis=-1, out=g[rows])
            g[rows] += floor
            share[rows] = 0.0
            np.divide(pc[rows], mass, out=share[rows], where=mass > 0)
            np.clip(g[rows], 0, 1, out=g[rows])
            _bon_powers(
                g[rows], np.clip(floor, 0, 1), share[rows], diff[rows], ns, order, acc[start : start + len(p)]
            )
        for i in order:
            total[i] += wj * np.einsum("pmu,p,m,u->", acc[..., i], wp, wm, wu)
    return float(total[0]) if np.ndim(n) == 0 else total


def _bon_powers(g, floor, share, diff, ns, order, out) -> None:
    """out[..., i] = sum over cells of (g**n_i - (g one cell down)**n_i) * share, where the
    cell below the first holds `floor` (the unanswered share): P(top cell is v) times P(pick
    correct | v). Summed by parts, sum_c g_c**n (share_c - share_c+1) - floor**n share_0, so each
    N costs one power (a square when N doubles, the plan's axis) and one dot product per row
    of cells; `diff` holds the weights."""
    np.subtract(share[..., :-1], share[..., 1:], out=diff[..., :-1])
    diff[..., -1] = share[..., -1]
    weights, first = diff[..., :, None], share[..., 0]
    f = np.broadcast_to(floor, g.shape[:-1] + (1,))
    last, gk, fk = None, None, None
    for i in order:
        k = ns[i]
        if last is not None and k == 2 * last:  # N doubling: square
            np.multiply(gk, gk, out=gk)
            fk = fk * fk
        elif k != last:
            gk, fk = g**k, f**k
        last = k
        np.matmul(gk[..., None, :], weights, out=out[..., i, None, None])
        out[..., i] -= fk[..., 0] * first


def _draw_p(dist: dict, sims: int, rng) -> np.ndarray:
    """Stratified draws of p from a Beta mixture (fewer Monte Carlo wobbles than plain draws)."""
    w = np.asarray(dist["weights"], dtype=float)
    counts = np.floor(w * sims).astype(int)
    counts[np.argsort(-(w * sims - counts))[: sims - counts.sum()]] += 1
    out = []
    for cnt, a, b in zip(counts, dist["a"], dist["b"], strict=True):
        if cnt:
            q = (np.arange(cnt) + rng.random(cnt)) / cnt
            out.append(stats.beta.ppf(q, a, b))
    return np.concatenate(out)


def _category_probs(p: np.ndarray, params: dict, rng) -> np.ndarray:
    """Per simulated problem: [correct, unanswered, wrong answer 1..STICKS, all-distinct rest]."""
    sims = len(p)
    m = rng.beta(params["missing"]["a"], params["missing"]["b"], sims)
    v = rng.beta(1.0, params["alpha"], (sims, STICKS))
    left = np.cumprod(1 - v, axis=1)
    sticks = v * np.concatenate([np.ones((sims, 1)), left[:, :-1]], axis=1)
    wrong = ((1 - p) * (1 - m))[:, None]
    probs = np.concatenate([p[:, None], ((1 - p) * m)[:, None], wrong * sticks, wrong * left[:, -1:]], axis=1)
    return np.clip(probs, 0, None) / np.clip(probs, 0, None).sum(axis=1, keepdims=True)


def _majority(p: np.ndarray, params: dict, n: int, rng) -> float:
    return _majority_counts(rng.multinomial(n, _category_probs(p, params, rng)))


def _majority_counts(counts: np.ndarray) -> float:
    return float(np.mean(majority_wins(counts)))


def majority_wins(counts: np.ndarray) -> np.ndarray:
    """Per simulated problem (rows of _category_probs counts): the chance majority picks the right
    answer (ties split evenly among the tied answers)."""
    c, groups, rest = counts[:, 0], counts[:, 2:-1], counts[:, -1]
    top_wrong = np.maximum(groups.max(axis=1), (rest > 0).astype(int))
    ties = (groups == c[:, None]).sum(axis=1) + np.where(c == 1, rest, 0)
    return np.where((c > 0) & (c >= top_wrong), 1.0 / (1 + ties), 0.0)


def _to_score(t: np.ndarray, sc: dict) -> np.ndarray:
    q = stats.norm.cdf(t)
    values, cum = np.asarray(sc["values"]), np.asarray(sc["cum"])
    if sc["discrete"]:
        return values[np.minimum(np.searchsorted(cum, q, side="left"), len(values) - 1)]
    return np.interp(q, cum, values)


def _weighted_vote(p: np.ndarray, params: dict, sc: dict, n: int, rng) -> float:
    sims = len(p)
    counts = rng.multinomial(n, _category_probs(p, params, rng))
    width = counts.shape[1]
    cat = np.repeat(np.tile(np.arange(width), sims), counts.ravel())
    sim = np.repeat(np.arange(sims), n)
    right = cat == 0
    u = sc["u_mean"] + sc["u_sd"] * rng.standard_normal(sims)
    sigma = np.where(right, sc["sigma_correct"], sc["sigma_wrong"])
    score = _to_score(u[sim] + sc["delta"] * right + sigma * rng.standard_normal(len(cat)), sc)
    score = np.round(score, 9)
    grouped = (cat != 1) & (cat != width - 1)  # unanswered never vote; the rest are all distinct
    sums = np.bincount(sim[grouped] * width + cat[grouped], score[grouped], sims * width)
    sums = np.round(sums.reshape(sims, width), 9)
    present = counts > 0
    present[:, 1] = present[:, -1] = False
    sums = np.where(present, sums, -np.inf)
    single = np.full(sims, -np.inf)
    alone = cat == width - 1
    np.maximum.at(single, sim[alone], score[alone])
    top = np.maximum(sums.max(axis=1), single)
    tied = (sums == top[:, None]).sum(axis=1)
    tied += np.bincount(sim[alone], score[alone] == top[sim[alone]], sims).astype(int)
    win = present[:, 0] & (sums[:, 0] == top)
    return float(np.mean(np.where(win, 1.0 / np.maximum(tied, 1), 0.0)))


def _sims(n: int, method: str, selection: str | None) -> int:
    if method == "best_of_n" and selection == "vote":
        return int(np.clip(2**21 // n, 1000, 20000))
    return 20000


def _accuracy(params: dict, dist: dict, method: str, n: int, name, selection, sims: int, seed) -> float:
    if n == 1:
        return _mean_p(dist)  # one sample: its own vote and its own pick
    if method == "best_of_n" and selection == "max":
        return _bon_max(dist, params["missing"], params["scores"][name], n)
    rng = np.random.default_rng(seed)
    p = _draw_p(dist, sims, rng)
    if method == "majority":
        return _majority(p, params, n, rng)
    return _weighted_vote(p, params, params["scores"][name], n, rng)


# ---------------------------------------------------------------- intervals


def predictive_interval(point: float, reps, problems: int) -> dict:
    """The LEVEL interval of the accuracy measured on `problems` new problems, from two parts:
    the fit's own uncertainty (sd of the bootstrap refits over problems) and the new problems'
    draw: each new problem is right with probability `point` on the whole, so their mean has
    variance point (1 - point) / problems. Normal, clipped to [0, 1]; NaN without refits."""
    reps = np.asarray(reps, dtype=float)
    out = {"accuracy": float(point), "low": math.nan, "high": math.nan, "level": LEVEL}
    out.update(sd_fit=math.nan, problems=int(problems))
    if len(reps) < 2:
        return out
    sd_fit = float(np.std(reps, ddof=1))
    half = Z * math.sqrt(sd_fit**2 + point * (1 - point) / problems)
    out.update(low=max(0.0, point - half), high=min(1.0, point + half), sd_fit=sd_fit)
    return out


# ---------------------------------------------------------------- the model


class ProblemModel:
    """Fitted per-problem scaling model of one (policy, dataset). Build with ProblemModel.fit."""

    def __init__(
        self,
        params: dict,
        *,
        boot: list | None = None,
        bins: dict | None = None,
        n_max: int = N_MAX,
        seed: int = 0,
    ) -> None:
        self.params = params
        self.boot = boot or []
        self.bins = bins or {}
        self.n_max = n_max
        self.seed = seed

    @classmethod
    def fit(
        cls,
        samples: pd.DataFrame,
        *,
        problem: str = "problem_id",
        correct: str = "correct",
        answer: str = "answer",
        bins: str | None = None,
        components: int | None = None,
        n_boot: int = 100,
        seed: int = 0,
        n_max: int = N_MAX,
    ) -> ProblemModel:
        """Fit from one row per sample: problem id, correct (bool), answer (normalised key; None,
        NaN or "" = unanswered) and one column per verifier score named score:<verifier>:<aggregation>.

        bins: a column with each problem's difficulty bin; default easy/medium/hard by pass@1.
        components: Betas in the mixture for p (default 1-3 by BIC). n_boot: bootstrap refits.
        """
        if components is not None and components not in (1, 2, 3):
            raise UserError(f"components must be 1, 2 or 3, got {components!r}")
        if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 0:
            raise UserError(f"n_boot must be a whole number >= 0, got {n_boot!r}")
        if isinstance(n_max, bool) or not isinstance(n_max, int) or n_max < 1:
            raise UserError(f"n_max must be a whole number >= 1, got {n_max!r}")
        data = _read(samples, problem, correct, answer, bins)
        # small optimisations: BLAS threads only contend (7 s instead of 0.45 s on a busy 2-core machine)
        with threadpool_limits(1):
            return cls._fit(data, components, n_boot, seed, n_max)

    @classmethod
    def _fit(cls, data: _Data, components: int | None, n_boot: int, seed: int, n_max: int) -> ProblemModel:
        params = _fit_params(data, components)
        table = {}
        for label in sorted(set(data.bins)):
            sel = data.bins == label
            pairs, cnt = np.unique(np.stack([data.c[sel], data.k[sel]], 1), axis=0, return_counts=True)
            table[label] = [[int(c), int(k), int(n)] for (c, k), n in zip(pairs, cnt, strict=True)]
        rng = np.random.default_rng(seed)
        j = len(params["success"]["weights"])
        boot = []
        for _ in range(n_boot):  # refit on problems drawn with replacement; same number of Betas
            idx = rng.integers(0, len(data.c), len(data.c))
            boot.append(_fit_params(data.take(idx), j, np.asarray(params["success"]["theta"])))
        return cls(params, boot=boot, bins=table, n_max=n_max, seed=seed)

    @property
    def scores(self) -> list[tuple[str, str]]:
        """(verifier, aggregation) pairs the model can predict Best-of-N for."""
        return [tuple(name.rsplit(":", 1)) for name in self.params["scores"]]

    def predict(
        self,
        *,
        method: str,
        n: int,
        verifier: str | None = None,
        aggregation: str | None = None,
        selection: str | None = None,
        bin: str | None = None,
        interval: bool = True,
        sims: int | None = None,
        boot_sims: int | None = None,
        problems: int | None = None,
    ) -> dict:
        """Expected accuracy (0-1) of `method` at N = n, averaged over problems (or one bin's).

        Returns {"accuracy", "low", "high", "level", "sd_fit", "problems"}: low/high bound the
        accuracy measured on `problems` new problems of the same kind (default: as many as were
        fitted, or as many as the bin held), see `predictive_interval`; NaN without bootstrap
        refits or with interval=False. sims / boot_sims: Monte Carlo draws of the point / of each
        bootstrap replicate (default 20,000 / a tenth).
        """
        if method not in METHODS:
            raise UserError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= self.n_max:
            raise UserError(f"n must be a whole number from 1 to n_max={self.n_max}, got {n!r}")
        n = int(n)
        name = None
        if method == "majority":
            if verifier is not None or aggregation is not None or selection not in (None, "vote"):
                raise UserError("majority takes no verifier, aggregation or selection")
        else:
            if selection not in SELECTIONS:
                raise UserError(f"selection must be one of {', '.join(SELECTIONS)}, got {selection!r}")
            name = f"{verifier}:{aggregation}"
            if name not in self.params["scores"]:
                known = ", ".join(f"{v}/{a}" for v, a in self.scores) or "none"
                raise UserError(
                    f"verifier/aggregation {verifier}/{aggregation} was not fitted (fitted: {known})"
                )
        if bin is not None and bin not in self.bins:
            raise UserError(f"bin must be one of {', '.join(self.bins)}, got {bin!r}")
        problems = self._problems(problems, bin)
        code = (METHODS.index(method), SELECTIONS.index(selection) if selection else 0)
        for value, label in ((sims, "sims"), (boot_sims, "boot_sims")):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 100):
                raise UserError(f"{label} must be a whole number >= 100, got {value!r}")
        sims = sims or _sims(n, method, selection)
        boot_sims = boot_sims or max(sims // 10, 500)

        def one(params: dict, replicate: int, sims: int) -> float:
            dist = params["success"]
            if bin is not None:
                dist = _posterior_mix(dist, self.bins[bin])
            seed = [self.seed, n, *code, replicate]
            return _accuracy(params, dist, method, n, name, selection, sims, seed)

        point = one(self.params, 0, sims)
        reps = [one(b, 0, boot_sims) for b in self.boot] if interval else []
        return predictive_interval(point, reps, problems)

    def predict_many(
        self,
        *,
        method: str,
        ns,
        verifier: str | None = None,
        aggregation: str | None = None,
        selection: str | None = None,
        bin: str | None = None,
        sims: int | None = None,
        boot_sims: int | None = None,
        problems: int | None = None,
    ) -> list[dict]:
        """`predict` at several N at once (what a table of the plan's N axis needs): Best-of-N max
        integrates every N in one pass, majority draws each simulated problem's answer
        probabilities once for every N; weighted vote calls predict per N. Same checks and
        result fields as predict; Monte Carlo draws differ from predict's (another seed)."""
        ns = [int(n) for n in ns]
        first = dict(method=method, verifier=verifier, aggregation=aggregation, selection=selection, bin=bin)
        if (method == "best_of_n" and selection == "vote") or not ns:
            return [self.predict(n=n, sims=sims, boot_sims=boot_sims, problems=problems, **first) for n in ns]
        self.predict(
            n=1, interval=False, problems=problems, **first
        )  # predict's argument checks (N = 1 costs nothing)
        name = None if method == "majority" else f"{verifier}:{aggregation}"
        sims = sims or 20000
        boot_sims = boot_sims or max(sims // 10, 500)
        arr = np.array(ns)
        if arr.min() < 1 or arr.max() > self.n_max:
            raise UserError(f"n must be whole numbers from 1 to n_max={self.n_max}, got {ns!r}")

        def curve(params: dict, replicate: int, draws: int) -> np.ndarray:
            dist = params["success"]
            if bin is not None:
                dist = _posterior_mix(dist, self.bins[bin])
            out = np.full(len(arr), _mean_p(dist))
            many = arr > 1
            if not many.any():
                return out
            if method == "best_of_n":
                out[many] = _bon_max(dist, params["missing"], params["scores"][name], arr[many])
                return out
            rng = np.random.default_rng([self.seed, 0, 0, replicate])
            probs = _category_probs(_draw_p(dist, draws, rng), params, rng)
            for i in np.flatnonzero(many):
                out[i] = _majority_counts(rng.multinomial(arr[i], probs))
            return out

        point = curve(self.params, 0, sims)
        reps = np.array([curve(b, 0, boot_sims) for b in self.boot]).reshape(len(self.boot), len(arr))
        m = self._problems(problems, bin)
        return [predictive_interval(float(point[i]), reps[:, i], m) for i in range(len(arr))]

    def _problems(self, problems, bin) -> int:
        """The interval's number of new problems: given, else those fitted (in the bin)."""
        if problems is not None:
            if isinstance(problems, bool) or not isinstance(problems, (int, np.integer)) or problems < 1:
                raise UserError(f"problems must be a whole number >= 1, got {problems!r}")
            return int(problems)
        table = self.bins[bin] if bin is not None else [row for rows in self.bins.values() for row in rows]
        return max(1, sum(int(cnt) for _, _, cnt in table))

    def to_dict(self) -> dict:
        """Plain JSON-serialisable parameters (no pickle needed)."""
        return {
            "version": 1,
            "n_max": self.n_max,
            "seed": self.seed,
            "params": self.params,
            "bins": self.bins,
            "boot": self.boot,
        }

    @classmethod
    def from_dict(cls, d: dict) -> ProblemModel:
        if not isinstance(d, dict) or d.get("version") != 1 or "params" not in d:
            raise UserError("d must be a dict written by ProblemModel.to_dict (version 1)")
        return cls(d["params"], boot=d.get("boot"), bins=d.get("bins"), n_max=d["n_max"], seed=d["seed"])
