"""The ingest loop: a kafka-python consumer in a group, applying batches exactly once.

The database holds the truth about progress (``consumer_offsets``). On every partition
assignment the consumer seeks to the stored offset (or the beginning when there is
none); Kafka's own committed offsets follow the database and exist only so that
standard lag tooling works. See ``ingest.apply`` for the exactly-once argument.

Failure handling, by cause:

* a malformed message becomes a dead letter (database, and the dead-letter topic when
  configured) and the loop goes on;
* the database is unreachable: the batch is retried with capped exponential back-off,
  nothing is acknowledged meanwhile, and a stop request is honoured between attempts;
* the database refuses a batch for a data reason: the batch is split and retried one
  message at a time, so the one bad message becomes a dead letter, not the batch;
* another consumer took a partition mid-batch (``OffsetConflict``): the batch is
  dropped and every assigned partition re-seeks to the stored offsets.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError

from ingest.apply import BatchApplier, BatchResult, Message
from storage.repository import OffsetConflict

log = logging.getLogger(__name__)


class BrokerUnavailable(RuntimeError):
    """Kafka could not be reached at start-up (the message names the servers)."""


class DeadLetterSink(Protocol):
    def send(self, message: Message, reason: str) -> None: ...
    def flush(self) -> None: ...


class KafkaDeadLetterSink:
    """Forwards dead letters to a topic, with their origin and reason as headers.

    The database copy is the record; this topic is a convenience for producers'
    alerting, so a failure here is logged, never fatal.
    """

    def __init__(self, producer: Any, topic: str) -> None:
        self.producer = producer
        self.topic = topic

    def send(self, message: Message, reason: str) -> None:
        headers = [
            ("renown.source.topic", message.topic.encode()),
            ("renown.source.partition", str(message.partition).encode()),
            ("renown.source.offset", str(message.offset).encode()),
            ("renown.reason", reason.encode()[:4096]),
        ]
        try:
            self.producer.send(self.topic, key=message.key, value=message.value, headers=headers)
        except Exception:
            log.exception(
                "could not forward dead letter %s[%d]@%d",
                message.topic,
                message.partition,
                message.offset,
            )

    def flush(self) -> None:
        try:
            self.producer.flush(timeout=10)
        except Exception:
            log.exception("could not flush the dead-letter topic")


@dataclass
class IngestStats:
    batches: int = 0
    totals: BatchResult = field(default_factory=BatchResult)
    db_retries: int = 0
    conflicts: int = 0
    started: float = field(default_factory=time.monotonic)

    def summary(self) -> dict[str, Any]:
        t = self.totals
        elapsed = max(time.monotonic() - self.started, 1e-9)
        return {
            "messages": t.messages,
            "events": t.events,
            "duplicates": t.duplicates,
            "stale": t.stale,
            "skipped": t.skipped,
            "dead_letters": len(t.dead),
            "batches": self.batches,
            "db_retries": self.db_retries,
            "offset_conflicts": self.conflicts,
            "seconds": round(elapsed, 3),
            "messages_per_s": round(t.messages / elapsed, 1),
        }


class _SeekToStored(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, loop: IngestLoop) -> None:
        self.loop = loop

    def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        # Nothing is buffered across polls: each poll's batch is applied before the next
        # poll, so there is nothing to flush here. A (re)join starts: see IngestLoop.run.
        self.loop.rebalancing = True
        log.info("partitions revoked: %s", sorted((tp.topic, tp.partition) for tp in revoked))

    def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        log.info("partitions assigned: %s", sorted((tp.topic, tp.partition) for tp in assigned))
        self.loop.seek_to_stored(assigned)
        self.loop.rebalancing = False


class IngestLoop:
    """Poll, apply, acknowledge; until stopped or (for tests and backfills) idle."""

    def __init__(
        self,
        consumer: KafkaConsumer,
        applier: BatchApplier,
        topics: Sequence[str],
        *,
        batch_size: int = 1000,
        poll_timeout_ms: int = 500,
        dead_letters: DeadLetterSink | None = None,
        stop: threading.Event | None = None,
        max_backoff_s: float = 30.0,
        on_batch: Callable[[BatchResult], None] | None = None,
        on_poll: Callable[[IngestStats], None] | None = None,
    ) -> None:
        self.consumer = consumer
        self.applier = applier
        self.topics = list(topics)
        self.batch_size = batch_size
        self.poll_timeout_ms = poll_timeout_ms
        self.dead_letters = dead_letters
        self.stop = stop or threading.Event()
        self.max_backoff_s = max_backoff_s
        self.on_batch = on_batch
        self.on_poll = on_poll  # each round of the loop, idle or not (the health beat)
        self.stats = IngestStats()
        # From the rebalance listener's revoke to its assign: the group is (re)joining,
        # while kafka-python's eager protocol still reports the old assignment.
        self.rebalancing = False

    def seek_to_stored(self, partitions: Sequence[TopicPartition]) -> None:
        """Position each partition at the database's next offset, the only truth we keep."""
        if not partitions:
            return
        stored = self._with_db_retry(
            lambda: self.applier.stored_offsets([(tp.topic, tp.partition) for tp in partitions])
        )
        if stored is None:
            return
        fresh = []
        for tp in partitions:
            offset = stored.get((tp.topic, tp.partition))
            if offset is None:
                fresh.append(tp)
            else:
                self.consumer.seek(tp, offset)
        if fresh:
            self.consumer.seek_to_beginning(*fresh)

    def run(
        self, *, idle_stop_s: float | None = None, max_messages: int | None = None
    ) -> IngestStats:
        """Consume until ``stop`` is set, or no message came for ``idle_stop_s``, or enough."""
        self.consumer.subscribe(self.topics, listener=_SeekToStored(self))
        last_message = time.monotonic()
        while not self.stop.is_set():
            if self.on_poll is not None:
                self.on_poll(self.stats)
            records = self.consumer.poll(
                timeout_ms=self.poll_timeout_ms, max_records=self.batch_size
            )
            batch = [
                Message(tp.topic, tp.partition, r.offset, r.key, r.value)
                for tp, rs in records.items()
                for r in rs
            ]
            if not batch:
                if self.rebalancing or not self.consumer.assignment():
                    # Joining or rejoining the group (or holding no partition): not idle
                    # yet. A rebalance may be handing this process a dead member's
                    # partitions, still full; leaving now would also abandon the join half
                    # way (which wedges tansu 0.6's group when the leader does it).
                    last_message = time.monotonic()
                elif idle_stop_s is not None and time.monotonic() - last_message > idle_stop_s:
                    break
                continue
            last_message = time.monotonic()
            self.process(batch)
            if max_messages is not None and self.stats.totals.messages >= max_messages:
                break
        return self.stats

    def process(self, batch: list[Message]) -> None:
        result = self._apply_safely(batch)
        if result is None:  # stopped while the database was down: nothing acknowledged
            return
        self.stats.batches += 1
        self.stats.totals.merge(result)
        if self.dead_letters is not None and result.dead:
            for message, reason in result.dead:
                self.dead_letters.send(message, reason)
            self.dead_letters.flush()
        self._commit_to_kafka(result)
        if self.on_batch is not None:
            self.on_batch(result)

    def _apply_safely(self, batch: list[Message]) -> BatchResult | None:
        try:
            return self._with_db_retry(lambda: self.applier.apply(batch))
        except OffsetConflict as exc:
            log.warning("%s; re-seeking to the stored offsets", exc)
            self.stats.conflicts += 1
            self.seek_to_stored(list(self.consumer.assignment()))
            return BatchResult(messages=0)
        except (IntegrityError, DataError) as exc:
            if len(batch) == 1:
                reason = f"database refused the message: {type(exc).__name__}: {_first_line(exc)}"
                log.error(
                    "dead letter %s[%d]@%d: %s",
                    batch[0].topic,
                    batch[0].partition,
                    batch[0].offset,
                    reason,
                )
                return self._with_db_retry(lambda: self.applier.apply(batch, dead_reason=reason))
            log.warning("batch of %d refused (%s); retrying one by one", len(batch), exc)
            total = BatchResult()
            for message in batch:
                one = self._apply_safely([message])
                if one is None:
                    return None
                total.merge(one)
            return total

    def _with_db_retry(self, action: Callable[[], Any]) -> Any:
        """Run ``action``; on a connection-level failure wait and retry until stopped."""
        delay = 0.5
        while True:
            try:
                return action()
            except (OperationalError, DBAPIError) as exc:
                if not _is_connection_error(exc):
                    raise
                self.stats.db_retries += 1
                log.error("database unavailable (%s); retrying in %.1f s", _first_line(exc), delay)
                if self.on_poll is not None:  # alive, waiting: a restart would not help
                    self.on_poll(self.stats)
                if self.stop.wait(delay):
                    return None
                delay = min(delay * 2, self.max_backoff_s)

    def _commit_to_kafka(self, result: BatchResult) -> None:
        offsets = {
            TopicPartition(topic, partition): OffsetAndMetadata(offset, "", -1)
            for (topic, partition), offset in result.next_offsets.items()
        }
        if not offsets:
            return
        try:
            self.consumer.commit_async(offsets)
        except Exception as exc:
            log.warning("kafka offset commit failed (harmless, the database has them): %s", exc)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


