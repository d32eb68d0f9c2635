"""``renown run``: ingest, scoring on a schedule and publishing, in one process.

For small installations and the demo: one process to start and watch instead of an
ingest consumer, a cron job for ``renown score`` and another for ``renown publish``. It
runs exactly their code (renown/bootstrap.py), so moving to separate processes later
changes nothing in the data.

How: the ingest loop runs in the main thread (it owns the Kafka consumer and stops on
SIGTERM/SIGINT after its batch). A scheduler thread wakes every ``score_interval_s`` and
scores a new epoch when anything changed since the last one: new events, or a moderator
decision that changes the sanctions in force (confirm, decide, dismiss). A tick with
nothing new writes no epoch: the scores would differ only by decay's ageing. After an
epoch it publishes it when a contract is configured (``contract_id``; the publisher's
account and key are then required at start). A failed epoch or publication is logged and
tried again at the next tick; ingest goes on regardless, and nothing is lost, because an
epoch is all or nothing and publishing resumes where it stopped (docs/contract.md).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from renown import bootstrap
from renown.bootstrap import Database, EpochSummary
from renown.health import Health
from renown.settings import Settings
from storage.flags_repo import sanction_changes_since
from storage.scoring_repo import latest_epoch, latest_event_id
from storage.uow import UnitOfWork

log = logging.getLogger("renown.run")

__all__ = ["Scheduler", "due", "every"]

BEAT_S = 5.0  # how often a waiting loop tells its health probe it is alive


def due(db: Database) -> str | None:
    """Why a new epoch is due, or None when nothing changed since the last one."""
    with UnitOfWork(db.sessions) as uow:
        last = latest_epoch(uow.session)
        newest = latest_event_id(uow.session)
        if last is None:
            return "first epoch" if newest else None
        if newest > last.events_through:
            return f"events #{last.events_through + 1}..#{newest}"
        decisions = sanction_changes_since(uow.session, last.finished_at)
        if decisions:
            return f"{decisions} moderation decision(s)"
    return None


def every(
    interval: float,
    stop: threading.Event,
    round_: Callable[[], object],
    *,
    health: Health | None = None,
    what: str = "round",
) -> int:
    """Run ``round_`` every ``interval`` seconds (first after one interval) until ``stop``;
    a failed round is logged and the next one tries again. Waits in slices of
    :data:`BEAT_S` so the health probe hears the loop is alive; a round counts as busy.
    Returns the number of failed rounds."""
    failures = 0
    next_at = time.monotonic() + interval
    while not stop.is_set():
        left = next_at - time.monotonic()
        if left > 0:
            if health is not None:
                health.beat()
            if stop.wait(min(left, BEAT_S)):
                break
            continue
        try:
            if health is not None:
                with health.busy(what):
                    round_()
            else:
                round_()
        except Exception:  # logged; the next round tries again
            failures += 1
            log.exception("%s failed; trying again in %g s", what, interval)
        next_at = time.monotonic() + interval
    return failures


@dataclass
class Scheduler:
    """Scores (and publishes) every ``settings.score_interval_s`` while ``stop`` is clear."""

    settings: Settings
    db: Database
    stop: threading.Event
    publish: Callable[[], object] | None = None
    health: Health | None = None
    epochs: list[EpochSummary] = field(default_factory=list)
    failures: int = 0

    def tick(self) -> EpochSummary | None:
        """One round: an epoch if one is due, then its publication. Raises on failure."""
        reason = due(self.db)
        if reason is None:
            log.info("nothing new since the last epoch: no epoch this round")
            return None
        summary = bootstrap.run_scoring(self.settings, self.db)
        self.epochs.append(summary)
        log.warning(
            "epoch %s (%s): %s accounts, %s edges, %.2f s, root %s",
            summary.epoch, reason, summary.accounts, summary.edges, summary.seconds,
            summary.root,
        )  # fmt: skip
        if self.publish is not None:
            result = self.publish()
            log.warning("published epoch %s: %s", summary.epoch, result)
        return summary

    def run(self) -> None:
        # A failure is logged and tried again next round; ingest (in `renown run`) goes on.
        self.failures += every(
            self.settings.score_interval_s, self.stop, self.tick, health=self.health,
            what="scoring epoch" if self.publish is None else "scoring and publishing",
        )  # fmt: skip

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="renown-scheduler", daemon=True)
        thread.start()
        return thread
