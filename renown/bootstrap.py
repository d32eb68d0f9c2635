"""The composition root: real adapters are built here, from settings, and nowhere else.

Entry points (the CLI, the demo, the benchmarks) call these functions; tests build the
same objects with their own database URLs and brokers. Nothing connects at import time.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from chain.client import ChainClient, ChainUnavailable, NearRpcClient
from chain.publisher import Publisher
from chain.rpc import JsonRpc
from ingest.apply import BatchApplier
from ingest.consumer import IngestLoop, IngestStats, KafkaDeadLetterSink, make_consumer
from ingest.produce import make_producer
from moderation.service import record_findings
from renown.health import Health, serve_health
from renown.settings import Settings
from scoring.collusion import GraphGroups
from scoring.detect import DETECTORS, VOTE_RING, DetectorInput, Finding
from scoring.evidence import signed_edges
from scoring.label_quality import estimate_label_quality
from scoring.label_trust import apply_label_quality
from scoring.model import GLOBAL_DOMAIN, AccountScore, score_accounts
from scoring.sanctions import Sanctions
from storage import chain_repo, migrate
from storage.db import DatabaseUnavailable, describe, make_engine, make_session_factory
from storage.flags_repo import active_sanctions
from storage.scoring_repo import (
    epoch_trust,
    latest_epoch,
    latest_event_id,
    load_evidence,
    load_first_seen,
    load_labels,
    next_epoch,
    write_epoch,
)
from storage.snapshot_repo import build_snapshot
from storage.uow import UnitOfWork


class NotConfigured(RuntimeError):
    """A command needs a setting that is not given (the message names it)."""


@dataclass
class Database:
    engine: Engine
    sessions: sessionmaker[Session]  # reads
    writer_sessions: sessionmaker[Session]  # transactions that write
    url: str

    def close(self) -> None:
        self.engine.dispose()


def open_database(settings: Settings, *, require_schema: bool = True) -> Database:
    """Connect, and refuse to go on against a database the migrations have not reached."""
    pool: dict[str, Any] = {}
    if not settings.database_url.startswith("sqlite"):
        size = settings.database_pool_size
        pool = {"pool_size": size, "max_overflow": size}
    engine = make_engine(settings.database_url, **pool)
    where = describe(settings.database_url)
    try:
        up_to_date = migrate.is_up_to_date(engine)
    except OperationalError as exc:
        engine.dispose()
        raise DatabaseUnavailable(f"cannot reach the database {where}: {exc.orig}") from exc
    if require_schema and not up_to_date:
        engine.dispose()
        raise DatabaseUnavailable(
            f"the database {where} is not at the current schema; run `renown db upgrade` first"
        )
    return Database(
        engine, make_session_factory(engine), make_session_factory(engine, writer=True), where
    )


def require_bootstrap(settings: Settings) -> str:
    if not settings.kafka_bootstrap:
        raise NotConfigured(
            "no Kafka configured: set RENOWN_KAFKA_BOOTSTRAP=host:port (or kafka_bootstrap in the "
            "config file); `renown demo` starts an embedded broker instead"
        )
    return settings.kafka_bootstrap


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """A stop flag set by SIGTERM or SIGINT, so the loop finishes its batch and exits cleanly."""
    stop = threading.Event()
    previous = {}

    def handler(signum: int, _frame: Any) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def build_ingest_loop(
    settings: Settings,
    db: Database,
    *,
    stop: threading.Event | None = None,
    group_id: str | None = None,
) -> IngestLoop:
    bootstrap = require_bootstrap(settings)
    group = group_id or settings.group_id
    consumer = make_consumer(
        bootstrap,
        group,
        session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=settings.heartbeat_interval_ms,
        batch_size=settings.batch_size,
    )
    dead_letters = None
    if settings.dead_letter_topic:
        dead_letters = KafkaDeadLetterSink(make_producer(bootstrap), settings.dead_letter_topic)
    return IngestLoop(
        consumer,
        BatchApplier(db.writer_sessions, group),
        [settings.topic],
        batch_size=settings.batch_size,
        poll_timeout_ms=settings.poll_timeout_ms,
        dead_letters=dead_letters,
        stop=stop,
    )


@contextmanager
def health_probe(settings: Settings, process: str) -> Iterator[Health]:
    """The process's heartbeat, served on ``health_port`` when set (renown/health.py)."""
    health = Health(process, stale_after_s=settings.health_stale_s)
    server = None
    if settings.health_port is not None:
        try:
            server = serve_health(health, settings.health_host, settings.health_port)
        except OSError as exc:  # the port taken, the address not this machine's
            raise NotConfigured(
                f"cannot serve /healthz on {settings.health_host}:{settings.health_port} "
                f"(RENOWN_HEALTH_HOST/RENOWN_HEALTH_PORT): {exc.strerror or exc}"
            ) from None
    try:
        yield health
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()


def beat_ingest(health: Health) -> Callable[[IngestStats], None]:
    """An ingest loop's ``on_poll``: alive, with its counts."""

    def beat(stats: IngestStats) -> None:
        health.beat(messages=stats.totals.messages, batches=stats.batches,
                    db_retries=stats.db_retries)  # fmt: skip

    return beat


