"""Operations: ``GET /healthz`` (database, broker and chain reachability) and ``GET
/metrics`` (Prometheus text format). Mounted at the root, not under ``/v1``: they are for
the operator's probes and scrapers, not part of the versioned API.

Why the database alone decides 503: the API serves every answer from the database, so
with the database up it answers correctly even when Kafka or the NEAR RPC node is down (a
broker outage delays new events, a chain outage delays publications; neither stops
reads). A load balancer that took the API out of rotation for a broker outage would turn
a delay into an outage, so those make the status ``degraded`` with HTTP 200.

Every check runs in a :class:`api.metrics.Probe`: in parallel, each waited on for at most
:data:`CHECK_TIMEOUT_S`, so ``/healthz`` answers within about 2.5 s even when something
hangs; single-flight, and the broker's and the chain's results are reused for
:data:`HEALTH_TTL_S`, so a flood of ``/healthz`` requests opens at most one Kafka
connection and makes one RPC call per dependency and period.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import Engine, func, select, text

from api.errors import ApiError
from api.metrics import Probe, kafka_client
from renown import bootstrap
from renown.settings import Settings
from storage.models import ScoreEpoch

__all__ = ["CHECK_TIMEOUT_S", "HEALTH_TTL_S", "router"]

router = APIRouter(tags=["operations"])

CHECK_TIMEOUT_S = 2.5  # the longest /healthz waits for any one check (they run in parallel)
HEALTH_TTL_S = 2.0  # broker and chain results are reused this long
_ERROR_LEN = 300

_probes_lock = threading.Lock()


def _error(exc: BaseException) -> str:
    """One line naming the failure, without a stack trace."""
    orig = getattr(exc, "orig", None)  # SQLAlchemy wraps the driver's error
    lines = str(orig or exc).strip().splitlines()
    name = type(orig or exc).__name__
    return (f"{name}: {lines[0]}" if lines else name)[:_ERROR_LEN]


def _timed(fn: Any) -> dict[str, Any]:
    """Run a check: ``{"ok": true, "ms": ..., **what it found}`` or ``{"ok": false,
    "error": ..., "ms": ...}``."""
    start = time.perf_counter()
    try:
        found = fn()
    except Exception as exc:
        return {"ok": False, "error": _error(exc), "ms": _ms(start)}
    return {"ok": True, "ms": _ms(start), **found}


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)


def check_database(engine: Engine) -> dict[str, Any]:
    """``SELECT 1``, then the latest epoch (a primary-key look-up)."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        epoch = conn.execute(select(func.max(ScoreEpoch.epoch))).scalar()
    return {"epoch": epoch}


def check_broker(settings: Settings) -> dict[str, Any]:
    """kafka-python's bootstrap (TCP connect, ApiVersions) then a Metadata request for the
    topic: it proves the broker speaks Kafka and knows the topic, not only that a port is
    open; kafka-python is the client ingest uses, so its failures are ingest's."""
    consumer = kafka_client(bootstrap.require_bootstrap(settings), "renown-api-health")
    try:
        partitions = consumer.partitions_for_topic(settings.topic)
    finally:
        consumer.close(autocommit=False)
    return {"topic": settings.topic, "partitions": len(partitions)}


def check_chain(settings: Settings) -> dict[str, Any]:
    """Through the chain seam: py-near's ``status`` request (its start-up) and the
    contract's ``get_latest_snapshot`` view, whose epoch is reported."""
    client = bootstrap.make_chain_client(settings, signer=False)
    try:  # ChainUnavailable: the node did not answer; ViewError: the contract failed
        latest = client.view("get_latest_snapshot", {})
    finally:
        close = getattr(client, "close", None)
        if close is not None:
            close()
    epoch = latest.get("epoch") if isinstance(latest, dict) else None
    return {"contract": client.contract_id, "published_epoch": epoch}


