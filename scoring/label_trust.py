"""Labeler quality into the trust graph: quality-scaled review trust and agreement edges.

Dawid-Skene (:mod:`scoring.label_quality`) says how often each labeler is right; this
module decides what that does to trust (issue 3, "labeler quality"):

* the trust a labeler *earns from their labels* (accepted reviews, upvotes on a label)
  is scaled by their quality factor, so a labeler answering at chance earns nothing
  from reviewers who wave labels through;
* two labelers who gave the same label to the same item gain a weak trust edge both
  ways, weighted by both qualities: agreement between good labelers is evidence of
  competence, agreement between spammers (near chance) is worth nothing.

The quality factor maps accuracy above chance onto [0, 1]:

.. math::

    f = \\operatorname{clip}\\left(\\frac{a - c}{1 - c}, 0, 1\\right)

with :math:`a` the posterior mean accuracy and :math:`c` the accuracy of uniform
guessing on the same items. It is 0 for a random labeler whatever the number of classes,
and reaches 1 only for a certain, perfect one; the Beta prior keeps a labeler with three
labels well below 1.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from scoring.events import REVIEW, VOTE_LABEL
from scoring.evidence import AGREE, KINDS, Evidence
from scoring.label_quality import LabelQuality, LabelTable
from scoring.scale import GLOBAL_DOMAIN


def quality_factors(quality: LabelQuality) -> dict[tuple[str, str], float]:
    """``(labeler, domain) -> f`` for every row; domain ``global`` pools all domains."""
    a = quality.accuracy
    c = quality.chance
    f = np.clip((a - c) / np.maximum(1.0 - c, 1e-12), 0.0, 1.0)
    return {
        (quality.labelers[w], quality.domains[d]): float(x)
        for w, d, x in zip(
            quality.labeler.tolist(), quality.domain.tolist(), f.tolist(), strict=True
        )
    }


def _factor(factors: Mapping[tuple[str, str], float], labeler: str, domain: str) -> float | None:
    hit = factors.get((labeler, domain))
    return factors.get((labeler, GLOBAL_DOMAIN)) if hit is None else hit


def apply_label_quality(
    evidence: Evidence,
    table: LabelTable,
    quality: LabelQuality,
    *,
    agreement_weight: float = 0.25,
) -> Evidence:
    """Evidence with label-earned trust scaled by quality and agreement edges added.

    Parameters
    ----------
    evidence : Evidence
        As loaded by storage.
    table : LabelTable
        The labels the quality was estimated from (for agreement).
    quality : LabelQuality
        From :func:`scoring.label_quality.estimate_label_quality`.
    agreement_weight : float
        Weight of one agreement before the quality factors (a weak edge: a quarter of an
        account vote). 0 adds none.

    Returns
    -------
    Evidence
        Same accounts (plus any labeler storage did not list); rows of kinds ``review``
        and ``vote_label`` with a positive value have their weight multiplied by the
        target labeler's factor (a labeler with no estimate keeps the weight); new
        ``agree`` rows carry the pair's factors product, dated at the newest evidence
        (labels carry no time in the table, so agreement does not decay).
    """
    factors = quality_factors(quality)
    accounts = list(evidence.accounts)
    index = {a: i for i, a in enumerate(accounts)}
    for name in table.labelers:
        if name not in index:
            index[name] = len(accounts)
            accounts.append(name)

    weight = evidence.weight.copy()
    earned = np.flatnonzero(
        np.isin(evidence.kind, [KINDS.index(REVIEW), KINDS.index(VOTE_LABEL)])
        & (evidence.value > 0)
    )
    for row in earned.tolist():
        factor = _factor(
            factors, accounts[int(evidence.dst[row])], evidence.domains[int(evidence.domain[row])]
        )
        if factor is not None:
            weight[row] *= factor

    domains = list(evidence.domains)
    dom_index = {d: i for i, d in enumerate(domains)}
    src: list[int] = []
    dst: list[int] = []
    w: list[float] = []
    dom: list[int] = []
    if agreement_weight > 0 and len(table):
        labels = np.asarray(table.label, dtype=object)
        order = np.lexsort((table.labeler, table.item))
        items = np.asarray(table.item)[order]
        bounds = np.flatnonzero(np.diff(items)) + 1
        for group in np.split(order, bounds):
            if group.size < 2:
                continue
            item = int(table.item[group[0]])
            domain = table.item_domain[item]
            d = dom_index.setdefault(domain, len(domains))
            if d == len(domains):
                domains.append(domain)
            who = [table.labelers[int(table.labeler[g])] for g in group]
            said = [labels[g] for g in group]
            fs = [_factor(factors, x, domain) or 0.0 for x in who]
            for i in range(len(group)):
                for j in range(i + 1, len(group)):
                    pair_w = agreement_weight * fs[i] * fs[j]
                    if said[i] != said[j] or pair_w <= 0:
                        continue
                    for a, b in ((who[i], who[j]), (who[j], who[i])):
                        src.append(index[a])
                        dst.append(index[b])
                        w.append(pair_w)
                        dom.append(d)
    n_new = len(src)
    agree = KINDS.index(AGREE)
    return Evidence(
        accounts=accounts,
        domains=domains,
        src=np.concatenate([evidence.src, np.asarray(src, dtype=np.int32)]),
        dst=np.concatenate([evidence.dst, np.asarray(dst, dtype=np.int32)]),
        kind=np.concatenate([evidence.kind, np.full(n_new, agree, dtype=np.int8)]),
        value=np.concatenate([evidence.value, np.ones(n_new, dtype=np.int8)]),
        weight=np.concatenate([weight, np.asarray(w, dtype=np.float64)]),
        ts_ns=np.concatenate([evidence.ts_ns, np.full(n_new, evidence.newest_ns, dtype=np.int64)]),
        domain=np.concatenate([evidence.domain, np.asarray(dom, dtype=np.int32)]),
    )
