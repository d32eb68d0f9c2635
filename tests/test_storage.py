"""Storage and batch application on both databases: idempotency, derived rows, offsets, schema."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, Table, func, select
from sqlalchemy.exc import IntegrityError

from ingest.apply import BatchApplier, Message
from storage import migrate
from storage.db import make_session_factory
from storage.models import (
    Account,
    Base,
    ConsumerOffset,
    Content,
    ContentAuthor,
    DeadLetter,
    Event,
    Interaction,
    Label,
    Review,
    SkippedMessage,
    Task,
)
from storage.repository import IngestRepository, OffsetConflict
from storage.scoring_repo import latest_event_id, load_evidence
from storage.uow import UnitOfWork
from tests.messages import encode, endorse, message, vote

T0 = 1_764_000_000_000_000_000


def _msgs(*values: dict, topic: str = "ev", partition: int = 0, start: int = 0) -> list[Message]:
    return [Message(topic, partition, start + i, None, encode(v)) for i, v in enumerate(values)]


def _count(engine: Engine, model: type) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


def _applier(engine: Engine, group: str = "g") -> BatchApplier:
    return BatchApplier(make_session_factory(engine, writer=True), group)


def test_migration_matches_models(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    assert migrate.is_up_to_date(engine)


def test_batch_applies_every_event_kind(engine: Engine) -> None:
    batch = _msgs(
        message(
            "task_posted",
            {
                "task_id": "t1",
                "poster": "poster.near",
                "domain": "images",
                "labels": ["cat", "dog"],
            },
        ),
        message(
            "label_submitted",
            {"task_id": "t1", "item_id": "i1", "labeler": "lab.near", "label": "cat"},
        ),
        message(
            "label_reviewed",
            {
                "task_id": "t1",
                "item_id": "i1",
                "labeler": "lab.near",
                "reviewer": "rev.near",
                "verdict": "reject",
            },
        ),
        message(
            "gold_revealed",
            {"task_id": "t1", "poster": "poster.near", "gold": {"i1": "cat", "i2": "dog"}},
        ),
        vote("voter.near", "lab.near"),
        vote("voter.near", "c1", kind="content", value=-1),
        vote("voter.near", "t1/i1/lab.near", kind="label"),
        endorse("rev.near", "lab.near"),
        message(
            "content_authored",
            {
                "content_id": "c1",
                "authors": ["lab.near", "co.near"],
                "content_hash": "ab" * 32,
                "derived_from": ["c0"],
            },
        ),
        message(
            "content_attested", {"attester": "rev.near", "content_id": "c1", "verdict": "disputed"}
        ),
        message("content_retracted", {"content_id": "c1", "by": "co.near"}),
        message(
            "nft_mint",
            {"owner_id": "artist.near", "token_ids": ["1", "2"]},
            standard="nep171",
            contract_id="nft.near",
        ),
    )
    result = _applier(engine).apply(batch)
    assert result.events == 13 and result.duplicates == 0 and not result.dead
    assert result.next_offsets == {("ev", 0): 12}
    assert _count(engine, Event) == 13
    assert _count(engine, Task) == 1
    assert _count(engine, Label) == 1
    assert _count(engine, Review) == 1
    assert _count(engine, Content) == 3  # c1 and two NFTs
    assert _count(engine, ContentAuthor) == 4
    # review, three votes, endorsement, attestation, retraction
    assert _count(engine, Interaction) == 7
    with engine.connect() as conn:
        names = set(conn.execute(select(Account.account_id)).scalars())
        nft = conn.execute(select(Content.content_id).where(Content.content_id.like("nft.near:%")))
        assert sorted(nft.scalars()) == ["nft.near:1", "nft.near:2"]
    assert names == {"poster.near", "lab.near", "rev.near", "voter.near", "co.near", "artist.near"}


def test_redelivery_and_duplicates_change_nothing(engine: Engine) -> None:
    applier = _applier(engine)
    batch = _msgs(vote("a.near", "b.near"), endorse("b.near", "c.near"), {"not": "valid"})
    applier.apply(batch)
    counts = {m: _count(engine, m) for m in (Event, Interaction, Account, DeadLetter)}

    again = applier.apply(batch)  # redelivery of the same offsets
    assert again.stale == 3 and again.events == 0

    # The same events at new offsets (a producer retry, a replayed chain range).
    copies = [Message("ev", 0, 3 + i, None, m.value) for i, m in enumerate(batch)]
    copied = applier.apply(copies)
    assert copied.events == 0 and copied.duplicates == 2
    assert {m: _count(engine, m) for m in (Event, Interaction, Account)} == {
        m: counts[m] for m in (Event, Interaction, Account)
    }
    # A new offset carrying a bad message is a new dead letter: its position differs.
    assert _count(engine, DeadLetter) == 2

    # A second consumer group replaying from offset 0 derives nothing new either.
    other = _applier(engine, group="replay")
    assert other.apply(batch).events == 0
    assert _count(engine, Interaction) == counts[Interaction]


def test_duplicate_within_one_batch(engine: Engine) -> None:
    v = vote("a.near", "b.near", receipt_id="SAME")
    result = _applier(engine).apply(_msgs(v, v))
    assert result.events == 1 and result.duplicates == 1
    assert _count(engine, Interaction) == 1


def test_latest_label_on_chain_wins_whatever_the_arrival_order(engine: Engine) -> None:
    late = message(
        "label_submitted",
        {"task_id": "t", "item_id": "i", "labeler": "l.near", "label": "new"},
        block_timestamp=T0 + 10,
    )
    early = message(
        "label_submitted",
        {"task_id": "t", "item_id": "i", "labeler": "l.near", "label": "old"},
        block_timestamp=T0,
    )
    _applier(engine).apply(_msgs(late, early))
    with engine.connect() as conn:
        assert conn.execute(select(Label.label)).scalars().all() == ["new"]


def test_skipped_and_dead_letters_are_recorded_with_position(engine: Engine) -> None:
    batch = _msgs(
        message("nft_transfer", {"x": 1}, standard="nep171"),
        message("future_event", {"x": 1}),
        message("vote_cast", {"voter": "a.near"}, version="2.0.0"),
        vote("BAD", "b.near"),
        topic="ev",
        partition=3,
        start=40,
    )
    result = _applier(engine).apply(batch)
    assert result.skipped == 3 and len(result.dead) == 1
    with engine.connect() as conn:
        dead = conn.execute(select(DeadLetter)).one()
        assert (dead.topic, dead.partition, dead.offset) == ("ev", 3, 43)
        assert "voter" in dead.reason and dead.value == batch[3].value
        skipped = conn.execute(select(SkippedMessage.standard, SkippedMessage.event)).all()
    assert sorted(skipped) == [
        ("nep171", "nft_transfer"),
        ("renown", "future_event"),
        ("renown", "vote_cast"),
    ]


def test_offsets_are_compare_and_set(engine: Engine) -> None:
    factory = make_session_factory(engine, writer=True)
    with UnitOfWork(factory) as uow:
        repo = IngestRepository(uow.session)
        repo.advance_offsets("g", {("ev", 0): (None, 10)})
        uow.commit()
    with UnitOfWork(factory) as uow, pytest.raises(OffsetConflict):
        IngestRepository(uow.session).advance_offsets("g", {("ev", 0): (5, 20)})
    with UnitOfWork(factory) as uow, pytest.raises(OffsetConflict):
        IngestRepository(uow.session).advance_offsets("g", {("ev", 0): (None, 20)})
    with engine.connect() as conn:
        assert conn.execute(select(ConsumerOffset.next_offset)).scalar_one() == 10


def test_a_losing_consumer_cannot_land_its_batch(engine: Engine) -> None:
    """Two appliers race for one partition: the second to commit from a stale offset fails."""
    a, b = _applier(engine), _applier(engine)
    a.apply(_msgs(vote("x.near", "y.near")))  # partition at 1
    # b applies offsets 1..2 first, then a tries to land 1..2 too: its messages are stale.
    b.apply(_msgs(vote("p.near", "q.near"), vote("q.near", "p.near"), start=1))
    late = a.apply(_msgs(vote("p.near", "q.near"), vote("q.near", "p.near"), start=1))
    assert late.stale == 2 and late.events == 0
    assert _count(engine, Interaction) == 3


def test_failed_batch_leaves_nothing_and_account_cache_recovers(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    applier = _applier(engine)
    applier.apply(_msgs(vote("a.near", "b.near")))
    # Make this consumer read a stale view of the offsets, as one that lost a rebalance
    # would: its compare-and-set fails after it already created accounts in the batch.
    monkeypatch.setattr(IngestRepository, "load_offsets", lambda self, group, parts: {})
    with pytest.raises(OffsetConflict):
        applier.apply(_msgs(vote("new1.near", "a.near"), start=1))
    monkeypatch.undo()
    assert _count(engine, Account) == 2 and _count(engine, Interaction) == 1
    assert "new1.near" not in applier.accounts.ids  # its id died with the transaction
    ok = applier.apply(_msgs(vote("new1.near", "a.near"), start=1))
    assert ok.events == 1 and _count(engine, Account) == 3


def test_evidence_resolves_content_to_authors_and_honours_retraction(engine: Engine) -> None:
    batch = _msgs(
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
        vote("v.near", "c1", kind="content"),
        vote("v.near", "c3", kind="content"),
        vote("v.near", "c9", kind="content"),  # unknown content: no edge yet
        message("content_retracted", {"content_id": "c3", "by": "a3.near"}),
        message("content_retracted", {"content_id": "c1", "by": "v.near"}),  # not an author
        endorse("v.near", "a3.near"),
    )
    _applier(engine).apply(batch)
    with UnitOfWork(make_session_factory(engine)) as uow:
        ev = load_evidence(uow.session, latest_event_id(uow.session))
    rows = sorted(
        (ev.accounts[s], ev.accounts[d], round(float(w), 6), ev.domains[dom])
        for s, d, w, dom in zip(ev.src, ev.dst, ev.weight, ev.domain, strict=True)
    )
    assert rows == [
        ("a3.near", "a1.near", 0.5, "general"),  # derived work credits both parent authors
        ("a3.near", "a2.near", 0.5, "general"),
        ("v.near", "a1.near", 0.5, "text"),  # vote split between two authors, content domain
        ("v.near", "a2.near", 0.5, "text"),
        ("v.near", "a3.near", 1.0, "general"),  # endorsement; the vote on retracted c3 is gone
    ]


def test_evidence_stops_at_the_epoch_boundary(engine: Engine) -> None:
    applier = _applier(engine)
    applier.apply(_msgs(vote("a.near", "b.near")))
    with UnitOfWork(make_session_factory(engine)) as uow:
        through = latest_event_id(uow.session)
    applier.apply(_msgs(vote("b.near", "c.near"), start=1))
    with UnitOfWork(make_session_factory(engine)) as uow:
        assert len(load_evidence(uow.session, through)) == 1
        assert len(load_evidence(uow.session, latest_event_id(uow.session))) == 2


def test_a_later_authorship_claim_cannot_take_over_content(engine: Engine) -> None:
    """Mallory re-announces Alice's content with herself as author, then 'retracts' it."""
    original = message(
        "content_authored",
        {"content_id": "c1", "authors": ["alice.near"], "content_hash": "aa" * 32},
        block_timestamp=T0,
    )
    claim = message(
        "content_authored",
        {"content_id": "c1", "authors": ["mallory.near"], "content_hash": "bb" * 32},
        block_timestamp=T0 + 5,
    )
    retract = message("content_retracted", {"content_id": "c1", "by": "mallory.near"})
    upvote = vote("fan.near", "c1", kind="content")
    # Mallory's claim arrives first: arrival order must not matter, block time does.
    _applier(engine).apply(_msgs(claim, upvote, retract, original))
    with UnitOfWork(make_session_factory(engine)) as uow:
        ev = load_evidence(uow.session, latest_event_id(uow.session))
        stored_hash = uow.session.execute(select(Content.content_hash)).scalar_one()
    edges = {(ev.accounts[s], ev.accounts[d]) for s, d in zip(ev.src, ev.dst, strict=True)}
    assert edges == {("fan.near", "alice.near")}
    assert stored_hash == "aa" * 32


