"""An account's history: its score at every epoch, and the moderation events behind changes.

Why moderation events are placed on epochs: a decision takes effect from the next epoch,
so "what changed my score?" is answered by the decisions made between that epoch and the
one before: a sanction (a flag about the account confirmed), a reversal (votes it got
from a sanctioned account taken away, or its own sanction lifted by an upheld appeal),
each with the moderator's reason. Nothing a user loses goes unexplained.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Account, Appeal, AuditEntry, Flag, FlagAccount, Score, ScoreEpoch

__all__ = ["HistoryEntry", "ModerationEvent", "account_history"]

# What a decision means to an account, by its role in the flag.
_MEANING = {
    ("flagged", "confirm"): "sanction",
    ("flagged", "uphold"): "reversal",
    ("beneficiary", "confirm"): "reversal",
    ("beneficiary", "uphold"): "restored",
    ("source", "confirm"): "reversal",
    ("source", "uphold"): "restored",
}


@dataclass(frozen=True)
class ModerationEvent:
    """A decision on a flag concerning the account."""

    at: datetime
    flag_id: int
    kind: str
    role: str  # flagged | beneficiary | source (a sanctioned account among its top sources)
    action: str  # raise | confirm | dismiss | appeal | uphold | reject
    actor: str
    reason: str
    meaning: str | None  # sanction | reversal | restored, for decisions that move scores
    flagged: list[str]
    effective_epoch: int | None  # first epoch computed after it (None: not yet)
    share: float | None = None  # for a source: the share of this account's trust it gave

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
    epoch_rows = list(
        session.execute(
            select(
                ScoreEpoch.epoch, ScoreEpoch.started_at, ScoreEpoch.finished_at, ScoreEpoch.params
            )
            .order_by(ScoreEpoch.epoch.desc())
            .limit(limit)
        )
    )[::-1]
    epochs = [(e, st, fin) for e, st, fin, _ in epoch_rows]
    applied = {int(e): set((params or {}).get("sanctions", [])) for e, _, _, params in epoch_rows}
    scores = {
        int(e): (s, r, p, t, x)
        for e, s, r, p, t, x in session.execute(
            select(
                Score.epoch,
                Score.score,
                Score.rank,
                Score.percentile,
                Score.trust,
                Score.explanation,
            ).where(Score.account_id == acc_id, Score.domain == domain)
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
    for e, event in _source_events(session, applied, scores, set(roles)):
        by_epoch.setdefault(e, []).append(event)
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


def _sources(explanation: dict[str, Any] | None) -> dict[str, float]:
    return {s["account"]: float(s["share"]) for s in (explanation or {}).get("sources", [])}


def _source_events(
    session: Session,
    applied: dict[int, set[int]],
    scores: dict[int, tuple[Any, ...]],
    own_flags: set[int],
) -> list[tuple[int, ModerationEvent]]:
    """Sanctions that started or ended at an epoch on an account that was among this
    account's top sources: the reason its trust fell or came back, even when no flag
    names it (a hand-raised flag, a ring member's votes for an honest labeler)."""
    out: list[tuple[int, ModerationEvent]] = []
    order = sorted(applied)
    changes: list[tuple[int, set[int], set[int], dict[str, float], dict[str, float]]] = []
    for before, after in itertools.pairwise(order):
        added = applied[after] - applied[before] - own_flags
        removed = applied[before] - applied[after] - own_flags
        if added or removed:
            prev_src = _sources(scores[before][4]) if before in scores else {}
            now_src = _sources(scores[after][4]) if after in scores else {}
            changes.append((after, added, removed, prev_src, now_src))
    wanted = {f for _, a, r, _, _ in changes for f in a | r}
    if not wanted:
        return out
    flags = {f.id: f for f in session.scalars(select(Flag).where(Flag.id.in_(list(wanted))))}
    appeals = {
        a.flag_id: a
        for a in session.scalars(select(Appeal).where(Appeal.flag_id.in_(list(wanted))))
    }
    flagged: dict[int, list[str]] = {}
    for fid, name in session.execute(
        select(FlagAccount.flag_id, Account.account_id)
        .join(Account, Account.id == FlagAccount.account_id)
        .where(FlagAccount.flag_id.in_(list(wanted)), FlagAccount.role == "flagged")
        .order_by(Account.account_id)
    ):
        flagged.setdefault(int(fid), []).append(name)
    for epoch, added, removed, prev_src, now_src in changes:
        for fid, srcs, action in (
            *((f, prev_src, "confirm") for f in sorted(added)),
            *((f, now_src, "uphold") for f in sorted(removed)),
        ):
            names = flagged.get(fid, [])
            share = sum(srcs.get(n, 0.0) for n in names)
            if share <= 0 or fid not in flags:
                continue
            flag, ap = flags[fid], appeals.get(fid)
            by_appeal = action == "uphold" and ap is not None and ap.decided_at is not None
            out.append(
                (
                    epoch,
                    ModerationEvent(
                        at=(ap.decided_at if by_appeal and ap else None)
                        or flag.decided_at
                        or flag.raised_at,
                        flag_id=fid,
                        kind=flag.kind,
                        role="source",
                        action=action,
                        actor=(ap.decided_by if by_appeal and ap else flag.decided_by) or "",
                        reason=(ap.decision_reason if by_appeal and ap else flag.decision_reason)
                        or "",
                        meaning=_MEANING[("source", action)],
                        flagged=[n for n in names if n in srcs],
                        effective_epoch=epoch,
                        share=share,
                    ),
                )
            )
    return out
