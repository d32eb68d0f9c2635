"""The common form of every detector's output: a finding with machine-readable evidence.

Every finding carries a ``fingerprint``: a hash of its kind, its accounts and the facts
that define it (not of figures that drift, like a severity), so that a finding raised
again by the next epoch, unchanged, is recognised and not raised twice.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["NS_PER_S", "Finding"]

NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class Finding:
    """One detected pattern, for the moderators' queue.

    Attributes
    ----------
    kind : str
        The detector (``serial_voting``, ...).
    accounts : tuple of str
        The accounts the finding is about, sorted; for serial voting the voter (the
        target is in the evidence: it is the one who gains, not necessarily a culprit).
    severity : float
        In [0, 1]; how far past the detector's threshold the pattern is.
    evidence : dict
        JSON-ready facts that triggered it (accounts, counts, times, shares).
    identity : dict
        The subset of the evidence that defines the finding; hashed into ``fingerprint``.
    beneficiaries : tuple of str
        Accounts that gained from the pattern without being its authors (a serial voter's
        target, a burst's target): not sanctioned by a confirmation, but their history
        shows the reversal. Not part of the fingerprint (the identity names them if they
        define the finding).
    """

    kind: str
    accounts: tuple[str, ...]
    severity: float
    evidence: dict[str, Any] = field(compare=False)
    identity: dict[str, Any] = field(compare=False)
    beneficiaries: tuple[str, ...] = field(default=(), compare=False)

    @property
    def fingerprint(self) -> str:
        """sha256 of kind, accounts and identity, canonical JSON: equal for the same
        finding raised by two epochs, whatever its severity or figures became."""
        raw = json.dumps(
            {"kind": self.kind, "accounts": list(self.accounts), "identity": self.identity},
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(raw.encode()).hexdigest()
