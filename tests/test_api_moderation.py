"""Moderation over HTTP (api/routes/moderation.py): who may do what, and what it records."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from bench.accuracy import _clean
from moderation import service
from renown.settings import Settings
from simulate.world import PRESETS
from storage.db import make_engine, make_session_factory
from storage.keys_repo import create_key, revoke_key
from storage.uow import UnitOfWork
from tests.worlds import apply_config, score

ROUTES = [
    ("get", "/v1/flags", None),
    ("get", "/v1/flags/1", None),
    ("post", "/v1/flags", {"accounts": ["sv00.near"], "reason": "r"}),
    ("post", "/v1/flags/1/confirm", {"reason": "r"}),
    ("post", "/v1/flags/1/dismiss", {"reason": "r"}),
    ("post", "/v1/flags/1/decide", {"verdict": "uphold", "reason": "r"}),
    ("get", "/v1/audit", None),
]


@pytest.fixture
def world(db_url: str) -> Iterator[tuple[TestClient, dict[str, str], str]]:
    """A scored small world with a serial voter (one open flag), and keys of each role."""
    cfg = dataclasses.replace(_clean(PRESETS["small"]), serial_voters=1, seed=3)
    w = apply_config(db_url, cfg)
    score(db_url, w.truth.seeds)
    engine = make_engine(db_url)
    keys: dict[str, str] = {}
    with UnitOfWork(make_session_factory(engine, writer=True)) as uow:
        for owner, role in [("rita", "reader"), ("alice", "moderator"), ("bob", "moderator"),
                            ("ada", "admin"), ("gone", "moderator")]:  # fmt: skip
            row, keys[owner] = create_key(uow.session, owner, role)
            if owner == "gone":
                revoke_key(uow.session, row.id)
        uow.commit()
    engine.dispose()
    app = create_app(Settings(database_url=db_url, seeds=w.truth.seeds))
    with TestClient(app) as client:
        yield client, keys, w.truth.serial_voters[0]


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_every_moderation_route_refuses_no_key_a_reader_and_a_revoked_key(
    world: tuple[TestClient, dict[str, str], str], method: str, path: str, body: object
) -> None:
    client, keys, _ = world
    call = getattr(client, method)
    kw = {"json": body} if body is not None else {}
    r = call(path, **kw)
    assert r.status_code == 401 and r.json()["error"]["code"] == "key_required"
    r = call(path, headers=auth(keys["rita"]), **kw)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    r = call(path, headers=auth(keys["gone"]), **kw)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_key"
    r = call(path, headers=auth("rk_notakey"), **kw)
    assert r.status_code == 401
    # Nothing was decided by any of them.
    audit = client.get("/v1/audit", headers=auth(keys["ada"])).json()
    assert {e["actor"] for e in audit} == {"detector"}


def test_a_moderator_works_the_queue_over_http(
    world: tuple[TestClient, dict[str, str], str], db_url: str
) -> None:
    client, keys, voter = world
    alice, bob = auth(keys["alice"]), auth(keys["bob"])
    page = client.get(
        "/v1/flags", params={"status": "open", "kind": "serial_voting"}, headers=alice
    ).json()
    assert page["total"] == 1 and page["items"][0]["flagged"] == [voter]
    fid = page["items"][0]["id"]
    shown = client.get(f"/v1/flags/{fid}", headers=alice).json()
    assert shown["evidence"]["voter"] == voter and shown["audit"][0]["actor"] == "detector"
    r = client.post(f"/v1/flags/{fid}/confirm", json={"reason": "54 votes", "score_factor": 2},
                    headers=alice)  # fmt: skip
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    r = client.post(f"/v1/flags/{fid}/confirm", json={"reason": "54 votes in a day"}, headers=alice)
    assert r.status_code == 200 and r.json()["status"] == "confirmed"
    assert r.json()["decided_by"] == "alice"
    r = client.post(f"/v1/flags/{fid}/dismiss", json={"reason": "x"}, headers=bob)
    assert r.status_code == 409 and r.json()["error"]["code"] == "illegal_transition"
    # The flagged account appeals (NEP-413 sign-in to come: through the service here).
    engine = make_engine(db_url)
    service.appeal(make_session_factory(engine, writer=True), fid, account=voter, statement="fan")
    engine.dispose()
    r = client.post(f"/v1/flags/{fid}/decide", json={"verdict": "uphold", "reason": "mine"},
                    headers=alice)  # fmt: skip
    assert r.status_code == 409 and "another moderator" in r.json()["error"]["message"]
    r = client.post(f"/v1/flags/{fid}/decide", json={"verdict": "reject", "reason": "no"},
                    headers=bob)  # fmt: skip
    assert r.status_code == 200 and r.json()["status"] == "confirmed"
    r = client.post("/v1/flags/999/confirm", json={"reason": "x"}, headers=alice)
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_flag"
    r = client.post("/v1/flags", json={"accounts": ["ghost.near"], "reason": "x"}, headers=alice)
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_account"
    r = client.post("/v1/flags", json={"accounts": ["alice"], "reason": "x"}, headers=bob)
    assert r.status_code in (404, 422)
    raised = client.post("/v1/flags", json={"accounts": [voter], "reason": "again"}, headers=bob)
    assert raised.status_code == 201 and raised.json()["raised_by"] == "bob"
    # The audit log: every call with the key's owner and the key.
    audit = client.get("/v1/audit", params={"flag": fid}, headers=auth(keys["ada"])).json()
    assert [(e["actor"], e["action"]) for e in audit] == [
        ("detector", "raise"),
        ("alice", "confirm"),
        (voter, "appeal"),
        ("bob", "reject"),
    ]
    assert audit[1]["details"]["via"].startswith("api key #")
    assert audit[3]["details"]["via"] != audit[1]["details"]["via"]
