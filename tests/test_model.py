"""The edge table and the first scoring model."""

from __future__ import annotations

import dataclasses
import itertools
import random
from collections import defaultdict

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.graph import EdgeTable
from scoring.model import (
    GLOBAL_DOMAIN,
    AccountScore,
    percentiles,
    ranks,
    score_accounts,
    trust_to_score,
)

Record = tuple[str, str, float, str]

RECORDS: list[Record] = [
    ("mod", "alice", 1.0, "code"),
    ("mod", "bob", 1.0, "code"),
    ("alice", "bob", 2.0, "code"),
    ("bob", "carol", 1.0, "code"),
    ("alice", "carol", 1.0, "art"),
    ("carol", "alice", 1.0, "art"),
    ("carol", "carol", 4.0, "art"),  # self loop, ignored by propagation
    ("dave", "erin", 1.0, "art"),  # unseeded pair: no trust reaches it
    ("erin", "dave", 1.0, "art"),
]


def by_domain(rows: list[AccountScore]) -> dict[str, dict[str, AccountScore]]:
    out: dict[str, dict[str, AccountScore]] = defaultdict(dict)
    for r in rows:
        assert r.account not in out[r.domain], "one row per account and domain"
        out[r.domain][r.account] = r
    return dict(out)


def pagerank_reference(graph: nx.DiGraph, seeds: list[str], alpha: float) -> dict[str, float]:
    g = graph.copy()
    g.add_nodes_from(seeds)
    p = dict.fromkeys(seeds, 1.0)
    pr: dict[str, float] = nx.pagerank(
        g, alpha=1 - alpha, personalization=p, dangling=p, tol=1e-15, max_iter=100_000
    )
    return pr


# --------------------------------------------------------------------------- EdgeTable


def test_from_records_indexes_in_order_of_first_appearance() -> None:
    t = EdgeTable.from_records(RECORDS)
    assert t.accounts == ["mod", "alice", "bob", "carol", "dave", "erin"]
    assert t.domains == ["code", "art"]
    assert t.src.dtype == np.int32 and t.dst.dtype == np.int32
    assert t.weight.dtype == np.float64
    assert t.domain.dtype == np.int16
    assert t.n_edges == len(RECORDS) and t.n_accounts == 6
    assert (t.accounts[t.src[2]], t.accounts[t.dst[2]], t.weight[2]) == ("alice", "bob", 2.0)


def test_from_records_empty() -> None:
    t = EdgeTable.from_records([])
    assert t.accounts == [] and t.domains == [] and t.n_edges == 0
    t.validate()


