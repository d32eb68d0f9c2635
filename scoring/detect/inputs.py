"""What every detector may read: the epoch's evidence, labels and trust graph, in one value.

Why one input type: the epoch loads and derives these once (evidence, labels, label
quality, the signed trust edges, the model's trust); each detector takes what it needs
from the same value, so adding a detector changes no caller, and a detector cannot see
anything the epoch did not load (no I/O here: this is the pure core).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scoring.collusion import DEFAULT_RETENTION, GraphGroups
from scoring.evidence import Evidence
from scoring.graph import EdgeTable
from scoring.label_quality import LabelQuality, LabelTable

__all__ = ["DetectorInput"]


@dataclass(frozen=True)
class DetectorInput:
    """One epoch's facts, as the detectors see them.

    Attributes
    ----------
    evidence : Evidence
        As stored (``storage.scoring_repo.load_evidence``), before label quality: raw
        votes, endorsements, reviews and attestations with their times.
    labels : LabelTable
        Labels, gold and reviews (``load_labels``).
    quality : LabelQuality
        Labeler accuracy estimated from ``labels`` (``estimate_label_quality``).
    edges : EdgeTable
        The trust edges the model scores (decay, kind weights and label quality applied).
    seeds : sequence of str
        The pre-trusted accounts.
    first_seen_ns : ndarray of int64, optional
        Per account of ``evidence.accounts``: when it first appeared on chain (the
        ``accounts`` table); when None, detectors fall back to its earliest evidence row.
    now_ns : int, optional
        The epoch's "now" (the newest evidence when None).
    alpha : float
        The model's teleport probability (for detectors that propagate).
    retention : float
        The model's closed-group retention threshold.
    groups : GraphGroups, optional
        The model's closed-group step on the global graph of this epoch
        (``score_accounts(on_groups=...)``): the vote-ring detector reports those groups
        instead of finding them again. None: the detector runs its own.
    """

    evidence: Evidence
    labels: LabelTable
    quality: LabelQuality
    edges: EdgeTable
    seeds: Sequence[str]
    first_seen_ns: np.ndarray | None = None
    now_ns: int | None = None
    alpha: float = 0.15
    retention: float = DEFAULT_RETENTION
    groups: GraphGroups | None = None
