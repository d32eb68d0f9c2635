"""Epoch snapshots in the database: build the Merkle root of stored scores, serve proofs.

The tree is always built from the *stored* scores (one query, the same for building and
for proving), never from the in-memory results of the run, so a proof served later is
rebuilt from exactly what the root committed to, and is checked against the stored root
before it leaves this module: a mismatch means the scores table changed after the epoch
and is reported as such, not papered over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from scoring.merkle import LEAF_VERSION, Leaf, MerkleTree, Proof, stored_score_micro
from storage.models import Account, Score, ScoreEpoch, Snapshot

__all__ = [
    "NoSnapshot",
    "NotInSnapshot",
    "SnapshotMismatch",
    "build_snapshot",
    "epoch_tree",
    "latest_snapshot",
    "prove",
    "snapshot_of",
]


class NoSnapshot(LookupError):
    """The epoch asked for has no snapshot (no epoch yet, or one from before migration
    0003, or an epoch number that does not exist)."""


class NotInSnapshot(LookupError):
    """The account has no score in that domain at that epoch."""


class SnapshotMismatch(RuntimeError):
    """The stored scores no longer hash to the stored root: the table was altered."""


def epoch_leaves(session: Session, epoch: int) -> list[Leaf]:
    rows = session.execute(
        select(Account.account_id, Score.domain, Score.score)
        .join(Score, Score.account_id == Account.id)
        .where(Score.epoch == epoch)
    ).all()
    return [Leaf(a, d, stored_score_micro(s), epoch) for a, d, s in rows]


def build_snapshot(session: Session, epoch: int) -> Snapshot:
    """Hash the epoch's stored scores into a Merkle root and store it (caller commits)."""
    if session.get(ScoreEpoch, epoch) is None:
        raise NoSnapshot(f"epoch {epoch} does not exist")
    session.flush()
    tree = MerkleTree(epoch_leaves(session, epoch))
    snap = Snapshot(
        epoch=epoch,
        leaf_version=LEAF_VERSION,
        leaf_count=tree.count,
        root=tree.root.hex(),
        built_at=datetime.now(UTC),
    )
    session.add(snap)
    session.flush()
    return snap


def snapshot_of(session: Session, epoch: int) -> Snapshot:
    snap = session.get(Snapshot, epoch)
    if snap is None:
        raise NoSnapshot(f"epoch {epoch} has no snapshot")
    return snap


def latest_snapshot(session: Session) -> Snapshot:
    snap = session.execute(
        select(Snapshot).order_by(Snapshot.epoch.desc()).limit(1)
    ).scalar_one_or_none()
    if snap is None:
        raise NoSnapshot("no epoch has a snapshot yet: run `renown score` first")
    return snap


def epoch_tree(session: Session, snap: Snapshot) -> MerkleTree:
    """The epoch's tree rebuilt from the stored scores, checked against the stored root."""
    if snap.leaf_version != LEAF_VERSION:
        raise SnapshotMismatch(
            f"epoch {snap.epoch} was hashed with leaf version {snap.leaf_version}; this "
            f"Renown builds version {LEAF_VERSION}"
        )
    tree = MerkleTree(epoch_leaves(session, snap.epoch))
    if tree.root.hex() != snap.root or tree.count != snap.leaf_count:
        raise SnapshotMismatch(
            f"epoch {snap.epoch}: the stored scores hash to {tree.root.hex()} over "
            f"{tree.count} leaves, but the snapshot says {snap.root} over {snap.leaf_count}; "
            "the scores table was changed after the epoch was built"
        )
    return tree


@dataclass(frozen=True)
class ProvenScore:
    proof: Proof
    root: str
    snapshot: Snapshot


def prove(session: Session, account: str, domain: str, epoch: int | None = None) -> ProvenScore:
    """An inclusion proof of ``account``'s score in ``domain`` at ``epoch`` (default: the
    latest snapshot), checked against the stored root before it is returned."""
    snap = latest_snapshot(session) if epoch is None else snapshot_of(session, epoch)
    tree = epoch_tree(session, snap)
    try:
        index = tree.index_of(account, domain)
    except KeyError:
        raise NotInSnapshot(
            f"{account} has no score in domain {domain!r} at epoch {snap.epoch}"
        ) from None
    proof = tree.proof(index)
    return ProvenScore(proof=proof, root=snap.root, snapshot=snap)