_SQLITE_TRANSIENT = ("locked", "busy", "unable to open", "disk i/o")


def _is_connection_error(exc: DBAPIError) -> bool:
    """Transient (wait and retry) as opposed to a bug or a schema problem (stop loudly)."""
    if getattr(exc, "connection_invalidated", False):
        return True
    if not isinstance(exc, OperationalError):
        return False
    if type(exc.orig).__module__.startswith("sqlite3"):
        # SQLite raises OperationalError for "no such table" too, which must not loop.
        return any(word in str(exc.orig).lower() for word in _SQLITE_TRANSIENT)
    return True


def make_consumer(
    bootstrap: str,
    group_id: str,
    *,
    session_timeout_ms: int,
    heartbeat_interval_ms: int,
    batch_size: int,
    client_id: str = "renown-ingest",
) -> KafkaConsumer:
    """A consumer with manual offsets: positions come from the database, never auto-commit."""
    try:
        return KafkaConsumer(
            bootstrap_servers=bootstrap.split(","),
            group_id=group_id,
            client_id=client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=heartbeat_interval_ms,
            max_poll_records=batch_size,
            fetch_max_bytes=64 * 1024 * 1024,
            max_partition_fetch_bytes=8 * 1024 * 1024,
        )
    except KafkaError as exc:
        raise BrokerUnavailable(f"cannot reach Kafka at {bootstrap}: {exc}") from exc


def json_dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
