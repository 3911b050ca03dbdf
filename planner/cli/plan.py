"""`ttsplan fit`, `ttsplan plan` and `ttsplan predict`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from planner.core import checks
from planner.core.errors import UserError
from planner.core.files import check_output_file, write_json_atomic

# ---------------------------------------------------------------- helpers


def _load_records(dirs: list[Path]):
    from planner.core.profiles import load_profiles

    if not dirs:
        raise UserError("give at least one profile folder with --profiles")
    for folder in dirs:
        if not folder.is_dir():
            raise UserError(f"profile folder does not exist: {folder}")
        if not any(folder.iterdir()):
            raise UserError(f"profile folder is empty: {folder}")
    records = load_profiles(dirs)
    if len(records) == 0:
        raise UserError(f"profile folders hold no records: {', '.join(map(str, dirs))}")
    return records


def _budget(n: str | None, flops: str | None, seconds: str | None):
    from planner.plan.search import Budget, parse_budget

    given = [
        (k, v, f)
        for k, v, f in (
            ("n", n, "--budget-n"),
            ("flops", flops, "--budget-flops"),
            ("seconds", seconds, "--budget-seconds"),
        )
        if v is not None
    ]
    if not given:
        raise UserError("give one budget: --budget-n, --budget-flops or --budget-seconds")
    if len(given) > 1:
        raise UserError(f"give one budget only, got {' and '.join(f for _, _, f in given)}")
    kind, value, flag = given[0]
    return Budget(kind, parse_budget(value, flag))


def _policies(names: list[str] | None, configs: list[Path] | None) -> list:
    from planner.models import specs

    out: list = list(names or [])
    for path in configs or []:
        out.append(specs.from_hf_config(path, role="policy"))
    if not out:
        raise UserError("give at least one --policy NAME or --model-config PATH")
    return out


def _hardware(name: str | None):
    if name is None:
        return None
    from planner.models.hardware import get_hardware

    return get_hardware(name)


def _short(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def _config(rec: dict) -> str:
    """Compact configuration: "beam n=128 w=4 last/max", "majority n=8", "cot"."""
    if rec["method"] == "cot":
        return "cot"
    if rec.get("stop"):
        from planner.plan.stopping import describe

        return describe(rec)
    text = f"{rec['method']} n={rec['n']}"
    if rec["beam_width"] is not None:
        text += f" w={rec['beam_width']}"
    if rec["aggregation"] != "none":
        text += f" {rec['aggregation']}/{rec['selection']}"
    return text


def _tie_key(rec: dict) -> tuple:
    """What a row shows apart from its aggregation."""
    low, high = rec["accuracy_interval"]
    return tuple(
        rec.get(k)
        for k in ("policy", "prm", "method", "n", "beam_width", "selection", "stop", "predicted_accuracy")
    ) + (low, high, rec["flops_per_problem"], rec.get("in_calibrated_range"), rec.get("extrapolated"))


def fold_aggregations(records: list[dict], rows: int) -> list[dict]:
    """The first `rows` distinct rows, those that differ only in aggregation and predict the same (a
    verifier known from published cells alone, which do not say how steps were aggregated) shown as
    one, with aggregation "last|min|..." in the order ranked."""
    out: dict[tuple, dict] = {}
    for rec in records:
        key = _tie_key(rec)
        if key in out:
            if rec["aggregation"] not in out[key]["aggregation"].split("|"):
                out[key]["aggregation"] += f"|{rec['aggregation']}"
        elif len(out) < rows:
            out[key] = dict(rec)
    return list(out.values())


def _table(title: str, records: list[dict], with_hw: bool):
    """Rich table; policy and PRM get columns only when they differ between rows."""
    from rich.table import Table

    shown = [k for k in ("policy", "prm") if len({r[k] for r in records}) > 1]
    fixed = [f"{k} {_short(records[0][k])}" for k in ("policy", "prm") if k not in shown and records]
    table = Table(title=f"{title}\n{', '.join(fixed)}" if fixed else title)
    for key in shown:
        table.add_column(key, overflow="fold")
    table.add_column("config", overflow="fold")
    for col in ("acc %", "interval %", "FLOPs", *(("s", "$") if with_hw else ())):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("cal.", no_wrap=True)
    for rec in records:
        low, high = rec["accuracy_interval"]
        cells = [_short(rec[k]) for k in shown] + [
            _config(rec),
            f"{100 * rec['predicted_accuracy']:.1f}",
            f"{100 * low:.0f}-{100 * high:.0f}",
            f"{rec['flops_per_problem']:.3g}",
        ]
        if with_hw:
            dollars = rec.get("dollars_per_problem")
            cells += [f"{rec['seconds_per_problem']:.3g}", "-" if dollars is None else f"{dollars:.2g}"]
        cells.append(_calibrated(rec))
        table.add_row(*cells)
    return table


def _cv_summary(cv, coverage_target: float) -> dict:
    """Means of the leave-one-policy-out table; None figures when no policy could be held out."""
    problems = float(cv["problems"].sum()) if len(cv) else 0.0
    return {
        "groups": int(len(cv)),
        "mae_points_mean": float(cv["mae_points"].mean()) if len(cv) else None,
        "mae_points_weighted": float((cv["mae_points"] * cv["problems"]).sum() / problems)
        if problems
        else None,
        "coverage_mean": float(cv["coverage"].mean()) if len(cv) else None,
        "coverage_target": coverage_target,
    }


def _calibrated(rec: dict) -> str:
    """The table's "cal." cell: yes, no, or extrap. (a per-problem model past its sampled N)."""
    if not rec["in_calibrated_range"]:
        return "no"
    return "extrap." if rec.get("extrapolated") else "yes"


