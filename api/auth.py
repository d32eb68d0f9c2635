"""Who is calling: API keys, roles, and the per-client rate limit.

Callers
    No key: the public, limited per client IP to ``api_rate_public`` requests a minute.
    A key (``Authorization: Bearer rk_...`` or ``X-API-Key: rk_...``): its owner, with
    its role (``reader`` < ``moderator`` < ``admin``, each allowed what the ones before it
    are), limited per key to ``api_rate_key`` a minute. A key that is malformed, unknown
    or revoked is refused with 401 ``invalid_key``, never served as public: a client whose
    key stopped working must find out, not silently drop to the public limit. Keys are
    created and revoked with ``renown keys`` (renown/keys_cli.py) and stored hashed
    (storage/keys_repo.py). A key is looked up (a unique-index read, never the writer)
    and, once found valid, trusted by this process for ``api_key_ttl`` seconds (default
    5): a marketplace's key then costs no database read per request, and a revocation
    applies within that time. Keys not found valid are looked up on every request, so a
    new key works at once.

Dependencies for routes
    :func:`principal` (who), :func:`require_role` (401 ``key_required`` without a key,
    403 ``forbidden`` with a key of a lesser role), :func:`rate_limited` (429
    ``rate_limited``). Every response of a rate-limited route carries
    ``X-RateLimit-Limit`` and ``X-RateLimit-Remaining``; a 429 also ``Retry-After``
    (seconds). Error responses of such a route carry them too when the app has
    :class:`RateLimitHeaders` installed.

The limiter is per process
    A token bucket per client in this process's memory: a full minute's allowance may
    be spent at once, then it refills evenly. With N uvicorn workers (``api_workers``)
    or N replicas, each keeps its own buckets, so a client may make up to N times the
    configured rate; a shared store (Redis ``INCR``/``EXPIRE``, or the limiter of the
    proxy in front) is the fix when that matters. Buckets idle for a minute are full,
    so they are dropped; memory is bounded by the clients of the last minute.

Client address
    The public limit is keyed by the socket peer's address (``request.client``); an
    IPv6 address by its /64, which one subscriber usually holds whole. This module
    never reads ``X-Forwarded-For``: anyone can send it. Behind a reverse proxy, let
    uvicorn rewrite the peer from the proxy's header for the proxy's address only
    (``--forwarded-allow-ips``, which trusts 127.0.0.1 by default); otherwise every
    client behind the proxy shares one bucket.

``last_used_at`` of a key is written at most once a minute per key and process, after
the response has been sent, so a busy key does not cost a write per request.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import BackgroundTasks, Depends, Request, Response
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import app_state
from api.errors import ApiError
from storage.keys_repo import ROLES, hash_secret, touch_key, verify_key
from storage.uow import UnitOfWork

__all__ = [
    "PUBLIC",
    "KnownKeys",
    "Principal",
    "RateLimitHeaders",
    "RateLimiter",
    "principal",
    "rate_limited",
    "require_role",
]

log = logging.getLogger("renown.api.auth")

PUBLIC = "public"
#: Each role may do what the roles before it may.
RANKS = {PUBLIC: 0, **{role: i + 1 for i, role in enumerate(ROLES)}}
_WWW_AUTHENTICATE = {"WWW-Authenticate": 'Bearer realm="renown"'}
_STATE_HEADERS = "renown_rate_limit_headers"


@dataclass(frozen=True)
class Principal:
    """The caller of a request: a key's owner and role, or the public."""

    key_id: int | None
    owner: str | None
    role: str  # public | reader | moderator | admin
    client: str  # what the rate limit counts: "key:<id>" or "ip:<address>"

    @property
    def is_public(self) -> bool:
        return self.key_id is None

    def has_role(self, role: str) -> bool:
        # A role this code does not know (a row edited by hand) grants nothing.
        return RANKS.get(self.role, 0) >= RANKS[role]


# --- the rate limiter -------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int  # requests per minute
    remaining: int
    retry_after: int  # seconds until the next request is allowed (0 when allowed)

    def headers(self) -> dict[str, str]:
        out = {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(self.remaining)}
        if not self.allowed:
            out["Retry-After"] = str(self.retry_after)
        return out


