"""Dawid-Skene labeler quality: planted accuracies, priors, gold, reviews, domains, properties."""

from __future__ import annotations

import doctest
import json
import statistics
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import scoring.label_quality as lq
from scoring.label_quality import (
    LabelQuality,
    LabelQualityConvergenceError,
    LabelTable,
    ReviewTable,
    aggregate_labels,
    estimate_label_quality,
    majority_vote,
)
from scoring.propagation import ConvergenceError
from simulate import PRESETS, generate

CLASSES4 = ("c0", "c1", "c2", "c3")

# --------------------------------------------------------------------------- synthetic crowds


def planted_crowd(
    accuracy: np.ndarray,
    *,
    n_items: int = 3000,
    per_item: int = 5,
    k: int = 4,
    seed: int = 0,
    gold_fraction: float = 0.0,
) -> tuple[LabelTable, np.ndarray]:
    """Items with uniform true classes; each labeled by ``per_item`` distinct labelers
    drawn uniformly; a labeler is right with its planted accuracy, otherwise picks a
    wrong class uniformly (the one-coin model). Returns the table and the true classes."""
    rng = np.random.default_rng(seed)
    n_lab = accuracy.size
    truth = rng.integers(0, k, n_items)
    who = np.argsort(rng.random((n_items, n_lab)), axis=1)[:, :per_item]
    item = np.repeat(np.arange(n_items), per_item)
    labeler = who.reshape(-1)
    right = rng.random(item.size) < accuracy[labeler]
    wrong = (truth[item] + rng.integers(1, k, item.size)) % k
    classes = tuple(f"c{j}" for j in range(k))
    names = np.array(classes)
    gold_items = np.flatnonzero(rng.random(n_items) < gold_fraction)
    table = LabelTable(
        labelers=[f"w{i:03d}.near" for i in range(n_lab)],
        items=[f"task/{i}" for i in range(n_items)],
        item_domain=["images"] * n_items,
        item_classes=[classes] * n_items,
        item=item.astype(np.int32),
        labeler=labeler.astype(np.int32),
        label=names[np.where(right, truth[item], wrong)],
        gold={int(i): classes[truth[i]] for i in gold_items},
    )
    return table, truth


def per_labeler(q: LabelQuality, domain: str = "images") -> tuple[np.ndarray, np.ndarray]:
    """Estimated accuracy and label count indexed by labeler (NaN / 0 if absent)."""
    d = q.domains.index(domain)
    rows = q.domain == d
    est = np.full(len(q.labelers), np.nan)
    n = np.zeros(len(q.labelers), dtype=np.int64)
    est[q.labeler[rows]] = q.accuracy[rows]
    n[q.labeler[rows]] = q.n_labels[rows]
    return est, n


# --------------------------------------------------------------------------- (1) planted accuracies


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recovers_planted_accuracies(seed: int) -> None:
    """200 labelers with accuracy in [0.55, 0.98], 3000 items x 5 labels, 4 classes:
    mean absolute error < 0.05 over labelers with >= 50 labels (measured 0.038-0.043;
    crowd-kit's OneCoinDawidSkene 0.037-0.042 on the same data)."""
    acc = np.random.default_rng(100 + seed).uniform(0.55, 0.98, 200)
    table, _ = planted_crowd(acc, seed=seed)
    q = estimate_label_quality(table)
    est, n = per_labeler(q)
    enough = n >= 50
    assert enough.sum() >= 150
    assert np.abs(est - acc)[enough].mean() < 0.05
    assert np.corrcoef(est[enough], acc[enough])[0, 1] > 0.9
    # The global row of a one-domain labeler is its domain row.
    g = q.domain == 0
    np.testing.assert_allclose(q.accuracy[g], est[q.labeler[g]])


# --------------------------------------------------------------------------- (2) spammers


