"""Sybil-cluster detector (scoring.detect.sybil): a hand-built farm, near misses, simulated
worlds through the real ingest path."""

from __future__ import annotations

import dataclasses
import json
import random

import numpy as np
import pytest

from bench.accuracy import _clean
from scoring.detect.inputs import DetectorInput
from scoring.detect.sybil import SYBIL_CLUSTER, run, sybil_clusters
from scoring.evidence import Evidence, signed_edges
from scoring.graph import EdgeTable
from scoring.label_quality import estimate_label_quality
from scoring.label_trust import apply_label_quality
from simulate.world import PRESETS
from tests.test_detect import Row, simulated, votes

DAY = 86_400 * 10**9
SEEDS = ["h00", "h01", "h02"]


def honest(n: int = 40, out: int = 6, seed: int = 3) -> list[Row]:
    """``n`` honest accounts, each upvoting ``out`` others at random (the first three are
    the seeds, who also endorse a few peers)."""
    rng = random.Random(seed)
    names = [f"h{i:02d}" for i in range(n)]
    rows: list[Row] = []
    for a in names:
        for b in rng.sample([x for x in names if x != a], out):
            rows.append((a, b, "vote_account", 1, rng.randrange(30 * DAY)))
        if a in SEEDS:
            for b in rng.sample(names[3:], 4):
                rows.append((a, b, "endorse", 1, rng.randrange(30 * DAY)))
    return rows


def farm(size: int = 6, attack: tuple[str, ...] = ("h10",), votes_each: int = 1) -> list[Row]:
    """Sybils endorsing and upvoting every other sybil; each of ``attack`` (honest
    accounts) endorses one sybil; each sybil upvotes two honest accounts as cover."""
    sybils = [f"s{i}" for i in range(size)]
    rows: list[Row] = []
    for i, a in enumerate(sybils):
        for b in sybils:
            if a != b:
                rows.append((a, b, "endorse", 1, 20 * DAY + i))
                rows += [(a, b, "vote_content", 1, 21 * DAY + i + k) for k in range(votes_each)]
        rows += [
            (a, f"h{20 + i}", "vote_content", 1, 22 * DAY),
            (a, f"h{4 + i}", "vote_account", 1, 0),
        ]
    for k, h in enumerate(attack):
        rows.append((h, sybils[k % size], "endorse", 1, 25 * DAY))
    return rows


def find(rows: list[Row], **kw: float) -> list:
    ev = votes(rows)
    return sybil_clusters(ev, trust_edges(ev), SEEDS, **kw)  # type: ignore[arg-type]


def trust_edges(ev: Evidence) -> EdgeTable:
    return signed_edges(ev, half_life_days=180).trust


def test_a_farm_behind_one_attack_edge_is_flagged_with_its_evidence() -> None:
    found = find(honest() + farm())
    assert len(found) == 1
    f = found[0]
    sybils = [f"s{i}" for i in range(6)]
    assert f.kind == SYBIL_CLUSTER and f.accounts == tuple(sybils)
    ev = f.evidence
    assert ev["members"] == sybils
    assert ev["internal_links"] == 30 and ev["attack_links"] == 1
    assert ev["attack_edges"] == [{"from": "h10", "to": "s0"}]
    assert ev["cut"] == pytest.approx(1 / 31, abs=1e-4)
    assert ev["supporters_median"] == 5
    assert ev["trust_ratio_median"] < 0.3 and ev["trust_ratio_max"] >= ev["trust_ratio_median"]
    assert ev["thresholds"]["max_cut"] == 0.2
    assert 0.5 < f.severity <= 1
    assert json.dumps(ev)  # JSON-ready
    assert f.identity == {"members": sybils}


def test_fingerprint_ignores_drifting_figures() -> None:
    a = find(honest() + farm())[0]
    b = find(honest() + farm(attack=("h10", "h11"), votes_each=3))[0]
    assert a.evidence != b.evidence and a.severity != b.severity
    assert a.fingerprint == b.fingerprint
    c = find(honest() + farm(size=7))[0]
    assert c.fingerprint != a.fingerprint


@pytest.mark.parametrize(
    "rows",
    [
        pytest.param(honest(), id="an honest world"),
        pytest.param(
            honest() + farm(attack=tuple(f"h{i:02d}" for i in range(3, 33))),
            id="a well-connected group: 30 honest supporters",
        ),
        pytest.param(honest() + farm(size=2), id="a pair is not a farm"),
        pytest.param(honest() + farm(size=5), id="four supporters each: too few"),
        pytest.param(
            honest() + farm() + [(s, f"s{i}", "endorse", 1, 0) for s in SEEDS for i in range(6)],
            id="the seeds vouch for them",
        ),
        pytest.param(
            honest() + [(f"h{i:02d}", "h30", "vote_account", 1, i) for i in range(3, 40)],
            id="a popular honest account",
        ),
    ],
)
def test_near_misses_do_not_fire(rows: list[Row]) -> None:
    assert find(rows) == []


def test_downvotes_and_self_votes_are_no_support() -> None:
    rows = honest() + [(a, b, k, -v if a != b else v, t) for a, b, k, v, t in farm()]
    assert find(rows) == []


def test_bad_parameters() -> None:
    rows = honest() + farm()
    for bad in (
        {"alpha": 0.0},
        {"min_supporters": 0},
        {"min_size": 1},
        {"max_trust_ratio": 0.0},
        {"max_cut": 1.0},
        {"min_inside": 0.0},
    ):
        with pytest.raises(ValueError):
            find(rows, **bad)


def test_no_seed_in_the_graph_finds_nothing() -> None:
    ev = votes(honest() + farm())
    assert sybil_clusters(ev, trust_edges(ev), ["nobody"]) == []


@pytest.mark.parametrize("seed", [1, 2])
def test_the_simulated_sybil_region_is_found_and_nobody_else(seed: int) -> None:
    """The `sybil region` scenario of bench/accuracy.py on `small` worlds (8 sybils, 2
    attack edges), through the real ingest path, via the epoch's DetectorInput."""
    p = PRESETS["small"]
    cfg = dataclasses.replace(_clean(p), sybils=p.sybils, attack_edges=p.attack_edges, seed=seed)
    world, ev, labels = simulated(cfg)
    quality = estimate_label_quality(labels)
    signed = signed_edges(apply_label_quality(ev, labels, quality), half_life_days=180)
    found = run(DetectorInput(ev, labels, quality, signed.trust, world.truth.seeds))
    flagged = {a for f in found for a in f.accounts}
    sybils = set(world.truth.sybils)
    assert len(flagged & sybils) / len(sybils) >= 0.8
    assert len(flagged & sybils) / len(flagged) >= 0.9
    assert len(found) == 1 and found[0].evidence["attack_links"] >= 1
    assert all(
        e["to"] in sybils and e["from"] not in sybils for e in found[0].evidence["attack_edges"]
    )


def test_an_honest_simulated_world_gives_nothing() -> None:
    world, ev, labels = simulated(dataclasses.replace(_clean(PRESETS["small"]), seed=1))
    quality = estimate_label_quality(labels)
    signed = signed_edges(apply_label_quality(ev, labels, quality), half_life_days=180)
    assert run(DetectorInput(ev, labels, quality, signed.trust, world.truth.seeds)) == []


def test_an_empty_epoch_gives_nothing() -> None:
    ev = votes([])
    assert sybil_clusters(ev, trust_edges(ev), SEEDS) == []
    assert np.asarray(ev.src).size == 0
