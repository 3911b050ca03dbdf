"""`ttsplan serve`: an OpenAI-compatible endpoint that plans and runs test-time scaling per request.

Every check (plan file, names, engine kind, port) happens before any model loads. The server binds
127.0.0.1 unless --host says otherwise; --api-key (or $TTSPLAN_API_KEY) makes every path but
/health answer 401 without it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from planner.core.errors import UserError

DEFAULT_POLICY = "HuggingFaceTB/SmolLM2-135M-Instruct"
API_KEY_ENV = "TTSPLAN_API_KEY"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def serve_command(
    policy: Annotated[
        str | None,
        typer.Option(help="Policy model (embedded name or folder; with --engine openai the served id)."),
    ] = None,
    verifier: Annotated[
        str | None, typer.Option(help="lm-judge, lm-judge:MODEL, arith-check or a PRM folder.")
    ] = None,
    engine: Annotated[str, typer.Option(help="auto, vllm, transformers or openai.")] = "auto",
    base_url: Annotated[
        str | None, typer.Option(help="With --engine openai: the backend server's URL.")
    ] = None,
    backend_api_key: Annotated[
        str | None, typer.Option(help="With --engine openai: the backend's API key.")
    ] = None,
    plan: Annotated[
        Path | None, typer.Option(help="Default plan (ttsplan plan --out) for requests without tts.")
    ] = None,
    budget_n: Annotated[
        int, typer.Option(help="Without --plan: the default is the planner's pick for N samples.")
    ] = 4,
    dataset: Annotated[
        str, typer.Option(help="What the planner predicts for (math500, gsm8k, arith, ...).")
    ] = "math500",
    hardware: Annotated[str | None, typer.Option(help="Hardware profile, for budgets in seconds.")] = None,
    model: Annotated[
        Path | None, typer.Option(help="Planner regressor file (default: the shipped one).")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    api_key: Annotated[str | None, typer.Option(help=f"Required from clients (or ${API_KEY_ENV}).")] = None,
    max_tokens: Annotated[
        int, typer.Option(help="Most tokens per solution (a request may ask fewer).")
    ] = 512,
    max_prompt_tokens: Annotated[int, typer.Option(help="Longest prompt accepted, in tokens.")] = 1024,
    max_batch: Annotated[int, typer.Option(help="Most problems batched into one method call.")] = 16,
    seed: Annotated[int, typer.Option(help="First server seed (requests without one).")] = 0,
    threads: Annotated[
        int | None,
        typer.Option(help="torch CPU threads for the transformers engine (1 is faster on a busy machine)."),
    ] = None,
) -> None:
    """Serve /v1/chat/completions and /v1/completions with test-time scaling planned per request."""
    from planner.core.planfile import load_plan
    from planner.executor.factory import canonical, check_engine_kind, check_policy, check_verifier

    for name, value in (
        ("--port", port),
        ("--max-tokens", max_tokens),
        ("--max-prompt-tokens", max_prompt_tokens),
    ):
        if value < 1 or (name == "--port" and value > 65535):
            raise UserError(f"{name}: out of range: {value}")
    if max_batch < 1:
        raise UserError(f"--max-batch must be >= 1, got {max_batch}")
    if threads is not None and threads < 1:
        raise UserError(f"--threads must be >= 1, got {threads}")
    api_key = api_key or os.environ.get(API_KEY_ENV) or None
    default_plan = load_plan(plan) if plan is not None else None
    policy = policy or (default_plan.policy if default_plan else DEFAULT_POLICY)
    verifier = verifier or (default_plan.prm if default_plan and default_plan.config.uses_verifier else None)
    check_engine_kind(engine)
    check_policy(engine, policy)
    if verifier:
        check_verifier(verifier)
    hw = None
    if hardware is not None:
        from planner.models.hardware import get_hardware

        hw = get_hardware(hardware)
    if host not in LOOPBACK and not api_key:
        sys.stderr.write(f"warning: serving on {host} without --api-key: anyone who reaches it can use it\n")

    # models load from here on
    from planner.executor.factory import load_engine, load_verifier, set_openai_server

    set_openai_server(base_url, backend_api_key)
    if threads is not None and engine != "openai":
        import torch

        torch.set_num_threads(threads)
    the_verifier = load_verifier(verifier, canonical(policy)) if verifier else None
    the_engine = load_engine(engine, canonical(policy) if engine != "openai" else policy, seed)
    app = build_app(
        the_engine,
        the_verifier,
        default_plan,
        dataset,
        hw,
        model,
        api_key,
        max_tokens,
        max_prompt_tokens,
        max_batch,
        seed,
    )
    import uvicorn

    sys.stderr.write(f"ttsplan serve: {the_engine.name} on http://{host}:{port}/v1\n")
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")  # returns on SIGTERM / Ctrl-C
    finally:
        app.state.service.close()


def build_app(
    engine,
    verifier,
    default_plan,
    dataset,
    hardware,
    model,
    api_key,
    max_tokens,
    max_prompt_tokens,
    max_batch,
    seed,
):
    """The app for loaded models (the tests call this with their own engine)."""
    from planner.serve.app import Service, Settings, create_app
    from planner.serve.batching import Batcher
    from planner.serve.strategy import Strategist

    limits = {"max_total_tokens": max_tokens, "max_step_tokens": min(2048, max_tokens)}
    if default_plan is not None:
        default_plan = default_plan.with_overrides(policy=engine.name)
    strategist = Strategist(
        engine.name,
        verifier.name if verifier is not None else None,
        plan=default_plan,
        dataset=dataset,
        hardware=hardware,
        model_path=str(model) if model else None,
        limits=limits,
    )
    settings = Settings(api_key=api_key, max_tokens=max_tokens, max_prompt_tokens=max_prompt_tokens)
    batcher = Batcher(engine, verifier, max_batch=max_batch, seed=seed)
    return create_app(Service(engine, verifier, strategist, settings, batcher))


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_command)
