"""Sending EVENTS.md messages to Kafka (``renown produce``) and creating the topic.

Producers in production are other programs; this is for backfills from files, the
demo and the benchmarks. Messages are keyed by their subject account so that one
subject's events stay in order within a partition.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError


class ProduceError(RuntimeError):
    pass


@dataclass(frozen=True)
class ProduceResult:
    messages: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else float("inf")


def ensure_topic(bootstrap: str, topic: str, partitions: int) -> bool:
    """Create ``topic`` if it does not exist; returns True when it was created."""
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), client_id="renown-admin")
    except KafkaError as exc:
        raise ProduceError(f"cannot reach Kafka at {bootstrap}: {exc}") from exc
    try:
        if topic in admin.list_topics():
            return False
        admin.create_topics([NewTopic(topic, partitions, 1)])
        return True
    except TopicAlreadyExistsError:
        return False
    except KafkaError as exc:  # e.g. the broker went away, or topic creation not allowed
        raise ProduceError(f"cannot create the topic {topic!r} at {bootstrap}: {exc}") from exc
    finally:
        admin.close()


def make_producer(bootstrap: str, **overrides: Any) -> KafkaProducer:
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap.split(","),
        "client_id": "renown-produce",
        "acks": "all",
        "linger_ms": 20,
        "batch_size": 256 * 1024,
        "compression_type": "zstd",
        "max_in_flight_requests_per_connection": 1,  # keep per-key order across retries
        "retries": 5,
    }
    options.update(overrides)
    try:
        return KafkaProducer(**options)
    except KafkaError as exc:
        raise ProduceError(f"cannot reach Kafka at {bootstrap}: {exc}") from exc


class KafkaSink:
    """Sends (key, value) pairs and tells, at :meth:`flush`, whether Kafka acknowledged
    every one since the last flush. Why: a sender that advances a cursor (the chain
    source) may do so only once everything before it is acknowledged."""

    def __init__(self, producer: KafkaProducer, topic: str) -> None:
        self.producer, self.topic = producer, topic
        self._failures: list[BaseException] = []
        self.sent = 0
        self._since_flush = 0

    def send(self, key: str | None, value: Any) -> None:
        payload = (
            value
            if isinstance(value, bytes)
            else json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        )
        try:
            future = self.producer.send(
                self.topic, key=None if key is None else key.encode(), value=payload
            )
        except KafkaError as exc:  # e.g. metadata for the topic not available in time
            raise ProduceError(f"could not send to {self.topic}: {exc}") from exc
        future.add_errback(self._failures.append)
        self.sent += 1
        self._since_flush += 1

    def flush(self) -> None:
        """Block until every message sent is acknowledged; ProduceError if any was not."""
        self.producer.flush()
        count, self._since_flush = self._since_flush, 0
        if self._failures:
            first, n = self._failures[0], len(self._failures)
            self._failures = []
            raise ProduceError(f"{n} of {count} messages were not delivered: {first}")


def produce(
    producer: KafkaProducer,
    topic: str,
    messages: Iterable[tuple[str | None, Any]],
    *,
    progress: Callable[[int], None] | None = None,
) -> ProduceResult:
    """Send (key, value) pairs; values that are not bytes are encoded as compact JSON."""
    started = time.perf_counter()
    sink = KafkaSink(producer, topic)
    for key, value in messages:
        sink.send(key, value)
        if progress is not None and sink.sent % 10_000 == 0:
            progress(sink.sent)
    sink.flush()
    return ProduceResult(sink.sent, time.perf_counter() - started)