def test_label_votes_and_reviews_inherit_the_task_domain(engine: Engine) -> None:
    _applier(engine).apply(
        _msgs(
            vote("v.near", "t1/i1/lab.near", kind="label"),
            message(
                "label_reviewed",
                {
                    "task_id": "t1",
                    "item_id": "i1",
                    "labeler": "lab.near",
                    "reviewer": "r.near",
                    "verdict": "accept",
                },
            ),
            vote("v.near", "t2/i1/lab.near", kind="label"),  # task never posted: general
            message("task_posted", {"task_id": "t1", "poster": "p.near", "domain": "images"}),
        )
    )
    with UnitOfWork(make_session_factory(engine)) as uow:
        ev = load_evidence(uow.session, latest_event_id(uow.session))
    assert sorted(
        (ev.accounts[s], ev.domains[d]) for s, d in zip(ev.src, ev.domain, strict=True)
    ) == [("r.near", "images"), ("v.near", "general"), ("v.near", "images")]


def test_the_latest_gold_reveal_on_chain_wins(engine: Engine) -> None:
    from storage.models import Gold

    first = message(
        "gold_revealed",
        {"task_id": "t", "poster": "p.near", "gold": {"i": "cat"}},
        block_timestamp=T0,
    )
    fix = message(
        "gold_revealed",
        {"task_id": "t", "poster": "p.near", "gold": {"i": "dog"}},
        block_timestamp=T0 + 1,
    )
    _applier(engine).apply(_msgs(fix, first))
    with engine.connect() as conn:
        assert conn.execute(select(Gold.label)).scalars().all() == ["dog"]


