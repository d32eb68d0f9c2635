"""Moderation actions, each one transaction: the flag's change and its audit entry together.

Why the audit entry in the same transaction: a decision without its record, or a record
of a decision that did not happen, would make the log worthless as evidence. Each action
reads the flag under a lock (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's writer
sessions hold the database's write lock), checks it with :func:`moderation.lifecycle.check`,
changes it and appends the audit entry, then commits; a refused action changes nothing.

Effects on scores are not applied here: the next epoch reads the sanctions in force
(:func:`storage.flags_repo.active_sanctions`), so a confirmation or an upheld appeal takes
effect from the next epoch, as docs/moderation.md says.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from moderation.lifecycle import Action, AppealStatus, FlagState, FlagStatus, check
from scoring.detect.finding import Finding
from scoring.sanctions import default_factors
from storage import flags_repo
from storage.models import Appeal, AuditEntry, Flag
from storage.uow import UnitOfWork

__all__ = [
    "DETECTOR",
    "FlagNotFound",
    "FlagView",
    "ModerationError",
    "Recorded",
    "UnknownAccount",
    "appeal",
    "audit_log",
    "confirm",
    "decide",
    "dismiss",
    "list_flags",
    "raise_flag",
    "record_findings",
    "show",
]

#: The actor of flags the detectors raise.
DETECTOR = "detector"
_KIND_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_ACTOR_RE = re.compile(r"^[A-Za-z0-9._@+-]{1,64}$")
Clock = Callable[[], datetime]


class ModerationError(Exception):
    """A moderation request that cannot be carried out (the message says why)."""


class FlagNotFound(ModerationError, LookupError):
    pass


class UnknownAccount(ModerationError, LookupError):
    pass


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class FlagView:
    """A flag as moderators and the API see it: state, accounts, evidence, appeal, log."""

    id: int
    kind: str
    status: str
    severity: float
    summary: str
    evidence: dict[str, Any]
    flagged: list[str]
    beneficiaries: list[str]
    raised_by: str
    raised_at: datetime
    raised_epoch: int | None
    last_seen_epoch: int | None
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str | None
    trust_factor: float | None
    label_factor: float | None
    score_factor: float | None
    appeal: dict[str, Any] | None = None
    audit: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        for key in ("raised_at", "decided_at"):
            out[key] = _iso(out[key])
        return out


def _iso(at: datetime | None) -> str | None:
    if at is None:
        return None
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).isoformat()


def _audit_json(e: AuditEntry) -> dict[str, Any]:
    return {
        "id": e.id,
        "at": _iso(e.at),
        "actor": e.actor,
        "action": e.action,
        "flag": e.flag_id,
        "appeal": e.appeal_id,
        "from": e.from_status,
        "to": e.to_status,
        "reason": e.reason,
        "details": e.details,
    }


def _view(
    session: Session,
    flag: Flag,
    *,
    full: bool,
    accounts: list[tuple[str, str]] | None = None,
) -> FlagView:
    if accounts is None:
        accounts = flags_repo.flag_accounts(session, [flag.id])[flag.id]
    appeal_json = None
    audit: list[dict[str, Any]] = []
    if full:
        ap = flags_repo.get_appeal(session, flag.id)
        if ap is not None:
            appeal_json = {
                "id": ap.id,
                "status": ap.status,
                "statement": ap.statement,
                "filed_at": _iso(ap.filed_at),
                "decided_by": ap.decided_by,
                "decided_at": _iso(ap.decided_at),
                "reason": ap.decision_reason,
            }
        audit = [_audit_json(e) for e in flags_repo.audit_entries(session, flag_id=flag.id)]
    return FlagView(
        id=flag.id,
        kind=flag.kind,
        status=flag.status,
        severity=flag.severity,
        summary=flag.summary,
        evidence=flag.evidence,
        flagged=[a for a, r in accounts if r == flags_repo.FLAGGED],
        beneficiaries=[a for a, r in accounts if r == flags_repo.BENEFICIARY],
        raised_by=flag.raised_by,
        raised_at=flag.raised_at,
        raised_epoch=flag.raised_epoch,
        last_seen_epoch=flag.last_seen_epoch,
        decided_by=flag.decided_by,
        decided_at=flag.decided_at,
        decision_reason=flag.decision_reason,
        trust_factor=flag.trust_factor,
        label_factor=flag.label_factor,
        score_factor=flag.score_factor,
        appeal=appeal_json,
        audit=audit,
    )


def summary_of(finding: Finding) -> str:
    """One line for the queue: who, and the rule that fired."""
    who = ", ".join(finding.accounts[:3])
    if len(finding.accounts) > 3:
        who += f" and {len(finding.accounts) - 3} more"
    rule = finding.evidence.get("rule")
    return f"{who}: {rule}" if rule else who


# --------------------------------------------------------------------------------------
# Detector findings (called inside the scoring epoch's transaction)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """What an epoch's findings did to the queue."""

    raised: list[int]  # new flags
    seen_again: int  # findings already flagged (whatever became of the flag)

    def to_json(self) -> dict[str, Any]:
        return {"raised": self.raised, "seen_again": self.seen_again}


