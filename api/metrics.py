"""Prometheus metrics for the API: request latencies, and the pipeline's figures read from
the database at scrape time.

Why read the database at scrape time: ingest, scoring and publishing run in other
processes (``renown ingest``, ``renown score``, ``renown publish``), often as cron jobs
that are gone before a scrape; the database is where all of them leave their results, so
the API process, which is always up, reports them. Each scrape runs a handful of cheap
queries (primary-key look-ups and counts of small tables, docs/api.md lists them with
their cost) and, when Kafka is configured, one metadata and two ListOffsets requests for
the consumer lag.

Every figure lives in a ``CollectorRegistry`` of the app's own (``app.state.
metrics_registry``), not prometheus_client's global one: several apps in one process (the
tests) then never clash, and nothing is registered at import time.

Time bounds: the database figures and the broker's offsets are each read in a
:class:`Probe`, a single-flight worker thread waited on for at most a few seconds, so a
hung database or broker makes a scrape report ``renown_database_up 0`` or
``renown_consumer_lag_available 0`` instead of hanging it, and a flood of scrapes never
stacks up more than one pending read per dependency.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from renown.settings import Settings
from storage.chain_repo import CursorState, all_cursors
from storage.models import (
    ConsumerOffset,
    DeadLetter,
    Event,
    Publication,
    PublicationTx,
    ScoreEpoch,
    SkippedMessage,
)

__all__ = [
    "DB_TIMEOUT_S",
    "KAFKA_TIMEOUT_MS",
    "PUBLICATION_STAGES",
    "DatabaseCollector",
    "Probe",
    "broker_offsets",
    "install",
    "kafka_client",
    "read_figures",
    "route_label",
]

log = logging.getLogger("renown.api.metrics")

T = TypeVar("T")

# How long a scrape or a health check waits for the database and for Kafka.
DB_TIMEOUT_S = 2.0
KAFKA_TIMEOUT_MS = 1_500
# A pending read older than this is considered stuck for good: a new one may start.
STUCK_AFTER_S = 60.0

PUBLICATION_STAGES = ("snapshot", "scores", "done", "failed")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Request latency buckets, in seconds: API reads take milliseconds, a batch of a thousand
# accounts or a snapshot download can take seconds.
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


# --------------------------------------------------------------------------------------
# Bounded, single-flight reads
# --------------------------------------------------------------------------------------


class Probe(Generic[T]):
    """Runs ``fn`` in a daemon thread, at most one at a time, and reuses a result for
    ``ttl`` seconds.

    ``get(timeout)`` waits for the pending run at most ``timeout`` seconds and raises
    ``TimeoutError`` past it; the run goes on, and the next ``get`` waits for the same
    run rather than starting another (a hung dependency costs one thread, not one per
    request). A run pending for more than :data:`STUCK_AFTER_S` is abandoned.
    """

    def __init__(self, name: str, fn: Callable[[], T], *, ttl: float = 0.0) -> None:
        self.name, self.fn, self.ttl = name, fn, ttl
        self._lock = threading.Lock()
        self._pending: Future[T] | None = None
        self._started = 0.0
        self._last: tuple[float, Future[T]] | None = None

    def _start(self) -> Future[T]:
        fut: Future[T] = Future()

        def run() -> None:
            try:
                fut.set_result(self.fn())
            except BaseException as exc:
                fut.set_exception(exc)
            with self._lock:
                self._last = (time.monotonic(), fut)
                if self._pending is fut:
                    self._pending = None

        self._pending, self._started = fut, time.monotonic()
        threading.Thread(target=run, name=f"renown-probe-{self.name}", daemon=True).start()
        return fut

    def future(self) -> Future[T]:
        """The fresh-enough result, the pending run, or a new run; without waiting."""
        with self._lock:
            now = time.monotonic()
            if self._last is not None and now - self._last[0] < self.ttl:
                return self._last[1]
            if self._pending is not None and now - self._started < STUCK_AFTER_S:
                return self._pending
            return self._start()

    def get(self, timeout: float) -> T:
        try:
            return self.future().result(timeout)
        except TimeoutError:
            raise TimeoutError(f"{self.name}: no answer in {timeout:g} s") from None


# --------------------------------------------------------------------------------------
# Database figures
# --------------------------------------------------------------------------------------


@dataclass
class Figures:
    """What one scrape reads from the database."""

    events_max_id: int = 0
    dead_letters: int = 0
    skipped: int = 0
    epochs: int = 0
    latest: dict[str, Any] | None = None  # epoch, accounts, events_through, started, finished
    publish_txs: dict[bool, int] = field(default_factory=dict)
    publications: dict[str, int] = field(default_factory=dict)
    offsets: list[tuple[str, str, int, int]] = field(default_factory=list)  # group, topic, p, next
    chains: list[CursorState] = field(default_factory=list)  # the chain source's cursors


def read_figures(engine: Engine) -> Figures:
    """Every figure, in one read transaction (one consistent snapshot on PostgreSQL).

    Costs: ``max(events.id)`` and the latest epoch are primary-key look-ups (O(log n));
    ``count(*)`` is run only on tables that grow with failures or epochs, not with
    traffic (dead letters, skipped messages, epochs, publications, publication
    transactions); ``consumer_offsets`` has one row per partition and group. On
    PostgreSQL a ``statement_timeout`` caps each query at :data:`DB_TIMEOUT_S`.
    """
    out = Figures()
    with engine.connect() as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(text(f"SET LOCAL statement_timeout = {int(DB_TIMEOUT_S * 1000)}"))
        out.events_max_id = conn.execute(select(func.max(Event.id))).scalar() or 0
        out.dead_letters = conn.execute(select(func.count()).select_from(DeadLetter)).scalar_one()
        out.skipped = conn.execute(select(func.count()).select_from(SkippedMessage)).scalar_one()
        out.epochs = conn.execute(select(func.count()).select_from(ScoreEpoch)).scalar_one()
        row = conn.execute(
            select(
                ScoreEpoch.epoch,
                ScoreEpoch.accounts,
                ScoreEpoch.events_through,
                ScoreEpoch.started_at,
                ScoreEpoch.finished_at,
            )
            .order_by(ScoreEpoch.epoch.desc())
            .limit(1)
        ).first()
        if row is not None:
            out.latest = dict(row._mapping)
        out.publish_txs = {
            bool(ok): n
            for ok, n in conn.execute(
                select(PublicationTx.ok, func.count()).group_by(PublicationTx.ok)
            )
        }
        out.publications = {
            stage: n
            for stage, n in conn.execute(
                select(Publication.stage, func.count()).group_by(Publication.stage)
            )
        }
        out.offsets = [
            (g, t, p, o)
            for g, t, p, o in conn.execute(
                select(
                    ConsumerOffset.group_id,
                    ConsumerOffset.topic,
                    ConsumerOffset.partition,
                    ConsumerOffset.next_offset,
                )
            )
        ]
        # A row per chain source cursor (a chain, a backfill), in the same snapshot.
        with Session(bind=conn) as session:
            out.chains = all_cursors(session)
    return out


# --------------------------------------------------------------------------------------
# Kafka: end offsets for the consumer lag, and the health check's client
# --------------------------------------------------------------------------------------


def kafka_client(bootstrap: str, client_id: str) -> Any:
    """A group-less kafka-python consumer used only for metadata and ListOffsets: it
    bootstraps (TCP connect and ApiVersions) within :data:`KAFKA_TIMEOUT_MS` or raises
    ``KafkaTimeoutError``; close it after use."""
    from kafka import KafkaConsumer

    return KafkaConsumer(
        bootstrap_servers=bootstrap.split(","),
        group_id=None,
        client_id=client_id,
        enable_auto_commit=False,
        bootstrap_timeout_ms=KAFKA_TIMEOUT_MS,
        request_timeout_ms=KAFKA_TIMEOUT_MS,
        fetch_max_wait_ms=100,
        reconnect_backoff_max_ms=KAFKA_TIMEOUT_MS,
    )


@dataclass(frozen=True)
class TopicOffsets:
    topic: str
    beginning: dict[int, int]
    end: dict[int, int]


def broker_offsets(bootstrap: str, topic: str) -> TopicOffsets:
    """The first and next offsets of every partition of ``topic``, as the broker says."""
    from kafka import TopicPartition

    consumer = kafka_client(bootstrap, "renown-api-lag")
    try:
        partitions = sorted(consumer.partitions_for_topic(topic))
        if not partitions:
            return TopicOffsets(topic, {}, {})
        tps = [TopicPartition(topic, p) for p in partitions]
        end = consumer.end_offsets(tps, timeout_ms=KAFKA_TIMEOUT_MS)
        beginning = consumer.beginning_offsets(tps, timeout_ms=KAFKA_TIMEOUT_MS)
        return TopicOffsets(
            topic,
            {tp.partition: int(o) for tp, o in beginning.items()},
            {tp.partition: int(o) for tp, o in end.items()},
        )
    finally:
        consumer.close(autocommit=False)


def consumer_lag(
    offsets: TopicOffsets, stored: Iterable[tuple[str, str, int, int]], group_id: str
) -> list[tuple[str, int, int, int]]:
    """``(group, partition, committed, lag)`` for the configured group and every group the
    database has positions for on the topic. A partition without a stored position counts
    from the broker's first offset (where the ingest loop starts it). Lag is end minus
    committed, never below 0 (a broker that under-reports its end would give less)."""
    by_group: dict[str, dict[int, int]] = {group_id: {}}
    for group, topic, partition, next_offset in stored:
        if topic == offsets.topic:
            by_group.setdefault(group, {})[partition] = next_offset
    rows = []
    for group in sorted(by_group):
        for partition, end in sorted(offsets.end.items()):
            committed = by_group[group].get(partition, offsets.beginning.get(partition, 0))
            rows.append((group, partition, committed, max(0, end - committed)))
    return rows


# --------------------------------------------------------------------------------------
# The collector
# --------------------------------------------------------------------------------------


class DatabaseCollector(Collector):
    """Reads the pipeline's figures from ``state.db`` (and Kafka's offsets) per scrape."""

    def __init__(self, state: Any) -> None:
        self.state = state  # app.state: .db is opened by the lifespan, after install()
        self._db_probe: Probe[Figures] | None = None
        self._db_engine: Engine | None = None
        self._lag_probe: Probe[TopicOffsets] | None = None

    def describe(self) -> Iterable[Metric]:
        return []  # names are not reserved up front: nothing is read at registration

    def _figures(self, engine: Engine) -> Probe[Figures]:
        if self._db_probe is None or self._db_engine is not engine:
            self._db_engine = engine
            self._db_probe = Probe("metrics-db", lambda: read_figures(engine), ttl=1.0)
        return self._db_probe

    def _offsets(self, settings: Settings) -> Probe[TopicOffsets] | None:
        bootstrap = settings.kafka_bootstrap
        if not bootstrap:
            return None
        if self._lag_probe is None:
            topic = settings.topic
            self._lag_probe = Probe(
                "metrics-kafka", lambda: broker_offsets(bootstrap, topic), ttl=1.0
            )
        return self._lag_probe

    def collect(self) -> Iterator[Metric]:
        settings: Settings = self.state.settings
        db = getattr(self.state, "db", None)
        lag_probe = self._offsets(settings)
        # The broker read starts first, so that it overlaps the database's.
        pending = lag_probe.future() if lag_probe is not None else None
        timing = GaugeMetricFamily(
            "renown_scrape_duration_seconds",
            "Time this scrape spent reading each source.",
            labels=["source"],
        )
        up = GaugeMetricFamily(
            "renown_database_up", "1 when this scrape could read the database, else 0."
        )
        t0 = time.perf_counter()
        figures: Figures | None = None
        if db is not None:
            try:
                figures = self._figures(db.engine).get(DB_TIMEOUT_S + 0.5)
            except Exception as exc:
                log.warning("metrics: cannot read the database: %s", _short(exc))
        timing.add_metric(["database"], time.perf_counter() - t0)
        up.add_metric([], 1.0 if figures is not None else 0.0)
        yield up
        if figures is not None:
            yield from _database_metrics(figures)
        if pending is not None:
            t1 = time.perf_counter()
            yield from _lag_metrics(pending, figures, settings)
            timing.add_metric(["broker"], time.perf_counter() - t1)
        yield timing


def _short(exc: BaseException) -> str:
    text_ = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text_[0]}" if text_ else type(exc).__name__


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _database_metrics(f: Figures) -> Iterator[Metric]:
    yield _counter(
        "renown_events",
        "Events ingested: the highest events.id (ids are never reused; on PostgreSQL a "
        "duplicate skipped by ON CONFLICT or a rolled-back batch also uses one up).",
        f.events_max_id,
    )
    yield _counter("renown_dead_letters", "Messages kept as dead letters.", f.dead_letters)
    yield _counter(
        "renown_skipped_messages",
        "Well-formed messages of a standard, event or version Renown does not handle.",
        f.skipped,
    )
    yield _counter("renown_epochs", "Scoring epochs stored.", f.epochs)
    if f.latest is not None:
        latest = f.latest
        yield _gauge("renown_epoch_latest", "Number of the latest scoring epoch.", latest["epoch"])
        started, finished = _aware(latest["started_at"]), _aware(latest["finished_at"])
        yield _gauge(
            "renown_epoch_duration_seconds",
            "How long the latest scoring epoch took (finished_at - started_at).",
            max(0.0, (finished - started).total_seconds()),
        )
        yield _gauge(
            "renown_epoch_finished_timestamp_seconds",
            "When the latest epoch finished (Unix time); time() minus it is its age.",
            finished.timestamp(),
        )
        yield _gauge(
            "renown_epoch_accounts", "Accounts scored in the latest epoch.", latest["accounts"]
        )
        yield _gauge(
            "renown_epoch_events_through",
            "Highest events.id the latest epoch included (renown_events_total minus it: "
            "events not scored yet).",
            latest["events_through"],
        )
    txs = CounterMetricFamily(
        "renown_publish_transactions",
        "Transactions the publisher sent to the contract, by outcome.",
        labels=["ok"],
    )
    txs.add_metric(["true"], f.publish_txs.get(True, 0))
    txs.add_metric(["false"], f.publish_txs.get(False, 0))
    yield txs
    pubs = GaugeMetricFamily(
        "renown_publications", "Publications (epoch, contract) by stage.", labels=["stage"]
    )
    for stage in sorted(set(PUBLICATION_STAGES) | set(f.publications)):
        pubs.add_metric([stage], f.publications.get(stage, 0))
    yield pubs
    committed = GaugeMetricFamily(
        "renown_consumer_committed_offset",
        "Next offset to apply, per group and partition, as stored in consumer_offsets.",
        labels=["topic", "partition", "group"],
    )
    for group, topic, partition, offset in sorted(f.offsets):
        committed.add_metric([topic, str(partition), group], offset)
    yield committed
    yield from _chain_metrics(f.chains)


def _chain_metrics(cursors: list[CursorState]) -> Iterator[Metric]:
    """The chain source's place and lag, per cursor (``renown chain-source``; a backfill
    has a cursor of its own, named ``<chain>:backfill:<from>-<to>``)."""
    height = GaugeMetricFamily(
        "renown_chain_height",
        "Last block whose events are all in Kafka, per chain source cursor.",
        labels=["cursor"],
    )
    head = GaugeMetricFamily(
        "renown_chain_final_head",
        "The chain's final head when the source last looked.",
        labels=["cursor"],
    )
    lag = GaugeMetricFamily(
        "renown_chain_lag_blocks",
        "Final head minus the cursor: blocks not yet read (0 when caught up).",
        labels=["cursor"],
    )
    lag_s = GaugeMetricFamily(
        "renown_chain_lag_seconds",
        "How far behind the chain's clock the cursor's block is: the head's look time "
        "minus the block's timestamp (includes the time to finality, about 2 s).",
        labels=["cursor"],
    )
    seen = GaugeMetricFamily(
        "renown_chain_head_seen_timestamp_seconds",
        "When the source last looked at the head (Unix time): a stale value means the "
        "source is stuck or down.",
        labels=["cursor"],
    )
    messages = CounterMetricFamily(
        "renown_chain_messages",
        "Messages the source produced (and Kafka acknowledged), per cursor.",
        labels=["cursor"],
    )
    for c in cursors:
        height.add_metric([c.name], c.height)
        messages.add_metric([c.name], c.messages)
        if c.head_height is not None:
            head.add_metric([c.name], c.head_height)
            lag.add_metric([c.name], max(0, c.head_height - c.height))
        if c.head_seen_at is not None:
            seen_at = _aware(c.head_seen_at)
            seen.add_metric([c.name], seen_at.timestamp())
            if c.block_timestamp is not None:
                lag_s.add_metric([c.name], max(0.0, seen_at.timestamp() - c.block_timestamp / 1e9))
    yield from (height, head, lag, lag_s, seen, messages)


def _lag_metrics(
    pending: Future[TopicOffsets], figures: Figures | None, settings: Settings
) -> Iterator[Metric]:
    available = GaugeMetricFamily(
        "renown_consumer_lag_available",
        "1 when this scrape could read the consumer lag (broker and database), else 0.",
    )
    lag = GaugeMetricFamily(
        "renown_consumer_lag",
        "Messages on the broker not applied yet: partition end offset minus the offset "
        "committed in consumer_offsets.",
        labels=["topic", "partition", "group"],
    )
    try:
        offsets = pending.result(KAFKA_TIMEOUT_MS / 1000 + 1.5)
    except TimeoutError:
        log.warning("metrics: the broker's offsets did not come in time")
        offsets = None
    except Exception as exc:
        log.warning("metrics: cannot read the broker's offsets: %s", _short(exc))
        offsets = None
    if offsets is None or figures is None:
        available.add_metric([], 0.0)
        yield available
        return
    for group, partition, _committed, behind in consumer_lag(
        offsets, figures.offsets, settings.group_id
    ):
        lag.add_metric([offsets.topic, str(partition), group], behind)
    available.add_metric([], 1.0)
    yield available
    yield lag


def _aware(value: datetime) -> datetime:
    # SQLite returns naive datetimes; they were written in UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class EpochCacheCollector(Collector):
    """The score lookups this worker answered from memory and from the database, and the
    epoch it holds (api/epoch_cache.py). Per process: with several workers, each reports
    its own (the ``instance`` label a scraper adds, or a sum, tells them apart)."""

    def __init__(self, state: Any) -> None:
        self.state = state

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        cache = getattr(self.state, "epoch_cache", None)
        if cache is None:
            return
        served = CounterMetricFamily(
            "renown_api_score_lookups",
            "Accounts looked up by /v1/scores routes, by where the answer came from.",
            labels=["source"],
        )
        for source, n in cache.served.items():
            served.add_metric([source], float(n))
        yield served
        table = cache.loaded()
        yield _gauge(
            "renown_api_cache_epoch",
            "The epoch this worker holds in memory (0: none yet).",
            0.0 if table is None else float(table.epoch),
        )
        yield _gauge(
            "renown_api_cache_accounts",
            "Accounts of that epoch in this worker's memory.",
            0.0 if table is None else float(len(table.index)),
        )


# --------------------------------------------------------------------------------------
# Request latencies
# --------------------------------------------------------------------------------------


def route_label(scope: Scope) -> str:
    """The route template the request matched (``/v1/scores/{account}``), not its path:
    account ids in labels would make a series per account. ``unmatched`` otherwise."""
    # FastAPI >= 0.16x includes routers lazily: scope["route"] is then the route as its
    # router declared it (``/scores/{account}``), and the template with the include's
    # prefix is on the effective route context. Older FastAPI copied routes with the
    # prefix, so scope["route"].path is the whole template.
    fastapi_scope = scope.get("fastapi")
    context = (
        fastapi_scope.get("effective_route_context") if isinstance(fastapi_scope, dict) else None
    )
    for candidate in (context, scope.get("route"), _route_of_endpoint(scope)):
        path = getattr(candidate, "path_format", None) or getattr(candidate, "path", None)
        if isinstance(path, str) and path.startswith("/"):
            return path
    return "unmatched"


def _route_of_endpoint(scope: Scope) -> Any:
    """The app's own plain route (``/openapi.json``, ``/docs``) that served ``endpoint``:
    FastAPI puts no ``route`` in the scope for those."""
    endpoint = scope.get("endpoint")
    app = scope.get("app")
    if endpoint is None or app is None:
        return None
    for route in getattr(app, "routes", ()):
        if getattr(route, "endpoint", None) is endpoint:
            return route
    return None


class RequestMetrics:
    """Pure ASGI middleware timing each HTTP request into the latency histogram, labelled
    by method, route template and status (500 when the app raised before answering)."""

    def __init__(self, app: ASGIApp, histogram: Histogram) -> None:
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            method = scope.get("method", "")
            self.histogram.labels(
                method if method in _METHODS else "other", route_label(scope), str(status)
            ).observe(time.perf_counter() - start)


def install(app: FastAPI) -> None:
    """The request-latency middleware and the registry (``app.state.metrics_registry``)
    with the database collector. Idempotent; call it before the app starts (Starlette
    refuses middleware added later)."""
    if getattr(app.state, "metrics_registry", None) is not None:
        return
    registry = CollectorRegistry(auto_describe=False)
    histogram = Histogram(
        "renown_http_request_duration_seconds",
        "HTTP request latency, by method, route template and status.",
        ["method", "route", "status"],
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )
    registry.register(DatabaseCollector(app.state))
    registry.register(EpochCacheCollector(app.state))
    ProcessCollector(registry=registry)  # process_* (CPU, memory, open files): /proc reads
    app.add_middleware(RequestMetrics, histogram=histogram)
    app.state.metrics_registry = registry
