"""deploy/compose.yaml rehearsed without a container engine (issue 7).

No Docker engine runs where the suite runs, so the compose file itself cannot be brought
up here. This test does the next best thing: it runs every Renown service of
deploy/compose.yaml (migrate, chain-source, ingest x its ``deploy.replicas``, scorer,
publisher, api) as a local process, ``python -m renown.cli <the service's command>``,
with the environment the service's container would get (its ``env_file`` list in order,
then its ``environment``), against real local stand-ins for the containers it does not
run:

* ``postgres``: the machine's PostgreSQL, a fresh, empty schema (``migrate`` creates the
  tables, as it does on a first ``docker compose up``);
* ``kafka``: the embedded Kafka-protocol broker (renown/broker.py);
* NEAR: the JSON-RPC test double (tests/near_rpc_double.py) running the real snapshot
  contract (tests/test_contract_e2e.py's ``localnet``), its chain scripted with the
  transactions of a simulated world, two blocks behind the head not final.

Only the settings in :func:`substitutions` differ from the files, each with its reason:
addresses of the stand-ins, the localnet's accounts and key, the simulated world's seeds,
ports (containers have a network namespace each; these processes share one), per-run
topic and group names, and shorter intervals. Besides them: RENOWN_HEALTH_PORT and
RENOWN_API_PORT, a free port per process (:func:`process_env`); ``--every`` of the scorer
(900 s) and of the publisher (60 s) set to 1 s (:data:`EVERY`); ``-v`` before each
long-running command (:data:`LOG_FLAG`). RENOWN_CHAIN_START_HEIGHT stays unset, as in
chain-source.env: the chain source is started before the blocks are scripted, so it
begins at the final head and reads every scripted block. Everything else (partitions,
batch sizes, group timeouts, top N, publish batch size, snapshot URI, API workers, rate
limits, moderators, decay...) comes from deploy/env/ unchanged; that is the point.

Then: events scripted on the chain reach the database through the chain source, the topic
and both ingest consumers (which share the partitions); the scorer makes an epoch of all
of them, the publisher puts it on the contract, the API serves its scores, every process
answers /healthz with 200, and every one exits 0 on SIGTERM within the compose file's
``stop_grace_period``.

Not rehearsed here: the images (Kafka's, PostgreSQL's, deploy/Dockerfile), the
``topics`` service's shell script (Kafka's own kafka-topics.sh; ``ensure_topic`` stands
in, with the partition count from the env files), compose's start order and health-check
timings, and networking between containers.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kafka import KafkaConsumer, TopicPartition
from kafka.partitioner.default import murmur2
from sqlalchemy import create_engine, func, select, text

from bench.ingest import log_assignments
from ingest.produce import ensure_topic
from renown.broker import EmbeddedBroker, free_port
from simulate.world import PRESETS, generate
from storage import keys_repo
from storage.db import make_engine, make_session_factory
from storage.migrate import upgrade
from storage.models import (
    ChainCursor,
    ConsumerOffset,
    DeadLetter,
    Event,
    Publication,
    ScoreEpoch,
)
from storage.scoring_repo import account_scores
from storage.uow import UnitOfWork
from tests.conftest import PG_BASE_URL
from tests.near_rpc_double import CHAIN_ID, ScriptedReceipt, ScriptedTx
from tests.test_contract_e2e import CONTRACT, PUBLISHER, Localnet, localnet  # noqa: F401
from tests.test_deploy import read_env_file
from tests.worlds import apply_config

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "deploy" / "compose.yaml"

# The compose services that run Renown's image, in the order they are started here.
ONE_SHOT = "migrate"
API_KEYS = "api-keys"  # one-shot too: `keys import` of the secret file
LONG_RUNNING = ("chain-source", "ingest", "scorer", "publisher", "api")

# The schedules shortened: (compose's figure, the one used here) after --every.
EVERY = {"scorer": ("900", "1"), "publisher": ("60", "1")}

# Passed before each long-running command: INFO logs, for "partitions assigned" and for
# diagnosis. A logging flag only; the containers run the command without it (WARNING and up).
LOG_FLAG = "-v"

# The scripted chain: transactions per block, shards per block.
TXS_PER_BLOCK = 20
SHARDS = 2

WAIT_S = 90.0  # per condition; generous, for a loaded 2-core machine


# ----------------------------------------------------------------------------- compose


def compose_services() -> dict[str, dict[str, Any]]:
    data = yaml.safe_load(COMPOSE.read_text())  # PyYAML resolves the << merge keys
    services: dict[str, dict[str, Any]] = data["services"]
    return services


def service_environment(service: dict[str, Any]) -> dict[str, str]:
    """The variables a service's container gets: its env files in order, then
    ``environment``. The latter holds only compose-interpolated secrets here (the database
    URL with the password, the publisher key), all of which :func:`substitutions`
    replaces, so they are taken uninterpolated."""
    env: dict[str, str] = {}
    for name in service.get("env_file", []):
        env.update(read_env_file(COMPOSE.parent / name))
    for key, value in (service.get("environment") or {}).items():
        env[key] = str(value)
    return env


def duration_s(value: str) -> float:
    """A compose duration ("60s", "1m30s", "500ms") in seconds."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", value)
    assert parts and "".join(n + u for n, u in parts) == value, f"not a duration: {value!r}"
    return sum(float(n) * units[u] for n, u in parts)


