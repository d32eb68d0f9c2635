"""`renown publish`: put the latest epoch's snapshot and top scores on the NEAR contract.

Idempotent and resumable, without trusting that the last run recorded everything:

1. **Snapshot.** Before sending ``publish``, the contract's latest snapshot is read: the
   same epoch with the same root means an earlier run's transaction landed (recorded or
   not) and it is not sent again; a newer epoch on chain, or this epoch with another root,
   stops the run with the reason. A transaction that fails on chain (py-near reports a
   ``Failure`` status instead of raising) is recorded and reported, and the run stops.
2. **Scores.** The top ``top_n`` accounts of every domain, in a fixed order (domain, then
   rank), are sent ``batch_size`` at a time with ``store_scores``; progress is committed
   after every confirmed batch. On resume, the first pending batch is first checked on
   chain (a NEAR function call applies all of its state changes or none, so one of the
   batch's accounts stored at this epoch with this score means the batch landed), so a
   run that died between the transaction and the commit neither skips nor resends it.
   ``store_scores`` is idempotent in the contract as well, so even a resend changes
   nothing.
3. **Announcement.** Once the contract holds everything, the publication is produced to
   the snapshot topic for off-chain consumers (when Kafka is configured), and marked
   announced; a broker outage leaves it unannounced for the next run to retry.

Every transaction sent is kept in ``publication_txs`` (append-only), every stage in
``publications``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from chain.client import ChainClient, ChainUnavailable
from scoring.merkle import stored_score_micro
from storage.models import Account, Publication, PublicationTx, Score, Snapshot
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

__all__ = [
    "ChainUnavailable",
    "PublishConflict",
    "PublishFailed",
    "PublishResult",
    "Publisher",
    "ScoreRow",
    "batches_of",
    "top_rows",
]


class PublishFailed(RuntimeError):
    """A transaction failed on chain; the reason is the contract's (or NEAR's) message."""


class PublishConflict(RuntimeError):
    """The contract's state contradicts ours (a newer epoch, another root for this one)."""


@dataclass(frozen=True)
class ScoreRow:
    account: str
    domain: str
    score_micro: int

    def to_json(self) -> dict[str, Any]:
        return {"account": self.account, "domain": self.domain, "score_micro": self.score_micro}


@dataclass(frozen=True)
class PublishResult:
    epoch: int
    root: str
    snapshot_tx: str | None
    batches: int
    batches_sent: int
    batches_found_on_chain: int
    announced: bool
    already_done: bool = False


@dataclass(frozen=True)
class _Snap:
    epoch: int
    root: str
    leaf_count: int
    leaf_version: int


@dataclass(frozen=True)
class _Pub:
    stage: str
    batches_total: int
    batches_done: int
    snapshot_tx: str | None
    announced: bool


def _pub(p: Publication) -> _Pub:
    return _Pub(p.stage, p.batches_total, p.batches_done, p.snapshot_tx, p.announced)


# The contract refuses arguments over 8,192 bytes (its MicroPython heap is 32 KB:
# contract/README.md); py-near serialises with json.dumps' default separators.
MAX_ARGS_BYTES = 8192


def batches_of(epoch: int, rows: Sequence[ScoreRow], batch_size: int) -> list[list[ScoreRow]]:
    """Consecutive batches of at most ``batch_size`` rows whose ``store_scores`` arguments
    fit in MAX_ARGS_BYTES. A function of the rows alone, so a resumed run cuts the same
    batches as the run it resumes."""
    out: list[list[ScoreRow]] = []
    current: list[ScoreRow] = []
    size = len(json.dumps({"epoch": epoch, "scores": []}))
    for row in rows:
        item = len(json.dumps(row.to_json())) + 2  # ", " between items
        if current and (len(current) >= batch_size or size + item > MAX_ARGS_BYTES):
            out.append(current)
            current, size = [], len(json.dumps({"epoch": epoch, "scores": []}))
        current.append(row)
        size += item
    if current:
        out.append(current)
    return out


def _now() -> datetime:
    return datetime.now(UTC)