def record_findings(
    session: Session, findings: Sequence[Finding], epoch: int | None, *, at: datetime | None = None
) -> Recorded:
    """Raise a flag for every finding not flagged before; mark the others as seen.

    A finding already flagged and unchanged (same fingerprint) is not raised again,
    whatever became of its flag (a dismissed finding stays dismissed); an *open* flag
    gets the latest evidence and severity, so the moderator reads current figures.
    """
    at = at or _now()
    unique: dict[str, Finding] = {}
    for f in findings:
        unique.setdefault(f.fingerprint, f)
    known = flags_repo.flags_by_fingerprint(session, list(unique))
    names = {a for f in unique.values() for a in (*f.accounts, *f.beneficiaries)}
    ids = flags_repo.account_ids_of(session, names)
    raised: list[int] = []
    for fp, f in unique.items():
        flag = known.get(fp)
        if flag is not None:
            flag.last_seen_epoch = epoch
            if flag.status == FlagStatus.OPEN:
                flag.evidence = f.evidence
                flag.severity = f.severity
            continue
        accounts = {ids[a]: flags_repo.BENEFICIARY for a in f.beneficiaries if a in ids}
        accounts.update({ids[a]: flags_repo.FLAGGED for a in f.accounts if a in ids})
        new = flags_repo.add_flag(
            session,
            kind=f.kind,
            severity=f.severity,
            summary=summary_of(f),
            evidence=f.evidence,
            fingerprint=fp,
            raised_by=DETECTOR,
            epoch=epoch,
            at=at,
            accounts=accounts,
        )
        flags_repo.add_audit(
            session,
            at=at,
            actor=DETECTOR,
            action=Action.RAISE,
            flag_id=new.id,
            from_status=None,
            to_status=FlagStatus.OPEN,
            reason=str(f.evidence.get("rule", f.kind)),
            details={"epoch": epoch, "fingerprint": fp},
        )
        raised.append(new.id)
    return Recorded(raised=raised, seen_again=len(unique) - len(raised))


# --------------------------------------------------------------------------------------
# Moderator and account actions (each its own transaction)
# --------------------------------------------------------------------------------------


def _actor(name: str) -> str:
    if not _ACTOR_RE.match(name):
        raise ModerationError(f"{name!r} is not a valid actor name ([A-Za-z0-9._@+-], 1-64)")
    return name


def _load(session: Session, flag_id: int) -> Flag:
    flag = flags_repo.get_flag(session, flag_id, for_update=True)
    if flag is None:
        raise FlagNotFound(f"no flag #{flag_id}")
    return flag


def _state(session: Session, flag: Flag) -> FlagState:
    accounts = flags_repo.flag_accounts(session, [flag.id])[flag.id]
    return FlagState(
        status=FlagStatus(flag.status),
        flagged=frozenset(a for a, r in accounts if r == flags_repo.FLAGGED),
        decided_by=flag.decided_by,
        appealed=flags_repo.get_appeal(session, flag.id) is not None,
    )


