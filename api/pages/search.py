"""The leaderboard's search: a domain's ranking filtered by a piece of the account id.

The one query the pages need that no JSON route has (it could move to
``storage/scoring_repo.py`` when the API grows a search route). Bounded: the text is at
most 64 characters of the account-id alphabet (anything else is refused before a query),
a page is the caller's limit (50 rows on the leaderboard), and the count of matches stops
at :data:`COUNT_CAP`. A substring match cannot use an index on the account id: it scans
the domain's scores of one epoch (the (epoch, domain, rank) index narrows it to them), in
rank order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import Account, Score

__all__ = ["COUNT_CAP", "Match", "clean_query", "search_scores"]

COUNT_CAP = 1000
MAX_QUERY = 64
_ALPHABET = re.compile(r"^[a-z0-9._-]+$")


@dataclass(frozen=True)
class Match:
    account: str
    score: float
    rank: int
    percentile: float
    confidence: float | None


def clean_query(text: str) -> str | None:
    """The search text, lowercased and trimmed; None when it cannot be part of an account
    id (NEAR account ids are lowercase letters, digits and ``- _ .``)."""
    q = text.strip().lower()
    if not q or len(q) > MAX_QUERY or not _ALPHABET.match(q):
        return None
    return q


def search_scores(
    session: Session, epoch: int, domain: str, q: str, *, limit: int, offset: int
) -> tuple[list[Match], int]:
    """The accounts of ``domain`` at ``epoch`` whose id contains ``q``, by rank; and how
    many match, counted up to :data:`COUNT_CAP` (+1 means "more than the cap")."""
    stmt = (
        select(Account.account_id, Score.score, Score.rank, Score.percentile, Score.confidence)
        .join(Account, Account.id == Score.account_id)
        .where(
            Score.epoch == epoch,
            Score.domain == domain,
            # autoescape: "_" and "." are literal here, not LIKE wildcards.
            Account.account_id.contains(q, autoescape=True),
        )
    )
    rows = session.execute(stmt.order_by(Score.rank).limit(limit).offset(offset)).all()
    capped = stmt.limit(COUNT_CAP + 1).subquery()
    total = int(session.execute(select(func.count()).select_from(capped)).scalar_one())
    matches = [Match(str(a), float(s), int(r), float(p), c) for a, s, r, p, c in rows]
    return matches, total
