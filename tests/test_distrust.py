"""Distrust after propagation, and the evidence-to-edges rule with diminishing returns."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.distrust import apply_distrust, distrust_mass
from scoring.events import ENDORSE, REVIEW, VOTE_ACCOUNT
from scoring.evidence import KINDS, NS_PER_DAY, Evidence, repeat_curve, signed_edges
from scoring.graph import EdgeTable
from scoring.model import GLOBAL_DOMAIN, score_accounts


def evidence(rows: list[tuple[str, str, str, int, float, int, str]]) -> Evidence:
    """(src, dst, kind, value, weight, ts_ns, domain) rows to an Evidence table."""
    accounts = sorted({r[0] for r in rows} | {r[1] for r in rows})
    domains = sorted({r[6] for r in rows})
    a = {x: i for i, x in enumerate(accounts)}
    d = {x: i for i, x in enumerate(domains)}
    return Evidence(
        accounts=accounts,
        domains=domains,
        src=np.array([a[r[0]] for r in rows], dtype=np.int32),
        dst=np.array([a[r[1]] for r in rows], dtype=np.int32),
        kind=np.array([KINDS.index(r[2]) for r in rows], dtype=np.int8),
        value=np.array([r[3] for r in rows], dtype=np.int8),
        weight=np.array([r[4] for r in rows], dtype=np.float64),
        ts_ns=np.array([r[5] for r in rows], dtype=np.int64),
        domain=np.array([d[r[6]] for r in rows], dtype=np.int32),
    )


def edge_map(table: EdgeTable, kinds: np.ndarray) -> dict[tuple[str, str, str], float]:
    return {
        (table.accounts[s], table.accounts[d], KINDS[k]): float(w)
        for s, d, k, w in zip(table.src, table.dst, kinds, table.weight, strict=True)
    }


def test_repeats_have_diminishing_returns_and_signs_split() -> None:
    now = 100 * NS_PER_DAY
    rows = [("v", "a", VOTE_ACCOUNT, 1, 1.0, now, "general")] * 7
    rows += [("v", "b", VOTE_ACCOUNT, 1, 1.0, now, "general")]
    rows += [("v", "c", VOTE_ACCOUNT, -1, 1.0, now, "general")]
    rows += [
        ("r", "a", REVIEW, -1, 1.0, now, "general"),
        ("a", "a", ENDORSE, 1, 1.0, now, "general"),
    ]
    signed = signed_edges(evidence(rows), half_life_days=30)
    trust = edge_map(signed.trust, signed.trust_kind)
    assert trust == {("v", "a", VOTE_ACCOUNT): 3.0, ("v", "b", VOTE_ACCOUNT): 1.0}
    assert edge_map(signed.distrust, signed.distrust_kind) == {
        ("v", "c", VOTE_ACCOUNT): 1.0,
        ("r", "a", REVIEW): 1.0,
    }


def test_decay_halves_evidence_at_the_half_life() -> None:
    now = 100 * NS_PER_DAY
    rows = [
        ("v", "a", VOTE_ACCOUNT, 1, 1.0, now - 30 * NS_PER_DAY, "general"),
        ("v", "b", VOTE_ACCOUNT, 1, 1.0, now, "general"),
    ]
    trust = edge_map(
        *(lambda s: (s.trust, s.trust_kind))(signed_edges(evidence(rows), half_life_days=30))
    )
    assert trust[("v", "a", VOTE_ACCOUNT)] == pytest.approx(float(repeat_curve(np.array(0.5))))
    assert trust[("v", "b", VOTE_ACCOUNT)] == pytest.approx(1.0)


def test_tiny_evidence_keeps_a_positive_weight_and_a_valid_table() -> None:
    """Regression: log2(1 + 1e-17) is exactly 0 in floating point, which made an agreement
    edge between two labelers near chance a zero-weight edge and the epoch fail in
    EdgeTable.validate (found on the `large` simulated vote-ring world)."""
    now = 100 * NS_PER_DAY
    rows = [
        ("a", "b", "agree", 1, 1e-17, now, "general"),
        ("b", "a", "agree", 1, 1e-300, now, "general"),
        ("a", "c", VOTE_ACCOUNT, 1, 1.0, now - 90_000 * NS_PER_DAY, "general"),  # decays to 0
        ("c", "a", VOTE_ACCOUNT, 1, 1.0, now, "general"),
    ]
    signed = signed_edges(evidence(rows), half_life_days=30)
    signed.trust.validate()
    trust = edge_map(signed.trust, signed.trust_kind)
    assert 0 < trust[("a", "b", "agree")] == pytest.approx(0.25 * 1e-17 / np.log(2), rel=1e-9)
    assert trust[("c", "a", VOTE_ACCOUNT)] == 1.0
    assert ("a", "c", VOTE_ACCOUNT) not in trust  # underflowed to nothing: dropped
    assert float(repeat_curve(np.array(1e-17))) > 0


def test_apply_distrust_takes_from_the_target_in_proportion_to_the_distruster() -> None:
    trust = np.array([0.4, 0.4, 0.2])
    out = np.array([1.0, 10.0, 1.0])
    # 0 spends all its weight on distrusting 2; 1 spends a tenth of its weight on it.
    adjusted, received = apply_distrust(
        trust, np.array([0, 1]), np.array([2, 2]), np.array([1.0, 1.0]), out
    )
    assert received[2] == pytest.approx(0.4 + 0.04)
    assert adjusted[2] == 0.0  # never negative
    assert adjusted[:2].tolist() == [0.4, 0.4]


def test_distrust_from_untrusted_accounts_counts_for_nothing() -> None:
    trust = np.array([0.7, 0.3, 0.0])
    adjusted, received = apply_distrust(
        trust, np.array([2, 2]), np.array([0, 1]), np.array([5.0, 5.0]), np.array([1, 1, 10.0])
    )
    assert received.tolist() == [0.0, 0.0, 0.0]
    assert adjusted.tolist() == trust.tolist()


def test_distrust_rejects_a_distruster_with_no_out_weight() -> None:
    with pytest.raises(ValueError, match="out_weight"):
        distrust_mass(np.ones(2), np.array([0]), np.array([1]), np.array([1.0]), np.zeros(2))


SEEDED = [
    ("mod", "ann", 2.0, "general"),
    ("ann", "bob", 1.0, "general"),
    ("bob", "cat", 1.0, "general"),
    ("cat", "ann", 1.0, "general"),
    ("mod", "cat", 1.0, "general"),
]


def _scores(
    edges: EdgeTable, distrust: EdgeTable | None, passes: int = 2
) -> dict[str, tuple[float, int]]:
    # The closed-group cut is off: ann -> bob -> cat -> ann is a seedless cycle, which it
    # would cut, and these tests are about distrust alone.
    return {
        s.account: (s.trust, s.rank)
        for s in score_accounts(
            edges, ["mod"], distrust=distrust, distrust_passes=passes, group_retention=None
        )
        if s.domain == GLOBAL_DOMAIN
    }


def _negative(edges: EdgeTable, rows: list[tuple[str, str, float]]) -> EdgeTable:
    index = {a: i for i, a in enumerate(edges.accounts)}
    return EdgeTable(
        accounts=edges.accounts,
        domains=edges.domains,
        src=np.array([index[r[0]] for r in rows], dtype=np.int32),
        dst=np.array([index[r[1]] for r in rows], dtype=np.int32),
        weight=np.array([r[2] for r in rows], dtype=np.float64),
        domain=np.zeros(len(rows), dtype=np.int32),
    )


def test_one_pass_a_trusted_downvote_lowers_the_target_and_nobody_else() -> None:
    edges = EdgeTable.from_records([*SEEDED, ("zed", "ann", 1.0, "general")])
    before = _scores(edges, None, passes=1)
    after = _scores(edges, _negative(edges, [("ann", "cat", 1.0)]), passes=1)
    assert after["cat"][0] < before["cat"][0]
    for account in ("mod", "ann", "bob", "zed"):
        assert after[account][0] == pytest.approx(before[account][0], abs=1e-15)


def test_second_pass_withdraws_what_the_distrusted_account_vouched_with() -> None:
    """cat vouches for ann; once cat is distrusted, ann (and bob, whom ann vouches for)
    lose what cat passed them, and that mass goes back to the seed, not to anyone else."""
    edges = EdgeTable.from_records([*SEEDED, ("zed", "ann", 1.0, "general")])
    negative = _negative(edges, [("mod", "cat", 1.0)])
    one = _scores(edges, negative, passes=1)
    two = _scores(edges, negative, passes=2)
    assert two["cat"][0] < one["cat"][0]
    assert two["ann"][0] < one["ann"][0]
    assert two["bob"][0] < one["bob"][0]
    assert two["mod"][0] > one["mod"][0]
    assert two["zed"][0] == one["zed"][0] == 0.0
    # No pass creates trust: the total after distrust never exceeds one.
    assert sum(t for t, _ in two.values()) <= 1.0 + 1e-12


def test_distrust_passes_must_be_positive() -> None:
    edges = EdgeTable.from_records(SEEDED)
    with pytest.raises(ValueError, match="distrust_passes"):
        score_accounts(edges, ["mod"], distrust_passes=0)


@settings(max_examples=40, deadline=None)
@given(
    targets=st.lists(st.sampled_from(["mod", "ann", "bob", "cat"]), min_size=1, max_size=6),
    weights=st.lists(st.floats(0.01, 100.0), min_size=6, max_size=6),
)
def test_distrust_from_a_zero_trust_account_changes_nothing(
    targets: list[str], weights: list[float]
) -> None:
    """zed has no trust inflow (nobody trusts it): its downvotes, however many, do nothing."""
    edges = EdgeTable.from_records([*SEEDED, ("zed", "ann", 1.0, "general")])
    before = _scores(edges, None)
    negative = _negative(edges, [("zed", t, w) for t, w in zip(targets, weights, strict=False)])
    assert _scores(edges, negative) == before


def test_a_warm_start_gives_the_same_scores() -> None:
    edges = EdgeTable.from_records(
        [*SEEDED, ("zed", "ann", 1.0, "general"), ("ann", "zed", 1.0, "art")]
    )
    negative = _negative(edges, [("ann", "cat", 0.5)])
    cold = score_accounts(edges, ["mod"], distrust=negative)
    warm: dict[str, dict[str, float]] = {}
    for s in cold:
        warm.setdefault(s.domain, {})[s.account] = s.trust
    warm[GLOBAL_DOMAIN]["newcomer.near"] = 0.3  # accounts gone since are ignored
    again = score_accounts(edges, ["mod"], distrust=negative, warm=warm)
    assert [(s.domain, s.account, s.rank) for s in again] == [
        (s.domain, s.account, s.rank) for s in cold
    ]
    for a, b in zip(again, cold, strict=True):
        assert a.trust == pytest.approx(b.trust, abs=1e-9)
