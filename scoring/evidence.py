"""Raw evidence between accounts, as storage loads it, and the rule that turns it into edges.

Storage resolves what needs joins (content to its authors, derived works to their
parents' authors, retractions) and hands over one columnar table of evidence; this
module decides, with no I/O, which evidence becomes trust or distrust and how much it
weighs (:func:`signed_edges`). A new model replaces the rule, not the table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from scoring.events import ATTEST, ENDORSE, REVIEW, VOTE_ACCOUNT, VOTE_CONTENT, VOTE_LABEL
from scoring.graph import EdgeTable

DERIVED = "derived"  # a derived work's author credits the parent's author (resolved by storage)
AGREE = "agree"  # two labelers gave one item the same label (scoring.label_trust)

#: Every kind the evidence table may carry, in a fixed order (the code is the index;
#: append only, codes are stable).
KINDS: tuple[str, ...] = (
    VOTE_ACCOUNT,
    VOTE_CONTENT,
    VOTE_LABEL,
    ENDORSE,
    REVIEW,
    ATTEST,
    DERIVED,
    AGREE,
)

#: First-model base weight per kind of positive evidence. Endorsements are deliberate,
#: account-level statements and weigh most; a single vote on one item weighs least.
DEFAULT_KIND_WEIGHTS: Mapping[str, float] = {
    VOTE_ACCOUNT: 1.0,
    VOTE_CONTENT: 0.5,
    VOTE_LABEL: 0.5,
    ENDORSE: 2.0,
    REVIEW: 1.0,
    ATTEST: 0.5,
    DERIVED: 1.0,
    AGREE: 1.0,  # already weak: agreement_weight x both labelers' quality factors
}

NS_PER_DAY = 86_400 * 10**9


@dataclass(frozen=True)
class Evidence:
    """Columnar evidence rows: ``src`` says something about ``dst``.

    Attributes
    ----------
    accounts : list of str
        Index -> account id.
    domains : list of str
        Index -> domain name.
    src, dst : int32 arrays
        Account indices.
    kind : int8 array
        Index into :data:`KINDS`.
    value : int8 array
        +1 for positive evidence (upvote, accept, authentic), -1 for negative.
    weight : float64 array
        The event's own weight (an endorsement's ``weight``, 1/number of authors for
        content with several authors), before any model weighting.
    ts_ns : int64 array
        Block timestamp of the evidence.
    domain : int32 array
        Index into ``domains``.
    """

    accounts: list[str]
    domains: list[str]
    src: np.ndarray
    dst: np.ndarray
    kind: np.ndarray
    value: np.ndarray
    weight: np.ndarray
    ts_ns: np.ndarray
    domain: np.ndarray

    def __len__(self) -> int:
        return int(self.src.shape[0])

    @property
    def newest_ns(self) -> int:
        """The latest evidence time: "now" for decay, so an epoch is reproducible from data."""
        return int(self.ts_ns.max()) if len(self) else 0


def decay_factor(age_ns: np.ndarray, half_life_days: float) -> np.ndarray:
    """``0.5 ** (age / half_life)``; evidence from the future (clock skew) does not grow."""
    age_days = np.maximum(age_ns, 0).astype(np.float64) / NS_PER_DAY
    return np.exp2(-age_days / half_life_days)


def repeat_curve(total: np.ndarray) -> np.ndarray:
    """Diminishing returns for repeated evidence: ``log2(1 + W)``.

    One full-weight vote counts 1, three count 2, seven count 3, fifty count 5.7: a serial
    voter gains little by voting again, and an honest voter's tenth upvote of a colleague
    still says a little more than the first. Concave, 0 at 0, and 1 at 1 so that single
    pieces of evidence keep their kind weight. Computed as ``log1p(W) / ln 2``: ``log2(1 +
    W)`` rounds a weight below 1e-16 (a heavily decayed vote, an agreement between two
    labelers near chance) to exactly 0, which is not a valid edge weight.
    """
    return np.log1p(total) / np.log(2.0)


@dataclass(frozen=True)
class SignedEdges:
    """Trust and distrust edges, one per (truster, trusted, domain, kind), with kind codes.

    ``trust`` feeds propagation; ``distrust`` is applied after it (scoring.distrust);
    the kind arrays (codes into :data:`KINDS`) let an explanation say which kinds of
    evidence a trust flow came from.
    """

    trust: EdgeTable
    trust_kind: np.ndarray
    distrust: EdgeTable
    distrust_kind: np.ndarray


def signed_edges(
    evidence: Evidence,
    *,
    half_life_days: float,
    now_ns: int | None = None,
    kind_weights: Mapping[str, float] = DEFAULT_KIND_WEIGHTS,
) -> SignedEdges:
    """Aggregate evidence into trust and distrust edges.

    Each piece of evidence is decayed by age (:func:`decay_factor`); evidence of one kind
    from one account about another in one domain is summed and passed through
    :func:`repeat_curve`; the kind weight multiplies the result. Positive evidence
    becomes trust, negative evidence (downvotes, rejected reviews, disputed
    attestations) distrust. Self-evidence is dropped.

    Parameters
    ----------
    evidence : Evidence
    half_life_days : float
    now_ns : int, optional
        Reference time for ages; default the newest evidence.
    kind_weights : mapping
        Base weight per kind, for trust and distrust alike.

    Returns
    -------
    SignedEdges
    """
    if half_life_days <= 0:
        raise ValueError("half_life_days must be positive")
    now = evidence.newest_ns if now_ns is None else now_ns
    base = np.array([kind_weights.get(k, 0.0) for k in KINDS], dtype=np.float64)
    decayed = evidence.weight * decay_factor(now - evidence.ts_ns, half_life_days)
    keep = (evidence.src != evidence.dst) & (base[evidence.kind] > 0) & (decayed > 0)
    halves = []
    for positive in (True, False):
        rows = np.flatnonzero(keep & ((evidence.value > 0) if positive else (evidence.value < 0)))
        halves.append(_aggregate(evidence, rows, decayed, base))
    (t_table, t_kind), (d_table, d_kind) = halves
    return SignedEdges(t_table, t_kind, d_table, d_kind)


def _aggregate(
    evidence: Evidence, rows: np.ndarray, decayed: np.ndarray, base: np.ndarray
) -> tuple[EdgeTable, np.ndarray]:
    n = max(len(evidence.accounts), 1)
    n_dom = max(len(evidence.domains), 1)
    src = evidence.src[rows].astype(np.int64)
    dst = evidence.dst[rows].astype(np.int64)
    dom = evidence.domain[rows].astype(np.int64)
    kind = evidence.kind[rows].astype(np.int64)
    key = ((src * n + dst) * n_dom + dom) * len(KINDS) + kind
    unique, inverse = np.unique(key, return_inverse=True)
    total = np.bincount(inverse, weights=decayed[rows], minlength=unique.size)
    kind_u = unique % len(KINDS)
    rest = unique // len(KINDS)
    dom_u = rest % n_dom
    pair = rest // n_dom
    weight = base[kind_u] * repeat_curve(total)
    # A product of tiny factors can still underflow to 0; such an edge carries nothing.
    live = weight > 0
    if not live.all():
        weight, pair, dom_u, kind_u = weight[live], pair[live], dom_u[live], kind_u[live]
    table = EdgeTable(
        accounts=evidence.accounts,
        domains=evidence.domains,
        src=(pair // n).astype(np.int32),
        dst=(pair % n).astype(np.int32),
        weight=weight,
        domain=dom_u.astype(np.int32),
    )
    return table, kind_u.astype(np.int8)
