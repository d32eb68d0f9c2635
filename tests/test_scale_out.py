"""Scale-out proof (issue 7): two, then three `renown ingest` processes in one consumer
group on the real broker, one SIGKILLed mid-stream and restarted: every event applied
once, the partitions shared out and taken over, the stored offsets exactly the log's.
"""

from __future__ import annotations

import ast
import json
import signal
import subprocess
import time
import uuid
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from kafka.partitioner.default import murmur2
from sqlalchemy import select

from ingest.produce import ensure_topic, make_producer, produce
from renown.broker import EmbeddedBroker
from simulate.world import PRESETS, generate
from storage.db import make_engine
from storage.models import ConsumerOffset
from tests.test_crash_recovery import (
    _counts,
    _ingest_process,
    _reference_counts,
    _wait_for_events,
)

PARTITIONS = 6


def _assignments(log: Path, topic: str) -> list[set[int]]:
    """Every 'partitions assigned' line of a process's log, in order."""
    out = []
    for line in log.read_text(errors="replace").splitlines():
        if "partitions assigned: " in line:
            pairs = ast.literal_eval(line.split("partitions assigned: ", 1)[1].strip())
            out.append({p for t, p in pairs if t == topic})
    return out


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
    per_partition = Counter(
        (murmur2(k.encode()) & 0x7FFFFFFF) % PARTITIONS for k, _ in values if k is not None
    )
    assert len(per_partition) == PARTITIONS and all(k is not None for k, _ in values)

    expected = _reference_counts(values, topic, tmp_path)

    engine = make_engine(db_url)
    group = f"scale-{uuid.uuid4().hex[:6]}"
    logs = [tmp_path / f"ingest-{i}.log" for i in range(consumers)]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs = [_ingest_process(db_url, broker, topic, group, log) for log in logs]
        # Every process gets a share once the group has settled.
        deadline = time.monotonic() + 60
        while True:
            latest = [a[-1] if a else set() for a in (_assignments(x, topic) for x in logs)]
            if all(latest) and set().union(*latest) == set(range(PARTITIONS)):
                break
            assert time.monotonic() < deadline, f"no full assignment: {latest}"
            time.sleep(0.2)
        assert sum(len(a) for a in latest) == PARTITIONS  # each partition to one process
        # Kill one mid-stream: the others take its partitions over.
        seen = _wait_for_events(engine, int(expected["events"] * 0.3), procs[0])
        victim = procs[0]
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        assert seen < expected["events"], "the stream finished before the kill"
        deadline = time.monotonic() + 60
        while True:
            survivors = [_assignments(x, topic) for x in logs[1:]]
            latest = [a[-1] if a else set() for a in survivors]
            if set().union(*latest) == set(range(PARTITIONS)):
                break
            assert time.monotonic() < deadline, f"the partitions were not taken over: {latest}"
            time.sleep(0.2)
        # Restarted, it rejoins; all of them run dry and exit.
        procs[0] = _ingest_process(db_url, broker, topic, group, logs[0])
        for proc, log in zip(procs, logs, strict=True):
            assert proc.wait(timeout=240) == 0, log.read_text()[-3000:]
        assert len(_assignments(logs[0], topic)) >= 2  # assigned before the kill and after

        assert _counts(engine) == expected  # every event applied once
        with engine.connect() as conn:
            stored = dict(
                conn.execute(
                    select(ConsumerOffset.partition, ConsumerOffset.next_offset).where(
                        ConsumerOffset.group_id == group, ConsumerOffset.topic == topic
                    )
                ).all()
            )
        assert stored == dict(per_partition)  # the offsets are the log's ends, exactly
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        engine.dispose()
