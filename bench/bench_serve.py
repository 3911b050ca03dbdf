"""Load test of `ttsplan serve` on loopback: concurrency against sequential requests, bad input, proxy overhead.

1. Throughput: the same R chat requests (majority vote, n samples, no seed) sent one after another,
   then by C concurrent clients; throughput ratio = sequential wall / concurrent wall (and the same
   in generated tokens per second, since unseeded samples differ in length), p50/p95 latency of each.
2. Bad input: B bad requests (malformed JSON, unknown model, invalid budget or method, over-long
   prompt, missing fields, ...) shuffled among G good ones, from 8 clients: every bad one must be a
   4xx, every good one answered, and the server alive at the end.
3. Proxy overhead (with --backend-url, a running `vllm serve`): greedy CoT requests through
   `ttsplan serve --engine openai` against the same prompts sent to the backend directly.

The server runs as a subprocess (`ttsplan serve --engine transformers` on the embedded SmolLM2).
Writes bench/results/serve.json and serve.md.

    PYTHONPATH=. .venv/bin/python bench/bench_serve.py
    PYTHONPATH=. .venv/bin/python bench/bench_serve.py --backend-url http://127.0.0.1:8001
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from planner.core.files import write_text_atomic
from planner.core.procs import start_group, stop_group

HERE = Path(__file__).parent
ROOT = HERE.parent
OUT_JSON = HERE / "results" / "serve.json"
OUT_MD = HERE / "results" / "serve.md"
POLICY = "HuggingFaceTB/SmolLM2-135M-Instruct"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def ttsplan_serve(*args: str, timeout_s: float = 600):
    """`ttsplan serve ARGS` on a free loopback port; yields its URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "planner.cli.main", "serve", "--port", str(port), *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = start_group(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"ttsplan serve exited: {proc.stderr.read()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            if time.time() > deadline:
                raise RuntimeError("ttsplan serve did not start in time")
            time.sleep(1)
        yield url, proc
    finally:
        stop_group(proc)


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def chat(question: str, tts: dict, max_tokens: int) -> dict:
    return {
        "model": POLICY,
        "messages": [{"role": "user", "content": question}],
        "max_tokens": max_tokens,
        "tts": tts,
    }


def post(client: httpx.Client, url: str, body) -> tuple[int, dict | None, float]:
    t0 = time.perf_counter()
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = client.post(
        url + "/v1/chat/completions", content=content, headers={"content-type": "application/json"}
    )
    try:
        data = r.json()
    except ValueError:
        data = None
    return r.status_code, data, time.perf_counter() - t0


def run_phase(url: str, bodies: list, clients: int) -> dict:
    """Send every body, `clients` at a time; wall time, latencies and tokens."""
    with httpx.Client(timeout=900) as client, ThreadPoolExecutor(clients) as pool:
        t0 = time.perf_counter()
        results = list(pool.map(lambda b: post(client, url, b), bodies))
        wall = time.perf_counter() - t0
    latencies = [lat for _, _, lat in results]
    ok = [d for s, d, _ in results if s == 200]
    tokens = sum(d["usage"]["completion_tokens"] for d in ok)
    batches = [d["tts"]["batch_size"] for d in ok]
    return {
        "requests": len(bodies),
        "answered": len(ok),
        "clients": clients,
        "wall_s": round(wall, 2),
        "requests_per_s": round(len(ok) / wall, 4),
        "generated_tokens": tokens,
        "generated_tokens_per_s": round(tokens / wall, 2),
        "latency_p50_s": round(percentile(latencies, 0.5), 2),
        "latency_p95_s": round(percentile(latencies, 0.95), 2),
        "mean_batch_size": round(statistics.mean(batches), 2) if batches else None,
    }


def bad_bodies(count: int) -> list[tuple[str, object]]:
    good = chat("What is 1 + 1?", {"method": "cot"}, 8)
    kinds = [
        ("malformed json", b'{"model": '),
        ("not an object", b'"hello"'),
        ("missing model", {k: v for k, v in good.items() if k != "model"}),
        ("unknown model", {**good, "model": "gpt-4o"}),
        ("missing messages", {"model": POLICY}),
        ("no user message", {**good, "messages": [{"role": "system", "content": "x"}]}),
        ("unknown method", {**good, "tts": {"method": "mcts"}}),
        ("invalid budget", {**good, "tts": {"budget": {"n": -3}}}),
        ("budget kind", {**good, "tts": {"budget": {"dollars": 1}}}),
        ("budget too small", {**good, "tts": {"budget": {"flops": 10}}}),
        ("beam n", {**good, "tts": {"method": "beam", "n": 6}}),
        ("over-long prompt", chat("2 + 2 = 4. " * 400, {"method": "cot"}, 8)),
        ("stream", {**good, "stream": True}),
        ("temperature", {**good, "temperature": -1}),
        ("max_tokens", {**good, "max_tokens": 10**6}),
    ]
    return [kinds[i % len(kinds)] for i in range(count)]


def bad_phase(url: str, bad: int, good: int, proc) -> dict:
    rng = random.Random(0)
    items = [("bad", name, body) for name, body in bad_bodies(bad)]
    items += [("good", "good", chat(f"What is {i} + 3?", {"method": "cot"}, 16)) for i in range(good)]
    rng.shuffle(items)
    with httpx.Client(timeout=900) as client, ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda it: (it[0], it[1], post(client, url, it[2])), items))
    bad_status = [s for kind, _, (s, _, _) in results if kind == "bad"]
    good_status = [s for kind, _, (s, _, _) in results if kind == "good"]
    wrong = sorted(
        {
            name
            for kind, name, (s, d, _) in results
            if kind == "bad" and not (400 <= s < 500 and d and "error" in d)
        }
    )
    health = httpx.get(url + "/health", timeout=10).status_code
    return {
        "bad_requests": len(bad_status),
        "bad_4xx": sum(400 <= s < 500 for s in bad_status),
        "bad_statuses": {str(s): bad_status.count(s) for s in sorted(set(bad_status))},
        "bad_not_4xx_kinds": wrong,
        "good_requests": len(good_status),
        "good_answered": sum(s == 200 for s in good_status),
        "server_alive": health == 200 and proc.poll() is None,
    }


