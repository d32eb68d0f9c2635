"""The NEAR chain source (chain/source.py, ``renown chain-source``) against the JSON-RPC
double's scripted chain (tests/near_rpc_double.py: ``block``, ``chunk`` and
``EXPERIMENTAL_tx_status`` in the shapes of docs.near.org's RPC pages "Block / Chunk" and
"Transactions: Transaction Status with Receipts").

The scripted chain holds what a real one does to a reader: two shards, a shard without a
new chunk (its header repeated), heights NEAR skipped, blocks behind the head that are not
final yet, receipts that run one and two blocks after their transaction, a failed receipt
with an event log, logs that are not events, a log carrying several events, a contract
that is not followed, and a callback of the followed contract to itself. The messages are
checked against the script, in process and through the real broker, with a restart (and a
crash) in the middle of the range, then applied by ``renown ingest``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, TopicPartition
from sqlalchemy import func, select

from chain.rpc import JsonRpc
from chain.source import Backoff, ChainGap, ChainSource, Progress, events_of_tx
from renown import bootstrap
from renown.broker import EmbeddedBroker, free_port
from renown.settings import Settings
from storage.db import make_engine
from storage.models import ChainCursor, Event
from tests.near_emulator import NearEmulator
from tests.near_rpc_double import CHAIN_ID, NearRpcDouble, ScriptedReceipt, ScriptedTx
from tests.processes import wait_for
from tests.test_api_ops import build, scrape

MARKET = "labels.market.near"
GAME = "game.near"  # emits events too, but is not followed


def ev(event: str, *items: dict[str, Any]) -> str:
    return "EVENT_JSON:" + json.dumps(
        {"standard": "renown", "version": "1.0.0", "event": event, "data": list(items)},
        separators=(",", ":"),
    )


def vote(voter: str, target: str, value: int = 1) -> dict[str, Any]:
    return {"voter": voter, "target_kind": "account", "target": target, "value": value}


def endorse(endorser: str, endorsee: str) -> dict[str, Any]:
    return {"endorser": endorser, "endorsee": endorsee}


@dataclass
class Chain:
    """A double with a scripted chain, and what the script says the source must produce:
    (block index of the receipt, predecessor, log index, log), and for each the block
    index of its transaction."""

    rpc: NearRpcDouble
    expected: list[tuple[int, str, int, str]] = field(default_factory=list)
    origins: list[int] = field(default_factory=list)
    txs: int = 0  # transactions sent to the followed contract

    def block(self, txs: list[ScriptedTx] = [], **kw: Any) -> int:  # noqa: B006
        b = self.rpc.script_block(txs, shards=2, **kw)
        index = len(self.rpc.blocks) - 1
        for t in txs:
            if t.receiver_id != MARKET:
                continue
            self.txs += 1
            for r in t.receipts:
                if r.executor_id != MARKET or not r.ok:
                    continue
                for li, log in enumerate(r.logs):
                    if log.startswith("EVENT_JSON:"):
                        self.expected.append((index + r.delay, r.predecessor_id, li, log))
                        self.origins.append(index)
        return b.height

    def expected_messages(self) -> list[tuple[int, str, int, str]]:
        """(height, predecessor, log index, log), in the order the script runs them."""
        return [(self.rpc.blocks[i].height, p, li, log) for i, p, li, log in self.expected]


def scripted_chain(rounds: int = 3) -> Chain:
    """``rounds`` times the same pattern of blocks (each round's accounts differ), then
    empty blocks so every receipt has run; the last 2 blocks are not final."""
    rpc = NearRpcDouble(NearEmulator())
    rpc.final_lag = 2
    chain = Chain(rpc)
    for n in range(rounds):
        a, b, c, d = (f"{x}{n}.near" for x in ("alice", "bob", "carol", "dave"))
        chain.block(
            [
                ScriptedTx(a, MARKET, (
                    ScriptedReceipt(MARKET, a, (
                        "stored 2 votes",  # a log that is not an event
                        ev("vote_cast", vote(a, b)),
                        ev("endorsed", endorse(a, b), endorse(a, c)),  # two events, one log
                    )),
                    # the contract's callback to itself, a block later: predecessor MARKET
                    ScriptedReceipt(MARKET, MARKET, (ev("endorsed", endorse(a, d)),), delay=2),
                )),
                ScriptedTx(b, MARKET, (
                    # panicked after logging: reverted, so its event never happened
                    ScriptedReceipt(MARKET, b, (ev("vote_cast", vote(b, a, -1)),), ok=False),
                ), shard=1),
            ]
        )  # fmt: skip
        chain.block(skip=2, missing=(1,))  # two heights skipped; shard 1 makes no chunk
        chain.block(
            [
                ScriptedTx(c, GAME, (ScriptedReceipt(GAME, c, (ev("vote_cast", vote(c, a)),)),)),
                ScriptedTx(d, MARKET, (
                    ScriptedReceipt(MARKET, d, ("nothing to report",)),
                    # the market calls the game: the game's events are not the market's
                    ScriptedReceipt(GAME, MARKET, (ev("vote_cast", vote(d, c)),)),
                    ScriptedReceipt(MARKET, GAME, (ev("vote_cast", vote(d, a)),), delay=2),
                ), shard=1),
            ]
        )  # fmt: skip
    for _ in range(4):
        chain.block()
    return chain


@dataclass
class MemoryCursors:
    saved: dict[str, tuple[int, str | None]] = field(default_factory=dict)
    heads: list[int] = field(default_factory=list)

    def load(self, name: str) -> tuple[int, str | None] | None:
        return self.saved.get(name)

    def save(self, name: str, *, height: int, block_hash: str | None, **_: Any) -> None:
        self.saved[name] = (height, block_hash)

    def save_head(self, name: str, head_height: int) -> None:
        self.heads.append(head_height)


@dataclass
class ListSink:
    sent: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    acknowledged: int = 0

    def send(self, key: str, message: dict[str, Any]) -> None:
        self.sent.append((key, message))

    def flush(self) -> None:
        self.acknowledged = len(self.sent)


def source(url: str, sink: ListSink, cursors: Any, **kw: Any) -> ChainSource:
    kw.setdefault("backoff", Backoff(base=0.001, cap=0.01))
    return ChainSource(
        rpc=JsonRpc(url, timeout=5), contracts=frozenset({MARKET}), send=sink.send,
        flush=sink.flush, cursors=cursors, poll_s=0.01, **kw,
    )  # fmt: skip


def as_expected(sent: list[tuple[str, dict[str, Any]]]) -> list[tuple[int, str, int, str]]:
    out = []
    for key, m in sent:
        # keyed by the subject: the account acting in the first data item (EVENTS.md)
        assert key == json.loads(m["log"][11:])["data"][0].get("voter", key)
        assert m["contract_id"] == MARKET
        out.append((m["block_height"], m["predecessor_id"], m["log_index"], m["log"]))
    return out


# --------------------------------------------------------------------------------------
# In process: the reading rules
# --------------------------------------------------------------------------------------


def test_final_blocks_become_one_message_per_event_log() -> None:
    chain = scripted_chain()
    rpc = chain.rpc
    sink, cursors = ListSink(), MemoryCursors()
    first = rpc.blocks[1].height
    with rpc.running() as url:
        progress = source(url, sink, cursors).run("t", start_height=first,
                                                  to_height=rpc.final.height)  # fmt: skip
    assert as_expected(sink.sent) == chain.expected_messages()
    # 3 rounds x (alice's vote log and two-event log, her callback, the market's call back
    # from the game): 12 messages, 15 events
    assert len(sink.sent) == 12
    assert sum(len(json.loads(m["log"][11:])["data"]) for _, m in sink.sent) == 15
    # The plain log before them keeps its place: the vote is the receipt's log 1.
    assert [m["log_index"] for _, m in sink.sent[:2]] == [1, 2]
    # The reverted vote (bob's -1) and the game's events are absent.
    assert not any('"value":-1' in m["log"] for _, m in sink.sent)
    assert not any('"voter":"carol' in m["log"] for _, m in sink.sent)
    assert sum(m["predecessor_id"] == GAME for _, m in sink.sent) == 3
    # The market's callback to itself acts for alice: her key, its predecessor.
    callbacks = [(k, m) for k, m in sink.sent if m["predecessor_id"] == MARKET]
    assert [k for k, _ in callbacks] == [f"alice{n}.near" for n in range(3)]
    # Every block read, skipped heights passed over, nothing above the final head asked.
    assert progress.blocks == len(rpc.blocks) - 1 - rpc.final_lag
    assert progress.skipped_heights == 6
    assert all(asked <= final for asked, final in rpc.block_requests)
    assert progress.transactions == chain.txs == 9
    # A repeated chunk header (no new chunk) is not read again.
    final = rpc.blocks.index(rpc.final)
    new = sum(c["height_included"] == b.height for b in rpc.blocks[1 : final + 1] for c in b.chunks)
    assert rpc.requests["chunk"] == new < sum(len(b.chunks) for b in rpc.blocks[1 : final + 1])
    assert cursors.saved["t"] == (rpc.final.height, rpc.final.hash)
    assert sink.acknowledged == len(sink.sent)


def test_the_cursor_is_saved_only_after_kafka_acknowledged() -> None:
    chain = scripted_chain(rounds=2)
    order: list[str] = []

    class Sink(ListSink):
        def flush(self) -> None:
            order.append(f"flush {len(self.sent)}")
            super().flush()

    class Cursors(MemoryCursors):
        def save(self, name: str, **kw: Any) -> None:
            order.append("save")
            super().save(name, **kw)

    with chain.rpc.running() as url:
        source(url, Sink(), cursors := Cursors(), batch_blocks=2).run(
            "t", start_height=chain.rpc.blocks[1].height, to_height=chain.rpc.final.height
        )
    assert order and all(order[i].startswith("flush") for i in range(0, len(order), 2))
    assert all(order[i] == "save" for i in range(1, len(order), 2))
    assert cursors.saved["t"][0] == chain.rpc.final.height


def test_a_refused_flush_never_moves_the_cursor() -> None:
    """Kafka did not acknowledge a batch: the source stops without saving, even on its
    way out (a second flush of nothing would succeed and skip the refused messages)."""
    chain = scripted_chain(rounds=2)

    class Refusing(ListSink):
        """Like KafkaSink: a failure is reported by one flush; the next has nothing new."""

        refused = False

        def flush(self) -> None:
            if self.sent and not self.refused:
                self.refused = True
                raise RuntimeError("3 of 3 messages were not delivered")

    cursors = MemoryCursors()
    with chain.rpc.running() as url, pytest.raises(RuntimeError, match="not delivered"):
        source(url, Refusing(), cursors, batch_blocks=2).run(
            "t", start_height=chain.rpc.blocks[1].height, to_height=chain.rpc.final.height
        )
    assert cursors.saved == {}


def test_rate_limits_server_errors_and_timeouts_are_retried() -> None:
    chain = scripted_chain(rounds=1)
    rpc = chain.rpc
    rpc.faults = {
        "block": ["429", "500", "timeout"],
        "chunk": ["500", "429"],
        "EXPERIMENTAL_tx_status": ["timeout", "500"],
    }
    sink = ListSink()
    with rpc.running() as url:
        progress = source(url, sink, MemoryCursors()).run(
            "t", start_height=rpc.blocks[1].height, to_height=rpc.final.height
        )
    assert as_expected(sink.sent) == chain.expected_messages()
    assert progress.retries == 7
    assert rpc.requests["HTTP 429"] == 2 and rpc.requests["HTTP 500"] == 3
    assert not any(rpc.faults.values())


def test_waits_for_a_transaction_whose_receipts_are_not_final() -> None:
    """The transaction's block is final, its receipts ran in blocks that are not (or not
    yet produced): the source waits, producing nothing of it, then carries on."""
    rpc = NearRpcDouble(NearEmulator())
    rpc.final_lag = 1
    chain = Chain(rpc)
    a = "alice.near"
    tx_height = chain.block([ScriptedTx(a, MARKET, (
        ScriptedReceipt(MARKET, a, (ev("vote_cast", vote(a, "bob.near")),), delay=3),
    ))])  # fmt: skip
    chain.block()  # the transaction's block is now final; its receipt's block does not exist
    sink = ListSink()
    asked: list[int] = []
    with rpc.running() as url:
        src = source(url, sink, MemoryCursors())
        src.backoff = Backoff(base=0.01, cap=0.02)
        thread = threading.Thread(
            target=lambda: asked.append(src.run("t", start_height=tx_height).blocks)
        )
        thread.start()
        deadline = time.monotonic() + 10
        while rpc.requests.get("EXPERIMENTAL_tx_status", 0) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert sink.sent == [] and src.progress.blocks == 0
        for _ in range(3):
            chain.block()  # receipt block produced, then final
        while not sink.sent:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        src.stop.set()
        thread.join(10)
    assert as_expected(sink.sent) == chain.expected_messages()
    assert sink.sent[0][1]["block_height"] == tx_height + 3


def test_a_node_missing_blocks_is_an_error_not_a_gap() -> None:
    chain = scripted_chain(rounds=1)
    rpc = chain.rpc
    rpc.blocks.pop(3)  # a block the node does not have (not an archival node)
    sink, cursors = ListSink(), MemoryCursors()
    with rpc.running() as url, pytest.raises(ChainGap, match="lacks blocks"):
        source(url, sink, cursors).run(
            "t", start_height=rpc.blocks[1].height, to_height=rpc.final.height
        )
    assert "t" not in cursors.saved  # nothing after the gap is taken for read


def test_a_lagging_node_is_read_again_not_taken_for_a_gap() -> None:
    """Behind a load balancer, a node that lags answers UNKNOWN_BLOCK for a block that
    exists: the next block does not follow the last one read, so the heights in between
    are read again (twice here) instead of skipped or called a gap."""
    chain = scripted_chain(rounds=1)
    rpc = chain.rpc
    rpc.lagging[rpc.blocks[3].height] = 2
    sink = ListSink()
    with rpc.running() as url:
        progress = source(url, sink, MemoryCursors()).run(
            "t", start_height=rpc.blocks[1].height, to_height=rpc.final.height
        )
    assert as_expected(sink.sent) == chain.expected_messages()
    assert progress.skipped_heights == 2  # the two NEAR really skipped, counted once
    assert progress.retries == 2 and rpc.lagging[rpc.blocks[3].height] == 0


def test_a_new_cursor_on_missing_blocks_is_a_gap_not_skipped_heights() -> None:
    """No hash to compare yet (a new cursor, a backfill): a node that lacks the first
    blocks (garbage-collected) answers UNKNOWN_BLOCK as for skipped heights; the first
    block it has names its parent's height, at or after the start: a gap."""
    chain = scripted_chain(rounds=1)
    rpc = chain.rpc
    rpc.lagging[rpc.blocks[1].height] = 100  # never there
    sink, cursors = ListSink(), MemoryCursors()
    with rpc.running() as url, pytest.raises(ChainGap, match="lacks blocks"):
        source(url, sink, cursors).run(
            "t", start_height=rpc.blocks[1].height, to_height=rpc.final.height
        )
    assert sink.sent == [] and cursors.saved == {}


