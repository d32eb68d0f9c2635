"""``/healthz`` and ``/metrics`` for the processes that serve no HTTP of their own.

Why: an orchestrator (Kubernetes probes, compose health checks) must tell a hung
``renown ingest``, ``chain-source``, ``score --every`` or ``publish --every`` from a
working one, and none of them has a port. With ``health_port`` set, each starts this small
server (stdlib ``http.server`` in a daemon thread, so it answers even while the main
thread waits on Kafka, the database or the chain) on ``health_host:health_port``.

Healthy means the process's loop is alive: it called :meth:`Health.beat` within
``stale_after_s``, or it is inside :meth:`Health.busy` (a scoring epoch, a publication)
for less than ``busy_limit_s``. It does not mean the dependencies are up: a consumer that
waits for a database outage to end beats on (restarting it would not help); the API's
``/healthz`` and ``/metrics`` report the dependencies. The facts a loop reports with its
beat (messages, height, epochs...) are exported as gauges.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["Health", "serve_health"]

log = logging.getLogger("renown.health")


@dataclass
class Health:
    """A loop's heartbeat: ``beat(**facts)`` each round, ``with busy("epoch"):`` around
    long work."""

    process: str
    stale_after_s: float = 60.0
    busy_limit_s: float = 3600.0
    clock: Callable[[], float] = time.monotonic
    facts: dict[str, float] = field(default_factory=dict)
    _last: float = field(default=0.0, init=False)
    _busy: tuple[str, float] | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self._last = self.clock()

    def beat(self, **facts: float) -> None:
        with self._lock:
            self._last = self.clock()
            self.facts.update(facts)

    @contextmanager
    def busy(self, what: str) -> Iterator[None]:
        with self._lock:
            self._busy = (what, self.clock())
        try:
            yield
        finally:
            with self._lock:
                self._busy = None
                self._last = self.clock()

    def status(self) -> tuple[bool, dict[str, Any]]:
        with self._lock:
            now = self.clock()
            age = now - self._last
            busy = self._busy
            facts = dict(self.facts)
        if busy is not None:
            busy_for = now - busy[1]
            ok = busy_for < self.busy_limit_s
            why = f"busy: {busy[0]} for {busy_for:.0f} s"
        else:
            ok = age < self.stale_after_s
            why = "" if ok else f"no progress for {age:.0f} s (limit {self.stale_after_s:g} s)"
        body: dict[str, Any] = {
            "status": "ok" if ok else "stale",
            "process": self.process,
            "last_beat_age_s": round(age, 3),
            "facts": facts,
        }
        if busy is not None or why:
            body["detail"] = why
        return ok, body


class _Collector(Collector):
    def __init__(self, health: Health) -> None:
        self.health = health

    def collect(self) -> Iterator[Metric]:
        ok, body = self.health.status()
        up = GaugeMetricFamily(
            "renown_process_healthy",
            "1 while the process's loop makes progress (as /healthz), else 0.",
            labels=["process"],
        )
        up.add_metric([self.health.process], 1.0 if ok else 0.0)
        yield up
        age = GaugeMetricFamily(
            "renown_process_last_beat_age_seconds",
            "Seconds since the loop last reported progress.",
            labels=["process"],
        )
        age.add_metric([self.health.process], body["last_beat_age_s"])
        yield age
        facts = GaugeMetricFamily(
            "renown_process_fact",
            "What the loop reported with its last beat (messages, height, epochs...).",
            labels=["process", "name"],
        )
        for name, value in sorted(body["facts"].items()):
            facts.add_metric([self.health.process, name], float(value))
        yield facts


def serve_health(health: Health, host: str, port: int) -> ThreadingHTTPServer:
    """Start the server in a daemon thread; ``shutdown()`` and ``server_close()`` stop it.
    A port in use is an OSError here, at start, not a silent lack of probes."""
    registry = CollectorRegistry()
    registry.register(_Collector(health))
    registry.register(ProcessCollector(registry=None))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                ok, body = health.status()
                self._send(200 if ok else 503, "application/json", json.dumps(body).encode())
            elif path == "/metrics":
                self._send(200, "text/plain; version=0.0.4", generate_latest(registry))
            else:
                self._send(404, "application/json", b'{"error":"not_found"}')

        def _send(self, status: int, kind: str, data: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # probes every few seconds would flood the process's log

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="renown-health", daemon=True).start()
    log.info("health on http://%s:%d/healthz and /metrics", host, server.server_address[1])
    return server
