"""Epoch snapshots end to end on both databases: built with the epoch, proofs, CLI."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import update

from renown import bootstrap
from renown.cli import main
from scoring.merkle import Leaf, MerkleTree, Proof, score_micro, verify
from storage.db import make_engine, make_session_factory
from storage.models import Account, Score, Snapshot
from storage.scoring_repo import top_scores
from storage.snapshot_repo import (
    NoSnapshot,
    NotInSnapshot,
    SnapshotMismatch,
    latest_snapshot,
    prove,
    snapshot_of,
)
from storage.uow import UnitOfWork
from tests.worlds import apply_world, score


def _world_into(url: str) -> list[str]:
    return apply_world(url, seed=3)


def _score(url: str, seeds: list[str]) -> bootstrap.EpochSummary:
    return score(url, seeds)


def test_each_epoch_commits_to_its_stored_scores(db_url: str) -> None:
    summary = _score(db_url, _world_into(db_url))
    engine = make_engine(db_url)
    with UnitOfWork(make_session_factory(engine)) as uow:
        snap = latest_snapshot(uow.session)
        assert snap.epoch == summary.epoch and snap.root == summary.root
        # Independently: every stored score of every domain, hashed by scoring.merkle.
        leaves = []
        domains = {"global", *summary.domains}
        for domain in domains:
            for row in top_scores(uow.session, snap.epoch, domain, 10**6):
                leaves.append(Leaf(row.account, domain, score_micro(row.score), snap.epoch))
        tree = MerkleTree(leaves)
        assert tree.root.hex() == snap.root and tree.count == snap.leaf_count
        # Every account's global proof verifies against the stored root.
        for row in top_scores(uow.session, snap.epoch, "global", 10**6):
            proven = prove(uow.session, row.account, "global")
            assert proven.proof.leaf.score_micro == score_micro(row.score)
            assert verify(proven.proof, bytes.fromhex(snap.root), snap.leaf_count)
        with pytest.raises(NotInSnapshot, match=r"nobody\.near"):
            prove(uow.session, "nobody.near", "global")
        with pytest.raises(NoSnapshot):
            snapshot_of(uow.session, snap.epoch + 1)
    engine.dispose()


def test_same_scores_same_root_and_a_changed_score_is_caught(db_url: str) -> None:
    seeds = _world_into(db_url)
    first = _score(db_url, seeds)
    second = _score(db_url, seeds)
    assert second.epoch == first.epoch + 1 and second.leaves == first.leaves
    assert second.root != first.root  # the epoch is in every leaf
    engine = make_engine(db_url)
    with UnitOfWork(make_session_factory(engine, writer=True)) as uow:
        # Rebuilt from the stored rows, epoch 1 still hashes to its root...
        proven = prove(uow.session, seeds[0], "global", first.epoch)
        assert proven.root == first.root
        # ... until someone edits a stored score.
        acct = uow.session.query(Account).filter_by(account_id=seeds[0]).one()
        uow.session.execute(
            update(Score)
            .where(Score.epoch == first.epoch, Score.account_id == acct.id)
            .values(score=Score.score + 1)
        )
        with pytest.raises(SnapshotMismatch, match="changed after the epoch"):
            prove(uow.session, seeds[0], "global", first.epoch)
        uow.session.rollback()
    engine.dispose()


def test_cli_snapshot_and_proof(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--database-url", db_url, "snapshot"]) == 2
    assert "run `renown score` first" in capsys.readouterr().err
    seeds = _world_into(db_url)
    summary = _score(db_url, seeds)
    assert main(["--database-url", db_url, "snapshot", "--json"]) == 0
    snap = json.loads(capsys.readouterr().out)
    assert snap["root"] == summary.root and snap["count"] == summary.leaves

    assert main(["--database-url", db_url, "proof", seeds[0], "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["root"] == summary.root
    proof = Proof.from_json(data)
    assert verify(proof, bytes.fromhex(summary.root), snap["count"])

    assert main(["--database-url", db_url, "proof", seeds[0]]) == 0
    out = capsys.readouterr().out
    assert f"root {summary.root}" in out and "verified against the stored root" in out

    assert main(["--database-url", db_url, "proof", "nobody.near"]) == 2
    err = capsys.readouterr().err
    assert "nobody.near has no score in domain 'global'" in err and "Traceback" not in err
    assert main(["--database-url", db_url, "proof", seeds[0], "--epoch", "99"]) == 2
    assert "epoch 99 has no snapshot" in capsys.readouterr().err


def test_snapshot_row_is_written_with_the_epoch(db_url: str) -> None:
    seeds = _world_into(db_url)
    _score(db_url, seeds)
    engine = make_engine(db_url)
    with UnitOfWork(make_session_factory(engine)) as uow:
        snaps = uow.session.query(Snapshot).all()
        assert len(snaps) == 1 and len(snaps[0].root) == 64 and snaps[0].leaf_version == 1
    engine.dispose()