def test_random_spammers_are_estimated_near_chance() -> None:
    rng = np.random.default_rng(5)
    acc = rng.uniform(0.55, 0.98, 200)
    spam = np.arange(0, 200, 10)  # 20 labelers answering uniformly at random
    acc[spam] = 0.25
    table, _ = planted_crowd(acc, seed=5)
    q = estimate_label_quality(table)
    est, _ = per_labeler(q)
    assert abs(est[spam].mean() - 0.25) < 0.03
    assert est[spam].max() < 0.4
    honest = np.setdiff1d(np.arange(200), spam)
    assert est[spam].max() < np.median(est[honest])
    rows = np.flatnonzero(q.domain == 1)
    np.testing.assert_allclose(q.chance[rows], 0.25)


# --------------------------------------------------------------------------- (3) the prior


def test_three_labels_are_pulled_toward_the_prior() -> None:
    """Three right answers on gold items: empirical rate 1, prior mean 1/4 (chance on
    four classes), posterior mean (0.5 + 3) / (2 + 3) = 0.7, strictly between."""
    items = {f"t/{i}": ("images", CLASSES4) for i in range(6)}
    gold = {f"t/{i}": "c0" for i in range(6)}
    labels = [("new.near", f"t/{i}", "c0") for i in range(3)]
    labels += [("bad.near", f"t/{i}", "c1") for i in range(3, 6)]
    q = estimate_label_quality(LabelTable.from_records(labels, items=items, gold=gold))
    good = q.accuracy_of("new.near", "images")
    bad = q.accuracy_of("bad.near", "images")
    assert good is not None and bad is not None
    assert 0.25 < good < 1.0
    assert good == pytest.approx(3.5 / 5)
    assert 0.0 < bad < 0.25
    assert bad == pytest.approx(0.5 / 5)
    k = q.row("new.near", "images")
    assert k is not None
    low, high = q.interval(0.9)
    assert low[k] < good < high[k]
    assert q.n_labels[k] == 3


def test_prior_mean_can_be_set() -> None:
    items = {f"t/{i}": ("images", CLASSES4) for i in range(3)}
    gold = {f"t/{i}": "c0" for i in range(3)}
    labels = [("new.near", f"t/{i}", "c0") for i in range(3)]
    table = LabelTable.from_records(labels, items=items, gold=gold)
    q = estimate_label_quality(table, prior_mean=2 / 3, prior_strength=3.0)  # Beta(2, 1)
    assert q.accuracy_of("new.near") == pytest.approx((2 + 3) / (3 + 3))


@pytest.mark.parametrize("n", [10, 1000])
def test_uncorroborated_labels_leave_the_prior(n: int) -> None:
    """Labels nobody else gave, reviewed or answered in gold carry no evidence about
    their labeler (the Dawid-Skene fixed point is the prior mean either way), so they
    are not counted: however many, they leave the prior and its width."""
    items = {f"t/{i}": ("text", ("yes", "no")) for i in range(n + 1)}
    labels = [("solo.near", f"t/{i}", "yes") for i in range(n)]
    labels += [("x.near", f"t/{n}", "yes"), ("y.near", f"t/{n}", "no")]
    for cm in (None, 100):
        q = estimate_label_quality(
            LabelTable.from_records(labels, items=items), confusion_min_labels=cm
        )
        k = q.row("solo.near", "text")
        assert k is not None
        assert q.accuracy[k] == 0.5 and q.n_labels[k] == 0 and q.n_submitted[k] == n
        low, high = q.interval(0.9)
        assert (low[k], high[k]) == pytest.approx((0.05, 0.95))  # Beta(1, 1)
        assert q.item_posterior(0) == pytest.approx({"yes": 0.5, "no": 0.5})
        assert q.iterations < 10


# --------------------------------------------------------------------------- (4) gold


