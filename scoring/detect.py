"""Abuse detectors: findings with machine-readable evidence, for moderators to review.

Why detectors beside the model: the model already discounts much abuse by itself (seeded
propagation bounds sybils, the closed-group cut removes what a ring gives itself), but it
does so silently, and some abuse is legitimate-looking to it (a trusted account voting
serially for a friend hands over its influence as designed). A detector turns a pattern
into a :class:`Finding` a moderator can read, confirm or dismiss (issue 5); only a
confirmed flag changes scores.

Every finding carries a ``fingerprint``: a hash of its kind, its accounts and the facts
that define it (not of figures that drift, like a severity), so that a finding raised
again by the next epoch, unchanged, is recognised and not raised twice.

This module is the pure core of that: numpy arrays in, findings out, no I/O. Detectors so
far: serial voting (:func:`serial_voting`), vote rings (:func:`vote_rings`).
docs/moderation.md gives each rule, its parameters and its known false positives.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scoring.collusion import DEFAULT_RETENTION, closed_groups
from scoring.events import VOTE_ACCOUNT, VOTE_CONTENT, VOTE_LABEL
from scoring.evidence import KINDS, Evidence
from scoring.graph import EdgeTable
from scoring.propagation import TrustMatrix

__all__ = ["SERIAL_VOTING", "VOTE_RING", "Finding", "serial_voting", "vote_rings"]

SERIAL_VOTING = "serial_voting"
VOTE_RING = "vote_ring"
NS_PER_S = 1_000_000_000
_VOTE_KINDS = tuple(KINDS.index(k) for k in (VOTE_ACCOUNT, VOTE_CONTENT, VOTE_LABEL))


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
    """

    kind: str
    accounts: tuple[str, ...]
    severity: float
    evidence: dict[str, Any] = field(compare=False)
    identity: dict[str, Any] = field(compare=False)

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