def run_ingest(loop: IngestLoop, **kwargs: Any) -> IngestStats:
    try:
        return loop.run(**kwargs)
    finally:
        loop.consumer.close(autocommit=False)
        if isinstance(loop.dead_letters, KafkaDeadLetterSink):
            loop.dead_letters.producer.close()


@dataclass(frozen=True)
class EpochSummary:
    epoch: int
    events_through: int
    accounts: int
    edges: int
    domains: list[str]
    seconds: float
    root: str = ""  # the epoch's Merkle root (scoring.merkle), lowercase hex
    leaves: int = 0
    flags_raised: list[int] = field(default_factory=list)  # new flags from the detectors
    findings_seen_again: int = 0
    sanctions: list[int] = field(default_factory=list)  # confirmed flags applied
    detector_errors: dict[str, str] = field(default_factory=dict)


MODEL_NAME = "ppr-v4-closed-groups"
log = logging.getLogger(__name__)


def run_detectors(inp: DetectorInput, kinds: list[str]) -> tuple[list[Finding], dict[str, str]]:
    """Every configured detector; one that fails is reported, not fatal: an epoch's scores
    must not wait on a moderation aid (the failure is in the epoch's params and the log)."""
    findings: list[Finding] = []
    errors: dict[str, str] = {}
    for kind in kinds:
        try:
            findings.extend(DETECTORS[kind](inp))
        except Exception as exc:
            log.exception("detector %s failed", kind)
            errors[kind] = f"{type(exc).__name__}: {exc}"
    return findings, errors


def run_scoring(settings: Settings, db: Database) -> EpochSummary:
    """One scoring epoch: load evidence and the sanctions in force, build the graph,
    propagate, store, run the detectors and queue their new findings, all or nothing."""
    started = datetime.now(UTC)
    with UnitOfWork(db.sessions) as uow:
        through = latest_event_id(uow.session)
        evidence = load_evidence(uow.session, through)
        labels = load_labels(uow.session, through)
        first_seen = load_first_seen(uow.session, evidence.accounts) if settings.detectors else None
        previous = latest_epoch(uow.session)
        warm = epoch_trust(uow.session, previous.epoch) if previous is not None else None
        sanctions = active_sanctions(uow.session)
    # Confirmed flags (scoring.sanctions): sanctioned labels leave the quality estimate,
    # the trust they earn is scaled, and sanctioned accounts pass on only their factor.
    labels = sanctions.filter_labels(labels)
    quality = estimate_label_quality(labels)
    with_quality = sanctions.scale_label_trust(apply_label_quality(evidence, labels, quality))
    signed = signed_edges(
        with_quality,
        half_life_days=settings.decay_half_life_days,
        kind_weights=settings.kind_weights,
    )
    edges = signed.trust
    global_groups: list[GraphGroups] = []

    def keep_global(domain: str, groups: GraphGroups) -> None:
        if domain == GLOBAL_DOMAIN:
            global_groups.append(groups)

    results = score_accounts(
        edges,
        settings.seeds,
        alpha=settings.teleport,
        tol=settings.tolerance,
        max_iter=settings.max_iterations,
        distrust=sanctions.scale_distrust(signed.distrust),
        beta=settings.distrust_weight,
        warm=warm,
        kinds=signed.trust_kind,
        group_retention=settings.closed_group_retention or None,
        distrust_passes=settings.distrust_passes,
        outgoing=sanctions.outgoing(),
        held=sanctions.held(),
        on_groups=keep_global if VOTE_RING in settings.detectors else None,
    )
    rows = results
    _explain_sanctions(rows, sanctions)
    findings, detector_errors = run_detectors(
        DetectorInput(
            evidence=evidence,
            labels=labels,
            quality=quality,
            edges=edges,
            seeds=settings.seeds,
            first_seen_ns=first_seen,
            alpha=settings.teleport,
            retention=settings.closed_group_retention or 1.0,
            groups=global_groups[0] if global_groups else None,
        ),
        settings.detectors,
    )
    params = {
        "seeds": list(settings.seeds),
        "teleport": settings.teleport,
        "tolerance": settings.tolerance,
        "decay_half_life_days": settings.decay_half_life_days,
        "distrust_weight": settings.distrust_weight,
        "distrust_passes": settings.distrust_passes,
        "closed_group_retention": settings.closed_group_retention,
        "kind_weights": dict(settings.kind_weights),
        "repeats": "log2(1 + sum of decayed weights)",
        "label_quality": "one-coin Dawid-Skene, gold-clamped, Beta prior at chance",
        "sanctions": sanctions.flag_ids,
        "detectors": list(settings.detectors),
        "detector_errors": detector_errors,
    }
    with UnitOfWork(db.writer_sessions) as uow:
        epoch = next_epoch(uow.session)
        finished = datetime.now(UTC)
        write_epoch(
            uow.session,
            epoch=epoch,
            model=MODEL_NAME,
            params=params,
            events_through=through,
            edges=edges.n_edges,
            started_at=started,
            finished_at=finished,
            scores=rows,
        )
        # The snapshot in the same transaction: no epoch without its root.
        snap = build_snapshot(uow.session, epoch)
        recorded = record_findings(uow.session, findings, epoch, at=finished)
        uow.commit()
    return EpochSummary(
        epoch=epoch,
        events_through=through,
        accounts=len({r.account for r in rows}),
        edges=edges.n_edges,
        domains=sorted({r.domain for r in rows}),
        seconds=(finished - started).total_seconds(),
        root=snap.root,
        leaves=snap.leaf_count,
        flags_raised=recorded.raised,
        findings_seen_again=recorded.seen_again,
        sanctions=sanctions.flag_ids,
        detector_errors=detector_errors,
    )