def overhead_phase(backend: str, requests: int, max_tokens: int) -> dict:
    """Greedy CoT through ttsplan serve --engine openai vs the same prompts sent to the backend,
    alternating one direct and one proxied request so that load on the machine hits both alike."""
    from planner.executor.engines.openai_engine import OpenAIEngine

    questions = [f"What is {7 * i + 3} + {5 * i + 11}?" for i in range(requests)]
    engine = OpenAIEngine(backend, model=POLICY)
    prompts = [engine.format_prompt(q) for q in questions]
    engine.close()
    direct = proxy = 0.0
    direct_tokens = proxy_tokens = 0
    server = (
        "--engine",
        "openai",
        "--base-url",
        backend,
        "--policy",
        POLICY,
        "--max-tokens",
        str(max_tokens),
    )
    with ttsplan_serve(*server) as (url, _), httpx.Client(timeout=900) as client:
        for q in questions[:2]:  # warm-up: caches, connections
            post(client, url, chat(q, {"method": "cot"}, max_tokens))
        pairs = []
        for i, (q, p) in enumerate(zip(questions, prompts, strict=True)):
            body = {"model": POLICY, "prompt": p, "max_tokens": max_tokens, "temperature": 0}
            times = {}
            for side in (
                ("direct", "proxy") if i % 2 == 0 else ("proxy", "direct")
            ):  # alternate who goes first
                t0 = time.perf_counter()
                if side == "direct":
                    direct_tokens += client.post(backend + "/v1/completions", json=body).json()["usage"][
                        "completion_tokens"
                    ]
                else:
                    status, data, _ = post(client, url, chat(q, {"method": "cot"}, max_tokens))
                    proxy_tokens += data["usage"]["completion_tokens"] if status == 200 else 0
                times[side] = time.perf_counter() - t0
            direct += times["direct"]
            proxy += times["proxy"]
            pairs.append(times["proxy"] / times["direct"] - 1)
    return {
        "requests": requests,
        "max_tokens": max_tokens,
        "direct_wall_s": round(direct, 3),
        "proxy_wall_s": round(proxy, 3),
        "direct_generated_tokens": direct_tokens,
        "proxy_generated_tokens": proxy_tokens,
        "overhead": round(proxy / direct - 1, 4),
        "overhead_median_pair": round(statistics.median(pairs), 4),
    }


