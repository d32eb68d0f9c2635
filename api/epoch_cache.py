"""The latest epoch's scores in memory, per API process: lookups without the database.

Why: an epoch is immutable once written, and score lookups are the API's hot path (a
marketplace gating payouts asks for thousands a second). Through the database a lookup
costs a pooled connection, a transaction and an index join (the bare SQLAlchemy loop:
about 1,400 lookups/s on this 2-core machine; docs/performance.md "HTTP API"); from
memory it is a dict lookup and a few array reads, answered on the event loop without a
thread hop.

How: the latest epoch number is re-read at most every ``ttl`` seconds, by one caller at a
time (the others keep the number they have meanwhile), so a new epoch is served within
``ttl`` of its commit. The first request that sees a new epoch starts loading its table in
a background thread and is answered from the database, as is every request until the
table is ready; then the table answers and the previous one is dropped. When the database
goes away, a loaded table keeps answering (the failed re-read counts as a check: one
request per ``ttl`` tries again).

Cost: 5 numbers per (account, domain) and one dict entry per account: 51 MB per worker
at 100k accounts x 4 domains, 357 MB at 1M, loaded in 0.9 s and 10.5 s (bench/api.py).
``max_rows`` (``RENOWN_API_CACHE_ROWS``, default 10M score rows, about 0.9 GB per
worker; 0 turns the copy off) bounds it: a larger epoch is served from the database.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from scoring.model import GLOBAL_DOMAIN, AccountScore
from storage.models import Score
from storage.scoring_repo import account_names, domain_score_chunks, domain_sizes, latest_epoch
from storage.uow import UnitOfWork

log = logging.getLogger("renown.api")

__all__ = ["RETRY_S", "EpochCache", "EpochTable", "load_table"]

RETRY_S = 30.0  # after a failed load, the database answers this long before another try


@dataclass(frozen=True)
class EpochTable:
    """One epoch's scores, columnar: per domain, arrays aligned on account numbers."""

    epoch: int
    index: dict[str, int]
    domains: list[str]  # global first, then by name
    sizes: dict[str, int]
    trust: np.ndarray  # shape (domains, accounts); NaN where the account has no score
    score: np.ndarray
    rank: np.ndarray
    percentile: np.ndarray
    confidence: np.ndarray

    def _row(self, d: int, i: int, account: str) -> AccountScore | None:
        t = self.trust[d, i]
        if math.isnan(t):
            return None
        c = self.confidence[d, i]
        return AccountScore(
            account=account,
            domain=self.domains[d],
            trust=float(t),
            score=float(self.score[d, i]),
            rank=int(self.rank[d, i]),
            percentile=float(self.percentile[d, i]),
            confidence=None if math.isnan(c) else float(c),
        )

    def of(self, account: str) -> list[AccountScore]:
        """The account's scores in every domain (global first); empty when it has none."""
        i = self.index.get(account)
        if i is None:
            return []
        rows = (self._row(d, i, account) for d in range(len(self.domains)))
        return [r for r in rows if r is not None]

    def many(self, accounts: Sequence[str], domain: str) -> dict[str, AccountScore]:
        """The accounts' scores in one domain, for those that have one."""
        if domain not in self.sizes:
            return {}
        d = self.domains.index(domain)
        out: dict[str, AccountScore] = {}
        for a in accounts:
            i = self.index.get(a)
            if i is not None and (row := self._row(d, i, a)) is not None:
                out[a] = row
        return out


def load_table(session: Session, epoch: int) -> EpochTable:
    """Read one epoch's scores into an :class:`EpochTable`: per domain, numeric chunks
    straight into arrays; then the names of the accounts scored. (A Python object per
    score took 44 s and 890 MB for 1M accounts x 4 domains; this 10.5 s and 357 MB.)"""
    sizes = domain_sizes(session, epoch)
    domains = sorted(sizes, key=lambda d: (d != GLOBAL_DOMAIN, d))
    parts = []
    for d in domains:
        chunks = list(domain_score_chunks(session, epoch, d))
        parts.append(np.concatenate(chunks) if chunks else np.empty((0, 6)))
    ids = (
        np.unique(np.concatenate([p[:, 0] for p in parts])).astype(np.int64)
        if parts
        else np.empty(0, dtype=np.int64)
    )
    shape = (len(domains), len(ids))
    trust, score, pct, conf = (np.full(shape, np.nan) for _ in range(4))
    rank = np.zeros(shape, dtype=np.int64)
    for k, p in enumerate(parts):
        at = np.searchsorted(ids, p[:, 0].astype(np.int64))
        trust[k, at], score[k, at], pct[k, at], conf[k, at] = p[:, 1], p[:, 2], p[:, 4], p[:, 5]
        rank[k, at] = p[:, 3].astype(np.int64)
    index: dict[str, int] = {}
    for names in account_names(session) if len(ids) else ():
        got = np.fromiter((i for i, _ in names), dtype=np.int64, count=len(names))
        at = np.minimum(np.searchsorted(ids, got), len(ids) - 1)
        for j in np.flatnonzero(ids[at] == got).tolist():
            index[names[j][1]] = int(at[j])
    return EpochTable(epoch, index, domains, sizes, trust, score, rank, pct, conf)