class RateLimiter:
    """Token buckets per client, in this process: ``limit`` requests per minute, a full
    minute's worth at once at most. Thread-safe (sync routes run in a thread pool)."""

    PRUNE_EVERY_S = 60.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        # client -> (tokens, capacity, last update)
        self._buckets: dict[str, tuple[float, int, float]] = {}
        self._pruned = clock()

    def __len__(self) -> int:
        return len(self._buckets)

    def hit(self, client: str, limit: int) -> Decision:
        """Spend one request of ``client``'s allowance, if there is one."""
        rate = limit / 60.0
        with self._lock:
            now = self._clock()
            tokens, capacity, last = self._buckets.get(client, (float(limit), limit, now))
            if capacity != limit:  # the limit changed: keep the share left
                tokens, capacity = tokens * limit / capacity, limit
            tokens = min(float(limit), tokens + (now - last) * rate)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[client] = (tokens, limit, now)
            if now - self._pruned >= self.PRUNE_EVERY_S:
                self._prune(now)
        retry = 0 if allowed else max(1, math.ceil((1.0 - tokens) / rate))
        return Decision(allowed, limit, int(tokens), retry)

    def _prune(self, now: float) -> None:
        # A bucket untouched for a minute has refilled: the same as no bucket.
        self._buckets = {c: b for c, b in self._buckets.items() if now - b[2] < self.PRUNE_EVERY_S}
        self._pruned = now


def limiter_of(request: Request) -> RateLimiter:
    """The app's limiter; a test may set ``app.state.rate_limiter`` to one with its clock."""
    limiter: RateLimiter = app_state(request.app, "rate_limiter", RateLimiter)
    return limiter


def _too_many(decision: Decision, who: str, hint: str) -> ApiError:
    return ApiError(
        429,
        "rate_limited",
        f"more than {decision.limit} requests per minute from {who}",
        f"retry in {decision.retry_after} s; {hint}",
        headers=decision.headers(),
    )


# --- who is calling ---------------------------------------------------------------------


def client_address(request: Request) -> str:
    """The socket peer's address (IPv6: its /64). X-Forwarded-For is not read: see the
    module docstring."""
    host = request.client.host if request.client else "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _presented_key(request: Request) -> str | None:
    """The key in ``Authorization: Bearer`` or ``X-API-Key``; None if neither is sent."""
    keys: set[str] = set()
    auth = request.headers.get("authorization")
    if auth is not None:
        scheme, _, value = auth.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise _invalid(
                "the Authorization header is not 'Bearer <key>'",
                "send 'Authorization: Bearer rk_...' or 'X-API-Key: rk_...'",
            )
        keys.add(value.strip())
    api_key = request.headers.get("x-api-key")
    if api_key is not None:
        keys.add(api_key.strip())
    if len(keys) > 1:
        raise _invalid(
            "two different keys in Authorization and X-API-Key", "send one key, in one header"
        )
    return keys.pop() if keys else None


def _invalid(message: str, hint: str) -> ApiError:
    return ApiError(401, "invalid_key", message, hint, headers=_WWW_AUTHENTICATE)


class _Touched:
    """When this process last recorded each key's use (``last_used_at``)."""

    EVERY_S = 60.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._at: dict[int, float] = {}

    def due(self, key_id: int) -> bool:
        now = time.monotonic()
        with self._lock:
            if now - self._at.get(key_id, -math.inf) < self.EVERY_S:
                return False
            self._at[key_id] = now
            return True


def _record_use(sessions: sessionmaker[Session], key_id: int) -> None:
    """Best effort, after the response: a failure costs a stale ``last_used_at`` only."""
    try:
        with UnitOfWork(sessions) as uow:
            touch_key(uow.session, key_id)
            uow.commit()
    except SQLAlchemyError as exc:
        log.warning("could not record the use of API key #%s: %s", key_id, exc)


