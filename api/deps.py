"""What routes receive: the settings, the database, a read session per request."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI, Request
from sqlalchemy.orm import Session

from api.epoch_cache import EpochCache
from renown.bootstrap import Database
from renown.settings import Settings
from storage.uow import UnitOfWork

__all__ = ["app_state", "database", "epoch_cache", "epoch_cache_of", "read_session", "settings"]

_state_lock = threading.Lock()


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


def app_state(app: FastAPI, name: str, make: Callable[[], Any]) -> Any:
    """A per-app object (``app.state.<name>``) created on first use, once, under a lock:
    create_app needs no wiring for it, and a test may set its own beforehand."""
    state = app.state
    value = getattr(state, name, None)
    if value is None:
        with _state_lock:
            value = getattr(state, name, None)
            if value is None:
                value = make()
                setattr(state, name, value)
    return value


def epoch_cache_of(app: FastAPI) -> EpochCache:
    """The app's in-memory copy of the latest epoch (api/epoch_cache.py), on its database
    (``app.state.db``) and settings."""

    def make() -> EpochCache:
        config: Settings = app.state.settings
        return EpochCache(
            app.state.db.sessions, ttl=config.api_cache_ttl, max_rows=config.api_cache_rows
        )

    cache: EpochCache = app_state(app, "epoch_cache", make)
    return cache


def epoch_cache(request: Request) -> EpochCache:
    return epoch_cache_of(request.app)