def colluders_table(with_gold: bool) -> LabelTable:
    """Three colluders always answer c1; two honest labelers answer the truth, c0."""
    n = 30
    items = {f"t/{i}": ("images", CLASSES4) for i in range(n)}
    labels = []
    for i in range(n):
        labels += [(f"col{j}.near", f"t/{i}", "c1") for j in range(3)]
        labels += [(f"hon{j}.near", f"t/{i}", "c0") for j in range(2)]
    gold = {f"t/{i}": "c0" for i in range(n)} if with_gold else {}
    return LabelTable.from_records(labels, items=items, gold=gold)


def test_gold_stops_a_colluding_majority() -> None:
    q = estimate_label_quality(colluders_table(with_gold=True))
    for j in range(3):
        acc = q.accuracy_of(f"col{j}.near", "images")
        assert acc is not None and acc < 0.05
    for j in range(2):
        acc = q.accuracy_of(f"hon{j}.near", "images")
        assert acc is not None and acc > 0.9
    assert set(aggregate_labels(q)) == {"c0"}
    assert all(
        q.item_posterior(i) == {"c0": 1.0, "c1": 0.0, "c2": 0.0, "c3": 0.0} for i in range(30)
    )
    # Without gold the majority defines the truth: the reason gold is clamped.
    q0 = estimate_label_quality(colluders_table(with_gold=False))
    col = q0.accuracy_of("col0.near")
    hon = q0.accuracy_of("hon0.near")
    assert col is not None and hon is not None and col > 0.9 > hon


def test_a_saboteur_below_chance_cannot_push_an_item_off_the_truth() -> None:
    """``sab`` fails the gold on purpose, then gives the true answer (c2) on the target
    item, which ``a`` (20/20 on gold) also says and ``b`` (18/20) contradicts (c3).
    Inverting sab's answer would hand the item to b; the floor at chance ignores sab."""
    items = {f"t/{i}": ("images", CLASSES4) for i in range(21)}
    gold = {f"t/{i}": "c0" for i in range(20)}
    labels = [("a.near", f"t/{i}", "c0") for i in range(20)]
    labels += [("b.near", f"t/{i}", "c0" if i < 18 else "c3") for i in range(20)]
    labels += [("sab.near", f"t/{i}", "c1") for i in range(20)]
    labels += [("a.near", "t/20", "c2"), ("b.near", "t/20", "c3"), ("sab.near", "t/20", "c2")]
    table = LabelTable.from_records(labels, items=items, gold=gold)
    floored = estimate_label_quality(table)
    plain = estimate_label_quality(table, invert_below_chance=True)
    assert aggregate_labels(floored)[20] == "c2"
    assert aggregate_labels(plain)[20] == "c3"
    for q in (floored, plain):
        sab = q.accuracy_of("sab.near")
        assert sab is not None and sab < 0.1  # reported unclipped either way (chance 0.25)


def test_gold_outside_the_declared_space_is_added_to_it() -> None:
    t = LabelTable.from_records(
        [("a.near", "t/1", "yes"), ("b.near", "t/1", "no")],
        items={"t/1": ("general", ("yes", "no"))},
        gold={"t/1": "unsure"},
    )
    q = estimate_label_quality(t)
    assert q.item_classes[0] == ("yes", "no", "unsure")
    assert aggregate_labels(q) == ["unsure"]
    assert q.correct[q.domain == 1].tolist() == [0.0, 0.0]


# --------------------------------------------------------------------------- (5) reviews


def reviewed_table(verdict: int | None) -> LabelTable:
    """``x.near`` labels 8 items alone. ``rev.near`` reviewed 20 labels on gold items
    (all verdicts right) and, if ``verdict`` is given, reviews x's 8 labels."""
    items = {f"t/{i}": ("text", ("pos", "neg", "neu")) for i in range(28)}
    gold = {f"t/{i}": "pos" for i in range(8, 28)}
    labels = [("x.near", f"t/{i}", "pos") for i in range(8)]
    reviews = []
    for i in range(8, 28):
        right = i % 2 == 0
        labels.append(("y.near", f"t/{i}", "pos" if right else "neg"))
        reviews.append((f"t/{i}", "y.near", "rev.near", 1 if right else -1))
    if verdict is not None:
        reviews += [(f"t/{i}", "x.near", "rev.near", verdict) for i in range(8)]
    return LabelTable.from_records(labels, items=items, gold=gold, reviews=reviews)