class KnownKeys:
    """Keys this process verified, by the secret's hash, each trusted for ``ttl`` s."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl, self._clock = ttl, clock
        self._lock = threading.Lock()
        self._keys: dict[str, tuple[Principal, float]] = {}

    def get(self, digest: str) -> Principal | None:
        with self._lock:
            hit = self._keys.get(digest)
            if hit is None:
                return None
            if self._clock() >= hit[1]:
                del self._keys[digest]
                return None
            return hit[0]

    def put(self, digest: str, who: Principal) -> None:
        if self._ttl <= 0:
            return
        now = self._clock()
        with self._lock:
            if len(self._keys) > 10_000:  # only valid keys get here; bound it anyway
                self._keys = {d: h for d, h in self._keys.items() if h[1] > now}
            self._keys[digest] = (who, now + self._ttl)


def _look_up(sessions: sessionmaker[Session], secret: str) -> Principal | None:
    with UnitOfWork(sessions) as uow:
        key = verify_key(uow.session, secret)
        if key is None:
            return None
        return Principal(key.id, key.owner, key.role, f"key:{key.id}")


async def principal(request: Request, background: BackgroundTasks) -> Principal:
    """The caller: the public, or the owner of a valid key (401 ``invalid_key`` for a key
    that is malformed, unknown or revoked). Async: the public and known keys are told
    apart without a thread hop or a database read."""
    address = client_address(request)
    try:
        secret = _presented_key(request)
        if secret is None:
            return Principal(None, None, PUBLIC, f"ip:{address}")
        known = app_state(
            request.app, "known_keys", lambda: KnownKeys(request.app.state.settings.api_key_ttl)
        )
        digest = hash_secret(secret)
        who: Principal | None = known.get(digest)
        if who is None:
            who = await run_in_threadpool(_look_up, request.app.state.db.sessions, secret)
            if who is None:
                raise _invalid(
                    "the API key is not valid: unknown, revoked or mistyped",
                    "check the key; the operator can list keys with `renown keys list`",
                )
            known.put(digest, who)
    except ApiError:
        # A refused key counts against its address's public allowance: guessing keys is
        # throttled like anonymous traffic (it is hopeless anyway: 256-bit keys).
        decision = limiter_of(request).hit(
            f"ip:{address}", request.app.state.settings.api_rate_public
        )
        if not decision.allowed:
            raise _too_many(decision, address, "send a valid key") from None
        raise
    assert who.key_id is not None
    if app_state(request.app, "key_usage", _Touched).due(who.key_id):
        background.add_task(_record_use, request.app.state.db.writer_sessions, who.key_id)
    return who


def require_role(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting keys with one of ``roles`` or a higher one: 401
    ``key_required`` without a key, 403 ``forbidden`` for a lesser role."""
    unknown = [r for r in roles if r not in ROLES]
    if not roles or unknown:
        raise ValueError(f"require_role needs roles among {ROLES}, got {list(roles)}")
    lowest = min(roles, key=RANKS.__getitem__)
    needed = " or ".join(r for r in ROLES if RANKS[r] >= RANKS[lowest])

    async def check(who: Annotated[Principal, Depends(principal)]) -> Principal:
        if who.is_public:
            raise ApiError(
                401,
                "key_required",
                f"this call needs an API key with role {needed}",
                "send it as 'Authorization: Bearer rk_...'; the operator creates keys "
                "with `renown keys create`",
                headers=_WWW_AUTHENTICATE,
            )
        if not who.has_role(lowest):
            raise ApiError(
                403,
                "forbidden",
                f"this call needs role {needed}; key #{who.key_id} ({who.owner}) has role "
                f"{who.role}",
                "ask the operator for a key with that role",
            )
        return who

    check.__name__ = f"require_{lowest}"
    return check


async def rate_limited(
    request: Request,
    response: Response,
    who: Annotated[Principal, Depends(principal)],
) -> Principal:
    """Spend one request of the caller's allowance: 429 ``rate_limited`` when none is left."""
    settings = request.app.state.settings
    limit = settings.api_rate_public if who.is_public else settings.api_rate_key
    decision = limiter_of(request).hit(who.client, limit)
    headers = decision.headers()
    setattr(request.state, _STATE_HEADERS, headers)
    if not decision.allowed:
        if who.is_public:
            raise _too_many(
                decision,
                who.client.removeprefix("ip:"),
                "an API key raises the limit (docs/api.md)",
            )
        raise _too_many(
            decision, f"key #{who.key_id}", "ask the operator about a higher RENOWN_API_RATE_KEY"
        )
    response.headers.update(headers)
    return who


class RateLimitHeaders:
    """ASGI middleware: the rate-limit headers also on the error responses of a
    rate-limited route (``app.add_middleware(RateLimitHeaders)``). Without it they are on
    its successful responses and on 429s only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                state = scope.get("state") or {}
                extra = state.get(_STATE_HEADERS)
                if extra:
                    headers = MutableHeaders(scope=message)
                    for name, value in extra.items():
                        if name.lower() not in headers:
                            headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
