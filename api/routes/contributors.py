"""Contributors over HTTP, signed in with their NEAR account (NEP-413, api/nep413.py):
an account appeals a flag against it, and sees its flags with their evidence.

No API key is involved: the signed message is the credential, checked against the
account's full-access keys on chain. The audit log records an appeal with the account as
the actor and ``via: "nep413 ed25519:..."``, the key that signed it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field

from api import nep413
from api.deps import app_state, database, settings
from api.errors import ApiError, ErrorBody
from api.routes.scores import Account, check_account_id
from moderation import service
from moderation.lifecycle import IllegalTransition
from renown.bootstrap import Database
from renown.settings import Settings

__all__ = ["APPEAL", "VIEW_FLAGS", "AppealBody", "SignedBody", "router"]

router = APIRouter(tags=["contributors"])

APPEAL = "appeal"
VIEW_FLAGS = "view_flags"
Db = Annotated[Database, Depends(database)]
Config = Annotated[Settings, Depends(settings)]
FlagId = Annotated[int, Path(ge=1, le=2**62)]
_ERROR = {"application/json": {"schema": ErrorBody}}
_SIGNED_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {
        "description": "invalid_signature, invalid_message, stale_message, replayed_message",
        "content": _ERROR,
    },
    403: {"description": "not_a_full_access_key", "content": _ERROR},
    503: {"description": "chain_unavailable", "content": _ERROR},
}


class SignedBody(BaseModel):
    signed: nep413.SignedMessage


class AppealBody(BaseModel):
    statement: str = Field(
        min_length=1,
        max_length=4000,
        description="why the flag is wrong; the signed message names its SHA-256",
    )
    signed: nep413.SignedMessage


class PrivateFlags(BaseModel):
    account: str
    flags: list[dict[str, Any]]


def replay_guard(request: Request) -> nep413.Replay:
    """The app's nonce guard: in the database, shared by every worker (created on first
    use; a test may set its own)."""
    db = request.app.state.db
    guard: nep413.Replay = app_state(
        request.app, "nep413_replay", lambda: nep413.DatabaseReplayGuard(db.writer_sessions)
    )
    return guard


Guard = Annotated[nep413.Replay, Depends(replay_guard)]


def _verify(
    body: nep413.SignedMessage,
    account: str,
    action: str,
    cfg: Settings,
    guard: nep413.Replay,
    **expected: Any,
) -> nep413.Verified:
    check_account_id(account)
    return nep413.verify_signed_message(
        body,
        account=account,
        action=action,
        expected=expected,
        recipient=nep413.recipient_for(cfg),
        rpc_url=cfg.near_rpc_url,
        replay=guard,
    )


@contextmanager
def _appeal_errors(account: str) -> Iterator[None]:
    """The service's refusals with the moderation routes' codes, hints for the account."""
    try:
        yield
    except service.FlagNotFound as exc:
        raise ApiError(
            404, "unknown_flag", str(exc), f"GET /v1/accounts/{account}/flags lists its flags"
        ) from None
    except service.UnknownAccount as exc:
        raise ApiError(404, "unknown_account", str(exc)) from None
    except IllegalTransition as exc:
        raise ApiError(
            409,
            "illegal_transition",
            str(exc),
            "a confirmed flag naming the account as flagged can be appealed, once; "
            f"GET /v1/accounts/{account}/flags shows each flag's status",
        ) from None
    except service.ModerationError as exc:
        raise ApiError(422, "invalid_moderation", str(exc)) from None


@router.post(
    "/accounts/{account}/flags/{flag_id}/appeal",
    status_code=201,
    responses={
        201: {"description": "The appeal is filed: the flag with its appeal and audit trail"},
        **_SIGNED_RESPONSES,
    },
)
def appeal(
    account: Account, flag_id: FlagId, body: AppealBody, db: Db, cfg: Config, guard: Guard
) -> dict[str, Any]:
    """The flagged account appeals a confirmed flag (once), signed with a full-access key
    of the account: the signed message says ``{"action": "appeal", "account", "flag",
    "statement_sha256", "issued_at"}``. The sanction stays until a moderator other than
    the one who confirmed the flag upholds the appeal."""
    who = _verify(
        body.signed,
        account,
        APPEAL,
        cfg,
        guard,
        flag=flag_id,
        statement_sha256=nep413.statement_sha256(body.statement),
    )
    with _appeal_errors(account):
        view = service.appeal(
            db.writer_sessions, flag_id, account=account, statement=body.statement, via=who.via
        )
    return view.to_json()


@router.post(
    "/accounts/{account}/flags/private",
    response_model=PrivateFlags,
    responses=_SIGNED_RESPONSES,
)
def private_flags(account: Account, body: SignedBody, db: Db, cfg: Config, guard: Guard) -> Any:
    """The flags concerning the account (flagged or beneficiary), oldest first, each
    with its evidence, appeal and audit trail, for the account itself: the signed message
    says ``{"action": "view_flags", "account", "issued_at"}``. An account Renown never
    saw has no flags."""
    _verify(body.signed, account, VIEW_FLAGS, cfg, guard)
    ids: list[int] = []
    offset = 0
    while True:
        views, total = service.list_flags(db.sessions, account=account, limit=1000, offset=offset)
        ids.extend(v.id for v in views)
        offset += len(views)
        if not views or offset >= total:
            break
    flags = []
    for flag_id in sorted(set(ids)):
        try:
            view = service.show(db.sessions, flag_id)
        except service.FlagNotFound:  # not possible today: flags are never deleted
            continue
        role = "flagged" if account in view.flagged else "beneficiary"
        flags.append({**view.to_json(), "role": role})
    return PrivateFlags(account=account, flags=flags)