class EpochCache:
    """The latest epoch number (re-read every ``ttl`` s), its table once loaded, and the
    sizes of its domains (the rank's denominators, also for epochs served from the
    database: a GROUP BY over the epoch once, not per request)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        ttl: float = 1.0,
        max_rows: int = 10_000_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._ttl, self._max_rows, self._clock = ttl, max_rows, clock
        self._lock = threading.Lock()
        self._epoch: int | None = None
        self._checked = -math.inf
        self._refreshing = False
        self._table: EpochTable | None = None
        self._sizes: tuple[int, dict[str, int]] | None = None
        self._loading: int | None = None
        self._failed: tuple[int, float] | None = None  # (epoch, when): no retry storm
        self.served = {"memory": 0, "database": 0}  # score lookups, for /metrics

    @property
    def enabled(self) -> bool:
        return self._max_rows > 0

    def current(self) -> tuple[int | None, bool]:
        """The latest epoch as known, and whether this caller must re-read it (with
        :meth:`refresh`, off the event loop). One caller at a time is told to: the
        others go on with the number known meanwhile."""
        now = self._clock()
        with self._lock:
            if now - self._checked < self._ttl:
                return self._epoch, False
            if self._refreshing and self._epoch is not None:
                return self._epoch, False
            self._refreshing = True
            return self._epoch, True

    def refresh(self) -> int | None:
        """Re-read the latest epoch number in its own transaction (blocking). A failure
        counts as a check, so an outage costs one attempt per ``ttl``, and is raised."""
        try:
            with UnitOfWork(self._sessions) as uow:
                row = latest_epoch(uow.session)
                epoch = None if row is None else row.epoch
            with self._lock:
                self._epoch = epoch
            return epoch
        finally:
            with self._lock:
                self._checked = self._clock()
                self._refreshing = False

    def sizes(self, session: Session, epoch: int) -> dict[str, int]:
        """Domain -> accounts scored in it at ``epoch`` (remembered for the last epoch)."""
        table, known = self._table, self._sizes
        if table is not None and table.epoch == epoch:
            return table.sizes
        if known is not None and known[0] == epoch:
            return known[1]
        sizes = domain_sizes(session, epoch)
        with self._lock:
            if self._sizes is None or self._sizes[0] <= epoch:
                self._sizes = (epoch, sizes)
        return sizes

    def table(self, epoch: int) -> EpochTable | None:
        """The epoch's table if loaded; otherwise start loading it and answer None (the
        caller reads the database)."""
        if not self.enabled:
            return None
        with self._lock:
            if self._table is not None and self._table.epoch == epoch:
                return self._table
            if self._loading == epoch:
                return None
            if (
                self._failed is not None
                and self._failed[0] == epoch
                and self._clock() - self._failed[1] < RETRY_S
            ):
                return None
            if self._table is not None and self._table.epoch > epoch:
                return None  # a stale number from another caller: never load backwards
            self._loading = epoch
        threading.Thread(target=self._load, args=(epoch,), daemon=True).start()
        return None

    def prime(self) -> None:
        """Read the latest epoch and start loading its table, in the background: the
        first requests after a start then rarely wait on the database."""

        def run() -> None:
            try:
                epoch = self.refresh()
            except Exception as exc:  # the first request will try again
                log.warning("could not read the latest epoch at start: %s", exc)
                return
            if epoch is not None:
                self.table(epoch)

        if self.enabled:
            threading.Thread(target=run, daemon=True, name="epoch-cache-prime").start()

    def wait(self, epoch: int, timeout: float = 60.0) -> EpochTable | None:
        """Block until the epoch's table is loaded (tests, warm-up)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            t = self.table(epoch)
            if t is not None:
                return t
            time.sleep(0.01)
        return None

    def loaded(self) -> EpochTable | None:
        """The table in memory now, if any (for /metrics)."""
        return self._table

    def _load(self, epoch: int) -> None:
        try:
            with UnitOfWork(self._sessions) as uow:
                rows = uow.session.execute(
                    select(func.count()).where(Score.epoch == epoch)
                ).scalar_one()
                if rows > self._max_rows:
                    log.warning("epoch %s has %s scores: served from the database", epoch, rows)
                    with self._lock:
                        self._failed = (epoch, math.inf)  # never: the epoch will not shrink
                    return
                table = load_table(uow.session, epoch)
            with self._lock:
                if self._table is None or self._table.epoch < epoch:
                    self._table = table
            log.info("epoch %s in memory: %s accounts", epoch, len(table.index))
        except Exception:  # the database answers meanwhile; retried after RETRY_S
            log.exception("loading epoch %s into memory failed", epoch)
            with self._lock:
                self._failed = (epoch, self._clock())
        finally:
            with self._lock:
                if self._loading == epoch:
                    self._loading = None
