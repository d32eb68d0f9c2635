"""What routes receive: the settings, the database, a read session per request."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from fastapi import Request
from sqlalchemy.orm import Session

from api.epoch_cache import EpochCache
from renown.bootstrap import Database
from renown.settings import Settings
from storage.uow import UnitOfWork

__all__ = ["database", "epoch_cache", "read_session", "settings"]

_cache_lock = threading.Lock()


def settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def database(request: Request) -> Database:
    return request.app.state.db  # type: ignore[no-any-return]


def read_session(request: Request) -> Iterator[Session]:
    """One read transaction per request: every figure of a response comes from the same
    snapshot of the database (PostgreSQL's REPEATABLE READ is not needed: each route's
    reads are keyed by one epoch number, which never changes once written)."""
    with UnitOfWork(database(request).sessions) as uow:
        yield uow.session


def epoch_cache(request: Request) -> EpochCache:
    """The app's in-memory copy of the latest epoch (api/epoch_cache.py), made on first
    use: an app handed a database by a test works without its lifespan having run."""
    state = request.app.state
    cache: EpochCache | None = getattr(state, "epoch_cache", None)
    if cache is None:
        with _cache_lock:
            cache = getattr(state, "epoch_cache", None)
            if cache is None:
                config: Settings = state.settings
                cache = EpochCache(
                    database(request).sessions,
                    ttl=config.api_cache_ttl,
                    max_rows=config.api_cache_rows,
                )
                state.epoch_cache = cache
    return cache
