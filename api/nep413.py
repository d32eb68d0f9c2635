"""Contributors sign in with their NEAR account: NEP-413 signed messages.

What a client sends
    What a wallet's ``signMessage`` returns (``accountId``, ``publicKey``, ``signature``)
    and what it was asked to sign (``message``, ``nonce``, ``recipient``, and
    ``callbackUrl`` when a browser wallet was given one, since the wallet signs it too).
    The ``message`` is a JSON object, as text, naming what the signature allows::

        {"action": "appeal", "account": "alice.near", "flag": 7,
         "statement_sha256": "<hex sha256 of the statement's UTF-8>",
         "issued_at": "2026-11-26T09:00:00Z"}
        {"action": "view_flags", "account": "alice.near", "issued_at": 1795683600}

    so a signature for one appeal is no signature for another appeal, another flag,
    another account or another action.

What is checked, in this order (the cheap checks first, the chain last)
    1. ``recipient`` is this deployment's (:func:`recipient_for`), 401 ``invalid_message``;
       and ``accountId`` is the account of the route, 401 ``invalid_message``.
    2. The ed25519 signature over ``sha256(borsh(u32 2**31+413) || borsh(payload))``
       (:func:`payload_bytes`), 401 ``invalid_signature``; a key or signature that does
       not decode is refused the same way.
    3. The message says the action, the account and the route's details (flag, statement
       hash), 401 ``invalid_message``.
    4. ``issued_at`` (Unix seconds, or ISO 8601 with a zone) lies in the last
       :data:`REPLAY_WINDOW_S` seconds (:data:`CLOCK_SKEW_S` of clock skew allowed ahead),
       401 ``stale_message``.
    5. The nonce (with the key) was not used within the window, 401 ``replayed_message``.
    6. The key is a full-access key of the account on chain (chain/access_keys.py), 403
       ``not_a_full_access_key``; the node not answering is 503 ``chain_unavailable`` (the
       nonce is then released, so the same signed message may be sent again).

The replay guard is shared
    A nonce is reserved in the database (``used_nonces``, storage/nonces_repo.py) in a
    transaction of its own before the chain is asked about the key: every API worker and
    replica on the same database refuses its second use. :class:`ReplayGuard` (memory
    only) remains for a single process without a database, and for tests.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import struct
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import base58
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session, sessionmaker

from api.errors import ApiError
from chain.access_keys import full_access_keys
from chain.client import ChainUnavailable
from renown.settings import Settings
from storage import nonces_repo
from storage.uow import UnitOfWork

__all__ = [
    "CLOCK_SKEW_S",
    "DEFAULT_RECIPIENT",
    "REPLAY_WINDOW_S",
    "TAG",
    "DatabaseReplayGuard",
    "Replay",
    "ReplayGuard",
    "SignedMessage",
    "Verified",
    "payload_bytes",
    "payload_hash",
    "recipient_for",
    "statement_sha256",
    "verify_signed_message",
]

#: NEP-413's prefix tag, 2**31 + 413: a payload that starts with it is no transaction.
TAG = 2**31 + 413
#: How old a signed message may be (seconds); its nonce is remembered as long.
REPLAY_WINDOW_S = 300
#: How far ahead of this server's clock ``issued_at`` may lie (the client's clock).
CLOCK_SKEW_S = 30
#: The recipient when no contract is configured.
DEFAULT_RECIPIENT = "renown"
_WWW_AUTHENTICATE = {"WWW-Authenticate": 'NEP413 realm="renown"'}
_FORMAT_HINT = "docs/api.md, 'Contributors: signing in with NEP-413', shows the message format"


def recipient_for(settings: Settings) -> str:
    """The ``recipient`` a signed message must name: ``nep413_recipient`` when set (a
    deployment without a contract, or one whose users know it by its web address),
    else the snapshot contract's account, else ``renown``. A signature names the service
    it was made for, so it cannot be replayed against another deployment; two
    deployments should not share a recipient."""
    return settings.nep413_recipient or settings.contract_id or DEFAULT_RECIPIENT


class SignedMessage(BaseModel):
    """A wallet's ``signMessage`` output with what it signed (field names as wallets
    write them)."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    account_id: str = Field(alias="accountId", min_length=2, max_length=64)
    public_key: str = Field(
        alias="publicKey", max_length=128, description="ed25519:<base58 of 32 bytes>"
    )
    signature: str = Field(max_length=128, description="base64 of the 64-byte signature")
    message: str = Field(max_length=8192, description="the signed JSON message, as text")
    nonce: str = Field(max_length=64, description="base64 of the 32-byte nonce")
    recipient: str = Field(max_length=256)
    callback_url: str | None = Field(
        default=None,
        alias="callbackUrl",
        max_length=2048,
        description="only when the wallet was given one (it is part of what is signed)",
    )
    state: str | None = Field(
        default=None, max_length=2048, description="a browser wallet's state; not checked"
    )