PREDICTOR_HELP = (
    "scaling (default): per-problem scaling models where the policy has sample-level calibration, "
    "the same curves with predicted parameters for other policies, the regressor for what neither "
    "covers; regressor: the regressor alone (the baseline)"
)


# ---------------------------------------------------------------- commands


def fit_command(
    profiles: list[Path] = typer.Option(
        None, "--profiles", help="Profile folder(s): --profiles DIR [DIR ...]"
    ),
    more: list[Path] = typer.Argument(
        None, help="More profile folders (so that --profiles profiles/* works)"
    ),
    out: Path = typer.Option(..., "--out", help="Model file to write (a manifest is written beside it)"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object"),
) -> None:
    """Fit the accuracy regressor on profiles, print leave-one-policy-out CV, save with a manifest;
    fit a per-problem scaling model for every (policy, dataset) with sample-level records (JSON
    beside the model, its sha256 in the manifest)."""
    import time

    from planner.core.profiles import fingerprint
    from planner.predict.modelio import manifest_path, save_model, scaling_file
    from planner.predict.regressor import fit_profiles, grouped_cv
    from planner.predict.scalingfit import fit_scaling

    check_output_file(out, "out")  # before the fit, not after it
    check_output_file(manifest_path(out), "out")
    dirs = [Path(p) for p in [*(profiles or []), *(more or [])]]
    records = _load_records(dirs)
    started = time.perf_counter()
    model, report = fit_profiles(records)
    held_out: list = []  # the regressor's leave-one-policy-out check, run while the table workers work
    doc = fit_scaling(dirs, records, meanwhile=lambda: held_out.append(grouped_cv(records, group="policy")))
    fit_seconds = time.perf_counter() - started
    (cv,) = held_out
    summary = _cv_summary(cv, model.coverage)
    profile_names = sorted(set(records["profile"])) if "profile" in records else []
    sets = [
        {k: e[k] for k in ("policy", "dataset", "source", "problems", "samples_per_problem", "fit_seconds")}
        for e in doc["sets"]
    ]
    scaling_target, scaling_bytes, entry = scaling_file(doc, out)
    scaling = {**entry, "sets": sets}
    manifest = save_model(
        model,
        out,
        fingerprint(records),
        extra={"profiles": profile_names, **report, "cv_leave_one_policy_out": summary, "scaling": scaling},
        companions={scaling_target: scaling_bytes},
    )
    result = {
        "model": str(out),
        "sha256": manifest["sha256"],
        "training_fingerprint": manifest["training_fingerprint"],
        **report,
        "interval_half_width_logit": model.half_width_,
        "cv": cv.to_dict(orient="records"),
        "cv_summary": summary,
        "scaling": scaling,
        "fit_seconds": fit_seconds,
    }
    if as_json:
        typer.echo(json.dumps(result))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="leave one policy out")
    for col in ("policy", "rows", "problems", "MAE (points)", "coverage"):
        table.add_column(col, justify="left" if col == "policy" else "right")
    for row in cv.itertuples(index=False):
        table.add_row(
            row.policy, str(row.rows), f"{row.problems:.0f}", f"{row.mae_points:.1f}", f"{row.coverage:.2f}"
        )
    console.print(table)
    console.print(
        f"rows used {report['rows_used']} of {report['records']} records; dropped {report['dropped']}\n"
        + (
            f"CV: MAE {summary['mae_points_mean']:.1f} points (mean over policies), "
            f"{summary['mae_points_weighted']:.1f} (weighted by problems); interval coverage "
            f"{summary['coverage_mean']:.2f} (target {summary['coverage_target']})\n"
            if summary["groups"]
            else "CV: none (one policy: no policy to hold out)\n"
        )
        + f"per-problem scaling models: {len(sets)} (policy, dataset) sets with samples"
        + "".join(
            f"\n  {e['policy']} on {e['dataset']}: {e['problems']} problems x {e['samples_per_problem']}"
            for e in sets
        )
        + f"\nfitting (with the leave-one-policy-out check) took {fit_seconds:.1f} s\n"
        f"wrote {out}, {scaling['file']} and {out}.manifest.json (sha256 {manifest['sha256'][:12]}...)"
    )


