"""Burst detector (scoring.detect.burst): a hand-built crew, near misses, simulated worlds
through the real ingest path."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from bench.accuracy import _clean
from scoring.detect.burst import BURST, bursts, first_seen, run
from scoring.detect.inputs import DetectorInput
from scoring.evidence import Evidence, signed_edges
from scoring.label_quality import estimate_label_quality
from simulate.world import PRESETS
from tests.test_detect import MIN, Row, simulated, votes

DAY = 86_400 * 10**9
OLD = [f"old{i:02d}" for i in range(20)]


def platform() -> list[Row]:
    """Twenty accounts active from day 0, and a target they know, over thirty days."""
    rows: list[Row] = []
    for i, a in enumerate(OLD):
        rows.append((a, "star", "vote_account", 1, i * MIN))
        rows.append((a, OLD[(i + 1) % len(OLD)], "vote_content", 1, (i + 1) * DAY))
    return rows


def crew(
    n: int,
    *,
    target: str = "star",
    born: int = 20 * DAY,
    start: int = 20 * DAY + 6 * 3_600 * 10**9,
    step: int = 3 * MIN,
    extra: int = 0,
) -> list[Row]:
    """``n`` accounts first seen at ``born`` (an upvote of an old account), then each
    acting on ``target`` from ``start``, ``step`` apart (plus ``extra`` content votes)."""
    rows: list[Row] = []
    for i in range(n):
        who = f"new{i:02d}"
        rows.append((who, OLD[i % len(OLD)], "vote_content", 1, born + i))
        t = start + i * step
        rows.append((who, target, "endorse" if i % 2 else "vote_account", 1, t))
        rows += [(who, target, "vote_content", 1, t + k + 1) for k in range(extra)]
    return rows


def test_a_crew_of_new_accounts_is_flagged_with_its_evidence() -> None:
    found = bursts(votes(platform() + crew(10)))
    assert len(found) == 1
    f = found[0]
    names = tuple(f"new{i:02d}" for i in range(10))
    assert f.kind == BURST and f.accounts == names
    ev = f.evidence
    assert ev["target"] == "star" and ev["new_actors"] == 10
    assert ev["densest_window_actors"] == 10 and ev["acts"] == 10
    assert ev["acts_by_kind"] == {"vote_account": 5, "endorse": 5}
    assert ev["upvotes"] == 10 and ev["downvotes"] == 0
    start = 20 * DAY + 6 * 3_600 * 10**9
    assert ev["episode_start_ns"] == ev["densest_window_start_ns"] == start
    assert [a["account"] for a in ev["actors"]] == list(names)
    assert ev["actors"][0]["age_s_at_first_act"] == 6 * 3_600
    assert 0 < f.severity <= 1
    assert f.identity == {"target": "star", "episode_start_ns": start}
    assert f.beneficiaries == ("star",)  # it gains; it is not a culprit
    assert json.dumps(ev)  # JSON-ready


def test_first_seen_from_the_accounts_table_is_used_when_given() -> None:
    ev = votes(platform() + crew(10))
    seen = first_seen(ev)
    assert bursts(ev, seen) == bursts(ev)
    # Known since day 0 on chain (say, created and idle): not new, no burst.
    old = np.where(np.char.startswith(np.array(ev.accounts), "new"), 0, seen)
    assert bursts(ev, old) == []
    # -1: an account the accounts table does not hold; its evidence stands in.
    assert bursts(ev, np.where(np.char.startswith(np.array(ev.accounts), "new"), -1, seen))
    with pytest.raises(ValueError):
        bursts(ev, seen[:-1])


def test_fingerprint_ignores_drifting_figures() -> None:
    a = bursts(votes(platform() + crew(10)))[0]
    # The next epoch: the same crew has also upvoted the target's content.
    b = bursts(votes(platform() + crew(10, extra=3)))[0]
    assert a.evidence != b.evidence and a.severity == b.severity
    assert a.fingerprint == b.fingerprint
    c = bursts(votes(platform() + crew(10, target="old05")))[0]
    assert c.fingerprint != a.fingerprint


def test_the_episode_start_does_not_move_when_later_acts_arrive() -> None:
    """An epoch cut in the middle of the burst: the later epoch's acts all come after it,
    so the episode (and so the identity) starts at the same act."""
    rows = platform() + crew(16, step=3 * MIN)
    cut = 20 * DAY + 6 * 3_600 * 10**9 + 9 * 3 * MIN  # after 10 of the 16 acts
    early = bursts(votes([r for r in rows if r[4] <= cut]))
    late = bursts(votes(rows))
    assert len(early) == len(late) == 1
    assert early[0].identity == late[0].identity
    assert len(early[0].accounts) == 10 and len(late[0].accounts) == 16


@pytest.mark.parametrize(
    "rows",
    [
        pytest.param(platform() + crew(7), id="one actor short"),
        pytest.param(platform() + crew(12, step=70 * MIN), id="too slow: one an hour"),
        pytest.param(platform() + crew(12, born=0), id="old accounts"),
        pytest.param(
            platform() + crew(12, born=10 * DAY, start=18 * DAY), id="eight days old: not new"
        ),
        pytest.param(crew(12, born=DAY, start=DAY + MIN), id="the platform's first days"),
        pytest.param(
            platform() + [("new00", "star", "vote_content", 1, 20 * DAY + i) for i in range(20)],
            id="one new account acting twenty times",
        ),
        pytest.param(
            platform()
            + crew(5)
            + [(r[0].replace("new", "nov"), r[1], r[2], r[3], r[4]) for r in crew(5, target="o")],
            id="two targets, five each",
        ),
    ],
)
def test_near_misses_do_not_fire(rows: list[Row]) -> None:
    assert bursts(votes(rows)) == []


def test_a_downvote_brigade_is_a_burst_too() -> None:
    rows = platform() + [(a, b, k, -1 if b == "star" else v, t) for a, b, k, v, t in crew(9)]
    found = bursts(votes(rows))
    assert len(found) == 1 and found[0].evidence["downvotes"] == 9


def test_bad_parameters() -> None:
    ev = votes(platform())
    for bad in ({"window_s": 0}, {"min_actors": 1}, {"max_age_s": 0}, {"settle_s": -1}):
        with pytest.raises(ValueError):
            bursts(ev, **bad)  # type: ignore[arg-type]


def _input(ev: Evidence, labels: object, seeds: list[str]) -> DetectorInput:
    quality = estimate_label_quality(labels)  # type: ignore[arg-type]
    edges = signed_edges(ev, half_life_days=180).trust
    return DetectorInput(ev, labels, quality, edges, seeds)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [1, 2])
def test_the_simulated_bursts_are_found_and_nobody_else(seed: int) -> None:
    """Three bursts (10-20 fresh accounts each) on a `small` honest world, through the real
    ingest path; the epoch loaded no first-seen times, so the fallback is used."""
    cfg = dataclasses.replace(_clean(PRESETS["small"]), bursts=3, seed=seed)
    world, ev, labels = simulated(cfg)
    found = run(_input(ev, labels, world.truth.seeds))
    flagged = {a for f in found for a in f.accounts}
    crews = set(world.truth.burst_accounts)
    assert len(flagged & crews) / len(crews) >= 0.8
    assert len(flagged & crews) / len(flagged) >= 0.9
    # Every target is pushed (co-authors of the target's content gain from it too).
    assert set(world.truth.burst_targets) <= {f.evidence["target"] for f in found}


def test_an_honest_simulated_world_gives_nothing() -> None:
    world, ev, labels = simulated(dataclasses.replace(_clean(PRESETS["small"]), seed=1))
    assert run(_input(ev, labels, world.truth.seeds)) == []


def test_a_popular_target_drawing_first_time_voters_all_day_is_no_burst() -> None:
    """A viral account: 12 distinct brand-new voters every hour for ten days. Each hour
    alone holds more than min_actors new actors, but that is the target's usual stream;
    a crew of 60 in one hour on top of it still stands out."""
    hour = 3_600 * 10**9
    stream: list[Row] = []
    k = 0
    for h in range(3 * 24, 13 * 24):
        for j in range(12):
            who = f"fan{k:05d}"
            k += 1
            t = h * hour + j * 4 * MIN
            stream.append((who, OLD[k % len(OLD)], "vote_content", 1, t - 1))  # first seen
            stream.append((who, "star", "vote_account", 1, t))
    assert bursts(votes(platform() + stream)) == []
    attacked = (
        platform() + stream + crew(60, born=10 * DAY, start=10 * DAY + hour // 2, step=MIN // 2)
    )
    found = bursts(votes(attacked))
    assert len(found) == 1
    assert {f"new{i:02d}" for i in range(60)} <= set(found[0].accounts)
    assert found[0].evidence["usual_new_actors_per_window"] > 5  # the stream, 12 an hour
    with pytest.raises(ValueError, match="surge_z"):
        bursts(votes(platform()), surge_z=-1)
