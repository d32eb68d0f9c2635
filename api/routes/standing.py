"""A contributor's standing: history, explanation, flags, and proof against the root."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.deps import epoch_cache, read_session
from api.errors import ApiError
from api.routes.scores import Account, check_account_id, current_epoch, no_score
from api.routes.snapshots import MAX_EPOCH, publications_of
from api.schemas import (
    AccountFlags,
    DomainScore,
    Explanation,
    History,
    HistoryEvent,
    HistoryPoint,
    ProofBody,
    PublicFlag,
)
from renown.report import explain_text
from scoring.model import GLOBAL_DOMAIN
from storage import flags_repo
from storage.history_repo import ModerationEvent, account_history
from storage.models import Appeal
from storage.scoring_repo import account_exists, scores_of
from storage.snapshot_repo import NoSnapshot, NotInSnapshot, SnapshotMismatch, prove

router = APIRouter(tags=["standing"])

Domain = Annotated[str, Query(max_length=64)]


def _event(e: ModerationEvent) -> HistoryEvent:
    data = e.to_json()
    return HistoryEvent(
        at=data["at"],
        flag=e.flag_id,
        kind=e.kind,
        role=e.role,
        action=e.action,
        actor=e.actor,
        reason=e.reason,
        meaning=e.meaning,
        flagged=e.flagged,
        effective_epoch=e.effective_epoch,
        share=e.share,
    )


@router.get("/accounts/{account}/history", response_model=History)
def history(
    account: Account,
    session: Annotated[Session, Depends(read_session)],
    domain: Domain = GLOBAL_DOMAIN,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> History:
    """The account's score at each of the last ``limit`` epochs, and the moderation
    decisions that took effect in each (sanctions, reversals, restorations, with the
    moderator's reason): no unexplained change."""
    check_account_id(account)
    found = account_history(session, account, domain, limit=limit)
    if found is None:
        raise no_score(session, account, domain, 0)
    entries, pending = found
    return History(
        account=account,
        domain=domain,
        epochs=[
            HistoryPoint(
                epoch=h.epoch,
                finished_at=h.to_json()["finished_at"],
                score=h.score,
                rank=h.rank,
                percentile=h.percentile,
                trust=h.trust,
                change=h.change,
                events=[_event(e) for e in h.events],
            )
            for h in entries
        ],
        pending=[_event(e) for e in pending],
    )


@router.get("/accounts/{account}/explanation", response_model=Explanation)
def explanation(
    account: Account,
    request: Request,
    session: Annotated[Session, Depends(read_session)],
    domain: Domain = GLOBAL_DOMAIN,
) -> Explanation:
    """Why the score is what it is: top sources, evidence kinds, distrust, closed group,
    sanctions, confidence; and the same as text, with how to raise it."""
    check_account_id(account)
    epoch = current_epoch(session)
    rows = scores_of(session, epoch, [account], domain)
    if not rows:
        raise no_score(session, account, domain, epoch)
    total = epoch_cache(request).sizes(session, epoch).get(domain, 0)
    return Explanation(
        account=account,
        epoch=epoch,
        domain=domain,
        score=DomainScore.of(rows[0], total),
        explanation=rows[0].explanation,
        text=explain_text(rows[0], epoch=epoch, accounts_in_domain=total),
    )


@router.get("/accounts/{account}/flags", response_model=AccountFlags)
def account_flags(
    account: Account, session: Annotated[Session, Depends(read_session)]
) -> AccountFlags:
    """Open and past flags concerning the account (the public view: kind, status,
    summary, dates; the evidence is for moderators and, signed in, the account itself)."""
    check_account_id(account)
    if not account_exists(session, account):
        raise no_score(session, account, GLOBAL_DOMAIN, 0)
    rows, _ = flags_repo.list_flags(session, account=account, limit=1000)
    ids = [r.flag.id for r in rows]
    appeals = {
        a.flag_id: a.status for a in session.scalars(select(Appeal).where(Appeal.flag_id.in_(ids)))
    }
    return AccountFlags(
        account=account,
        flags=[
            PublicFlag(
                id=r.flag.id,
                kind=r.flag.kind,
                status=r.flag.status,
                role="flagged" if account in r.flagged else "beneficiary",
                summary=r.flag.summary,
                raised_at=iso(r.flag.raised_at),
                raised_epoch=r.flag.raised_epoch,
                decided_at=iso(r.flag.decided_at) if r.flag.decided_at else None,
                appeal_status=appeals.get(r.flag.id),
            )
            for r in sorted(rows, key=lambda r: r.flag.id)
        ],
    )


def iso(at: datetime) -> str:
    """A stored time as ISO 8601 with its zone (SQLite returns it naive: it is UTC)."""
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).isoformat()


@router.get("/accounts/{account}/proof", response_model=ProofBody)
def proof(
    account: Account,
    session: Annotated[Session, Depends(read_session)],
    domain: Domain = GLOBAL_DOMAIN,
    epoch: Annotated[int | None, Query(ge=1, le=MAX_EPOCH)] = None,
) -> ProofBody:
    """An inclusion proof of the account's score against the epoch's Merkle root (the
    latest snapshot by default), checked against the stored root before it is served,
    with the contract transactions that published that root."""
    check_account_id(account)
    try:
        proven = prove(session, account, domain, epoch)
    except NoSnapshot as exc:
        raise ApiError(404, "no_snapshot", str(exc), "GET /v1/snapshots/latest") from None
    except NotInSnapshot:
        raise no_score(session, account, domain, epoch or 0) from None
    except SnapshotMismatch as exc:
        raise ApiError(
            500, "snapshot_mismatch", str(exc), "the operator must investigate: scores altered"
        ) from None
    leaf = proven.proof.leaf
    return ProofBody(
        account=account,
        domain=domain,
        epoch=leaf.epoch,
        root=proven.root,
        proof=proven.proof.to_json(),
        publications=publications_of(session, leaf.epoch),
    )
