"""NEP-413 nonces used by contributors' signed messages, shared by every API process.

Why a table: a signed message may be used once. Each API worker (and replica) remembering
its own nonces would let a captured message be replayed once per process within its
window; a primary key on (public key, nonce) in the database both workers use makes the
second use fail wherever it arrives. Rows outlive the replay window only until the next
reservation prunes them, so the table holds the last few minutes of sign-ins.

Like every repository here these functions add and query; the caller commits. A
reservation must be committed in a transaction of its own (the unique key is the lock):
:func:`reserve_nonce` flushes and reports a clash as False.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.models import UsedNonce

__all__ = ["release_nonce", "reserve_nonce"]


def reserve_nonce(
    session: Session, public_key: bytes, nonce: bytes, *, now: datetime, until: datetime
) -> bool:
    """Record the nonce as used until ``until``; False if it already is (a replay).
    Expired rows are deleted first, so a nonce may come back once its window is over
    (its message is refused as stale by then anyway)."""
    session.execute(delete(UsedNonce).where(UsedNonce.expires_at <= now))
    session.add(UsedNonce(public_key=public_key.hex(), nonce=nonce.hex(), expires_at=until))
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        return False
    return True


def release_nonce(session: Session, public_key: bytes, nonce: bytes) -> None:
    """Forget a reservation whose request could not be completed (the chain did not
    answer), so that the same signed message may be sent again."""
    session.execute(
        delete(UsedNonce).where(
            UsedNonce.public_key == public_key.hex(), UsedNonce.nonce == nonce.hex()
        )
    )
