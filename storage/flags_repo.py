"""Flags, appeals and the moderation audit log: reads and writes within a caller's session.

The rules (who may do what, from which state) are in :mod:`moderation.lifecycle`; the
transactions in :mod:`moderation.service`. Here: rows in, rows out, and the sanctions in
force for an epoch, which scoring reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from scoring.sanctions import Sanction, Sanctions
from storage.models import Account, Appeal, AuditEntry, Flag, FlagAccount

__all__ = [
    "BENEFICIARY",
    "FLAGGED",
    "FlagRow",
    "account_ids_of",
    "active_sanctions",
    "add_audit",
    "add_flag",
    "audit_entries",
    "flag_accounts",
    "flags_by_fingerprint",
    "get_appeal",
    "get_flag",
    "list_flags",
]

FLAGGED = "flagged"
BENEFICIARY = "beneficiary"
# A confirmed flag sanctions until an appeal is upheld: a pending appeal does not lift it.
SANCTIONING = ("confirmed", "appealed")


@dataclass(frozen=True)
class FlagRow:
    """A flag with the accounts it concerns, as listings show it."""

    flag: Flag
    flagged: list[str]
    beneficiaries: list[str]


def account_ids_of(session: Session, names: Iterable[str]) -> dict[str, int]:
    """Name -> id for the names that exist (unknown names are simply absent)."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    rows = session.execute(
        select(Account.account_id, Account.id).where(Account.account_id.in_(wanted))
    )
    return {name: int(i) for name, i in rows}


def flags_by_fingerprint(session: Session, fingerprints: Sequence[str]) -> dict[str, Flag]:
    out: dict[str, Flag] = {}
    for i in range(0, len(fingerprints), 500):
        chunk = list(fingerprints[i : i + 500])
        for flag in session.scalars(select(Flag).where(Flag.fingerprint.in_(chunk))):
            assert flag.fingerprint is not None
            out[flag.fingerprint] = flag
    return out


def add_flag(
    session: Session,
    *,
    kind: str,
    severity: float,
    summary: str,
    evidence: dict[str, Any],
    fingerprint: str | None,
    raised_by: str,
    epoch: int | None,
    at: datetime,
    accounts: dict[int, str],
) -> Flag:
    """Insert an open flag and its accounts (account id -> role); flushed, so it has an id."""
    flag = Flag(
        kind=kind,
        status="open",
        fingerprint=fingerprint,
        severity=severity,
        summary=summary,
        evidence=evidence,
        raised_by=raised_by,
        raised_epoch=epoch,
        last_seen_epoch=epoch,
        raised_at=at,
    )
    session.add(flag)
    session.flush()
    session.add_all(
        FlagAccount(flag_id=flag.id, account_id=aid, role=role) for aid, role in accounts.items()
    )
    return flag


def get_flag(session: Session, flag_id: int, *, for_update: bool = False) -> Flag | None:
    """The flag, locked against concurrent decisions when ``for_update`` (PostgreSQL; the
    writer sessions of SQLite hold the database's write lock already)."""
    stmt = select(Flag).where(Flag.id == flag_id)
    if for_update:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).one_or_none()


def get_appeal(session: Session, flag_id: int) -> Appeal | None:
    return session.scalars(select(Appeal).where(Appeal.flag_id == flag_id)).one_or_none()


def flag_accounts(session: Session, flag_ids: Sequence[int]) -> dict[int, list[tuple[str, str]]]:
    """Flag id -> [(account, role)], accounts sorted."""
    out: dict[int, list[tuple[str, str]]] = {i: [] for i in flag_ids}
    if not flag_ids:
        return out
    rows = session.execute(
        select(FlagAccount.flag_id, Account.account_id, FlagAccount.role)
        .join(Account, Account.id == FlagAccount.account_id)
        .where(FlagAccount.flag_id.in_(list(flag_ids)))
        .order_by(FlagAccount.flag_id, Account.account_id)
    )
    for fid, name, role in rows:
        out[int(fid)].append((name, role))
    return out