class _HealthProbes:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine: Engine | None = None
        self.database: Probe[dict[str, Any]] | None = None
        self.broker = Probe(
            "health-broker", lambda: _timed(lambda: check_broker(settings)), ttl=HEALTH_TTL_S
        )
        self.chain = Probe(
            "health-chain", lambda: _timed(lambda: check_chain(settings)), ttl=HEALTH_TTL_S
        )

    def database_probe(self, engine: Engine) -> Probe[dict[str, Any]]:
        if self.database is None or self.engine is not engine:
            self.engine = engine
            self.database = Probe("health-db", lambda: _timed(lambda: check_database(engine)))
        return self.database


def _probes(request: Request) -> _HealthProbes:
    state = request.app.state
    with _probes_lock:
        probes = getattr(state, "health_probes", None)
        if probes is None:
            probes = state.health_probes = _HealthProbes(state.settings)
        return probes  # type: ignore[no-any-return]


def _wait(probe: Probe[dict[str, Any]], deadline: float) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        return probe.future().result(max(0.0, deadline - time.monotonic()))
    except TimeoutError:
        return {
            "ok": False,
            "error": f"no answer in {CHECK_TIMEOUT_S:g} s",
            "ms": _ms(start),
        }


@router.get(
    "/healthz",
    summary="Reachability of the database, the broker and the chain",
    responses={
        200: {"description": "The database is up (status ok, or degraded: broker or chain down)"},
        503: {"description": "The database is down (status down, with the error shape)"},
    },
)
def healthz(request: Request) -> JSONResponse:
    """Checks the database (``SELECT 1``), the broker (when ``kafka_bootstrap`` is set)
    and the chain (when ``contract_id`` is set), in parallel, in at most about 2.5 s.
    200 while the database is up (``ok``, or ``degraded`` when the broker or the chain is
    down: reads go on); 503 when it is down."""
    settings: Settings = request.app.state.settings
    probes = _probes(request)
    deadline = time.monotonic() + CHECK_TIMEOUT_S
    # Start every check before waiting for any: they run in parallel.
    db = getattr(request.app.state, "db", None)
    db_probe = probes.database_probe(db.engine) if db is not None else None
    if db_probe is not None:
        db_probe.future()
    broker_probe = probes.broker if settings.kafka_bootstrap else None
    chain_probe = probes.chain if settings.contract_id else None
    for p in (broker_probe, chain_probe):
        if p is not None:
            p.future()

    checks: dict[str, dict[str, Any]] = {}
    if db_probe is None:
        checks["database"] = {"ok": False, "error": "the database is not open", "ms": 0.0}
    else:
        checks["database"] = dict(_wait(db_probe, deadline))
    epoch = checks["database"].pop("epoch", None)
    checks["broker"] = (
        _wait(broker_probe, deadline) if broker_probe else {"skipped": "not configured"}
    )
    checks["chain"] = _wait(chain_probe, deadline) if chain_probe else {"skipped": "not configured"}

    body: dict[str, Any] = {"status": "ok", "checks": checks, "epoch": epoch}
    headers = {"Cache-Control": "no-store"}
    if not checks["database"]["ok"]:
        body["status"] = "down"
        body["error"] = {
            "code": "database_unavailable",
            "message": "the database is not reachable",
            "hint": "the API serves from the database; checks.database has the cause",
        }
        headers["Retry-After"] = "5"
        return JSONResponse(body, status_code=503, headers=headers)
    if any(c.get("ok") is False for c in checks.values()):
        body["status"] = "degraded"
    return JSONResponse(body, headers=headers)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Text format 0.0.4"}},
)
def metrics(request: Request) -> Response:
    """Request latencies and the pipeline's figures (events, dead letters, epochs,
    publications, consumer lag) in the Prometheus text format; docs/api.md lists them."""
    registry = getattr(request.app.state, "metrics_registry", None)
    if registry is None:
        raise ApiError(
            404, "metrics_disabled", "metrics are not installed", "api.metrics.install(app)"
        )
    return Response(
        generate_latest(registry),
        media_type=CONTENT_TYPE_LATEST,
        headers={"Cache-Control": "no-store"},
    )
