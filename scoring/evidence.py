"""Raw evidence between accounts, as storage loads it, and the first model's edge rule.

Storage resolves what needs joins (content to its authors, derived works to their
parents' authors, retractions) and hands over one columnar table of evidence; this
module decides, with no I/O, which evidence becomes trust and how much it weighs.
The next issue (the full model) replaces :func:`trust_edges`, not the table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from scoring.events import ATTEST, ENDORSE, REVIEW, VOTE_ACCOUNT, VOTE_CONTENT, VOTE_LABEL
from scoring.graph import EdgeTable

DERIVED = "derived"  # a derived work's author credits the parent's author (resolved by storage)

#: Every kind the evidence table may carry, in a fixed order (the code is the index).
KINDS: tuple[str, ...] = (VOTE_ACCOUNT, VOTE_CONTENT, VOTE_LABEL, ENDORSE, REVIEW, ATTEST, DERIVED)

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


def trust_edges(
    evidence: Evidence,
    *,
    half_life_days: float,
    now_ns: int | None = None,
    kind_weights: Mapping[str, float] = DEFAULT_KIND_WEIGHTS,
) -> EdgeTable:
    """The first model's trust edges: positive evidence, weighted by kind and decayed by age.

    Parameters
    ----------
    evidence : Evidence
    half_life_days : float
        Evidence loses half its weight every ``half_life_days``.
    now_ns : int, optional
        Reference time for ages; default the newest evidence, which makes an epoch a
        pure function of the stored data (replays give the same scores).
    kind_weights : mapping, optional
        Base weight per kind; a kind weighted 0 or absent is ignored.

    Returns
    -------
    EdgeTable
        Negative evidence (downvotes, rejections, disputes) is dropped here: the first
        model does not turn distrust into trust, and the full model applies it apart.
    """
    if half_life_days <= 0:
        raise ValueError("half_life_days must be positive")
    now = evidence.newest_ns if now_ns is None else now_ns
    base = np.array([kind_weights.get(k, 0.0) for k in KINDS], dtype=np.float64)
    w = evidence.weight * base[evidence.kind] * decay_factor(now - evidence.ts_ns, half_life_days)
    keep = (evidence.value > 0) & (w > 0) & (evidence.src != evidence.dst)
    return EdgeTable(
        accounts=evidence.accounts,
        domains=evidence.domains,
        src=evidence.src[keep].astype(np.int32, copy=False),
        dst=evidence.dst[keep].astype(np.int32, copy=False),
        weight=w[keep],
        domain=evidence.domain[keep].astype(np.int32, copy=False),
    )