def test_a_range_ending_on_unknown_heights_is_confirmed_past_its_end() -> None:
    """The last height of a backfill answers UNKNOWN_BLOCK (a lagging node): the source
    reads on past the range until a block shows whether that height was skipped; here
    it was not, so it is read again and its events produced."""
    chain = scripted_chain(rounds=1)
    rpc = chain.rpc
    last = rpc.blocks[1].height
    rpc.lagging[last] = 2
    sink, cursors = ListSink(), MemoryCursors()
    with rpc.running() as url:
        progress = source(url, sink, cursors).run("t", start_height=last, to_height=last)
    want = [m for m, o in zip(chain.expected_messages(), chain.origins, strict=True) if o == 1]
    assert as_expected(sink.sent) == want and want
    assert progress.retries == 2 and progress.blocks == 1
    assert cursors.saved["t"] == (last, rpc.blocks[1].hash)  # the range's end, not past it


def test_a_transaction_invalid_when_applied_has_no_events() -> None:
    """Chunks may include a transaction that is invalid when applied: its status is
    INVALID_TRANSACTION; it never ran, so no events, and the source goes on."""
    rpc = NearRpcDouble(NearEmulator())
    chain = Chain(rpc)
    a = "alice.near"
    chain.block([
        ScriptedTx(a, MARKET, (ScriptedReceipt(MARKET, a, (ev("vote_cast", vote(a, "b.near")),)),),
                   invalid=True),
        ScriptedTx("bob.near", MARKET, (ScriptedReceipt(MARKET, "bob.near",
                                                        (ev("vote_cast", vote("bob.near", a)),)),)),
    ])  # fmt: skip
    chain.expected = [e for e in chain.expected if e[1] != a]  # the script's view: none
    chain.block()
    sink = ListSink()
    with rpc.running() as url:
        progress = source(url, sink, MemoryCursors()).run(
            "t", start_height=rpc.blocks[1].height, to_height=rpc.final.height
        )
    assert as_expected(sink.sent) == chain.expected_messages()
    assert [k for k, _ in sink.sent] == ["bob.near"] and progress.transactions == 2


