"""The OpenAPI document, fuzzed (schemathesis): every operation, with valid and invalid
input, answers without a server error and as its schema says (a documented status code,
the documented content type, a body matching the schema, documented headers), and
rejects invalid input with a 4xx.

How: the schema is the app's own ``/openapi.json`` (``app.openapi()``), and cases go to
the app in-process (schemathesis's ASGI transport: no server, no socket). Each operation
is a test, run against an app built by ``create_app`` on a scored small world (two
epochs, a snapshot, an open flag), on SQLite and on PostgreSQL. Every request carries a
moderator's key, so the moderation routes are exercised past their 401. Rate limits are
raised out of the way: a 429 is documented, but would hide what the fuzzer is after.

Deterministic: a fixed seed, Hypothesis's ``derandomize`` and no example database, so CI
runs the same cases every time; ``MAX_EXAMPLES`` per operation bounds the run time.

Why not ``schemathesis.pytest.from_fixture`` (an app per fixture): with pytest 9.2 it
fails before running anything (it sets ``Function._nodeid``, which pytest 9.2 no longer
has). Nor ``openapi.from_asgi``: it starts the app's lifespan, which opens the app's
database, and keeps it running until the process exits. So the schema is loaded at import
from an app that is never started, and each case is sent to the fixture's app
(``call_and_validate(app=...)``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from ingest.decode import is_account_id
from renown import bootstrap
from renown.settings import Settings
from storage.db import make_engine, make_session_factory
from storage.keys_repo import create_key
from storage.migrate import upgrade
from storage.scoring_repo import domain_sizes, latest_epoch, top_scores
from storage.uow import UnitOfWork
from tests.conftest import _truncate_pg
from tests.worlds import apply_world, score

SEED = 413_2024
MAX_EXAMPLES = 25  # per operation, in the fuzzing phase (the coverage phase adds its own)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]


def _config() -> schemathesis.Config:
    config = schemathesis.Config(seed=SEED)
    config.projects.default.generation.update(
        max_examples=MAX_EXAMPLES, deterministic=True, database="none"
    )
    return config


# The document the app serves at /openapi.json, from an app that is never started (it
# opens no database); each case is sent to the fixture's app.
schema = schemathesis.openapi.from_dict(
    create_app(Settings(database_url="sqlite://")).openapi(), config=_config()
)


@dataclass
class Known:
    """Accounts and domains of the world under test (the fixture fills them in)."""

    accounts: list[str] = field(default_factory=list)
    domains: list[str] = field(default_factory=list)


KNOWN = Known()


# Random account ids and domain names are unknown to any world: without these hooks every
# read would be a 404, and no 200 body of a score or standing route would be checked
# against its schema. Half the valid values (path and query) are swapped for ones the
# world holds; values that are invalid already (negative cases) are left alone, so they
# stay invalid.
def _swapped(values: dict[str, Any] | None) -> st.SearchStrategy[dict[str, Any] | None]:
    swaps: list[dict[str, Any]] = []
    if values and is_account_id(values.get("account")):
        swaps += [{**values, "account": a} for a in KNOWN.accounts]
    if values and isinstance(values.get("domain"), str) and len(values["domain"]) <= 64:
        swaps += [{**values, "domain": d} for d in KNOWN.domains]
    return st.one_of(st.just(values), st.sampled_from(swaps)) if swaps else st.just(values)


@schema.hook
def flatmap_path_parameters(
    _context: schemathesis.HookContext, params: dict[str, Any] | None
) -> st.SearchStrategy[dict[str, Any] | None]:
    return _swapped(params)


@schema.hook
def flatmap_query(
    _context: schemathesis.HookContext, query: dict[str, Any] | None
) -> st.SearchStrategy[dict[str, Any] | None]:
    return _swapped(query)


@schema.hook
def flatmap_body(_context: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
    """A body's ``accounts`` (a batch, a flag raised by hand) with known accounts: in front
    of the generated ones, or instead of them when those are all valid (an invalid one is
    kept, so that a negative case stays negative)."""
    accounts = body.get("accounts") if isinstance(body, dict) else None
    if not (isinstance(accounts, list) and accounts and KNOWN.accounts):
        return st.just(body)
    known = st.lists(st.sampled_from(KNOWN.accounts), min_size=1, max_size=3, unique=True)
    options = [st.just(body), known.map(lambda ks: {**body, "accounts": ks + accounts})]
    if all(is_account_id(a) for a in accounts):
        options.append(known.map(lambda ks: {**body, "accounts": ks}))
    return st.one_of(options)


@dataclass(frozen=True)
class Target:
    app: FastAPI
    headers: dict[str, str]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    """The API on a scored small world, and a moderator's key (one world per database for
    every operation: setting one up costs more than fuzzing an operation)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'renown.db'}"
        engine = make_engine(url)
        upgrade(engine)
    else:
        url = request.getfixturevalue("pg_schema_url")
        engine = make_engine(url)
        _truncate_pg(engine)
    seeds = apply_world(url, preset="small", seed=3)
    score(url, seeds, epochs=2)
    with UnitOfWork(make_session_factory(engine, writer=True)) as uow:
        _, secret = create_key(uow.session, "fuzz-moderator", "moderator")
        uow.commit()
        latest = latest_epoch(uow.session)
        assert latest is not None
        KNOWN.domains = sorted(domain_sizes(uow.session, latest.epoch))
        KNOWN.accounts = sorted(
            {"sv00.near"}  # the serial voter: an open flag
            | {
                r.account
                for d in KNOWN.domains
                for r in top_scores(uow.session, latest.epoch, d, 3, 0)
            }
        )
    engine.dispose()

    settings = Settings(database_url=url, seeds=seeds, api_rate_public=10**6, api_rate_key=10**7)
    db = bootstrap.open_database(settings)
    try:
        yield Target(create_app(settings, db=db), {"Authorization": f"Bearer {secret}"})
    finally:
        db.close()
        KNOWN.accounts, KNOWN.domains = [], []
        if request.param == "sqlite":
            Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)


@schema.parametrize()
def test_every_operation_answers_as_the_schema_says(
    case: schemathesis.Case, target: Target
) -> None:
    response = case.call_and_validate(app=target.app, headers=target.headers, checks=CHECKS)
    # The moderator's key admits every route, and the limits are out of reach: a 401, 403
    # or 429 would mean the fuzzer is testing the fixture, not the routes. The contributor
    # routes are the exception for 401/403: a random NEP-413 signature is refused, as it
    # must be (tests/test_api_nep413.py signs real ones).
    signed = case.path.endswith("/appeal") or case.path.endswith("/flags/private")
    refused = (429,) if signed else (401, 403, 429)
    assert response.status_code not in refused, response.text
