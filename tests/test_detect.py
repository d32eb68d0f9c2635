"""Abuse detectors (scoring.detect): hand-built cases, near misses, a simulated world."""

from __future__ import annotations

import dataclasses
import tempfile

import numpy as np
import pytest

from bench.accuracy import _clean
from scoring.detect import SERIAL_VOTING, serial_voting
from scoring.evidence import KINDS, Evidence
from scoring.label_quality import LabelTable
from simulate.world import PRESETS, World, WorldConfig
from storage import migrate
from storage.db import make_engine, make_session_factory
from storage.scoring_repo import latest_event_id, load_evidence, load_labels
from storage.uow import UnitOfWork
from tests.worlds import apply_config

MIN = 60 * 10**9
HOUR = 60 * MIN


def simulated(config: WorldConfig) -> tuple[World, Evidence, LabelTable]:
    """A simulated world through the real ingest path into a temporary SQLite database,
    and the evidence and labels scoring would load from it."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/r.db"
        engine = make_engine(url)
        migrate.upgrade(engine)
        world = apply_config(url, config)
        with UnitOfWork(make_session_factory(engine)) as uow:
            through = latest_event_id(uow.session)
            ev, labels = load_evidence(uow.session, through), load_labels(uow.session, through)
        engine.dispose()
    return world, ev, labels


def votes(rows: list[tuple[str, str, str, int, int]]) -> Evidence:
    """(voter, target, kind, value, ts_ns) rows as an Evidence table."""
    accounts = sorted({r[0] for r in rows} | {r[1] for r in rows})
    idx = {a: i for i, a in enumerate(accounts)}
    return Evidence(
        accounts=accounts,
        domains=["general"],
        src=np.array([idx[r[0]] for r in rows], dtype=np.int32),
        dst=np.array([idx[r[1]] for r in rows], dtype=np.int32),
        kind=np.array([KINDS.index(r[2]) for r in rows], dtype=np.int8),
        value=np.array([r[3] for r in rows], dtype=np.int8),
        weight=np.ones(len(rows)),
        ts_ns=np.array([r[4] for r in rows], dtype=np.int64),
        domain=np.zeros(len(rows), dtype=np.int32),
    )


Row = tuple[str, str, str, int, int]


def burst(
    voter: str, target: str, n: int, start: int, step: int, kind: str = "vote_content"
) -> list[Row]:
    return [(voter, target, kind, 1, start + i * step) for i in range(n)]


def test_a_burst_on_one_author_is_flagged_with_its_evidence() -> None:
    rows = burst("fan", "star", 15, 0, 5 * MIN) + burst("fan", "other", 3, HOUR, MIN)
    rows += burst("bob", "star", 2, 0, HOUR)  # an ordinary admirer
    found = serial_voting(votes(rows))
    assert len(found) == 1
    f = found[0]
    assert f.kind == SERIAL_VOTING and f.accounts == ("fan",)
    assert f.evidence["target"] == "star" and f.evidence["votes"] == 15
    assert f.evidence["share_of_voters_votes"] == pytest.approx(15 / 18, abs=1e-4)
    assert f.evidence["window_start_ns"] == 0
    assert 0 < f.severity <= 1


@pytest.mark.parametrize(
    "rows",
    [
        pytest.param(burst("fan", "star", 9, 0, MIN), id="one vote short"),
        pytest.param(
            burst("fan", "star", 10, 0, 3 * HOUR), id="ten votes spread over thirty hours"
        ),
        pytest.param(
            burst("fan", "star", 10, 0, MIN)
            + [("fan", f"a{i}", "vote_content", 1, 2 * MIN + i) for i in range(11)],
            id="an active voter: under half its votes",
        ),
        pytest.param(
            [("fan", "star", "vote_content", -1, i * MIN) for i in range(20)],
            id="downvotes are not serial upvoting",
        ),
        pytest.param(burst("fan", "star", 20, 0, MIN, kind="endorse"), id="endorsements"),
    ],
)
def test_near_misses_do_not_fire(rows: list[Row]) -> None:
    assert serial_voting(votes(rows)) == []


def test_vote_kinds_add_up_and_the_densest_window_is_reported() -> None:
    rows = burst("fan", "star", 4, 0, MIN, "vote_account")
    rows += burst("fan", "star", 4, 10 * MIN, MIN, "vote_content")
    rows += burst("fan", "star", 4, 20 * MIN, MIN, "vote_label")
    rows += burst("fan", "star", 10, 5 * 86_400 * 10**9, MIN)  # a second, smaller burst
    found = serial_voting(votes(rows))
    assert len(found) == 1 and found[0].evidence["votes"] == 12


def test_fingerprint_ignores_drifting_figures() -> None:
    a = serial_voting(votes(burst("fan", "star", 12, 0, MIN)))[0]
    b = serial_voting(votes(burst("fan", "star", 30, 7 * HOUR, MIN)))[0]
    assert a.severity != b.severity and a.evidence != b.evidence
    assert a.fingerprint == b.fingerprint
    c = serial_voting(votes(burst("fan", "idol", 12, 0, MIN)))[0]
    assert c.fingerprint != a.fingerprint


def test_bad_parameters() -> None:
    with pytest.raises(ValueError):
        serial_voting(votes(burst("a", "b", 3, 0, MIN)), min_share=0)


@pytest.mark.parametrize("seed", [1, 2])
def test_the_simulated_serial_voters_are_found_and_nobody_else(seed: int) -> None:
    """The `serial voter` scenario of bench/accuracy.py: 3 serial voters, 40-60 upvotes at
    one honest target within two hours each; through the real ingest path."""
    import json

    cfg = dataclasses.replace(_clean(PRESETS["small"]), serial_voters=3, seed=seed)
    world, ev, _ = simulated(cfg)
    found = serial_voting(ev)
    truth = world.truth
    assert {f.accounts[0] for f in found} == set(truth.serial_voters)
    assert {f.evidence["target"] for f in found} <= set(truth.serial_targets)
    assert json.dumps([f.evidence for f in found])  # JSON-ready


def test_a_ring_is_found_with_its_evidence_and_an_honest_world_gives_nothing() -> None:
    from scoring.detect import VOTE_RING, vote_rings
    from scoring.graph import EdgeTable
    from tests.test_collusion import honest_world, with_ring

    n = 30
    names = [f"a{i:02d}" for i in range(n + 5)]

    def table(edges: list[tuple[int, int, float]]) -> EdgeTable:
        return EdgeTable.from_records([(names[s], names[d], w, "general") for s, d, w in edges])

    edges, ring = with_ring(honest_world(n), n, 5, cycle=True)
    found = vote_rings(table(edges), [names[0]])
    assert len(found) == 1
    f = found[0]
    assert f.kind == VOTE_RING and f.accounts == tuple(sorted(names[r] for r in ring))
    assert f.evidence["retention"] == pytest.approx(1.0)
    assert f.evidence["amplification"] > 3  # a closed ring holds several times its inflow
    assert len(f.evidence["heaviest_internal_edges"]) == 5
    assert 0 < f.severity <= 1
    assert vote_rings(table(honest_world(n)), [names[0]]) == []
    # The same ring next epoch, with other weights: the same fingerprint.
    heavier = [(s, d, w * 2 if s in ring else w) for s, d, w in edges]
    assert vote_rings(table(heavier), [names[0]])[0].fingerprint == f.fingerprint


@pytest.mark.parametrize("seed", [1, 2])
def test_the_simulated_vote_ring_is_found_and_nobody_else(seed: int) -> None:
    from scoring.detect import vote_rings
    from scoring.evidence import signed_edges
    from scoring.label_quality import estimate_label_quality
    from scoring.label_trust import apply_label_quality

    cfg = dataclasses.replace(_clean(PRESETS["default"]), ring=6, seed=seed)
    world, ev, labels = simulated(cfg)
    quality = estimate_label_quality(labels)
    signed = signed_edges(apply_label_quality(ev, labels, quality), half_life_days=180)
    found = vote_rings(signed.trust, world.truth.seeds)
    assert [set(f.accounts) for f in found] == [set(world.truth.ring)]


def test_serial_voting_keys_do_not_overflow_at_a_million_accounts() -> None:
    """Pair keys of accounts near the end of a 1M-account index times a year of seconds
    overflowed int64 (millions of false findings at scale): one serial voter at the end of
    the index among honest voters spread over it gives exactly one finding."""
    n = 1_000_000
    names = [f"a{i:07d}" for i in range(n)]
    rng = np.random.default_rng(3)
    k = 20_000
    src = rng.integers(0, n, k)  # keys across the whole range: the overflow wraps mid-way
    dst = rng.integers(0, n, k)
    ts = rng.integers(0, 365 * 86_400, k) * 10**9  # a year: honest, spread out
    burst_src = np.full(12, n - 1)
    burst_dst = np.full(12, n - 2)
    burst_ts = 100 * 86_400 * 10**9 + np.arange(12) * 60 * 10**9
    m = k + 12
    ev = Evidence(
        names,
        ["general"],
        np.concatenate([src, burst_src]).astype(np.int32),
        np.concatenate([dst, burst_dst]).astype(np.int32),
        np.full(m, KINDS.index("vote_account"), np.int8),
        np.ones(m, np.int8),
        np.ones(m),
        np.concatenate([ts, burst_ts]).astype(np.int64),
        np.zeros(m, np.int32),
    )
    found = serial_voting(ev)
    assert [(f.accounts, f.evidence["target"], f.evidence["votes"]) for f in found] == [
        ((names[n - 1],), names[n - 2], 12)
    ]


def test_the_ring_detector_reports_the_models_own_groups() -> None:
    """Handed the model's closed-group step (no second Louvain), the vote-ring detector
    gives the same findings as when it finds the groups itself."""
    from scoring.detect import DETECTORS, VOTE_RING, DetectorInput
    from scoring.evidence import signed_edges
    from scoring.label_quality import estimate_label_quality
    from scoring.label_trust import apply_label_quality
    from scoring.model import score_accounts

    cfg = dataclasses.replace(_clean(PRESETS["default"]), ring=6, seed=1)
    world, ev, labels = simulated(cfg)
    quality = estimate_label_quality(labels)
    edges = signed_edges(apply_label_quality(ev, labels, quality), half_life_days=180).trust
    seen: dict[str, object] = {}
    score_accounts(edges, world.truth.seeds, on_groups=lambda d, g: seen.setdefault(d, g))
    assert set(seen) >= {"global"}
    inp = DetectorInput(ev, labels, quality, edges, world.truth.seeds)
    own = DETECTORS[VOTE_RING](inp)
    handed = DETECTORS[VOTE_RING](dataclasses.replace(inp, groups=seen["global"]))  # type: ignore[arg-type]
    assert [f.fingerprint for f in handed] == [f.fingerprint for f in own]
    assert [set(f.accounts) for f in handed] == [set(world.truth.ring)]
    assert handed[0].evidence["retention"] == pytest.approx(own[0].evidence["retention"])
