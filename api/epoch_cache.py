"""The latest epoch's scores in memory, per API process: lookups without the database.

Why: an epoch is immutable once written, and score lookups are the API's hot path (a
marketplace gating payouts asks for thousands a second). A lookup through the database
costs a session, a transaction and a join (the bare query loop alone: ~400/s per
connection here, bench/api.py); from memory it is a dict lookup and a few array reads.

How: the first request that sees a new epoch starts loading its table in a background
thread and is answered from the database meanwhile, as is every request until the table is
ready; then the table answers, and the previous one is dropped. The latest epoch number
itself is re-read at most every ``ttl`` seconds, so a new epoch is served within ``ttl`` of
its commit. Memory: 5 float64 columns per (account, domain) plus one dict entry per
account: about 200 MB per worker at 1M accounts and 4 domains. ``max_rows`` (default 20M)
bounds it: a larger epoch is served from the database.
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
from storage.models import Account, Score
from storage.scoring_repo import latest_epoch
from storage.uow import UnitOfWork

log = logging.getLogger("renown.api")

__all__ = ["RETRY_S", "EpochCache", "EpochTable"]

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
    """Read one epoch's scores into an :class:`EpochTable` (one streamed query)."""
    domain_rows = session.execute(
        select(Score.domain, func.count()).where(Score.epoch == epoch).group_by(Score.domain)
    ).all()
    sizes = {d: int(n) for d, n in domain_rows}
    domains = sorted(sizes, key=lambda d: (d != GLOBAL_DOMAIN, d))
    d_index = {d: k for k, d in enumerate(domains)}
    index: dict[str, int] = {}
    cols: list[list[float]] = [[], [], [], [], [], [], []]  # d, i, trust, score, rank, pct, conf
    result = session.execute(
        select(
            Account.account_id,
            Score.domain,
            Score.trust,
            Score.score,
            Score.rank,
            Score.percentile,
            Score.confidence,
        )
        .join(Account, Account.id == Score.account_id)
        .where(Score.epoch == epoch)
        .execution_options(yield_per=50_000)
    )
    for account, domain, trust, score, rank, pct, conf in result:
        i = index.setdefault(account, len(index))
        for col, value in zip(
            cols,
            (d_index[domain], i, trust, score, rank, pct, math.nan if conf is None else conf),
            strict=True,
        ):
            col.append(value)
    shape = (len(domains), len(index))
    at_d = np.asarray(cols[0], dtype=np.int64)
    at_i = np.asarray(cols[1], dtype=np.int64)
    arrays = []
    for k in range(2, 7):
        a = np.full(shape, np.nan)
        a[at_d, at_i] = np.asarray(cols[k], dtype=np.float64)
        arrays.append(a)
    return EpochTable(epoch, index, domains, sizes, *arrays)


class EpochCache:
    """The latest epoch number (re-read every ``ttl`` s) and its table once loaded."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        ttl: float = 1.0,
        max_rows: int = 20_000_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._ttl, self._max_rows, self._clock = ttl, max_rows, clock
        self._lock = threading.Lock()
        self._epoch: int | None = None
        self._checked = -math.inf
        self._table: EpochTable | None = None
        self._loading: int | None = None
        self._failed: tuple[int, float] | None = None  # (epoch, when): no retry storm

    def latest(self, session: Session) -> int | None:
        """The latest epoch number, at most ``ttl`` seconds old."""
        now = self._clock()
        if now - self._checked >= self._ttl:
            row = latest_epoch(session)
            with self._lock:
                self._epoch = None if row is None else row.epoch
                self._checked = now
        return self._epoch

    def table(self, epoch: int) -> EpochTable | None:
        """The epoch's table if loaded; otherwise start loading it and answer None (the
        caller reads the database)."""
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
            self._loading = epoch
        threading.Thread(target=self._load, args=(epoch,), daemon=True).start()
        return None

    def wait(self, epoch: int, timeout: float = 60.0) -> EpochTable | None:
        """Block until the epoch's table is loaded (tests, warm-up)."""
        deadline = self._clock() + timeout
        while self._clock() < deadline:
            t = self.table(epoch)
            if t is not None:
                return t
            time.sleep(0.01)
        return None

    def _load(self, epoch: int) -> None:
        try:
            with UnitOfWork(self._sessions) as uow:
                rows = uow.session.execute(
                    select(func.count()).where(Score.epoch == epoch)
                ).scalar_one()
                if rows > self._max_rows:
                    log.warning("epoch %s has %s scores: served from the database", epoch, rows)
                    return
                table = load_table(uow.session, epoch)
            with self._lock:
                if self._table is None or self._table.epoch < epoch:
                    self._table = table
        except Exception:  # the database answers meanwhile; retried after RETRY_S
            log.exception("loading epoch %s into memory failed", epoch)
            with self._lock:
                self._failed = (epoch, self._clock())
        finally:
            with self._lock:
                if self._loading == epoch:
                    self._loading = None
