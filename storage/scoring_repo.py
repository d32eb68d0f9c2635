"""Read side for scoring (evidence in columnar form) and write side for epochs and scores.

Order-dependent facts are resolved here with joins, at scoring time: a vote on
content credits the content's authors (split evenly), whoever arrived first; a
retraction by one of the authors removes the content's votes and attestations; a
derived work credits its parents' authors.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import func, insert, select, text
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
from scoring.model import AccountScore
from storage.models import Account, Event, Gold, Label, Review, Score, ScoreEpoch, Task

_DIRECT_KINDS = (VOTE_ACCOUNT, VOTE_LABEL, ENDORSE, REVIEW)
_CONTENT_KINDS = (VOTE_CONTENT, ATTEST)

# Only the winning authorship claim of a content id counts (see models.Content): its
# authors and parents carry the claim's event id. Content is retracted when one of
# those authors said so; anyone else's retraction is recorded but has no effect.
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
       COALESCE(i.domain, t.domain, :general)
FROM interactions i
LEFT JOIN tasks t ON t.contract_id = i.contract_id AND t.task_id = i.task_id
WHERE i.dst_id IS NOT NULL AND i.kind IN ({", ".join(f"'{k}'" for k in _DIRECT_KINDS)})
  AND i.event_id <= :through
UNION ALL
SELECT i.src_id, a.account_id, i.kind, i.value, i.weight / n.n, i.ts_ns,
       COALESCE(i.domain, c.domain, :general)
FROM interactions i
JOIN content c ON c.content_id = i.content_id
JOIN authors a ON a.content_id = i.content_id
JOIN author_counts n ON n.content_id = i.content_id
WHERE i.kind IN ({", ".join(f"'{k}'" for k in _CONTENT_KINDS)})
  AND i.event_id <= :through
  AND i.content_id NOT IN (SELECT content_id FROM retracted)
UNION ALL
SELECT child.account_id, parent.account_id, '{DERIVED}', 1, 1.0 / n.n, c.ts_ns, c.domain
FROM content c
JOIN content_parents cp ON cp.content_id = c.content_id AND cp.event_id = c.event_id
JOIN authors child ON child.content_id = c.content_id
JOIN authors parent ON parent.content_id = cp.parent_id
JOIN author_counts n ON n.content_id = cp.parent_id
WHERE c.event_id <= :through
"""


def latest_event_id(session: Session) -> int:
    return int(session.execute(select(func.coalesce(func.max(Event.id), 0))).scalar_one())


def load_evidence(session: Session, through_event_id: int) -> Evidence:
    """All evidence derived from events up to ``through_event_id``, as numpy columns."""
    id_rows = session.execute(select(Account.id, Account.account_id).order_by(Account.id)).all()
    ids = np.fromiter((r[0] for r in id_rows), dtype=np.int64, count=len(id_rows))
    accounts = [r[1] for r in id_rows]
    rows = session.execute(
        text(_EVIDENCE_SQL), {"general": DEFAULT_DOMAIN, "through": through_event_id}
    ).all()
    kind_code = {k: i for i, k in enumerate(KINDS)}
    domains: dict[str, int] = {}
    n = len(rows)
    src = np.empty(n, dtype=np.int64)
    dst = np.empty(n, dtype=np.int64)
    kind = np.empty(n, dtype=np.int8)
    value = np.empty(n, dtype=np.int8)
    weight = np.empty(n, dtype=np.float64)
    ts = np.empty(n, dtype=np.int64)
    dom = np.empty(n, dtype=np.int32)
    for i, (s, d, k, v, w, t, domain) in enumerate(rows):
        src[i], dst[i], kind[i], value[i], weight[i], ts[i] = s, d, kind_code[k], v, w, t
        dom[i] = domains.setdefault(domain, len(domains))
    # Account ids are dense in practice but not guaranteed (rolled-back sequences).
    index_of = (
        np.searchsorted(ids, src).astype(np.int32),
        np.searchsorted(ids, dst).astype(np.int32),
    )
    return Evidence(
        accounts=accounts,
        domains=list(domains),
        src=index_of[0],
        dst=index_of[1],
        kind=kind,
        value=value,
        weight=weight,
        ts_ns=ts,
        domain=dom,
    )


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


def _score_rows(epoch: int, domain: str) -> Any:
    """SELECT of an epoch's scores in one domain, as AccountScore columns, by rank."""
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
        .where(Score.epoch == epoch, Score.domain == domain)
        .order_by(Score.rank)
    )


def top_scores(session: Session, epoch: int, domain: str, limit: int) -> list[AccountScore]:
    return [AccountScore(*row) for row in session.execute(_score_rows(epoch, domain).limit(limit))]


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