# ----------------------------------------------------------------------------- the stand-ins


@pytest.fixture
def fresh_pg_url() -> Iterator[str]:
    """An empty schema (no tables) in the test PostgreSQL: ``migrate`` makes the tables,
    as on a first start. (tests/conftest.py's ``pg_url`` is migrated already.)"""
    schema = f"renown_rehearsal_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_BASE_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # pragma: no cover - the machine's PostgreSQL is down
        pytest.fail(f"PostgreSQL at {PG_BASE_URL} is not reachable ({exc}); .ci/run starts it")
    sep = "&" if "?" in PG_BASE_URL else "?"
    try:
        yield f"{PG_BASE_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def substitutions(
    *,
    database_url: str,
    bootstrap: str,
    localnet: Localnet,  # noqa: F811
    contracts: list[str],
    seeds: list[str],
    run: str,
) -> dict[str, str]:
    """Every setting that differs from deploy/env/ and compose.yaml's ``environment``,
    for all the services (the ports are per process: :func:`process_env`)."""
    common = read_env_file(COMPOSE.parent / "env" / "common.env")
    return {
        # postgres:5432 is the compose service; here the test PostgreSQL's fresh schema.
        "RENOWN_DATABASE_URL": database_url,
        # kafka:9092 is the compose service; here the embedded broker.
        "RENOWN_KAFKA_BOOTSTRAP": bootstrap,
        # testnet's public RPC; here the JSON-RPC double with the contract deployed.
        "RENOWN_NEAR_RPC_URL": localnet.url,
        # The placeholders ("Replace" in the files): the localnet's contract, publisher
        # account and function-call key (secrets.env in compose).
        "RENOWN_CONTRACT_ID": CONTRACT,
        "RENOWN_PUBLISHER_ACCOUNT_ID": PUBLISHER,
        "RENOWN_PUBLISHER_PRIVATE_KEY": localnet.publisher_key.secret,
        # Placeholders too: the contracts the scripted chain's transactions go to, and the
        # simulated world's seed accounts.
        "RENOWN_CHAIN_CONTRACTS": ",".join(contracts),
        "RENOWN_SEEDS": ",".join(seeds),
        # 0.0.0.0 lets other containers reach a container; here loopback is enough.
        "RENOWN_HEALTH_HOST": "127.0.0.1",
        "RENOWN_API_HOST": "127.0.0.1",
        # 1 s in chain-source.env between looks at the head: shortened, to wait less.
        "RENOWN_CHAIN_POLL_S": "0.2",
        # One broker for the whole test session: names of this run's own, the files'
        # names as prefix (the group too, so no other test's offsets are found).
        **{
            key: f"{common[key]}.{run}"
            for key in (
                "RENOWN_TOPIC",
                "RENOWN_DEAD_LETTER_TOPIC",
                "RENOWN_SNAPSHOT_TOPIC",
                "RENOWN_GROUP_ID",
            )
        },
    }


