"""The HTTP API's read side (api/): scores, standing, snapshots, errors, on both databases,
through real HTTP handling (FastAPI's TestClient runs the ASGI app in-process)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

from api.app import create_app
from renown.settings import Settings
from scoring.merkle import Leaf, MerkleTree, Proof, verify
from tests.worlds import apply_world, score


@pytest.fixture
def scored(db_url: str) -> Iterator[tuple[TestClient, list[str]]]:
    """A tiny scored world (two epochs) behind the API."""
    seeds = apply_world(db_url, preset="small", seed=3)
    score(db_url, seeds, epochs=2)
    app = create_app(Settings(database_url=db_url, seeds=seeds))
    with TestClient(app) as client:
        yield client, seeds


def error(resp: object) -> dict[str, str]:
    body = resp.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"}, body
    assert {"code", "message"} <= set(body["error"])
    return body["error"]  # type: ignore[no-any-return]


def test_an_account_in_every_domain_and_the_errors(scored: tuple[TestClient, list[str]]) -> None:
    client, _ = scored
    top = client.get("/v1/domains/global/top", params={"limit": 1}).json()["items"][0]
    r = client.get(f"/v1/scores/{top['account']}")
    assert r.status_code == 200
    body = r.json()
    assert body["epoch"] == 2 and body["account"] == top["account"]
    assert body["scores"][0]["domain"] == "global" and body["scores"][0]["rank"] == 1
    assert {s["domain"] for s in body["scores"]} > {"global"}
    assert all(0 <= s["score"] <= 100 and s["accounts_in_domain"] > 0 for s in body["scores"])
    one = client.get(f"/v1/scores/{top['account']}", params={"domain": "global"}).json()
    assert [s["domain"] for s in one["scores"]] == ["global"]

    r = client.get("/v1/scores/nobody.near")
    assert r.status_code == 404 and error(r)["code"] == "unknown_account"
    assert "never appeared" in error(r)["hint"]
    r = client.get(f"/v1/scores/{top['account']}", params={"domain": "no-such"})
    assert r.status_code == 404 and error(r)["code"] == "no_score"
    r = client.get("/v1/scores/Not..Valid")
    assert r.status_code == 422 and error(r)["code"] == "invalid_account"
    r = client.get("/v1/scores/x")  # too short for the path's schema
    assert r.status_code == 422 and error(r)["code"] == "invalid_request"
    r = client.get("/v1/nothing-here")
    assert r.status_code == 404 and error(r)["code"] == "not_found"


def test_batches_of_accounts(scored: tuple[TestClient, list[str]]) -> None:
    client, _ = scored
    page = client.get("/v1/domains/global/top", params={"limit": 20}).json()["items"]
    names = [p["account"] for p in page]
    r = client.post("/v1/scores/batch", json={"accounts": [*names, "ghost.near", names[0]]})
    assert r.status_code == 200
    body = r.json()
    assert [s["account"] for s in body["scores"]] == names  # order kept, duplicates once
    assert body["missing"] == ["ghost.near"]
    assert [s["rank"] for s in body["scores"]] == list(range(1, 21))
    r = client.post("/v1/scores/batch", json={"accounts": ["a.near"] * 1001})
    assert r.status_code == 413 and error(r)["code"] == "batch_too_large"
    r = client.post("/v1/scores/batch", json={"accounts": ["BAD!"]})
    assert r.status_code == 422 and error(r)["code"] == "invalid_account"
    r = client.post("/v1/scores/batch", json={"accounts": []})
    assert r.status_code == 422 and error(r)["code"] == "invalid_request"
    r = client.post(
        "/v1/scores/batch", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422 and error(r)["code"] == "invalid_request"


def test_rankings_page_through_a_domain(scored: tuple[TestClient, list[str]]) -> None:
    client, _ = scored
    domains = client.get("/v1/domains").json()
    assert domains["domains"][0]["domain"] == "global"
    total = domains["domains"][0]["accounts"]
    first = client.get("/v1/domains/global/top", params={"limit": 10}).json()
    second = client.get("/v1/domains/global/top", params={"limit": 10, "offset": 10}).json()
    assert first["total"] == total
    assert [i["rank"] for i in first["items"] + second["items"]] == list(range(1, 21))
    scores = [i["score"] for i in first["items"] + second["items"]]
    assert scores == sorted(scores, reverse=True)
    r = client.get("/v1/domains/nope/top")
    assert r.status_code == 404 and error(r)["code"] == "unknown_domain"
    r = client.get("/v1/domains/global/top", params={"limit": 0})
    assert r.status_code == 422


def test_standing_history_explanation_flags_and_proof(scored: tuple[TestClient, list[str]]) -> None:
    client, _ = scored
    who = client.get("/v1/domains/global/top", params={"limit": 3}).json()["items"][2]["account"]
    hist = client.get(f"/v1/accounts/{who}/history").json()
    assert [e["epoch"] for e in hist["epochs"]] == [1, 2]
    assert hist["epochs"][1]["change"] == pytest.approx(0.0, abs=1e-6)  # same evidence
    expl = client.get(f"/v1/accounts/{who}/explanation").json()
    assert expl["score"]["rank"] == 3 and expl["explanation"]["sources"]
    assert who in expl["text"] and "rank 3" in expl["text"]
    flags = client.get("/v1/accounts/sv00.near/flags").json()
    assert [f["kind"] for f in flags["flags"]] == ["serial_voting"]
    assert flags["flags"][0]["role"] == "flagged" and flags["flags"][0]["status"] == "open"
    assert client.get(f"/v1/accounts/{who}/flags").json()["flags"] == []
    r = client.get("/v1/accounts/nobody.near/flags")
    assert r.status_code == 404 and error(r)["code"] == "unknown_account"

    body = client.get(f"/v1/accounts/{who}/proof").json()
    proof = Proof.from_json(body["proof"])
    assert proof.leaf.account == who and body["epoch"] == 2
    assert verify(proof, bytes.fromhex(body["root"]), proof.count)
    assert body["publications"] == []
    r = client.get(f"/v1/accounts/{who}/proof", params={"epoch": 99})
    assert r.status_code == 404 and error(r)["code"] == "no_snapshot"
    r = client.get(f"/v1/accounts/{who}/proof", params={"domain": "nope"})
    assert r.status_code == 404 and error(r)["code"] == "no_score"


def test_snapshots_and_the_full_table_hash_to_the_root(
    scored: tuple[TestClient, list[str]],
) -> None:
    client, _ = scored
    latest = client.get("/v1/snapshots/latest").json()
    assert latest["epoch"] == 2 and len(latest["root"]) == 64
    assert client.get("/v1/snapshots/1").json()["root"] != ""
    r = client.get("/v1/snapshots/7")
    assert r.status_code == 404 and error(r)["code"] == "no_snapshot"

    r = client.get(latest["download"]["jsonl"])
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    rows = [json.loads(line) for line in r.text.splitlines()]
    assert len(rows) == latest["count"]
    tree = MerkleTree(Leaf(x["account"], x["domain"], x["score_micro"], 2) for x in rows)
    assert tree.root.hex() == latest["root"]
    r = client.get(latest["download"]["csv"])
    table = list(csv.DictReader(io.StringIO(r.text)))
    assert len(table) == latest["count"] and set(table[0]) >= {"account", "domain", "score_micro"}
    assert "attachment" in r.headers["content-disposition"]
    r = client.get("/v1/snapshots/2/scores", params={"format": "xml"})
    assert r.status_code == 422


def test_before_any_epoch_and_unexpected_errors(db_url: str) -> None:
    app = create_app(Settings(database_url=db_url))
    boom = APIRouter()

    @boom.get("/boom")
    def _boom() -> None:
        raise RuntimeError("secret internals")

    app.include_router(boom)
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/v1/scores/alice.near")
        assert r.status_code == 404 and error(r)["code"] == "no_epoch"
        r = client.get("/boom")
        assert r.status_code == 500 and error(r)["code"] == "internal"
        assert "secret internals" not in r.text and "Traceback" not in r.text
        spec = client.get("/openapi.json").json()
        assert spec["openapi"].startswith("3.") and "/v1/scores/batch" in spec["paths"]


def test_database_down_is_503() -> None:
    from renown import bootstrap
    from storage.db import make_engine, make_session_factory

    engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=1")
    down = bootstrap.Database(
        engine, make_session_factory(engine), make_session_factory(engine, writer=True), "down"
    )
    app = create_app(Settings(database_url="sqlite://"), db=down)
    with TestClient(app) as client:
        r = client.get("/v1/scores/alice.near")
        assert r.status_code == 503 and error(r)["code"] == "database_unavailable"
        assert r.headers["retry-after"] == "5" and "Traceback" not in r.text
    engine.dispose()


def test_renown_serve_answers_over_real_http(tmp_path: object) -> None:
    """`renown serve` in its own process (2 uvicorn workers) on a scored SQLite file."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    import httpx

    from storage import migrate
    from storage.db import make_engine

    url = f"sqlite:///{tmp_path}/r.db"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    seeds = apply_world(url, preset="tiny", seed=3)
    score(url, seeds)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENOWN_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "renown.cli", "--database-url", url, "serve", "--port", str(port),
         "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"{base}/v1/domains", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "renown serve did not come up in 30 s"
                time.sleep(0.2)
        assert r.status_code == 200 and r.json()["domains"][0]["domain"] == "global"
        top = httpx.get(f"{base}/v1/domains/global/top", params={"limit": 1}).json()
        assert httpx.get(f"{base}/v1/scores/{top['items'][0]['account']}").status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    assert f"http://127.0.0.1:{port}/" in out
