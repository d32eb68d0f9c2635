"""Scores: one account in every domain, a batch of accounts, a domain's ranking."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.deps import database, epoch_cache, read_session, settings
from api.epoch_cache import EpochCache, EpochTable
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
from scoring.model import GLOBAL_DOMAIN, AccountScore
from storage.db import DatabaseUnavailable
from storage.scoring_repo import (
    account_exists,
    account_scores,
    latest_epoch,
    scores_of,
    top_scores,
)
from storage.uow import UnitOfWork

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


async def latest_table(cache: EpochCache) -> tuple[int | None, EpochTable | None]:
    """The latest epoch, and its table when it is in memory. The number is re-read (off
    the event loop) at most every ttl by one request; a failed re-read keeps the known
    epoch when there is one, so a loaded table keeps answering through a database
    outage."""
    epoch, stale = cache.current()
    if stale:
        try:
            epoch = await run_in_threadpool(cache.refresh)
        except (SQLAlchemyError, DatabaseUnavailable):
            if epoch is None:
                raise
    return epoch, None if epoch is None else cache.table(epoch)


# The two lookups marketplaces make at volume are async and answered from the epoch in
# memory (api/epoch_cache.py) without a thread hop or a database round trip; the database
# answers, in the thread pool, until the table is loaded, for the 404s, and for epochs
# too large to hold (docs/api.md "Cost").


@router.get("/scores/{account}", response_model=AccountScores)
async def account_score(
    account: Account,
    request: Request,
    domain: Annotated[str | None, Query(max_length=64)] = None,
) -> AccountScores:
    """An account's score, rank, percentile and confidence in every domain (or one) at
    the latest epoch."""
    check_account_id(account)
    cache = epoch_cache(request)
    epoch, table = await latest_table(cache)
    if table is not None:
        rows = [r for r in table.of(account) if domain is None or r.domain == domain]
        if rows:
            cache.served["memory"] += 1
            return AccountScores(
                account=account,
                epoch=table.epoch,
                scores=[DomainScore.of(r, table.sizes.get(r.domain)) for r in rows],
            )
    cache.served["database"] += 1
    return await run_in_threadpool(_account_score_db, request, account, domain, epoch)


def _account_score_db(
    request: Request, account: str, domain: str | None, epoch: int | None
) -> AccountScores:
    with UnitOfWork(database(request).sessions) as uow:
        session = uow.session
        epoch = current_epoch(session) if epoch is None else epoch
        rows = account_scores(session, epoch, account)
        if domain is not None:
            rows = [r for r in rows if r.domain == domain]
        if not rows:
            raise no_score(session, account, domain or "*", epoch)
        sizes = epoch_cache(request).sizes(session, epoch)
        return AccountScores(
            account=account,
            epoch=epoch,
            scores=[DomainScore.of(r, sizes.get(r.domain)) for r in rows],
        )


@router.post("/scores/batch", response_model=BatchScores)
async def batch_scores(
    body: BatchRequest,
    request: Request,
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
    wanted = list(dict.fromkeys(body.accounts))
    cache = epoch_cache(request)
    epoch, table = await latest_table(cache)
    if table is not None:
        cache.served["memory"] += len(wanted)
        found, size = table.many(wanted, body.domain), table.sizes.get(body.domain)
        return _batch(table.epoch, body.domain, wanted, found, size)
    cache.served["database"] += len(wanted)
    return await run_in_threadpool(_batch_db, request, body.domain, wanted, epoch)


def _batch_db(request: Request, domain: str, wanted: list[str], epoch: int | None) -> BatchScores:
    with UnitOfWork(database(request).sessions) as uow:
        session = uow.session
        epoch = current_epoch(session) if epoch is None else epoch
        found = {r.account: r for r in scores_of(session, epoch, wanted, domain)}
        size = epoch_cache(request).sizes(session, epoch).get(domain)
        return _batch(epoch, domain, wanted, found, size)


def _batch(
    epoch: int, domain: str, wanted: list[str], found: dict[str, AccountScore], size: int | None
) -> BatchScores:
    return BatchScores(
        epoch=epoch,
        domain=domain,
        scores=[BatchScore.of(found[a], size) for a in wanted if a in found],
        missing=[a for a in wanted if a not in found],
    )


@router.get("/domains", response_model=Domains)
def domains(request: Request, session: Annotated[Session, Depends(read_session)]) -> Domains:
    """The domains scored at the latest epoch, with how many accounts each holds."""
    epoch = current_epoch(session)
    sizes = epoch_cache(request).sizes(session, epoch)
    order = sorted(sizes, key=lambda d: (d != GLOBAL_DOMAIN, d))
    return Domains(epoch=epoch, domains=[DomainInfo(domain=d, accounts=sizes[d]) for d in order])


@router.get("/domains/{domain}/top", response_model=TopPage)
def top(
    domain: Annotated[str, Path(max_length=64)],
    request: Request,
    session: Annotated[Session, Depends(read_session)],
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000_000)] = 0,
) -> TopPage:
    """A page of a domain's ranking at the latest epoch, most trusted first."""
    epoch = current_epoch(session)
    total = epoch_cache(request).sizes(session, epoch).get(domain, 0)
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
        items=[RankedScore.of(r) for r in rows],
    )