def plan_command(
    policy: list[str] = typer.Option(None, "--policy", help="Policy model (repeatable)"),
    model_config: list[Path] = typer.Option(
        None, "--model-config", help="config.json of a policy not in the registry"
    ),
    prm: list[str] = typer.Option(
        None, "--prm", help="Reward model (repeatable); default: every known PRM, and arith-check on arith"
    ),
    dataset: str = typer.Option(None, "--dataset", help="math500, aime24, amc23, gsm8k, arith"),
    difficulty: str = typer.Option(None, "--difficulty", help="easy, medium or hard"),
    budget_n: str = typer.Option(None, "--budget-n", help="At most N samples per problem"),
    budget_flops: str = typer.Option(None, "--budget-flops", help="At most F FLOPs per problem"),
    budget_seconds: str = typer.Option(
        None, "--budget-seconds", help="At most S seconds per problem (--hardware)"
    ),
    hardware: str = typer.Option(
        None, "--hardware", help="Hardware profile for seconds and dollars (h100, ...)"
    ),
    beam_width: int = typer.Option(4, "--beam-width", help="Beam width of beam and dvts"),
    model: Path = typer.Option(None, "--model", help="Regressor file (default: the shipped one)"),
    top: int = typer.Option(5, "--top", help="How many alternatives to list"),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as one JSON object"),
    out: Path = typer.Option(None, "--out", help="Write the plan JSON to this file"),
    per_bin: bool = typer.Option(
        False, "--per-bin", help="One configuration per difficulty bin under a mean budget"
    ),
    mix: str = typer.Option(
        None, "--mix", help="With --per-bin: fractions per bin, easy=0.3,medium=0.4,hard=0.3"
    ),
    probe_k: int = typer.Option(4, "--probe-k", help="With --per-bin: probe samples per problem at run time"),
    probe_reuse: bool = typer.Option(
        False,
        "--probe-reuse",
        help="With --per-bin: the probe's samples count toward majority / Best-of-N bins, and the "
        "probe toward the mean budget",
    ),
    probe_score: str = typer.Option(
        "agreement",
        "--probe-score",
        help="With --per-bin: how the probe estimates pass@1: agreement, verifier, or posterior (the "
        "per-problem model's posterior; not with --predictor regressor)",
    ),
    predictor: str = typer.Option(None, "--predictor", help=PREDICTOR_HELP),
    method: list[str] = typer.Option(None, "--method", help="Only these methods (repeatable)"),
    aggregation: list[str] = typer.Option(
        None, "--aggregation", help="Only these PRM aggregations (repeatable)"
    ),
    selection: list[str] = typer.Option(
        None, "--selection", help="Only these selections, max or vote (repeatable)"
    ),
    stop: list[str] = typer.Option(
        None,
        "--stop",
        help="Also adaptive candidates: majority stopping by this rule up to a cap, beta:C or esc:W "
        "(repeatable; not with --predictor regressor)",
    ),
) -> None:
    """The best configuration within a budget, its alternatives and the accuracy/FLOPs frontier."""
    from planner.plan.search import PlanRequest, plan
    from planner.predict.modelio import load_planner_model

    if not per_bin and mix is not None:
        raise UserError("--mix needs --per-bin")
    if per_bin and difficulty is not None:
        raise UserError("--difficulty cannot be combined with --per-bin (it plans every bin)")
    if out is not None:
        check_output_file(out, "out")
    checks.integer(top, "top", 0, checks.MAX_TOP)
    budget = _budget(budget_n, budget_flops, budget_seconds)
    hw = _hardware(hardware)
    policies = _policies(policy, model_config)
    only = {"aggregations": aggregation or None, "selections": selection or None}
    if method:
        only["methods"] = method
    if stop:
        from planner.core.stopping import parse_rule

        if per_bin:
            raise UserError("--stop cannot be combined with --per-bin")
        if predictor == "regressor":
            raise UserError(
                "--stop needs --predictor scaling (adaptive candidates come from per-problem models)"
            )
        try:
            only["stop_rules"] = [str(parse_rule(text)) for text in stop]
        except UserError as exc:
            raise UserError(f"--{exc}") from None
    request = PlanRequest(
        policies=policies,
        budget=budget,
        prms=prm or None,
        dataset=dataset,
        difficulty=difficulty,
        hardware=hw,
        beam_width=beam_width,
        **only,
    )
    regressor, info = load_planner_model(model, **({"predictor": predictor} if predictor else {}))
    if stop and info.get("predictor") != "scaling":
        raise UserError(
            "--stop: the model file has no per-problem models (adaptive candidates come from them)"
        )
    if per_bin:
        probe = {"k": probe_k, "reuse": probe_reuse, "score": probe_score}
        if probe_score == "posterior":
            probe["posterior"] = {}  # filled in by the planner from the per-problem model
        _per_bin(request, regressor, info, mix, probe, as_json, out)
        return
    if probe_reuse or probe_score != "agreement":
        raise UserError("--probe-reuse and --probe-score need --per-bin")
    result = plan(regressor, request, top=top, model_info=info)
    obj = result.to_dict()
    if out is not None:
        write_json_atomic(out, obj)
    if as_json:
        typer.echo(json.dumps(obj))
        return
    from rich.console import Console

    console = Console()
    with_hw = hw is not None
    target = (
        f"{obj['dataset']} ({obj['difficulty']})" if obj["dataset"] else f"difficulty {obj['difficulty']}"
    )
    shown = fold_aggregations([result.best, *result.alternatives], top + 1)
    if len(shown) < min(top + 1, result.within_budget):  # folded rows: rank further to fill the table
        more = plan(regressor, request, top=4 * top + 3, model_info=info)
        shown = fold_aggregations([more.best, *more.alternatives], top + 1)
    console.print(_table(f"best within budget {budget.kind} <= {budget.value:.4g}, {target}", shown, with_hw))
    console.print(_table("frontier: predicted accuracy vs FLOPs per problem", result.frontier, with_hw))
    console.print(
        f"{obj['within_budget']} of {obj['candidates']} candidates within budget. {_interval_note(regressor)}; "
        "'cal. no': outside the training data; 'extrap.': a per-problem model past the samples per "
        "problem it was fitted on."
    )
    if any("|" in rec["aggregation"] for rec in shown):
        console.print(
            "Aggregations joined by '|' predict the same: the verifier is known from published cells, "
            "which do not say how steps were aggregated; the plan runs the first."
        )
    ranking = obj["ranking"]
    console.print(f"Ranking: {ranking['rule']}.")
    if ranking["changed_choice"]:
        alt = ranking["point_estimate_choice"]
        console.print(
            f"The rule changed the choice: by point estimate alone it would be {_config(alt)} "
            f"with {_short(alt['prm'])} ({100 * alt['predicted_accuracy']:.1f}%, interval "
            f"{100 * alt['accuracy_interval'][0]:.0f}-{100 * alt['accuracy_interval'][1]:.0f}%, "
            f"{_calibrated(alt)} in the calibrated range)."
        )
    if out is not None:
        console.print(f"wrote {out}")