def test_reviews_move_the_estimate_in_their_direction() -> None:
    base = estimate_label_quality(reviewed_table(None)).accuracy_of("x.near")
    up = estimate_label_quality(reviewed_table(+1))
    down = estimate_label_quality(reviewed_table(-1))
    up_acc, down_acc = up.accuracy_of("x.near"), down.accuracy_of("x.near")
    assert base is not None and up_acc is not None and down_acc is not None
    assert base == pytest.approx(1 / 3)  # alone: the prior mean (chance, 3 classes)
    assert down_acc < base < up_acc
    # Weak evidence: 8 accepts from a reliable reviewer do not make x certain.
    assert up_acc < 0.9
    # The reviewer's reliability is learned on the gold items.
    rel = up.reviewer_reliability[up.reviewers.index("rev.near")]
    assert rel > 0.85
    assert up.reviewer_reviews[up.reviewers.index("rev.near")] == 28


def test_self_reviews_and_reviews_of_missing_labels_are_ignored() -> None:
    t0 = reviewed_table(None)
    base = estimate_label_quality(t0).accuracy_of("x.near")
    t = LabelTable.from_records(
        [("x.near", f"t/{i}", "pos") for i in range(8)],
        items={f"t/{i}": ("text", ("pos", "neg", "neu")) for i in range(8)},
        reviews=[(f"t/{i}", "x.near", "x.near", 1) for i in range(8)]
        + [("t/0", "nobody.near", "rev.near", 1)],
    )
    q = estimate_label_quality(t)
    assert q.accuracy_of("x.near") == pytest.approx(base, abs=1e-6)
    assert q.reviewer_reviews.tolist() == [0, 0]


# --------------------------------------------------------------------------- (6) vs majority vote


@pytest.mark.parametrize(("per_item", "seed"), [(3, 0), (5, 1)])
def test_aggregated_labels_beat_majority_vote(per_item: int, seed: int) -> None:
    """Heterogeneous skill (a few experts, many weak labelers): weighting by estimated
    accuracy beats one-label-one-vote (measured 0.792 vs 0.717 with 3 labels per item,
    0.866 vs 0.803 with 5)."""
    rng = np.random.default_rng(seed)
    acc = np.concatenate([rng.uniform(0.85, 0.98, 40), rng.uniform(0.35, 0.6, 110)])
    table, truth = planted_crowd(acc, per_item=per_item, seed=seed)
    q = estimate_label_quality(table)
    right = np.array(CLASSES4)[truth]
    em = (np.array(aggregate_labels(q)) == right).mean()
    mv = (np.array(majority_vote(table)) == right).mean()
    assert em > mv + 0.02


def test_majority_vote_and_aggregate_break_ties_by_name() -> None:
    t = LabelTable.from_records(
        [("a", "x", "no"), ("b", "x", "yes"), ("c", "y", "b"), ("d", "y", "a")],
        items={"x": ("general", ("yes", "no")), "y": ("general", ("b", "a"))},
    )
    assert majority_vote(t) == ["no", "a"]
    q = estimate_label_quality(t)
    assert aggregate_labels(q) == ["no", "a"]


# --------------------------------------------------------------------------- (7) properties


