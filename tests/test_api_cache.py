"""The in-memory epoch table of the API (api/epoch_cache.py) equals the database."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from api.epoch_cache import RETRY_S, EpochCache
from storage.db import make_engine, make_session_factory
from storage.scoring_repo import account_scores, domain_sizes, scores_of, top_scores
from storage.uow import UnitOfWork
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
    with UnitOfWork(sessions) as uow:
        assert cache.latest(uow.session) == 1
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
    with UnitOfWork(sessions) as uow:
        assert cache.latest(uow.session) == 1
        clock.t = 1.5
        assert cache.latest(uow.session) == 2
    newer = cache.wait(2)
    assert newer is not None and newer.epoch == 2
    engine.dispose()


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
    import time

    time.sleep(0.3)
    assert cache.table(5) is None and cache.table(5) is None
    assert calls == [5]  # not retried before RETRY_S
    clock.t = RETRY_S + 1
    assert cache.table(5) is None
    time.sleep(0.3)
    assert calls == [5, 5]
    engine.dispose()
