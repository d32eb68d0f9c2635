"""`renown run`: ingest, scoring on a schedule and publishing in one process, as a real
subprocess against the embedded broker, a real database and the JSON-RPC double running
the real contract (tests/test_contract_e2e.py's localnet)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ingest.produce import ensure_topic, make_producer, produce
from moderation import service
from renown.broker import EmbeddedBroker
from simulate.world import PRESETS, generate
from storage.db import make_engine, make_session_factory
from storage.models import ConsumerOffset, Event, ScoreEpoch
from tests.processes import wait_for
from tests.test_contract_e2e import CONTRACT, PUBLISHER, Localnet, localnet  # noqa: F401


def _wait(what: str, check: Callable[[], bool], proc: subprocess.Popen[str] | None) -> None:
    wait_for(what, check, proc, timeout=90)


def test_run_ingests_scores_on_a_schedule_and_publishes(
    db_url: str, localnet: Localnet, tmp_path: Path  # noqa: F811
) -> None:
    world = generate(PRESETS["tiny"])
    half = len(world.messages) // 2
    engine = make_engine(db_url)
    writer = make_session_factory(engine, writer=True)

    def epochs() -> list[tuple[int, int]]:
        with engine.connect() as conn:
            rows = conn.execute(select(ScoreEpoch.epoch, ScoreEpoch.events_through)).all()
        return sorted((int(e), int(t)) for e, t in rows)

    def events() -> tuple[int, int]:
        """(messages applied: the group's committed offsets, the newest event id)."""
        with engine.connect() as conn:
            applied = conn.execute(select(func.sum(ConsumerOffset.next_offset))).scalar()
            top = conn.execute(select(func.max(Event.id))).scalar()
        return int(applied or 0), int(top or 0)

    on_chain_epoch = localnet.published_epoch

    with EmbeddedBroker() as broker:
        topic = f"run-{uuid.uuid4().hex[:8]}"
        ensure_topic(broker.bootstrap, topic, 2)
        producer = make_producer(broker.bootstrap)

        def send(messages: list) -> None:  # type: ignore[type-arg]
            produce(producer, topic, ((m.key, m.value) for m in messages))

        send(world.messages[:half])
        env = {k: v for k, v in os.environ.items() if not k.startswith("RENOWN_")}
        env |= {
            "RENOWN_DATABASE_URL": db_url,
            "RENOWN_KAFKA_BOOTSTRAP": broker.bootstrap,
            "RENOWN_TOPIC": topic,
            "RENOWN_SEEDS": ",".join(world.truth.seeds),
            "RENOWN_SESSION_TIMEOUT_MS": "3000",
            "RENOWN_HEARTBEAT_INTERVAL_MS": "1000",
            "RENOWN_NEAR_RPC_URL": localnet.url,
            "RENOWN_CONTRACT_ID": CONTRACT,
            "RENOWN_PUBLISHER_ACCOUNT_ID": PUBLISHER,
            "RENOWN_PUBLISHER_PRIVATE_KEY": localnet.publisher_key.secret,
            "RENOWN_PUBLISH_TOP_N": "5",
            "RENOWN_PUBLISH_BATCH_SIZE": "10",
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "renown.cli", "run", "--score-every", "1"],
            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            # The first half arrives and is scored, then published.
            _wait("the first half", lambda: events()[0] == half, proc)
            _wait("epoch 1", lambda: bool(epochs()) and epochs()[-1][1] == events()[1], proc)
            _wait("its publication", lambda: on_chain_epoch() == epochs()[-1][0], proc)
            first = epochs()
            # Nothing new: the next rounds write no epoch.
            time.sleep(3)
            assert epochs() == first
            # The second half: a new epoch covers it.
            send(world.messages[half:])
            _wait("the rest", lambda: events()[0] == len(world.messages), proc)
            _wait("the next epoch", lambda: epochs()[-1][1] == events()[1], proc)
            second = epochs()
            assert len(second) == len(first) + 1
            # A moderator's decision changes the sanctions: an epoch without new events.
            flagged = world.truth.sybils[0]
            mods = ["alice"]
            flag = service.raise_flag(
                writer, moderator="alice", kind="manual", accounts=[flagged], reason="sybil",
                moderators=mods,
            )
            service.confirm(writer, flag.id, moderator="alice", reason="checked", moderators=mods)
            _wait("an epoch for the decision", lambda: len(epochs()) == len(second) + 1, proc)
            assert epochs()[-1][1] == second[-1][1]  # no new events in it
            _wait("its publication", lambda: on_chain_epoch() == epochs()[-1][0], proc)
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
            producer.close()
    assert proc.returncode == 0, err[-3000:]
    assert f"epochs scored: {len(epochs())}, failed rounds: 0" in out
    methods = localnet.applied_methods()
    assert methods.count("publish") == len(epochs())
    engine.dispose()


def test_run_refuses_to_start_without_what_it_needs(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENOWN_")}
    cases = [
        ({}, "no seed accounts configured"),
        ({"RENOWN_SEEDS": "a.near"}, "no Kafka configured"),
        ({"RENOWN_SEEDS": "a.near", "RENOWN_KAFKA_BOOTSTRAP": "127.0.0.1:1",
          "RENOWN_CONTRACT_ID": "c.near"}, "RENOWN_PUBLISHER_ACCOUNT_ID"),
    ]  # fmt: skip
    for extra, message in cases:
        r = subprocess.run(
            [sys.executable, "-m", "renown.cli", "run"], env=env | extra, cwd=tmp_path,
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert r.returncode == 2 and message in r.stderr, (extra, r.stderr)
    r = subprocess.run(
        [sys.executable, "-m", "renown.cli", "run", "--score-every", "0"],
        env=env | {"RENOWN_SEEDS": "a.near"}, cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 2 and "--score-every" in r.stderr


pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
