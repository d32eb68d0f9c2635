"""Shared fixtures: real databases (SQLite file and the machine's PostgreSQL) and a real broker.

PostgreSQL is required, not optional: if it is down the tests fail with a message
saying how to start it (``.ci/run`` starts it), they are never skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from renown.broker import EmbeddedBroker
from storage.db import make_engine
from storage.migrate import upgrade
from storage.models import Base

PG_BASE_URL = os.environ.get(
    "RENOWN_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _pg_reachable() -> None:
    try:
        engine = create_engine(PG_BASE_URL)
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
    except Exception as exc:
        pytest.fail(
            f"PostgreSQL at {PG_BASE_URL} is not reachable ({exc}). Start it with "
            "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` "
            "or set RENOWN_TEST_PG_URL.",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def pg_schema_url() -> Iterator[str]:
    """A private, migrated schema in the test database for this test session."""
    _pg_reachable()
    schema = f"renown_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_BASE_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_BASE_URL else "?"
    url = f"{PG_BASE_URL}{sep}options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def _truncate_pg(engine: Engine) -> None:
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database URL: a SQLite file, then the machine's PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'renown.db'}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
    else:
        yield request.getfixturevalue("pg_url")


@pytest.fixture
def pg_url(pg_schema_url: str) -> str:
    """The session's PostgreSQL schema, emptied for this test."""
    engine = make_engine(pg_schema_url)
    _truncate_pg(engine)
    engine.dispose()
    return pg_schema_url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """One embedded Kafka-protocol broker (tansu) for the test session, on a free port."""
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    with EmbeddedBroker(log_path=log) as b:
        yield b