def process_env(
    base: dict[str, str], subs: dict[str, str], ports: dict[str, int]
) -> dict[str, str]:
    """A process's environment: the machine's minus any RENOWN_*, then the service's
    variables with the substitutions applied to those it has (none is added)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENOWN_")}
    merged = dict(base)
    for key, value in (subs | {k: str(v) for k, v in ports.items()}).items():
        if key in merged:
            merged[key] = value
    return env | merged


# ----------------------------------------------------------------------------- processes


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    out: Path
    err: Path
    grace_s: float
    health_port: int  # /healthz: RENOWN_HEALTH_PORT, or RENOWN_API_PORT for the API

    def tail(self, n: int = 4000) -> str:
        return (
            f"--- {self.name} (exit {self.popen.poll()}) stderr:\n"
            f"{self.err.read_text(errors='replace')[-n:]}\n"
            f"--- stdout:\n{self.out.read_text(errors='replace')[-1000:]}"
        )


def start(name: str, argv: list[str], env: dict[str, str], tmp: Path, grace_s: float,
          health_port: int) -> Proc:  # fmt: skip
    out, err = tmp / f"{name}.out", tmp / f"{name}.err"
    with out.open("wb") as o, err.open("wb") as e:
        popen = subprocess.Popen(
            [sys.executable, "-m", "renown.cli", LOG_FLAG, *argv], env=env, cwd=tmp,
            stdout=o, stderr=e, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    return Proc(name, popen, out, err, grace_s, health_port)


def wait_for(what: str, check: Callable[[], bool], procs: list[Proc], s: float = WAIT_S,
             every: float = 0.25) -> None:  # fmt: skip
    deadline = time.monotonic() + s
    while True:
        dead = [p for p in procs if p.popen.poll() is not None]
        if dead:
            raise AssertionError(
                f"exited while waiting for {what}:\n" + "\n".join(p.tail() for p in dead)
            )
        if check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out ({s:g} s) waiting for {what}:\n" + "\n".join(p.tail() for p in procs)
            )
        time.sleep(every)


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def healthz(port: int) -> tuple[int, Any] | None:
    try:
        return get(f"http://127.0.0.1:{port}/healthz")
    except (OSError, ValueError):
        return None  # not listening yet


def assignments(proc: Proc, topic: str) -> list[set[int]]:
    """Every "partitions assigned" line of an ingest process's log, in order."""
    return [set(share) for _, _, share in log_assignments(proc.err, topic)]


# ----------------------------------------------------------------------------- the test