@st.composite
def random_tables(draw: st.DrawFn) -> LabelTable:
    n_lab = draw(st.integers(1, 6))
    n_items = draw(st.integers(1, 8))
    spaces = [("a", "b"), ("a", "b", "c"), ("x", "y", "z", "w"), ()]
    domains = ["d1", "d2"]
    meta = {
        f"i{i}": (draw(st.sampled_from(domains)), draw(st.sampled_from(spaces)))
        for i in range(n_items)
    }
    pairs = draw(
        st.lists(
            st.tuples(st.integers(0, n_lab - 1), st.integers(0, n_items - 1)),
            min_size=1,
            max_size=30,
            unique=True,
        )
    )
    labels = []
    for w, i in pairs:
        space = meta[f"i{i}"][1] or ("a", "b", "c")
        labels.append((f"w{w}", f"i{i}", draw(st.sampled_from([*space, "junk"]))))
    gold = {}
    for i in draw(st.lists(st.integers(0, n_items - 1), max_size=3, unique=True)):
        space = meta[f"i{i}"][1] or ("a", "b")
        gold[f"i{i}"] = draw(st.sampled_from(space))
    reviews = [
        (f"i{i}", f"w{w}", f"r{draw(st.integers(0, 2))}", draw(st.sampled_from([1, -1])))
        for w, i in draw(st.lists(st.sampled_from(pairs), max_size=8, unique=True))
    ]
    return LabelTable.from_records(labels, items=meta, gold=gold, reviews=reviews)


def permuted(t: LabelTable, rng: np.random.Generator) -> LabelTable:
    """The same table with labelers, items, reviewers and rows in another order."""
    pl = rng.permutation(len(t.labelers))  # new index -> old index
    pi = rng.permutation(len(t.items))
    rv = t.reviews
    assert rv is not None
    pr = rng.permutation(len(rv.reviewers))
    inv_l, inv_i, inv_r = np.argsort(pl), np.argsort(pi), np.argsort(pr)
    rows = rng.permutation(len(t))
    rrows = rng.permutation(len(rv))
    return LabelTable(
        labelers=[t.labelers[k] for k in pl],
        items=[t.items[k] for k in pi],
        item_domain=[t.item_domain[k] for k in pi],
        item_classes=[t.item_classes[k] for k in pi],
        item=inv_i[t.item[rows]].astype(np.int32),
        labeler=inv_l[t.labeler[rows]].astype(np.int32),
        label=[t.label[k] for k in rows],
        gold={int(inv_i[i]): g for i, g in t.gold.items()},
        reviews=ReviewTable(
            reviewers=[rv.reviewers[k] for k in pr],
            item=inv_i[rv.item[rrows]].astype(np.int32),
            labeler=inv_l[rv.labeler[rrows]].astype(np.int32),
            reviewer=inv_r[rv.reviewer[rrows]].astype(np.int32),
            verdict=rv.verdict[rrows],
        ),
    )


def by_name(q: LabelQuality) -> tuple[dict[tuple[str, str], float], dict[str, dict[str, float]]]:
    acc = {(r.labeler, r.domain): r.accuracy for r in q.records()}
    post = {q.items[i]: q.item_posterior(i) for i in range(len(q.items))}
    return acc, post


@settings(max_examples=150, deadline=None)
@given(random_tables(), st.integers(0, 2**32 - 1))
def test_properties_permutation_ranges_and_normalisation(t: LabelTable, seed: int) -> None:
    q = estimate_label_quality(t, confusion_min_labels=None, tol=1e-10, max_iter=5000)
    acc = q.accuracy
    assert np.all((acc > 0) & (acc < 1))
    assert np.all((q.correct >= -1e-12) & (q.correct <= q.n_labels + 1e-12))
    assert np.all((q.reviewer_reliability > 0) & (q.reviewer_reliability < 1))
    for i in range(len(q.items)):
        dist = q.item_posterior(i)
        assert all(0 <= p <= 1 for p in dist.values())
        assert sum(dist.values()) == pytest.approx(1.0) if dist else not q.item_classes[i]
    for i, g in t.gold.items():
        assert q.item_posterior(i)[g] == 1.0
    # EM never decreases the log posterior (one-coin model).
    assert np.all(np.diff(q.objective) >= -1e-9 * np.abs(q.objective[1:]).max(initial=1.0))
    # Global rows pool the domain rows.
    for w in np.unique(q.labeler):
        rows = q.labeler == w
        g = rows & (q.domain == 0)
        assert q.n_labels[g].sum() == q.n_labels[rows & (q.domain > 0)].sum()
    # Relabeling permutes the output.
    q2 = estimate_label_quality(
        permuted(t, np.random.default_rng(seed)),
        confusion_min_labels=None,
        tol=1e-10,
        max_iter=5000,
    )
    acc1, post1 = by_name(q)
    acc2, post2 = by_name(q2)
    assert acc1.keys() == acc2.keys()
    for key, value in acc1.items():
        assert acc2[key] == pytest.approx(value, abs=1e-7)
    assert post1.keys() == post2.keys()
    for item_key, dist in post1.items():
        assert dist.keys() == post2[item_key].keys()
        for c, p in dist.items():
            assert post2[item_key][c] == pytest.approx(p, abs=1e-7)