# --- the payload ------------------------------------------------------------------------


def _borsh_string(text: str) -> bytes:
    data = text.encode("utf-8")
    return struct.pack("<I", len(data)) + data


def payload_bytes(
    message: str, nonce: bytes, recipient: str, callback_url: str | None = None
) -> bytes:
    """What is hashed and signed: the borsh u32 tag, then the borsh ``Payload`` struct
    ``{message: String, nonce: [u8; 32], recipient: String, callbackUrl: Option<String>}``."""
    if len(nonce) != 32:
        raise ValueError(f"a NEP-413 nonce is 32 bytes, not {len(nonce)}")
    callback = b"\x00" if callback_url is None else b"\x01" + _borsh_string(callback_url)
    return (
        struct.pack("<I", TAG)
        + _borsh_string(message)
        + nonce
        + _borsh_string(recipient)
        + callback
    )


def payload_hash(
    message: str, nonce: bytes, recipient: str, callback_url: str | None = None
) -> bytes:
    """The SHA-256 of :func:`payload_bytes`: what the ed25519 key signs."""
    return hashlib.sha256(payload_bytes(message, nonce, recipient, callback_url)).digest()


def statement_sha256(statement: str) -> str:
    """The hex SHA-256 of an appeal statement's UTF-8, as the signed message names it."""
    return hashlib.sha256(statement.encode("utf-8")).hexdigest()


# --- the replay guard -------------------------------------------------------------------


class ReplayGuard:
    """Nonces seen in the last window, in this process (thread-safe)."""

    def __init__(self, window_s: float = REPLAY_WINDOW_S + CLOCK_SKEW_S) -> None:
        self.window_s = window_s
        self._lock = threading.Lock()
        self._seen: dict[tuple[bytes, bytes], float] = {}  # (key, nonce) -> forget after

    @property
    def remembered(self) -> int:
        """How many nonces are remembered (expired ones are dropped on the next use)."""
        return len(self._seen)

    def reserve(self, key: bytes, nonce: bytes, now: float) -> bool:
        """Record the nonce; False when it was already recorded within the window."""
        with self._lock:
            self._seen = {k: until for k, until in self._seen.items() if until > now}
            if (key, nonce) in self._seen:
                return False
            self._seen[(key, nonce)] = now + self.window_s
            return True

    def release(self, key: bytes, nonce: bytes) -> None:
        """Forget a nonce whose request could not be completed (the chain did not answer)."""
        with self._lock:
            self._seen.pop((key, nonce), None)


class DatabaseReplayGuard:
    """Nonces reserved in the database: one use across every process on it."""

    def __init__(
        self, writer: sessionmaker[Session], window_s: float = REPLAY_WINDOW_S + CLOCK_SKEW_S
    ) -> None:
        self._writer = writer
        self.window_s = window_s

    def reserve(self, key: bytes, nonce: bytes, now: float) -> bool:
        at = datetime.fromtimestamp(now, UTC)
        with UnitOfWork(self._writer) as uow:
            fresh = nonces_repo.reserve_nonce(
                uow.session, key, nonce, now=at, until=at + timedelta(seconds=self.window_s)
            )
            if fresh:
                uow.commit()
        return fresh

    def release(self, key: bytes, nonce: bytes) -> None:
        with UnitOfWork(self._writer) as uow:
            nonces_repo.release_nonce(uow.session, key, nonce)
            uow.commit()


