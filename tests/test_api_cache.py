"""The in-memory epoch table of the API (api/epoch_cache.py) equals the database."""

from __future__ import annotations

import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import make_url, select
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from api.epoch_cache import RETRY_S, EpochCache
from renown.settings import Settings
from storage.db import make_engine, make_session_factory
from storage.models import Account
from storage.scoring_repo import (
    account_names,
    account_scores,
    domain_score_chunks,
    domain_sizes,
    scores_of,
    top_scores,
)
from storage.uow import UnitOfWork
from tests.tcp_proxy import TcpProxy
from tests.worlds import apply_world, score


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_the_table_answers_what_the_database_does(db_url: str) -> None:
    seeds = apply_world(db_url, preset="small", seed=3)
    score(db_url, seeds)
    engine = make_engine(db_url)
    sessions: sessionmaker[Session] = make_session_factory(engine)
    clock = Clock()
    cache = EpochCache(sessions, ttl=1.0, clock=clock)
    assert cache.current() == (None, True)  # nothing known: this caller must read it
    assert cache.refresh() == 1
    assert cache.current() == (1, False)
    with UnitOfWork(sessions) as uow:
        assert cache.table(1) is None  # loading starts; the database answers meanwhile
        table = cache.wait(1)
        assert table is not None and table.epoch == 1
        assert table.sizes == domain_sizes(uow.session, 1)
        names = [r.account for r in top_scores(uow.session, 1, "global", 10**6)]
        for name in names:
            want = account_scores(uow.session, 1, name)
            got = table.of(name)
            assert [(r.domain, r.rank) for r in got] == [(r.domain, r.rank) for r in want]
            for g, w in zip(got, want, strict=True):
                assert g.trust == pytest.approx(w.trust, rel=1e-12)
                assert g.score == pytest.approx(w.score, rel=1e-12)
                assert g.percentile == pytest.approx(w.percentile)
                assert g.confidence == pytest.approx(w.confidence)
        for domain in table.domains:
            want_many = {r.account: r.rank for r in scores_of(uow.session, 1, names, domain)}
            assert {a: r.rank for a, r in table.many([*names, "ghost.near"], domain).items()} == (
                want_many
            )
        assert table.of("ghost.near") == [] and table.many(names, "nope") == {}
    # A new epoch is seen once the ttl has passed, and its table replaces the old one.
    score(db_url, seeds)
    assert cache.current() == (1, False)  # within the ttl: the known epoch, no read
    clock.t = 1.5
    assert cache.current() == (1, True)  # stale: this caller re-reads ...
    assert cache.current() == (1, False)  # ... while the others go on with epoch 1
    assert cache.refresh() == 2
    assert cache.current() == (2, False)
    newer = cache.wait(2)
    assert newer is not None and newer.epoch == 2
    engine.dispose()


def test_the_bulk_reads_page_by_key_without_losing_or_repeating_a_row(db_url: str) -> None:
    seeds = apply_world(db_url, preset="small", seed=3)
    score(db_url, seeds)
    engine = make_engine(db_url)
    with UnitOfWork(make_session_factory(engine)) as uow:
        for domain in domain_sizes(uow.session, 1):
            whole = np.concatenate(list(domain_score_chunks(uow.session, 1, domain)))
            paged = list(domain_score_chunks(uow.session, 1, domain, chunk=7))
            assert all(len(p) <= 7 for p in paged) and len(paged) > 1
            assert np.array_equal(np.concatenate(paged), whole, equal_nan=True)
            assert len(whole) == domain_sizes(uow.session, 1)[domain]
            want = {r.account: r for r in scores_of(uow.session, 1, names_of(uow), domain)}
            by_id = {i: name for part in account_names(uow.session, chunk=5) for i, name in part}
            assert len(by_id) == len(names_of(uow))
            for row in whole:
                r = want[by_id[int(row[0])]]
                assert (row[1], row[2], int(row[3]), row[4]) == (
                    r.trust,
                    r.score,
                    r.rank,
                    r.percentile,
                )
    engine.dispose()


def names_of(uow: UnitOfWork) -> list[str]:
    return list(uow.session.scalars(select(Account.account_id)))


def test_a_failed_load_falls_back_to_the_database_without_a_retry_storm(db_url: str) -> None:
    engine = make_engine(db_url)
    clock = Clock()
    calls = []

    class Broken(EpochCache):
        def _load(self, epoch: int) -> None:  # the real loader, made to fail
            calls.append(epoch)
            original = make_session_factory(make_engine("sqlite:////nonexistent/dir/x.db"))
            self._sessions = original
            super()._load(epoch)

    cache = Broken(make_session_factory(engine), clock=clock)
    assert cache.table(5) is None
    time.sleep(0.3)
    assert cache.table(5) is None and cache.table(5) is None
    assert calls == [5]  # not retried before RETRY_S
    clock.t = RETRY_S + 1
    assert cache.table(5) is None
    time.sleep(0.3)
    assert calls == [5, 5]
    engine.dispose()