def test_events_of_tx_keeps_only_successful_receipts_of_the_contracts() -> None:
    """The rule on NEAR's shape alone, without a node (a status as the RPC gives it)."""
    rpc = NearRpcDouble(NearEmulator())
    chain = Chain(rpc)
    a = "alice.near"
    chain.block([ScriptedTx(a, MARKET, (
        ScriptedReceipt(MARKET, a, ("x", ev("vote_cast", vote(a, "b.near")), "y"), delay=0),
        ScriptedReceipt(MARKET, MARKET, (ev("endorsed", endorse(a, "b.near")),), ok=False,
                        delay=0),
    ))])  # fmt: skip
    tx = next(iter(rpc._scripted))
    status = rpc._tx_status({"tx_hash": tx, "sender_account_id": a})
    blocks = {b.hash: b for b in rpc.blocks}

    def block_of(h: str) -> Any:
        from chain.source import BlockInfo

        return BlockInfo(blocks[h].height, h, blocks[h].timestamp_ns)

    out = events_of_tx(status, frozenset({MARKET}), block_of)
    assert [(k, m["log_index"], m["receipt_id"]) for k, m in out] == [
        (a, 1, status["receipts_outcome"][0]["id"])
    ]
    assert out[0][1]["block_timestamp"] == rpc.blocks[1].timestamp_ns
    assert events_of_tx(status, frozenset({"other.near"}), block_of) == []


