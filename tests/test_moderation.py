"""Flags, decisions, appeals and the audit log (moderation.*, storage.flags_repo), and
what a confirmed flag does to scores."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError

from bench.accuracy import _clean
from moderation import service
from moderation.lifecycle import Action, FlagState, FlagStatus, IllegalTransition, check
from renown import bootstrap
from renown.settings import Settings
from scoring.detect import Finding
from simulate.world import PRESETS
from storage.append_only import AppendOnlyError
from storage.db import make_engine, make_session_factory
from storage.models import AuditEntry, Score
from storage.uow import UnitOfWork
from tests.worlds import apply_config, apply_world

MODS = ("alice", "bob", "carol")

# --------------------------------------------------------------------------------------
# The rules, exhaustively
# --------------------------------------------------------------------------------------

LEGAL = {
    (FlagStatus.OPEN, Action.CONFIRM): FlagStatus.CONFIRMED,
    (FlagStatus.OPEN, Action.DISMISS): FlagStatus.DISMISSED,
    (FlagStatus.CONFIRMED, Action.APPEAL): FlagStatus.APPEALED,
    (FlagStatus.APPEALED, Action.UPHOLD): FlagStatus.OVERTURNED,
    (FlagStatus.APPEALED, Action.REJECT): FlagStatus.CONFIRMED,
}
ACTS = [a for a in Action if a is not Action.RAISE]


@pytest.mark.parametrize(("status", "action"), list(itertools.product(FlagStatus, ACTS)))
def test_every_transition_is_legal_or_refused_as_the_table_says(
    status: FlagStatus, action: Action
) -> None:
    state = FlagState(status, flagged={"x.near"}, decided_by="alice")
    actor = "x.near" if action is Action.APPEAL else "bob"
    if (status, action) in LEGAL:
        assert check(state, action, actor, "because", moderators=MODS) == LEGAL[(status, action)]
    else:
        with pytest.raises(IllegalTransition, match=f"cannot {action.value}"):
            check(state, action, actor, "because", moderators=MODS)


def test_who_may_act() -> None:
    open_ = FlagState(FlagStatus.OPEN, flagged={"x.near", "alice"})
    with pytest.raises(IllegalTransition, match="not a moderator"):
        check(open_, Action.CONFIRM, "mallory", "r", moderators=MODS)
    with pytest.raises(IllegalTransition, match="flagged by this flag"):
        check(open_, Action.CONFIRM, "alice", "r", moderators=MODS)
    with pytest.raises(IllegalTransition, match="needs a reason"):
        check(open_, Action.DISMISS, "bob", "  ", moderators=MODS)
    with pytest.raises(IllegalTransition, match="not a moderator"):
        check(open_, Action.CONFIRM, "bob", "r", moderators=())  # none configured
    confirmed = FlagState(FlagStatus.CONFIRMED, flagged={"x.near"}, decided_by="alice")
    with pytest.raises(IllegalTransition, match="only a flagged account"):
        check(confirmed, Action.APPEAL, "y.near", "please")
    again = dataclasses.replace(confirmed, appealed=True)
    with pytest.raises(IllegalTransition, match="already appealed"):
        check(again, Action.APPEAL, "x.near", "please")
    appealed = FlagState(FlagStatus.APPEALED, flagged={"x.near"}, decided_by="alice")
    for act in (Action.UPHOLD, Action.REJECT):
        with pytest.raises(IllegalTransition, match="another moderator"):
            check(appealed, act, "alice", "r", moderators=MODS)
        assert check(appealed, act, "bob", "r", moderators=MODS) in LEGAL.values()


# --------------------------------------------------------------------------------------
# The service on both databases
# --------------------------------------------------------------------------------------


def _audit_count(url: str) -> int:
    engine = make_engine(url)
    with engine.connect() as conn:
        n = int(conn.execute(select(func.count()).select_from(AuditEntry)).scalar_one())
    engine.dispose()
    return n


def test_the_lifecycle_through_the_service_with_its_audit_trail(db_url: str) -> None:
    apply_world(db_url)  # accounts to flag
    engine = make_engine(db_url)
    writer = make_session_factory(engine, writer=True)
    clock = iter(datetime(2026, 11, 26, 9, m, tzinfo=UTC) for m in range(60))

    def tick() -> datetime:
        return next(clock)

    with pytest.raises(service.UnknownAccount, match=r"nobody\.near"):
        service.raise_flag(
            writer, moderator="alice", kind="manual", accounts=["nobody.near"],
            reason="r", moderators=MODS,
        )  # fmt: skip
    with pytest.raises(service.ModerationError, match="not a moderator"):
        service.raise_flag(
            writer, moderator="mallory", kind="manual", accounts=["sp000.near"],
            reason="r", moderators=MODS,
        )  # fmt: skip
    flag = service.raise_flag(
        writer,
        moderator="alice",
        kind="manual",
        accounts=["sp000.near"],
        reason="labels look random",
        moderators=MODS,
        clock=tick,
    )
    assert flag.status == "open" and flag.flagged == ["sp000.near"]
    with pytest.raises(service.FlagNotFound):
        service.confirm(writer, 999, moderator="bob", reason="r", moderators=MODS)
    with pytest.raises(IllegalTransition, match="cannot appeal a flag that is open"):
        service.appeal(writer, flag.id, account="sp000.near", statement="why")
    before = _audit_count(db_url)
    with pytest.raises(service.ModerationError, match="trust factor"):
        service.confirm(
            writer, flag.id, moderator="bob", reason="r", moderators=MODS, trust_factor=1.5
        )
    assert _audit_count(db_url) == before  # refused: nothing written
    done = service.confirm(
        writer, flag.id, moderator="bob", reason="random vs gold", moderators=MODS, clock=tick
    )
    assert (done.status, done.decided_by, done.trust_factor) == ("confirmed", "bob", 0.0)
    with pytest.raises(IllegalTransition, match="cannot dismiss a flag that is confirmed"):
        service.dismiss(writer, flag.id, moderator="carol", reason="r", moderators=MODS)
    with pytest.raises(IllegalTransition, match="only a flagged account"):
        service.appeal(writer, flag.id, account="h0000.market.near", statement="free them")
    service.appeal(writer, flag.id, account="sp000.near", statement="I am careful", clock=tick)
    with pytest.raises(IllegalTransition, match=r"already appealed|cannot appeal"):
        service.appeal(writer, flag.id, account="sp000.near", statement="again")
    with pytest.raises(IllegalTransition, match="another moderator"):
        service.decide(writer, flag.id, moderator="bob", uphold=True, reason="r", moderators=MODS)
    final = service.decide(
        writer, flag.id, moderator="carol", uphold=True, reason="gold was wrong",
        moderators=MODS, clock=tick,
    )  # fmt: skip
    assert final.status == "overturned" and final.appeal is not None
    assert final.appeal["status"] == "upheld" and final.appeal["decided_by"] == "carol"
    assert [(e["actor"], e["action"], e["from"], e["to"]) for e in final.audit] == [
        ("alice", "raise", None, "open"),
        ("bob", "confirm", "open", "confirmed"),
        ("sp000.near", "appeal", "confirmed", "appealed"),
        ("carol", "uphold", "appealed", "overturned"),
    ]
    assert [e["reason"] for e in final.audit][1:] == [
        "random vs gold",
        "I am careful",
        "gold was wrong",
    ]
    with pytest.raises(IllegalTransition, match="final"):
        service.decide(
            writer, flag.id, moderator="alice", uphold=False, reason="r", moderators=MODS
        )
    # A second flag: dismissed is final, and a rejected appeal leaves it confirmed.
    other = service.raise_flag(
        writer, moderator="alice", kind="manual", accounts=["sp001.near"], reason="r",
        moderators=MODS,
    )  # fmt: skip
    service.dismiss(writer, other.id, moderator="bob", reason="fine", moderators=MODS)
    with pytest.raises(IllegalTransition, match="cannot confirm a flag that is dismissed"):
        service.confirm(writer, other.id, moderator="carol", reason="r", moderators=MODS)
    rows, total = service.list_flags(writer, status=["dismissed"])
    assert total == 1 and rows[0].id == other.id
    rows, total = service.list_flags(writer, account="sp000.near")
    assert [r.id for r in rows] == [flag.id]
    with pytest.raises(service.ModerationError, match="unknown status"):
        service.list_flags(writer, status=["pending"])
    engine.dispose()


def test_the_audit_log_is_append_only(db_url: str) -> None:
    apply_world(db_url)
    engine = make_engine(db_url)
    writer = make_session_factory(engine, writer=True)
    service.raise_flag(
        writer, moderator="alice", kind="manual", accounts=["sp000.near"], reason="r",
        moderators=MODS,
    )  # fmt: skip
    with UnitOfWork(writer) as uow:
        entry = uow.session.scalars(select(AuditEntry)).one()
        entry.reason = "rewritten"
        with pytest.raises(AppendOnlyError, match="UPDATE refused"):
            uow.session.flush()
    with UnitOfWork(writer) as uow:
        uow.session.delete(uow.session.scalars(select(AuditEntry)).one())
        with pytest.raises(AppendOnlyError, match="DELETE refused"):
            uow.session.flush()
    with UnitOfWork(writer) as uow:
        with pytest.raises(AppendOnlyError):
            uow.session.execute(update(AuditEntry).values(reason="x"))
        with pytest.raises(AppendOnlyError):
            uow.session.execute(delete(AuditEntry))
    with engine.connect() as conn, pytest.raises(AppendOnlyError):
        conn.execute(update(AuditEntry.__table__).values(reason="x"))
    # Whatever bypasses the ORM meets the database's trigger.
    for sql in ("UPDATE moderation_audit SET reason = 'x'", "DELETE FROM moderation_audit"):
        with engine.connect() as conn, pytest.raises(DBAPIError, match="append-only"):
            conn.execute(text(sql))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT reason FROM moderation_audit")).scalar_one() == "r"
    engine.dispose()


def test_a_finding_is_raised_once(db_url: str) -> None:
    apply_world(db_url)
    engine = make_engine(db_url)
    writer = make_session_factory(engine, writer=True)

    def finding(votes: int, target: str = "h0001.market.near") -> Finding:
        return Finding(
            kind="serial_voting",
            accounts=("h0000.market.near",),
            severity=votes / 40,
            evidence={"voter": "h0000.market.near", "target": target, "votes": votes, "rule": "r"},
            identity={"voter": "h0000.market.near", "target": target},
            beneficiaries=(target,),
        )

    with UnitOfWork(writer) as uow:
        first = service.record_findings(uow.session, [finding(12)], 1)
        uow.commit()
    assert len(first.raised) == 1
    view = service.show(writer, first.raised[0])
    assert view.flagged == ["h0000.market.near"] and view.beneficiaries == ["h0001.market.near"]
    with UnitOfWork(writer) as uow:  # the same finding, other figures: refreshed, not raised
        again = service.record_findings(uow.session, [finding(20)], 2)
        uow.commit()
    assert again.raised == [] and again.seen_again == 1
    view = service.show(writer, first.raised[0])
    assert view.evidence["votes"] == 20 and view.last_seen_epoch == 2
    service.dismiss(writer, view.id, moderator="bob", reason="a fan", moderators=MODS)
    with UnitOfWork(writer) as uow:  # dismissed stays dismissed; a new target is new
        third = service.record_findings(
            uow.session, [finding(30), finding(11, "h0002.market.near")], 3
        )
        uow.commit()
    assert len(third.raised) == 1 and third.seen_again == 1
    assert service.show(writer, view.id).evidence["votes"] == 20  # decided: frozen
    engine.dispose()


# --------------------------------------------------------------------------------------
# Effect on scores
# --------------------------------------------------------------------------------------


def _global(url: str, epoch: int) -> dict[str, tuple[float, dict | None]]:
    from storage.models import Account

    engine = make_engine(url)
    with UnitOfWork(make_session_factory(engine)) as uow:
        rows = uow.session.execute(
            select(Account.account_id, Score.trust, Score.explanation)
            .join(Account, Account.id == Score.account_id)
            .where(Score.epoch == epoch, Score.domain == "global")
        ).all()
    engine.dispose()
    return {a: (t, e) for a, t, e in rows}


def test_confirming_a_flag_discounts_what_the_account_gave_and_an_upheld_appeal_restores_it(
    db_url: str,
) -> None:
    world = apply_config(
        db_url, dataclasses.replace(_clean(PRESETS["small"]), serial_voters=1, seed=3)
    )
    voter, target = world.truth.serial_voters[0], world.truth.serial_targets[0]
    seeds = set(world.truth.seeds)
    settings = Settings(
        database_url=db_url,
        seeds=world.truth.seeds,
        moderators=list(MODS),
        detectors=["serial_voting"],  # a known queue; the detectors are tested elsewhere
    )
    db = bootstrap.open_database(settings)
    try:
        first = bootstrap.run_scoring(settings, db)
        rows, _ = service.list_flags(db.writer_sessions, kind="serial_voting")
        assert [(r.flagged, r.beneficiaries) for r in rows] == [([voter], [target])]
        assert first.flags_raised == [rows[0].id]
        # The simulated serial voter has no trust to give (nobody trusts it), so its flag
        # changes no score; the effect is measured on the most trusted honest account.
        before = _global(db_url, 1)
        giver = max((a for a in before if a not in seeds), key=lambda a: before[a][0])
        flag = service.raise_flag(
            db.writer_sessions, moderator="carol", kind="manual", accounts=[giver],
            reason="test", moderators=settings.moderators,
        )  # fmt: skip
        service.confirm(
            db.writer_sessions, flag.id, moderator="alice", reason="sold its votes",
            moderators=settings.moderators,
        )  # fmt: skip
        second = bootstrap.run_scoring(settings, db)
        assert second.sanctions == [flag.id] and second.flags_raised == []
        service.appeal(db.writer_sessions, flag.id, account=giver, statement="I did not")
        still = bootstrap.run_scoring(settings, db)  # a pending appeal lifts nothing
        assert still.sanctions == [flag.id]
        service.decide(
            db.writer_sessions, flag.id, moderator="bob", uphold=True, reason="no proof",
            moderators=settings.moderators,
        )  # fmt: skip
        third = bootstrap.run_scoring(settings, db)
        assert third.sanctions == []
    finally:
        db.close()
    after, restored = _global(db_url, 2), _global(db_url, 4)
    # Those who got much of their trust from the giver lose about that share; the giver
    # keeps what it received.
    fed = {
        a: s["share"]
        for a, (_, e) in before.items()
        for s in (e or {}).get("sources", [])
        if s["account"] == giver and s["share"] > 0.1
    }
    assert fed
    for account, share in fed.items():
        assert after[account][0] < before[account][0] * (1 - share / 2), account
    assert after[giver][0] == pytest.approx(before[giver][0], rel=0.1)
    assert after[giver][1]["sanctions"] == [  # type: ignore[index]
        {"flag": flag.id, "kind": "manual", "trust_factor": 0.0, "label_factor": 1.0,
         "score_factor": 1.0, "reason": "sold its votes"}
    ]  # fmt: skip
    # Restored: the scores of the first epoch, to the propagation's tolerance.
    for account, (trust, _) in before.items():
        assert restored[account][0] == pytest.approx(trust, rel=1e-6, abs=1e-12)
    assert "sanctions" not in (restored[giver][1] or {})
    # The accounts it fed see why they fell and why they came back.
    from storage.history_repo import account_history

    engine = make_engine(db_url)
    with UnitOfWork(make_session_factory(engine)) as uow:
        fed_one = max(fed, key=lambda a: fed[a])
        found = account_history(uow.session, fed_one, "global")
        assert found is not None
        entries, pending = found
        assert account_history(uow.session, "nobody.near", "global") is None
    engine.dispose()
    assert pending == [] and [h.epoch for h in entries] == [1, 2, 3, 4]
    assert entries[1].change is not None and entries[1].change < 0
    (fell,) = [e for e in entries[1].events if e.role == "source"]
    assert (fell.meaning, fell.flag_id, fell.flagged) == ("reversal", flag.id, [giver])
    assert fell.reason == "sold its votes" and fell.share == pytest.approx(fed[fed_one])
    (back,) = [e for e in entries[3].events if e.role == "source"]
    assert (back.meaning, back.actor, back.reason) == ("restored", "bob", "no proof")
    assert entries[3].change is not None and entries[3].change > 0


def test_two_moderators_deciding_at_once_one_wins(db_url: str) -> None:
    import threading

    apply_world(db_url)
    engine = make_engine(db_url)
    writer = make_session_factory(engine, writer=True)
    for _ in range(3):
        flag = service.raise_flag(
            writer, moderator="alice", kind="manual", accounts=["sp000.near"], reason="r",
            moderators=MODS,
        )  # fmt: skip
        barrier = threading.Barrier(2)
        outcomes: list[str] = []

        def act(
            fn: Any,
            who: str,
            flag_id: int = flag.id,
            barrier: threading.Barrier = barrier,
            outcomes: list[str] = outcomes,
        ) -> None:
            barrier.wait()
            try:
                fn(writer, flag_id, moderator=who, reason="r", moderators=MODS)
                outcomes.append("ok")
            except IllegalTransition:
                outcomes.append("refused")

        threads = [
            threading.Thread(target=act, args=(service.confirm, "bob")),
            threading.Thread(target=act, args=(service.dismiss, "carol")),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["ok", "refused"]
        final = service.show(writer, flag.id)
        assert final.status in ("confirmed", "dismissed")
        decided = {"confirmed": "confirm", "dismissed": "dismiss"}[final.status]
        assert [e["action"] for e in final.audit] == ["raise", decided]
    engine.dispose()