class Replay(Protocol):
    """What verification needs of a replay guard."""

    def reserve(self, key: bytes, nonce: bytes, now: float) -> bool: ...

    def release(self, key: bytes, nonce: bytes) -> None: ...


# --- verification -----------------------------------------------------------------------


@dataclass(frozen=True)
class Verified:
    """A signed message that passed every check: who signed, with which key, what."""

    account: str
    public_key: str  # ed25519:<base58>, as NEAR writes it
    message: dict[str, Any]

    @property
    def via(self) -> str:
        """What the audit log records the action came through."""
        return f"nep413 {self.public_key}"


def _unauthorized(code: str, message: str, hint: str) -> ApiError:
    return ApiError(401, code, message, hint, headers=_WWW_AUTHENTICATE)


def _bad_signature(message: str) -> ApiError:
    return _unauthorized(
        "invalid_signature",
        message,
        "sign the message, nonce and recipient with the account's full-access key "
        "(NEP-413) and send them exactly as signed",
    )


def _bad_message(message: str) -> ApiError:
    return _unauthorized("invalid_message", message, _FORMAT_HINT)


def _b64(text: str, what: str) -> bytes:
    """Standard or URL-safe base64, padded or not."""
    cleaned = text.strip().replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise _bad_signature(f"{what} is not base64") from None


def _public_key(text: str) -> tuple[bytes, str]:
    """The 32 key bytes and the key as NEAR writes it (``ed25519:<base58>``)."""
    kind, sep, encoded = text.strip().partition(":")
    if not sep or kind != "ed25519":
        raise _bad_signature(f"publicKey {text!r:.80} is not an ed25519:<base58> key")
    try:
        raw = base58.b58decode(encoded)
    except ValueError:
        raise _bad_signature("publicKey is not base58 after 'ed25519:'") from None
    if len(raw) != 32:
        raise _bad_signature(f"publicKey is {len(raw)} bytes, an ed25519 key is 32")
    return raw, "ed25519:" + base58.b58encode(raw).decode()


def _issued_at(value: Any) -> float:
    """Unix seconds (a number) or ISO 8601 with a zone (a string)."""
    if isinstance(value, bool):
        raise _bad_message("issued_at must be Unix seconds or an ISO 8601 time with a zone")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise _bad_message("issued_at is not a finite number")
        return float(value)
    if isinstance(value, str):
        try:
            at = datetime.fromisoformat(value.strip())
        except ValueError:
            raise _bad_message(f"issued_at {value!r:.60} is not an ISO 8601 time") from None
        if at.tzinfo is None:
            raise _bad_message("issued_at needs a zone (e.g. 2026-11-26T09:00:00Z)")
        return at.timestamp()
    raise _bad_message("issued_at must be Unix seconds or an ISO 8601 time with a zone")


def _same(got: Any, want: Any) -> bool:
    """The message's value is the route's (a flag id may be written as a number or text;
    hex digests in either case)."""
    if isinstance(got, bool) or isinstance(want, bool):
        return got is want
    if isinstance(want, int):
        return (isinstance(got, int) and got == want) or (isinstance(got, str) and got == str(want))
    if isinstance(want, str) and isinstance(got, str):
        return got.lower() == want.lower()
    return bool(got == want)


