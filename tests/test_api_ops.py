"""Operations endpoints: /healthz against real dependencies (SQLite, PostgreSQL, the
embedded broker, the NEAR JSON-RPC double) and broken ones (closed ports, a port that
accepts and never answers, a database that is down), and /metrics checked against the
database after a simulated world was ingested and scored."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from py_near.account import Account
from sqlalchemy import func, select

import api.metrics
from api.app import create_app
from api.routes import ops
from ingest.produce import ensure_topic, make_producer
from renown import bootstrap
from renown.broker import EmbeddedBroker, free_port
from renown.settings import Settings
from storage.db import make_engine, make_session_factory
from storage.migrate import upgrade
from storage.models import (
    ConsumerOffset,
    Event,
    Publication,
    PublicationTx,
    ScoreEpoch,
    SkippedMessage,
)
from storage.uow import UnitOfWork
from tests import worlds
from tests.near_emulator import NearEmulator
from tests.near_rpc_double import KeyPair, NearRpcDouble
from tests.test_contract_e2e import CONTRACT, OWNER, PUBLISHER, WASM, _py_near

# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def build(settings: Settings, db: bootstrap.Database | None = None) -> FastAPI:
    """The app with the operations pieces, added here until create_app adds them; both
    steps are idempotent so this keeps working once it does."""
    app = create_app(settings, db)
    if not any(getattr(r, "path", None) == "/healthz" for r in app.routes):
        app.include_router(ops.router)
    api.metrics.install(app)
    return app


def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'renown.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def closed_port() -> int:
    return free_port()  # bound, then released: nothing listens there


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose connections are accepted by the kernel (the backlog) and never
    answered: a hung dependency."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield int(s.getsockname()[1])


def scrape(client: TestClient) -> dict[str, Any]:
    """``{sample name: {labels as a sorted tuple: value}}`` from /metrics."""
    r = client.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def one(samples: dict[str, Any], name: str, **labels: str) -> float:
    return float(samples[name][tuple(sorted(labels.items()))])


def assert_no_trace(text: str) -> None:
    assert "Traceback" not in text and 'File "' not in text


# --------------------------------------------------------------------------------------
# /healthz
# --------------------------------------------------------------------------------------


def test_healthz_ok_on_both_databases(db_url: str) -> None:
    with TestClient(build(Settings(database_url=db_url))) as client:
        r = client.get("/healthz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok"
    assert body["epoch"] is None
    db = body["checks"]["database"]
    assert db["ok"] is True and db["ms"] >= 0
    assert body["checks"]["broker"] == {"skipped": "not configured"}
    assert body["checks"]["chain"] == {"skipped": "not configured"}
    assert r.headers["cache-control"] == "no-store"


def test_healthz_reports_the_latest_epoch(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    summary = worlds.score(url, worlds.apply_world(url))
    with TestClient(build(Settings(database_url=url))) as client:
        assert client.get("/healthz").json()["epoch"] == summary.epoch == 1


def test_healthz_unreachable_broker_is_degraded(tmp_path: Path) -> None:
    settings = Settings(
        database_url=sqlite_url(tmp_path), kafka_bootstrap=f"127.0.0.1:{closed_port()}"
    )
    with TestClient(build(settings)) as client:
        t0 = time.monotonic()
        r = client.get("/healthz")
        elapsed = time.monotonic() - t0
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "degraded"
    broker = body["checks"]["broker"]
    assert broker["ok"] is False and broker["error"] and broker["ms"] > 0
    assert body["checks"]["database"]["ok"] is True
    assert elapsed < 3.5
    assert_no_trace(r.text)


def test_healthz_with_the_real_broker(tmp_path: Path, broker: EmbeddedBroker) -> None:
    topic = f"ops-{uuid.uuid4().hex[:8]}"
    ensure_topic(broker.bootstrap, topic, 3)
    settings = Settings(
        database_url=sqlite_url(tmp_path), kafka_bootstrap=broker.bootstrap, topic=topic
    )
    with TestClient(build(settings)) as client:
        r = client.get("/healthz")
    body = r.json()
    assert r.status_code == 200 and body["status"] == "ok", body
    assert body["checks"]["broker"]["ok"] is True
    assert body["checks"]["broker"]["topic"] == topic
    assert body["checks"]["broker"]["partitions"] == 3


@pytest.fixture
def rpc_with_contract() -> Iterator[str]:
    """The JSON-RPC double with the snapshot contract deployed and initialised."""
    rpc = NearRpcDouble(NearEmulator())
    key = KeyPair.generate()
    rpc.create_account(CONTRACT, key)
    with rpc.running() as url:

        async def deploy_and_init(acc: Account) -> list[Any]:
            return [
                await acc.deploy_contract(WASM.read_bytes()),
                await acc.function_call(CONTRACT, "init", {"owner": OWNER, "publisher": PUBLISHER}),
            ]

        results = _py_near(url, CONTRACT, key, deploy_and_init)
        assert all("SuccessValue" in r.status for r in results)
        yield url


def test_healthz_chain_against_the_rpc_double(tmp_path: Path, rpc_with_contract: str) -> None:
    settings = Settings(
        database_url=sqlite_url(tmp_path), near_rpc_url=rpc_with_contract, contract_id=CONTRACT
    )
    with TestClient(build(settings)) as client:
        r = client.get("/healthz")
    body = r.json()
    assert r.status_code == 200 and body["status"] == "ok", body
    chain = body["checks"]["chain"]
    assert chain["ok"] is True and chain["contract"] == CONTRACT
    assert chain["published_epoch"] is None  # nothing published yet


def test_healthz_chain_on_a_closed_port_is_degraded(tmp_path: Path) -> None:
    settings = Settings(
        database_url=sqlite_url(tmp_path),
        near_rpc_url=f"http://127.0.0.1:{closed_port()}",
        contract_id=CONTRACT,
    )
    with TestClient(build(settings)) as client:
        r = client.get("/healthz")
    body = r.json()
    assert r.status_code == 200 and body["status"] == "degraded", body
    assert body["checks"]["chain"]["ok"] is False
    assert body["checks"]["chain"]["error"].startswith("ChainUnavailable")
    assert_no_trace(r.text)


def test_healthz_answers_in_time_when_dependencies_hang(tmp_path: Path, silent_port: int) -> None:
    settings = Settings(
        database_url=sqlite_url(tmp_path),
        kafka_bootstrap=f"127.0.0.1:{silent_port}",
        near_rpc_url=f"http://127.0.0.1:{silent_port}",
        contract_id=CONTRACT,
    )
    with TestClient(build(settings)) as client:
        t0 = time.monotonic()
        r = client.get("/healthz")
        elapsed = time.monotonic() - t0
        # A second request while the chain check still hangs waits for the same check
        # (single flight) and is as quick.
        t1 = time.monotonic()
        again = client.get("/healthz")
        elapsed_again = time.monotonic() - t1
    assert elapsed < 3.5 and elapsed_again < 3.5, (elapsed, elapsed_again)
    for resp in (r, again):
        body = resp.json()
        assert resp.status_code == 200 and body["status"] == "degraded", body
        assert body["checks"]["broker"]["ok"] is False
        assert body["checks"]["chain"]["ok"] is False
        assert body["checks"]["database"]["ok"] is True


def test_database_down_is_503_with_the_error_shape() -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/test"
    engine = make_engine(url)
    db = bootstrap.Database(
        engine, make_session_factory(engine), make_session_factory(engine, writer=True), url
    )
    try:
        with TestClient(build(Settings(database_url=url), db)) as client:
            r = client.get("/healthz")
            scores = client.get("/v1/scores/alice.near")
            samples = scrape(client)
    finally:
        engine.dispose()
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["status"] == "down"
    assert body["checks"]["database"]["ok"] is False
    assert "refused" in body["checks"]["database"]["error"].lower()
    assert body["error"]["code"] == "database_unavailable" and body["error"]["message"]
    assert r.headers["retry-after"] == "5"
    assert_no_trace(r.text)
    # The API's routes say the same in the one error shape.
    assert scores.status_code == 503
    assert scores.json()["error"]["code"] == "database_unavailable"
    assert_no_trace(scores.text)
    # The scrape still succeeds, so that the outage can be alerted on.
    assert one(samples, "renown_database_up") == 0
    assert "renown_events_total" not in samples
    assert (
        one(
            samples,
            "renown_http_request_duration_seconds_count",
            method="GET",
            route="/v1/scores/{account}",
            status="503",
        )
        == 1
    )


# --------------------------------------------------------------------------------------
# /metrics
# --------------------------------------------------------------------------------------


def _add_publication_rows(url: str, epoch: int) -> None:
    engine = make_engine(url)
    now = datetime.now(UTC)
    with UnitOfWork(make_session_factory(engine, writer=True)) as uow:
        root = "ab" * 32
        uow.session.add(
            Publication(
                epoch=epoch,
                contract_id=CONTRACT,
                root=root,
                stage="scores",
                batches_total=3,
                batches_done=1,
                started_at=now,
                updated_at=now,
            )
        )
        for step, ok in ((0, True), (1, True), (2, False)):
            uow.session.add(
                PublicationTx(
                    epoch=epoch,
                    contract_id=CONTRACT,
                    step=step,
                    method="publish" if step == 0 else "store_scores",
                    tx_hash=None,
                    ok=ok,
                    error=None if ok else "Smart contract panicked: test",
                    sent_at=now,
                )
            )
        uow.commit()
    engine.dispose()


def test_metrics_match_the_database(db_url: str) -> None:
    seeds = worlds.apply_world(db_url)
    summary = worlds.score(db_url, seeds)
    _add_publication_rows(db_url, summary.epoch)
    engine = make_engine(db_url)
    with UnitOfWork(make_session_factory(engine)) as uow:
        s = uow.session
        max_id = s.execute(select(func.max(Event.id))).scalar_one()
        n_events = s.execute(select(func.count()).select_from(Event)).scalar_one()
        skipped = s.execute(select(func.count()).select_from(SkippedMessage)).scalar_one()
        epoch = s.execute(
            select(
                ScoreEpoch.epoch,
                ScoreEpoch.accounts,
                ScoreEpoch.events_through,
                ScoreEpoch.started_at,
                ScoreEpoch.finished_at,
            )
        ).one()
        offsets = s.execute(
            select(
                ConsumerOffset.group_id,
                ConsumerOffset.topic,
                ConsumerOffset.partition,
                ConsumerOffset.next_offset,
            )
        ).all()
        account = s.execute(select(Event.predecessor_id).limit(1)).scalar_one()
    engine.dispose()

    with TestClient(build(Settings(database_url=db_url))) as client:
        assert client.get(f"/v1/scores/{account}").status_code in (200, 404)
        client.get("/no/such/path")
        client.get("/openapi.json")
        client.post("/healthz")
        samples = scrape(client)

    assert one(samples, "renown_database_up") == 1
    assert one(samples, "renown_events_total") == max_id
    if db_url.startswith("sqlite"):
        assert max_id == n_events  # SQLite assigns ids without gaps here
    assert max_id >= n_events > 0
    assert one(samples, "renown_dead_letters_total") == 0
    assert one(samples, "renown_skipped_messages_total") == skipped
    assert one(samples, "renown_epochs_total") == 1
    assert one(samples, "renown_epoch_latest") == summary.epoch == epoch.epoch
    assert one(samples, "renown_epoch_accounts") == epoch.accounts
    assert one(samples, "renown_epoch_events_through") == epoch.events_through
    started = epoch.started_at.replace(tzinfo=epoch.started_at.tzinfo or UTC)
    finished = epoch.finished_at.replace(tzinfo=epoch.finished_at.tzinfo or UTC)
    assert one(samples, "renown_epoch_duration_seconds") == pytest.approx(
        (finished - started).total_seconds()
    )
    assert one(samples, "renown_epoch_finished_timestamp_seconds") == pytest.approx(
        finished.timestamp()
    )
    assert one(samples, "renown_publish_transactions_total", ok="true") == 2
    assert one(samples, "renown_publish_transactions_total", ok="false") == 1
    assert one(samples, "renown_publications", stage="scores") == 1
    assert one(samples, "renown_publications", stage="done") == 0
    for o in offsets:
        assert (
            one(
                samples,
                "renown_consumer_committed_offset",
                topic=o.topic,
                partition=str(o.partition),
                group=o.group_id,
            )
            == o.next_offset
        )
    # No broker configured: no lag figures at all.
    assert "renown_consumer_lag" not in samples
    assert "renown_consumer_lag_available" not in samples

    # Request latencies, labelled by route template, never by the raw path.
    hist = samples["renown_http_request_duration_seconds_count"]
    routes = {dict(labels)["route"] for labels in hist}
    assert "/v1/scores/{account}" in routes
    assert "unmatched" in routes
    assert not any(account in r for r in routes)
    assert (
        one(
            samples,
            "renown_http_request_duration_seconds_count",
            method="GET",
            route="unmatched",
            status="404",
        )
        == 1
    )
    assert "/openapi.json" in routes  # the app's own routes too
    assert (
        one(
            samples,
            "renown_http_request_duration_seconds_count",
            method="POST",
            route="/healthz",
            status="405",
        )
        == 1
    )
    buckets = samples["renown_http_request_duration_seconds_bucket"]
    assert any(
        dict(labels)["route"] == "/v1/scores/{account}" and dict(labels)["le"] == "+Inf"
        for labels in buckets
    )


def test_install_is_idempotent(tmp_path: Path) -> None:
    app = build(Settings(database_url=sqlite_url(tmp_path)))
    registry = app.state.metrics_registry
    api.metrics.install(app)  # as create_app will, and then a test helper again
    assert app.state.metrics_registry is registry
    assert sum(m.cls is api.metrics.RequestMetrics for m in app.user_middleware) == 1
    with TestClient(app) as client:
        client.get("/healthz")
        samples = scrape(client)
    assert (
        one(
            samples,
            "renown_http_request_duration_seconds_count",
            method="GET",
            route="/healthz",
            status="200",
        )
        == 1
    )


def test_two_apps_in_one_process_do_not_clash(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = build(Settings(database_url=sqlite_url(tmp_path / "a")))
    b = build(Settings(database_url=sqlite_url(tmp_path / "b")))
    with TestClient(a) as ca, TestClient(b) as cb:
        ca.get("/healthz")
        ca.get("/healthz")
        cb.get("/healthz")
        sa, sb = scrape(ca), scrape(cb)
    key = {"method": "GET", "route": "/healthz", "status": "200"}
    assert one(sa, "renown_http_request_duration_seconds_count", **key) == 2
    assert one(sb, "renown_http_request_duration_seconds_count", **key) == 1


def test_consumer_lag_with_the_real_broker(tmp_path: Path, broker: EmbeddedBroker) -> None:
    """Lag = the broker's end offset minus the stored position. tansu 0.6 under-reports
    ListOffsets(latest) (docs/performance.md), so the expected figures are computed from
    what the broker reports, read here independently, not from the messages produced; the
    test checks the arithmetic, the labels and the availability, not tansu."""
    from kafka import TopicPartition

    url = sqlite_url(tmp_path)
    topic = f"lag-{uuid.uuid4().hex[:8]}"
    group = f"g-{uuid.uuid4().hex[:6]}"
    ensure_topic(broker.bootstrap, topic, 2)
    producer = make_producer(broker.bootstrap, linger_ms=0)
    try:
        for i in range(12):
            producer.send(topic, key=str(i).encode(), value=b"{}", partition=i % 2).get(10)
    finally:
        producer.close()
    engine = make_engine(url)
    with UnitOfWork(make_session_factory(engine, writer=True)) as uow:
        # The configured group applied 2 messages of partition 0 and none of partition 1;
        # another group is fully caught up on partition 1 (by the broker's count).
        uow.session.add(ConsumerOffset(group_id=group, topic=topic, partition=0, next_offset=2))
        uow.session.add(
            ConsumerOffset(group_id="other", topic=topic, partition=1, next_offset=10_000)
        )
        uow.commit()
    engine.dispose()

    probe = api.metrics.kafka_client(broker.bootstrap, "test-probe")
    try:
        tps = [TopicPartition(topic, p) for p in (0, 1)]
        ends = {tp.partition: o for tp, o in probe.end_offsets(tps, timeout_ms=5000).items()}
        starts = {
            tp.partition: o for tp, o in probe.beginning_offsets(tps, timeout_ms=5000).items()
        }
    finally:
        probe.close(autocommit=False)

    settings = Settings(
        database_url=url, kafka_bootstrap=broker.bootstrap, topic=topic, group_id=group
    )
    with TestClient(build(settings)) as client:
        samples = scrape(client)
    assert one(samples, "renown_consumer_lag_available") == 1
    lag = samples["renown_consumer_lag"]
    expected = {
        (group, 0): max(0, ends[0] - 2),
        (group, 1): max(0, ends[1] - starts[1]),
        ("other", 0): max(0, ends[0] - starts[0]),
        ("other", 1): 0,
    }
    got = {(dict(k)["group"], int(dict(k)["partition"])): v for k, v in lag.items()}
    assert got == expected
    assert all(dict(k)["topic"] == topic for k in lag)
    assert ends[0] + ends[1] > 0  # the broker reports something was produced


def test_consumer_lag_unavailable_when_the_broker_is_down(tmp_path: Path) -> None:
    settings = Settings(
        database_url=sqlite_url(tmp_path), kafka_bootstrap=f"127.0.0.1:{closed_port()}"
    )
    with TestClient(build(settings)) as client:
        t0 = time.monotonic()
        samples = scrape(client)
        elapsed = time.monotonic() - t0
    assert one(samples, "renown_consumer_lag_available") == 0
    assert "renown_consumer_lag" not in samples
    assert one(samples, "renown_database_up") == 1  # the rest of the scrape is there
    assert "renown_events_total" in samples
    assert elapsed < 4.0
