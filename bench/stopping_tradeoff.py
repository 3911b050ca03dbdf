"""The issue's early-stopping goal on the sources with more than 8 samples per problem: the
trade-off curve of every rule and threshold (samples saved against points lost), and how far any
rule that keeps the cap's answer could go on this data.

Goal (issue 13): at least 2x fewer samples at no more than 0.5 points lost against the cap. For
each sample-level source with more than 8 samples per problem (bench/early_stopping.py's sources;
the shipped CPU arithmetic profiles, 16 samples each) and each method (majority; weighted vote
with the exact checker's min score where the profile has it):

- curve: each rule of SWEEP replayed with the cap = the samples per problem, in the recorded
  order (calibration.replay.replay_stopping, as the profiles' stop rows) and as the mean over
  ORDERS random orders of each problem's samples (seeded; less noisy than one order on 100
  problems, where one problem is 1 point); accuracy lost against the same method at the cap in
  the same order, mean samples, saving; `frontier` marks the rules no other rule beats on both.
- settled: in the recorded order, the first sample count m from which the same answer is the
  sole leader (most votes, or most score for the weighted vote; no tie) at every count up to the
  cap: from m on, more samples never change the leading answer (the cap when its leader is tied).
  The share with m <= cap / 2 is the share of problems whose leading answer is settled by half
  the cap; the mean of m is what a hindsight rule stopping as soon as the answer is settled for
  good would draw. A rule that stops on agreement (beta, esc) can only stop early where an
  answer leads.
- oracle: the first sample count whose pick is right exactly when the pick at the cap is right
  (a wrong-at-cap problem may stop at its first wrong answer): what a rule could save only by
  knowing which problems are hopeless, a difficulty signal rather than a settled answer.
- learned (majority only): the most a rule that sees the answer counts could do, learned from
  the data and cross-fitted. The state after m samples is (m, votes of the leader, votes of the
  runner-up); on half of the problems (in LEARN_ORDERS random orders) the mean gain of going on
  to the cap from each state, correct at the cap minus correct now, is tabulated; on the other
  half a problem stops at the first state (from sample 2, seen at least 5 times) whose gain is
  below delta. Both halves in turn, LEARN_SPLITS random halvings; points lost and saving are
  means over them. A difficulty signal from how the answers split, the best case of such a rule.

    .venv/bin/python bench/stopping_tradeoff.py   # writes results/stopping_tradeoff.{json,md}
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.early_stopping import problems, sources  # noqa: E402
from calibration.replay import replay_stopping  # noqa: E402
from planner.core.stopping import NEVER, parse_rule  # noqa: E402
from planner.executor.methods.common import majority_vote, weighted_vote  # noqa: E402

OUT = ROOT / "bench" / "results" / "stopping_tradeoff.json"
SWEEP = tuple(f"beta:{c}" for c in (0.6, 0.7, 0.8, 0.9, 0.95, 0.99)) + tuple(f"esc:{w}" for w in (2, 3, 4, 8))
ORDERS = 20
LEARN_ORDERS, LEARN_SPLITS, DELTAS = 8, 6, (0.005, 0.01, 0.02, 0.03, 0.05)
GOAL_SAVING, GOAL_LOSS = 2.0, 0.5  # x fewer samples, points lost
SPLIT_SEED = 7


def _leader(answers: list, scores) -> str | None:
    """The answer with the most votes (score sums for the weighted vote), None on a tie or none."""
    totals: dict = {}
    for i, a in enumerate(answers):
        if a is not None:
            totals[a] = totals.get(a, 0.0) + (1.0 if scores is None else float(scores[i]))
    top = sorted(totals.items(), key=lambda kv: -kv[1])[:2]
    if not top or (len(top) == 2 and top[0][1] == top[1][1]):
        return None
    return top[0][0]


def _pick(answers: list, scores) -> str | None:
    """The method's own selection (ties to the answer drawn first), as the replay picks."""
    drawn = [a or "" for a in answers]
    i = majority_vote(drawn) if scores is None else weighted_vote(drawn, list(scores))
    return None if i < 0 else drawn[i]


