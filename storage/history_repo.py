"""An account's history: its score at every epoch, and the moderation events behind changes.

Why moderation events are placed on epochs: a decision takes effect from the next epoch,
so "what changed my score?" is answered by the decisions made between that epoch and the
one before: a sanction (a flag about the account confirmed), a reversal (votes it got
from a sanctioned account taken away, or its own sanction lifted by an upheld appeal),
each with the moderator's reason. Nothing a user loses goes unexplained.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Account, AuditEntry, Flag, FlagAccount, Score, ScoreEpoch

__all__ = ["HistoryEntry", "ModerationEvent", "account_history"]

# What a decision means to an account, by its role in the flag.
_MEANING = {
    ("flagged", "confirm"): "sanction",
    ("flagged", "uphold"): "reversal",
    ("beneficiary", "confirm"): "reversal",
    ("beneficiary", "uphold"): "restored",
}


@dataclass(frozen=True)
class ModerationEvent:
    """A decision on a flag concerning the account."""

    at: datetime
    flag_id: int
    kind: str
    role: str  # flagged | beneficiary
    action: str  # raise | confirm | dismiss | appeal | uphold | reject
    actor: str
    reason: str
    meaning: str | None  # sanction | reversal | restored, for decisions that move scores
    flagged: list[str]
    effective_epoch: int | None  # first epoch computed after it (None: not yet)

    def to_json(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["at"] = _aware(self.at).isoformat()
        return out


@dataclass(frozen=True)
class HistoryEntry:
    """The account's score at one epoch, and the decisions that took effect in it."""

    epoch: int
    finished_at: datetime
    score: float | None  # None: no score in this domain at this epoch
    rank: int | None
    percentile: float | None
    trust: float | None
    change: float | None  # score minus the previous epoch's
    events: list[ModerationEvent] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["finished_at"] = _aware(self.finished_at).isoformat()
        out["events"] = [e.to_json() for e in self.events]
        return out


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def account_history(
    session: Session, account: str, domain: str, *, limit: int = 1000
) -> tuple[list[HistoryEntry], list[ModerationEvent]] | None:
    """The last ``limit`` epochs of ``account`` in ``domain``, oldest first, and the
    moderation events not yet in effect; None for an account never seen."""
    acc_id = session.execute(
        select(Account.id).where(Account.account_id == account)
    ).scalar_one_or_none()
    if acc_id is None:
        return None
    epochs = list(
        session.execute(
            select(ScoreEpoch.epoch, ScoreEpoch.started_at, ScoreEpoch.finished_at)
            .order_by(ScoreEpoch.epoch.desc())
            .limit(limit)
        )
    )[::-1]
    scores = {
        int(e): (s, r, p, t)
        for e, s, r, p, t in session.execute(
            select(Score.epoch, Score.score, Score.rank, Score.percentile, Score.trust).where(
                Score.account_id == acc_id, Score.domain == domain
            )
        )
    }
    roles = dict(
        session.execute(
            select(FlagAccount.flag_id, FlagAccount.role).where(FlagAccount.account_id == acc_id)
        ).all()
    )
    flags = {f.id: f for f in session.scalars(select(Flag).where(Flag.id.in_(list(roles))))}
    flagged: dict[int, list[str]] = {i: [] for i in roles}
    for fid, name in session.execute(
        select(FlagAccount.flag_id, Account.account_id)
        .join(Account, Account.id == FlagAccount.account_id)
        .where(FlagAccount.flag_id.in_(list(roles)), FlagAccount.role == "flagged")
        .order_by(Account.account_id)
    ):
        flagged[int(fid)].append(name)
    audit = list(
        session.scalars(
            select(AuditEntry).where(AuditEntry.flag_id.in_(list(roles))).order_by(AuditEntry.id)
        )
    )
    starts = [_aware(s) for _, s, _ in epochs]
    all_epochs = [int(e) for e, _, _ in epochs]
    by_epoch: dict[int, list[ModerationEvent]] = {}
    pending: list[ModerationEvent] = []
    for a in audit:
        role = roles[a.flag_id]
        raised_epoch = flags[a.flag_id].raised_epoch
        if a.action == "raise" and raised_epoch is not None:
            # A detector's flag belongs to the epoch whose detectors found it.
            i = bisect.bisect_left(all_epochs, raised_epoch)
        else:
            i = bisect.bisect_left(starts, _aware(a.at))
        event = ModerationEvent(
            at=a.at,
            flag_id=a.flag_id,
            kind=flags[a.flag_id].kind,
            role=role,
            action=a.action,
            actor=a.actor,
            reason=a.reason,
            meaning=_MEANING.get((role, a.action)),
            flagged=flagged[a.flag_id],
            effective_epoch=all_epochs[i] if i < len(all_epochs) else None,
        )
        if event.effective_epoch is None:
            pending.append(event)
        else:
            by_epoch.setdefault(event.effective_epoch, []).append(event)
    out: list[HistoryEntry] = []
    prev: float | None = None
    for e, _, finished in epochs:
        s = scores.get(int(e))
        score = None if s is None else float(s[0])
        out.append(
            HistoryEntry(
                epoch=int(e),
                finished_at=finished,
                score=score,
                rank=None if s is None else int(s[1]),
                percentile=None if s is None else float(s[2]),
                trust=None if s is None else float(s[3]),
                change=None if score is None or prev is None else score - prev,
                events=by_epoch.get(int(e), []),
            )
        )
        prev = score
    return out, pending
