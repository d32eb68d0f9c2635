"""Probes for the processes without an API (renown/health.py), and the scorer and the
publisher on a schedule (``renown score --every``, ``renown publish --every``): the
processes the compose file and the Kubernetes manifests run, as real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ingest.produce import ensure_topic
from renown.broker import EmbeddedBroker, free_port
from renown.health import Health, serve_health
from storage.db import make_engine
from storage.models import ScoreEpoch
from tests import worlds
from tests.processes import wait_for
from tests.test_contract_e2e import CONTRACT, PUBLISHER, Localnet, localnet  # noqa: F401


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_health_is_the_loop_making_progress() -> None:
    clock = Clock()
    h = Health("ingest", stale_after_s=60, busy_limit_s=600, clock=clock)
    assert h.status()[0]
    clock.now += 59
    assert h.status()[0]
    clock.now += 2
    ok, body = h.status()
    assert not ok and body["status"] == "stale" and "no progress for 61 s" in body["detail"]
    h.beat(messages=5)
    assert h.status() == (True, {"status": "ok", "process": "ingest",
                                 "last_beat_age_s": 0.0, "facts": {"messages": 5}})  # fmt: skip
    with h.busy("scoring epoch"):
        clock.now += 599  # a long epoch: healthy while busy, within its limit
        ok, body = h.status()
        assert ok and body["detail"] == "busy: scoring epoch for 599 s"
        clock.now += 2
        assert not h.status()[0]
    assert h.status()[0]  # leaving busy counts as progress


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_health_server_answers_healthz_and_metrics() -> None:
    clock = Clock()
    h = Health("chain-source", stale_after_s=10, clock=clock)
    h.beat(height=42)
    server = serve_health(h, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        status, body = _get(base + "/healthz")
        assert status == 200 and json.loads(body)["facts"] == {"height": 42}
        status, text = _get(base + "/metrics")
        assert status == 200
        assert 'renown_process_healthy{process="chain-source"} 1.0' in text
        assert 'renown_process_fact{name="height",process="chain-source"} 42.0' in text
        assert "process_resident_memory_bytes" in text
        clock.now += 11
        status, body = _get(base + "/healthz")
        assert status == 503 and json.loads(body)["status"] == "stale"
        assert 'renown_process_healthy{process="chain-source"} 0.0' in _get(base + "/metrics")[1]
        assert _get(base + "/nope")[0] == 404
    finally:
        server.shutdown()
        server.server_close()


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENOWN_")}
    return env | extra


def _wait(what: str, check: Callable[[], bool], proc: subprocess.Popen[str] | None) -> None:
    wait_for(what, check, proc, timeout=60)


def _healthz(port: int) -> dict[str, Any] | None:
    try:
        status, body = _get(f"http://127.0.0.1:{port}/healthz")
    except OSError:
        return None
    return json.loads(body) | {"http": status}


def _start(*args: str, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "renown.cli", *args], env=env, cwd=cwd, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def _stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    return out, err


def test_ingest_serves_its_health(tmp_path: Path, broker: EmbeddedBroker) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    subprocess.run([sys.executable, "-m", "renown.cli", "--database-url", url, "db", "upgrade"],
                   check=True, capture_output=True)  # fmt: skip
    topic = f"health-{os.getpid()}-{time.monotonic_ns()}"
    ensure_topic(broker.bootstrap, topic, 1)
    port = free_port()
    env = _env(RENOWN_DATABASE_URL=url, RENOWN_KAFKA_BOOTSTRAP=broker.bootstrap,
               RENOWN_TOPIC=topic, RENOWN_GROUP_ID=topic, RENOWN_HEALTH_PORT=str(port))  # fmt: skip
    proc = _start("ingest", env=env, cwd=tmp_path)
    try:
        # healthy from the start; the loop's first round reports its counts
        _wait("/healthz", lambda: "messages" in (_healthz(port) or {}).get("facts", {}), proc)
        body = _healthz(port)
        assert body is not None and body["process"] == "ingest" and body["http"] == 200
        assert body["facts"]["messages"] == 0
    finally:
        _stop(proc)
    assert _healthz(port) is None  # the server went with the process


def test_score_every_and_publish_every(
    db_url: str,
    tmp_path: Path,
    localnet: Localnet,  # noqa: F811
) -> None:
    seeds = worlds.apply_world(db_url)
    engine = make_engine(db_url)

    def epochs() -> list[int]:
        with engine.connect() as conn:
            return sorted(int(e) for e in conn.execute(select(ScoreEpoch.epoch)).scalars())

    on_chain = localnet.published_epoch

    score_port, publish_port = free_port(), free_port()
    env = _env(
        RENOWN_DATABASE_URL=db_url, RENOWN_SEEDS=",".join(seeds),
        RENOWN_NEAR_RPC_URL=localnet.url, RENOWN_CONTRACT_ID=CONTRACT,
        RENOWN_PUBLISHER_ACCOUNT_ID=PUBLISHER,
        RENOWN_PUBLISHER_PRIVATE_KEY=localnet.publisher_key.secret,
        RENOWN_PUBLISH_TOP_N="5", RENOWN_PUBLISH_BATCH_SIZE="10",
    )  # fmt: skip
    scorer = _start("-v", "score", "--every", "0.5",
                    env=env | {"RENOWN_HEALTH_PORT": str(score_port)}, cwd=tmp_path)  # fmt: skip
    publisher = _start("-v", "publish", "--every", "0.5",
                       env=env | {"RENOWN_HEALTH_PORT": str(publish_port)},
                       cwd=tmp_path)  # fmt: skip
    try:
        _wait("the first epoch", lambda: epochs() == [1], scorer)
        _wait("its publication", lambda: on_chain() == 1, publisher)
        time.sleep(2)  # several rounds with nothing new: no second epoch, no second publication
        assert epochs() == [1]
        assert localnet.applied_methods().count("publish") == 1
        for port, name in ((score_port, "score"), (publish_port, "publish")):
            body = _healthz(port)
            assert body is not None and body["http"] == 200 and body["process"] == name
    finally:
        s_out, _ = _stop(scorer)
        p_out, _ = _stop(publisher)
        engine.dispose()
    assert "epochs scored: 1, failed rounds: 0" in s_out
    assert "failed rounds: 0" in p_out


@pytest.mark.parametrize("command", [["score", "--every", "0"], ["publish", "--every", "-1"]])
def test_every_is_checked(tmp_path: Path, command: list[str]) -> None:
    env = _env(RENOWN_DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}", RENOWN_SEEDS="a.near",
               RENOWN_CONTRACT_ID="c.near")  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "renown.cli", *command], env=env, text=True,
                          capture_output=True, timeout=60)  # fmt: skip
    assert proc.returncode == 2
    assert "--every" in proc.stderr and "Traceback" not in proc.stderr


def test_a_taken_health_port_is_one_clear_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    subprocess.run([sys.executable, "-m", "renown.cli", "--database-url", url, "db", "upgrade"],
                   check=True, capture_output=True)  # fmt: skip
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        env = _env(RENOWN_DATABASE_URL=url, RENOWN_SEEDS="a.near", RENOWN_HEALTH_PORT=str(port))
        proc = subprocess.run([sys.executable, "-m", "renown.cli", "score", "--every", "5"],
                              env=env, text=True, capture_output=True, timeout=60)  # fmt: skip
    assert proc.returncode == 2
    assert f"cannot serve /healthz on 127.0.0.1:{port}" in proc.stderr
    assert "Traceback" not in proc.stderr