def serial_voting(
    evidence: Evidence,
    *,
    window_s: int = 86_400,
    min_votes: int = 10,
    min_share: float = 0.5,
) -> list[Finding]:
    """Voters whose upvotes concentrate on one author's account and items within a window.

    Stack Exchange reverses such votes daily; here they become findings. For every
    upvote (account, content or label vote, resolved to the author) from ``v`` to ``t``
    at time ``s``, count the upvotes from ``v`` to ``t`` in ``[s, s + window_s)`` and all
    of ``v``'s upvotes in that window; the pair is flagged when some window holds at least
    ``min_votes`` upvotes to ``t`` making at least ``min_share`` of ``v``'s upvotes there.
    One finding per (voter, target) pair, with its densest window.

    Parameters
    ----------
    evidence : Evidence
        As stored (``storage.scoring_repo.load_evidence``): content votes are already one
        row per author.
    window_s : int, default 86400
        Window length in seconds (a day, as Stack Exchange's daily script).
    min_votes : int, default 10
        Upvotes to one target in one window that are worth a look. Honest voters of the
        simulated marketplaces give one author at most 3 in a day.
    min_share : float, default 0.5
        Share of the voter's upvotes in that window going to that target: an active
        voter who also votes often for one prolific author stays below it.

    Returns
    -------
    list of Finding
        Sorted by severity, highest first; severity is
        ``min(1, n / (4 * min_votes))`` scaled by the share.

    Notes
    -----
    Cost: one sort of the upvotes and two binary searches per upvote, O(m log m).

    Examples
    --------
    >>> import numpy as np
    >>> from scoring.evidence import Evidence, KINDS
    >>> n = 12
    >>> ev = Evidence(["fan", "star"], ["general"], np.zeros(n, np.int32),
    ...               np.ones(n, np.int32), np.full(n, KINDS.index("vote_content"), np.int8),
    ...               np.ones(n, np.int8), np.ones(n), np.arange(n) * 60 * 10**9,
    ...               np.zeros(n, np.int32))
    >>> [(f.accounts, f.evidence["votes"]) for f in serial_voting(ev)]
    [(('fan',), 12)]
    """
    if window_s <= 0 or min_votes < 1 or not 0 < min_share <= 1:
        raise ValueError("window_s > 0, min_votes >= 1 and 0 < min_share <= 1 are required")
    up = np.flatnonzero(np.isin(evidence.kind, _VOTE_KINDS) & (evidence.value > 0))
    up = up[evidence.src[up] != evidence.dst[up]]
    if up.size < min_votes:
        return []
    src = evidence.src[up].astype(np.int64)
    dst = evidence.dst[up].astype(np.int64)
    ts = evidence.ts_ns[up] // NS_PER_S
    ts = ts - ts.min()
    stride = int(ts.max()) + window_s + 1  # keeps each group's keys apart
    n_acc = max(len(evidence.accounts), 1)

    def counts(group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each row (in the returned order), the rows of its group in its window."""
        order = np.lexsort((ts, group))
        key = group[order] * stride + ts[order]
        end = np.searchsorted(key, key + window_s, side="left")
        return order, end - np.arange(order.size)

    pair = src * n_acc + dst
    order_p, n_pair = counts(pair)
    order_v, n_voter = counts(src)
    # The voter's count for the same window start, aligned to the pair ordering.
    voter_at = np.empty(up.size, dtype=np.int64)
    voter_at[order_v] = n_voter
    n_all = voter_at[order_p]
    share = n_pair / n_all
    hit = (n_pair >= min_votes) & (share >= min_share)
    if not hit.any():
        return []
    rows = order_p[hit]
    best: dict[int, tuple[int, float, int]] = {}
    for r, n, sh in zip(rows.tolist(), n_pair[hit].tolist(), share[hit].tolist(), strict=True):
        key_pair = int(pair[r])
        if key_pair not in best or n > best[key_pair][0]:
            best[key_pair] = (n, sh, r)
    names = evidence.accounts
    out: list[Finding] = []
    for key_pair, (n, sh, r) in best.items():
        voter, target = names[key_pair // n_acc], names[key_pair % n_acc]
        start_ns = int(evidence.ts_ns[up[r]])
        sev = round(min(1.0, n / (4 * min_votes)) * sh, 4)
        out.append(
            Finding(
                kind=SERIAL_VOTING,
                accounts=(voter,),
                severity=sev,
                evidence={
                    "voter": voter,
                    "target": target,
                    "votes": n,
                    "share_of_voters_votes": round(sh, 4),
                    "window_start_ns": start_ns,
                    "window_s": window_s,
                    "rule": f">= {min_votes} upvotes to one target in {window_s} s, "
                    f">= {min_share:.0%} of the voter's upvotes there",
                },
                identity={"voter": voter, "target": target},
            )
        )
    out.sort(key=lambda f: (-f.severity, f.accounts))
    return out


def vote_rings(
    edges: EdgeTable,
    seeds: list[str],
    *,
    alpha: float = 0.15,
    retention: float = DEFAULT_RETENTION,
) -> list[Finding]:
    """Groups that keep the trust flowing into them among themselves: the closed groups
    of the model's cut (:mod:`scoring.collusion`), as findings a moderator can review.

    The model already removes what such a group gives itself; the finding says who they
    are and on what evidence, so that a moderator can confirm a ring (and discount the
    members' outgoing trust and labels, issue 5) or dismiss an honest tight community.

    Evidence per group: its members, the share of their outgoing trust that stayed inside
    (``retention``), its *amplification* before the cut (the trust it held divided by what
    flowed in from outside: a group that passes trust on holds about 1, a closed one up to
    ``1 / alpha``), the inflow from outside, and its five heaviest internal edges.
    Severity: how far past the threshold the retention is, ``(r - t) / (1 - t)``, times
    ``min(1, (amplification - 1) / 2)``. Identity: the sorted members.
    """
    n = len(edges.accounts)
    index = {a: i for i, a in enumerate(edges.accounts)}
    seed_idx = np.array(sorted({index[s] for s in seeds if s in index}), dtype=np.int64)
    if n == 0 or seed_idx.size == 0:
        return []
    src, dst, w = edges.src.astype(np.int64), edges.dst.astype(np.int64), edges.weight
    trust = TrustMatrix.from_edges(n, src, dst, w).propagate(seed_idx, alpha=alpha).trust
    groups = closed_groups(n, src, dst, w, trust, seed_idx, retention=retention)
    if not groups.count:
        return []
    loop = src == dst
    out_w = np.bincount(src[~loop], weights=w[~loop], minlength=n)
    flow = np.where(loop, 0.0, trust[src] * w / np.where(out_w[src] > 0, out_w[src], 1.0))
    g_src, g_dst = groups.group[src], groups.group[dst]
    findings: list[Finding] = []
    for g in range(groups.count):
        members = np.flatnonzero(groups.group == g)
        inside = (g_src == g) & (g_dst == g) & ~loop
        into = (g_dst == g) & (g_src != g)
        inflow = float((1 - alpha) * flow[into].sum())
        held = float(trust[members].sum())
        amplification = held / inflow if inflow > 0 else float("inf")
        r = float(groups.retention[g])
        top = np.flatnonzero(inside)[np.argsort(-w[inside], kind="stable")[:5]]
        names = sorted(edges.accounts[i] for i in members.tolist())
        sev = (r - retention) / (1 - retention) if retention < 1 else 1.0
        sev *= min(1.0, (amplification - 1) / 2) if np.isfinite(amplification) else 1.0
        findings.append(
            Finding(
                kind=VOTE_RING,
                accounts=tuple(names),
                severity=round(float(np.clip(sev, 0.0, 1.0)), 4),
                evidence={
                    "members": names,
                    "retention": round(r, 4),
                    "amplification": round(amplification, 3)
                    if np.isfinite(amplification)
                    else None,
                    "inflow_from_outside": inflow,
                    "trust_held": held,
                    "heaviest_internal_edges": [
                        {
                            "from": edges.accounts[int(src[e])],
                            "to": edges.accounts[int(dst[e])],
                            "weight": round(float(w[e]), 4),
                        }
                        for e in top.tolist()
                    ],
                    "rule": f"a seedless community keeping >= {retention:.0%} of its "
                    "outgoing trust inside (docs/scoring.md, closed groups)",
                },
                identity={"members": names},
            )
        )
    findings.sort(key=lambda f: (-f.severity, f.accounts))
    return findings
