"""Engines and sessions for SQLite (embedded default) and PostgreSQL (production).

The URL is the only thing that differs between the two; dialect quirks are handled
here once so that repositories stay portable.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


class DatabaseUnavailable(RuntimeError):
    """The database could not be reached or refused us; the message says which and how."""


def normalise_url(url: str) -> str:
    """Use psycopg 3 for bare ``postgresql://`` URLs (SQLAlchemy would pick psycopg2)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, *, echo: bool = False, **kwargs: Any) -> Engine:
    """Create an engine with the settings each dialect needs for safe concurrent use."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, echo=echo, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, **kwargs)


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # Take transaction control from pysqlite so that our own BEGIN (below) is used.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


WRITE_LOCK_OPTION = "renown_sqlite_write_lock"


def _sqlite_on_begin(conn: Any) -> None:
    # Writers take SQLite's write lock up front (BEGIN IMMEDIATE) so that two writers wait
    # for each other instead of failing to upgrade a read lock; readers begin deferred and
    # never queue behind a writer (WAL lets them read the last committed state).
    writer = conn.get_execution_options().get(WRITE_LOCK_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")


def make_session_factory(engine: Engine, *, writer: bool = False) -> sessionmaker[Session]:
    """Sessions for reading, or (``writer=True``) for transactions that will write."""
    bind = engine.execution_options(**{WRITE_LOCK_OPTION: True}) if writer else engine
    return sessionmaker(bind, expire_on_commit=False)


def describe(url: str) -> str:
    """The URL without its password, for logs and error messages."""
    return make_url(normalise_url(url)).render_as_string(hide_password=True)