def verify_signed_message(
    signed: SignedMessage,
    *,
    account: str,
    action: str,
    expected: Mapping[str, Any] | None = None,
    recipient: str,
    rpc_url: str,
    replay: Replay,
    now: float | None = None,
    keys_of: Callable[[str, str], set[str]] = full_access_keys,
) -> Verified:
    """Check ``signed`` as the module docstring says, for ``action`` by ``account`` with
    the message naming ``expected`` (e.g. ``{"flag": 7, "statement_sha256": ...}``); the
    :class:`Verified` signer, or an :class:`ApiError` with the documented code.

    ``keys_of(rpc_url, account)`` gives the account's full-access keys (the chain by
    default); ``now`` (Unix seconds) is for tests."""
    now = time.time() if now is None else now
    # 1. addressed to us, by the account of the route
    if signed.recipient != recipient:
        raise _bad_message(
            f"the message is for recipient {signed.recipient!r:.80}; this service is {recipient!r}"
        )
    if signed.account_id != account:
        raise _bad_message(f"signed by {signed.account_id!r}, for the account {account!r}")
    # 2. the signature
    key, key_text = _public_key(signed.public_key)
    nonce = _b64(signed.nonce, "nonce")
    if len(nonce) != 32:
        raise _bad_signature(f"the nonce is {len(nonce)} bytes; NEP-413 nonces are 32")
    signature = _b64(signed.signature, "signature")
    if len(signature) != 64:
        raise _bad_signature(f"the signature is {len(signature)} bytes; ed25519's are 64")
    digest = payload_hash(signed.message, nonce, signed.recipient, signed.callback_url)
    try:
        VerifyKey(key).verify(digest, signature)
    except (BadSignatureError, ValueError):
        raise _bad_signature(
            f"the signature does not verify with {key_text} over this message, nonce and recipient"
        ) from None
    # 3. what was signed
    try:
        body = json.loads(signed.message)
    except ValueError:
        raise _bad_message("the signed message is not JSON") from None
    if not isinstance(body, dict):
        raise _bad_message("the signed message must be a JSON object")
    if body.get("action") != action:
        raise _bad_message(f"the signed message is for action {body.get('action')!r:.40}, "
                           f"this call is {action!r}")  # fmt: skip
    wanted = {"account": account, **(expected or {})}
    for name, value in wanted.items():
        if name not in body:
            raise _bad_message(f"the signed message has no {name!r}")
        if not _same(body[name], value):
            raise _bad_message(
                f"the signed message's {name} is {body[name]!r:.80}, this call's is {value!r}"
            )
    if "issued_at" not in body:
        raise _bad_message("the signed message has no 'issued_at'")
    issued = _issued_at(body["issued_at"])
    # 4. fresh
    if issued > now + CLOCK_SKEW_S:
        raise _unauthorized(
            "stale_message",
            f"the message was issued {issued - now:.0f} s in the future",
            "issued_at is the signing time (Unix seconds, not milliseconds); check the clock",
        )
    if issued < now - REPLAY_WINDOW_S:
        raise _unauthorized(
            "stale_message",
            f"the message was issued {now - issued:.0f} s ago; at most {REPLAY_WINDOW_S} s "
            "are accepted",
            "sign a new message with the current time and a new nonce",
        )
    # 5. not seen before
    if not replay.reserve(key, nonce, now):
        raise _unauthorized(
            "replayed_message",
            "this nonce was already used with this key",
            "sign a new message with a new random 32-byte nonce for each request",
        )
    # 6. the key is the account's, with full access
    try:
        keys = keys_of(rpc_url, account)
    except ChainUnavailable as exc:
        replay.release(key, nonce)
        raise ApiError(
            503,
            "chain_unavailable",
            f"cannot check the key against NEAR: {exc}",
            "retry later; the same signed message may be sent again within its window",
            headers={"Retry-After": "5"},
        ) from None
    if key_text not in keys:
        raise ApiError(
            403,
            "not_a_full_access_key",
            f"{key_text} is not a full-access key of {account} on chain (a function-call "
            "key, a deleted key, or another account's)",
            "sign with a full-access key of the account (NEP-413 requires one)",
        )
    return Verified(account, key_text, body)