# --------------------------------------------------------------------------------------
# The database cursor: a restart in the middle of the range, on both databases
# --------------------------------------------------------------------------------------


def test_restart_mid_range_resumes_from_the_database_cursor(db_url: str) -> None:
    chain = scripted_chain()
    rpc = chain.rpc
    settings = Settings(database_url=db_url)
    db = bootstrap.open_database(settings)
    cursors = bootstrap.DatabaseCursors(db)
    first, sink = rpc.blocks[1].height, ListSink()
    try:
        with rpc.running() as url:
            stopper = source(url, sink, cursors, batch_blocks=3)

            def stop_after_five(p: Progress) -> None:
                if p.blocks == 5:
                    stopper.stop.set()

            stopper.on_progress = stop_after_five
            stopper.run(CHAIN_ID, start_height=first)  # follows until stopped
            saved = cursors.load(CHAIN_ID)
            assert saved is not None and saved[0] == stopper.progress.height  # saved on stop
            first_run = len(sink.sent)
            assert 0 < first_run < len(chain.expected)
            # a second run: start_height is ignored now that a cursor exists
            source(url, sink, cursors).run(CHAIN_ID, start_height=first,
                                           to_height=rpc.final.height)  # fmt: skip
        assert as_expected(sink.sent) == chain.expected_messages()  # no gap, no duplicate
        with db.sessions() as s:
            row = s.get(ChainCursor, CHAIN_ID)
            assert row is not None
            assert (row.height, row.block_hash) == (rpc.final.height, rpc.final.hash)
            assert row.messages == len(chain.expected)
            assert row.head_height == rpc.final.height
    finally:
        db.close()


