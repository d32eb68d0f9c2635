"""Ingest against a real broker (tansu) and real databases: groups, dead letters, replays."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator

import pytest
from kafka import KafkaConsumer, TopicPartition
from sqlalchemy import Engine, func, select

from ingest.decode import Decoded, decode_message
from ingest.produce import ensure_topic, make_producer, produce
from renown import bootstrap
from renown.broker import EmbeddedBroker
from renown.settings import Settings
from simulate.world import PRESETS, generate
from storage.db import make_engine
from storage.models import ConsumerOffset, DeadLetter, Event, Interaction, SkippedMessage
from tests.messages import encode, message

MALFORMED: list[bytes] = [
    b"not json at all",
    b"\xff\xfe",
    b"[1, 2, 3]",
    encode(
        message(
            "vote_cast",
            {"voter": "Not Valid", "target_kind": "account", "target": "b.near", "value": 1},
        )
    ),
    encode(
        {**message("endorsed", {"endorser": "a.near", "endorsee": "b.near"}), "log": "EVENT_LOG:{}"}
    ),
    # a missing envelope field, an ill-typed one, a missing data field, an ill-typed datum
    encode(
        {
            k: v
            for k, v in message("endorsed", {"endorser": "a.near", "endorsee": "b.near"}).items()
            if k != "receipt_id"
        }
    ),
    encode(message("endorsed", {"endorser": "a.near", "endorsee": "b.near"}, block_height="123")),
    encode(message("label_submitted", {"task_id": "t", "item_id": "i", "labeler": "l.near"})),
    encode(message("endorsed", {"endorser": "a.near", "endorsee": "b.near", "weight": 7})),
]
SKIPPED: list[bytes] = [encode(message("nft_transfer", {"x": 1}, standard="nep171"))]


def expected_events(values: list[bytes]) -> int:
    return sum(len(d.events) for v in values if isinstance(d := decode_message(v), Decoded))


def settings_for(db_url: str, broker: EmbeddedBroker, topic: str, **extra: object) -> Settings:
    return Settings(
        database_url=db_url,
        kafka_bootstrap=broker.bootstrap,
        topic=topic,
        session_timeout_ms=3000,
        heartbeat_interval_ms=1000,
        batch_size=300,
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture
def topic(broker: EmbeddedBroker) -> Iterator[str]:
    name = f"events-{uuid.uuid4().hex[:8]}"
    ensure_topic(broker.bootstrap, name, 3)
    yield name


def produce_values(
    broker: EmbeddedBroker, topic: str, values: list[tuple[str | None, bytes]]
) -> None:
    producer = make_producer(broker.bootstrap)
    try:
        produce(producer, topic, values)
    finally:
        producer.close()


def world_values(preset: str = "tiny", seed: int = 7) -> list[tuple[str | None, bytes]]:
    from dataclasses import replace

    world = generate(replace(PRESETS[preset], seed=seed))
    return [(m.key, json.dumps(m.value).encode()) for m in world.messages]


def count(engine: Engine, model: type) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


def ingest(settings: Settings, total: int, group: str | None = None) -> dict[str, object]:
    db = bootstrap.open_database(settings)
    try:
        loop = bootstrap.build_ingest_loop(settings, db, group_id=group)
        return bootstrap.run_ingest(loop, max_messages=total, idle_stop_s=20).summary()
    finally:
        db.close()


def test_consumer_group_ingests_everything_once(
    db_url: str, broker: EmbeddedBroker, topic: str
) -> None:
    values = world_values()
    bad = [(None, v) for v in MALFORMED + SKIPPED]
    produce_values(broker, topic, values[:200] + bad + values[200:])
    total = len(values) + len(bad)
    dlq = f"{topic}.dead"
    settings = settings_for(db_url, broker, topic, dead_letter_topic=dlq)

    summary = ingest(settings, total)
    assert summary["messages"] == total
    assert summary["dead_letters"] == len(MALFORMED)
    assert summary["skipped"] == len(SKIPPED)

    engine = make_engine(db_url)
    try:
        assert count(engine, Event) == expected_events([v for _, v in values])
        assert count(engine, DeadLetter) == len(MALFORMED)
        assert count(engine, SkippedMessage) == len(SKIPPED)
        with engine.connect() as conn:
            stored = conn.execute(
                select(func.sum(ConsumerOffset.next_offset)).where(
                    ConsumerOffset.group_id == settings.group_id, ConsumerOffset.topic == topic
                )
            ).scalar_one()
            reasons = conn.execute(select(DeadLetter.value, DeadLetter.reason)).all()
        assert stored == total  # the stored offsets cover every message, no more
        assert {v for v, _ in reasons} == set(MALFORMED)
        assert all(r for _, r in reasons)
        interactions = count(engine, Interaction)

        # The dead-letter topic got a copy of each, with its origin and reason.
        consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, consumer_timeout_ms=3000)
        parts = [TopicPartition(dlq, p) for p in consumer.partitions_for_topic(dlq) or []]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        forwarded = list(consumer)
        consumer.close()
        assert {r.value for r in forwarded} == set(MALFORMED)
        headers = dict(forwarded[0].headers)
        assert {"renown.source.topic", "renown.source.offset", "renown.reason"} <= set(headers)

        # A replay from offset 0 (a new group) changes nothing, and so does a second run of
        # the same group (it resumes from the stored offsets and finds nothing new).
        replay = ingest(settings, total, group="replay-from-zero")
        assert replay["events"] == 0 and replay["duplicates"] == summary["events"]
        assert count(engine, Event) == expected_events([v for _, v in values])
        assert count(engine, Interaction) == interactions
    finally:
        engine.dispose()


def test_two_consumers_in_one_group_share_partitions(
    db_url: str, broker: EmbeddedBroker, topic: str
) -> None:
    values = world_values("tiny", seed=11)
    produce_values(broker, topic, values)
    settings = settings_for(db_url, broker, topic, group_id=f"shared-{uuid.uuid4().hex[:6]}")
    db = bootstrap.open_database(settings)
    stop = threading.Event()
    loops = [bootstrap.build_ingest_loop(settings, db, stop=stop) for _ in range(2)]
    assigned: list[set[int]] = [set(), set()]

    def run(i: int) -> None:
        loop = loops[i]

        def note(_result: object) -> None:
            assigned[i].update(tp.partition for tp in loop.consumer.assignment())

        loop.on_batch = note
        bootstrap.run_ingest(loop, idle_stop_s=8)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    db.close()
    assert not any(t.is_alive() for t in threads)

    engine = make_engine(db_url)
    try:
        assert count(engine, Event) == expected_events([v for _, v in values])
    finally:
        engine.dispose()
    applied = [loop.stats.totals.messages for loop in loops]
    assert sum(applied) >= len(values)  # a rebalance may redeliver; the DB dedupes
    assert sum(loop.stats.totals.events for loop in loops) == expected_events(
        [v for _, v in values]
    )
    assert all(n > 0 for n in applied), f"one consumer got no partition: {applied} {assigned}"