def _profile_records():
    """The shipped profiles' records (to count difficulties), None when there are none."""
    from planner.core.profiles import default_profile_dirs, load_profiles

    dirs = default_profile_dirs()
    if not dirs:
        return None
    try:
        return load_profiles(dirs)
    except UserError as exc:
        sys.stderr.write(f"note: shipped profiles not read for the mix ({exc})\n")
        return None


def _interval_note(model) -> str:
    """Where the plan table's intervals come from, for this predictor."""
    held_out = "sized so that {:.0%} of held-out policies' accuracies fell inside it in cross-validation"
    if not hasattr(model, "assess_frame"):  # the regressor alone
        return "Interval: " + held_out.format(getattr(model, "coverage", 0.8))
    from planner.predict.scaling import LEVEL

    return (
        f"Interval ({LEVEL:.0%}): for a policy with samples, the accuracy on as many new problems as it "
        "was calibrated on (the fit's spread over problems plus the new problems' draw); for one "
        "without, " + held_out.format(LEVEL)
    )


def _per_bin(request, regressor, info: dict, mix: str | None, probe: dict, as_json: bool, out) -> None:
    """`ttsplan plan --per-bin`: per-bin table, the static comparison, or the JSON."""
    from planner.core.vocab import BINS
    from planner.plan.binplan import parse_mix, plan_by_difficulty

    given = parse_mix(mix) if mix is not None else None
    try:
        result = plan_by_difficulty(
            regressor,
            request,
            mix=given,
            records=None if given is not None else _profile_records(),
            probe=probe,
            model_info=info,
        )
    except UserError as exc:
        text = str(exc)
        budget_flag = "--budget-" + request.budget.kind
        for name, flag in (
            ("probe: score", "--probe-score"),
            ("probe_k", "--probe-k"),
            ("budget:", budget_flag),
        ):
            if text.startswith(name):
                raise UserError(flag + text.removeprefix(name.split(":")[0])) from None
        raise
    obj = result.to_dict()
    if out is not None:
        write_json_atomic(out, obj)
    if as_json:
        typer.echo(json.dumps(obj))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    target = obj["dataset"] or "MATH-500 difficulty bins"
    budget = request.budget
    table = Table(title=f"per-bin plan, mean budget {budget.kind} <= {budget.value:.4g}, {target}")
    for col in ("bin", "share", "config", "acc %", "FLOPs", "n", "static %", "cal."):
        table.add_column(col, justify="left" if col in ("bin", "config") else "right")
    static = obj["static"]
    for b in BINS:
        rec = obj["bins"][b]
        table.add_row(
            b,
            f"{rec['weight']:.2f}",
            _config(rec),
            f"{100 * rec['predicted_accuracy']:.1f}",
            f"{rec['flops_per_problem']:.3g}",
            str(rec["n"]),
            f"{100 * static['predicted_accuracy_by_bin'][b]:.1f}",
            "yes" if rec["in_calibrated_range"] else "no",
        )
    table.add_row(
        "mean",
        "1.00",
        "split",
        f"{100 * obj['mean_predicted_accuracy']:.1f}",
        f"{obj['mean_flops_per_problem']:.3g}",
        f"{obj['mean_n']:.3g}",
        f"{100 * static['predicted_accuracy']:.1f}",
        "",
    )
    console.print(table)
    console.print(
        f"static (one configuration for every bin): {_config(static)}, "
        f"{100 * static['predicted_accuracy']:.1f}% at {static['flops_per_problem']:.3g} FLOPs; "
        + (
            f"splitting gains {100 * result.gain:.1f} points."
            if result.gain > 5e-4
            else "splitting does not help here."
        )
    )
    probe = obj["probe_cost"]
    extra = f" (about {probe['flops_per_problem']:.3g} FLOPs per problem)" if probe else ""
    if obj["with_probe"]:
        w = obj["with_probe"]
        console.print(
            f"mix: {obj['mix_source']}. At run time (ttsplan run --adaptive) a probe of "
            f"{obj['probe']['k']} samples{extra} sorts each problem into a bin; its samples count toward "
            f"majority / Best-of-N bins ({w['reused_samples']:.2g} per problem on average), so the bins' "
            f"costs above overstate what they add: with the probe, {w['flops_per_problem']:.3g} FLOPs and "
            f"{w['n']:.3g} samples per problem."
        )
    else:
        console.print(
            f"mix: {obj['mix_source']}. At run time (ttsplan run --adaptive) a probe of "
            f"{obj['probe']['k']} samples{extra} sorts each problem into a bin; not in the means above."
        )
    if obj["routed"]:
        r = obj["routed"]
        shares = ", ".join(f"{b} {100 * v:.0f}%" for b, v in r["routed_share"].items())
        console.print(
            f"Routed by the probe ({r['score']}; the per-problem model's posterior over how its answers "
            f"split): predicted {100 * r['predicted_accuracy']:.1f}% (problems sent to {shares})."
        )
    if out is not None:
        console.print(f"wrote {out}")


