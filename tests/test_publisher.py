"""The publisher's logic (chain.publisher) against the contract's test double, on both
databases: batches, resume after a crash at every step, failures on chain, conflicts."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from chain.client import ChainUnavailable
from chain.publisher import PublishConflict, Publisher, PublishFailed, top_rows
from renown import bootstrap
from renown.broker import EmbeddedBroker
from renown.settings import Settings
from storage import migrate
from storage.db import make_engine, make_session_factory
from storage.models import Publication, PublicationTx
from storage.snapshot_repo import latest_snapshot, prove
from storage.uow import UnitOfWork
from tests.contract_double import Crash, SnapshotContractDouble
from tests.worlds import apply_world, score


def _scored(url: str, epochs: int = 1) -> list[str]:
    seeds = apply_world(url, seed=5)
    score(url, seeds, epochs)
    return seeds


def _publisher(url: str, chain: SnapshotContractDouble, **kw: object) -> Publisher:
    engine = make_engine(url)
    return Publisher(make_session_factory(engine, writer=True), chain, **kw)  # type: ignore[arg-type]


def _expected(url: str, top_n: int) -> tuple[int, str, dict[tuple[str, str], int]]:
    engine = make_engine(url)
    with UnitOfWork(make_session_factory(engine)) as uow:
        snap = latest_snapshot(uow.session)
        rows = top_rows(uow.session, snap.epoch, top_n)
        epoch, root = snap.epoch, snap.root
    engine.dispose()
    return epoch, root, {(r.account, r.domain): r.score_micro for r in rows}


def test_publishes_snapshot_and_top_scores_in_batches(db_url: str) -> None:
    seeds = _scored(db_url)
    chain = SnapshotContractDouble()
    announced: list[dict[str, object]] = []
    pub = _publisher(db_url, chain, top_n=10, batch_size=7, announce=announced.append)
    res = pub.publish()
    epoch, root, want = _expected(db_url, 10)
    assert res.epoch == epoch and res.root == root and res.announced
    assert chain.snapshots[epoch]["root"] == root
    assert {k: v["score_micro"] for k, v in chain.scores.items()} == want
    assert all(v["epoch"] == epoch for v in chain.scores.values())
    assert res.batches == res.batches_sent == -(-len(want) // 7)
    assert [m for m, _ in chain.calls] == ["publish"] + ["store_scores"] * res.batches
    assert announced and announced[0]["root"] == root and announced[0]["epoch"] == epoch
    # A proof served from the database verifies against the root on "chain".
    engine = make_engine(db_url)
    with UnitOfWork(make_session_factory(engine)) as uow:
        proven = prove(uow.session, seeds[0], "global")
        assert chain.view("verify", proven.proof.to_json() | {"epoch": epoch})
        txs = uow.session.execute(select(PublicationTx)).scalars().all()
        assert len(txs) == 1 + res.batches and all(t.ok for t in txs)
    engine.dispose()
    # Running again does nothing at all.
    again = pub.publish()
    assert again.already_done and len(chain.calls) == 1 + res.batches


@pytest.mark.parametrize("crash_at", [("publish", 1), ("store_scores", 1), ("store_scores", 3)])
def test_a_crash_right_after_a_transaction_landed_resumes_without_resending(
    db_url: str, crash_at: tuple[str, int]
) -> None:
    _scored(db_url)
    chain = SnapshotContractDouble(crash_after={crash_at[0]: crash_at[1]})
    with pytest.raises(Crash):
        _publisher(db_url, chain, top_n=10, batch_size=4).publish()
    calls_before = len(chain.calls)
    res = _publisher(db_url, chain, top_n=10, batch_size=4).publish()
    _epoch, _root, want = _expected(db_url, 10)
    assert {k: v["score_micro"] for k, v in chain.scores.items()} == want
    # Every transaction went out exactly once over the two runs.
    methods = [m for m, _ in chain.calls]
    assert methods.count("publish") == 1
    assert methods.count("store_scores") == res.batches
    assert res.batches_found_on_chain == (1 if crash_at[0] == "store_scores" else 0)
    assert len(chain.calls) - calls_before == res.batches_sent


def test_a_failed_transaction_is_reported_and_the_next_run_finishes(db_url: str) -> None:
    _scored(db_url)
    chain = SnapshotContractDouble(fail={"store_scores": "Smart contract panicked: out of gas"})
    pub = _publisher(db_url, chain, top_n=10, batch_size=4)
    failed = r"batch 1/\d+ of epoch 1 failed on chain: .*out of gas"
    with pytest.raises(PublishFailed, match=failed):
        pub.publish()
    engine = make_engine(db_url)
    with UnitOfWork(make_session_factory(engine)) as uow:
        p = uow.session.execute(select(Publication)).scalar_one()
        assert p.stage == "failed" and "out of gas" in (p.last_error or "")
        failed = uow.session.execute(select(PublicationTx).where(PublicationTx.ok.is_(False)))
        assert len(failed.scalars().all()) == 1
    engine.dispose()
    res = pub.publish()
    assert res.batches_sent == res.batches > 1
    assert len(chain.scores) == len(_expected(db_url, 10)[2])


def test_a_stranger_is_refused_and_reported(db_url: str) -> None:
    _scored(db_url)
    chain = SnapshotContractDouble(caller="mallory.near")
    with pytest.raises(PublishFailed, match="only the publisher"):
        _publisher(db_url, chain).publish()
    assert not chain.snapshots


def test_conflicts_stop_the_run(db_url: str) -> None:
    _scored(db_url)
    epoch, _root, _ = _expected(db_url, 10)
    newer = SnapshotContractDouble()
    newer.snapshots[epoch + 1] = {"epoch": epoch + 1, "root": "ab" * 32, "count": 1, "uri": ""}
    with pytest.raises(PublishConflict, match="newer than this database"):
        _publisher(db_url, newer).publish()
    other = SnapshotContractDouble()
    other.snapshots[epoch] = {"epoch": epoch, "root": "cd" * 32, "count": 1, "uri": ""}
    with pytest.raises(PublishConflict, match="two Renown databases"):
        _publisher(db_url, other).publish()


def test_rpc_down_loses_nothing(db_url: str) -> None:
    _scored(db_url)
    chain = SnapshotContractDouble(down=True)
    pub = _publisher(db_url, chain, top_n=10, batch_size=4)
    with pytest.raises(ChainUnavailable):
        pub.publish()
    chain.down = False
    res = pub.publish()
    assert res.batches_sent == res.batches and chain.snapshots


def test_announcement_retried_when_the_broker_was_down(db_url: str) -> None:
    _scored(db_url)
    chain = SnapshotContractDouble()
    sent: list[dict[str, object]] = []

    def down(_: dict[str, object]) -> None:
        raise OSError("broker down")

    res = _publisher(db_url, chain, top_n=5, announce=down).publish()
    assert not res.announced and chain.snapshots
    res = _publisher(db_url, chain, top_n=5, announce=sent.append).publish()
    assert res.announced and len(sent) == 1 and res.batches_sent == 0


def test_a_newer_epoch_is_published_after_the_first(db_url: str) -> None:
    _scored(db_url, epochs=2)
    chain = SnapshotContractDouble()
    # Epoch 1 was never published; the latest (2) is, and an older one is not needed.
    res = _publisher(db_url, chain, top_n=5).publish()
    assert res.epoch == 2 and list(chain.snapshots) == [2]
    assert {v["epoch"] for v in chain.scores.values()} == {2}


def test_cli_publish_and_verify(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`renown publish` and `renown verify` through the CLI, the chain seam replaced by the
    contract's test double (the real py-near path is tested with the JSON-RPC double)."""
    from renown import cli

    seeds = _scored(db_url)
    chain = SnapshotContractDouble()
    monkeypatch.setattr(bootstrap, "make_chain_client", lambda settings, signer: chain)
    base = ["--database-url", db_url]
    monkeypatch.setenv("RENOWN_CONTRACT_ID", chain.contract_id)
    assert cli.main([*base, "verify", seeds[0]]) == 2
    assert "run `renown publish` first" in capsys.readouterr().err
    assert cli.main([*base, "publish"]) == 0
    out = capsys.readouterr().out
    assert "epoch 1 published to snapshots.renown.near" in out and "NOT announced" in out
    assert cli.main([*base, "publish"]) == 0
    assert "already published" in capsys.readouterr().out
    assert cli.main([*base, "verify", seeds[0]]) == 0
    assert capsys.readouterr().out.startswith(f"PROVEN: {seeds[0]} in global at epoch 1")
    # A contract whose root differs (someone else's epoch 1): not proven, exit 1.
    chain.snapshots[1]["root"] = "00" * 32
    assert cli.main([*base, "verify", seeds[0]]) == 1
    assert capsys.readouterr().out.startswith("NOT PROVEN")
    # Without a contract configured, a clear error.
    monkeypatch.undo()
    assert cli.main([*base, "publish"]) == 2
    assert "RENOWN_CONTRACT_ID" in capsys.readouterr().err