def add_audit(
    session: Session,
    *,
    at: datetime,
    actor: str,
    action: str,
    flag_id: int,
    from_status: str | None,
    to_status: str,
    reason: str,
    appeal_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    entry = AuditEntry(
        at=at,
        actor=actor,
        action=action,
        flag_id=flag_id,
        appeal_id=appeal_id,
        from_status=from_status,
        to_status=to_status,
        reason=reason,
        details=details or {},
    )
    session.add(entry)
    return entry


def _with_account(stmt: Select[Any], account: str | None, role: str | None) -> Select[Any]:
    if account is None:
        return stmt
    sub = (
        select(FlagAccount.flag_id)
        .join(Account, Account.id == FlagAccount.account_id)
        .where(Account.account_id == account)
    )
    if role is not None:
        sub = sub.where(FlagAccount.role == role)
    return stmt.where(Flag.id.in_(sub))


def list_flags(
    session: Session,
    *,
    status: Sequence[str] | None = None,
    kind: str | None = None,
    account: str | None = None,
    role: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[FlagRow], int]:
    """Flags matching the filters, most severe first (then newest); and how many match."""
    stmt = select(Flag)
    if status:
        stmt = stmt.where(Flag.status.in_(list(status)))
    if kind:
        stmt = stmt.where(Flag.kind == kind)
    stmt = _with_account(stmt, account, role)
    total = int(session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one())
    flags = list(
        session.scalars(
            stmt.order_by(Flag.severity.desc(), Flag.id.desc()).limit(limit).offset(offset)
        )
    )
    accounts = flag_accounts(session, [f.id for f in flags])
    rows = [
        FlagRow(
            f,
            [a for a, r in accounts[f.id] if r == FLAGGED],
            [a for a, r in accounts[f.id] if r == BENEFICIARY],
        )
        for f in flags
    ]
    return rows, total


def audit_entries(
    session: Session,
    *,
    flag_id: int | None = None,
    actor: str | None = None,
    account: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[AuditEntry]:
    """Audit entries, oldest first (the order things happened in)."""
    stmt = select(AuditEntry)
    if flag_id is not None:
        stmt = stmt.where(AuditEntry.flag_id == flag_id)
    if actor is not None:
        stmt = stmt.where(AuditEntry.actor == actor)
    if account is not None:
        sub = (
            select(FlagAccount.flag_id)
            .join(Account, Account.id == FlagAccount.account_id)
            .where(Account.account_id == account)
        )
        stmt = stmt.where(AuditEntry.flag_id.in_(sub))
    return list(session.scalars(stmt.order_by(AuditEntry.id).limit(limit).offset(offset)))


def active_sanctions(session: Session) -> Sanctions:
    """The sanctions of every confirmed flag (appealed or not) not overturned: what the
    next epoch applies."""
    rows = session.execute(
        select(
            Flag.id,
            Flag.kind,
            Account.account_id,
            Flag.trust_factor,
            Flag.label_factor,
            Flag.decision_reason,
            Flag.score_factor,
        )
        .join(FlagAccount, FlagAccount.flag_id == Flag.id)
        .join(Account, Account.id == FlagAccount.account_id)
        .where(Flag.status.in_(SANCTIONING), FlagAccount.role == FLAGGED)
    )
    return Sanctions.of(
        Sanction(
            flag_id=int(fid),
            kind=kind,
            account=name,
            trust_factor=1.0 if tf is None else float(tf),
            label_factor=1.0 if lf is None else float(lf),
            reason=reason or "",
            score_factor=1.0 if sf is None else float(sf),
        )
        for fid, kind, name, tf, lf, reason, sf in rows
    )


#: Audit actions that change what the next epoch applies (scoring.sanctions).
SANCTION_ACTIONS = ("confirm", "decide", "dismiss")


def sanction_changes_since(session: Session, since: datetime) -> int:
    """How many decisions that can change the sanctions in force were recorded after
    ``since`` (``renown run`` scores again when there are any, even without new events)."""
    return int(
        session.execute(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.at > since, AuditEntry.action.in_(SANCTION_ACTIONS))
        ).scalar_one()
    )
