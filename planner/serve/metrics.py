"""Prometheus metrics of one server (its own registry, so several apps can live in one process)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 80, 160, 320)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "tts_requests",
            "Requests by endpoint, method and HTTP status",
            ["endpoint", "method", "status"],
            registry=r,
        )
        self.tokens = Counter(
            "tts_tokens", "Tokens by kind: prompt, completion, verifier", ["kind", "method"], registry=r
        )
        self.flops = Counter(
            "tts_flops", "FLOPs spent (policy + verifier), by method", ["method"], registry=r
        )
        self.latency = Histogram(
            "tts_request_seconds",
            "Latency of answered requests, by method",
            ["method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch = Histogram(
            "tts_batch_problems",
            "Problems per batched method call",
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=r,
        )
        self.cancelled = Counter(
            "tts_cancelled", "Requests whose client went away before the answer", registry=r
        )

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
