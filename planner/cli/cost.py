"""`ttsplan cost`: a model's parameters, pre-training FLOPs and FLOPs per token."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from planner.core import checks
from planner.core.errors import UserError
from planner.models import cost, specs

# Default context: the mean context of a MATH-500 solution token under the default workload
# (prompt estimate + half of Liu et al. 2025 Table 1's 236.9-token response).
_MATH500 = cost.workload_for("math500")
DEFAULT_CONTEXT = round(_MATH500.prompt_tokens + _MATH500.solution_tokens / 2)


def model_cost(spec: specs.ModelSpec, context: int) -> dict:
    """The numbers `ttsplan cost` prints, as one dict."""
    return {
        "name": spec.name,
        "role": spec.role,
        "family": spec.family,
        "params": spec.params,
        "nominal_params": spec.nominal_params,
        "active_params": spec.active_params,
        "matmul_params": spec.matmul_params,
        "layers": spec.layers,
        "hidden": spec.hidden,
        "heads": spec.heads,
        "kv_heads": spec.kv_heads,
        "head_dim": spec.head_dim,
        "vocab": spec.vocab,
        "max_context": spec.context,
        "pretraining_tokens": spec.pretraining_tokens,
        "pretraining_flops": cost.pretraining_flops(spec),
        "context": context,
        "flops_per_generated_token": float(cost.flops_per_token(spec, context)),
        "flops_per_prefill_token": float(cost.prefill_flops(spec, context)) / context,
        "convention": (
            "forward FLOPs: 2 x matmul params (all but the input-embedding lookup; MoE active) + "
            "4 x layers x keys x heads x head_dim; generated token attends to `context` keys, "
            "prefill figure is the mean over a `context`-token prompt"
        ),
        "source": spec.source,
    }


def _fmt(value) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, float) and (value >= 1e5 or (value and value < 1e-2)):
        return f"{value:.4g}"
    return str(value)


def run_cost(model: str | None, model_config: Path | None, context: int, as_json: bool, role: str) -> dict:
    if model is None and model_config is None:
        raise UserError("give --model NAME or --model-config PATH")
    checks.integer(context, "context", 1, checks.MAX_CONTEXT)
    if role not in specs.ROLES:
        raise UserError(f"role: must be one of {', '.join(specs.ROLES)}, got {checks.short(role)}")
    if model_config is not None:
        spec = specs.from_hf_config(model_config, role=role, name=model)
    else:
        spec = specs.resolve(model)
    result = model_cost(spec, context)
    if as_json:
        typer.echo(json.dumps(result))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"{spec.name} (context {context})", show_header=True)
        table.add_column("quantity")
        table.add_column("value", justify="right")
        for key, value in result.items():
            if key == "active_params" and value is None:
                table.add_row(key, "dense")
            elif key not in ("convention", "source", "name"):
                table.add_row(key, _fmt(value))
        console = Console()
        console.print(table)
        console.print(f"convention: {result['convention']}", soft_wrap=True)
        console.print(f"source: {result['source']}", soft_wrap=True)
    return result


def register(app: typer.Typer) -> None:
    @app.command("cost")
    def cost_command(
        model: str = typer.Option(None, "--model", help="Registry name, hub id or alias of the model."),
        model_config: Path = typer.Option(
            None, "--model-config", help="A config.json (or its folder) to count instead of the registry."
        ),
        context: int = typer.Option(
            DEFAULT_CONTEXT,
            "--context",
            help=f"Keys attended per token (default {DEFAULT_CONTEXT}: mean context of a MATH-500 solution).",
        ),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
        role: str = typer.Option("policy", "--role", help="Role for --model-config: policy, prm or orm."),
    ) -> None:
        """Parameters, pre-training FLOPs and FLOPs per token of one model."""
        run_cost(model, model_config, context, as_json, role)
