"""Scale-out proof (issue 7): two, then three `renown ingest` processes in one consumer
group on the real broker, one SIGKILLed mid-stream and restarted: every event applied
once, the partitions shared out and taken over, the stored offsets exactly the log's.

How the test knows the group has settled: a process's "partitions assigned" line
belongs to the generation of the "Successfully joined group ... <Generation N" line
kafka-python logged before it. The group has settled when every live process's latest
assignment is of one generation, newer than the last settled one, and the shares cover
every partition exactly once. (Reading each process's latest line without the generation,
as the first version did, mixes a survivor's stale share with another's fresh one.)

How it ends: once the stored offsets reach every partition's end, every process gets
SIGTERM and must exit 0. Not ``--idle-exit``, which is what hung the first version under
load: a survivor idled out and left while the group was rebalancing (ingest counted the
rebalance as idle time; fixed, see the last test), and tansu 0.6, the embedded broker,
wedges a group whose leader leaves while it is rebalancing: the departed member stays
its leader, every later SyncGroup answers REBALANCE_IN_PROGRESS and nobody is assigned
again, so the restarted process never got a partition and never exited. Processes
leaving one after another can still do that, idle clock or not. Real Kafka doesn't have
the bug; see docs/performance.md, "Several ingest processes (issue 7)".
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from kafka import TopicPartition
from kafka.partitioner.default import murmur2
from sqlalchemy import Engine, select

from bench.ingest import log_assignments
from ingest.consumer import IngestLoop
from ingest.produce import ensure_topic, make_producer, produce
from renown.broker import EmbeddedBroker
from simulate.world import PRESETS, generate
from storage.db import make_engine
from storage.models import ConsumerOffset
from tests.test_crash_recovery import _counts, _reference_counts, _wait_for_events
from tests.test_crash_recovery import _ingest_process as crash_ingest_process

PARTITIONS = 6
SETTLE_S = 90.0  # generous: a tansu rejoin takes 2-5 s, more on a loaded machine

Share = tuple[int, frozenset[int]]  # (generation, partitions of the test's topic)


def _assignments(log: Path, topic: str) -> list[Share]:
    """Every assignment a process logged, in order, with the generation it belongs to
    (the benchmark's reader of the same log lines, without the time stamps)."""
    return [(generation, share) for _, generation, share in log_assignments(log, topic)]


def _settled(logs: list[Path], topic: str, after: int, procs: list[Any]) -> Share:
    """Wait for one generation newer than ``after`` in which ``logs``' processes share
    every partition exactly once, each holding some; return it."""
    deadline = time.monotonic() + SETTLE_S
    while True:
        latest = [a[-1] if a else (-1, frozenset()) for a in (_assignments(x, topic) for x in logs)]
        generations = {g for g, _ in latest}
        shares = [s for _, s in latest]
        if (
            len(generations) == 1
            and min(generations) > after
            and all(shares)
            and sorted(p for s in shares for p in s) == list(range(PARTITIONS))
        ):
            return min(generations), frozenset().union(*shares)
        for proc, log in zip(procs, logs, strict=True):
            assert proc.poll() is None, f"{log.name} exited:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, (
            f"no settled generation after {after} in {SETTLE_S:.0f} s: {latest}\n"
            + "\n".join(f"--- {x.name}\n{x.read_text()[-2000:]}" for x in logs)
        )
        time.sleep(0.2)


def _ingest_process(
    db_url: str, broker: EmbeddedBroker, topic: str, group: str, log: Path
) -> subprocess.Popen[bytes]:
    """`renown -v ingest` until SIGTERM (batches of 50, so a kill lands mid-stream)."""
    return crash_ingest_process(db_url, broker, topic, group, log, until=())


def _stored_offsets(engine: Engine, group: str, topic: str) -> dict[int, int]:
    with engine.connect() as conn:
        return dict(
            conn.execute(  # type: ignore[arg-type]
                select(ConsumerOffset.partition, ConsumerOffset.next_offset).where(
                    ConsumerOffset.group_id == group, ConsumerOffset.topic == topic
                )
            ).all()
        )


