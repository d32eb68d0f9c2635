"""Exactly-once effect under SIGKILL: a real `renown ingest` process killed mid-stream, restarted.

The process is killed while it is busy (events are being applied, batches of 50), so
the kill lands inside a batch: while decoding, inside the database transaction, or
between the commit and the Kafka acknowledgement. Whatever it interrupted, after the
restart every table must hold exactly what one clean pass over the same messages holds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

from sqlalchemy import Engine, func, select

from ingest.apply import BatchApplier, Message
from ingest.produce import ensure_topic, make_producer, produce
from renown.broker import EmbeddedBroker
from simulate.world import PRESETS, generate
from storage.db import make_engine, make_session_factory
from storage.migrate import upgrade
from storage.models import Account, Content, Event, Interaction, Label, Review

TABLES = (Event, Interaction, Account, Label, Review, Content)


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            m.__tablename__: int(conn.execute(select(func.count()).select_from(m)).scalar_one())
            for m in TABLES
        }


def _reference_counts(
    values: list[tuple[str, bytes]], topic: str, tmp_path: Path
) -> dict[str, int]:
    """The reference: one clean pass over the same messages, straight into a fresh SQLite."""
    ref_engine = make_engine(f"sqlite:///{tmp_path / 'reference.db'}")
    upgrade(ref_engine)
    BatchApplier(make_session_factory(ref_engine, writer=True), "ref").apply(
        [Message(topic, 0, i, None, v) for i, (_, v) in enumerate(values)]
    )
    expected = _counts(ref_engine)
    ref_engine.dispose()
    return expected


def _ingest_process(
    db_url: str,
    broker: EmbeddedBroker,
    topic: str,
    group: str,
    log: Path,
    until: tuple[str, ...] = ("--idle-exit", "6"),
) -> subprocess.Popen[bytes]:
    """`renown -v ingest` in batches of 50 (so a kill lands mid-stream), exiting after 6 s
    without messages by default; ``until=()``: until SIGTERM."""
    env = {
        **os.environ,
        "RENOWN_DATABASE_URL": db_url,
        "RENOWN_KAFKA_BOOTSTRAP": broker.bootstrap,
        "RENOWN_TOPIC": topic,
        "RENOWN_GROUP_ID": group,
        "RENOWN_BATCH_SIZE": "50",
        "RENOWN_SESSION_TIMEOUT_MS": "3000",
        "RENOWN_HEARTBEAT_INTERVAL_MS": "1000",
    }
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "renown.cli", "-v", "ingest", *until],
            env=env,
            stdout=out,
            stderr=out,
        )


def _wait_for_events(
    engine: Engine, minimum: int, proc: subprocess.Popen[bytes], timeout: float = 90
) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "ingest exited before it was killed"
        with engine.connect() as conn:
            n = int(conn.execute(select(func.count()).select_from(Event)).scalar_one())
        if n >= minimum:
            return n
        time.sleep(0.01)
    raise AssertionError(f"fewer than {minimum} events after {timeout} s")


def test_sigkill_mid_batch_then_restart_applies_everything_once(
    db_url: str, broker: EmbeddedBroker, tmp_path: Path
) -> None:
    world = generate(replace(PRESETS["default"], seed=3))
    values = [(m.key, json.dumps(m.value).encode()) for m in world.messages]
    values += values[:300]  # producer-side duplicates too
    topic = f"crash-{uuid.uuid4().hex[:8]}"
    ensure_topic(broker.bootstrap, topic, 3)
    producer = make_producer(broker.bootstrap)
    produce(producer, topic, values)
    producer.close()

    expected = _reference_counts(values, topic, tmp_path)

    engine = make_engine(db_url)
    group = f"crash-{uuid.uuid4().hex[:6]}"
    log = tmp_path / "ingest.log"
    try:
        seen = 0
        for fraction in (0.15, 0.4, 0.65):  # three kills at different points of the stream
            proc = _ingest_process(db_url, broker, topic, group, log)
            seen = _wait_for_events(engine, max(seen + 1, int(expected["events"] * fraction)), proc)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            assert proc.returncode == -signal.SIGKILL
            assert seen < expected["events"], "the stream finished before the kill"

        final = _ingest_process(db_url, broker, topic, group, log)
        assert final.wait(timeout=180) == 0, log.read_text()[-3000:]
        assert _counts(engine) == expected
    finally:
        engine.dispose()


def test_sigterm_stops_cleanly_after_the_current_batch(
    db_url: str, broker: EmbeddedBroker, tmp_path: Path
) -> None:
    world = generate(replace(PRESETS["small"], seed=5))
    values = [(m.key, json.dumps(m.value).encode()) for m in world.messages]
    topic = f"term-{uuid.uuid4().hex[:8]}"
    ensure_topic(broker.bootstrap, topic, 2)
    producer = make_producer(broker.bootstrap)
    produce(producer, topic, values)
    producer.close()
    engine = make_engine(db_url)
    log = tmp_path / "ingest.log"
    try:
        proc = _ingest_process(db_url, broker, topic, "term-group", log)
        _wait_for_events(engine, 200, proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()[-3000:]
        assert "messages" in log.read_text()  # it printed its summary on the way out
    finally:
        engine.dispose()