def test_arrival_order_does_not_change_the_evidence(
    tmp_path_factory: pytest.TempPathFactory, engine: Engine
) -> None:
    """The same events applied forwards and backwards give the same evidence."""
    import json
    from dataclasses import replace

    from simulate.world import PRESETS, generate
    from storage.db import make_engine

    world = generate(replace(PRESETS["tiny"], seed=4))
    values = [json.dumps(m.value).encode() for m in world.messages]
    forward = [Message("ev", 0, i, None, v) for i, v in enumerate(values)]
    _applier(engine).apply(forward)

    other = make_engine(f"sqlite:///{tmp_path_factory.mktemp('rev') / 'rev.db'}")
    migrate.upgrade(other)
    backward = [Message("ev", 0, i, None, v) for i, v in enumerate(reversed(values))]
    _applier(other).apply(backward)

    def evidence(e: Engine) -> list[tuple[str, str, str, float, str]]:
        with UnitOfWork(make_session_factory(e)) as uow:
            ev = load_evidence(uow.session, latest_event_id(uow.session))
        from scoring.evidence import KINDS

        return sorted(
            (ev.accounts[s], ev.accounts[d], KINDS[k], round(float(w), 9), ev.domains[dom])
            for s, d, k, w, dom in zip(ev.src, ev.dst, ev.kind, ev.weight, ev.domain, strict=True)
        )

    try:
        assert evidence(engine) == evidence(other)
        assert len(evidence(engine)) > 100
    finally:
        other.dispose()


def test_a_refused_batch_leaves_the_write_path_usable(engine: Engine) -> None:
    """After a transaction dies inside the bulk path, the next one works (staging survives)."""
    applier = _applier(engine)
    with UnitOfWork(applier.session_factory) as uow:
        repo = IngestRepository(uow.session, applier.accounts)
        repo.insert_rows(_table_of(Interaction), [])  # nothing to write is a no-op
        with pytest.raises(IntegrityError):
            # An interaction pointing at an event that does not exist: the FK refuses it.
            repo.insert_rows(
                _table_of(Interaction),
                [
                    {
                        "event_id": 999,
                        "contract_id": "c.near",
                        "kind": "endorse",
                        "src_id": 999,
                        "dst_id": None,
                        "content_id": None,
                        "task_id": None,
                        "target": None,
                        "domain": None,
                        "value": 1,
                        "weight": 1.0,
                        "ts_ns": 1,
                    }
                ],
            )
    result = applier.apply(_msgs(vote("a.near", "b.near"), endorse("b.near", "c.near")))
    assert result.events == 2 and _count(engine, Interaction) == 2


def _table_of(model: type) -> Table:
    return model.__table__  # type: ignore[attr-defined,no-any-return]