# --- through the API --------------------------------------------------------------------


def test_lookups_from_memory_answer_what_the_database_does(db_url: str) -> None:
    """The same requests to an app serving from memory and to one with the copy turned
    off (api_cache_rows=0) give the same bodies, 404s included."""
    seeds = apply_world(db_url, preset="small", seed=3)
    score(db_url, seeds)
    memory = create_app(Settings(database_url=db_url, seeds=seeds, api_rate_public=10**6))
    direct = create_app(
        Settings(database_url=db_url, seeds=seeds, api_rate_public=10**6, api_cache_rows=0)
    )
    with TestClient(memory) as m, TestClient(direct) as d:
        assert memory.state.epoch_cache.wait(1) is not None
        top = d.get("/v1/domains/global/top", params={"limit": 1000}).json()["items"]
        names = [t["account"] for t in top]
        assert len(names) > 50
        paths = [f"/v1/scores/{n}" for n in [*names, "ghost.near"]]
        domains = [x["domain"] for x in d.get("/v1/domains").json()["domains"]]
        paths += [f"/v1/scores/{names[-1]}?domain={dom}" for dom in [*domains, "nope"]]
        for path in paths:
            got, want = m.get(path), d.get(path)
            assert (got.status_code, got.json()) == (want.status_code, want.json()), path
        for domain in domains:
            body = {"accounts": [*names, "ghost.near"], "domain": domain}
            got, want = m.post("/v1/scores/batch", json=body), d.post("/v1/scores/batch", json=body)
            assert got.status_code == want.status_code == 200
            assert got.json() == want.json()
        for path in ("/v1/domains", "/v1/domains/global/top?limit=5&offset=3"):
            assert m.get(path).json() == d.get(path).json()
        served = memory.state.epoch_cache.served
        assert served["memory"] >= len(names) + len(domains) * len(names)
        assert served["database"] >= 1  # ghost.near: its 404 needs the database
        assert direct.state.epoch_cache.served["memory"] == 0
        metrics = m.get("/metrics").text
        assert f'renown_api_score_lookups_total{{source="memory"}} {served["memory"]}.0' in (
            metrics
        )
        assert "renown_api_cache_epoch 1.0" in metrics


def test_a_new_epoch_is_served_within_the_ttl(db_url: str) -> None:
    seeds = apply_world(db_url, preset="small", seed=3)
    score(db_url, seeds)
    app = create_app(Settings(database_url=db_url, seeds=seeds, api_cache_ttl=0.2))
    with TestClient(app) as client:
        assert app.state.epoch_cache.wait(1) is not None
        name = client.get("/v1/domains/global/top").json()["items"][0]["account"]
        assert client.get(f"/v1/scores/{name}").json()["epoch"] == 1
        score(db_url, seeds)
        time.sleep(0.3)
        first = client.get(f"/v1/scores/{name}").json()
        assert first["epoch"] == 2  # from the database while epoch 2 loads, or from memory
        assert app.state.epoch_cache.wait(2) is not None
        assert client.get(f"/v1/scores/{name}").json() == first
        assert app.state.epoch_cache.loaded().epoch == 2


def test_a_loaded_epoch_answers_through_a_database_outage(pg_url: str) -> None:
    """PostgreSQL cut under the API (a TCP proxy): score lookups and batches go on from
    memory; what needs the database answers 503, and all is well again once it is back."""
    seeds = apply_world(pg_url, preset="small", seed=3)
    score(pg_url, seeds)
    direct = make_url(pg_url)
    proxy = TcpProxy(direct.host or "127.0.0.1", direct.port or 5432)
    via_proxy = direct.set(port=proxy.port).render_as_string(hide_password=False)
    app = create_app(Settings(database_url=via_proxy, seeds=seeds, api_cache_ttl=0.1))
    try:
        with TestClient(app) as client:
            assert app.state.epoch_cache.wait(1) is not None
            names = [
                t["account"]
                for t in client.get("/v1/domains/global/top", params={"limit": 30}).json()["items"]
            ]
            before = {n: client.get(f"/v1/scores/{n}").json() for n in names}
            proxy.down()
            time.sleep(0.2)  # past the ttl: the next lookup tries the database and fails
            for n in names:
                r = client.get(f"/v1/scores/{n}")
                assert r.status_code == 200 and r.json() == before[n]
            r = client.post("/v1/scores/batch", json={"accounts": names})
            assert r.status_code == 200 and [s["account"] for s in r.json()["scores"]] == names
            r = client.get("/v1/scores/ghost.near")  # needs the database: an honest 503
            assert r.status_code == 503 and r.json()["error"]["code"] == "database_unavailable"
            assert client.get("/v1/domains").status_code == 503
            proxy.up()
            time.sleep(0.2)
            assert client.get("/v1/scores/ghost.near").json()["error"]["code"] == (
                "unknown_account"
            )
            assert client.get("/v1/domains").status_code == 200
    finally:
        proxy.close()
