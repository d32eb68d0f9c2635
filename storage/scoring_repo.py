"""Read side for scoring (evidence in columnar form) and write side for epochs and scores.

Order-dependent facts are resolved here with joins, at scoring time: a vote on
content credits the content's authors (split evenly), whoever arrived first; a
retraction by one of the authors removes the content's votes and attestations; a
derived work credits its parents' authors.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, aliased

from scoring.events import (
    ATTEST,
    DEFAULT_DOMAIN,
    ENDORSE,
    REVIEW,
    VOTE_ACCOUNT,
    VOTE_CONTENT,
    VOTE_LABEL,
)
from scoring.evidence import DERIVED, KINDS, Evidence
from scoring.label_quality import LabelTable
from scoring.model import GLOBAL_DOMAIN, AccountScore
from storage import evidence_load
from storage.models import Account, Event, Gold, Label, Review, Score, ScoreEpoch, Task

_DIRECT_KINDS = (VOTE_ACCOUNT, VOTE_LABEL, ENDORSE, REVIEW)
_CONTENT_KINDS = (VOTE_CONTENT, ATTEST)

# Only the winning authorship claim of a content id counts (see models.Content): its
# authors and parents carry the claim's event id. Content is retracted when one of
# those authors said so; anyone else's retraction is recorded but has no effect.
# The last column is not evidence: a key whose ranges split the rows into buckets for
# the bulk reader (the interaction's id; the content's id for derived rows).
_EVIDENCE_SQL = f"""
WITH authors AS (
    SELECT ca.content_id, ca.account_id
    FROM content_authors ca
    JOIN content c ON c.content_id = ca.content_id AND c.event_id = ca.event_id
),
author_counts AS (
    SELECT content_id, COUNT(*) AS n FROM authors GROUP BY content_id
),
retracted AS (
    SELECT DISTINCT r.content_id FROM interactions r
    JOIN authors a ON a.content_id = r.content_id AND a.account_id = r.src_id
    WHERE r.kind = 'retract' AND r.event_id <= :through
)
SELECT i.src_id, i.dst_id, i.kind, i.value, i.weight, i.ts_ns,
       COALESCE(i.domain, t.domain, :general), i.id
FROM interactions i
LEFT JOIN tasks t ON t.contract_id = i.contract_id AND t.task_id = i.task_id
WHERE i.dst_id IS NOT NULL AND i.kind IN ({", ".join(f"'{k}'" for k in _DIRECT_KINDS)})
  AND i.event_id <= :through
UNION ALL
SELECT i.src_id, a.account_id, i.kind, i.value, i.weight / n.n, i.ts_ns,
       COALESCE(i.domain, c.domain, :general), i.id
FROM interactions i
JOIN content c ON c.content_id = i.content_id
JOIN authors a ON a.content_id = i.content_id
JOIN author_counts n ON n.content_id = i.content_id
WHERE i.kind IN ({", ".join(f"'{k}'" for k in _CONTENT_KINDS)})
  AND i.event_id <= :through
  AND i.content_id NOT IN (SELECT content_id FROM retracted)