def _table(**changes: object) -> EdgeTable:
    base = EdgeTable(
        accounts=["a", "b", "c"],
        domains=["general"],
        src=np.array([0, 1], dtype=np.int32),
        dst=np.array([1, 2], dtype=np.int32),
        weight=np.array([1.0, 2.0]),
        domain=np.array([0, 0], dtype=np.int16),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"src": np.array([0, 1, 2], dtype=np.int32)}, "equal lengths"),
        ({"src": np.array([[0, 1]], dtype=np.int32)}, "1-D"),
        ({"dst": [1, 2]}, "numpy array"),
        ({"dst": np.array([1, 3], dtype=np.int32)}, r"dst has account indices in \[1, 3\]"),
        ({"src": np.array([-1, 0], dtype=np.int32)}, "src has account indices"),
        ({"src": np.array([0.0, 1.0])}, "integer indices"),
        ({"domain": np.array([0, 1], dtype=np.int16)}, "only 1 domains"),
        ({"weight": np.array([1.0, 0.0])}, r"finite and > 0; 1 edge\(s\).*row 1"),
        ({"weight": np.array([-1.0, 1.0])}, "finite and > 0"),
        ({"weight": np.array([np.nan, 1.0])}, "finite and > 0"),
        ({"weight": np.array([np.inf, 1.0])}, "finite and > 0"),
        ({"weight": np.array([1, 2])}, "floating point"),
        ({"accounts": ["a", "b", "a"]}, "duplicate account"),
        ({"domains": ["general", "general"]}, "duplicate domain"),
    ],
)
def test_validate_rejects(changes: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _table(**changes).validate()


def test_validate_accepts_a_good_table() -> None:
    _table().validate()


def test_from_records_rejects_bad_weight() -> None:
    with pytest.raises(ValueError, match="finite and > 0"):
        EdgeTable.from_records([("a", "b", 0.0, "general")])


def test_to_networkx_sums_parallel_edges_and_filters_domains() -> None:
    records = [*RECORDS, ("alice", "carol", 0.5, "art"), ("alice", "carol", 3.0, "code")]
    t = EdgeTable.from_records(records)
    g_all = t.to_networkx()
    assert g_all["alice"]["carol"]["weight"] == pytest.approx(4.5)
    assert not g_all.has_edge("carol", "carol")
    assert set(g_all) == set(t.accounts)
    g_art = t.to_networkx("art")
    assert g_art["alice"]["carol"]["weight"] == pytest.approx(1.5)
    assert set(g_art) == {"alice", "carol", "dave", "erin"}
    assert t.to_networkx("art", self_loops=True)["carol"]["carol"]["weight"] == 4.0
    with pytest.raises(ValueError, match="unknown domain"):
        t.to_networkx("music")


# --------------------------------------------------------------------------- helpers


def test_trust_to_score_scale() -> None:
    n = 1000
    trust = np.array([1 / n, 10 / n, 0.1 / n, 1e4 / n, 1e5 / n, 1e-4 / n, 1e-6 / n, 0.0])
    np.testing.assert_allclose(
        trust_to_score(trust, n), [50.0, 62.5, 37.5, 100.0, 100.0, 0.0, 0.0, 0.0]
    )


def test_ranks_break_ties_by_account_id() -> None:
    trust = np.array([0.1, 0.3, 0.3, 0.3, 0.0])
    assert ranks(trust, ["z", "c", "a", "b", "y"]).tolist() == [4, 3, 1, 2, 5]


def test_percentiles_share_ties() -> None:
    trust = np.array([0.1, 0.3, 0.3, 0.3, 0.0])
    assert percentiles(trust).tolist() == [40.0, 100.0, 100.0, 100.0, 20.0]


# --------------------------------------------------------------------------- score_accounts


def test_matches_networkx_globally_and_per_domain() -> None:
    t = EdgeTable.from_records(RECORDS)
    seeds = ["mod", "outsider"]  # "outsider" appears in no edge
    results = by_domain(score_accounts(t, seeds, tol=1e-13))
    assert set(results) == {GLOBAL_DOMAIN, "code", "art"}
    graphs = {GLOBAL_DOMAIN: t.to_networkx(), "code": t.to_networkx("code")}
    graphs["art"] = t.to_networkx("art")
    for domain, graph in graphs.items():
        want = pagerank_reference(graph, seeds, 0.15)
        got = {a: r.trust for a, r in results[domain].items()}
        assert set(got) == set(want)
        for account, value in want.items():
            assert got[account] == pytest.approx(value, abs=1e-9), (domain, account)


def test_domain_results_contain_only_that_domain_plus_seeds() -> None:
    t = EdgeTable.from_records(RECORDS)
    results = by_domain(score_accounts(t, ["mod", "outsider"]))
    assert set(results[GLOBAL_DOMAIN]) == {
        "mod",
        "alice",
        "bob",
        "carol",
        "dave",
        "erin",
        "outsider",
    }
    assert set(results["code"]) == {"mod", "alice", "bob", "carol", "outsider"}
    # "art" has no edge touching "mod", but seeds are always reported.
    assert set(results["art"]) == {"alice", "carol", "dave", "erin", "mod", "outsider"}


def test_seed_unknown_to_edges_gets_teleport_mass() -> None:
    t = EdgeTable.from_records(RECORDS)
    results = by_domain(score_accounts(t, ["mod", "outsider"]))
    for domain in results:
        assert results[domain]["outsider"].trust >= 0.15 / 2 - 1e-12


def test_unseeded_region_scores_zero() -> None:
    t = EdgeTable.from_records(RECORDS)
    results = by_domain(score_accounts(t, ["mod"]))
    for domain in (GLOBAL_DOMAIN, "art"):
        for account in ("dave", "erin"):
            r = results[domain][account]
            assert r.trust == 0.0 and r.score == 0.0


def test_only_seeds_and_no_edges() -> None:
    t = EdgeTable.from_records([])
    rows = score_accounts(t, ["b", "a"])
    assert [(r.domain, r.account, r.rank) for r in rows] == [
        (GLOBAL_DOMAIN, "a", 1),
        (GLOBAL_DOMAIN, "b", 2),
    ]
    assert all(r.trust == 0.5 and r.score == 50.0 and r.percentile == 100.0 for r in rows)


def test_output_order_global_first_then_domains_by_name_then_rank() -> None:
    t = EdgeTable.from_records(RECORDS)
    rows = score_accounts(t, ["mod"])
    keys = [(r.domain != GLOBAL_DOMAIN, r.domain, r.rank) for r in rows]
    assert keys == sorted(keys)
    assert rows[0].domain == GLOBAL_DOMAIN


def test_ties_are_ranked_by_account_id() -> None:
    # "zed" and "amy" are symmetric: both get exactly the same trust.
    t = EdgeTable.from_records([("root", "zed", 1.0, "g"), ("root", "amy", 1.0, "g")])
    rows = by_domain(score_accounts(t, ["root"]))["g"]
    assert rows["zed"].trust == rows["amy"].trust
    assert rows["amy"].rank < rows["zed"].rank
    assert rows["amy"].percentile == rows["zed"].percentile


def test_is_deterministic_and_independent_of_seed_duplicates() -> None:
    t = EdgeTable.from_records(RECORDS)
    first = score_accounts(t, ["mod", "outsider"])
    assert score_accounts(t, ["mod", "outsider"]) == first
    assert score_accounts(t, ["mod", "outsider", "mod"]) == first


def test_record_order_does_not_change_results() -> None:
    shuffled = list(RECORDS)
    random.Random(7).shuffle(shuffled)
    a = by_domain(score_accounts(EdgeTable.from_records(RECORDS), ["mod"]))
    b = by_domain(score_accounts(EdgeTable.from_records(shuffled), ["mod"]))
    assert a.keys() == b.keys()
    for domain in a:
        assert a[domain].keys() == b[domain].keys()
        for account, ra in a[domain].items():
            rb = b[domain][account]
            assert rb.trust == pytest.approx(ra.trust, abs=1e-12)
            assert (rb.rank, rb.percentile) == (ra.rank, ra.percentile)


def test_rejects_bad_seeds_and_reserved_domain() -> None:
    t = EdgeTable.from_records(RECORDS)
    with pytest.raises(TypeError, match="single string"):
        score_accounts(t, "mod")
    with pytest.raises(ValueError, match="at least one seed"):
        score_accounts(t, [])
    reserved = EdgeTable.from_records([("a", "b", 1.0, GLOBAL_DOMAIN)])
    with pytest.raises(ValueError, match="reserved"):
        score_accounts(reserved, ["a"])


def test_invalid_table_is_rejected() -> None:
    with pytest.raises(ValueError, match="finite and > 0"):
        score_accounts(_table(weight=np.array([1.0, -1.0])), ["a"])


def test_worked_example_in_docs() -> None:
    """The numbers quoted in docs/scoring.md, section 'The first model'."""
    t = EdgeTable.from_records(
        [
            ("mod", "ann", 1.0, "general"),
            ("ann", "bob", 3.0, "general"),
            ("ann", "mod", 1.0, "general"),
            ("bob", "ann", 1.0, "general"),
            ("syb", "bob", 1.0, "general"),
        ]
    )
    results = by_domain(score_accounts(t, ["mod"]))
    assert results[GLOBAL_DOMAIN] == {
        a: dataclasses.replace(r, domain=GLOBAL_DOMAIN) for a, r in results["general"].items()
    }
    rows = results[GLOBAL_DOMAIN]
    # Closed form (docs): ann = 17/37, bob = 0.6375 * ann, mod = 0.15 + 0.2125 * ann.
    assert rows["ann"].trust == pytest.approx(17 / 37, abs=1e-9)
    assert rows["bob"].trust == pytest.approx(0.6375 * 17 / 37, abs=1e-9)
    assert rows["mod"].trust == pytest.approx(0.15 + 0.2125 * 17 / 37, abs=1e-9)
    table = {
        a: (round(r.trust, 4), round(r.score, 2), r.rank, r.percentile) for a, r in rows.items()
    }
    assert table == {
        "ann": (0.4595, 53.30, 1, 100.0),
        "bob": (0.2929, 50.86, 2, 75.0),
        "mod": (0.2476, 49.95, 3, 50.0),
        "syb": (0.0, 0.0, 4, 25.0),
    }


# --------------------------------------------------------------------------- properties

ACCOUNTS = [f"acct{i}.near" for i in range(8)]
DOMAINS = ["general", "code", "art"]


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[Record], list[str]]:
    account = st.sampled_from(ACCOUNTS)
    record = st.tuples(account, account, st.floats(0.01, 10.0), st.sampled_from(DOMAINS))
    records = draw(st.lists(record, max_size=30))
    seeds = draw(st.lists(st.sampled_from([*ACCOUNTS, "seed.only"]), min_size=1, max_size=3))
    return records, seeds