def test_deterministic() -> None:
    acc = np.random.default_rng(9).uniform(0.55, 0.98, 50)
    table, _ = planted_crowd(acc, n_items=500, seed=9, gold_fraction=0.1)
    a, b = estimate_label_quality(table), estimate_label_quality(table)
    assert np.array_equal(a.alpha, b.alpha) and np.array_equal(a.posterior, b.posterior)
    assert a.iterations == b.iterations


# --------------------------------------------------------------------------- (8) domains


def test_domains_are_estimated_separately() -> None:
    """``ann`` is right on every image item and wrong on every text item."""
    items: dict[str, tuple[str, tuple[str, ...]]] = {
        f"img/{i}": ("images", CLASSES4) for i in range(20)
    }
    items |= {f"txt/{i}": ("text", ("pos", "neg")) for i in range(20)}
    gold = {f"img/{i}": "c2" for i in range(20)} | {f"txt/{i}": "neg" for i in range(20)}
    labels = [("ann.near", f"img/{i}", "c2") for i in range(20)]
    labels += [("ann.near", f"txt/{i}", "pos") for i in range(20)]
    labels += [("bob.near", f"txt/{i}", "neg") for i in range(10)]
    q = estimate_label_quality(LabelTable.from_records(labels, items=items, gold=gold))
    assert q.domains == ["global", "images", "text"]
    img, txt, both = (q.accuracy_of("ann.near", d) for d in ("images", "text", "global"))
    assert img is not None and txt is not None and both is not None
    assert img == pytest.approx((0.5 + 20) / 22)
    assert txt == pytest.approx(1 / 22)
    assert txt < both < img
    assert q.accuracy_of("bob.near", "images") is None
    assert q.accuracy_of("nobody.near") is None
    recs = [r for r in q.records() if r.labeler == "ann.near"]
    assert [(r.domain, r.n_labels) for r in recs] == [("global", 40), ("images", 20), ("text", 20)]
    assert recs[0].chance == pytest.approx((20 / 4 + 20 / 2) / 40)


# --------------------------------------------------------------------------- label spaces


def test_unknown_label_space_uses_the_labels_seen() -> None:
    t = LabelTable.from_records(
        [("a", "x", "yes"), ("b", "x", "no"), ("c", "x", "yes"), ("a", "lone", "maybe")],
        gold={"g": "ok"},
    )
    q = estimate_label_quality(t)
    assert q.item_classes == [("no", "yes"), ("maybe",), ("ok",)]
    assert aggregate_labels(q) == ["yes", "maybe", "ok"]
    # One possible class says nothing about a labeler: that label is not counted.
    assert q.n_labels[(q.domain == 0) & (q.labeler == 0)].tolist() == [1]


def test_a_label_outside_the_declared_space_is_an_error() -> None:
    items = {f"t/{i}": ("images", CLASSES4) for i in range(4)}
    gold = {f"t/{i}": "c0" for i in range(4)}
    labels = [("a.near", f"t/{i}", "c0") for i in range(2)]
    labels += [("a.near", f"t/{i}", "kitten") for i in range(2, 4)]
    q = estimate_label_quality(LabelTable.from_records(labels, items=items, gold=gold))
    k = q.row("a.near", "images")
    assert k is not None
    assert q.n_labels[k] == 4 and q.correct[k] == pytest.approx(2.0)