UNION ALL
SELECT child.account_id, parent.account_id, '{DERIVED}', 1, 1.0 / n.n, c.ts_ns, c.domain, c.id
FROM content c
JOIN content_parents cp ON cp.content_id = c.content_id AND cp.event_id = c.event_id
JOIN authors child ON child.content_id = c.content_id
JOIN authors parent ON parent.content_id = cp.parent_id
JOIN author_counts n ON n.content_id = cp.parent_id
WHERE c.event_id <= :through
"""


def latest_event_id(session: Session) -> int:
    return int(session.execute(select(func.coalesce(func.max(Event.id), 0))).scalar_one())


# Every domain the evidence query can produce, and maybe more (SQLite's bulk reader codes
# domains in SQL and needs the list first). A superset is enough, so it reads the three
# sources of domains whole rather than running the evidence query twice; the reader keeps
# only the domains that occur.
_EVIDENCE_DOMAINS_SQL = """
SELECT domain FROM interactions WHERE domain IS NOT NULL
UNION SELECT domain FROM tasks
UNION SELECT domain FROM content
UNION SELECT :general
"""


def load_evidence(
    session: Session, through_event_id: int, *, chunk_rows: int = evidence_load.CHUNK_ROWS
) -> Evidence:
    """All evidence derived from events up to ``through_event_id``, as numpy columns.

    ``accounts`` lists every account by ascending id (``src`` and ``dst`` index it);
    ``domains`` lists the domains that occur, sorted; the order of the rows is
    unspecified. The rows travel as binary arrays (PostgreSQL) or straight into numpy
    (SQLite), never as Python objects: see :mod:`storage.evidence_load`, which also says
    what ``chunk_rows`` bounds. Pending ORM changes are flushed first, as any query in
    the session would do (the readers use the driver's cursor, which does not).
    """
    session.flush()
    ids, accounts = evidence_load.read_accounts(session)
    cols = evidence_load.read_evidence_columns(
        session,
        _EVIDENCE_SQL,
        {"general": DEFAULT_DOMAIN, "through": through_event_id},
        kinds=KINDS,
        to_index=evidence_load.account_index(ids),
        domains_query=_EVIDENCE_DOMAINS_SQL,
        chunk_rows=chunk_rows,
    )
    return Evidence(
        accounts=accounts,
        domains=cols.domains,
        src=cols.src,
        dst=cols.dst,
        kind=cols.kind,
        value=cols.value,
        weight=cols.weight,
        ts_ns=cols.ts_ns,
        domain=cols.domain,
    )


def load_first_seen(session: Session, accounts: Sequence[str]) -> np.ndarray:
    """When each of ``accounts`` first appeared on chain (block ns), aligned to the list;
    -1 for a name the table does not hold. For the burst detector: "new accounts"."""
    known = {
        a: int(t) for a, t in session.execute(select(Account.account_id, Account.first_seen_ns))
    }
    return np.fromiter((known.get(a, -1) for a in accounts), dtype=np.int64, count=len(accounts))


def next_epoch(session: Session) -> int:
    current = session.execute(select(func.max(ScoreEpoch.epoch))).scalar_one()
    return 1 if current is None else int(current) + 1


def write_epoch(
    session: Session,
    *,
    epoch: int,
    model: str,
    params: dict[str, Any],
    events_through: int,
    edges: int,
    started_at: datetime,
    finished_at: datetime,
    scores: Sequence[AccountScore],
) -> None:
    """Store one epoch and its scores (the caller's transaction makes it all-or-nothing)."""
    id_of = dict(session.execute(select(Account.account_id, Account.id)).all())
    session.add(
        ScoreEpoch(
            epoch=epoch,
            model=model,
            params=params,
            events_through=events_through,
            accounts=len({s.account for s in scores}),
            edges=edges,
            started_at=started_at,
            finished_at=finished_at,
        )
    )
    session.flush()
    rows = [
        {
            "epoch": epoch,
            "domain": s.domain,
            "account_id": id_of[s.account],
            "trust": s.trust,
            "score": s.score,
            "rank": s.rank,
            "percentile": s.percentile,
            "confidence": s.confidence,
            "explanation": s.explanation,
        }
        for s in scores
        if s.account in id_of  # a configured seed never seen in any event has no row
    ]
    for i in range(0, len(rows), 1000):
        session.execute(insert(Score), rows[i : i + 1000])


def latest_epoch(session: Session) -> ScoreEpoch | None:
    return session.execute(
        select(ScoreEpoch).order_by(ScoreEpoch.epoch.desc()).limit(1)
    ).scalar_one_or_none()


def _score_columns(epoch: int) -> Any:
    """SELECT of an epoch's scores as AccountScore columns (name joined), to be narrowed."""
    return (
        select(
            Account.account_id,
            Score.domain,
            Score.trust,
            Score.score,
            Score.rank,
            Score.percentile,
            Score.confidence,
            Score.explanation,
        )
        .join(Account, Account.id == Score.account_id)
        .where(Score.epoch == epoch)
    )


def _plain_rows(session: Session, stmt: Any) -> list[tuple[Any, ...]]:
    """The DB-API's own tuples of ``stmt``, in the session's transaction. For bulk reads:
    SQLAlchemy's Row objects cost four times the fetch itself (4.3 s against 1.2 s for
    1M rows of six numbers on PostgreSQL), and numpy reads plain tuples fast."""
    conn = session.connection()
    compiled = stmt.compile(dialect=conn.dialect)
    params = compiled.construct_params()
    args: Any = (
        tuple(params[name] for name in compiled.positiontup or ())
        if compiled.positional
        else params
    )
    cursor = conn.connection.cursor()
    try:
        cursor.execute(compiled.string, args)
        return list(cursor.fetchall())
    finally:
        cursor.close()


#: The columns of :func:`domain_score_chunks`' arrays.
SCORE_ARRAY_COLUMNS = ("account", "trust", "score", "rank", "percentile", "confidence")


def domain_score_chunks(
    session: Session, epoch: int, domain: str, *, chunk: int = 50_000
) -> Iterator[np.ndarray]:
    """An epoch's scores in one domain as float64 arrays of :data:`SCORE_ARRAY_COLUMNS`
    (account is the accounts table's integer id; a missing confidence is NaN), at most
    ``chunk`` rows each, by account. The bulk read of the API's in-memory epoch
    (api/epoch_cache.py): no Python object per score, and pages by key on the primary key
    (epoch, domain, account), so neither side ever holds more than a chunk."""
    after = -1
    while True:
        stmt = (
            select(
                Score.account_id, Score.trust, Score.score, Score.rank, Score.percentile,
                Score.confidence,
            )
            .where(Score.epoch == epoch, Score.domain == domain, Score.account_id > after)
            .order_by(Score.account_id)
            .limit(chunk)
        )  # fmt: skip
        rows = _plain_rows(session, stmt)
        if not rows:
            return
        part = np.array(rows, dtype=np.float64)  # None (no confidence) becomes NaN
        yield part
        after = int(part[-1, 0])


def account_names(session: Session, *, chunk: int = 50_000) -> Iterator[list[tuple[int, str]]]:
    """Every account as (integer id, account id), at most ``chunk`` at a time, by id."""
    after = -1
    while True:
        stmt = (
            select(Account.id, Account.account_id)
            .where(Account.id > after)
            .order_by(Account.id)
            .limit(chunk)
        )
        rows = _plain_rows(session, stmt)
        if not rows:
            return
        yield rows
        after = int(rows[-1][0])


def _score_rows(epoch: int, domain: str) -> Any:
    """SELECT of an epoch's scores in one domain, as AccountScore columns, by rank."""
    return _score_columns(epoch).where(Score.domain == domain).order_by(Score.rank)


def top_scores(
    session: Session, epoch: int, domain: str, limit: int, offset: int = 0
) -> list[AccountScore]:
    """A page of one domain's scores by rank (the index on epoch, domain, rank serves it)."""
    stmt = _score_rows(epoch, domain).limit(limit).offset(offset)
    return [AccountScore(*row) for row in session.execute(stmt)]


def account_scores(session: Session, epoch: int, account: str) -> list[AccountScore]:
    """One account's scores in every domain at ``epoch``, global first then by domain."""
    stmt = _score_columns(epoch).where(Account.account_id == account)
    rows = [AccountScore(*row) for row in session.execute(stmt)]
    return sorted(rows, key=lambda r: (r.domain != GLOBAL_DOMAIN, r.domain))


def domain_sizes(session: Session, epoch: int) -> dict[str, int]:
    """Domain -> how many accounts have a score in it at ``epoch``."""
    rows = session.execute(
        select(Score.domain, func.count()).where(Score.epoch == epoch).group_by(Score.domain)
    )
    return {d: int(n) for d, n in rows}


def account_exists(session: Session, account: str) -> bool:
    return (
        session.execute(select(Account.id).where(Account.account_id == account)).first() is not None
    )


def scores_of(
    session: Session, epoch: int, accounts: Sequence[str], domain: str
) -> list[AccountScore]:
    stmt = _score_rows(epoch, domain).where(Account.account_id.in_(accounts))
    return [AccountScore(*row) for row in session.execute(stmt)]


def epoch_trust(session: Session, epoch: int) -> dict[str, dict[str, float]]:
    """An epoch's trust per domain and account: the next epoch's warm start."""
    result = session.execute(
        select(Score.domain, Account.account_id, Score.trust)
        .join(Account, Account.id == Score.account_id)
        .where(Score.epoch == epoch)
    )
    out: dict[str, dict[str, float]] = {}
    for domain, account, trust in result:
        out.setdefault(domain, {})[account] = trust
    return out


def load_labels(session: Session, through_event_id: int) -> LabelTable:
    """Labels, the task posters' gold and reviews up to ``through_event_id``, columnar.

    An item is keyed ``contract/task/item``; its domain and label space are its task's
    (``general`` and unknown until the task is posted). Gold counts only when revealed by
    the task's own poster: anyone else's "gold" is ignored.
    """
    label_rows = session.execute(
        select(Label.contract_id, Label.task_id, Label.item_id, Account.account_id, Label.label)
        .join(Account, Account.id == Label.labeler_id)
        .where(Label.event_id <= through_event_id)
        .order_by(Label.id)
    ).all()
    tasks = {
        (c, t): (d, tuple(labels or ()))
        for c, t, d, labels in session.execute(
            select(Task.contract_id, Task.task_id, Task.domain, Task.labels).where(
                Task.event_id <= through_event_id
            )
        )
    }
    gold_rows = session.execute(
        select(Gold.contract_id, Gold.task_id, Gold.item_id, Gold.label)
        .join(Task, (Task.contract_id == Gold.contract_id) & (Task.task_id == Gold.task_id))
        .where(Gold.poster_id == Task.poster_id, Gold.event_id <= through_event_id)
    ).all()
    reviewer = aliased(Account)
    labeler = aliased(Account)
    review_rows = session.execute(
        select(
            Review.contract_id,
            Review.task_id,
            Review.item_id,
            labeler.account_id,
            reviewer.account_id,
            Review.verdict,
        )
        .join(labeler, labeler.id == Review.labeler_id)
        .join(reviewer, reviewer.id == Review.reviewer_id)
        .where(Review.event_id <= through_event_id)
    ).all()

    def key(contract: str, task: str, item: str) -> str:
        return f"{contract}/{task}/{item}"

    items: dict[str, tuple[str, Sequence[str]]] = {}
    for c, t, i, *_ in [*label_rows, *gold_rows, *review_rows]:
        items.setdefault(key(c, t, i), tasks.get((c, t), (DEFAULT_DOMAIN, ())))
    return LabelTable.from_records(
        ((who, key(c, t, i), value) for c, t, i, who, value in label_rows),
        items=items,
        gold={key(c, t, i): value for c, t, i, value in gold_rows},
        reviews=(
            (key(c, t, i), who, by, 1 if verdict == "accept" else -1)
            for c, t, i, who, by, verdict in review_rows
        ),
    )


def domain_size(session: Session, epoch: int, domain: str) -> int:
    """How many accounts have a score in ``domain`` at ``epoch`` (the rank's denominator)."""
    return int(
        session.execute(
            select(func.count()).where(Score.epoch == epoch, Score.domain == domain)
        ).scalar_one()
    )