# --------------------------------------------------------------------------------------
# The command, the real broker, ingest, /metrics
# --------------------------------------------------------------------------------------


def _env(db_url: str, broker: EmbeddedBroker, topic: str, rpc_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENOWN_")}
    return env | {
        "RENOWN_DATABASE_URL": db_url,
        "RENOWN_KAFKA_BOOTSTRAP": broker.bootstrap,
        "RENOWN_TOPIC": topic,
        "RENOWN_TOPIC_PARTITIONS": "3",
        "RENOWN_NEAR_RPC_URL": rpc_url,
        "RENOWN_CHAIN_CONTRACTS": MARKET,
        "RENOWN_CHAIN_POLL_S": "0.05",
        "RENOWN_CHAIN_BATCH_BLOCKS": "2",
    }


def _renown(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "renown.cli", "-v", *args], env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def _topic_messages(bootstrap_servers: str, topic: str) -> list[tuple[str, dict[str, Any]]]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=None,
                             enable_auto_commit=False, consumer_timeout_ms=3000)  # fmt: skip
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        return [(r.key.decode(), json.loads(r.value)) for r in consumer]
    finally:
        consumer.close()


def _cursor(db_url: str, name: str) -> int | None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(select(ChainCursor.height).where(ChainCursor.name == name)).scalar()
    finally:
        engine.dispose()


