"""Exact replay of recorded samples: expected accuracy of a method at N = k from K samples.

For one problem with K recorded samples (answer, correctness, verifier score), the accuracy of
best-of-k, majority@k and weighted-vote@k is the mean over all C(K, k) subsets of size k, with
ties split evenly. No random subsampling: best-of-N and majority have closed forms (order
statistics; a count DP over answer groups), weighted vote is enumerated up to a limit.
Every fast form has a brute-force twin (`*_bruteforce`) that the tests compare against.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from fractions import Fraction

import numpy as np
import pandas as pd

from planner.core.errors import UserError
from planner.core.profiles import FIXED_N, OPTIONAL, SCHEMA, validate_records
from planner.core.stopping import NEVER, StopRule, samples_needed
from planner.core.vocab import difficulty_from_pass1
from planner.executor.methods.common import majority_vote, weighted_vote

ENUMERATION_LIMIT = 200_000  # subsets; weighted vote has no closed form
METHODS = ("best_of_n", "majority", "weighted_vote")


# ---------------------------------------------------------------- input checks


def _is_missing(answer: object) -> bool:
    """No extracted answer: None, NaN or "". Such samples never win a vote."""
    if answer is None or answer is pd.NA:
        return True
    if isinstance(answer, float) and math.isnan(answer):
        return True
    return isinstance(answer, str) and answer.strip() == ""


def _check_k(k: int, K: int) -> int:
    if isinstance(k, bool) or int(k) != k:
        raise UserError(f"k must be a whole number, got {k!r}")
    k = int(k)
    if K < 1:
        raise UserError("no samples to replay")
    if not 1 <= k <= K:
        raise UserError(f"k={k} must be between 1 and the number of samples K={K}")
    return k


def _as_floats(values: Sequence[float], what: str) -> np.ndarray:
    arr = np.asarray(values, dtype="float64")
    if arr.ndim != 1:
        raise UserError(f"{what} must be a flat list of numbers")
    if not np.isfinite(arr).all():
        raise UserError(f"{what} must be finite numbers (found NaN or inf)")
    return arr


def _check_correct(correct: Sequence[float]) -> np.ndarray:
    arr = _as_floats(correct, "correct")
    if ((arr < 0) | (arr > 1)).any():
        raise UserError("correct must hold values in [0, 1]")
    return arr


def _answer_weights(answers: Sequence[Hashable], correct_by_answer: Mapping) -> dict:
    weights = {}
    for a in answers:
        if _is_missing(a) or a in weights:
            continue
        if a not in correct_by_answer:
            raise UserError(f"answer {a!r} has no entry in correct_by_answer")
        w = float(correct_by_answer[a])
        if not 0.0 <= w <= 1.0:
            raise UserError(f"correctness of answer {a!r} must be in [0, 1], got {w}")
        weights[a] = w
    return weights


# ---------------------------------------------------------------- best-of-N


def _answered_mask(answered: Sequence[bool] | None, K: int) -> np.ndarray:
    if answered is None:
        return np.ones(K, dtype=bool)
    mask = np.asarray([bool(a) for a in answered], dtype=bool)
    if len(mask) != K:
        raise UserError(f"answered ({len(mask)}) and scores ({K}) differ in length")
    return mask


def best_of_n_expectation(
    scores: Sequence[float],
    correct: Sequence[float],
    k: int,
    method: str = "closed",
    answered: Sequence[bool] | None = None,
) -> float:
    """Expected correctness of the top-scored sample of a uniformly random k-subset.

    Group the samples by score value: m samples at value v (c of them correct) and b samples
    strictly below. The subset's top value is v in C(m+b, k) - C(b, k) of the C(K, k) subsets,
    and within the tie each of the m samples is equally likely, so the pick is correct with
    probability c/m. Without ties this is P(i is the max) = C(b_i, k-1) / C(K, k).

    answered: which samples have an extracted answer (default: all). As in live runs, samples
    without one are dropped before the pick; a subset with no answered sample scores 0. That is
    the same as ranking them below every answered sample with correctness 0.
    """
    if method == "enumerate":
        return best_of_n_bruteforce(scores, correct, k, answered)
    if method != "closed":
        raise UserError(f"method must be 'closed' or 'enumerate', got {method!r}")
    s, c = _as_floats(scores, "scores"), _check_correct(correct)
    if len(s) != len(c):
        raise UserError(f"scores ({len(s)}) and correct ({len(c)}) differ in length")
    K = len(s)
    mask = _answered_mask(answered, K)
    if not mask.all():
        floor = (s[mask].min() if mask.any() else 0.0) - 1.0
        s, c = np.where(mask, s, floor), np.where(mask, c, 0.0)
    k = _check_k(k, K)
    values, inverse = np.unique(s, return_inverse=True)  # ascending
    sizes = np.bincount(inverse, minlength=len(values))
    correct_sums = np.bincount(inverse, weights=c, minlength=len(values))
    total = math.comb(K, k)
    expected = 0.0
    below = 0
    for m, csum in zip(sizes.tolist(), correct_sums.tolist(), strict=True):
        ways = math.comb(m + below, k) - math.comb(below, k)
        if ways:
            expected += float(Fraction(ways, total)) * (csum / m)
        below += m
    return expected


def best_of_n_bruteforce(
    scores: Sequence[float], correct: Sequence[float], k: int, answered: Sequence[bool] | None = None
) -> float:
    """Best-of-k by enumerating every k-subset (for tests and small K); unanswered samples are
    dropped from each subset before the pick, and a subset left empty scores 0."""
    s, c = _as_floats(scores, "scores"), _check_correct(correct)
    if len(s) != len(c):
        raise UserError(f"scores ({len(s)}) and correct ({len(c)}) differ in length")
    k = _check_k(k, len(s))
    mask = _answered_mask(answered, len(s))
    total, count = 0.0, 0
    for full in itertools.combinations(range(len(s)), k):
        count += 1
        subset = [i for i in full if mask[i]]
        if not subset:
            continue
        top = max(s[i] for i in subset)
        tied = [i for i in subset if s[i] == top]
        total += sum(c[i] for i in tied) / len(tied)
    return total / count


# ---------------------------------------------------------------- majority


def _mul_group(poly: np.ndarray, size: int, t: int) -> np.ndarray:
    """Multiply by one group's generating function at threshold t.

    poly[j, r]: ways to draw j samples from the groups so far with r of them drawn exactly t
    times and none more. A group of `size` adds x < t draws (C(size, x) ways) or x = t
    (C(size, t) ways, one more tie). Terms past poly's shape are dropped.
    """
    zmax, rmax = poly.shape
    out = np.zeros_like(poly)
    for x in range(min(t, size + 1)):
        if x < zmax:
            out[x:, :] += math.comb(size, x) * poly[: zmax - x, :]
    if t <= size and t < zmax and rmax > 1:
        out[t:, 1:] += math.comb(size, t) * poly[: zmax - t, :-1]
    return out


def _majority_pick_probs(
    sizes: Sequence[int], n_missing: int, k: int, targets: Iterable[int]
) -> dict[int, Fraction]:
    """P(a given answer group of each size is the pick) over all k-subsets; exact.

    For a target group drawn t times, every other group must be drawn at most t times; with r
    other groups also at t, the target wins the tie with probability 1/(r+1). Groups smaller
    than t (and unanswered samples) cannot reach t, so together they are one binomial factor.
    Groups of equal size have equal probability, so one target per distinct size suffices;
    only the sizes in `targets` are computed.
    """
    K = sum(sizes) + n_missing
    total = math.comb(K, k)
    probs: dict[int, Fraction] = {}
    for s in sorted(set(targets)):
        acc = Fraction(0)
        for t in range(1, min(s, k) + 1):
            rest = k - t
            small = n_missing + sum(h for h in sizes if h < t)
            large = [h for h in sizes if h >= t]
            large.remove(s)  # the target itself
            rmax = min(len(large), rest // t)
            poly = np.zeros((rest + 1, rmax + 1), dtype=object)
            poly[0, 0] = 1
            for h in large:
                poly = _mul_group(poly, h, t)
            fill = np.array([math.comb(small, rest - j) for j in range(rest + 1)], dtype=object)
            by_ties = fill.dot(poly)  # ways with r ties, r = 0..rmax
            acc += math.comb(s, t) * sum(Fraction(int(w), r + 1) for r, w in enumerate(by_ties))
        probs[s] = acc / total
    return probs


def majority_expectation(
    answers: Sequence[Hashable], correct_by_answer: Mapping, k: int, method: str = "closed"
) -> float:
    """Expected correctness of the most frequent answer of a random k-subset (ties split evenly).

    Exact by a count DP over answer groups (no subset enumeration), fine for K = 256.
    Samples without an answer (None, NaN, "") fill subsets but never win; a subset of only
    such samples scores 0.
    """
    if method == "enumerate":
        return majority_bruteforce(answers, correct_by_answer, k)
    if method != "closed":
        raise UserError(f"method must be 'closed' or 'enumerate', got {method!r}")
    answers = list(answers)
    k = _check_k(k, len(answers))
    weights = _answer_weights(answers, correct_by_answer)
    groups = Counter(a for a in answers if not _is_missing(a))
    if not groups:
        return 0.0
    n_missing = len(answers) - sum(groups.values())
    wanted = {size for a, size in groups.items() if weights[a] > 0}  # zero-weight groups add nothing
    probs = _majority_pick_probs(list(groups.values()), n_missing, k, wanted)
    return float(sum(probs[size] * Fraction(weights[a]) for a, size in groups.items() if size in wanted))


def majority_bruteforce(answers: Sequence[Hashable], correct_by_answer: Mapping, k: int) -> float:
    """Majority@k by enumerating every k-subset (for tests and small K)."""
    answers = list(answers)
    k = _check_k(k, len(answers))
    weights = _answer_weights(answers, correct_by_answer)
    total, count = 0.0, 0
    for subset in itertools.combinations(answers, k):
        votes = Counter(a for a in subset if not _is_missing(a))
        count += 1
        if votes:
            top = max(votes.values())
            tied = [a for a, v in votes.items() if v == top]
            total += sum(weights[a] for a in tied) / len(tied)
    return total / count


# ---------------------------------------------------------------- weighted vote


def weighted_vote_expectation(
    answers: Sequence[Hashable],
    scores: Sequence[float],
    correct_by_answer: Mapping,
    k: int,
    limit: int = ENUMERATION_LIMIT,
) -> float:
    """Expected correctness of the answer with the largest summed score in a random k-subset.

    Summed scores have no order-statistics closed form, so the C(K, k) subsets are enumerated
    (vectorised); above `limit` subsets this raises rather than sample. Each answer's sum adds
    its samples in index order; ties (equal sums) are split evenly.
    """
    answers = list(answers)
    s = _as_floats(scores, "scores")
    if len(s) != len(answers):
        raise UserError(f"answers ({len(answers)}) and scores ({len(s)}) differ in length")
    K = len(answers)
    k = _check_k(k, K)
    n_subsets = math.comb(K, k)
    if n_subsets > limit:
        raise UserError(
            f"weighted vote at k={k} of K={K} samples needs all C({K},{k})={n_subsets} subsets "
            f"(no closed form exists) and that exceeds the limit {limit}; use a smaller k or raise the limit"
        )
    weights = _answer_weights(answers, correct_by_answer)
    if not weights:
        return 0.0
    ids = {a: i for i, a in enumerate(weights)}
    group = np.array([ids.get(a, -1) if not _is_missing(a) else -1 for a in answers])
    w = np.array(list(weights.values()), dtype="float64")
    combos = itertools.combinations(range(K), k)
    total = 0.0
    while chunk := list(itertools.islice(combos, _CHUNK)):
        total += _weighted_vote_chunk(np.array(chunk, dtype=np.int64), group, s, w)
    return total / n_subsets


_CHUNK = 8192  # subsets per vectorised step (bounds memory at chunk x answer groups)


def _weighted_vote_chunk(subsets: np.ndarray, group: np.ndarray, s: np.ndarray, w: np.ndarray) -> float:
    """Summed pick correctness over the given subsets (one per row of sample indices)."""
    n = len(subsets)
    sums = np.zeros((n, len(w)))
    present = np.zeros((n, len(w)), dtype=bool)
    rows = np.arange(n)
    for j in range(subsets.shape[1]):  # columns are in index order, so each sum adds in index order
        g = group[subsets[:, j]]
        ok = g >= 0
        sums[rows[ok], g[ok]] += s[subsets[ok, j]]
        present[rows[ok], g[ok]] = True
    sums = np.where(present, sums, -np.inf)
    top = sums.max(axis=1, keepdims=True)
    tied = present & (sums == top)
    n_tied = tied.sum(axis=1)
    picked = np.where(n_tied > 0, (tied * w).sum(axis=1) / np.maximum(n_tied, 1), 0.0)
    return float(picked.sum())


def weighted_vote_bruteforce(
    answers: Sequence[Hashable], scores: Sequence[float], correct_by_answer: Mapping, k: int
) -> float:
    """Weighted vote@k by a plain loop over every k-subset (for tests and small K)."""
    answers = list(answers)
    s = _as_floats(scores, "scores")
    if len(s) != len(answers):
        raise UserError(f"answers ({len(answers)}) and scores ({len(s)}) differ in length")
    k = _check_k(k, len(answers))
    weights = _answer_weights(answers, correct_by_answer)
    total, count = 0.0, 0
    for subset in itertools.combinations(range(len(answers)), k):
        sums: dict = {}
        for i in subset:  # index order, as the fast form
            if not _is_missing(answers[i]):
                sums[answers[i]] = sums.get(answers[i], 0.0) + s[i]
        count += 1
        if sums:
            top = max(sums.values())
            tied = [a for a, v in sums.items() if v == top]
            total += sum(weights[a] for a in tied) / len(tied)
    return total / count


# ---------------------------------------------------------------- tables

# Per-problem columns of a samples table (constant within a problem) and their defaults.
SAMPLE_CONTEXT = {
    "dataset": None,
    "problem_id": None,
    "level": "",
    "policy": None,
    "prm": "unstated",
    "aggregation": "unstated",
    "source": None,
    "note": "",
}
GROUP_KEYS = ["dataset", "problem_id", "policy", "prm", "aggregation"]


def _context(samples: pd.DataFrame) -> dict:
    ctx = {}
    for col, default in SAMPLE_CONTEXT.items():
        if col not in samples.columns:
            if default is None:
                raise UserError(f"samples: column '{col}' is missing")
            ctx[col] = default
            continue
        values = samples[col].astype(object).where(samples[col].notna(), default).unique()
        if len(values) != 1:
            raise UserError(
                f"samples: column '{col}' must be constant within a problem, got {list(values)[:3]}"
            )
        ctx[col] = "" if values[0] is None else str(values[0])
    return ctx


def _correct_by_answer(samples: pd.DataFrame, where: str) -> dict:
    table: dict = {}
    for a, c in zip(samples["answer"], samples["correct"], strict=True):
        if _is_missing(a):
            continue
        if a in table and table[a] != c:
            raise UserError(f"{where}: answer {a!r} is marked both correct and incorrect")
        table[a] = c
    return table


def _mean_times(values: pd.Series | None, k: int) -> float:
    if values is None:
        return math.nan
    arr = values.to_numpy(dtype="float64")
    return float(k * arr.mean()) if np.isfinite(arr).all() else math.nan


def _used_sum(values: pd.Series | None, used: int) -> float:
    if values is None:
        return math.nan
    arr = values.to_numpy(dtype="float64")[:used]
    return float(arr.sum()) if np.isfinite(arr).all() else math.nan


def replay_problem(
    samples: pd.DataFrame,
    ks: Iterable[int],
    methods: Sequence[str] = METHODS,
    stops: Sequence[StopRule] = (),
) -> pd.DataFrame:
    """Profile rows (one per method x k) for the K recorded samples of one problem.

    samples columns: answer, correct (0/1 or in [0, 1]), score (verifier score of the whole
    solution; NaN or absent: only majority), optional vote_weight (weight for the weighted
    vote, default score), policy_tokens / prm_tokens / flops (per sample; a row gets k times
    their mean, the exact expected total of k samples), prm_flops (the verifier's FLOPs per
    sample, added to the scored rows' flops), and the per-problem columns of SAMPLE_CONTEXT.
    k values above K are skipped.

    stops: early-stopping rules; each adds, per k (the cap), a majority row (and a weighted-vote
    row when scored) replayed on the samples in their recorded order (replay_stopping), with
    `stop`, `samples_used`, `accuracy_at_cap` (the same selection over the first k samples in
    the same order, ties broken alike) and the tokens and FLOPs of the samples drawn. With stops
    every row has the OPTIONAL columns (fixed-N rows: stop "", the others NaN).
    """
    for method in methods:
        if method not in METHODS:
            raise UserError(f"unknown replay method {method!r} (known: {', '.join(METHODS)})")
    for col in ("answer", "correct"):
        if col not in samples.columns:
            raise UserError(f"samples: column '{col}' is missing")
    ctx = _context(samples)
    where = f"problem {ctx['dataset']}/{ctx['problem_id']}"
    answers = [None if _is_missing(a) else a for a in samples["answer"].astype(object)]
    correct = _check_correct(samples["correct"].to_numpy(dtype="float64"))
    table = _correct_by_answer(pd.DataFrame({"answer": answers, "correct": correct}), where)
    K = len(answers)
    scores = samples["score"].to_numpy(dtype="float64") if "score" in samples.columns else None
    scored = scores is not None and len(scores) > 0 and np.isfinite(scores).all()
    if scores is not None and not scored and np.isfinite(scores).any():
        raise UserError(f"{where}: some samples have a score and some do not")
    vote_w = samples["vote_weight"].to_numpy(dtype="float64") if "vote_weight" in samples.columns else scores
    pass1 = float(correct.mean())
    policy_tok = samples["policy_tokens"] if "policy_tokens" in samples.columns else None
    prm_tok = samples["prm_tokens"] if "prm_tokens" in samples.columns else None
    flops = samples["flops"] if "flops" in samples.columns else None
    prm_flops = samples["prm_flops"] if "prm_flops" in samples.columns else None
    base = {
        "dataset": ctx["dataset"],
        "problem_id": ctx["problem_id"],
        "level": ctx["level"],
        "difficulty": difficulty_from_pass1(pass1),
        "pass1": pass1,
        "policy": ctx["policy"],
        "beam_width": pd.NA,
        "n_problems": 1,
        "flops": math.nan,
        "source": ctx["source"],
    }
    rows = []
    for k in sorted({int(k) for k in ks}):
        if k > K:
            continue
        note = f"exact mean over all {k}-subsets of {K} recorded samples"
        if ctx["note"]:
            note = f"{note}; {ctx['note']}"
        common = {
            **base,
            "n": k,
            "policy_tokens": _mean_times(policy_tok, k),
            "flops": _mean_times(flops, k),
            "note": note,
        }
        if "majority" in methods:
            rows.append(
                {
                    **common,
                    "prm": "none",
                    "method": "majority",
                    "aggregation": "none",
                    "selection": "vote",
                    "accuracy": majority_expectation(answers, table, k),
                    "prm_tokens": 0.0,
                }
            )
        if not scored:
            continue
        scored_row = {**common, "prm": ctx["prm"], "method": "best_of_n", "aggregation": ctx["aggregation"]}
        scored_row["prm_tokens"] = _mean_times(prm_tok, k)
        if prm_flops is not None:
            scored_row["flops"] = common["flops"] + _mean_times(prm_flops, k)
        if "best_of_n" in methods:
            acc = best_of_n_expectation(scores, correct, k, answered=[a is not None for a in answers])
            rows.append({**scored_row, "selection": "max", "accuracy": acc})
        if "weighted_vote" in methods:
            acc = weighted_vote_expectation(answers, vote_w, table, k)
            rows.append({**scored_row, "selection": "vote", "accuracy": acc})
    if not stops:
        return pd.DataFrame(rows, columns=list(SCHEMA))
    for row in rows:
        row.update(FIXED_N)
    for rule in stops:
        for k in sorted({int(k) for k in ks}):
            if k > K:
                continue
            note = f"{rule} with cap {k}, replayed on the {K} recorded samples in their order"
            common = {
                **base,
                "n": k,
                "stop": str(rule),
                "note": f"{note}; {ctx['note']}" if ctx["note"] else note,
            }
            picks = [("majority", None)] + ([("best_of_n", vote_w)] if scored else [])
            for method, weights in picks:
                right, used = replay_stopping(answers, table, k, rule, weights)
                row = {
                    **common,
                    "method": method,
                    "selection": "vote",
                    "accuracy": right,
                    "samples_used": float(used),
                    "accuracy_at_cap": replay_stopping(answers, table, k, NEVER, weights)[0],
                    "policy_tokens": _used_sum(policy_tok, used),
                    "flops": _used_sum(flops, used),
                }
                if method == "majority":
                    row.update(prm="none", aggregation="none", prm_tokens=0.0)
                else:
                    row.update(
                        prm=ctx["prm"], aggregation=ctx["aggregation"], prm_tokens=_used_sum(prm_tok, used)
                    )
                    if prm_flops is not None:
                        row["flops"] += _used_sum(prm_flops, used)
                rows.append(row)
    return pd.DataFrame(rows, columns=[*SCHEMA, *OPTIONAL])


def replay_table(
    df: pd.DataFrame, ks: Iterable[int], methods: Sequence[str] = METHODS, stops: Sequence[StopRule] = ()
) -> pd.DataFrame:
    """Replay every problem of a samples table (see replay_problem); validated profile records.

    Problems are grouped by dataset, problem_id, policy, prm and aggregation; identical rows
    (majority rows repeated across prm/aggregation groups of the same samples) are kept once.
    """
    ks = list(ks)
    if not ks:
        raise UserError("no k values to replay")
    frame = df.copy()
    for col, default in SAMPLE_CONTEXT.items():
        if col not in frame.columns:
            if default is None:
                raise UserError(f"samples: column '{col}' is missing")
            frame[col] = default
    groups = frame.groupby(GROUP_KEYS, sort=True, dropna=False)
    parts = [replay_problem(g, ks, methods, stops) for _, g in groups]
    if not parts:
        raise UserError("samples: no rows to replay")
    out = pd.concat(parts, ignore_index=True)
    out = validate_records(out, "replay")
    return out.drop_duplicates(ignore_index=True)


# ---------------------------------------------------------------- early stopping

STOP_NOTE = (
    "Early-stopping rows (column stop): the rule replayed on each problem's samples in their recorded "
    "order, n is the cap, samples_used the samples drawn before it stopped, accuracy the correctness "
    "of the method's own selection over them (one order, not a mean over orders), accuracy_at_cap "
    "that of the same selection over the first n samples in the same order; tokens and FLOPs are "
    "those of the samples drawn."
)


def replay_stopping(
    answers: Sequence[str | None],
    correct_by_answer: Mapping,
    cap: int,
    rule: StopRule,
    scores: Sequence[float] | None = None,
) -> tuple[float, int]:
    """(correct, samples used) of one problem when `rule` stops sampling, replayed on the recorded
    samples in their order with the live selection: majority, or the score-weighted vote."""
    used = samples_needed(rule, answers, cap)
    drawn = [a or "" for a in answers[:used]]
    pick = majority_vote(drawn) if scores is None else weighted_vote(drawn, list(scores[:used]))
    return (0.0 if pick < 0 else float(correct_by_answer.get(drawn[pick], 0.0))), used