def raise_flag(
    sessions: sessionmaker[Session],
    *,
    moderator: str,
    kind: str,
    accounts: Sequence[str],
    reason: str,
    moderators: Collection[str],
    severity: float = 0.5,
    evidence: dict[str, Any] | None = None,
    via: str | None = None,
    clock: Clock = _now,
) -> FlagView:
    """A moderator's hand-raised flag: open, with the reason as its summary and evidence."""
    _actor(moderator)
    if moderator not in moderators:
        raise ModerationError(f"{moderator!r} is not a moderator (RENOWN_MODERATORS)")
    if not _KIND_RE.fullmatch(kind):
        raise ModerationError(f"kind {kind!r} must match [a-z][a-z0-9_]{{0,31}}")
    if not accounts:
        raise ModerationError("a flag needs at least one account")
    if not reason.strip():
        raise ModerationError("a flag needs a reason (it goes to the audit log)")
    if not 0 <= severity <= 1:
        raise ModerationError("severity must lie in [0, 1]")
    if moderator in accounts:
        raise ModerationError("a moderator cannot flag themselves")
    at = clock()
    with UnitOfWork(sessions) as uow:
        ids = flags_repo.account_ids_of(uow.session, accounts)
        unknown = sorted(set(accounts) - set(ids))
        if unknown:
            raise UnknownAccount(f"unknown account(s) {unknown}: never seen in any event")
        flag = flags_repo.add_flag(
            uow.session,
            kind=kind,
            severity=severity,
            summary=reason.strip(),
            evidence={"raised_by_hand": True, "reason": reason.strip(), **(evidence or {})},
            fingerprint=None,
            raised_by=moderator,
            epoch=None,
            at=at,
            accounts={ids[a]: flags_repo.FLAGGED for a in accounts},
        )
        return _record(
            uow,
            flag,
            via,
            at=at,
            actor=moderator,
            action=Action.RAISE,
            from_status=None,
            to_status=FlagStatus.OPEN,
            reason=reason.strip(),
        )


def _record(uow: UnitOfWork, flag: Flag, via: str | None, **entry: Any) -> FlagView:
    """Append the action's audit entry and commit it with the flag's change: one
    transaction, so there is no change without its entry (and no entry without its change).
    ``via`` says through what the actor acted (e.g. ``api key #3``), kept in the details."""
    details = dict(entry.pop("details", None) or {})
    if via:
        details["via"] = via
    flags_repo.add_audit(uow.session, flag_id=flag.id, details=details, **entry)
    uow.session.flush()
    view = _view(uow.session, flag, full=True)
    uow.commit()
    return view


def _decide_flag(
    sessions: sessionmaker[Session],
    flag_id: int,
    action: Action,
    moderator: str,
    reason: str,
    moderators: Collection[str],
    clock: Clock,
    factors: tuple[float | None, float | None, float | None] = (None, None, None),
    via: str | None = None,
) -> FlagView:
    _actor(moderator)
    at = clock()
    with UnitOfWork(sessions) as uow:
        flag = _load(uow.session, flag_id)
        before = flag.status
        after = check(_state(uow.session, flag), action, moderator, reason, moderators=moderators)
        details: dict[str, Any] = {}
        if action is Action.CONFIRM:
            trust, label = default_factors(flag.kind)
            trust = trust if factors[0] is None else factors[0]
            label = label if factors[1] is None else factors[1]
            score = 1.0 if factors[2] is None else factors[2]
            for name, value in (
                ("trust factor", trust),
                ("label factor", label),
                ("score factor", score),
            ):
                if not 0.0 <= value <= 1.0:
                    raise ModerationError(f"{name} must lie in [0, 1], got {value}")
            flag.trust_factor, flag.label_factor, flag.score_factor = trust, label, score
            details = {"trust_factor": trust, "label_factor": label, "score_factor": score}
        flag.status = after
        flag.decided_by, flag.decided_at, flag.decision_reason = moderator, at, reason.strip()
        return _record(
            uow,
            flag,
            via,
            at=at,
            actor=moderator,
            action=action,
            from_status=before,
            to_status=after,
            reason=reason.strip(),
            details=details,
        )


def confirm(
    sessions: sessionmaker[Session],
    flag_id: int,
    *,
    moderator: str,
    reason: str,
    moderators: Collection[str],
    trust_factor: float | None = None,
    label_factor: float | None = None,
    score_factor: float | None = None,
    via: str | None = None,
    clock: Clock = _now,
) -> FlagView:
    """Confirm an open flag; its accounts are sanctioned from the next epoch with the
    kind's default factors (scoring.sanctions.DEFAULT_FACTORS) unless given; the score
    factor (their own trust kept) is 1 unless given."""
    return _decide_flag(
        sessions,
        flag_id,
        Action.CONFIRM,
        moderator,
        reason,
        moderators,
        clock,
        (trust_factor, label_factor, score_factor),
        via,
    )


def dismiss(
    sessions: sessionmaker[Session],
    flag_id: int,
    *,
    moderator: str,
    reason: str,
    moderators: Collection[str],
    via: str | None = None,
    clock: Clock = _now,
) -> FlagView:
    """Dismiss an open flag: final; the same finding is not raised again."""
    return _decide_flag(
        sessions, flag_id, Action.DISMISS, moderator, reason, moderators, clock, via=via
    )