def test_confusion_matrices_help_systematically_biased_labelers() -> None:
    """Half the labelers answer c1 when the truth is c0 (90%). The one-coin model cannot
    represent that and falls below majority vote; confusion matrices for labelers with
    >= 100 labels learn it (measured 0.81 one-coin, 0.82 majority, 0.93 hybrid)."""
    rng = np.random.default_rng(3)
    n_lab, n_items, k = 100, 4000, 4
    truth = rng.integers(0, k, n_items)
    who = np.argsort(rng.random((n_items, n_lab)), axis=1)[:, :5]
    item, labeler = np.repeat(np.arange(n_items), 5), who.reshape(-1)
    conf = np.zeros((n_lab, k, k))
    for w in range(n_lab):
        a = rng.uniform(0.6, 0.95)
        conf[w] = np.full((k, k), (1 - a) / (k - 1))
        np.fill_diagonal(conf[w], a)
        if w % 2 == 0:
            conf[w, 0] = [0.06, 0.9, 0.02, 0.02]
    cum = conf[labeler, truth[item]].cumsum(axis=1)
    value = (rng.random(item.size)[:, None] > cum).sum(axis=1)
    table = LabelTable(
        labelers=[f"w{i}" for i in range(n_lab)],
        items=[f"i{i}" for i in range(n_items)],
        item_domain=["images"] * n_items,
        item_classes=[CLASSES4] * n_items,
        item=item.astype(np.int32),
        labeler=labeler.astype(np.int32),
        label=np.array(CLASSES4)[value],
    )
    right = np.array(CLASSES4)[truth]
    one = estimate_label_quality(table, confusion_min_labels=None)
    hybrid = estimate_label_quality(table)  # default threshold: 100 labels
    acc_one = (np.array(aggregate_labels(one)) == right).mean()
    acc_hybrid = (np.array(aggregate_labels(hybrid)) == right).mean()
    acc_mv = (np.array(majority_vote(table)) == right).mean()
    assert acc_hybrid > max(acc_one, acc_mv) + 0.05


# --------------------------------------------------------------------------- errors


def test_convergence_error_is_typed() -> None:
    acc = np.random.default_rng(4).uniform(0.55, 0.98, 30)
    table, _ = planted_crowd(acc, n_items=200, seed=4)
    with pytest.raises(LabelQualityConvergenceError) as err:
        estimate_label_quality(table, max_iter=1)
    assert isinstance(err.value, ConvergenceError)
    assert err.value.iterations == 1 and err.value.residual > 0
    assert "Dawid-Skene EM did not converge in 1 iterations" in str(err.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"item": np.array([0, 5], dtype=np.int32)}, "LabelTable.item has indices"),
        ({"labeler": np.array([0, 0], dtype=np.int32)}, "more than one label"),
        ({"item_domain": ["global"]}, "reserved"),
        ({"label": ["a"]}, "1 values for 2 label rows"),
        ({"gold": {3: "a"}}, "gold has item index 3"),
        ({"labelers": ["a", "a"]}, "duplicate account ids"),
        ({"item": np.array([0.0, 0.0])}, "integer indices"),
        (
            {
                "reviews": ReviewTable(
                    ["r"], np.array([0]), np.array([0]), np.array([0]), np.array([2])
                )
            },
            "verdict",
        ),
    ],
)
def test_invalid_tables_are_rejected(change: dict[str, object], message: str) -> None:
    fields = {
        "labelers": ["a", "b"],
        "items": ["x"],
        "item_domain": ["general"],
        "item_classes": [("a", "b")],
        "item": np.array([0, 0], dtype=np.int32),
        "labeler": np.array([0, 1], dtype=np.int32),
        "label": ["a", "b"],
        "gold": {},
        "reviews": None,
    }
    fields.update(change)
    with pytest.raises(ValueError, match=message):
        estimate_label_quality(LabelTable(**fields))  # type: ignore[arg-type]


