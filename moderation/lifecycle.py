"""The rules of a flag's life: which action is legal from which state, and by whom.

Kept pure (no storage, no clock) so every legal and illegal transition is checked by one
function that the tests can walk exhaustively, and the service cannot skip a rule:

.. code-block:: text

    open --confirm--> confirmed --appeal--> appealed --uphold--> overturned
      \\                                        \\
       --dismiss--> dismissed                    --reject--> confirmed (final)

* Only a moderator confirms or dismisses, and never a flag about themselves.
* Only a flagged account appeals, only a confirmed flag, and only once.
* An appeal is decided by a moderator other than the one who confirmed the flag (and not
  one of the flagged accounts): nobody judges their own decision.
* Every action carries a reason; the audit log keeps it.
* Dismissed and overturned are final; a changed finding is a new flag (its fingerprint
  differs), so new evidence is never lost to an old dismissal.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "Action",
    "AppealStatus",
    "FlagState",
    "FlagStatus",
    "IllegalTransition",
    "check",
]


class FlagStatus(StrEnum):
    OPEN = "open"
    CONFIRMED = "confirmed"
    DISMISSED = "dismissed"
    APPEALED = "appealed"
    OVERTURNED = "overturned"


class AppealStatus(StrEnum):
    PENDING = "pending"
    UPHELD = "upheld"
    REJECTED = "rejected"


class Action(StrEnum):
    RAISE = "raise"
    CONFIRM = "confirm"
    DISMISS = "dismiss"
    APPEAL = "appeal"
    UPHOLD = "uphold"
    REJECT = "reject"


class IllegalTransition(ValueError):
    """The action is not allowed on this flag in its state, or not by this actor."""


_NEXT: dict[tuple[FlagStatus, Action], FlagStatus] = {
    (FlagStatus.OPEN, Action.CONFIRM): FlagStatus.CONFIRMED,
    (FlagStatus.OPEN, Action.DISMISS): FlagStatus.DISMISSED,
    (FlagStatus.CONFIRMED, Action.APPEAL): FlagStatus.APPEALED,
    (FlagStatus.APPEALED, Action.UPHOLD): FlagStatus.OVERTURNED,
    (FlagStatus.APPEALED, Action.REJECT): FlagStatus.CONFIRMED,
}

_MODERATOR_ACTIONS = frozenset({Action.CONFIRM, Action.DISMISS, Action.UPHOLD, Action.REJECT})


@dataclass(frozen=True)
class FlagState:
    """What the rules need to know about a flag.

    Attributes
    ----------
    status : FlagStatus
    flagged : collection of str
        The accounts the flag sanctions if confirmed (beneficiaries are not in it).
    decided_by : str or None
        The moderator who confirmed or dismissed it.
    appealed : bool
        Whether an appeal was ever filed (one per flag).
    """

    status: FlagStatus
    flagged: Collection[str]
    decided_by: str | None = None
    appealed: bool = False


def check(
    state: FlagState,
    action: Action,
    actor: str,
    reason: str,
    *,
    moderators: Collection[str] | None = None,
) -> FlagStatus:
    """The status ``action`` by ``actor`` leads to, or :class:`IllegalTransition` saying why.

    ``moderators``: the configured moderators; None skips the membership check (the
    caller has checked it), an empty collection refuses every moderator action.
    """
    if not reason.strip():
        raise IllegalTransition(f"{action.value} needs a reason (it goes to the audit log)")
    if action is Action.RAISE:
        raise IllegalTransition("raise creates a flag; it is not a transition")
    nxt = _NEXT.get((state.status, action))
    if nxt is None:
        allowed = sorted(a.value for (s, a) in _NEXT if s is state.status)
        raise IllegalTransition(
            f"cannot {action.value} a flag that is {state.status.value}"
            + (f" (allowed: {', '.join(allowed)})" if allowed else " (it is final)")
        )
    if action in _MODERATOR_ACTIONS:
        if moderators is not None and actor not in moderators:
            raise IllegalTransition(f"{actor!r} is not a moderator")
        if actor in state.flagged:
            raise IllegalTransition(f"{actor!r} is flagged by this flag and cannot decide it")
    if action is Action.APPEAL:
        if actor not in state.flagged:
            raise IllegalTransition(f"only a flagged account can appeal; {actor!r} is not one")
        if state.appealed:
            raise IllegalTransition("this flag was already appealed (one appeal per flag)")
    if action in (Action.UPHOLD, Action.REJECT) and actor == state.decided_by:
        raise IllegalTransition(
            f"{actor!r} confirmed this flag; another moderator must decide the appeal"
        )
    return nxt
