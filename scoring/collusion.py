"""Closed groups: accounts that keep the trust flowing into them circulating among themselves.

Why this exists: seeded propagation normalises each account's outflow, so *how much* an
account votes does not matter, only *where* its trust goes. A group whose members send
their trust mostly to each other (a vote ring, a sybil farm behind camouflaged accounts)
gives it back to the rest of the graph only through the teleport, and so holds up to
``1 / alpha`` (6.7 with the default) times what flows into it from outside, while an
honest account passes most of what it receives on (docs/accuracy.md measured rings above
three quarters of honest accounts because of this).

The rule: find communities of the *trust-flow* graph (edge ``j -> i`` weighted by the
trust that actually flows along it, ``t_j w_ji / W_j``, so well-trusted relationships
dominate the partition), and call a community **closed** when it holds no seed and at
least ``retention`` of its members' outgoing trust stays inside it. A closed group's
internal edges are then cut: what its members would pass to each other goes back to the
seeds instead (as a dangling account's trust does), so the group keeps what flows in from
outside and nothing more. Edges leaving the group are untouched: a member still vouches
for outsiders with the trust it was given.

Why community detection and not reciprocity: a rule on reciprocated edges misses a
directed cycle (each member upvotes only the next one), which circulates trust just as
well (docs/accuracy.md measured the cycle evading a reciprocity cut); a community of the
flow graph contains the cycle whatever its shape. Why Louvain (igraph's multilevel
modularity optimisation, in C): it is the fastest robust partition available here
(seconds at 100k accounts); Infomap, the flow-based method that fits the question best,
was measured 4 times slower at 100k accounts and found fewer of the camouflage-fed sybils.

Known limits (docs/scoring.md): an honest community that holds no seed and keeps 80 % of
its trust inside is cut too (none in the simulated worlds, whose honest communities keep
at most 48 %; real communities can be tighter); a group that keeps just under
``retention`` of its trust inside keeps an amplification of at most
``1 / (1 - (1 - alpha) * retention)`` (3.1 with the defaults) instead of 6.7, and has to
give the rest of its trust away to get there; modularity has a resolution limit, so a
very small group inside a very large graph can be merged with its neighbours and missed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from scoring.graph import compact_index

__all__ = ["ClosedGroups", "closed_groups"]

DEFAULT_RETENTION = 0.8
DEFAULT_RESOLUTION = 1.0
_RNG_SEED = 0x52454E  # fixed: the same evidence must give the same scores (and Merkle root)


@dataclass(frozen=True, eq=False)
class ClosedGroups:
    """The closed groups of one graph and the cut they imply.

    Attributes
    ----------
    group : ndarray of int64, shape (n,)
        Index of the closed group each account belongs to, or -1.
    retention : ndarray of float64, shape (k,)
        Share of each closed group's outgoing trust that stayed inside it.
    size : ndarray of int64, shape (k,)
        Members per closed group.
    cut : ndarray of bool, shape (m,)
        Per edge: both ends in the same closed group (the edge is cut).
    retain : ndarray of float64, shape (n,)
        Share of each account's outgoing weight that is *not* cut: what it still passes
        on (:meth:`scoring.propagation.TrustMatrix.propagate`'s ``retain``).
    """

    group: np.ndarray
    retention: np.ndarray
    size: np.ndarray
    cut: np.ndarray
    retain: np.ndarray

    @property
    def count(self) -> int:
        """Number of closed groups."""
        return int(self.size.size)


@dataclass(frozen=True)
class GraphGroups:
    """One graph's closed-group step as the model ran it: its accounts, its edges (indices
    into ``accounts``), the trust before the cut and the groups found.

    Handed to the vote-ring detector (:mod:`scoring.detect.rings`) so that it reports the
    groups the model cut without running Louvain a second time (57 s at 1M accounts).
    """

    accounts: list[str]
    src: np.ndarray
    dst: np.ndarray
    weight: np.ndarray
    trust: np.ndarray
    groups: ClosedGroups


def _communities(
    n: int, src: np.ndarray, dst: np.ndarray, flow: np.ndarray, resolution: float
) -> np.ndarray:
    """Louvain communities of the undirected flow graph, deterministically."""
    import igraph as ig  # imported here: only scoring epochs need it

    keep = (src != dst) & (flow > 0)
    # Only accounts that trust flows through take part, renumbered in index order, so
    # that accounts no trust reaches (an isolated sybil region) cannot change the
    # partition of the rest by shifting Louvain's random vertex order.
    s, d = src[keep], dst[keep]
    nodes, local = compact_index(n, s, d)
    graph = ig.Graph(n=nodes.size, edges=np.column_stack((local[s], local[d])), directed=False)
    graph.es["weight"] = flow[keep]
    # python-igraph draws from Python's `random` module unless told otherwise; a private,
    # fixed-seed generator makes the partition (and so the scores) reproducible.
    ig.set_random_number_generator(random.Random(_RNG_SEED))
    try:
        membership = graph.community_multilevel(weights="weight", resolution=resolution).membership
    finally:
        ig.set_random_number_generator(random)
    # Inactive accounts each form a community of their own (never closed: size 1).
    label = np.empty(n, dtype=np.int64)
    label[nodes] = np.asarray(membership, dtype=np.int64)
    idle = np.flatnonzero(local < 0)
    label[idle] = len(set(membership)) + np.arange(idle.size)
    return label


def closed_groups(
    n: int,
    src: np.ndarray,
    dst: np.ndarray,
    weight: np.ndarray,
    trust: np.ndarray,
    seeds: np.ndarray,
    *,
    retention: float = DEFAULT_RETENTION,
    resolution: float = DEFAULT_RESOLUTION,
) -> ClosedGroups:
    """Find the closed groups of a propagated trust graph.

    Parameters
    ----------
    n : int
        Number of accounts.
    src, dst : ndarray of int
        Truster and trusted account per edge (self loops allowed; they carry nothing).
    weight : ndarray of float
        Edge weights, > 0.
    trust : ndarray of float, shape (n,)
        Trust propagated on these edges (the first pass).
    seeds : ndarray of int
        Seed accounts: a community holding one is never closed (trust starts there).
    retention : float, default 0.8
        Least share of a community's outgoing trust that must stay inside for it to be
        closed, in ``(0, 1]``. Measured (docs/scoring.md): honest communities of the
        simulated worlds retain at most 0.48, the Louvain communities of structureless
        random graphs up to 0.73 (more as the graph grows), the simulated rings and sybil
        farms 0.83-0.98.
    resolution : float, default 1.0
        Louvain resolution; larger values find smaller communities.

    Returns
    -------
    ClosedGroups

    Notes
    -----
    With :math:`f_{ji} = t_j w_{ji} / W_j` the trust flowing along edge :math:`j \\to i`
    (:math:`W_j` the out-weight of :math:`j`, self loops excluded), a community
    :math:`C` retains :math:`r_C = \\sum_{j, i \\in C, j \\ne i} f_{ji} / \\sum_{j \\in C}
    t_j`. A seedless community with :math:`r_C \\ge` ``retention`` is closed; each
    member :math:`j` then keeps passing on :math:`1 - \\sum_{i \\in C} w_{ji} / W_j` of
    its trust.

    Examples
    --------
    Seed 0 vouches for 1 and for 2; 2 and 3 vouch only for each other.

    >>> import numpy as np
    >>> from scoring.propagation import TrustMatrix
    >>> src, dst = np.array([0, 0, 2, 3, 1]), np.array([1, 2, 3, 2, 0])
    >>> w = np.ones(5)
    >>> t = TrustMatrix.from_edges(4, src, dst, w).propagate([0]).trust
    >>> g = closed_groups(4, src, dst, w, t, np.array([0]))
    >>> g.group.tolist(), g.cut.tolist()
    ([-1, -1, 0, 0], [False, False, True, True, False])
    """
    if not 0.0 < retention <= 1.0:
        raise ValueError(f"retention must lie in (0, 1], got {retention}")
    if not resolution > 0:
        raise ValueError(f"resolution must be > 0, got {resolution}")
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    weight = np.asarray(weight, dtype=np.float64)
    loop = src == dst
    w = np.where(loop, 0.0, weight)
    out = np.bincount(src, weights=w, minlength=n)
    flow = np.zeros_like(w)
    has_out = out[src] > 0
    flow[has_out] = trust[src[has_out]] * w[has_out] / out[src[has_out]]

    empty = ClosedGroups(
        group=np.full(n, -1, dtype=np.int64),
        retention=np.zeros(0),
        size=np.zeros(0, dtype=np.int64),
        cut=np.zeros(src.size, dtype=bool),
        retain=np.ones(n),
    )
    if not bool((flow > 0).any()):
        return empty
    label = _communities(n, src, dst, flow, resolution)
    k = int(label.max()) + 1
    inside = (label[src] == label[dst]) & ~loop
    mass = np.bincount(label, weights=trust, minlength=k)
    kept = np.bincount(label[src], weights=np.where(inside, flow, 0.0), minlength=k)
    r = np.divide(kept, mass, out=np.zeros(k), where=mass > 0)
    seeded = np.zeros(k, dtype=bool)
    seeded[label[np.asarray(seeds, dtype=np.int64)]] = True
    size = np.bincount(label, minlength=k)
    closed = (r >= retention) & ~seeded & (size > 1)
    if not closed.any():
        return empty
    renumber = np.full(k, -1, dtype=np.int64)
    renumber[closed] = np.arange(int(closed.sum()))
    group = renumber[label]
    cut = inside & closed[label[src]]
    cut_out = np.bincount(src, weights=np.where(cut, w, 0.0), minlength=n)
    retain = np.divide(out - cut_out, out, out=np.ones(n), where=out > 0)
    np.clip(retain, 0.0, 1.0, out=retain)
    return ClosedGroups(
        group=group,
        retention=r[closed],
        size=size[closed],
        cut=cut,
        retain=retain,
    )
