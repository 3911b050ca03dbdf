"""Run-time difficulty: probe each problem, then run its difficulty bin's configuration.

A per-bin plan (`ttsplan plan --per-bin --json`) holds one configuration per bin (easy, medium,
hard) and the probe settings. Per problem, the probe draws k full samples (same engine); the
estimated pass@1 is the fraction of them whose answer equals their majority answer (score
"agreement"), the mean aggregated verifier score ("verifier"), or the per-problem model's
posterior mean success rate given how the k answers split ("posterior", a table the planner
wrote into the plan), and the paper's thresholds map it to a bin. Problems of a batch are
grouped by bin and each bin's method is called once. With probe "reuse", a majority or
Best-of-N bin starts from the probe's k samples and draws only the rest of its n.

Records are the run loop's (runner.make_record) plus bin, probe_answers, probe_pass1, probe
tokens and probe_flops, and bin_config; the probe's tokens and FLOPs are included in the
record's totals (policy tokens, prm tokens, policy_flops, prm_flops, flops). Output is
resumable like runner.run_plan: records of the same adaptive plan are skipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from planner.core.errors import UserError
from planner.core.planfile import (
    KIND_PER_BIN,
    RunPlan,
    check_document,
    check_probe,
    plan_from_dict,
    read_document,
)
from planner.core.scoring import aggregate, answer_key, answer_signature
from planner.core.vocab import BINS
from planner.executor.base import Engine, SamplingOptions, Verifier
from planner.executor.methods import SAMPLING, run_method
from planner.executor.methods.common import (
    Result,
    Usage,
    call_seed,
    extract,
    generate,
    majority_vote,
    make_result,
    question_of,
    score_solutions,
    split_steps,
)
from planner.executor.runner import (
    DEFAULT_BATCH_SIZE,
    FlopCounter,
    append_records,
    check_inputs,
    config_key,
    make_record,
    resume,
)

PROBE_STEP = 1_000_000  # call_seed step of the probe: no method reaches it, so its samples differ


# ---------------------------------------------------------------- the plan


@dataclass(frozen=True)
class AdaptivePlan:
    """One RunPlan per bin, the probe settings, and what the planner predicted."""

    bins: dict[str, RunPlan]
    probe: dict
    mix: dict[str, float] | None = None
    predicted_accuracy: float | None = None  # mix-weighted mean of the bins
    flops_per_problem: float | None = None  # mix-weighted mean of the bins, probe not included
    probe_flops: float | None = None  # the planner's estimate of the probe
    source: str = "dict"

    def with_overrides(self, **changes) -> AdaptivePlan:
        """The same overrides (policy, seed, temperature, limits) on every bin's plan."""
        return replace(self, bins={b: p.with_overrides(**changes) for b, p in self.bins.items()})

    @property
    def configs(self) -> list:
        return [p.config for p in self.bins.values()]

    @property
    def policy(self) -> str:
        names = sorted({p.policy for p in self.bins.values()})
        if len(names) > 1:
            raise UserError(f"policy: the bins use different policies ({', '.join(names)}); name one")
        return names[0]

    @property
    def seed(self) -> int:
        return self.bins[BINS[0]].config.seed

    @property
    def uses_verifier(self) -> bool:
        return self.probe["score"] == "verifier" or any(p.config.uses_verifier for p in self.bins.values())

    def verifier_name(self, flag: str | None) -> str | None:
        """The verifier given, else the one PRM the bins name; None when nothing needs a verifier."""
        if not self.uses_verifier:
            return None
        if flag:
            return flag
        names = sorted({p.prm for p in self.bins.values() if p.config.uses_verifier and p.prm})
        if len(names) == 1:
            return names[0]
        if not names:
            raise UserError(
                "verifier: the probe scores with a verifier; name one (lm-judge, arith-check or a PRM folder)"
            )
        raise UserError(f"verifier: the bins use different PRMs ({', '.join(names)}); name one to use")

    def probe_max_tokens(self) -> int:
        given = self.probe["max_tokens"]
        return given if given is not None else max(p.config.max_total_tokens for p in self.bins.values())

    def to_dict(self) -> dict:
        return {
            "kind": KIND_PER_BIN,
            "bins": {b: p.to_dict() for b, p in self.bins.items()},
            "probe": self.probe,
            "mix": self.mix,
            "predicted_accuracy": self.predicted_accuracy,
            "flops_per_problem": self.flops_per_problem,
            "probe_flops": self.probe_flops,
            "source": self.source,
        }


