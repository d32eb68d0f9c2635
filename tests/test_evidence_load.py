"""The bulk evidence loader against the row-wise reference, on SQLite and PostgreSQL.

``load_evidence`` reads the evidence query as binary arrays (PostgreSQL) or straight into
numpy (SQLite); the reference below is the loader it replaced: the same query fetched as
rows and copied in a Python loop. Both must give the same rows (row order is unspecified,
so rows are compared sorted, by account and domain names), the same accounts list, and
only the domains that occur.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, select, text

from ingest.apply import BatchApplier, Message
from scoring.events import DEFAULT_DOMAIN
from scoring.evidence import KINDS, Evidence
from storage import evidence_load
from storage.db import make_session_factory
from storage.models import Account
from storage.scoring_repo import _EVIDENCE_SQL, latest_event_id, load_evidence
from storage.uow import UnitOfWork
from tests.messages import encode, endorse, message, vote

Row = tuple[str, str, str, int, float, int, str]


def _rowwise_reference(session: Any, through: int) -> Evidence:
    """The loader before the bulk readers (kept here as the reference, not in production)."""
    id_rows = session.execute(select(Account.id, Account.account_id).order_by(Account.id)).all()
    ids = np.array([r[0] for r in id_rows], dtype=np.int64)
    rows = session.execute(
        text(_EVIDENCE_SQL), {"general": DEFAULT_DOMAIN, "through": through}
    ).all()
    domains: dict[str, int] = {}
    dom = [domains.setdefault(r[6], len(domains)) for r in rows]
    return Evidence(
        accounts=[r[1] for r in id_rows],
        domains=list(domains),
        src=np.searchsorted(ids, [r[0] for r in rows]).astype(np.int32),
        dst=np.searchsorted(ids, [r[1] for r in rows]).astype(np.int32),
        kind=np.array([KINDS.index(r[2]) for r in rows], dtype=np.int8),
        value=np.array([r[3] for r in rows], dtype=np.int8),
        weight=np.array([r[4] for r in rows], dtype=np.float64),
        ts_ns=np.array([r[5] for r in rows], dtype=np.int64),
        domain=np.array(dom, dtype=np.int32),
    )


def _rows(ev: Evidence) -> list[Row]:
    """The evidence as sorted, self-describing rows (names, not indices)."""
    return sorted(
        (
            ev.accounts[s],
            ev.accounts[d],
            KINDS[k],
            int(v),
            float(w),
            int(t),
            ev.domains[dom],
        )
        for s, d, k, v, w, t, dom in zip(
            ev.src.tolist(),
            ev.dst.tolist(),
            ev.kind.tolist(),
            ev.value.tolist(),
            ev.weight.tolist(),
            ev.ts_ns.tolist(),
            ev.domain.tolist(),
            strict=True,
        )
    )


def _assert_same(engine: Engine, through: int | None = None, **kw: Any) -> Evidence:
    """``load_evidence`` (with ``kw``) equals the reference; returns the loaded evidence."""
    with UnitOfWork(make_session_factory(engine)) as uow:
        at = latest_event_id(uow.session) if through is None else through
        got = load_evidence(uow.session, at, **kw)
        want = _rowwise_reference(uow.session, at)
    assert got.accounts == want.accounts
    assert _rows(got) == _rows(want)
    assert got.domains == sorted(set(want.domains))
    assert sorted(set(got.domain.tolist())) == list(range(len(got.domains)))  # all used
    for name, dtype in (
        ("src", np.int32),
        ("dst", np.int32),
        ("kind", np.int8),
        ("value", np.int8),
        ("weight", np.float64),
        ("ts_ns", np.int64),
        ("domain", np.int32),
    ):
        col = getattr(got, name)
        assert col.dtype == dtype, name
        assert col.shape == (len(got),), name
    return got


def _apply(engine: Engine, *values: dict[str, Any], start: int = 0) -> None:
    msgs = [Message("ev", 0, start + i, None, encode(v)) for i, v in enumerate(values)]
    res = BatchApplier(make_session_factory(engine, writer=True), "g").apply(msgs)
    assert not res.dead and not res.skipped


T0 = 1_764_000_000_000_000_000


def _every_kind_of_evidence() -> list[dict[str, Any]]:
    """NULL and explicit domains, negative evidence, content with two authors, derived
    work, a retraction, label votes and reviews inheriting a task's domain, and a task
    whose domain no evidence uses."""
    return [
        message("task_posted", {"task_id": "t1", "poster": "p.near", "domain": "images"}),
        message("task_posted", {"task_id": "t9", "poster": "p.near", "domain": "audio"}),
        vote("a.near", "b.near", block_timestamp=T0 + 1),  # domain NULL: general
        vote("a.near", "c.near", value=-1, block_timestamp=T0 + 2),  # negative
        message(
            "vote_cast",
            {
                "voter": "c.near",
                "target_kind": "account",
                "target": "b.near",
                "value": -1,
                "domain": "code",
            },
        ),
        endorse("e.near", "b.near"),
        message(
            "endorsed",
            {"endorser": "e.near", "endorsee": "c.near", "weight": 0.25, "domain": "code"},
        ),
        vote("v.near", "t1/i1/lab.near", kind="label"),  # task domain: images
        vote("v.near", "t2/i1/lab.near", kind="label", value=-1),  # no task: general
        message(
            "label_reviewed",
            {
                "task_id": "t1",
                "item_id": "i1",
                "labeler": "lab.near",
                "reviewer": "r.near",
                "verdict": "reject",
            },
        ),
        message(
            "content_authored",
            {
                "content_id": "c1",
                "authors": ["a1.near", "a2.near"],
                "content_hash": "00" * 32,
                "domain": "text",
            },
        ),
        message(
            "content_authored",
            {
                "content_id": "c2",
                "authors": ["a3.near"],
                "content_hash": "11" * 32,
                "derived_from": ["c1"],
            },
        ),
        message(
            "content_authored",
            {"content_id": "c3", "authors": ["a3.near"], "content_hash": "22" * 32},
        ),
        vote("v.near", "c1", kind="content"),  # split between the two authors
        vote("w.near", "c1", kind="content", value=-1),
        vote("v.near", "c3", kind="content"),  # c3 is retracted below: no evidence
        vote("v.near", "c9", kind="content"),  # unknown content: no evidence
        message(
            "content_attested",
            {"attester": "x.near", "content_id": "c1", "verdict": "disputed"},
        ),
        message(
            "content_attested",
            {"attester": "x.near", "content_id": "c2", "verdict": "authentic"},
        ),
        message("content_retracted", {"content_id": "c3", "by": "a3.near"}),
        message("content_retracted", {"content_id": "c1", "by": "v.near"}),  # not an author
    ]


def test_every_kind_of_evidence_matches_the_reference(engine: Engine) -> None:
    _apply(engine, *_every_kind_of_evidence())
    ev = _assert_same(engine)
    rows = _rows(ev)
    assert ev.domains == ["code", "general", "images", "text"]  # "audio" is unused
    assert {r[2] for r in rows} == {
        "vote_account",
        "endorse",
        "vote_label",
        "review",
        "vote_content",
        "attest",
        "derived",
    }
    assert ("a.near", "b.near", "vote_account", 1, 1.0, T0 + 1, "general") in rows
    assert ("a.near", "c.near", "vote_account", -1, 1.0, T0 + 2, "general") in rows
    assert ("e.near", "c.near", "endorse", 1, 0.25, T0, "code") in rows
    assert ("r.near", "lab.near", "review", -1, 1.0, T0, "images") in rows
    assert ("w.near", "a1.near", "vote_content", -1, 0.5, T0, "text") in rows
    assert ("a3.near", "a2.near", "derived", 1, 0.5, T0, "general") in rows
    assert not [r for r in rows if r[1] == "a3.near" and r[2] == "vote_content"]  # retracted


def _spy_groups(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """Record the rows of each COPY tuple, per statement the PostgreSQL reader completes."""
    statements: list[list[int]] = []
    real = evidence_load._read_groups

    def spy(*args: Any) -> Any:
        out = real(*args)
        statements.append(list(out.size))
        return out

    monkeypatch.setattr(evidence_load, "_read_groups", spy)
    return statements


@pytest.mark.parametrize("chunk_rows", [1, 2, 5])
def test_the_chunked_path_matches_the_reference(
    engine: Engine, chunk_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tiny key ranges: on PostgreSQL every (kind, domain) group is split into many tuples."""
    _apply(engine, *_every_kind_of_evidence())
    statements = _spy_groups(monkeypatch)
    ev = _assert_same(engine, chunk_rows=chunk_rows)
    if engine.dialect.name == "postgresql":
        [sizes] = statements  # one statement: the key ranges were enough
        assert sum(sizes) == len(ev)
        assert len(sizes) > len(set(zip(ev.kind.tolist(), ev.domain.tolist(), strict=True)))
        if chunk_rows == 1:
            assert max(sizes) == 2  # one vote on content with two authors: two rows per key


