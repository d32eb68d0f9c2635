"""Moderation over HTTP: the flag queue, a flag with its evidence, decisions, the audit log.

Every route needs a moderator or admin API key (``renown keys create --role moderator``);
the key's owner is the actor the moderation service checks (nobody decides a flag about
themselves, nor an appeal against their own decision) and the audit log records, with the
key's number. Appeals are the flagged account's, signed with its NEAR key (NEP-413): not
served here yet (docs/api.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Principal, require_role
from api.deps import database
from api.errors import ApiError
from api.schemas import AccountId
from moderation import service
from moderation.lifecycle import IllegalTransition
from renown.bootstrap import Database

router = APIRouter(tags=["moderation"])

Moderator = Annotated[Principal, Depends(require_role("moderator", "admin"))]
Db = Annotated[Database, Depends(database)]
# Ids and offsets are bounded so that any number the schema admits fits a 64-bit integer
# (a larger one was a 500 from the driver, not a 422).
FlagId = Annotated[int, Path(ge=1, le=2**62)]


@contextmanager
def _moderation_errors() -> Iterator[None]:
    """The service's refusals as API errors with stable codes."""
    try:
        yield
    except service.FlagNotFound as exc:
        raise ApiError(404, "unknown_flag", str(exc), "GET /v1/flags lists them") from None
    except service.UnknownAccount as exc:
        raise ApiError(404, "unknown_account", str(exc)) from None
    except IllegalTransition as exc:
        raise ApiError(
            409, "illegal_transition", str(exc), "GET /v1/flags/{id} shows its state"
        ) from None
    except service.ModerationError as exc:
        raise ApiError(422, "invalid_moderation", str(exc)) from None


def _as(who: Principal) -> tuple[str, list[str], str]:
    """(actor, the moderators the service accepts, via) for a moderator's key."""
    assert who.owner is not None  # require_role admits keys only
    return who.owner, [who.owner], f"api key #{who.key_id}"


class FlagPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[dict[str, Any]]


class Body(BaseModel):
    """A request body, validated strictly: what the schema says or 422. Lax validation
    took ``"score_factor": false`` for 0.0, the harshest discount, where a client more
    likely meant "none" (found by tests/test_api_fuzz.py)."""

    model_config = ConfigDict(strict=True)


class RaiseBody(Body):
    accounts: list[AccountId] = Field(min_length=1, max_length=1000)
    reason: str = Field(min_length=1, max_length=4000)
    # The pattern is the service's rule, documented; the service checks it (422).
    kind: str = Field(
        default="manual", max_length=32, json_schema_extra={"pattern": "^[a-z][a-z0-9_]{0,31}$"}
    )
    severity: float = Field(default=0.5, ge=0, le=1)


class ConfirmBody(Body):
    reason: str = Field(min_length=1, max_length=4000)
    trust_factor: float | None = Field(default=None, ge=0, le=1)
    label_factor: float | None = Field(default=None, ge=0, le=1)
    score_factor: float | None = Field(default=None, ge=0, le=1)


class ReasonBody(Body):
    reason: str = Field(min_length=1, max_length=4000)


class DecideBody(Body):
    verdict: Literal["uphold", "reject"]
    reason: str = Field(min_length=1, max_length=4000)


@router.get("/flags", response_model=FlagPage)
def flags(
    who: Moderator,
    db: Db,
    status: Annotated[str | None, Query(description="comma-separated statuses")] = None,
    kind: Annotated[str | None, Query(max_length=32)] = None,
    account: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
) -> FlagPage:
    """The queue, most severe first, filtered by status, kind or account."""
    with _moderation_errors():
        views, total = service.list_flags(
            db.sessions,
            status=[s for s in (status or "").split(",") if s] or None,
            kind=kind,
            account=account,
            limit=limit,
            offset=offset,
        )
    return FlagPage(total=total, limit=limit, offset=offset, items=[v.to_json() for v in views])


@router.get("/flags/{flag_id}")
def flag(flag_id: FlagId, who: Moderator, db: Db) -> dict[str, Any]:
    """One flag: accounts, evidence, appeal and audit trail."""
    with _moderation_errors():
        return service.show(db.sessions, flag_id).to_json()


@router.post("/flags", status_code=201)
def raise_flag(body: RaiseBody, who: Moderator, db: Db) -> dict[str, Any]:
    """Raise a flag by hand."""
    actor, mods, via = _as(who)
    with _moderation_errors():
        return service.raise_flag(
            db.writer_sessions,
            moderator=actor,
            kind=body.kind,
            accounts=body.accounts,
            reason=body.reason,
            moderators=mods,
            severity=body.severity,
            via=via,
        ).to_json()


@router.post("/flags/{flag_id}/confirm")
def confirm(flag_id: FlagId, body: ConfirmBody, who: Moderator, db: Db) -> dict[str, Any]:
    """Confirm an open flag: its accounts are discounted from the next epoch."""
    actor, mods, via = _as(who)
    with _moderation_errors():
        return service.confirm(
            db.writer_sessions,
            flag_id,
            moderator=actor,
            reason=body.reason,
            moderators=mods,
            trust_factor=body.trust_factor,
            label_factor=body.label_factor,
            score_factor=body.score_factor,
            via=via,
        ).to_json()


@router.post("/flags/{flag_id}/dismiss")
def dismiss(flag_id: FlagId, body: ReasonBody, who: Moderator, db: Db) -> dict[str, Any]:
    """Dismiss an open flag (final)."""
    actor, mods, via = _as(who)
    with _moderation_errors():
        return service.dismiss(
            db.writer_sessions, flag_id, moderator=actor, reason=body.reason, moderators=mods,
            via=via,
        ).to_json()  # fmt: skip


@router.post("/flags/{flag_id}/decide")
def decide(flag_id: FlagId, body: DecideBody, who: Moderator, db: Db) -> dict[str, Any]:
    """Decide a pending appeal (not by the moderator who confirmed the flag)."""
    actor, mods, via = _as(who)
    with _moderation_errors():
        return service.decide(
            db.writer_sessions,
            flag_id,
            moderator=actor,
            uphold=body.verdict == "uphold",
            reason=body.reason,
            moderators=mods,
            via=via,
        ).to_json()


@router.get("/audit")
def audit(
    who: Moderator,
    db: Db,
    flag: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    account: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
) -> list[dict[str, Any]]:
    """The audit log, oldest first."""
    with _moderation_errors():
        return service.audit_log(
            db.sessions, flag_id=flag, actor=actor, account=account, limit=limit, offset=offset
        )