def _number(value: object) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if ok else None


def adaptive_from_dict(obj: object, where: str = "plan") -> AdaptivePlan:
    """Validate a per-bin plan object (as `ttsplan plan --per-bin --json` prints it)."""
    obj = check_document(obj, KIND_PER_BIN, where)
    bins = obj.get("bins")
    if not isinstance(bins, dict):
        raise UserError(f"{where}: field 'bins' must map easy, medium and hard to configurations")
    for b in BINS:
        if b not in bins:
            raise UserError(f"{where}: field 'bins' has no {b!r} configuration")
    probe = obj.get("probe")
    if probe is not None and not isinstance(probe, dict):
        raise UserError(f"{where}: field 'probe' must be an object")
    try:
        probe = check_probe(probe)
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None
    cost = obj.get("probe_cost") if isinstance(obj.get("probe_cost"), dict) else {}
    mix = obj.get("mix") if isinstance(obj.get("mix"), dict) else None
    return AdaptivePlan(
        bins={b: plan_from_dict(bins[b], where=f"{where} bin {b}") for b in BINS},
        probe=probe,
        mix=mix,
        predicted_accuracy=_number(obj.get("mean_predicted_accuracy")),
        flops_per_problem=_number(obj.get("mean_flops_per_problem")),
        probe_flops=_number(cost.get("flops_per_problem")),
        source=where,
    )


def load_adaptive_plan(path: str | Path) -> AdaptivePlan:
    """Read and validate a per-bin plan file; every problem is a UserError naming the file."""
    obj = read_document(path, KIND_PER_BIN)
    return adaptive_from_dict(obj, where=f"plan file {path}")


# ---------------------------------------------------------------- the probe


@dataclass
class Probe:
    """One problem's probe: its sampled answers, the pass@1 estimate, the bin, the usage."""

    answers: list[str]
    pass1: float
    bin: str
    result: Result
    texts: list[str] = field(default_factory=list)


def agreement(answers: Sequence[str]) -> float:
    """Fraction of the answers equal to their majority answer (empty answers never agree)."""
    if not answers:
        return 0.0
    winner = majority_vote(answers)
    if winner < 0:
        return 0.0
    key = answer_key(answers[winner])
    return sum(1 for a in answers if a and answer_key(a) == key) / len(answers)


def bin_of(pass1: float, probe: dict) -> str:
    """The bin of an estimated pass@1 with the probe's thresholds (the paper's by default)."""
    if pass1 > probe["easy_above"]:
        return "easy"
    if pass1 < probe["hard_below"]:
        return "hard"
    return "medium"


def run_probe(
    engine: Engine, verifier: Verifier | None, problems: Sequence, probe: dict, seed: int, max_tokens: int
) -> list[Probe]:
    """k full samples per problem in one generate call (and one verifier call with score
    "verifier"), then each problem's pass@1 estimate and bin."""
    questions = [question_of(p) for p in problems]
    options = SamplingOptions(
        temperature=float(probe["temperature"]),
        top_p=1.0,
        max_tokens=max_tokens,
        n=int(probe["k"]),
        seed=call_seed(seed, PROBE_STEP),
    )
    gens = generate(engine, [engine.format_prompt(q) for q in questions], options)
    texts = [[c.text for c in gen.completions] for gen in gens]
    usages = []
    for gen in gens:
        usage = Usage()
        usage.add_generation(gen)
        usages.append(usage)
    scores: list[list[float]] = [[] for _ in problems]
    if probe["score"] == "verifier":
        if verifier is None:
            raise UserError("the probe scores with a verifier; pass one")
        flat = [(i, t) for i, ts in enumerate(texts) for t in ts]
        scored = score_solutions(verifier, [questions[i] for i, _ in flat], [split_steps(t) for _, t in flat])
        for (i, _), s in zip(flat, scored, strict=True):
            usages[i].add_scores(s)
            scores[i].append(aggregate(s.steps, probe["aggregation"]))
    out = []
    for ts, usage, sc in zip(texts, usages, scores, strict=True):
        answers = [extract(t) for t in ts]
        if probe["score"] == "verifier":
            pass1 = sum(sc) / len(sc)
        elif probe["score"] == "posterior":
            pass1 = posterior_pass1(answers, probe["posterior"])
        else:
            pass1 = agreement(answers)
        candidates = [{"answer": a, "score": None, "text": t} for a, t in zip(answers, ts, strict=True)]
        result = make_result("", "", candidates, usage, steps=1)
        out.append(Probe(answers, pass1, bin_of(pass1, probe), result, list(ts)))
    return out


