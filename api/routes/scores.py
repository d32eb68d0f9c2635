"""Scores: one account in every domain, a batch of accounts, a domain's ranking."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy.orm import Session

from api.deps import read_session, settings
from api.errors import ApiError
from api.schemas import (
    ACCOUNT_ID_SCHEMA,
    AccountScores,
    BatchRequest,
    BatchScore,
    BatchScores,
    DomainInfo,
    Domains,
    DomainScore,
    RankedScore,
    TopPage,
)
from ingest.decode import is_account_id
from renown.settings import Settings
from scoring.model import GLOBAL_DOMAIN
from storage.scoring_repo import (
    account_exists,
    account_scores,
    domain_size,
    domain_sizes,
    latest_epoch,
    scores_of,
    top_scores,
)

router = APIRouter(tags=["scores"])

Account = Annotated[
    str,
    Path(
        min_length=2,
        max_length=64,
        description="a NEAR account id",
        json_schema_extra={"pattern": ACCOUNT_ID_SCHEMA["pattern"]},
    ),
]


def current_epoch(session: Session) -> int:
    latest = latest_epoch(session)
    if latest is None:
        raise ApiError(404, "no_epoch", "no scores yet", "the operator has not scored an epoch")
    return latest.epoch


def check_account_id(account: str) -> None:
    if not is_account_id(account):
        raise ApiError(
            422,
            "invalid_account",
            f"{account!r} is not a NEAR account id",
            "2-64 characters: lowercase letters, digits, and - _ . as separators",
        )


def no_score(session: Session, account: str, domain: str, epoch: int) -> ApiError:
    """404 with a hint that tells an unknown account from one without a score here."""
    if not account_exists(session, account):
        return ApiError(
            404,
            "unknown_account",
            f"{account} is not known",
            "it has never appeared in any event Renown ingested; check the spelling",
        )
    where = "any domain" if domain == "*" else f"domain {domain}"
    return ApiError(
        404,
        "no_score",
        f"{account} has no score in {where} at epoch {epoch}",
        "nothing links it to the trusted accounts there yet: endorsements, accepted "
        "labels and votes from trusted accounts give it one",
    )


@router.get("/scores/{account}", response_model=AccountScores)
def account_score(
    account: Account,
    session: Annotated[Session, Depends(read_session)],
    domain: Annotated[str | None, Query(max_length=64)] = None,
) -> AccountScores:
    """An account's score, rank, percentile and confidence in every domain (or one) at
    the latest epoch."""
    check_account_id(account)
    epoch = current_epoch(session)
    rows = account_scores(session, epoch, account)
    if domain is not None:
        rows = [r for r in rows if r.domain == domain]
    if not rows:
        raise no_score(session, account, domain or "*", epoch)
    sizes = domain_sizes(session, epoch)
    return AccountScores(
        account=account,
        epoch=epoch,
        scores=[DomainScore.of(r, sizes.get(r.domain)) for r in rows],
    )


@router.post("/scores/batch", response_model=BatchScores)
def batch_scores(
    body: BatchRequest,
    session: Annotated[Session, Depends(read_session)],
    config: Annotated[Settings, Depends(settings)],
) -> BatchScores:
    """Up to ``api_max_batch`` (1,000) accounts' scores in one domain, in one call;
    accounts without a score are listed in ``missing`` (not an error)."""
    if len(body.accounts) > config.api_max_batch:
        raise ApiError(
            413,
            "batch_too_large",
            f"{len(body.accounts)} accounts; at most {config.api_max_batch} per call",
            "split the list into several calls",
        )
    bad = [a for a in body.accounts if not is_account_id(a)]
    if bad:
        raise ApiError(
            422, "invalid_account", f"not NEAR account ids: {bad[:10]}", "fix or drop them"
        )
    epoch = current_epoch(session)
    wanted = list(dict.fromkeys(body.accounts))
    rows = {r.account: r for r in scores_of(session, epoch, wanted, body.domain)}
    size = domain_size(session, epoch, body.domain) or None  # one domain's count
    return BatchScores(
        epoch=epoch,
        domain=body.domain,
        scores=[
            BatchScore(account=a, **DomainScore.of(rows[a], size).model_dump())
            for a in wanted
            if a in rows
        ],
        missing=[a for a in wanted if a not in rows],
    )


@router.get("/domains", response_model=Domains)
def domains(session: Annotated[Session, Depends(read_session)]) -> Domains:
    """The domains scored at the latest epoch, with how many accounts each holds."""
    epoch = current_epoch(session)
    sizes = domain_sizes(session, epoch)
    order = sorted(sizes, key=lambda d: (d != GLOBAL_DOMAIN, d))
    return Domains(epoch=epoch, domains=[DomainInfo(domain=d, accounts=sizes[d]) for d in order])


@router.get("/domains/{domain}/top", response_model=TopPage)
def top(
    domain: Annotated[str, Path(max_length=64)],
    session: Annotated[Session, Depends(read_session)],
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000_000)] = 0,
) -> TopPage:
    """A page of a domain's ranking at the latest epoch, most trusted first."""
    epoch = current_epoch(session)
    total = domain_size(session, epoch, domain)  # one domain's count, not all of them
    if not total:
        raise ApiError(
            404, "unknown_domain", f"no domain {domain!r} at epoch {epoch}", "GET /v1/domains"
        )
    rows = top_scores(session, epoch, domain, limit, offset)
    return TopPage(
        epoch=epoch,
        domain=domain,
        total=total,
        limit=limit,
        offset=offset,
        items=[RankedScore(account=r.account, **DomainScore.of(r).model_dump()) for r in rows],
    )
