"""What a confirmed flag does to the next epoch: the flagged accounts' influence discounted.

Why influence and not score: a flag says an account *gave* trust it should not have
(serial votes, a ring's mutual votes, a sybil farm's endorsements, a spammer's labels).
Taking away what it gives repairs everyone it inflated; what it received from honest
accounts stays its own. So a sanction has two factors, both in [0, 1]:

* ``trust_factor``: the share of its trust the account may still pass on. The model
  propagates with this as the account's *retention* (:meth:`TrustMatrix.propagate`
  ``retain``): the held-back share returns to the seeds like a dangling account's, so
  nobody else gains from it. 0 removes its outgoing trust; its distrust is scaled too.
* ``label_factor``: the weight of its labels. 0 drops its labels from the labeler-quality
  estimate (they no longer shape the consensus nor other labelers' quality); any factor
  scales the trust its labels earn (accepted reviews, label upvotes, agreement).
* ``score_factor`` (1 unless a moderator chooses otherwise): the share of its *own* trust
  the account keeps after propagation, so its score, rank and percentile fall. Not the
  issue's default (a flag takes what an account gives, not what it was given), but the
  lever a marketplace asks for once a sybil or a ring member is confirmed: measured in
  docs/accuracy.md ("Detection").

An account under several confirmed flags gets the smallest factor of each kind. An upheld
appeal removes the flag's sanction from the next epoch on: nothing here is permanent, the
sanctions are recomputed from the confirmed flags at every epoch (docs/moderation.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from scoring.events import REVIEW, VOTE_LABEL
from scoring.evidence import AGREE, KINDS, Evidence
from scoring.graph import EdgeTable
from scoring.label_quality import LabelTable, ReviewTable

__all__ = [
    "DEFAULT_FACTORS",
    "Sanction",
    "Sanctions",
    "default_factors",
]

#: (trust_factor, label_factor) a confirmation applies unless the moderator says otherwise.
#: Every kind loses its outgoing trust (the abuse *is* what it gave); labels are dropped
#: where the labels are the abuse (label spam) or come from fake people (sybils).
DEFAULT_FACTORS: dict[str, tuple[float, float]] = {
    "serial_voting": (0.0, 1.0),
    "vote_ring": (0.0, 1.0),
    "sybil_cluster": (0.0, 0.0),
    "burst": (0.0, 1.0),
    "label_spam": (0.0, 0.0),
}
MANUAL_FACTORS = (0.0, 1.0)


def default_factors(kind: str) -> tuple[float, float]:
    """The (trust, label) factors of ``kind``; a hand-raised kind gets :data:`MANUAL_FACTORS`."""
    return DEFAULT_FACTORS.get(kind, MANUAL_FACTORS)


@dataclass(frozen=True)
class Sanction:
    """One confirmed flag's effect on one flagged account."""

    flag_id: int
    kind: str
    account: str
    trust_factor: float
    label_factor: float
    reason: str
    score_factor: float = 1.0

    def __post_init__(self) -> None:
        for name in ("trust_factor", "label_factor", "score_factor"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {value}")

    def as_json(self) -> dict[str, object]:
        return {
            "flag": self.flag_id,
            "kind": self.kind,
            "trust_factor": self.trust_factor,
            "label_factor": self.label_factor,
            "score_factor": self.score_factor,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Sanctions:
    """The sanctions in force for one epoch."""

    items: tuple[Sanction, ...] = ()

    @classmethod
    def of(cls, items: Iterable[Sanction]) -> Sanctions:
        return cls(tuple(sorted(items, key=lambda s: (s.account, s.flag_id))))

    def __bool__(self) -> bool:
        return bool(self.items)

    @property
    def flag_ids(self) -> list[int]:
        return sorted({s.flag_id for s in self.items})

    def outgoing(self) -> dict[str, float]:
        """Account -> the smallest trust factor of its sanctions (those below 1 only)."""
        out: dict[str, float] = {}
        for s in self.items:
            if s.trust_factor < 1.0:
                out[s.account] = min(out.get(s.account, 1.0), s.trust_factor)
        return out

    def held(self) -> dict[str, float]:
        """Account -> the smallest score factor of its sanctions (those below 1 only)."""
        out: dict[str, float] = {}
        for s in self.items:
            if s.score_factor < 1.0:
                out[s.account] = min(out.get(s.account, 1.0), s.score_factor)
        return out

    def labels(self) -> dict[str, float]:
        """Account -> the smallest label factor of its sanctions (those below 1 only)."""
        out: dict[str, float] = {}
        for s in self.items:
            if s.label_factor < 1.0:
                out[s.account] = min(out.get(s.account, 1.0), s.label_factor)
        return out

    def by_account(self) -> dict[str, list[Sanction]]:
        out: dict[str, list[Sanction]] = {}
        for s in self.items:
            out.setdefault(s.account, []).append(s)
        return out

    # -- applying them ----------------------------------------------------------------

    def filter_labels(self, table: LabelTable) -> LabelTable:
        """The table without the labels (and the reviews of labels) of accounts whose label
        factor is 0: they must not shape the consensus the others are measured against."""
        dropped = {a for a, f in self.labels().items() if f == 0.0}
        gone = [i for i, name in enumerate(table.labelers) if name in dropped]
        if not gone:
            return table
        keep = ~np.isin(np.asarray(table.labeler), gone)
        label = np.asarray(table.label, dtype=object)[keep].tolist()
        reviews = table.reviews
        if reviews is not None and len(reviews):
            rk = ~np.isin(reviews.labeler, gone)
            reviews = ReviewTable(
                reviewers=reviews.reviewers,
                item=reviews.item[rk],
                labeler=reviews.labeler[rk],
                reviewer=reviews.reviewer[rk],
                verdict=reviews.verdict[rk],
            )
        return dataclasses.replace(
            table,
            item=np.asarray(table.item)[keep],
            labeler=np.asarray(table.labeler)[keep],
            label=label,
            reviews=reviews,
        )

    def scale_label_trust(self, evidence: Evidence) -> Evidence:
        """Trust earned by labels (accepted reviews, label upvotes, agreement) scaled by the
        labeler's label factor. Negative evidence about its labels is left as it is."""
        factors = self.labels()
        if not factors:
            return evidence
        per_account = _vector(evidence.accounts, factors)
        earned = np.isin(evidence.kind, [KINDS.index(k) for k in (REVIEW, VOTE_LABEL, AGREE)])
        earned &= evidence.value > 0
        weight = np.where(earned, evidence.weight * per_account[evidence.dst], evidence.weight)
        return dataclasses.replace(evidence, weight=weight)

    def retain(self, accounts: list[str]) -> np.ndarray | None:
        """Per account of ``accounts``, its trust factor (1 when unsanctioned); None when no
        account of the list is sanctioned."""
        factors = self.outgoing()
        if not factors or not any(a in factors for a in accounts):
            return None
        return _vector(accounts, factors)

    def scale_distrust(self, distrust: EdgeTable) -> EdgeTable:
        """A sanctioned account's distrust weighs its trust factor: a confirmed sybil farm
        cannot keep pushing honest accounts down."""
        factors = self.outgoing()
        if not factors or not distrust.n_edges:
            return distrust
        per_account = _vector(distrust.accounts, factors)
        weight = distrust.weight * per_account[distrust.src]
        keep = weight > 0
        return dataclasses.replace(
            distrust,
            src=distrust.src[keep],
            dst=distrust.dst[keep],
            weight=weight[keep],
            domain=distrust.domain[keep],
        )


def _vector(accounts: list[str], factors: Mapping[str, float]) -> np.ndarray:
    return np.fromiter(
        (factors.get(a, 1.0) for a in accounts), dtype=np.float64, count=len(accounts)
    )