def posterior_pass1(answers: Sequence[str], table: dict) -> float:
    """The posterior mean success rate for how these answers split (the plan's table); the
    agreement estimate for a split the table does not hold."""
    signature = answer_signature([answer_key(a) if a else None for a in answers])
    value = table.get(signature)
    return float(value) if value is not None else agreement(answers)


# ---------------------------------------------------------------- records and summary


def adaptive_key(plan: AdaptivePlan, engine: Engine, verifier: Verifier | None) -> dict:
    """What makes two adaptive runs the same: the probe and every bin's config key."""
    probe = {**plan.probe, "max_tokens": plan.probe_max_tokens(), "seed": plan.seed}
    for key, off in (("reuse", False), ("posterior", None)):  # keys of runs before these settings stay
        if probe.get(key) == off:
            del probe[key]
    return {
        "adaptive": {
            "probe": probe,
            "probe_verifier": verifier.name if verifier and plan.probe["score"] == "verifier" else None,
            "bins": {b: config_key(p, engine, verifier) for b, p in plan.bins.items()},
        }
    }


def _add(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a + b


def adaptive_record(
    problem,
    key: dict,
    bin_key: dict,
    probe: Probe,
    result: Result,
    flops: FlopCounter,
    probe_flops: FlopCounter,
    wall_s: float,
) -> dict:
    """runner.make_record for the bin's result, with the probe's fields and its cost added in."""
    rec = make_record(problem, key, result, flops, wall_s)
    p = probe.result
    policy = probe_flops.policy_flops(p)
    prm = probe_flops.prm_flops(p)
    total = _add(policy, prm)
    rec.update(
        bin=probe.bin,
        bin_config=bin_key,
        probe_answers=probe.answers,
        probe_pass1=probe.pass1,
        probe_prompt_tokens=p.policy_prompt_tokens,
        probe_generated_tokens=p.policy_generated_tokens,
        probe_cached_prompt_tokens=p.cached_prompt_tokens,
        probe_prm_tokens=p.prm_tokens,
        probe_flops=total,
    )
    rec["policy_prompt_tokens"] += p.policy_prompt_tokens
    rec["policy_generated_tokens"] += p.policy_generated_tokens
    rec["cached_prompt_tokens"] += p.cached_prompt_tokens
    rec["prm_tokens"] += p.prm_tokens
    rec["policy_flops"] = _add(rec["policy_flops"], policy)
    rec["prm_flops"] = _add(rec["prm_flops"], prm)
    rec["flops"] = _add(rec["flops"], total)
    return rec


def _mean(values: list) -> float | None:
    if not values or any(v is None for v in values):
        return None
    return sum(values) / len(values)


@dataclass
class AdaptiveSummary:
    """Totals over this plan's records for the problems asked for (earlier runs included)."""

    problems: int
    run: int
    skipped: int
    correct: int
    accuracy: float | None
    mean_flops: float | None  # probe included
    mean_probe_flops: float | None
    bins: dict[str, dict] = field(default_factory=dict)  # problems, correct, accuracy, mean_flops
    predicted_accuracy: float | None = None  # the bins' predictions at the bins the probe chose
    predicted_flops: float | None = None  # the same, plus the planner's probe estimate
    planned_accuracy: float | None = None  # the plan's mean at the plan's mix
    wall_s: float = 0.0
    out: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def summarize(plan: AdaptivePlan, records: list[dict], run: int, skipped: int, wall_s: float, out: Path):
    n = len(records)
    correct = sum(bool(r["correct"]) for r in records)
    bins = {}
    for b in BINS:
        mine = [r for r in records if r["bin"] == b]
        ok = sum(bool(r["correct"]) for r in mine)
        bins[b] = {
            "problems": len(mine),
            "correct": ok,
            "accuracy": ok / len(mine) if mine else None,
            "mean_flops": _mean([r["flops"] for r in mine]),
        }
    accs = [plan.bins[r["bin"]].predicted_accuracy for r in records]
    costs = [plan.bins[r["bin"]].flops_per_problem for r in records]
    mean_cost = _mean(costs)
    return AdaptiveSummary(
        problems=n,
        run=run,
        skipped=skipped,
        correct=correct,
        accuracy=correct / n if n else None,
        mean_flops=_mean([r["flops"] for r in records]),
        mean_probe_flops=_mean([r["probe_flops"] for r in records]),
        bins=bins,
        predicted_accuracy=_mean(accs),
        predicted_flops=_add(mean_cost, plan.probe_flops),
        planned_accuracy=plan.predicted_accuracy,
        wall_s=wall_s,
        out=str(out),
    )


# ---------------------------------------------------------------- the loop


def run_adaptive(
    plan: AdaptivePlan,
    problems: Sequence,
    engine: Engine,
    verifier: Verifier | None,
    out_path: str | Path,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> AdaptiveSummary:
    """Probe, bin and solve `problems` in batches, appending one record per problem; resumable."""
    if plan.uses_verifier and verifier is None:
        raise UserError("this per-bin plan needs a verifier (a bin's method or the probe uses one)")
    ids = check_inputs(problems, batch_size)
    key = adaptive_key(plan, engine, verifier)
    out, done, todo = resume(out_path, key, problems)
    skipped = len(problems) - len(todo)
    if progress and skipped:
        progress(skipped)
    spec = getattr(verifier, "spec_name", None)
    counters = {
        b: FlopCounter(engine.name, spec if p.config.uses_verifier else None) for b, p in plan.bins.items()
    }
    probe_counter = FlopCounter(engine.name, spec if plan.probe["score"] == "verifier" else None)
    bin_keys = {b: config_key(p, engine, verifier) for b, p in plan.bins.items()}
    start = time.perf_counter()
    for i in range(0, len(todo), batch_size):
        batch = todo[i : i + batch_size]
        t0 = time.perf_counter()
        probes = run_probe(engine, verifier, batch, plan.probe, plan.seed, plan.probe_max_tokens())
        results: list[Result | None] = [None] * len(batch)
        for b in BINS:
            idx = [j for j, pr in enumerate(probes) if pr.bin == b]
            if idx:
                config = plan.bins[b].config
                reuse = plan.probe["reuse"] and config.method in SAMPLING
                prior = [probes[j].texts for j in idx] if reuse else None
                solved = run_method(engine, verifier, [batch[j] for j in idx], config, prior=prior)
                for j, r in zip(idx, solved, strict=True):
                    results[j] = r
        per_problem = (time.perf_counter() - t0) / len(batch)
        records = [
            adaptive_record(p, key, bin_keys[pr.bin], pr, r, counters[pr.bin], probe_counter, per_problem)
            for p, pr, r in zip(batch, probes, results, strict=True)
        ]
        append_records(out, records)
        for r in records:
            done[r["problem_id"]] = r
        if progress:
            progress(len(batch))
    wall = time.perf_counter() - start
    mine = [done[i] for i in ids]
    return summarize(plan, mine, run=len(todo), skipped=skipped, wall_s=wall, out=out)


def summary_table(plan: AdaptivePlan, summary: AdaptiveSummary, verifier: str | None):
    """A rich table of the summary, one row per bin."""
    from rich.table import Table

    def fmt(value, spec=".3g"):
        return "-" if value is None else format(value, spec)

    table = Table(title=f"ttsplan run --adaptive on {plan.policy} (verifier {verifier or 'none'})")
    for col in ("bin", "config", "problems", "accuracy", "predicted", "FLOPs / problem"):
        table.add_column(col, justify="left" if col in ("bin", "config") else "right")
    for b in BINS:
        c, s = plan.bins[b].config, summary.bins[b]
        table.add_row(
            b,
            f"{c.method} n={c.n}",
            str(s["problems"]),
            fmt(s["accuracy"], ".3f"),
            fmt(plan.bins[b].predicted_accuracy, ".3f"),
            fmt(s["mean_flops"]),
        )
    table.add_row(
        "all",
        f"probe k={plan.probe['k']}",
        f"{summary.problems} ({summary.skipped} done before)",
        fmt(summary.accuracy, ".3f"),
        fmt(summary.predicted_accuracy, ".3f"),
        fmt(summary.mean_flops),
    )
    table.caption = (
        f"FLOPs include the probe ({fmt(summary.mean_probe_flops)} per problem); "
        f"predicted FLOPs {fmt(summary.predicted_flops)}; results {summary.out}"
    )
    return table
