"""Closed groups (scoring.collusion) and their effect on scores (scoring.model)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.collusion import DEFAULT_RETENTION, ClosedGroups, closed_groups
from scoring.graph import EdgeTable
from scoring.model import GLOBAL_DOMAIN, score_accounts
from scoring.propagation import TrustMatrix

Edge = tuple[int, int, float]


def honest_world(n: int = 30, seed: int = 7) -> list[Edge]:
    """Account 0 is the seed; 1..n-1 vouch for a few random others, the seed among them."""
    rng = np.random.default_rng(seed)
    edges: list[Edge] = [(0, int(i), 1.0) for i in rng.choice(np.arange(1, n), 6, replace=False)]
    for a in range(1, n):
        for b in rng.choice(np.delete(np.arange(n), a), 3, replace=False):
            edges.append((a, int(b), float(rng.uniform(0.5, 2.0))))
    return edges


def with_ring(edges: list[Edge], n: int, size: int, *, cycle: bool) -> tuple[list[Edge], list[int]]:
    """Add ``size`` accounts n..n+size-1 that vouch only for each other (a clique, or a
    directed cycle), each given one vote by an honest account."""
    ring = list(range(n, n + size))
    out = list(edges)
    for k, r in enumerate(ring):
        out.append((1 + k, r, 1.0))  # honest accounts 1..size each vote for one member
        if cycle:
            out.append((r, ring[(k + 1) % size], 3.0))
        else:
            out.extend((r, other, 3.0) for other in ring if other != r)
    return out, ring


def groups_of(
    n: int, edges: list[Edge], seeds: list[int], retention: float = DEFAULT_RETENTION
) -> tuple[ClosedGroups, np.ndarray, np.ndarray]:
    src = np.array([e[0] for e in edges])
    dst = np.array([e[1] for e in edges])
    w = np.array([e[2] for e in edges])
    trust = TrustMatrix.from_edges(n, src, dst, w).propagate(seeds).trust
    return closed_groups(n, src, dst, w, trust, np.array(seeds), retention=retention), src, dst


@pytest.mark.parametrize("cycle", [False, True], ids=["clique", "directed cycle"])
def test_a_ring_is_one_closed_group_and_only_its_internal_edges_are_cut(cycle: bool) -> None:
    n = 30
    edges, ring = with_ring(honest_world(n), n, 5, cycle=cycle)
    g, src, dst = groups_of(n + 5, edges, [0])
    assert g.count == 1
    assert sorted(np.flatnonzero(g.group >= 0).tolist()) == ring
    assert g.retention[0] == pytest.approx(1.0)
    inside = np.isin(src, ring) & np.isin(dst, ring)
    assert g.cut.tolist() == inside.tolist()
    # Members sent everything inside: they pass nothing on; nobody else is touched.
    assert g.retain[ring].tolist() == [0.0] * 5
    assert np.all(g.retain[:n] == 1.0)


def test_a_group_that_sends_most_of_its_trust_outside_is_not_closed() -> None:
    """The near miss: the same five accounts vote for each other, but each sends more
    weight to honest accounts than to the group (retention about 0.4)."""
    n = 30
    edges, ring = with_ring(honest_world(n), n, 5, cycle=False)
    edges = [(s, d, 0.5 if s in ring else w) for s, d, w in edges]  # 4 x 0.5 inside
    edges += [(r, h, 1.0) for r in ring for h in (2, 3, 4)]  # 3 x 1.0 outside
    g, _, _ = groups_of(n + 5, edges, [0])
    assert g.count == 0
    assert not g.cut.any() and np.all(g.retain == 1.0)


def test_the_seed_region_and_honest_worlds_have_no_closed_group() -> None:
    for seed in range(5):
        edges = honest_world(40, seed)
        g, _, _ = groups_of(40, edges, [0])
        assert g.count == 0, seed


def test_a_community_holding_a_seed_is_never_closed() -> None:
    # Two accounts vouching only for each other, one of them a seed.
    g, _, _ = groups_of(3, [(0, 1, 1.0), (1, 0, 1.0), (2, 0, 1.0)], [0])
    assert g.count == 0


def test_bad_arguments() -> None:
    z = np.zeros(0, dtype=np.int64)
    with pytest.raises(ValueError, match="retention"):
        closed_groups(1, z, z, np.zeros(0), np.ones(1), np.array([0]), retention=0.0)
    with pytest.raises(ValueError, match="resolution"):
        closed_groups(1, z, z, np.zeros(0), np.ones(1), np.array([0]), resolution=0.0)


def _table(edges: list[Edge], names: list[str]) -> EdgeTable:
    return EdgeTable.from_records([(names[s], names[d], w, "general") for s, d, w in edges])


def _global(results: list) -> dict[str, float]:  # type: ignore[type-arg]
    return {r.account: r.trust for r in results if r.domain == GLOBAL_DOMAIN}


@pytest.mark.parametrize("cycle", [False, True], ids=["clique", "directed cycle"])
def test_cut_ring_holds_what_flows_in_and_drops_below_honest_accounts(cycle: bool) -> None:
    n = 30
    edges, ring = with_ring(honest_world(n), n, 5, cycle=cycle)
    names = [f"a{i:02d}" for i in range(n + 5)]
    table = _table(edges, names)
    before = _global(score_accounts(table, [names[0]], group_retention=None))
    after = _global(score_accounts(table, [names[0]]))
    honest = [before[names[i]] for i in range(1, n)]
    ring_before = [before[names[r]] for r in ring]
    ring_after = [after[names[r]] for r in ring]
    # Without the cut each member sits above the honest median (the ring amplifies what
    # flows in); with it each member holds only its own inflow from outside.
    assert min(ring_before) > float(np.median(honest))
    assert max(ring_after) < float(np.median([after[names[i]] for i in range(1, n)]))
    # That inflow is computable by hand: beta * (what the voter passes to the member).
    graph = nx.DiGraph()
    for s, d, w in edges:
        old = graph.get_edge_data(names[s], names[d], {"weight": 0.0})["weight"]
        graph.add_edge(names[s], names[d], weight=old + w)
    for k, r in enumerate(ring):
        voter = names[1 + k]
        out = sum(d["weight"] for _, _, d in graph.out_edges(voter, data=True))
        expected = 0.85 * after[voter] * graph[voter][names[r]]["weight"] / out
        assert after[names[r]] == pytest.approx(expected, rel=1e-8)


def test_closed_group_is_explained() -> None:
    n = 30
    edges, ring = with_ring(honest_world(n), n, 4, cycle=True)
    names = [f"a{i:02d}" for i in range(n + 4)]
    results = score_accounts(
        _table(edges, names), [names[0]], kinds=np.zeros(len(edges), dtype=np.int64)
    )
    by = {r.account: r for r in results if r.domain == GLOBAL_DOMAIN}
    for r in ring:
        expl = by[names[r]].explanation
        assert expl is not None
        assert expl["closed_group"] == {"members": 4, "retention": pytest.approx(1.0)}
        # The explained sources are outside the group: the cut edges carry nothing.
        assert {s["account"] for s in expl["sources"]} <= {names[i] for i in range(n)}
    assert "closed_group" not in (by[names[5]].explanation or {})


@settings(max_examples=30, deadline=None)
@given(
    sybils=st.integers(2, 8),
    density=st.floats(0.2, 1.0),
    world=st.integers(0, 1000),
)
def test_property_an_isolated_sybil_region_changes_no_honest_score(
    sybils: int, density: float, world: int
) -> None:
    """With the closed-group cut on (the default), a region no trust reaches changes
    nothing: it takes no part in the communities, so it cannot shift the honest ones."""
    n = 25
    edges = honest_world(n, world)
    names = [f"h{i:02d}" for i in range(n)] + [f"s{i:02d}" for i in range(sybils)]
    rng = np.random.default_rng(world)
    region = [
        (n + a, n + b, 1.0)
        for a in range(sybils)
        for b in range(sybils)
        if a != b and rng.random() < density
    ] or [(n, n + 1, 1.0)]
    before = _global(score_accounts(_table(edges, names), [names[0]]))
    after = _global(score_accounts(_table(edges + region, names), [names[0]]))
    for account, trust in before.items():
        assert after[account] == pytest.approx(trust, abs=1e-12), account
    assert all(after[names[n + i]] == 0.0 for i in range(sybils) if names[n + i] in after)


def test_same_evidence_same_groups() -> None:
    n = 30
    edges, _ = with_ring(honest_world(n), n, 5, cycle=False)
    a, _, _ = groups_of(n + 5, edges, [0])
    b, _, _ = groups_of(n + 5, edges, [0])
    assert a.group.tolist() == b.group.tolist() and a.cut.tolist() == b.cut.tolist()