def _wait(what: str, check: Callable[[], bool], proc: subprocess.Popen[str] | None) -> None:
    wait_for(what, check, proc, timeout=60)


@pytest.fixture
def running_chain() -> Iterator[tuple[Chain, str]]:
    chain = scripted_chain(rounds=4)
    with chain.rpc.running() as url:
        yield chain, url


def test_chain_source_command_crash_and_restart_then_ingest(
    db_url: str, broker: EmbeddedBroker, running_chain: tuple[Chain, str]
) -> None:
    """The follower as a process: SIGKILLed mid-range (no goodbye), restarted, then
    stopped with SIGTERM at the head. Every event reaches the broker, replays only repeat
    messages (same key and value), and ingest applies each event once."""
    chain, url = running_chain
    rpc = chain.rpc
    topic = f"chain-{uuid.uuid4().hex[:8]}"
    env = _env(db_url, broker, topic, url) | {
        "RENOWN_CHAIN_START_HEIGHT": str(rpc.blocks[1].height)
    }
    # The final head in the middle: the source reads up to the last block whose
    # transactions' receipts are all final, then waits there (a few blocks below it).
    final = len(rpc.blocks) // 2
    rpc.final_lag = len(rpc.blocks) - 1 - final
    middle = rpc.blocks[final - 3].height
    proc = _renown("chain-source", env=env)
    try:
        _wait("the middle", lambda: (_cursor(db_url, CHAIN_ID) or 0) >= middle, proc)
        proc.kill()  # a crash: whatever was not saved is read again
        proc.wait(10)
        rpc.final_lag = 2  # the chain moves on while the source is down
        port = free_port()
        proc = _renown("chain-source", env=env | {"RENOWN_HEALTH_PORT": str(port)})
        _wait("the head", lambda: _cursor(db_url, CHAIN_ID) == rpc.final.height, proc)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            health = json.loads(r.read())
        assert health["status"] == "ok" and health["process"] == "chain-source"
        assert health["facts"]["final_head"] == rpc.final.height
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert f"to height {rpc.final.height}" in out
    finally:
        if proc.poll() is None:
            proc.kill()
    got = _topic_messages(broker.bootstrap, topic)
    unique = {(m["receipt_id"], m["log_index"]): (k, m) for k, m in got}
    assert len(unique) == len(chain.expected)  # every event log, none invented
    assert sorted(as_expected(list(unique.values()))) == sorted(chain.expected_messages())
    for k, m in got:  # a replayed message is the same message
        assert unique[(m["receipt_id"], m["log_index"])] == (k, m)
    assert len(got) - len(unique) <= 4 * 2  # at most a batch of 2 blocks replayed

    ingest = _renown("ingest", "--idle-exit", "3", env=env | {"RENOWN_GROUP_ID": topic})
    _, err = ingest.communicate(timeout=120)
    assert ingest.returncode == 0, err
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            events = conn.execute(select(func.count()).select_from(Event)).scalar()
    finally:
        engine.dispose()
    items = Counter(len(json.loads(m["log"][11:])["data"]) for _, m in unique.values())
    assert events == sum(n * c for n, c in items.items())  # once, whatever the replays

    app = build(Settings(database_url=db_url))
    with TestClient(app) as client:
        samples = scrape(client)
    assert samples["renown_chain_height"][(("cursor", CHAIN_ID),)] == rpc.final.height
    assert samples["renown_chain_lag_blocks"][(("cursor", CHAIN_ID),)] == 0
    assert samples["renown_chain_messages_total"][(("cursor", CHAIN_ID),)] >= len(unique)