def settled_from(answers: list, table: dict, scores, cap: int) -> tuple[int, int]:
    """(first m from which one answer is the sole leader at every count up to the cap, else the
    cap; first m whose pick is right exactly when the cap's pick is right)."""
    sub = (lambda m: None) if scores is None else (lambda m: scores[:m])
    final = _leader(answers[:cap], sub(cap))
    settled = cap
    for m in range(cap, 0, -1):
        if final is None or _leader(answers[:m], sub(m)) != final:
            break
        settled = m
    right = [
        float(table.get(p, 0.0)) if p else 0.0
        for p in (_pick(answers[:m], sub(m)) for m in range(1, cap + 1))
    ]
    oracle = next(m for m in range(1, cap + 1) if right[m - 1] == right[-1])
    return settled, oracle


def _state_paths(probs, cap: int) -> list[tuple[list, np.ndarray]]:
    """Per problem: the state (m, leader's votes, runner-up's votes) and the majority pick's
    correctness after each of the first cap samples."""
    out = []
    for answers, table, _ in probs:
        states, right = [], []
        for m in range(1, cap + 1):
            votes = [v for _, v in Counter(a for a in answers[:m] if a is not None).most_common(2)] + [0, 0]
            states.append((m, votes[0], votes[1]))
            pick = _pick(answers[:m], None)
            right.append(float(table.get(pick, 0.0)) if pick else 0.0)
        out.append((states, np.array(right)))
    return out


