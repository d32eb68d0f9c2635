"""PostgreSQL going away under a running consumer: it waits, retries, and loses nothing."""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import replace

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from ingest.produce import ensure_topic, make_producer, produce
from renown import bootstrap
from renown.broker import EmbeddedBroker
from renown.settings import Settings
from simulate.world import PRESETS, generate
from storage.db import make_engine
from storage.models import Event
from tests.tcp_proxy import TcpProxy
from tests.test_ingest_kafka import expected_events


def test_consumer_survives_a_database_outage(pg_url: str, broker: EmbeddedBroker) -> None:
    world = generate(replace(PRESETS["small"], seed=21))
    values = [(m.key, json.dumps(m.value).encode()) for m in world.messages]
    topic = f"outage-{uuid.uuid4().hex[:8]}"
    ensure_topic(broker.bootstrap, topic, 2)

    direct = make_url(pg_url)
    proxy = TcpProxy(direct.host or "127.0.0.1", direct.port or 5432)
    via_proxy = direct.set(port=proxy.port).render_as_string(hide_password=False)
    engine = make_engine(pg_url)
    settings = Settings(
        database_url=via_proxy,
        kafka_bootstrap=broker.bootstrap,
        topic=topic,
        group_id=f"outage-{uuid.uuid4().hex[:6]}",
        batch_size=100,
        session_timeout_ms=3000,
        heartbeat_interval_ms=1000,
    )
    db = bootstrap.open_database(settings)
    stop = threading.Event()
    loop = bootstrap.build_ingest_loop(settings, db, stop=stop)
    loop.max_backoff_s = 1.0
    first_batch = threading.Event()
    loop.on_batch = lambda _r: first_batch.set()
    thread = threading.Thread(
        target=bootstrap.run_ingest, args=(loop,), kwargs={"idle_stop_s": 8}, daemon=True
    )

    producer = make_producer(broker.bootstrap)
    produce(producer, topic, values[:500])
    thread.start()
    assert first_batch.wait(60)
    proxy.down()  # the database disappears mid-stream
    produce(producer, topic, values[500:])
    producer.close()
    time.sleep(4)
    retries_while_down = loop.stats.db_retries
    proxy.up()
    thread.join(timeout=120)
    db.close()
    proxy.close()
    assert not thread.is_alive()
    assert retries_while_down > 0  # it noticed, waited and retried rather than crashing

    with engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(Event)).scalar_one()
    engine.dispose()
    assert stored == expected_events([v for _, v in values])