@settings(max_examples=100, deadline=None)
@given(tables())
def test_property_rows_are_consistent(case: tuple[list[Record], list[str]]) -> None:
    records, seeds = case
    rows = score_accounts(EdgeTable.from_records(records), seeds)
    assert rows == score_accounts(EdgeTable.from_records(records), seeds)
    results = by_domain(rows)

    expected_domains = {GLOBAL_DOMAIN} | {d for *_, d in records}
    assert set(results) == expected_domains
    for domain, accounts in results.items():
        involved = {a for s, d, _, dom in records for a in (s, d) if domain in (dom, GLOBAL_DOMAIN)}
        assert set(accounts) == involved | set(seeds)

        rs = list(accounts.values())
        n = len(rs)
        assert sum(r.trust for r in rs) == pytest.approx(1.0, abs=1e-12)
        assert sorted(r.rank for r in rs) == list(range(1, n + 1))
        by_rank = sorted(rs, key=lambda r: r.rank)
        for hi, lo in itertools.pairwise(by_rank):
            assert (hi.trust, lo.account) >= (lo.trust, hi.account)  # trust desc, id asc
            assert hi.score >= lo.score
            assert hi.percentile >= lo.percentile
        for r in rs:
            assert 0.0 <= r.score <= 100.0
            assert 0.0 < r.percentile <= 100.0
            share = sum(o.trust <= r.trust for o in rs) / n
            assert r.percentile == pytest.approx(100.0 * share)
        assert by_rank[0].percentile == 100.0
        for seed in seeds:
            assert accounts[seed].trust > 0.0
