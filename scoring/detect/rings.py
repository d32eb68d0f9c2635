"""Vote rings: the model's closed groups, as findings a moderator can review."""

from __future__ import annotations

import numpy as np

from scoring.collusion import DEFAULT_RETENTION, GraphGroups, closed_groups
from scoring.detect.finding import Finding
from scoring.graph import EdgeTable
from scoring.propagation import TrustMatrix

__all__ = ["VOTE_RING", "vote_rings"]

VOTE_RING = "vote_ring"


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
    return ring_findings(
        GraphGroups(list(edges.accounts), src, dst, w, trust, groups),
        alpha=alpha,
        retention=retention,
    )


def ring_findings(
    graph: GraphGroups, *, alpha: float = 0.15, retention: float = DEFAULT_RETENTION
) -> list[Finding]:
    """The findings of closed groups already found (by the model, in the same epoch: see
    :class:`scoring.collusion.GraphGroups`); :func:`vote_rings` says what they hold."""
    groups, trust, names_all = graph.groups, graph.trust, graph.accounts
    if not groups.count:
        return []
    n = len(names_all)
    src, dst, w = graph.src.astype(np.int64), graph.dst.astype(np.int64), graph.weight
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
        names = sorted(names_all[i] for i in members.tolist())
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
                            "from": names_all[int(src[e])],
                            "to": names_all[int(dst[e])],
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