def appeal(
    sessions: sessionmaker[Session],
    flag_id: int,
    *,
    account: str,
    statement: str,
    via: str | None = None,
    clock: Clock = _now,
) -> FlagView:
    """A flagged account appeals a confirmed flag (once). The sanction stays until a
    moderator other than the one who confirmed it upholds the appeal."""
    _actor(account)
    at = clock()
    with UnitOfWork(sessions) as uow:
        flag = _load(uow.session, flag_id)
        before = flag.status
        after = check(_state(uow.session, flag), Action.APPEAL, account, statement)
        ids = flags_repo.account_ids_of(uow.session, [account])
        ap = Appeal(
            flag_id=flag.id,
            account_id=ids[account],
            statement=statement.strip(),
            status=AppealStatus.PENDING,
            filed_at=at,
        )
        uow.session.add(ap)
        uow.session.flush()
        flag.status = after
        return _record(
            uow,
            flag,
            via,
            at=at,
            actor=account,
            action=Action.APPEAL,
            appeal_id=ap.id,
            from_status=before,
            to_status=after,
            reason=statement.strip(),
        )


def decide(
    sessions: sessionmaker[Session],
    flag_id: int,
    *,
    moderator: str,
    uphold: bool,
    reason: str,
    moderators: Collection[str],
    via: str | None = None,
    clock: Clock = _now,
) -> FlagView:
    """Decide a pending appeal: upheld, the flag is overturned and its sanction lifted
    from the next epoch; rejected, the flag stays confirmed (final)."""
    _actor(moderator)
    action = Action.UPHOLD if uphold else Action.REJECT
    at = clock()
    with UnitOfWork(sessions) as uow:
        flag = _load(uow.session, flag_id)
        before = flag.status
        after = check(_state(uow.session, flag), action, moderator, reason, moderators=moderators)
        ap = flags_repo.get_appeal(uow.session, flag.id)
        assert ap is not None  # check() refused a flag that is not appealed
        ap.status = AppealStatus.UPHELD if uphold else AppealStatus.REJECTED
        ap.decided_by, ap.decided_at, ap.decision_reason = moderator, at, reason.strip()
        flag.status = after
        return _record(
            uow,
            flag,
            via,
            at=at,
            actor=moderator,
            action=action,
            appeal_id=ap.id,
            from_status=before,
            to_status=after,
            reason=reason.strip(),
        )


def show(sessions: sessionmaker[Session], flag_id: int) -> FlagView:
    """The flag with its accounts, evidence, appeal and audit trail."""
    with UnitOfWork(sessions) as uow:
        flag = flags_repo.get_flag(uow.session, flag_id)
        if flag is None:
            raise FlagNotFound(f"no flag #{flag_id}")
        return _view(uow.session, flag, full=True)


def list_flags(
    sessions: sessionmaker[Session],
    *,
    status: Sequence[str] | None = None,
    kind: str | None = None,
    account: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[FlagView], int]:
    """The queue (filters as storage.flags_repo.list_flags), most severe first."""
    bad = [s for s in status or () if s not in FlagStatus.__members__.values()]
    if bad:
        raise ModerationError(f"unknown status {bad}; known: {[s.value for s in FlagStatus]}")
    if not 1 <= limit <= 1000 or offset < 0:
        raise ModerationError("limit must be 1-1000 and offset >= 0")
    with UnitOfWork(sessions) as uow:
        rows, total = flags_repo.list_flags(
            uow.session, status=status, kind=kind, account=account, limit=limit, offset=offset
        )
        views = [
            _view(
                uow.session,
                r.flag,
                full=False,
                accounts=[(a, flags_repo.FLAGGED) for a in r.flagged]
                + [(a, flags_repo.BENEFICIARY) for a in r.beneficiaries],
            )
            for r in rows
        ]
        return views, total


def audit_log(
    sessions: sessionmaker[Session],
    *,
    flag_id: int | None = None,
    actor: str | None = None,
    account: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Audit entries (JSON-ready), oldest first, filtered by flag, actor or account."""
    if not 1 <= limit <= 10_000 or offset < 0:
        raise ModerationError("limit must be 1-10000 and offset >= 0")
    with UnitOfWork(sessions) as uow:
        entries = flags_repo.audit_entries(
            uow.session, flag_id=flag_id, actor=actor, account=account, limit=limit, offset=offset
        )
        return [_audit_json(e) for e in entries]
