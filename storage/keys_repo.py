"""API keys: created with a secret shown once, stored as a hash, verified, revoked.

A key is ``rk_`` + 32 random bytes in URL-safe base64 (43 characters). The table keeps
the first 8 characters after ``rk_`` (``prefix``, to find the row) and the SHA-256 of the
whole key (``secret_hash``); the key itself is returned by :func:`create_key` once and
never stored, so a copy of the database gives nobody a working key. Why SHA-256 and not
a password hash: see :class:`storage.models.ApiKey`.

Like every repository here these functions add and query; the caller's unit of work
commits (storage.uow).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from storage.models import ApiKey

__all__ = [
    "KEY_MARKER",
    "ROLES",
    "ApiKeyError",
    "InvalidKeyRequest",
    "KeyNotFound",
    "check_owner_and_role",
    "create_key",
    "display_prefix",
    "generate_secret",
    "get_key",
    "hash_secret",
    "import_key",
    "list_keys",
    "revoke_key",
    "touch_key",
    "verify_key",
]

#: Every key starts with it: recognisable in logs and by secret scanners.
KEY_MARKER = "rk_"
PREFIX_LEN = 8
#: Roles, least to most powerful; each can do what the ones before it can.
ROLES = ("reader", "moderator", "admin")
_SECRET_BYTES = 32
_BODY_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # 32 bytes, URL-safe base64, no padding
_OWNER_RE = re.compile(r"^[A-Za-z0-9._@+-]{1,64}$")  # as moderation.service's actors


class ApiKeyError(Exception):
    """A key request that cannot be carried out (the message says why)."""


class InvalidKeyRequest(ApiKeyError, ValueError):
    """A bad owner or role."""


class KeyNotFound(ApiKeyError, LookupError):
    """No key with that id."""


def _now() -> datetime:
    return datetime.now(UTC)


def hash_secret(secret: str) -> str:
    """Lowercase hex SHA-256 of the whole key, ``rk_`` included."""
    return hashlib.sha256(secret.encode()).hexdigest()


def display_prefix(key: ApiKey) -> str:
    """How a key is shown without its secret: ``rk_AbCdEfGh…``."""
    return f"{KEY_MARKER}{key.prefix}…"


def check_owner_and_role(owner: str, role: str) -> None:
    if not _OWNER_RE.match(owner):
        raise InvalidKeyRequest(
            f"owner {owner!r} is not a valid name: 1-64 characters of letters, digits and "
            "._@+- (a person or a marketplace, e.g. alice or acme.near)"
        )
    if role not in ROLES:
        raise InvalidKeyRequest(f"unknown role {role!r}; one of {', '.join(ROLES)}")


def _add(
    session: Session, prefix: str, secret: str, owner: str, role: str, now: datetime | None
) -> ApiKey:
    """The row of a key (its hash, never the key), flushed so that it has its id."""
    key = ApiKey(
        prefix=prefix,
        secret_hash=hash_secret(secret),
        owner=owner,
        role=role,
        created_at=now or _now(),
    )
    session.add(key)
    session.flush()
    return key


def generate_secret() -> str:
    """A new key in Renown's format (``rk_`` and 32 random bytes), not stored anywhere."""
    return KEY_MARKER + secrets.token_urlsafe(_SECRET_BYTES)


def import_key(
    session: Session, owner: str, role: str, secret: str, *, now: datetime | None = None
) -> tuple[ApiKey, bool]:
    """Register a key made elsewhere (``renown keys generate``, kept in a secret store),
    so that a deployment's keys live in its secrets and the database only holds their
    hashes. Idempotent: the same key, owner and role again is ``(row, False)``; the same
    key for another owner or role, or another key with the same prefix, is refused."""
    check_owner_and_role(owner, role)
    body = secret[len(KEY_MARKER) :]
    if not secret.startswith(KEY_MARKER) or not _BODY_RE.match(body):
        raise InvalidKeyRequest(
            "not a Renown API key: expected rk_ and 43 URL-safe base64 characters "
            "(`renown keys generate` makes one)"
        )
    known = session.scalar(select(ApiKey).where(ApiKey.prefix == body[:PREFIX_LEN]))
    if known is not None:
        if not hmac.compare_digest(known.secret_hash, hash_secret(secret)):
            raise InvalidKeyRequest(
                f"another key with the prefix {body[:PREFIX_LEN]} is registered (#{known.id}): "
                "generate a new key"
            )
        if (known.owner, known.role) != (owner, role):
            raise InvalidKeyRequest(
                f"this key is registered as #{known.id} for {known.owner} ({known.role}); "
                "revoke it and import a new key to change its owner or role"
            )
        return known, False
    return _add(session, body[:PREFIX_LEN], secret, owner, role, now), True


def create_key(
    session: Session, owner: str, role: str, *, now: datetime | None = None
) -> tuple[ApiKey, str]:
    """A new key for ``owner`` with ``role``: the row (flushed, so it has its id) and the
    key, which exists nowhere else once the caller has shown it."""
    check_owner_and_role(owner, role)
    while True:
        secret = generate_secret()
        prefix = secret[len(KEY_MARKER) : len(KEY_MARKER) + PREFIX_LEN]
        # 48 bits of prefix: a clash is improbable, not impossible; the unique constraint
        # stops a concurrent one.
        if session.scalar(select(ApiKey.id).where(ApiKey.prefix == prefix)) is None:
            break
    return _add(session, prefix, secret, owner, role, now), secret


def verify_key(session: Session, secret: str) -> ApiKey | None:
    """The key's row if ``secret`` is a key in force; ``None`` if it is malformed,
    unknown or revoked. The hashes are compared in constant time."""
    body = secret[len(KEY_MARKER) :]
    if not secret.startswith(KEY_MARKER) or not _BODY_RE.match(body):
        return None
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == body[:PREFIX_LEN]))
    if key is None or not hmac.compare_digest(key.secret_hash, hash_secret(secret)):
        return None
    return None if key.revoked_at is not None else key


def get_key(session: Session, key_id: int) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise KeyNotFound(f"no API key #{key_id} (`renown keys list` shows them)")
    return key


def list_keys(session: Session, *, include_revoked: bool = True) -> Sequence[ApiKey]:
    """Every key, oldest first."""
    query = select(ApiKey).order_by(ApiKey.id)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    return session.scalars(query).all()


def revoke_key(session: Session, key_id: int, *, now: datetime | None = None) -> ApiKey:
    """Revoke a key: refused from the next request on. Idempotent: revoking a revoked key
    keeps its first ``revoked_at`` (a re-run script changes nothing). Unknown id:
    :class:`KeyNotFound`."""
    key = get_key(session, key_id)
    if key.revoked_at is None:
        key.revoked_at = now or _now()
        session.flush()
    return key


def touch_key(
    session: Session,
    key_id: int,
    *,
    now: datetime | None = None,
    every: timedelta = timedelta(minutes=1),
) -> bool:
    """Record that a key was used, unless that was recorded less than ``every`` ago (by
    any process: the condition is in the UPDATE). True if the row changed."""
    at = now or _now()
    result = session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id)
        .where(or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at <= at - every))
        .values(last_used_at=at)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))
