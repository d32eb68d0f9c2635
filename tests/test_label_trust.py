"""Labeler quality in the trust graph, and the labels loaded from storage."""

from __future__ import annotations

import numpy as np
from sqlalchemy import Engine

from ingest.apply import BatchApplier, Message
from scoring.events import REVIEW
from scoring.evidence import AGREE, KINDS, NS_PER_DAY, Evidence
from scoring.label_quality import LabelTable, estimate_label_quality
from scoring.label_trust import apply_label_quality, quality_factors
from storage.db import make_session_factory
from storage.scoring_repo import latest_event_id, load_labels
from storage.uow import UnitOfWork
from tests.messages import encode, message

CLASSES = ("a", "b", "c", "d")


def world() -> LabelTable:
    """good1..3 agree with gold on 40 items; spam answers a fixed wrong-ish pattern."""
    rng = np.random.default_rng(3)
    labels: list[tuple[str, str, str]] = []
    gold: dict[str, str] = {}
    items = {}
    for i in range(40):
        key = f"t/{i}"
        truth = CLASSES[i % 4]
        gold[key] = truth
        items[key] = ("images", CLASSES)
        for who in ("good1", "good2", "good3"):
            labels.append((who, key, truth))
        labels.append(("spam", key, CLASSES[int(rng.integers(4))]))
    return LabelTable.from_records(labels, items=items, gold=gold)


def review_evidence(table: LabelTable) -> Evidence:
    """One accepted review into each labeler, from a reviewer account."""
    accounts = ["rev", *table.labelers]
    n = len(table.labelers)
    return Evidence(
        accounts=accounts,
        domains=["images"],
        src=np.zeros(n, dtype=np.int32),
        dst=np.arange(1, n + 1, dtype=np.int32),
        kind=np.full(n, KINDS.index(REVIEW), dtype=np.int8),
        value=np.ones(n, dtype=np.int8),
        weight=np.ones(n),
        ts_ns=np.full(n, 10 * NS_PER_DAY, dtype=np.int64),
        domain=np.zeros(n, dtype=np.int32),
    )


def test_spammers_earn_nothing_from_reviews_and_good_labelers_agree() -> None:
    table = world()
    quality = estimate_label_quality(table)
    factors = quality_factors(quality)
    assert factors[("spam", "images")] < 0.25
    assert min(factors[(g, "images")] for g in ("good1", "good2", "good3")) > 0.8

    ev = apply_label_quality(review_evidence(table), table, quality)
    review_w = {
        ev.accounts[d]: float(w)
        for d, k, w in zip(ev.dst, ev.kind, ev.weight, strict=True)
        if KINDS[k] == REVIEW
    }
    assert review_w["spam"] < 0.25 * review_w["good1"]

    agree = [
        (ev.accounts[s], ev.accounts[d])
        for s, d, k in zip(ev.src, ev.dst, ev.kind, strict=True)
        if KINDS[k] == AGREE
    ]
    assert ("good1", "good2") in agree and ("good2", "good1") in agree
    spam_agree = [
        float(w)
        for s, d, k, w in zip(ev.src, ev.dst, ev.kind, ev.weight, strict=True)
        if KINDS[k] == AGREE and "spam" in (ev.accounts[s], ev.accounts[d])
    ]
    good_agree = [
        float(w)
        for s, d, k, w in zip(ev.src, ev.dst, ev.kind, ev.weight, strict=True)
        if KINDS[k] == AGREE and "spam" not in (ev.accounts[s], ev.accounts[d])
    ]
    assert not spam_agree or max(spam_agree) < 0.25 * min(good_agree)


def test_load_labels_takes_gold_only_from_the_task_poster(engine: Engine) -> None:
    msgs = [
        message(
            "task_posted",
            {"task_id": "t", "poster": "owner.near", "domain": "images", "labels": ["cat", "dog"]},
        ),
        message(
            "label_submitted",
            {"task_id": "t", "item_id": "i1", "labeler": "l1.near", "label": "cat"},
        ),
        message(
            "label_submitted",
            {"task_id": "t", "item_id": "i2", "labeler": "l1.near", "label": "dog"},
        ),
        message(
            "label_reviewed",
            {
                "task_id": "t",
                "item_id": "i1",
                "labeler": "l1.near",
                "reviewer": "r.near",
                "verdict": "accept",
            },
        ),
        message("gold_revealed", {"task_id": "t", "poster": "owner.near", "gold": {"i1": "cat"}}),
        message("gold_revealed", {"task_id": "t", "poster": "mallory.near", "gold": {"i2": "cat"}}),
    ]
    applier = BatchApplier(make_session_factory(engine, writer=True), "g")
    applier.apply([Message("ev", 0, i, None, encode(m)) for i, m in enumerate(msgs)])
    with UnitOfWork(make_session_factory(engine)) as uow:
        table = load_labels(uow.session, latest_event_id(uow.session))
    prefix = "labels.market.near/t/"
    assert sorted(table.items) == [prefix + "i1", prefix + "i2"]
    assert {table.items[i]: g for i, g in table.gold.items()} == {prefix + "i1": "cat"}
    i1 = table.items.index(prefix + "i1")
    assert table.item_domain[i1] == "images" and table.item_classes[i1] == ("cat", "dog")
    assert table.reviews is not None and len(table.reviews) == 1
    assert table.reviews.reviewers == ["r.near"]