def test_bad_parameters_are_rejected() -> None:
    t = LabelTable.from_records([("a", "x", "y")])
    for kwargs in (
        {"prior_strength": 0.0},
        {"prior_mean": 1.0},
        {"review_prior": (0.0, 1.0)},
        {"max_review_reliability": 1.0},
        {"confusion_min_labels": 0},
        {"tol": 0.0},
    ):
        with pytest.raises(ValueError):
            estimate_label_quality(t, **kwargs)  # type: ignore[arg-type]


def test_empty_table() -> None:
    q = estimate_label_quality(LabelTable.from_records([]))
    assert q.labeler.size == 0 and q.posterior.size == 0 and q.domains == ["global"]
    assert aggregate_labels(q) == [] and majority_vote(LabelTable.from_records([])) == []


def test_docstring_examples() -> None:
    assert doctest.testmod(lq).failed == 0


# --------------------------------------------------------------------------- a simulated world


def table_from_messages(messages: Sequence[object]) -> LabelTable:
    """Build the label table from a world's Kafka messages, as storage would: the
    latest label per (labeler, item); gold only from the task's own poster."""
    tasks: dict[tuple[str, str], tuple[str, str, tuple[str, ...]]] = {}
    labels: dict[tuple[str, str], str] = {}
    gold: dict[str, str] = {}
    reviews: list[tuple[str, str, str, int]] = []
    for msg in messages:
        value = msg.value  # type: ignore[attr-defined]
        env = json.loads(value["log"].removeprefix("EVENT_JSON:"))
        if env["standard"] != "renown":
            continue
        contract = value["contract_id"]
        for d in env["data"]:
            event = env["event"]
            if event == "task_posted":
                tasks[(contract, d["task_id"])] = (
                    d["poster"],
                    d.get("domain", "general"),
                    tuple(d.get("labels", ())),
                )
            elif event == "label_submitted":
                key = f"{contract}/{d['task_id']}/{d['item_id']}"
                labels[(d["labeler"], key)] = d["label"]
            elif event == "gold_revealed":
                if tasks.get((contract, d["task_id"]), ("",))[0] == d["poster"]:
                    for item_id, g in d["gold"].items():
                        gold[f"{contract}/{d['task_id']}/{item_id}"] = g
            elif event == "label_reviewed":
                key = f"{contract}/{d['task_id']}/{d['item_id']}"
                verdict = 1 if d["verdict"] == "accept" else -1
                reviews.append((key, d["labeler"], d["reviewer"], verdict))
    items = {}
    for _, key in labels:
        contract, task, _ = key.split("/")
        _, domain, space = tasks[(contract, task)]
        items[key] = (domain, space)
    records = [(who, key, label) for (who, key), label in labels.items()]
    return LabelTable.from_records(records, items=items, gold=gold, reviews=reviews)


def test_simulated_world_spammers_score_below_honest_labelers() -> None:
    world = generate(PRESETS["small"])
    truth = world.truth
    table = table_from_messages(world.messages)
    assert len(table) > 200 and table.gold and table.reviews is not None and len(table.reviews)
    q = estimate_label_quality(table)
    honest = [a for a in truth.honest if q.accuracy_of(a) is not None]
    spam = [q.accuracy_of(a) for a in truth.spammers]
    assert len(honest) > 40 and None not in spam
    median_honest = statistics.median(q.accuracy_of(a) or 0.0 for a in honest)
    assert max(s or 0.0 for s in spam) < median_honest
    # Aggregated item labels agree with the planted gold at least as well as majority vote.
    right = [truth.gold[k.split("/")[1]][k.split("/")[2]] for k in table.items]
    em = np.mean([a == b for a, b in zip(aggregate_labels(q), right, strict=True)])
    mv = np.mean([a == b for a, b in zip(majority_vote(table), right, strict=True)])
    assert em >= mv
