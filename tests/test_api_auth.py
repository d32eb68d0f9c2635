"""API keys, roles and rate limits: storage, the `renown keys` command and the API's
dependencies, on SQLite and PostgreSQL."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from api.auth import (
    KnownKeys,
    Principal,
    RateLimiter,
    RateLimitHeaders,
    principal,
    rate_limited,
    require_role,
)
from api.errors import ApiError
from renown import cli, keys_cli
from renown.settings import Settings, SettingsError
from storage import keys_repo
from storage.db import DatabaseUnavailable, make_session_factory
from storage.keys_repo import ApiKeyError, InvalidKeyRequest, KeyNotFound
from storage.models import ApiKey
from storage.uow import UnitOfWork


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("RENOWN_"):
            monkeypatch.delenv(name)


def new_key(engine: Engine, owner: str, role: str) -> tuple[int, str]:
    with UnitOfWork(make_session_factory(engine, writer=True)) as uow:
        key, secret = keys_repo.create_key(uow.session, owner, role)
        uow.commit()
    return key.id, secret


def revoke(engine: Engine, key_id: int) -> None:
    with UnitOfWork(make_session_factory(engine, writer=True)) as uow:
        keys_repo.revoke_key(uow.session, key_id)
        uow.commit()


# --- storage ----------------------------------------------------------------------------


def test_a_key_is_stored_hashed_verified_and_revoked(engine: Engine) -> None:
    key_id, secret = new_key(engine, "acme.near", "reader")
    assert secret.startswith("rk_") and len(secret) == 3 + 43

    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM api_keys")).mappings().one()
    stored = " ".join(str(v) for v in row.values())
    assert secret not in stored and secret[3:] not in stored and secret[3:20] not in stored
    assert row["prefix"] == secret[3:11]
    assert row["secret_hash"] == keys_repo.hash_secret(secret)
    assert (row["owner"], row["role"], row["revoked_at"]) == ("acme.near", "reader", None)

    sessions = make_session_factory(engine)
    with UnitOfWork(sessions) as uow:
        found = keys_repo.verify_key(uow.session, secret)
        assert found is not None and found.id == key_id
        forged = secret[:11] + ("A" if secret[11] != "A" else "B") + secret[12:]
        assert keys_repo.verify_key(uow.session, forged) is None  # same prefix, other key
        for bad in ("", "rk_", secret[3:], secret + "x", "xx_" + secret[3:], secret[:-1]):
            assert keys_repo.verify_key(uow.session, bad) is None

    revoke(engine, key_id)
    with UnitOfWork(sessions) as uow:
        assert keys_repo.verify_key(uow.session, secret) is None
        first = uow.session.get(ApiKey, key_id)
        assert first is not None and first.revoked_at is not None
        revoked_at = first.revoked_at

    # Idempotent: a second revocation keeps the first time.
    revoke(engine, key_id)
    with UnitOfWork(sessions) as uow:
        again = uow.session.get(ApiKey, key_id)
        assert again is not None and again.revoked_at == revoked_at
        with pytest.raises(KeyNotFound, match="no API key #999") as unknown:
            keys_repo.revoke_key(uow.session, 999)
        assert isinstance(unknown.value, LookupError)


def test_bad_owners_and_roles_are_refused(engine: Engine) -> None:
    with UnitOfWork(make_session_factory(engine, writer=True)) as uow:
        for owner, role in [("", "reader"), ("a b", "reader"), ("x" * 65, "admin")]:
            with pytest.raises(InvalidKeyRequest, match="owner"):
                keys_repo.create_key(uow.session, owner, role)
        with pytest.raises(InvalidKeyRequest, match="unknown role 'root'") as exc:
            keys_repo.create_key(uow.session, "alice", "root")
        assert isinstance(exc.value, ValueError)
        assert keys_repo.list_keys(uow.session) == []


def test_use_is_recorded_at_most_once_a_minute(engine: Engine) -> None:
    key_id, _ = new_key(engine, "acme.near", "reader")
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    writer = make_session_factory(engine, writer=True)
    for seconds, changed in [(0, True), (30, False), (61, True)]:
        at = t0 + timedelta(seconds=seconds)
        with UnitOfWork(writer) as uow:
            assert keys_repo.touch_key(uow.session, key_id, now=at) is changed
            uow.commit()


# --- the API ----------------------------------------------------------------------------

probe_router = APIRouter()


@probe_router.get("/t/read")
def read(who: Annotated[Principal, Depends(rate_limited)]) -> dict[str, Any]:
    return {"role": who.role, "owner": who.owner, "client": who.client}


@probe_router.get("/t/missing", dependencies=[Depends(rate_limited)])
def missing() -> dict[str, Any]:
    raise ApiError(404, "no_such_thing", "nothing here")


@probe_router.get("/t/whoami")
def whoami(who: Annotated[Principal, Depends(principal)]) -> dict[str, Any]:
    return {"role": who.role, "owner": who.owner}


@probe_router.post("/t/moderate")
def moderate(
    who: Annotated[Principal, Depends(require_role("moderator"))],
) -> dict[str, Any]:
    return {"actor": who.owner, "role": who.role}


@probe_router.post("/t/admin")
def admin(who: Annotated[Principal, Depends(require_role("admin"))]) -> dict[str, Any]:
    return {"actor": who.owner}


def make_app(db_url: str, **settings: Any) -> FastAPI:
    app = create_app(Settings(database_url=db_url, **settings))
    app.include_router(probe_router)
    app.add_middleware(RateLimitHeaders)
    return app


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:
    with TestClient(make_app(db_url, api_rate_public=1000, api_rate_key=1000)) as c:
        yield c


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def error_of(response: Any) -> dict[str, Any]:
    body: dict[str, Any] = response.json()["error"]
    assert set(body) <= {"code", "message", "hint", "details"}
    return body


def test_no_key_is_public_and_a_key_names_its_owner(client: TestClient, engine: Engine) -> None:
    r = client.get("/t/read")
    assert r.status_code == 200
    assert r.json() == {"role": "public", "owner": None, "client": "ip:testclient"}

    key_id, secret = new_key(engine, "acme.near", "reader")
    for headers in (bearer(secret), {"authorization": f"bearer {secret}"}, {"X-API-Key": secret}):
        r = client.get("/t/read", headers=headers)
        assert r.status_code == 200, r.text
        assert r.json() == {"role": "reader", "owner": "acme.near", "client": f"key:{key_id}"}
    # The same key in both headers is fine; two different keys are not.
    assert client.get("/t/whoami", headers={**bearer(secret), "X-API-Key": secret}).is_success


def test_a_bad_or_revoked_key_is_refused_never_public(client: TestClient, engine: Engine) -> None:
    key_id, secret = new_key(engine, "acme.near", "reader")
    _, other = new_key(engine, "other.near", "reader")
    forged = "rk_" + "A" * 43
    cases = [
        bearer(forged),
        {"X-API-Key": "not-a-key"},
        {"Authorization": "Basic YWxpY2U6c2VjcmV0"},
        {"Authorization": "Bearer "},
        {**bearer(secret), "X-API-Key": other},
    ]
    for headers in cases:
        for path in ("/t/read", "/t/whoami"):
            r = client.get(path, headers=headers)
            assert r.status_code == 401, (headers, r.text)
            assert error_of(r)["code"] == "invalid_key"
            assert r.headers["WWW-Authenticate"].startswith("Bearer")

    # A verified key is trusted for api_key_ttl seconds (no database read per request);
    # a revocation applies once that time has passed.
    now = [0.0]
    client.app.state.known_keys = KnownKeys(5.0, clock=lambda: now[0])  # type: ignore[attr-defined]
    assert client.get("/t/whoami", headers=bearer(secret)).json()["owner"] == "acme.near"
    revoke(engine, key_id)
    now[0] = 4.9
    assert client.get("/t/whoami", headers=bearer(secret)).json()["owner"] == "acme.near"
    now[0] = 5.0
    r = client.get("/t/whoami", headers=bearer(secret))
    assert r.status_code == 401 and error_of(r)["code"] == "invalid_key"
    assert "revoked" in error_of(r)["message"]
    # Refused keys are not remembered: a key created now works at once.
    _, fresh = new_key(engine, "new.near", "reader")
    assert client.get("/t/whoami", headers=bearer(fresh)).json()["owner"] == "new.near"


def test_with_no_key_ttl_a_revocation_applies_at_the_next_request(
    db_url: str, engine: Engine
) -> None:
    key_id, secret = new_key(engine, "acme.near", "reader")
    with TestClient(make_app(db_url, api_key_ttl=0)) as c:
        assert c.get("/t/whoami", headers=bearer(secret)).json()["owner"] == "acme.near"
        revoke(engine, key_id)
        assert c.get("/t/whoami", headers=bearer(secret)).status_code == 401


def test_roles_guard_moderation(client: TestClient, engine: Engine) -> None:
    _, reader = new_key(engine, "acme.near", "reader")
    _, moderator = new_key(engine, "alice", "moderator")
    _, admin_key = new_key(engine, "root@example.org", "admin")

    r = client.post("/t/moderate")
    assert r.status_code == 401
    body = error_of(r)
    assert body["code"] == "key_required" and "moderator" in body["message"]

    r = client.post("/t/moderate", headers=bearer(reader))
    assert r.status_code == 403
    body = error_of(r)
    assert body["code"] == "forbidden"
    assert "needs role moderator or admin" in body["message"] and "reader" in body["message"]

    assert client.post("/t/moderate", headers=bearer(moderator)).json() == {
        "actor": "alice",
        "role": "moderator",
    }
    assert client.post("/t/moderate", headers=bearer(admin_key)).json() == {
        "actor": "root@example.org",
        "role": "admin",
    }
    r = client.post("/t/admin", headers=bearer(moderator))
    assert r.status_code == 403 and "needs role admin;" in error_of(r)["message"]
    assert client.post("/t/admin", headers=bearer(admin_key)).json() == {
        "actor": "root@example.org"
    }
    with pytest.raises(ValueError, match="require_role"):
        require_role("root")


def test_public_clients_are_rate_limited_and_keys_get_more(db_url: str, engine: Engine) -> None:
    _, secret = new_key(engine, "acme.near", "reader")
    with TestClient(make_app(db_url, api_rate_public=3, api_rate_key=100)) as client:
        for remaining in (2, 1, 0):
            r = client.get("/t/read")
            assert r.status_code == 200
            assert r.headers["X-RateLimit-Limit"] == "3"
            assert r.headers["X-RateLimit-Remaining"] == str(remaining)
            assert "Retry-After" not in r.headers

        r = client.get("/t/read")
        assert r.status_code == 429
        body = error_of(r)
        assert body["code"] == "rate_limited" and "3 requests per minute" in body["message"]
        assert "API key" in body["hint"]
        assert 1 <= int(r.headers["Retry-After"]) <= 20
        assert r.headers["X-RateLimit-Limit"] == "3"
        assert r.headers["X-RateLimit-Remaining"] == "0"
        # Other errors of a limited route carry the headers too (RateLimitHeaders).
        assert client.get("/t/missing").status_code == 429

        for remaining in (99, 98):
            r = client.get("/t/read", headers=bearer(secret))
            assert r.status_code == 200
            assert r.headers["X-RateLimit-Limit"] == "100"
            assert r.headers["X-RateLimit-Remaining"] == str(remaining)
        r = client.get("/t/missing", headers=bearer(secret))
        assert r.status_code == 404 and error_of(r)["code"] == "no_such_thing"
        assert r.headers["X-RateLimit-Remaining"] == "97"

        # Unlimited routes are not counted.
        assert client.get("/t/whoami").status_code == 200


def test_the_allowance_refills_evenly(db_url: str) -> None:
    now = [1000.0]
    app = make_app(db_url, api_rate_public=3)
    app.state.rate_limiter = RateLimiter(clock=lambda: now[0])
    with TestClient(app) as client:
        assert [client.get("/t/read").status_code for _ in range(4)] == [200, 200, 200, 429]
        now[0] += 19
        r = client.get("/t/read")
        assert r.status_code == 429 and r.headers["Retry-After"] == "1"
        now[0] += 1  # one token every 20 s at 3 a minute
        assert client.get("/t/read").status_code == 200
        assert client.get("/t/read").status_code == 429
        now[0] += 3600  # never more than a minute's worth
        assert [client.get("/t/read").status_code for _ in range(4)] == [200, 200, 200, 429]


def test_refused_keys_count_against_the_address(db_url: str) -> None:
    with TestClient(make_app(db_url, api_rate_public=2)) as client:
        codes = [client.get("/t/whoami", headers=bearer("rk_" + "B" * 43)) for _ in range(3)]
        assert [r.status_code for r in codes] == [401, 401, 429]
        assert client.get("/t/read").status_code == 429


def test_a_keys_use_is_recorded(client: TestClient, engine: Engine) -> None:
    key_id, secret = new_key(engine, "acme.near", "reader")
    assert client.get("/t/whoami", headers=bearer(secret)).status_code == 200
    with UnitOfWork(make_session_factory(engine)) as uow:
        key = uow.session.get(ApiKey, key_id)
        assert key is not None and key.last_used_at is not None


def test_the_limiter_forgets_idle_clients() -> None:
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    for i in range(100):
        assert limiter.hit(f"ip:10.0.0.{i}", 5).allowed
    assert len(limiter) == 100
    now[0] += 61
    limiter.hit("ip:10.0.1.1", 5)
    assert len(limiter) == 1


def test_ipv6_clients_are_limited_per_64() -> None:
    from starlette.requests import Request

    from api.auth import client_address

    def address(host: str) -> str:
        return client_address(Request({"type": "http", "client": (host, 1), "headers": []}))

    assert (
        address("2001:db8:1:2:aaaa::1") == address("2001:db8:1:2:bbbb::9") == ("2001:db8:1:2::/64")
    )
    assert address("::ffff:192.0.2.7") == "192.0.2.7"
    assert address("192.0.2.7") == "192.0.2.7"


# --- renown keys ------------------------------------------------------------------------


def _keys_wired() -> bool:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return "keys" in sub.choices


Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], db_url: str) -> Run:
    """`renown --database-url URL keys ...` through renown.cli.main once `keys` is wired
    into it; until then through the same parser with keys_cli.add_parser, mapping errors
    to exit 2 as main does."""

    def harness(argv: list[str]) -> int:
        parser = cli.build_parser()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        keys_cli.add_parser(sub)
        args = parser.parse_args(argv)
        try:
            return int(args.func(args))
        except (ApiKeyError, cli.UserError, DatabaseUnavailable, SettingsError) as exc:
            print(f"renown {args.command}: {exc}", file=sys.stderr)
            return cli.EXIT_USAGE

    entry = cli.main if _keys_wired() else harness

    def go(*argv: str) -> tuple[int, str, str]:
        code = entry(["--database-url", db_url, "keys", *argv])
        out, err = capsys.readouterr()
        return code, out, err

    return go


def test_renown_keys_create_list_revoke(run: Run, engine: Engine) -> None:
    code, out, err = run("create", "--owner", "acme.near", "--role", "reader")
    assert code == 0
    secret = next(w for w in out.split() if w.startswith("rk_"))
    assert "created API key #1 for acme.near, role reader" in out
    assert "cannot show it again" in err

    code, out, err = run("create", "--owner", "alice", "--role", "moderator", "--json")
    assert code == 0 and "cannot show it again" in err
    created = json.loads(out)
    assert created["id"] == 2 and created["role"] == "moderator"
    assert created["key"].startswith("rk_")
    assert created["prefix"] == created["key"][:11] + "…"
    with UnitOfWork(make_session_factory(engine)) as uow:
        for s in (secret, created["key"]):
            assert keys_repo.verify_key(uow.session, s) is not None

    code, out, _ = run("list")
    assert code == 0
    assert secret not in out and secret[3:] not in out and created["key"] not in out
    assert secret[:11] + "…" in out
    assert "acme.near" in out and "alice" in out and "2 key(s), 0 revoked" in out

    code, out, _ = run("revoke", "1")
    assert code == 0 and "revoked API key #1" in out and "acme.near" in out
    code, out, _ = run("revoke", "1")
    assert code == 0 and "already revoked" in out
    with UnitOfWork(make_session_factory(engine)) as uow:
        assert keys_repo.verify_key(uow.session, secret) is None

    code, out, _ = run("list", "--json")
    listed = json.loads(out)
    assert [(k["id"], k["owner"], k["revoked_at"] is not None) for k in listed] == [
        (1, "acme.near", True),
        (2, "alice", False),
    ]
    assert all("key" not in k and "secret_hash" not in k for k in listed)
    assert secret not in out and created["key"] not in out
    code, out, _ = run("list", "--active", "--json")
    assert [k["id"] for k in json.loads(out)] == [2]


def test_renown_keys_user_errors_are_one_line(run: Run) -> None:
    code, out, err = run("revoke", "42")
    assert code == 2 and out == ""
    assert err.strip() == "renown keys: no API key #42 (`renown keys list` shows them)"

    code, _, err = run("create", "--owner", "two words", "--role", "reader")
    assert code == 2 and err.startswith("renown keys: owner 'two words' is not a valid name")
    assert len(err.strip().splitlines()) == 1

    with pytest.raises(SystemExit):  # argparse: usage and exit 2
        run("create", "--owner", "x", "--role", "root")


def test_renown_keys_generate_and_import_from_a_secret_file(
    run: Run, engine: Engine, tmp_path: Path
) -> None:
    """A deployment keeps its keys in a secret store: `keys generate` makes them without a
    database, `keys import` registers a file of them, idempotently, all or none."""
    code, out, _ = run("generate")
    first = out.strip()
    assert code == 0 and first.startswith("rk_") and len(first) == 46
    second = keys_repo.generate_secret()
    keys = tmp_path / "api-keys.txt"
    keys.write_text(f"# owner role key\nacme.near reader {first}\n\nmods moderator {second}  # x\n")
    code, out, _ = run("import", "--file", str(keys))
    assert code == 0, out
    assert "line 2: registered as API key #1 (acme.near, reader)" in out
    assert "line 4: registered as API key #2 (mods, moderator)" in out
    assert first not in out and second not in out
    code, out, _ = run("import", "--file", str(keys))  # the Job runs again: nothing new
    assert code == 0 and "already registered as API key #1" in out and "0 new key(s)" in out
    with UnitOfWork(make_session_factory(engine)) as uow:
        assert keys_repo.verify_key(uow.session, first).owner == "acme.near"  # type: ignore[union-attr]
        assert keys_repo.verify_key(uow.session, second).role == "moderator"  # type: ignore[union-attr]

    third = keys_repo.generate_secret()
    bad = tmp_path / "bad.txt"
    for content, message in [
        (f"new.near reader {third}\nacme.near admin {first}\n", "as #1 for acme.near"),
        (f"new.near reader {third}\nbroken line\n", "bad.txt:2: expected 'owner role key'"),
        (f"new.near reader {third}\nx reader rk_short\n", "bad.txt:2: not a Renown API key"),
        (f"new.near reader {third}\nalice {third} reader\n", "bad.txt:2: expected 'owner role"),
        (f"new.near reader {third}\n{third} alice reader\n", "bad.txt:2: expected 'owner role"),
    ]:
        bad.write_text(content)
        code, _, err = run("import", "--file", str(bad))
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
        assert third not in err and first not in err and third[3:] not in err
    with UnitOfWork(make_session_factory(engine)) as uow:  # all or none: `third` not stored
        assert keys_repo.verify_key(uow.session, third) is None
    code, out, _ = run("revoke", "1")  # a revoked key stays refused, whatever the file says
    code, out, _ = run("import", "--file", str(keys))
    assert code == 0 and "line 2: revoked (still refused" in out
    code, _, err = run("import", "--file", str(tmp_path / "missing.txt"))
    assert code == 2 and "cannot read" in err
    bad.write_text("# owner role key: none yet\n")  # a deployment's file before any client
    code, out, _ = run("import", "--file", str(bad))
    assert code == 0 and "0 new key(s), 0 in the file" in out
