"""What a confirmed flag does in the pure core (scoring.sanctions, score_accounts outgoing)."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.evidence import KINDS, Evidence
from scoring.graph import EdgeTable
from scoring.label_quality import LabelTable, estimate_label_quality
from scoring.model import score_accounts
from scoring.sanctions import DEFAULT_FACTORS, Sanction, Sanctions, default_factors


def trust(edges: EdgeTable, **kw: object) -> dict[str, float]:
    return {
        r.account: r.trust
        for r in score_accounts(edges, ["seed"], **kw)  # type: ignore[arg-type]
        if r.domain == "global"
    }


CHAIN = EdgeTable.from_records(
    [
        ("seed", "a", 1.0, "d"),
        ("seed", "b", 1.0, "d"),
        ("a", "c", 1.0, "d"),
        ("b", "c", 1.0, "d"),
        ("c", "seed", 1.0, "d"),
    ]
)


def test_outgoing_zero_removes_what_an_account_gives_and_nothing_else() -> None:
    base = trust(CHAIN)
    cut = trust(CHAIN, outgoing={"a": 0.0})
    # a keeps what it receives (a little more: what it holds back returns to the seeds,
    # which give part of it back); c loses a's half of its inflow.
    assert cut["a"] >= base["a"]
    assert cut["c"] < 0.75 * base["c"]
    half = trust(CHAIN, outgoing={"a": 0.5})
    assert cut["c"] < half["c"] < base["c"]
    assert trust(CHAIN, outgoing={"a": 1.0}) == pytest.approx(base)
    assert trust(CHAIN, outgoing={"nobody": 0.0}) == pytest.approx(base)
    assert sum(cut.values()) == pytest.approx(1.0)  # held back trust returns to the seeds
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        trust(CHAIN, outgoing={"a": 1.5})


def test_several_flags_take_the_smallest_factor() -> None:
    s = Sanctions.of(
        [
            Sanction(1, "vote_ring", "x", 0.5, 1.0, "r"),
            Sanction(2, "label_spam", "x", 0.2, 0.0, "r"),
            Sanction(3, "manual", "y", 1.0, 1.0, "r"),
        ]
    )
    assert s.outgoing() == {"x": 0.2}
    assert s.labels() == {"x": 0.0}
    assert s.flag_ids == [1, 2, 3]
    assert s.retain(["y", "x"]).tolist() == [1.0, 0.2]  # type: ignore[union-attr]
    assert s.retain(["y"]) is None
    with pytest.raises(ValueError, match="trust_factor"):
        Sanction(1, "k", "x", -0.1, 1.0, "r")
    assert default_factors("label_spam") == DEFAULT_FACTORS["label_spam"] == (0.0, 0.0)
    assert default_factors("something_by_hand") == (0.0, 1.0)


def labels() -> LabelTable:
    rows = []
    gold = {}
    for i in range(20):
        item = f"t/{i}"
        gold[item] = "cat" if i % 2 else "dog"
        rows += [("good1", item, gold[item]), ("good2", item, gold[item])]
        rows.append(("spam", item, "cat"))
    items = {f"t/{i}": ("images", ("cat", "dog")) for i in range(20)}
    reviews = [("t/0", "spam", "good1", 1), ("t/1", "good2", "good1", 1)]
    return LabelTable.from_records(rows, items=items, gold=gold, reviews=reviews)


def test_a_label_factor_of_zero_drops_the_labels_and_their_reviews() -> None:
    table = labels()
    s = Sanctions.of([Sanction(7, "label_spam", "spam", 0.0, 0.0, "random")])
    kept = s.filter_labels(table)
    assert len(kept) == 40 and len(table) == 60
    assert {kept.labelers[int(i)] for i in kept.labeler} == {"good1", "good2"}
    assert kept.reviews is not None and kept.reviews.labeler.tolist() == [
        table.labelers.index("good2")
    ]
    quality = estimate_label_quality(kept)
    assert quality.accuracy_of("spam") is None and quality.accuracy_of("good1") is not None
    assert Sanctions.of([Sanction(7, "x", "spam", 0.0, 0.5, "r")]).filter_labels(table) is table


def test_label_trust_and_distrust_are_scaled() -> None:
    accounts = ["rev", "spam", "other"]
    kinds = np.array([KINDS.index(k) for k in ("review", "vote_label", "agree", "review")], np.int8)
    ev = Evidence(
        accounts,
        ["d"],
        np.array([0, 0, 0, 0], np.int32),
        np.array([1, 1, 1, 2], np.int32),
        kinds,
        np.array([1, 1, 1, 1], np.int8),
        np.ones(4),
        np.zeros(4, np.int64),
        np.zeros(4, np.int32),
    )
    s = Sanctions.of([Sanction(1, "label_spam", "spam", 0.0, 0.25, "r")])
    assert s.scale_label_trust(ev).weight.tolist() == [0.25, 0.25, 0.25, 1.0]
    distrust = EdgeTable.from_records([("spam", "rev", 1.0, "d"), ("other", "rev", 2.0, "d")])
    scaled = s.scale_distrust(distrust)
    assert scaled.n_edges == 1 and scaled.weight.tolist() == [2.0]


def test_a_score_factor_lowers_the_accounts_own_trust_and_rank_only() -> None:
    base = score_accounts(CHAIN, ["seed"])
    cut = score_accounts(CHAIN, ["seed"], outgoing={"a": 0.0}, held={"a": 0.0})
    only_out = score_accounts(CHAIN, ["seed"], outgoing={"a": 0.0})

    def glob(rows: list) -> dict[str, object]:  # type: ignore[type-arg]
        return {r.account: r for r in rows if r.domain == "global"}

    b, c, o = glob(base), glob(cut), glob(only_out)
    assert c["a"].trust == 0.0 and c["a"].rank == 4  # type: ignore[attr-defined]
    for other in ("seed", "b", "c"):  # the others are as with the outgoing factor alone
        assert c[other].trust == pytest.approx(o[other].trust)  # type: ignore[attr-defined]
    assert b["a"].rank < 4  # type: ignore[attr-defined]
    s = Sanctions.of([Sanction(1, "sybil_cluster", "a", 0.0, 0.0, "r", score_factor=0.25)])
    assert s.held() == {"a": 0.25}
    assert Sanctions.of([Sanction(1, "k", "a", 0.0, 0.0, "r")]).held() == {}
    with pytest.raises(ValueError, match="held factors"):
        score_accounts(CHAIN, ["seed"], held={"a": -1.0})