def top_rows(session: Session, epoch: int, top_n: int) -> list[ScoreRow]:
    """The top ``top_n`` of every domain of the epoch, by domain then rank: the accounts
    whose scores other contracts read directly from the contract's storage."""
    rows = session.execute(
        select(Account.account_id, Score.domain, Score.score, Score.rank)
        .join(Score, Score.account_id == Account.id)
        .where(Score.epoch == epoch, Score.rank <= top_n)
        .order_by(Score.domain, Score.rank)
    ).all()
    return [ScoreRow(a, d, stored_score_micro(s)) for a, d, s, _ in rows]


class Publisher:
    """Publishes one contract's snapshots from one database."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        client: ChainClient,
        *,
        top_n: int = 1000,
        batch_size: int = 50,
        uri_template: str = "",
        announce: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        if batch_size < 1 or top_n < 0:
            raise ValueError("batch_size must be >= 1 and top_n >= 0")
        self.sessions = sessions
        self.client = client
        self.top_n = top_n
        self.batch_size = batch_size
        self.uri_template = uri_template
        self.announce = announce

    # ------------------------------------------------------------------ helpers

    def _record_tx(
        self, epoch: int, step: int, method: str, tx: str | None, ok: bool, error: str | None
    ) -> None:
        with UnitOfWork(self.sessions) as uow:
            uow.session.add(
                PublicationTx(
                    epoch=epoch,
                    contract_id=self.client.contract_id,
                    step=step,
                    method=method,
                    tx_hash=tx,
                    ok=ok,
                    error=error,
                    sent_at=_now(),
                )
            )
            uow.commit()

    def _update(self, epoch: int, **values: Any) -> _Pub:
        with UnitOfWork(self.sessions) as uow:
            pub = uow.session.get(Publication, (epoch, self.client.contract_id))
            assert pub is not None
            for key, value in values.items():
                setattr(pub, key, value)
            pub.updated_at = _now()
            uow.session.flush()
            state = _pub(pub)
            uow.commit()
            return state

    def _fail(self, epoch: int, message: str) -> PublishFailed:
        self._update(epoch, stage="failed", last_error=message)
        return PublishFailed(message)

    def uri(self, epoch: int) -> str:
        return self.uri_template.format(epoch=epoch) if self.uri_template else ""

    # ------------------------------------------------------------------ the run

    def latest(self) -> tuple[_Snap, list[ScoreRow], _Pub]:
        """The latest snapshot, its rows to store, and its publication row (created)."""
        with UnitOfWork(self.sessions) as uow:
            snap = uow.session.execute(
                select(Snapshot).order_by(Snapshot.epoch.desc()).limit(1)
            ).scalar_one_or_none()
            if snap is None:
                raise LookupError("no epoch has a snapshot yet: run `renown score` first")
            rows = top_rows(uow.session, snap.epoch, self.top_n)
            batches = len(batches_of(snap.epoch, rows, self.batch_size))
            pub = uow.session.get(Publication, (snap.epoch, self.client.contract_id))
            if pub is None:
                pub = Publication(
                    epoch=snap.epoch,
                    contract_id=self.client.contract_id,
                    root=snap.root,
                    stage="snapshot",
                    batches_total=batches,
                    batches_done=0,
                    announced=False,
                    started_at=_now(),
                    updated_at=_now(),
                )
                uow.session.add(pub)
                uow.session.flush()
            info = _Snap(snap.epoch, snap.root, snap.leaf_count, snap.leaf_version)
            state = _pub(pub)
            uow.commit()
            return info, rows, state

    def publish(self) -> PublishResult:
        """Publish (or finish publishing) the latest epoch. Safe to run again at any time."""
        snap, rows, pub = self.latest()
        epoch, root = snap.epoch, snap.root
        if pub.stage == "done" and (pub.announced or self.announce is None):
            return PublishResult(
                epoch,
                root,
                pub.snapshot_tx,
                pub.batches_total,
                0,
                0,
                pub.announced,
                already_done=True,
            )
        snapshot_tx = pub.snapshot_tx
        if pub.stage in ("snapshot", "failed") and pub.batches_done == 0:
            snapshot_tx = self._publish_snapshot(snap, pub)
        sent, found = self._store_batches(epoch, rows, pub.batches_done)
        pub = self._update(epoch, stage="done", finished_at=_now(), last_error=None)
        announced = self._announce(snap, pub, snapshot_tx, len(rows))
        return PublishResult(epoch, root, snapshot_tx, pub.batches_total, sent, found, announced)

    def _publish_snapshot(self, snap: _Snap, pub: _Pub) -> str | None:
        epoch, root = snap.epoch, snap.root
        on_chain = self.client.view("get_latest_snapshot", {})
        if on_chain:
            chain_epoch = int(on_chain["epoch"])
            if chain_epoch == epoch:
                if on_chain["root"] != root:
                    raise PublishConflict(
                        f"the contract holds epoch {epoch} with root {on_chain['root']}, "
                        f"but this database's epoch {epoch} has root {root}: two Renown "
                        "databases publish to one contract?"
                    )
                log.info("epoch %s is already on chain (an earlier run sent it)", epoch)
                self._update(epoch, stage="scores")
                return pub.snapshot_tx
            if chain_epoch > epoch:
                raise PublishConflict(
                    f"the contract already holds epoch {chain_epoch}, newer than this "
                    f"database's latest ({epoch}); nothing to publish"
                )
        args = {"epoch": epoch, "root": root, "count": snap.leaf_count, "uri": self.uri(epoch)}
        outcome = self.client.call("publish", args)
        self._record_tx(epoch, 0, "publish", outcome.tx_hash, outcome.ok, outcome.error)
        if not outcome.ok:
            raise self._fail(epoch, f"publish of epoch {epoch} failed on chain: {outcome.error}")
        self._update(epoch, stage="scores", snapshot_tx=outcome.tx_hash, last_error=None)
        return outcome.tx_hash

    def _landed(self, epoch: int, batch: Sequence[ScoreRow]) -> bool:
        """Whether this batch's transaction already applied (atomic: one row tells)."""
        probe = batch[-1]
        stored = self.client.view("get_score", {"account": probe.account, "domain": probe.domain})
        return bool(
            stored
            and int(stored["epoch"]) == epoch
            and int(stored["score_micro"]) == probe.score_micro
        )

    def _store_batches(self, epoch: int, rows: list[ScoreRow], done: int) -> tuple[int, int]:
        sent = found = 0
        batches = batches_of(epoch, rows, self.batch_size)
        for k in range(done, len(batches)):
            batch = batches[k]
            # The first pending batch may have landed in a run that died before
            # recording it: one view call tells, so it is neither resent nor skipped.
            if k == done and self._landed(epoch, batch):
                found += 1
                self._update(epoch, batches_done=k + 1)
                continue
            args = {"epoch": epoch, "scores": [r.to_json() for r in batch]}
            outcome = self.client.call("store_scores", args)
            self._record_tx(
                epoch, k + 1, "store_scores", outcome.tx_hash, outcome.ok, outcome.error
            )
            if not outcome.ok:
                raise self._fail(
                    epoch,
                    f"store_scores batch {k + 1}/{len(batches)} of epoch {epoch} failed on "
                    f"chain: {outcome.error}",
                )
            sent += 1
            self._update(epoch, batches_done=k + 1)
        return sent, found

    def _announce(self, snap: _Snap, pub: _Pub, snapshot_tx: str | None, stored: int) -> bool:
        if pub.announced:
            return True
        if self.announce is None:
            return False
        message = {
            "epoch": snap.epoch,
            "root": snap.root,
            "count": snap.leaf_count,
            "leaf_version": snap.leaf_version,
            "uri": self.uri(snap.epoch),
            "contract_id": self.client.contract_id,
            "snapshot_tx": snapshot_tx,
            "scores_stored": stored,
        }
        try:
            self.announce(message)
        except Exception as exc:  # a broker outage must not undo an on-chain publication
            self._update(snap.epoch, last_error=f"announcement failed: {exc}")
            log.warning("epoch %s published but not announced: %s", snap.epoch, exc)
            return False
        self._update(snap.epoch, announced=True)
        return True