def test_compose_services_rehearsed_as_processes(
    fresh_pg_url: str,
    broker: EmbeddedBroker,
    localnet: Localnet,  # noqa: F811
    tmp_path: Path,
) -> None:
    services = compose_services()
    renown = {n: s for n, s in services.items() if str(s.get("image", "")).startswith("renown:")}
    assert set(renown) == {ONE_SHOT, API_KEYS, *LONG_RUNNING}, "a service this test does not run"

    world = generate(PRESETS["tiny"])
    contracts = sorted({m.value["contract_id"] for m in world.messages})
    assert all(m.key == m.value["predecessor_id"] for m in world.messages)
    run = uuid.uuid4().hex[:8]
    subs = substitutions(
        database_url=fresh_pg_url, bootstrap=broker.bootstrap, localnet=localnet,
        contracts=contracts, seeds=world.truth.seeds, run=run,
    )  # fmt: skip
    envs = {name: service_environment(s) for name, s in renown.items()}
    # The substitutions replace settings the files have; they add none.
    every_key = set().union(*envs.values())
    assert set(subs) <= every_key, set(subs) - every_key
    for name in envs:  # compose's `environment`: secrets only, all replaced
        assert set(renown[name].get("environment") or {}) <= set(subs), name
    topic, group = subs["RENOWN_TOPIC"], subs["RENOWN_GROUP_ID"]

    # migrate: `renown db upgrade` on the empty schema, first, as compose orders it.
    migrate = renown[ONE_SHOT]
    done = subprocess.run(
        [sys.executable, "-m", "renown.cli", *migrate["command"]],
        env=process_env(envs[ONE_SHOT], subs, {}), cwd=tmp_path, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "(head)" in done.stdout

    # api-keys: `renown keys import` of the secret file compose mounts at
    # /run/secrets/api-keys; here the file itself (the one path substituted).
    key = keys_repo.generate_secret()
    key_file = tmp_path / "api-keys.txt"
    key_file.write_text(f"# owner role key\nrehearsal.near reader {key}\n")
    argv = [str(key_file) if a == "/run/secrets/api-keys" else a
            for a in renown[API_KEYS]["command"]]  # fmt: skip
    assert argv != renown[API_KEYS]["command"]
    for expected in ("1 new key(s)", "0 new key(s)"):  # registered, then left as it is
        done = subprocess.run(
            [sys.executable, "-m", "renown.cli", *argv],
            env=process_env(envs[API_KEYS], subs, {}), cwd=tmp_path, capture_output=True,
            text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0 and expected in done.stdout, done.stderr
        assert key not in done.stdout + done.stderr

    # topics: compose runs Kafka's kafka-topics.sh (Kafka's image, not here); the same
    # three topics through ingest.produce.ensure_topic, the partitions from the env files.
    topics_env = read_env_file(COMPOSE.parent / "env" / "common.env")
    assert services["topics"]["env_file"] == ["env/common.env"]
    partitions = int(topics_env["RENOWN_TOPIC_PARTITIONS"])
    ensure_topic(broker.bootstrap, topic, partitions)
    ensure_topic(broker.bootstrap, subs["RENOWN_DEAD_LETTER_TOPIC"], 1)
    ensure_topic(broker.bootstrap, subs["RENOWN_SNAPSHOT_TOPIC"], 1)

    # The chain: the last 2 blocks are not final, as on NEAR.
    rpc = localnet.rpc
    rpc.final_lag = 2

    # The long-running services, each with its own ports.
    replicas = int(renown["ingest"].get("deploy", {}).get("replicas", 1))
    assert replicas == 2
    procs: list[Proc] = []
    engine = make_engine(fresh_pg_url)
    try:
        for name in LONG_RUNNING:
            service = renown[name]
            argv = [str(a) for a in service["command"]]
            if name in EVERY:
                original, short = EVERY[name]
                assert argv[argv.index("--every") + 1] == original, argv
                argv[argv.index("--every") + 1] = short
            grace = duration_s(str(service["stop_grace_period"]))
            for i in range(replicas if name == "ingest" else 1):
                ports = {"RENOWN_HEALTH_PORT": free_port()}
                if name == "api":
                    ports["RENOWN_API_PORT"] = free_port()
                env = process_env(envs[name], subs, ports)
                label = f"{name}-{i + 1}" if name == "ingest" else name
                probe = ports["RENOWN_API_PORT"] if name == "api" else ports["RENOWN_HEALTH_PORT"]
                procs.append(start(label, argv, env, tmp_path, grace, probe))
        by_name = {p.name: p for p in procs}
        ingests = [p for p in procs if p.name.startswith("ingest")]

        def scalar(stmt: Any) -> Any:
            with engine.connect() as conn:
                return conn.execute(stmt).scalar()

        def cursor() -> tuple[int, int] | None:
            with engine.connect() as conn:
                row = conn.execute(
                    select(ChainCursor.height, ChainCursor.head_height).where(
                        ChainCursor.name == CHAIN_ID
                    )
                ).first()
            return None if row is None else (int(row[0]), int(row[1] or 0))

        def settled() -> list[set[int]] | None:
            """Each consumer's latest assignment, once they share every partition."""
            latest = [(assignments(p, topic) or [set()])[-1] for p in ingests]
            if all(latest) and sum(map(len, latest)) == partitions == len(set().union(*latest)):
                return latest
            return None

        # The chain source, with no start height in its env file, starts at the final
        # head: wait for that cursor before scripting, so it reads every scripted block.
        wait_for("the chain source's first cursor", lambda: cursor() is not None, procs)
        start_cursor = cursor()
        assert start_cursor is not None and start_cursor[0] == rpc.final.height
        wait_for("both ingest consumers to share the partitions", lambda: settled() is not None,
                 procs)  # fmt: skip
        shares = settled()
        assert shares is not None

        # The world on the chain: each message a transaction to its contract whose one
        # receipt (run in the same block or the next) logs the event line.
        first_scripted = rpc.latest.height + 1
        assert start_cursor[0] < first_scripted
        for b in range(0, len(world.messages), TXS_PER_BLOCK):
            txs = []
            for i, m in enumerate(world.messages[b : b + TXS_PER_BLOCK], start=b):
                who, contract = m.value["predecessor_id"], m.value["contract_id"]
                receipt = ScriptedReceipt(contract, who, (m.value["log"],), delay=i % 2)
                txs.append(ScriptedTx(who, contract, (receipt,), shard=i % SHARDS))
            rpc.script_block(txs, shards=SHARDS)
        for _ in range(4):  # so that every receipt's block is final
            rpc.script_block(shards=SHARDS)
        scripted_final = rpc.final.height

        # What the ingest code path makes of the same world: a reference on SQLite.
        ref_url = f"sqlite:///{tmp_path / 'reference.db'}"
        ref_engine = make_engine(ref_url)
        upgrade(ref_engine)
        apply_config(ref_url, PRESETS["tiny"])

        def event_rows(e: Any) -> Counter[tuple[str, str, str, str]]:
            with e.connect() as conn:
                rows = conn.execute(
                    select(Event.name, Event.contract_id, Event.predecessor_id, Event.payload)
                ).all()
            return Counter((n, c, p, json.dumps(pl, sort_keys=True)) for n, c, p, pl in rows)

        expected = event_rows(ref_engine)
        ref_engine.dispose()
        # One event per data item, except an nft_mint of several tokens: one per token.
        items = sum(expected.values())

        # 1. The chain source reads to the final head.
        wait_for("the cursor at the scripted chain's final head",
                 lambda: (cursor() or (0, 0))[0] >= scripted_final, procs)  # fmt: skip
        # 2. Every event in the database, each once, as the reference has them.
        wait_for("every event", lambda: scalar(select(func.count()).select_from(Event)) == items,
                 procs)  # fmt: skip
        assert event_rows(engine) == expected
        assert scalar(select(func.count()).select_from(DeadLetter)) == 0
        # 3. Both consumers did the work of their partitions (kafka-python's partitioner:
        # murmur2 of the key), and were not reassigned meanwhile.
        per_partition = Counter(
            (murmur2(m.key.encode()) & 0x7FFFFFFF) % partitions for m in world.messages
        )
        assert settled() == shares, [assignments(p, topic) for p in ingests]
        with engine.connect() as conn:
            offsets = dict(
                conn.execute(
                    select(ConsumerOffset.partition, ConsumerOffset.next_offset).where(
                        ConsumerOffset.group_id == group, ConsumerOffset.topic == topic
                    )
                ).all()
            )
        # The group's offsets (kept in the database with the events): every message once.
        assert offsets == {p: per_partition[p] for p in per_partition}, offsets
        for proc, share in zip(ingests, shares, strict=True):
            want = sum(per_partition[p] for p in share)
            assert want > 0, (share, per_partition)  # this world puts work on both

            def consumed(proc: Proc = proc, want: int = want) -> bool:
                h = healthz(proc.health_port)
                return h is not None and h[1].get("facts", {}).get("messages", 0) >= want

            wait_for(f"{proc.name} to report its {want} messages", consumed, procs)

        # 4. An epoch over every event, 5. published on the contract.
        top_event = scalar(select(func.max(Event.id)))

        def latest_epoch() -> tuple[int, int] | None:
            with engine.connect() as conn:
                row = conn.execute(
                    select(ScoreEpoch.epoch, ScoreEpoch.events_through)
                    .order_by(ScoreEpoch.epoch.desc())
                    .limit(1)
                ).first()
            return None if row is None else (int(row[0]), int(row[1]))

        wait_for("an epoch over every event",
                 lambda: (latest_epoch() or (0, 0))[1] == top_event, procs)  # fmt: skip
        epoch_now = latest_epoch()
        assert epoch_now is not None
        epoch = epoch_now[0]

        def on_chain() -> dict[str, Any] | None:
            reader = localnet.client(None)
            try:
                snap: dict[str, Any] | None = reader.view("get_latest_snapshot", {})
            finally:
                reader.close()
            return snap

        wait_for(f"epoch {epoch} on the contract",
                 lambda: (on_chain() or {}).get("epoch") == epoch, procs, every=1)  # fmt: skip
        snap = on_chain()
        assert snap is not None
        # The snapshot URI template of publisher.env, unchanged, recorded with the root.
        template = envs["publisher"]["RENOWN_SNAPSHOT_URI_TEMPLATE"]
        assert snap["uri"] == template.format(epoch=epoch)
        assert localnet.applied_methods().count("store_scores") >= 1
        # ...and announced on the snapshot topic of common.env (per-run name).
        announced = Publication.announced
        wait_for(f"epoch {epoch} announced",
                 lambda: scalar(select(announced).where(Publication.epoch == epoch)) is True,
                 procs)  # fmt: skip
        consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None,
                                 enable_auto_commit=False, consumer_timeout_ms=3000)  # fmt: skip
        try:
            tp = TopicPartition(subs["RENOWN_SNAPSHOT_TOPIC"], 0)
            consumer.assign([tp])
            consumer.seek_to_beginning(tp)
            notes = [json.loads(r.value) for r in consumer]
        finally:
            consumer.close()
        assert epoch in {n["epoch"] for n in notes}, notes

        # 6. The API: a seed's and the top account's scores, as the database has them.
        api = by_name["api"]
        base = f"http://127.0.0.1:{api.health_port}"
        status, top = get(f"{base}/v1/domains/global/top?limit=1")
        assert status == 200 and top["epoch"] == epoch, top
        sessions = make_session_factory(engine)
        for account in (world.truth.seeds[0], top["items"][0]["account"]):
            answer: dict[str, Any] = {}

            def served(account: str = account, answer: dict[str, Any] = answer) -> bool:
                status, body = get(f"{base}/v1/scores/{account}")
                answer.update(status=status, body=body)
                return status == 200 and body["epoch"] == epoch

            # The API re-reads the latest epoch number at most every few seconds.
            wait_for(f"GET /v1/scores/{account} at epoch {epoch}", served, procs, every=1)
            with UnitOfWork(sessions) as uow:
                rows = account_scores(uow.session, epoch, account)
            assert rows
            got = {s["domain"]: (s["score"], s["rank"]) for s in answer["body"]["scores"]}
            assert got == {r.domain: (r.score, r.rank) for r in rows}, account
        assert top["items"][0]["score"] == next(
            s["score"] for s in answer["body"]["scores"] if s["domain"] == "global"
        )
        # The key from the secret file is honoured; a key nobody registered is refused.
        for header, expected_status in ((key, 200), (keys_repo.generate_secret(), 401)):
            request = urllib.request.Request(
                f"{base}/v1/scores/{world.truth.seeds[0]}", headers={"X-API-Key": header}
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as r:
                    status = r.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            assert status == expected_status, header[:11]

        # 7. Every process's /healthz: 200 (the API's also says the broker and chain are up).
        for proc in procs:

            def healthy(port: int = proc.health_port) -> bool:
                answer = healthz(port)
                return answer is not None and answer[0] == 200

            wait_for(f"{proc.name} /healthz 200", healthy, procs)
        _, api_health = get(f"{base}/healthz")
        assert api_health["status"] == "ok", api_health

        # The chain source stays at the final head as the publisher's blocks come.
        wait_for("the cursor at the final head",
                 lambda: (cursor() or (0, 0))[0] == rpc.final.height, procs)  # fmt: skip

        # 8. SIGTERM, as `docker compose stop` sends it: each exits 0 within its grace period.
        stopped_at = time.monotonic()
        for proc in procs:
            proc.popen.send_signal(signal.SIGTERM)
        for proc in procs:
            left = proc.grace_s - (time.monotonic() - stopped_at)
            try:
                code = proc.popen.wait(timeout=max(left, 0.1))
            except subprocess.TimeoutExpired:
                raise AssertionError(
                    f"{proc.name} still running {proc.grace_s:g} s after SIGTERM "
                    f"(compose would SIGKILL it):\n{proc.tail()}"
                ) from None
            assert code == 0, proc.tail()
        print(f"stopped in {time.monotonic() - stopped_at:.1f} s")
        assert "failed rounds: 0" in by_name["publisher"].out.read_text()
        assert "failed rounds: 0" in by_name["scorer"].out.read_text()
    finally:
        for proc in procs:
            if proc.popen.poll() is None:
                proc.popen.kill()
                proc.popen.wait(10)
        engine.dispose()