def predict_command(
    policy: str = typer.Option(None, "--policy", help="Policy model"),
    model_config: Path = typer.Option(
        None, "--model-config", help="config.json of a policy not in the registry"
    ),
    prm: str = typer.Option("none", "--prm", help="Reward model, or none for cot/majority"),
    method: str = typer.Option(..., "--method", help="cot, majority, best_of_n, beam, dvts"),
    aggregation: str = typer.Option(
        None, "--aggregation", help="last, min, mean, prod (none for cot/majority)"
    ),
    selection: str = typer.Option(None, "--selection", help="max or vote (cot: none, majority: vote)"),
    n: int = typer.Option(None, "--n", help="Samples per problem (cot: 1)"),
    beam_width: int = typer.Option(4, "--beam-width", help="Beam width of beam and dvts"),
    dataset: str = typer.Option(None, "--dataset", help="math500, aime24, amc23, gsm8k, arith"),
    difficulty: str = typer.Option(None, "--difficulty", help="easy, medium or hard"),
    hardware: str = typer.Option(None, "--hardware", help="Hardware profile for seconds and dollars"),
    model: Path = typer.Option(None, "--model", help="Regressor file (default: the shipped one)"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object"),
    predictor: str = typer.Option(None, "--predictor", help=PREDICTOR_HELP),
) -> None:
    """Predicted accuracy, interval and cost of one configuration."""
    from planner.core.vocab import METHODS
    from planner.plan.search import predict_config
    from planner.predict.modelio import load_planner_model

    if method not in METHODS:
        raise UserError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if policy is not None and model_config is not None:
        raise UserError("give --policy or --model-config, not both")
    policies = _policies([policy] if policy else None, [model_config] if model_config else None)
    if method == "cot":
        n = 1 if n is None else n
        aggregation = aggregation or "none"
        selection = selection or "none"
    elif method == "majority":
        aggregation = aggregation or "none"
        selection = selection or "vote"
    if n is None:
        raise UserError(f"method {method} needs --n")
    if aggregation is None or selection is None:
        raise UserError(f"method {method} needs --aggregation and --selection")
    hw = _hardware(hardware)
    regressor, info = load_planner_model(model, **({"predictor": predictor} if predictor else {}))
    try:
        result = predict_config(
            regressor,
            policies[0],
            prm,
            method,
            aggregation,
            selection,
            n,
            beam_width,
            dataset,
            difficulty,
            hw,
        )
    except UserError as exc:  # the library names its parameter; here it is a flag
        raise UserError(f"--{exc}" if str(exc).startswith("n: ") else str(exc)) from None
    result["model"] = info
    if as_json:
        typer.echo(json.dumps(result))
        return
    from rich.console import Console

    console = Console()
    console.print(_table("prediction", [result], hw is not None))


def register(app: typer.Typer) -> None:
    app.command("fit")(fit_command)
    app.command("plan")(plan_command)
    app.command("predict")(predict_command)