def test_backfill_reads_its_range_with_its_own_cursor(
    db_url: str, broker: EmbeddedBroker, running_chain: tuple[Chain, str]
) -> None:
    chain, url = running_chain
    rpc = chain.rpc
    topic = f"backfill-{uuid.uuid4().hex[:8]}"
    env = _env(db_url, broker, topic, url)
    lo, hi = rpc.blocks[4].height, rpc.blocks[9].height
    proc = _renown("chain-source", "--from-height", str(lo), "--to-height", str(hi), env=env)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert f"to height {hi}" in out
    got = _topic_messages(broker.bootstrap, topic)
    # Receipts of transactions in [lo, hi], wherever they ran (some after hi).
    in_range = {i for i, b in enumerate(rpc.blocks) if lo <= b.height <= hi}
    want = [
        (rpc.blocks[i].height, p, li, log)
        for (i, p, li, log), origin in zip(chain.expected, chain.origins, strict=True)
        if origin in in_range
    ]
    assert sorted(as_expected(got)) == sorted(want) and want
    assert _cursor(db_url, f"{CHAIN_ID}:backfill:{lo}-{hi}") == hi
    assert _cursor(db_url, CHAIN_ID) is None  # the follower's cursor is untouched
    again = _renown("chain-source", "--from-height", str(lo), "--to-height", str(hi), env=env)
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    assert "0 blocks" in out  # resumed at its end: nothing read twice
    assert len(_topic_messages(broker.bootstrap, topic)) == len(got)


@pytest.mark.parametrize(
    ("env_extra", "args", "message"),
    [
        ({"RENOWN_CHAIN_CONTRACTS": ""}, [], "no contracts to follow"),
        ({}, ["--to-height", "5"], "--to-height needs --from-height"),
        ({}, ["--from-height", "9", "--to-height", "5"], "below --from-height"),
        ({"RENOWN_CHAIN_CONTRACTS": "Not An Account"}, [], "not NEAR account ids"),
    ],
)
def test_chain_source_refusals(
    tmp_path: Path, env_extra: dict[str, str], args: list[str], message: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENOWN_")}
    env |= {
        "RENOWN_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
        "RENOWN_KAFKA_BOOTSTRAP": "127.0.0.1:9",
        "RENOWN_CHAIN_CONTRACTS": MARKET,
    } | env_extra
    proc = subprocess.run(
        [sys.executable, "-m", "renown.cli", "chain-source", *args],
        env=env, text=True, capture_output=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_an_unreachable_node_is_one_clear_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    subprocess.run([sys.executable, "-m", "renown.cli", "--database-url", url, "db", "upgrade"],
                   check=True, capture_output=True)  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENOWN_")} | {
        "RENOWN_DATABASE_URL": url,
        "RENOWN_KAFKA_BOOTSTRAP": "127.0.0.1:9",
        "RENOWN_NEAR_RPC_URL": "http://127.0.0.1:9",
        "RENOWN_CHAIN_CONTRACTS": MARKET,
    }
    proc = subprocess.run(
        [sys.executable, "-m", "renown.cli", "chain-source"],
        env=env, text=True, capture_output=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "unreachable" in proc.stderr and "Traceback" not in proc.stderr