@pytest.mark.parametrize("consumers", [2, 3])
def test_consumers_in_one_group_share_the_log_and_survive_a_kill(
    consumers: int, db_url: str, broker: EmbeddedBroker, tmp_path: Path
) -> None:
    world = generate(replace(PRESETS["default"], seed=5))
    values = [(m.key, json.dumps(m.value).encode()) for m in world.messages]
    values += values[:200]  # producer-side duplicates too
    topic = f"scale-{uuid.uuid4().hex[:8]}"
    ensure_topic(broker.bootstrap, topic, PARTITIONS)
    producer = make_producer(broker.bootstrap)
    produce(producer, topic, values)
    producer.close()
    # Where each message went: kafka-python's default partitioner (murmur2 of the key).
    ends = dict(Counter((murmur2(k.encode()) & 0x7FFFFFFF) % PARTITIONS for k, _ in values))
    assert len(ends) == PARTITIONS and all(k is not None for k, _ in values)
    expected = _reference_counts(values, topic, tmp_path)

    engine = make_engine(db_url)
    group = f"scale-{uuid.uuid4().hex[:6]}"
    logs = [tmp_path / f"ingest-{i}.log" for i in range(consumers)]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs = [_ingest_process(db_url, broker, topic, group, log) for log in logs]
        # Each process gets a share once the group has settled.
        shared, _ = _settled(logs, topic, -2, procs)
        victim = procs[0]
        victim_share = _assignments(logs[0], topic)[-1][1]

        # Kill one mid-stream (after the group settled, so the kill lands in its share).
        done = _counts(engine)["events"]
        seen = _wait_for_events(engine, max(int(expected["events"] * 0.3), done + 1), victim)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        assert seen < expected["events"], "the stream finished before the kill"
        at_kill = _stored_offsets(engine, group, topic)
        left = {p for p in victim_share if at_kill.get(p, 0) < ends[p]}
        assert left, f"the victim had finished its partitions {sorted(victim_share)}"

        # The others take its partitions over (the ones it left unfinished included).
        taken_over, _ = _settled(logs[1:], topic, shared, procs[1:])

        # Restarted, it rejoins and gets a share again.
        procs[0] = _ingest_process(db_url, broker, topic, group, logs[0])
        _settled(logs, topic, taken_over, procs)

        # Run dry: the stored offsets reach every partition's end; then stop them all.
        deadline = time.monotonic() + 120
        while _stored_offsets(engine, group, topic) != ends:
            for proc, log in zip(procs, logs, strict=True):
                assert proc.poll() is None, f"{log.name} exited:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, (
                f"not at the ends after 120 s: {_stored_offsets(engine, group, topic)} != {ends}"
            )
            time.sleep(0.2)
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc, log in zip(procs, logs, strict=True):
            assert proc.wait(timeout=30) == 0, log.read_text()[-3000:]

        assert _counts(engine) == expected  # every event applied once
        assert _stored_offsets(engine, group, topic) == ends  # the log's ends, exactly
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        engine.dispose()


class _RebalancingConsumer:
    """A stand-in KafkaConsumer: assigned from the start, never a record, and a rebalance
    from 0.2 s to 1.5 s, during which (like kafka-python's eager protocol) it still
    reports the old assignment."""

    def __init__(self) -> None:
        self.parts = [TopicPartition("t", 0)]
        self.listener: Any = None
        self.started = 0.0
        self.revoked_at: float | None = None
        self.assigned_at: float | None = None

    def subscribe(self, topics: list[str], listener: Any) -> None:
        self.listener = listener
        self.started = time.monotonic()

    def poll(self, timeout_ms: int, max_records: int) -> dict[Any, Any]:
        t = time.monotonic() - self.started
        if self.revoked_at is None and t >= 0.2:
            self.revoked_at = t
            self.listener.on_partitions_revoked(self.parts)
        if self.assigned_at is None and t >= 1.5:
            self.assigned_at = t
            self.listener.on_partitions_assigned(self.parts)
        time.sleep(0.05)
        return {}

    def assignment(self) -> set[TopicPartition]:
        return set(self.parts)

    def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        pass


class _NoOffsets:
    def stored_offsets(self, partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        return {}


def test_idle_exit_waits_out_a_rebalance() -> None:
    """`--idle-exit` must not leave mid-rebalance: the rebalance may be handing this
    process a dead member's partitions, and (on tansu 0.6) a leader leaving then wedges
    the group. The idle clock restarts when the new assignment arrives."""
    consumer = _RebalancingConsumer()
    loop = IngestLoop(consumer, _NoOffsets(), ["t"], poll_timeout_ms=50)  # type: ignore[arg-type]
    loop.run(idle_stop_s=0.5)
    left = time.monotonic() - consumer.started
    assert consumer.assigned_at is not None, f"left at {left:.2f} s, mid-rebalance"
    assert left >= consumer.assigned_at + 0.5