def test_batches_respect_the_contracts_argument_limit() -> None:
    from chain.publisher import MAX_ARGS_BYTES, ScoreRow, batches_of

    long = [ScoreRow("a" * 60 + f"{i:04d}", "d" * 64, 99_999_999) for i in range(300)]
    cut = batches_of(7, long, 100)
    assert [r for b in cut for r in b] == long
    for b in cut:
        args = {"epoch": 7, "scores": [r.to_json() for r in b]}
        assert len(json.dumps(args)) <= MAX_ARGS_BYTES and len(b) <= 100
    assert max(len(b) for b in cut) < 100  # the byte limit, not the count, cut them
    short = [ScoreRow(f"u{i}.near", "global", i) for i in range(250)]
    assert [len(b) for b in batches_of(7, short, 100)] == [100, 100, 50]


def test_publication_is_announced_on_the_real_broker(
    tmp_path: Path, broker: EmbeddedBroker
) -> None:
    """build_publisher wires the announcement to Kafka: one message per publication, keyed
    by the epoch, on the configured topic of a real (embedded) broker."""
    from kafka import KafkaConsumer, TopicPartition

    from ingest.produce import ensure_topic

    url = f"sqlite:///{tmp_path / 'r.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    seeds = _scored(url)
    topic = f"snapshots-{uuid.uuid4().hex[:8]}"
    ensure_topic(broker.bootstrap, topic, 1)
    settings = Settings(
        database_url=url,
        seeds=seeds,
        kafka_bootstrap=broker.bootstrap,
        snapshot_topic=topic,
        contract_id="snapshots.renown.near",
        snapshot_uri_template="https://renown.example/v1/snapshots/{epoch}.jsonl",
    )
    chain = SnapshotContractDouble()
    db = bootstrap.open_database(settings)
    try:
        res = bootstrap.build_publisher(settings, db, chain).publish()
    finally:
        db.close()
    assert res.announced
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, consumer_timeout_ms=5000)
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    records = list(consumer)
    consumer.close()
    assert len(records) == 1 and records[0].key == b"1"
    msg = json.loads(records[0].value)
    assert msg["root"] == res.root and msg["epoch"] == 1
    assert msg["uri"] == "https://renown.example/v1/snapshots/1.jsonl"
    assert chain.snapshots[1]["uri"] == msg["uri"]
