"""Label spam: labelers whose answers are better explained by chance than by a peer's skill.

Why a test and not the accuracy estimate: Renown's accuracy posterior
(``scoring.label_quality``) is centred at chance on purpose (a new account earns no weight
for free), so every labeler with few labels sits near chance, spammer or not; a rule on
that estimate found 1 simulated spammer of 10. What separates a spammer is *how* its
labels compare with what the others say about the same items, label by label: each label
either lands where gold, the other labelers and the reviewers put the truth, or it does
not, and a labeler answering at random lands there ``1/K`` of the time whatever the truth.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from scoring.detect.finding import Finding
from scoring.detect.inputs import DetectorInput
from scoring.label_quality import LabelQuality, LabelTable, estimate_label_quality

__all__ = ["LABEL_SPAM", "label_spam", "run"]

LABEL_SPAM = "label_spam"

_MAX_WEIGHT_ACCURACY = 0.99  # a label's weight in the others' reference stays finite


def label_spam(
    labels: LabelTable,
    quality: LabelQuality | None = None,
    *,
    threshold: float = math.log(100.0),
    min_labels: int = 5,
    max_peer_skill: float = 0.9,
    max_review_reliability: float = 0.9,
    examples: int = 5,
) -> list[Finding]:
    """Labelers for whom "answers at random" explains their labels far better than
    "answers like a typical peer of the same tasks".

    Per label ``j`` (labeler ``w``, item ``i`` with ``K`` classes, label ``y``), the
    *reference* ``T_j`` is the probability that ``y`` is the true class given everything
    but ``w``'s own answer: the gold label if the poster revealed one; otherwise the other
    labelers' labels on ``i`` weighted by their estimated accuracy (the Dawid-Skene
    posterior with ``w`` left out) and the reviewers' verdicts on the labels of ``i``,
    ``w``'s included. A label outside the item's label space has ``T_j = 0``.

    A labeler who answers with skill ``d`` above chance (``d = 0`` is uniform random,
    ``d = 1`` always right; accuracy ``1/K + d (1 - 1/K)``) gives the observed label and
    its reviews with probability proportional to ``1 + d u_j``, ``u_j = K T_j - 1``,
    against 1 for a random answer. The statistic is the log-likelihood ratio

        ``log LR = -sum_j log(1 + d_j u_j)``,

    where ``d_j`` is the skill of a typical peer on items like ``i``: the median, weighted
    by evidence, of the labelers' skill estimates ``sum(u) / sum(v)`` in the item's
    (domain, label space) group, capped at ``max_peer_skill``. A labeler is flagged when
    it has at least ``min_labels`` scored labels (labels something else speaks about: gold,
    another label, a review) and ``log LR >= threshold``. One finding per labeler, over
    all its domains (global: a spammer answers at random everywhere, and pooling gives the
    test the most labels; the evidence splits the statistic by domain).

    Parameters
    ----------
    labels : LabelTable
        Labels, gold and reviews (``storage.scoring_repo.load_labels``).
    quality : LabelQuality, optional
        ``estimate_label_quality(labels)`` (estimated here when None): the accuracy that
        weighs each labeler in the others' reference, the reviewers' reliability and each
        item's classes.
    threshold : float, default log(100) = 4.61
        Log-likelihood ratio to flag at. ``exp(-log LR)`` is a likelihood ratio whose
        mean is at most 1 for any labeler at least as skilled as the peer alternative, so
        such a labeler is flagged with probability at most ``exp(-threshold)`` = 1 %
        (Markov), if the reference is calibrated. Measured on simulated worlds (seeds
        1-8): 0.6 % of honest labelers of honest worlds (weak or unlucky ones, below the
        peer alternative), 84 % (``small``) and 89 % (``default``) of spammers; at 3.0,
        1 % and 88-95 %; at 6.0, 0-0.3 % and 78-86 %.
    min_labels : int, default 5
        Scored labels below which nobody is flagged. At a peer skill of 0.9 one wrong
        label weighs ``-log(0.1) = 2.3``, so a novice with two or three labels, all wrong,
        would pass the threshold on bad luck alone (at 3: 0.9 % of honest labelers
        flagged, against 0.6 %). The simulated spammers have 8 (``small``) and 20
        (``default``) labels; honest labelers a median of 4.
    max_peer_skill : float, default 0.9
        Cap on the peer skill ``d``: the higher the alternative, the heavier each wrong
        label, and above 0.9 honest labelers weaker than their peers begin to cross the
        threshold (0.9 % of honest labelers at 0.95 in simulated honest worlds, against
        0.6 % at 0.9, for 4 points of recall; at 0.85, 0-0.3 % for 4-6 points less).
    max_review_reliability : float, default 0.9
        Cap on a reviewer's reliability when weighing its verdict, as in
        :func:`~scoring.label_quality.estimate_label_quality`: one review is weak evidence.
    examples : int, default 5
        Labels shown in the evidence: those that weigh most towards "random".

    Returns
    -------
    list of Finding
        Sorted by severity, highest first; severity is ``min(1, log LR / (4 threshold))``
        (1/4 at the threshold, 1 at a likelihood ratio of 10^8 with the default one; the
        simulated spammers of ``default`` worlds reach 0.3-1).

    Raises
    ------
    ValueError
        If a parameter is out of range, or ``quality`` was estimated from other items.

    Notes
    -----
    Cost: O(m K) for m labels on items of K classes, plus sorts, and one Python pass over
    the labels to look up their classes; the Dawid-Skene estimate dominates when
    ``quality`` is None.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> truth = rng.integers(0, 4, 40)
    >>> rows = [(f"peer{p}", f"t/{i}", "abcd"[int(t)]) for i, t in enumerate(truth)
    ...         for p in range(3)]
    >>> rows += [("spam", f"t/{i}", "abcd"[int(rng.integers(0, 4))]) for i in range(20)]
    >>> table = LabelTable.from_records(
    ...     rows, items={f"t/{i}": ("images", tuple("abcd")) for i in range(40)})
    >>> [f.accounts for f in label_spam(table)]
    [('spam',)]
    """
    if not threshold > 0 or min_labels < 1 or examples < 0:
        raise ValueError("threshold > 0, min_labels >= 1 and examples >= 0 are required")
    if not 0 < max_peer_skill < 1 or not 0.5 <= max_review_reliability < 1:
        raise ValueError("0 < max_peer_skill < 1 and 0.5 <= max_review_reliability < 1 required")
    if quality is None:
        quality = estimate_label_quality(labels)
    else:
        labels.validate()
    if quality.items != labels.items:
        raise ValueError("quality was estimated from another table (its items differ)")
    if len(labels) == 0:
        return []
    s = _scores(labels, quality, max_review_reliability)
    if s is None:
        return []
    d = np.clip(s["peer"], 0.0, max_peer_skill)
    contrib = -np.log1p(d * s["u"])
    n_lab = len(labels.labelers)
    w = s["labeler"]
    stat = np.bincount(w, weights=contrib, minlength=n_lab)
    scored = np.bincount(w, weights=s["scored"], minlength=n_lab)
    hit = np.flatnonzero((scored >= min_labels) & (stat >= threshold))
    if hit.size == 0:
        return []
    rule = (
        f"log LR(random vs typical peer) >= {threshold:.2f} over >= {min_labels} "
        f"scored labels; peer skill capped at {max_peer_skill}"
    )
    out = [
        _finding(
            labels,
            quality.item_classes,
            s,
            d,
            contrib,
            int(k),
            float(stat[k]),
            threshold,
            rule,
            examples,
        )
        for k in hit.tolist()
    ]
    out.sort(key=lambda f: (-f.severity, f.accounts))
    return out


def run(inp: DetectorInput) -> list[Finding]:
    """The detector on one epoch, with its default parameters."""
    return label_spam(inp.labels, inp.quality)


# --------------------------------------------------------------------------- internals


def _segment_lse(x: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """log-sum-exp of each segment of ``x`` (segments start at ``starts``, non-empty);
    ``-inf`` entries are allowed, a segment of only ``-inf`` gives ``-inf``."""
    m = np.maximum.reduceat(x, starts)
    seg = np.repeat(np.arange(starts.size), np.diff(np.append(starts, x.size)))
    safe = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.add.reduceat(np.exp(x - safe[seg]), starts)) + safe


def _scores(
    labels: LabelTable, quality: LabelQuality, max_review_reliability: float
) -> dict[str, np.ndarray] | None:
    """Per counted label (on an item of >= 2 classes): its reference, ``u``, the peer
    skill of its group and the figures the evidence reports."""
    classes = quality.item_classes
    n_items, n_lab = len(labels.items), len(labels.labelers)
    k_item = np.fromiter(map(len, classes), dtype=np.int64, count=n_items)
    values = (
        [str(x) for x in labels.label.tolist()]
        if isinstance(labels.label, np.ndarray)
        else list(labels.label)
    )
    item_all = np.asarray(labels.item, dtype=np.int64)
    keep = np.flatnonzero(k_item[item_all] >= 2)
    if keep.size == 0:
        return None
    item = item_all[keep]
    labeler = np.asarray(labels.labeler, dtype=np.int64)[keep]
    value = [values[j] for j in keep.tolist()]
    index_of = {cs: {c: p for p, c in enumerate(cs)} for cs in set(classes)}
    pos = np.fromiter(
        (index_of[classes[i]].get(y, -1) for i, y in zip(item.tolist(), value, strict=True)),
        dtype=np.int64,
        count=keep.size,
    )
    k = k_item[item]
    kf = k.astype(np.float64)
    in_space = pos >= 0

    # Each label's weight in the others' reference: log-odds of its labeler's accuracy in
    # the item's domain, as the Dawid-Skene E-step weighs it (kept >= chance: a labeler
    # estimated worse than chance counts for nothing rather than against its answer).
    domain_names = sorted(set(labels.item_domain))
    dom_index = {dname: j for j, dname in enumerate(domain_names)}
    item_dom = np.fromiter(
        (dom_index[x] for x in labels.item_domain), dtype=np.int64, count=n_items
    )
    q_lab = {a: j for j, a in enumerate(quality.labelers)}
    q_dom = {dname: j for j, dname in enumerate(quality.domains)}
    lab_q = np.fromiter((q_lab.get(a, -1) for a in labels.labelers), dtype=np.int64, count=n_lab)
    dom_q = np.fromiter((q_dom.get(x, -1) for x in domain_names), dtype=np.int64)
    nq = max(len(quality.labelers), 1)
    row_key = quality.domain.astype(np.int64) * nq + quality.labeler
    want = dom_q[item_dom[item]] * nq + lab_q[labeler]
    at = np.minimum(np.searchsorted(row_key, want), max(row_key.size - 1, 0))
    found = (row_key.size > 0) & (row_key[at] == want) & (lab_q[labeler] >= 0)
    acc = np.where(found, quality.accuracy[at] if row_key.size else 0.0, 1.0 / kf)
    acc = np.clip(acc, 1.0 / kf, _MAX_WEIGHT_ACCURACY)
    weight = np.where(in_space, np.log(acc * (kf - 1.0) / (1.0 - acc)), 0.0)

    # Reviews: each verdict's log-odds, summed per label; self reviews dropped.
    rv_sum: np.ndarray = np.zeros(keep.size)
    n_rev: np.ndarray = np.zeros(keep.size)
    n_rej: np.ndarray = np.zeros(keep.size)
    rv = labels.reviews
    if rv is not None and len(rv):
        rel_of = dict(zip(quality.reviewers, quality.reviewer_reliability.tolist(), strict=True))
        rel = np.fromiter((rel_of.get(r, 0.5) for r in rv.reviewers), dtype=np.float64)
        rel = np.clip(rel, 0.5, max_review_reliability)
        r_lab = np.asarray(rv.labeler, dtype=np.int64)
        r_rev = np.asarray(rv.reviewer, dtype=np.int64)
        lab_name = np.asarray(labels.labelers, dtype=object)
        rev_name = np.asarray(rv.reviewers, dtype=object)
        not_self = lab_name[r_lab] != rev_name[r_rev] if r_lab.size else np.zeros(0, bool)
        key = item * n_lab + labeler
        order = np.argsort(key)
        rkey = np.asarray(rv.item, dtype=np.int64) * n_lab + r_lab
        p = np.minimum(np.searchsorted(key[order], rkey), key.size - 1)
        ok = (key[order][p] == rkey) & not_self
        row = order[p[ok]]
        verdict = np.asarray(rv.verdict, dtype=np.float64)[ok]
        logit = np.log(rel / (1.0 - rel))[r_rev[ok]]
        rv_sum = np.bincount(row, weights=verdict * logit, minlength=keep.size)
        n_rev = np.bincount(row, minlength=keep.size).astype(np.float64)
        n_rej = np.bincount(row, weights=verdict < 0, minlength=keep.size)
    rv_sum = np.where(in_space, rv_sum, 0.0)

    # Per item and class, the evidence of everyone: S[entry] = sum of weight + reviews of
    # the labels of that class. A label's reference removes its own weight only.
    offsets = np.zeros(n_items + 1, dtype=np.int64)
    np.cumsum(k_item, out=offsets[1:])
    own_entry = offsets[item] + np.where(in_space, pos, 0)
    total = np.bincount(
        own_entry, weights=np.where(in_space, weight + rv_sum, 0.0), minlength=int(offsets[-1])
    )
    # Expanded: one row per (label, class of its item).
    n_rows = int(k.sum())
    row_label = np.repeat(np.arange(keep.size), k)
    starts = np.zeros(keep.size, dtype=np.int64)
    np.cumsum(k[:-1], out=starts[1:])
    local = np.arange(n_rows) - starts[row_label]
    others = total[offsets[item][row_label] + local]
    is_own = in_space[row_label] & (local == pos[row_label])
    others = others - np.where(is_own, (weight + rv_sum)[row_label], 0.0)
    lse_all = _segment_lse(others, starts)
    pi = np.exp(others - lse_all[row_label])  # reference without the label and its reviews
    lse_rest = _segment_lse(np.where(is_own, -np.inf, others), starts)
    own_s = np.where(in_space, others[starts + np.maximum(pos, 0)], -np.inf)
    # P(label right | others, its reviews): logit = S_y - weight - LSE_{c != y}.
    logit_t = own_s + rv_sum - lse_rest
    t_ref = np.where(in_space, 1.0 / (1.0 + np.exp(-np.clip(logit_t, -700, 700))), 0.0)
    pi_y = np.where(in_space, np.exp(own_s - lse_all), 0.0)
    sq = np.add.reduceat(pi * pi, starts)
    # Consensus class (for the evidence): argmax of the reference without the label.
    best = np.maximum.reduceat(pi, starts)
    first_best = np.where(pi >= best[row_label] - 1e-12, local, np.iinfo(np.int64).max)
    consensus = np.minimum.reduceat(first_best, starts)

    # Gold clamps the reference: the poster is the authority.
    gold_items = np.fromiter(labels.gold.keys(), dtype=np.int64, count=len(labels.gold))
    gold_pos = np.full(n_items, -1, dtype=np.int64)
    for i, g in labels.gold.items():
        gold_pos[int(i)] = index_of[classes[int(i)]].get(g, -1) if k_item[int(i)] >= 2 else -1
    has_gold = np.zeros(n_items, dtype=bool)
    has_gold[gold_items] = True
    has_gold &= gold_pos >= 0
    gold = has_gold[item]
    right_gold = gold & (pos == gold_pos[item])
    t_ref = np.where(gold, right_gold.astype(np.float64), t_ref)
    pi_y = np.where(gold, right_gold.astype(np.float64), pi_y)
    sq = np.where(gold, 1.0, sq)
    consensus = np.where(gold, gold_pos[item], consensus)

    u = kf * t_ref - 1.0
    u_peer = kf * pi_y - 1.0  # the reference without its reviews, for the skill estimate
    v = kf * sq - 1.0  # informativeness of the reference: 0 uniform, K - 1 certain
    n_in = np.bincount(item[in_space], minlength=n_items)
    scored = gold | ~in_space | (n_rev > 0) | (n_in[item] >= 2)

    # Peer skill per (domain, label space) group: weighted median of its labelers' skill
    # estimates sum(u) / sum(v), weight sum(v); robust to the spammers among them.
    space_id: dict[tuple[str, ...], int] = {}
    item_space = np.fromiter(
        (space_id.setdefault(cs, len(space_id)) for cs in classes), dtype=np.int64, count=n_items
    )
    _, group = np.unique(
        item_dom[item] * max(len(space_id), 1) + item_space[item], return_inverse=True
    )
    group = group.reshape(-1)
    n_groups = int(group.max()) + 1
    pair = group * n_lab + labeler
    upair, pinv = np.unique(pair, return_inverse=True)
    pinv = pinv.reshape(-1)
    su = np.bincount(pinv, weights=u_peer, minlength=upair.size)
    sv = np.bincount(pinv, weights=v, minlength=upair.size)
    informative = sv > 1e-9
    pg = (upair // n_lab)[informative]
    skill = su[informative] / sv[informative]
    wt = sv[informative]
    peer_of_group = np.zeros(n_groups)
    if pg.size:
        order = np.lexsort((skill, pg))
        pg_o, sk_o, wt_o = pg[order], skill[order], wt[order]
        cum = np.cumsum(wt_o)
        g_start = np.searchsorted(pg_o, np.arange(n_groups))
        g_end = np.searchsorted(pg_o, np.arange(n_groups), side="right")
        before = np.where(g_start > 0, cum[np.maximum(g_start - 1, 0)], 0.0)
        half = before + (cum[np.maximum(g_end - 1, 0)] - before) / 2.0
        at_half = np.searchsorted(cum, half)  # first cumulative weight >= half
        present = g_end > g_start
        peer_of_group[present] = sk_o[np.minimum(at_half[present], cum.size - 1)]
    return {
        "row": keep,
        "item": item,
        "labeler": labeler,
        "value": np.asarray(value, dtype=object),
        "k": k,
        "u": u,
        "u_peer": u_peer,
        "v": v,
        "t": t_ref,
        "gold": gold,
        "gold_right": right_gold,
        "scored": scored.astype(np.float64),
        "consensus": consensus,
        "consensus_p": np.where(gold, 1.0, best[np.arange(keep.size)]),
        "n_rev": n_rev,
        "n_rej": n_rej,
        "peer": peer_of_group[group],
        "domain": item_dom[item],
        "domain_names": np.asarray(domain_names, dtype=object),
    }


def _finding(
    labels: LabelTable,
    classes: list[tuple[str, ...]],
    s: dict[str, np.ndarray],
    d: np.ndarray,
    contrib: np.ndarray,
    w: int,
    stat: float,
    threshold: float,
    rule: str,
    examples: int,
) -> Finding:
    """The finding of labeler ``w``, with the figures that make the case."""
    mine = np.flatnonzero(s["labeler"] == w)
    sc = mine[s["scored"][mine] > 0]
    items = s["item"]
    # Peers on the same items: every other counted label there.
    on_items = np.isin(items, items[mine]) & (s["labeler"] != w)
    gold_mine = sc[s["gold"][sc]]
    peer_gold = on_items & s["gold"] & np.isin(items, items[gold_mine])
    peer_sc = on_items & (s["scored"] > 0)
    n_gold = int(gold_mine.size)
    wrong = int(n_gold - s["gold_right"][gold_mine].sum())
    n_peer_gold = int(peer_gold.sum())
    u_sum, v_sum = float(s["u_peer"][sc].sum()), float(s["v"][sc].sum())
    by_domain: dict[str, dict[str, Any]] = {}
    names = s["domain_names"]
    for dj in np.unique(s["domain"][mine]).tolist():
        sel = mine[s["domain"][mine] == dj]
        by_domain[str(names[dj])] = {
            "labels": int(sel.size),
            "log_lr": round(float(contrib[sel].sum()), 3),
        }
    worst = sc[np.lexsort((items[sc], -contrib[sc]))][:examples]
    shown = []
    for j in worst.tolist():
        i = int(items[j])
        c = int(s["consensus"][j])
        cls = classes[i][c] if 0 <= c < len(classes[i]) else None
        entry: dict[str, Any] = {"item": labels.items[i], "label": str(s["value"][j])}
        if s["gold"][j]:
            entry["gold"] = cls
        elif float(s["consensus_p"][j]) > 1.0 / float(s["k"][j]) + 1e-9:
            entry["consensus"] = cls
            entry["consensus_p"] = round(float(s["consensus_p"][j]), 3)
        entry["reviews"] = int(s["n_rev"][j])
        entry["rejected"] = int(s["n_rej"][j])
        entry["log_lr"] = round(float(contrib[j]), 3)
        shown.append(entry)
    who = labels.labelers[w]
    evidence = {
        "labeler": who,
        "labels": int(mine.size),
        "scored_labels": int(sc.size),
        "gold_items": n_gold,
        "gold_wrong": wrong,
        "peer_gold_error_rate": (
            round(float(1.0 - s["gold_right"][peer_gold].mean()), 4) if n_peer_gold else None
        ),
        "peer_gold_labels": n_peer_gold,
        "agreement": round(float(s["t"][sc].mean()), 4) if sc.size else None,
        "chance": round(float((1.0 / s["k"][sc]).mean()), 4) if sc.size else None,
        "peer_agreement": round(float(s["t"][peer_sc].mean()), 4) if peer_sc.any() else None,
        "skill_above_chance": round(u_sum / v_sum, 4) if v_sum > 1e-9 else None,
        "peer_skill": round(float(d[mine].mean()), 4),
        "reviews": int(s["n_rev"][mine].sum()),
        "rejected": int(s["n_rej"][mine].sum()),
        "log_lr": round(stat, 3),
        "threshold": round(threshold, 3),
        "by_domain": by_domain,
        "examples": shown,
        "rule": rule,
    }
    return Finding(
        kind=LABEL_SPAM,
        accounts=(who,),
        severity=round(min(1.0, stat / (4.0 * threshold)), 4),
        evidence=evidence,
        identity={"labeler": who},
    )
