"""Migrations step up and down on both databases, keeping data across the step."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, inspect, text

from storage import migrate
from storage.db import make_engine
from tests.conftest import PG_BASE_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_engine(
    request: pytest.FixtureRequest, tmp_path: Path, pg_schema_url: str
) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
        yield engine
        engine.dispose()
        return
    schema = f"renown_mig_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_BASE_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(f"{PG_BASE_URL}?options=-csearch_path%3D{schema}")
    yield engine
    engine.dispose()
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def _score_columns(engine: Engine) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns("scores")}


def test_upgrade_and_downgrade_keep_the_data(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine, "0001")
    assert migrate.current_revision(empty_engine) == "0001"
    assert "confidence" not in _score_columns(empty_engine)
    with empty_engine.begin() as conn:
        conn.execute(text("INSERT INTO accounts (account_id, first_seen_ns) VALUES ('a.near', 1)"))

    migrate.upgrade(empty_engine)
    assert migrate.is_up_to_date(empty_engine)
    assert {"confidence", "explanation"} <= _score_columns(empty_engine)

    migrate.downgrade(empty_engine, "0001")
    assert "confidence" not in _score_columns(empty_engine)
    with empty_engine.connect() as conn:
        assert conn.execute(text("SELECT account_id FROM accounts")).scalar_one() == "a.near"
