"""Sybil clusters: popular accounts the seeds barely trust, behind a weak cut."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from scoring.detect.finding import Finding
from scoring.detect.inputs import DetectorInput
from scoring.events import ATTEST, ENDORSE, VOTE_ACCOUNT, VOTE_CONTENT, VOTE_LABEL
from scoring.evidence import KINDS, Evidence
from scoring.graph import EdgeTable
from scoring.propagation import TrustMatrix

__all__ = ["SYBIL_CLUSTER", "run", "sybil_clusters"]

SYBIL_CLUSTER = "sybil_cluster"
#: The support a farm can manufacture: votes, endorsements and attestations (reviews and
#: label agreement are left out: a farm that does not label earns none, and an honest
#: labeler's reviewers would only inflate its popularity).
_SUPPORT_KINDS = tuple(
    KINDS.index(k) for k in (VOTE_ACCOUNT, VOTE_CONTENT, VOTE_LABEL, ENDORSE, ATTEST)
)
_ATTACK_EDGES_SHOWN = 25
_MAX_ROUNDS = 20


@dataclass(frozen=True)
class _Support:
    """Distinct supporter links ``src -> dst`` (one per pair, however many rows)."""

    src: np.ndarray
    dst: np.ndarray
    popularity: np.ndarray  # distinct supporters per account


def _support(evidence: Evidence) -> _Support:
    n = len(evidence.accounts)
    rows = (
        np.isin(evidence.kind, _SUPPORT_KINDS)
        & (evidence.value > 0)
        & (evidence.src != evidence.dst)
    )
    pair = np.unique(evidence.src[rows].astype(np.int64) * n + evidence.dst[rows])
    src, dst = pair // max(n, 1), pair % max(n, 1)
    return _Support(src, dst, np.bincount(dst, minlength=n))


def _trust(edges: EdgeTable, seeds: list[str], names: list[str], alpha: float) -> np.ndarray:
    """Seeded trust on ``edges``, aligned to ``names`` and scaled so that 1 is the mean."""
    index = {a: i for i, a in enumerate(edges.accounts)}
    seed_idx = np.array(sorted({index[s] for s in seeds if s in index}), dtype=np.int64)
    out = np.zeros(len(names))
    if seed_idx.size == 0 or not edges.accounts:
        return out
    n = len(edges.accounts)
    src, dst = edges.src.astype(np.int64), edges.dst.astype(np.int64)
    trust = TrustMatrix.from_edges(n, src, dst, edges.weight).propagate(seed_idx, alpha=alpha)
    where = np.array([index.get(a, -1) for a in names], dtype=np.int64)
    known = where >= 0
    out[known] = trust.trust[where[known]] * n
    return out


def sybil_clusters(
    evidence: Evidence,
    edges: EdgeTable,
    seeds: list[str],
    *,
    alpha: float = 0.5,
    min_supporters: int = 5,
    max_trust_ratio: float = 0.3,
    max_cut: float = 0.2,
    min_inside: float = 0.5,
    min_size: int = 3,
) -> list[Finding]:
    """Groups of accounts with many supporters but little seeded trust, supported from
    outside the group through a weak cut.

    A sybil farm can make its accounts popular (every fake supports every other), but
    trust enters only through the few honest accounts it dupes (the *attack edges*):
    seeded propagation then gives its members much less trust than their popularity
    would buy an honest account, and almost all their support comes from each other.
    The rule checks both, per account and then per group:

    1. *popularity*: the distinct accounts giving an account positive votes (account,
       content or label, content resolved to its authors), endorsements or authentic
       attestations;
    2. *trust ratio*: the account's seeded trust per supporter, divided by the median
       trust per supporter of all accounts with at least ``min_supporters`` supporters
       (most of them honest): 1 is what an ordinary account's popularity buys;
    3. *suspects*: accounts (never seeds) with at least ``min_supporters`` supporters and
       a trust ratio at most ``max_trust_ratio``, kept while at least ``min_inside`` of
       their supporters are suspects too; and any such popular account at least ``1 -
       max_cut`` of whose supporters are suspects, whatever its trust (the sybils that
       received the attack edges hold more trust than the rest of their farm). Repeated
       to a fixed point: an honest account with a low ratio has its supporters outside
       and drops out;
    4. *groups*: connected components of the support links among suspects, of at least
       ``min_size`` members;
    5. *cut*: of the supporter links into a group, the share coming from outside it. A
       group is flagged when that share is at most ``max_cut``.

    Parameters
    ----------
    evidence : Evidence
        As stored (popularity and support links).
    edges : EdgeTable
        The trust edges the model scores (seeded trust is propagated on them).
    seeds : list of str
        The pre-trusted accounts.
    alpha : float, default 0.5
        Teleport probability of this detector's propagation, not the model's 0.15: a
        closed region holds up to ``1 / alpha`` times the trust that enters it, and at
        0.15 a small farm (8 sybils, 2 attack edges, the ``small`` world, seed 1) holds
        1.3 times the median trust per supporter, as much as an honest account; at 0.5
        (at most twice its inflow) the same farm's median falls to 0.17 while honest
        accounts keep 0.31 and more (2nd percentile, 12 small and default worlds).
    min_supporters : int, default 5
        Supporters below which popularity says nothing (the simulated sybils have 7 to
        21: one per other sybil, plus the attack edges).
    max_trust_ratio : float, default 0.3
        Trust ratio at or below which an account is a suspect. The simulated sybils
        behind 2-3 attack edges sit at 0.003 to 0.17 (median of each world); 98 % of
        honest popular accounts above 0.3, but a few per world (at most 5, the lowest
        at 0.075) fall under it: the threshold only proposes, the cut decides.
    max_cut : float, default 0.2
        Largest share of a group's supporter links that may come from outside it; the
        simulated farms take 0.8 to 3.5 % from outside.
    min_inside : float, default 0.5
        Least share of a suspect's supporters that must be suspects too: the simulated
        sybils have 75 % and more, the honest suspects that touch a farm (through its
        cover votes) at most 33 %.
    min_size : int, default 3
        Smallest group worth a finding (two accounts supporting each other are a pair of
        friends as often as a farm).

    Returns
    -------
    list of Finding
        One per group, highest severity first. Severity is ``(1 - cut / max_cut) * (1 -
        ratio / max_trust_ratio)``, ``ratio`` the group's median trust ratio. Identity:
        the sorted members.

    Notes
    -----
    Cost: one propagation (sparse, O(edges) per iteration), one sort of the support rows,
    and a connected-components pass over the candidates' links: O(m log m) overall.
    """
    if not 0 < alpha <= 1:
        raise ValueError("alpha must be in (0, 1]")
    if min_supporters < 1 or min_size < 2:
        raise ValueError("min_supporters >= 1 and min_size >= 2 are required")
    if max_trust_ratio <= 0 or not 0 < max_cut < 1 or not 0 < min_inside <= 1:
        raise ValueError(
            "max_trust_ratio > 0, 0 < max_cut < 1 and 0 < min_inside <= 1 are required"
        )
    names = evidence.accounts
    n = len(names)
    if n == 0 or len(evidence) == 0:
        return []
    sup = _support(evidence)
    pop = sup.popularity
    trust = _trust(edges, seeds, names, alpha)
    per_supporter = trust / np.maximum(pop, 1)
    popular = pop >= min_supporters
    if not popular.any():
        return []
    expected = float(np.median(per_supporter[popular]))
    if expected <= 0:
        return []
    ratio = per_supporter / expected
    seed_set = {s for s in seeds}
    is_seed = np.array([a in seed_set for a in names], dtype=bool)
    cand = popular & (ratio <= max_trust_ratio) & ~is_seed
    if cand.sum() < min_size:
        return []
    # Members are candidates most of whose supporters are suspects too, plus any popular
    # account nearly all of whose support comes from suspects (whatever its trust: the
    # sybils that received the attack edges hold more trust than the rest of the farm).
    # A fixed point, usually reached in two or three rounds; the bound only guards
    # against a cycle.
    suspect = cand
    for _ in range(_MAX_ROUNDS):
        share = np.bincount(sup.dst, weights=suspect[sup.src], minlength=n) / np.maximum(pop, 1)
        nxt = popular & ~is_seed & ((cand & (share >= min_inside)) | (share >= 1 - max_cut))
        if np.array_equal(nxt, suspect):
            break
        suspect = nxt
    cand = suspect
    if cand.sum() < min_size:
        return []
    inside = cand[sup.src] & cand[sup.dst]
    graph = sparse.coo_array(
        (np.ones(int(inside.sum())), (sup.src[inside], sup.dst[inside])), shape=(n, n)
    )
    _, label = connected_components(graph, directed=True, connection="weak")
    label = np.where(cand, label, -1)
    into_g = label[sup.dst]
    from_g = label[sup.src]
    findings: list[Finding] = []
    for g in np.unique(label[cand]).tolist():
        members = np.flatnonzero(label == g)
        if members.size < min_size:
            continue
        links_in = into_g == g
        internal = links_in & (from_g == g)
        crossing = links_in & (from_g != g)
        n_int, n_cross = int(internal.sum()), int(crossing.sum())
        cut = n_cross / (n_int + n_cross)
        if cut > max_cut:
            continue
        med_ratio = float(np.median(ratio[members]))
        sev = (1 - cut / max_cut) * (1 - min(med_ratio, max_trust_ratio) / max_trust_ratio)
        member_names = sorted(names[i] for i in members.tolist())
        attack = np.flatnonzero(crossing)
        attack = attack[np.lexsort((sup.dst[attack], sup.src[attack]))]
        findings.append(
            Finding(
                kind=SYBIL_CLUSTER,
                accounts=tuple(member_names),
                severity=round(float(np.clip(sev, 0.0, 1.0)), 4),
                evidence={
                    "members": member_names,
                    "internal_links": n_int,
                    "attack_links": n_cross,
                    "cut": round(cut, 4),
                    "attack_edges": [
                        {"from": names[int(sup.src[e])], "to": names[int(sup.dst[e])]}
                        for e in attack[:_ATTACK_EDGES_SHOWN].tolist()
                    ],
                    "supporters_median": float(np.median(pop[members])),
                    "trust_share_held": round(float(trust[members].sum()) / max(n, 1), 8),
                    "trust_ratio_median": round(med_ratio, 4),
                    "trust_ratio_max": round(float(ratio[members].max()), 4),
                    "thresholds": {
                        "min_supporters": min_supporters,
                        "max_trust_ratio": max_trust_ratio,
                        "max_cut": max_cut,
                        "alpha": alpha,
                    },
                    "rule": f">= {min_supporters} supporters, seeded trust per supporter "
                    f"<= {max_trust_ratio:g} x the median, <= {max_cut:.0%} of the group's "
                    "support from outside it",
                },
                identity={"members": member_names},
            )
        )
    findings.sort(key=lambda f: (-f.severity, f.accounts))
    return findings


def run(inp: DetectorInput) -> list[Finding]:
    """:func:`sybil_clusters` on one epoch's input, with the detector's defaults (its own
    ``alpha``, not the model's: see the function)."""
    return sybil_clusters(inp.evidence, inp.edges, list(inp.seeds))
