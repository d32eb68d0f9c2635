"""What routes receive: the settings, the database, a read session per request."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import Request
from sqlalchemy.orm import Session

from renown.bootstrap import Database
from renown.settings import Settings
from storage.uow import UnitOfWork

__all__ = ["database", "read_session", "settings"]


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