def instant_backend():
    """An OpenAI-compatible backend that answers at once (a fixed 16-token completion): what the
    proxy costs on its own, with no model time to hide it."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/v1/models")
    def models():
        return {"object": "list", "data": [{"id": POLICY, "object": "model"}]}

    @app.post("/v1/completions")
    def completions():
        choice = {
            "index": 0,
            "text": "12 + 30 = 42. The answer is \\boxed{42}.",
            "finish_reason": "stop",
            "stop_reason": None,
        }
        usage = {"prompt_tokens": 60, "completion_tokens": 16, "total_tokens": 76}
        return {
            "id": "x",
            "object": "text_completion",
            "created": 0,
            "model": POLICY,
            "choices": [choice],
            "usage": usage,
        }

    return app


def proxy_cost_phase(requests: int) -> dict:
    """Latency of CoT requests through ttsplan serve --engine openai over an instant backend."""
    import threading

    import uvicorn

    port = free_port()
    backend = uvicorn.Server(
        uvicorn.Config(instant_backend(), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=backend.run, daemon=True)
    thread.start()
    for _ in range(100):
        if backend.started:
            break
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    try:
        server = ("--engine", "openai", "--base-url", base, "--policy", POLICY)
        with ttsplan_serve(*server) as (url, _), httpx.Client(timeout=60) as client:
            body = {"model": POLICY, "prompt": "x", "max_tokens": 16}
            direct = []
            for _ in range(requests):
                t0 = time.perf_counter()
                client.post(base + "/v1/completions", json=body)
                direct.append(time.perf_counter() - t0)
            post(client, url, chat("What is 12 + 30?", {"method": "cot"}, 16))  # warm-up
            proxied = [
                post(client, url, chat("What is 12 + 30?", {"method": "cot"}, 16))[2] for _ in range(requests)
            ]
    finally:
        backend.should_exit = True
        thread.join(timeout=10)
    return {
        "requests": requests,
        "backend_direct_ms_p50": round(1000 * statistics.median(direct), 2),
        "through_proxy_ms_p50": round(1000 * statistics.median(proxied), 2),
        "through_proxy_ms_p95": round(1000 * percentile(proxied, 0.95), 2),
        "proxy_own_ms_p50": round(1000 * (statistics.median(proxied) - statistics.median(direct)), 2),
    }


def markdown(res: dict) -> str:
    lines = ["# ttsplan serve on loopback", "", f"{res['machine']}."]
    for name, w in res.get("throughput", {}).items():
        lines += [
            "",
            f"## Throughput: {name} ({w['date']})",
            "",
            f"Server: `{w['server']}`; work: {w['work']}.",
            "",
            "| mode | clients | wall s | req/s | gen tok/s | p50 s | p95 s | mean batch |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for mode in ("sequential", "concurrent"):
            p = w[mode]
            lines.append(
                f"| {mode} | {p['clients']} | {p['wall_s']} | {p['requests_per_s']} | {p['generated_tokens_per_s']} "
                f"| {p['latency_p50_s']} | {p['latency_p95_s']} | {p['mean_batch_size']} |"
            )
        lines += [
            "",
            f"Throughput ratio (same requests, sequential wall / concurrent wall): **{w['throughput_ratio']}x**; "
            f"in generated tokens per second: **{w['token_throughput_ratio']}x** (target >= 3x).",
        ]
        if w.get("note"):
            lines += ["", f"Note: {w['note']}"]
    if res.get("bad_input"):
        bad = res["bad_input"]
        lines += [
            "",
            f"## Bad input ({bad['date']})",
            "",
            f"{bad['bad_4xx']}/{bad['bad_requests']} bad requests answered 4xx {bad['bad_statuses']}, "
            f"{bad['good_answered']}/{bad['good_requests']} good ones answered, server alive: {bad['server_alive']}.",
        ]
    if res.get("overhead"):
        o = res["overhead"]
        lines += [
            "",
            f"## Proxy overhead ({o['date']})",
            "",
            f"Greedy CoT, {o['requests']} requests of <= {o['max_tokens']} tokens, alternating direct and proxied: "
            f"direct to vllm serve {o['direct_wall_s']} s ({o['direct_generated_tokens']} tokens), through "
            f"ttsplan serve --engine openai {o['proxy_wall_s']} s ({o['proxy_generated_tokens']} tokens): "
            f"**{100 * o['overhead']:.1f}%** (median over request pairs {100 * o['overhead_median_pair']:.1f}%; "
            "target <= 10%).",
        ]
    if res.get("proxy_cost"):
        c = res["proxy_cost"]
        lines += [
            "",
            f"## What the proxy costs on its own ({c['date']})",
            "",
            f"CoT through ttsplan serve --engine openai over a backend that answers at once ({c['requests']} "
            f"sequential requests): {c['through_proxy_ms_p50']} ms p50 ({c['through_proxy_ms_p95']} ms p95) against "
            f"{c['backend_direct_ms_p50']} ms for the backend alone: the proxy adds **{c['proxy_own_ms_p50']} ms** "
            "per request (10 ms of it is the batching queue's wait for more requests).",
        ]
    return "\n".join(lines) + "\n"


def workload(spec: str) -> dict:
    """ "cot" or "majority:4" (method:n) as a tts object."""
    method, _, n = spec.partition(":")
    return {"method": method, "n": int(n)} if n else {"method": method}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument(
        "--workload", action="append", help="cot or METHOD:N (repeat); default cot and majority:4"
    )
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--bad", type=int, default=200)
    parser.add_argument("--good", type=int, default=20)
    parser.add_argument("--backend-url", help="a running vllm serve for the proxy-overhead phase")
    parser.add_argument("--overhead-requests", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the server")
    parser.add_argument("--engine", default="transformers", help="the server's engine: transformers or vllm")
    parser.add_argument(
        "--phases", default="throughput,bad,proxycost,overhead", help="which phases to run (results merge)"
    )
    args = parser.parse_args()
    phases = set(args.phases.split(","))

    server = ["--engine", args.engine, "--policy", POLICY, "--max-tokens", str(args.max_tokens)]
    server += ["--max-batch", str(args.clients), "--threads", str(args.threads)]
    res: dict = json.loads(OUT_JSON.read_text()) if OUT_JSON.exists() else {}
    res["machine"] = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (shared with other jobs)"
    )
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    if phases & {"throughput", "bad"}:
        with ttsplan_serve(*server) as (url, proc):
            for spec in args.workload or ["cot", "majority:4"] if "throughput" in phases else []:
                tts = workload(spec)
                qs = [f"What is {3 * i + 4} + {2 * i + 9}?" for i in range(args.requests)]
                bodies = [chat(q, tts, args.max_tokens) for q in qs]
                with httpx.Client(timeout=900) as client:  # warm-up
                    post(client, url, chat("What is 1 + 2?", tts, args.max_tokens))
                seq, conc = run_phase(url, bodies, 1), run_phase(url, bodies, args.clients)
                res.setdefault("throughput", {})[f"{args.engine} {spec}"] = {
                    "date": now,
                    "server": "ttsplan serve " + " ".join(server),
                    "work": f"{args.requests} chat requests, tts {json.dumps(tts)}, max_tokens {args.max_tokens}, no seed",
                    "sequential": seq,
                    "concurrent": conc,
                    "throughput_ratio": round(seq["wall_s"] / conc["wall_s"], 2),
                    "token_throughput_ratio": round(
                        conc["generated_tokens_per_s"] / seq["generated_tokens_per_s"], 2
                    ),
                }
            if "bad" in phases:
                res["bad_input"] = {"date": now, **bad_phase(url, args.bad, args.good, proc)}
    if "proxycost" in phases:
        res["proxy_cost"] = {"date": now, **proxy_cost_phase(50)}
    if "overhead" in phases and args.backend_url:
        res["overhead"] = {
            "date": now,
            **overhead_phase(args.backend_url, args.overhead_requests, args.max_tokens),
        }
    write_text_atomic(OUT_JSON, json.dumps(res, indent=2) + "\n")
    write_text_atomic(OUT_MD, markdown(res))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