def learned(probs, cap: int) -> list[dict]:
    """The cross-fitted state rule (see the module's docstring) at each delta of DELTAS."""
    results: dict[float, list] = {d: [] for d in DELTAS}
    for split in range(LEARN_SPLITS):
        rng = np.random.default_rng([SPLIT_SEED, split])
        perm = rng.permutation(len(probs))
        halves = (perm[: len(perm) // 2], perm[len(perm) // 2 :])
        orders = [_shuffled(probs, np.random.default_rng([SPLIT_SEED, split, o])) for o in range(LEARN_ORDERS)]
        paths = [[p for o in orders for p in _state_paths([o[i] for i in half], cap)] for half in halves]
        for fit, test in ((paths[0], paths[1]), (paths[1], paths[0])):
            gains: dict = {}
            for states, right in fit:
                for m, st in enumerate(states):
                    gains.setdefault(st, []).append(right[-1] - right[m])
            table = {st: float(np.mean(g)) for st, g in gains.items() if len(g) >= 5}
            for delta in DELTAS:
                used, lost = [], []
                for states, right in test:
                    stop = next((m for m in range(1, cap) if table.get(states[m], 1.0) < delta), cap - 1)
                    used.append(stop + 1)
                    lost.append(right[-1] - right[stop])
                results[delta].append((100 * float(np.mean(lost)), cap / float(np.mean(used))))
    return [
        {
            "delta": d,
            "lost": float(np.mean([x for x, _ in r])),
            "saving": float(np.mean([y for _, y in r])),
        }
        for d, r in results.items()
    ]


def _replay(probs, cap: int, rule) -> tuple[float, float]:
    got = [replay_stopping(a, t, cap, rule, s) for a, t, s in probs]
    return 100 * float(np.mean([c for c, _ in got])), float(np.mean([u for _, u in got]))


def _shuffled(probs, rng) -> list:
    out = []
    for a, t, s in probs:
        order = rng.permutation(len(a))
        out.append(([a[i] for i in order], t, None if s is None else np.asarray(s)[order]))
    return out


def evaluate(label: str, df, score: str | None) -> dict:
    probs = problems(df, score)
    cap = min(len(a) for a, _, _ in probs)
    at_cap, _ = _replay(probs, cap, NEVER)
    orders = [_shuffled(probs, np.random.default_rng(seed)) for seed in range(ORDERS)]
    at_cap_orders = [_replay(o, cap, NEVER)[0] for o in orders]
    curve = []
    for text in SWEEP:
        rule = parse_rule(text)
        acc, used = _replay(probs, cap, rule)
        each = [_replay(o, cap, rule) for o in orders]
        lost_o = float(np.mean([c0 - c for c0, (c, _) in zip(at_cap_orders, each, strict=True)]))
        used_o = float(np.mean([u for _, u in each]))
        curve.append(
            {
                "rule": text,
                "accuracy": acc,
                "lost": at_cap - acc,
                "mean_samples": used,
                "saving": cap / used,
                "lost_orders": lost_o,
                "mean_samples_orders": used_o,
                "saving_orders": cap / used_o,
            }
        )
    for r in curve:  # no other rule saves at least as much and loses no more (one strictly)
        r["frontier"] = not any(
            o["saving"] >= r["saving"]
            and o["lost"] <= r["lost"]
            and (o["saving"] > r["saving"] or o["lost"] < r["lost"])
            for o in curve
        )
        r["meets_goal"] = r["saving"] >= GOAL_SAVING and r["lost"] <= GOAL_LOSS
    stay, oracle = zip(*(settled_from(a, t, s, cap) for a, t, s in probs), strict=True)
    return {
        "source": label,
        "method": "weighted vote " + score.removeprefix("score:") if score else "majority",
        "cap": cap,
        "problems": len(probs),
        "accuracy_at_cap": at_cap,
        "unanswered_share": float(np.mean([a is None for p in probs for a in p[0]])),
        "settled_by_half": float(np.mean(np.array(stay) <= cap // 2)),
        "settled_mean_samples": float(np.mean(stay)),
        "settled_saving": cap / float(np.mean(stay)),
        "oracle_mean_samples": float(np.mean(oracle)),
        "oracle_saving": cap / float(np.mean(oracle)),
        "curve": curve,
        "learned": learned(probs, cap) if score is None else None,
    }


def main() -> None:
    results = []
    for label, df, score in sources():
        if df.groupby("problem_id").size().min() <= 8:
            continue  # the goal is for sources with more than 8 samples per problem
        results.append(evaluate(label, df, score))
    lines = [
        "Early stopping against the goal (2x fewer samples, at most 0.5 points lost against the cap) on "
        "the sources with more than 8 samples per problem (`bench/stopping_tradeoff.py`).",
        "",
        "| source | method | acc. at cap % | unanswered % | settled by sample 8 % | settled from (hindsight) | "
        "correctness oracle | best rule within 0.5 points (recorded order) |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        ok = [c for c in r["curve"] if c["lost"] <= GOAL_LOSS]
        best = max(ok, key=lambda c: c["saving"]) if ok else None
        best_text = f"{best['rule']}: {best['saving']:.2f}x, {best['lost']:+.1f}" if best else "none"
        lines.append(
            f"| {r['source']} | {r['method']} | {r['accuracy_at_cap']:.1f} | {100 * r['unanswered_share']:.0f} "
            f"| {100 * r['settled_by_half']:.0f} | {r['settled_mean_samples']:.2f} ({r['settled_saving']:.2f}x) "
            f"| {r['oracle_mean_samples']:.2f} ({r['oracle_saving']:.2f}x) | {best_text} |"
        )
    lines += [
        "",
        "Trade-off curves (points lost against the cap, mean samples, saving; recorded order, then the "
        f"mean over {ORDERS} random orders; * on the frontier of the recorded order):",
        "",
        "| source | method | rule | lost | mean samples | saving | lost (orders) | saving (orders) |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        for c in r["curve"]:
            mark = "*" if c["frontier"] else ""
            lines.append(
                f"| {r['source']} | {r['method']} | {c['rule']}{mark} | {c['lost']:+.1f} | {c['mean_samples']:.2f} "
                f"| {c['saving']:.2f}x | {c['lost_orders']:+.2f} | {c['saving_orders']:.2f}x |"
            )
    lines += [
        "",
        f"Learned state rule, majority (cross-fitted on halves of the problems, {LEARN_SPLITS} halvings, "
        f"{LEARN_ORDERS} orders each): points lost against the cap and saving at each delta.",
        "",
        "| source | " + " | ".join(f"delta {d}" for d in DELTAS) + " |",
        "|---|" + "---|" * len(DELTAS),
    ]
    for r in results:
        if r["learned"]:
            cells = [f"{x['lost']:+.2f}, {x['saving']:.2f}x" for x in r["learned"]]
            lines.append(f"| {r['source']} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps({"goal": {"saving": GOAL_SAVING, "lost_points": GOAL_LOSS}, "rows": results}, indent=1)
        + "\n"
    )
    OUT.with_suffix(".md").write_text(text)


if __name__ == "__main__":
    main()