def _explain_sanctions(rows: list[AccountScore], sanctions: Sanctions) -> None:
    """A sanctioned account's explanation names the flags that discount it: no
    unexplained change (docs/explanations.md)."""
    if not sanctions:
        return
    by_account = sanctions.by_account()
    for r in rows:
        hit = by_account.get(r.account)
        if hit and r.explanation is not None:
            r.explanation["sanctions"] = [s.as_json() for s in hit]


def make_chain_client(settings: Settings, *, signer: bool) -> ChainClient:
    """py-near for the configured contract; with ``signer``, the publisher's key too."""
    if not settings.contract_id:
        raise NotConfigured("no contract configured: set RENOWN_CONTRACT_ID")
    if not signer:
        return NearRpcClient(settings.near_rpc_url, settings.contract_id)
    if not settings.publisher_account_id or settings.publisher_private_key is None:
        raise NotConfigured(
            "publishing needs RENOWN_PUBLISHER_ACCOUNT_ID and RENOWN_PUBLISHER_PRIVATE_KEY "
            "(a function-call access key for publish and store_scores: docs/contract.md)"
        )
    return NearRpcClient(
        settings.near_rpc_url,
        settings.contract_id,
        settings.publisher_account_id,
        settings.publisher_private_key.get_secret_value(),
    )


def build_publisher(settings: Settings, db: Database, client: ChainClient) -> Publisher:
    """The publisher, announcing to the snapshot topic when Kafka is configured."""
    announce = None
    if settings.kafka_bootstrap and settings.snapshot_topic:
        bootstrap, topic = settings.kafka_bootstrap, settings.snapshot_topic

        def announce(message: dict[str, Any]) -> None:
            producer = make_producer(bootstrap)
            try:
                key = str(message["epoch"]).encode()
                producer.send(topic, key=key, value=json.dumps(message).encode()).get(30)
            finally:
                producer.close()

    return Publisher(
        db.writer_sessions,
        client,
        top_n=settings.publish_top_n,
        batch_size=settings.publish_batch_size,
        uri_template=settings.snapshot_uri_template,
        announce=announce,
    )


# --------------------------------------------------------------------------------------
# The chain source (renown chain-source; chain/source.py, docs/chain.md)
# --------------------------------------------------------------------------------------


@contextmanager
def _cursor_db(db: Database) -> Iterator[None]:
    try:
        yield
    except OperationalError as exc:
        # The source stops; its restart replays the blocks since the last saved cursor.
        raise DatabaseUnavailable(
            f"cannot read or save the chain cursor in {db.url}: {str(exc.orig).strip()}"
        ) from exc


@dataclass
class DatabaseCursors:
    """The chain source's :class:`chain.source.CursorStore` over ``chain_cursors``: each
    save is a transaction of its own, so a saved cursor is durable before the next
    block is read."""

    db: Database

    def load(self, name: str) -> tuple[int, str | None] | None:
        with _cursor_db(self.db), UnitOfWork(self.db.sessions) as uow:
            state = chain_repo.get_cursor(uow.session, name)
        return None if state is None else (state.height, state.block_hash)

    def save(
        self,
        name: str,
        *,
        height: int,
        block_hash: str | None,
        block_timestamp: int | None,
        head_height: int | None,
        added_messages: int,
    ) -> None:
        with _cursor_db(self.db), UnitOfWork(self.db.writer_sessions) as uow:
            chain_repo.save_cursor(
                uow.session, name, height=height, block_hash=block_hash,
                block_timestamp=block_timestamp, head_height=head_height,
                added_messages=added_messages, now=datetime.now(UTC),
            )  # fmt: skip
            uow.commit()

    def save_head(self, name: str, head_height: int) -> None:
        with _cursor_db(self.db), UnitOfWork(self.db.writer_sessions) as uow:
            chain_repo.save_head(uow.session, name, head_height, now=datetime.now(UTC))
            uow.commit()


def chain_id_of(rpc: JsonRpc) -> str:
    """The node's chain id (``mainnet``, ``testnet``...), which names the cursor, so one
    database never mixes two chains' heights."""
    status = rpc.call("status", [])
    chain_id = status.get("chain_id") if isinstance(status, dict) else None
    if not isinstance(chain_id, str) or not chain_id:
        raise ChainUnavailable(f"NEAR RPC {rpc.url}: `status` names no chain_id")
    return chain_id
