"""Abuse detectors: findings with machine-readable evidence, for moderators to review.

Why detectors beside the model: the model already discounts much abuse by itself (seeded
propagation bounds sybils, the closed-group cut removes what a ring gives itself), but it
does so silently, and some abuse is legitimate-looking to it (a trusted account voting
serially for a friend hands over its influence as designed). A detector turns a pattern
into a :class:`Finding` a moderator can read, confirm or dismiss; only a confirmed flag
changes scores (docs/moderation.md).

The package is part of the pure core: arrays in, findings out, no I/O. One module per
detector; :func:`run_detectors` runs them all on one epoch's :class:`DetectorInput`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from scoring.detect import burst, spam, sybil
from scoring.detect.burst import BURST
from scoring.detect.finding import Finding
from scoring.detect.inputs import DetectorInput
from scoring.detect.rings import VOTE_RING, ring_findings, vote_rings
from scoring.detect.serial import SERIAL_VOTING, serial_voting
from scoring.detect.spam import LABEL_SPAM
from scoring.detect.sybil import SYBIL_CLUSTER

__all__ = [
    "BURST",
    "DETECTORS",
    "LABEL_SPAM",
    "SERIAL_VOTING",
    "SYBIL_CLUSTER",
    "VOTE_RING",
    "DetectorInput",
    "Finding",
    "run_detectors",
    "serial_voting",
    "vote_rings",
]

Detector = Callable[[DetectorInput], list[Finding]]

DETECTORS: dict[str, Detector] = {
    BURST: burst.run,
    LABEL_SPAM: spam.run,
    SYBIL_CLUSTER: sybil.run,
    SERIAL_VOTING: lambda inp: serial_voting(inp.evidence),
    VOTE_RING: lambda inp: _vote_rings(inp),
}


def _vote_rings(inp: DetectorInput) -> list[Finding]:
    """The model's own closed groups when the epoch handed them over, else found anew."""
    if inp.groups is not None:
        return ring_findings(inp.groups, alpha=inp.alpha, retention=inp.retention)
    return vote_rings(inp.edges, list(inp.seeds), alpha=inp.alpha, retention=inp.retention)


def run_detectors(inp: DetectorInput, kinds: Iterable[str] | None = None) -> list[Finding]:
    """Every detector (or those of ``kinds``) on one epoch; findings by kind, then as each
    detector sorts them (highest severity first)."""
    chosen = list(DETECTORS) if kinds is None else list(kinds)
    unknown = [k for k in chosen if k not in DETECTORS]
    if unknown:
        raise ValueError(f"unknown detector(s) {unknown}; known: {sorted(DETECTORS)}")
    out: list[Finding] = []
    for kind in sorted(chosen):
        out.extend(DETECTORS[kind](inp))
    return out