def test_postgresql_falls_back_to_numbered_rows(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key range over 1 GB (SQLSTATE 54000) is undone and read again by row numbers."""
    from storage.db import make_engine

    real = evidence_load._pg_copy_statement

    def too_big(query: str, *, exact: bool) -> str:
        statement = real(query, exact=exact)
        if exact:
            return statement
        # repeat() refuses a 2 GB result with the same SQLSTATE as an oversized tuple.
        fails = "array_agg(src::int4 + 0 * length(repeat('xx', 1073741823)))"
        return statement.replace("array_agg(src::int4)", fails)

    monkeypatch.setattr(evidence_load, "_pg_copy_statement", too_big)
    statements = _spy_groups(monkeypatch)
    engine = make_engine(pg_url)
    try:
        _apply(engine, *_every_kind_of_evidence())
        ev = _assert_same(engine, chunk_rows=2)
        [sizes] = statements  # the failed statement returned nothing
        assert sum(sizes) == len(ev) and max(sizes) <= 2
        with UnitOfWork(make_session_factory(engine)) as uow:  # the transaction goes on
            assert len(load_evidence(uow.session, latest_event_id(uow.session))) == len(ev)
            setting = uow.session.execute(text("SELECT current_setting('enable_sort')"))
            assert setting.scalar_one() == "on"
    finally:
        engine.dispose()


def test_a_simulated_marketplace_matches_the_reference(engine: Engine) -> None:
    from simulate.world import PRESETS, generate

    world = generate(replace(PRESETS["tiny"], seed=5))
    msgs = [
        Message("ev", 0, i, None, json.dumps(m.value).encode())
        for i, m in enumerate(world.messages)
    ]
    res = BatchApplier(make_session_factory(engine, writer=True), "g").apply(msgs)
    assert not res.dead
    ev = _assert_same(engine)
    assert len(ev) > 100
    assert (ev.value < 0).any()
    with UnitOfWork(make_session_factory(engine)) as uow:
        mid = latest_event_id(uow.session) // 2
    _assert_same(engine, through=mid)  # the epoch boundary
    _assert_same(engine, chunk_rows=37)


def test_an_empty_database(engine: Engine) -> None:
    ev = _assert_same(engine)
    assert len(ev) == 0 and ev.accounts == [] and ev.domains == []


def test_accounts_without_evidence(engine: Engine) -> None:
    _apply(engine, message("content_retracted", {"content_id": "c1", "by": "z.near"}))
    ev = _assert_same(engine)
    assert len(ev) == 0 and ev.accounts == ["z.near"] and ev.domains == []


def test_postgresql_enable_sort_is_restored(pg_url: str) -> None:
    from storage.db import make_engine

    engine = make_engine(pg_url)
    try:
        _apply(engine, vote("a.near", "b.near"))
        for before in ("on", "off"):
            with UnitOfWork(make_session_factory(engine)) as uow:
                uow.session.execute(text(f"SET LOCAL enable_sort = {before}"))
                assert len(load_evidence(uow.session, latest_event_id(uow.session))) == 1
                setting = uow.session.execute(text("SELECT current_setting('enable_sort')"))
                assert setting.scalar_one() == before
    finally:
        engine.dispose()


def test_postgresql_in_autocommit(pg_url: str) -> None:
    """An AUTOCOMMIT engine has no transaction block: the reader opens one."""
    from storage.db import make_engine

    engine = make_engine(pg_url)
    auto = engine.execution_options(isolation_level="AUTOCOMMIT")
    try:
        _apply(engine, *_every_kind_of_evidence())
        with make_session_factory(engine)() as session:
            want = _rows(_rowwise_reference(session, latest_event_id(session)))
        with make_session_factory(auto)() as session:
            assert _rows(load_evidence(session, latest_event_id(session))) == want
    finally:
        engine.dispose()


def test_sqlite_refuses_a_domain_the_domains_query_missed(tmp_path: Any) -> None:
    from storage.db import make_engine
    from storage.migrate import upgrade

    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    upgrade(engine)
    try:
        code_vote = {"voter": "a.near", "target_kind": "account", "target": "c.near", "value": 1}
        _apply(
            engine,
            endorse("a.near", "b.near"),
            message("vote_cast", {**code_vote, "domain": "code"}),
        )
        with UnitOfWork(make_session_factory(engine)) as uow:
            ids, _ = evidence_load.read_accounts(uow.session)
            params = {"general": DEFAULT_DOMAIN, "through": latest_event_id(uow.session)}

            def read(domains_query: str | None) -> evidence_load.EvidenceColumns:
                return evidence_load.read_evidence_columns(
                    uow.session,
                    _EVIDENCE_SQL,
                    params,
                    kinds=KINDS,
                    to_index=evidence_load.account_index(ids),
                    domains_query=domains_query,
                )

            assert read(None).domains == ["code", "general"]  # the DISTINCT pass
            with pytest.raises(ValueError, match="a domain the domains query did not list"):
                read("SELECT 'general'")
    finally:
        engine.dispose()


def test_a_value_outside_int8_is_refused(engine: Engine) -> None:
    """The row-wise loader raised on a value that does not fit int8; so do the readers."""
    _apply(engine, vote("a.near", "b.near"), endorse("a.near", "c.near"))
    with engine.begin() as conn:
        conn.execute(text("UPDATE interactions SET value = 300 WHERE kind = 'endorse'"))
    with (
        UnitOfWork(make_session_factory(engine)) as uow,
        pytest.raises(ValueError, match=r"value .*outside -128\.\.127"),
    ):
        load_evidence(uow.session, latest_event_id(uow.session))


def test_sqlite_refuses_account_ids_that_do_not_pack(tmp_path: Any) -> None:
    """SQLite packs two ids in 64 bits: a source id past 2^31 or a destination id past
    2^32 is refused, not mangled."""
    import sqlite3

    from storage.db import make_engine
    from storage.migrate import upgrade

    path = tmp_path / "r.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    try:
        _apply(engine, vote("a.near", "b.near"))
        con = sqlite3.connect(path)  # foreign keys off: move b.near far away
        with con:
            con.execute("UPDATE accounts SET id = 5000000000 WHERE account_id = 'b.near'")
            con.execute("UPDATE interactions SET dst_id = 5000000000")
        con.close()
        with (
            UnitOfWork(make_session_factory(engine)) as uow,
            pytest.raises(ValueError, match="account id outside"),
        ):
            load_evidence(uow.session, latest_event_id(uow.session))
    finally:
        engine.dispose()


# --- the pieces, without a database ---------------------------------------------------


def test_account_index_dense_and_sparse() -> None:
    dense = np.array([1, 2, 3, 5, 8], dtype=np.int64)
    sparse = np.array([3, 10**9, 10**12], dtype=np.int64)
    assert evidence_load.account_index(dense)(np.array([8, 1, 5])).tolist() == [4, 0, 3]
    assert evidence_load.account_index(sparse)(np.array([10**12, 3])).tolist() == [2, 0]
    for ids, missing in ((dense, 4), (dense, 9), (dense, -1), (sparse, 4), (sparse, 10**13)):
        with pytest.raises(ValueError, match="not in accounts"):
            evidence_load.account_index(ids)(np.array([ids[0], missing]))
    out = evidence_load.account_index(dense)(np.array([], dtype=np.int64))
    assert out.dtype == np.int32 and out.size == 0


def _copy_stream(tuples: list[list[bytes | None]]) -> bytes:
    out = bytearray(b"PGCOPY\n\xff\r\n\x00" + bytes(4) + (3).to_bytes(4, "big") + b"ext")
    for fields in tuples:
        out += len(fields).to_bytes(2, "big")
        for f in fields:
            out += (-1).to_bytes(4, "big", signed=True) if f is None else len(f).to_bytes(4, "big")
            out += f or b""
    return bytes(out + (-1).to_bytes(2, "big", signed=True))


def test_copy_tuples_survive_any_chunking() -> None:
    tuples: list[list[bytes | None]] = [[b"kind", None, b"", b"x" * 300], [b"k2", b"d"], []]
    stream = _copy_stream(tuples)

    def parse(chunks: list[bytes]) -> list[list[bytes | None]]:
        return [
            [None if f is None else bytes(f) for f in fields]
            for fields in evidence_load._copy_tuples(chunks)
        ]

    assert parse([stream]) == tuples
    assert parse([stream[i : i + 1] for i in range(len(stream))]) == tuples
    rng = random.Random(3)
    for _ in range(50):
        cuts = sorted(rng.sample(range(1, len(stream)), 6))
        chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
        assert parse(chunks) == tuples
    with pytest.raises(ValueError, match="without its trailer"):
        parse([stream[:-2]])
    with pytest.raises(ValueError, match="after the end"):
        parse([stream, b"\x00"])
    with pytest.raises(ValueError, match="not a binary COPY"):
        parse([b"x" + stream[1:]])
