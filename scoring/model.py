"""The first scoring model: seeded trust per domain, turned into scores and ranks.

This module is the seam the next issue replaces or extends (label quality,
distrust, decay, confidence and explanations). Its contract is
:func:`score_accounts`: an :class:`~scoring.graph.EdgeTable` whose weights are
final and a seed list in, one :class:`AccountScore` per account and domain out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from scoring.distrust import apply_distrust
from scoring.graph import EdgeTable
from scoring.propagation import TrustMatrix

__all__ = [
    "GLOBAL_DOMAIN",
    "SCORE_DECADES",
    "AccountScore",
    "percentiles",
    "ranks",
    "score_accounts",
    "trust_to_score",
]

GLOBAL_DOMAIN = "global"
"""Domain name of the all-domains score; reserved, so no edge domain may use it."""

SCORE_DECADES = 4.0
"""Half-width, in powers of ten around the uniform share, of the score scale."""


@dataclass(frozen=True, slots=True)
class AccountScore:
    """One account's result in one domain.

    Attributes
    ----------
    account : str
        Account id.
    domain : str
        Domain name, or :data:`GLOBAL_DOMAIN` for the score over all edges.
    trust : float
        Stationary trust in that domain's graph; sums to one over the domain.
    score : float
        ``trust`` on a 0-100 log scale (:func:`trust_to_score`).
    rank : int
        1 for the most trusted account of the domain; ties broken by account
        id, so every account has a distinct rank.
    percentile : float
        100 times the share of the domain's accounts whose trust is ``<=``
        this one's; equal trust gives equal percentile.
    """

    account: str
    domain: str
    trust: float
    score: float
    rank: int
    percentile: float


def trust_to_score(trust: np.ndarray, n: int | None = None) -> np.ndarray:
    """Map trust to a 0-100 score on a log scale centred on the uniform share.

    .. math::

        \\mathrm{score} = \\mathrm{clip}\\left(50 + \\frac{50}{4}
            \\log_{10}(n \\cdot \\mathrm{trust}),\\ 0,\\ 100\\right)

    An account holding exactly the average share ``1/n`` scores 50; each
    factor of ten above or below it moves the score by 12.5 points; 10^4 times
    the average or more is 100, 10^-4 times or less (including zero trust,
    i.e. unreachable from the seeds) is 0.

    Why this scale: trust is heavy-tailed (a few hubs hold orders of magnitude
    more than the median), so a linear scale would put almost everyone at 0.
    Anchoring on ``1/n`` rather than on the maximum keeps scores comparable
    across domains of different sizes and stable when one hub or the number of
    seeds changes. Eight decades cover what was measured on a synthetic
    100k-account power-law graph (docs/scoring.md) without saturating: the
    median non-seed account sat near 33, the 99th percentile near 64, the
    seeds near 77 and nobody at 100. Below ``10^-4 / n`` trust is also close
    to what the default tolerance resolves at a million accounts.

    Parameters
    ----------
    trust : numpy.ndarray of float
        Trust of the domain's accounts.
    n : int, optional
        Number of accounts in the domain; defaults to ``len(trust)``.

    Returns
    -------
    numpy.ndarray of float64
        Scores in ``[0, 100]``, non-decreasing in trust.

    Examples
    --------
    >>> np.round(trust_to_score(np.array([0.25, 0.25, 0.5, 0.0])), 2).tolist()
    [50.0, 50.0, 53.76, 0.0]
    """
    t = np.asarray(trust, dtype=np.float64)
    count = t.size if n is None else n
    with np.errstate(divide="ignore"):
        decades = np.log10(t * count)
    score = 50.0 + (50.0 / SCORE_DECADES) * decades
    return np.clip(np.nan_to_num(score, nan=0.0, neginf=0.0), 0.0, 100.0)


def ranks(trust: np.ndarray, accounts: Sequence[str]) -> np.ndarray:
    """Ordinal ranks, 1 = highest trust, ties broken by account id ascending.

    Deterministic: the same trust and ids always give the same ranks, however
    the accounts were ordered on input.

    Examples
    --------
    >>> ranks(np.array([0.2, 0.5, 0.2]), ["c", "a", "b"]).tolist()
    [3, 1, 2]
    """
    t = np.asarray(trust, dtype=np.float64)
    ids = np.asarray(accounts, dtype=str)
    order = np.lexsort((ids, -t))  # last key is primary
    out = np.empty(t.size, dtype=np.int64)
    out[order] = np.arange(1, t.size + 1)
    return out


def percentiles(trust: np.ndarray) -> np.ndarray:
    """100 times the share of accounts whose trust is ``<=`` each account's.

    The top account gets 100; tied accounts share a percentile.

    Examples
    --------
    >>> percentiles(np.array([0.2, 0.5, 0.2, 0.1])).tolist()
    [75.0, 100.0, 75.0, 25.0]
    """
    t = np.asarray(trust, dtype=np.float64)
    if t.size == 0:
        return np.zeros(0, dtype=np.float64)
    at_or_below = np.searchsorted(np.sort(t), t, side="right")
    return 100.0 * at_or_below / t.size


def _score_graph(
    ids: list[str],
    domain: str,
    src: np.ndarray,
    dst: np.ndarray,
    weight: np.ndarray,
    seed_idx: np.ndarray,
    *,
    alpha: float,
    tol: float,
    max_iter: int,
    negative: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    beta: float = 1.0,
    warm: Mapping[str, float] | None = None,
) -> list[AccountScore]:
    """Propagate on one graph, compacted to the accounts it involves, then apply distrust.

    ``negative`` holds this graph's distrust edges (src, dst, weight) in account indices.
    """
    # Compacting to the accounts present keeps per-domain runs proportional to
    # the domain's size rather than to the whole account index. A mask and a
    # lookup array cost O(edges + accounts), unlike np.unique/searchsorted.
    involved = np.zeros(len(ids), dtype=bool)
    involved[src] = True
    involved[dst] = True
    involved[seed_idx] = True
    present = np.flatnonzero(involved)
    local = np.full(len(ids), -1, dtype=np.int64)
    local[present] = np.arange(present.size)
    matrix = TrustMatrix.from_edges(present.size, local[src], local[dst], weight)
    names = [ids[i] for i in present.tolist()]
    x0 = _warm_vector(names, warm)
    result = matrix.propagate(local[seed_idx], alpha=alpha, tol=tol, max_iter=max_iter, x0=x0)
    trust = result.trust
    if negative is not None and negative[0].size and beta > 0:
        trust = _after_distrust(trust, local, src, weight, negative, beta)
    rank = ranks(trust, names)
    by_rank = np.argsort(rank).tolist()
    trust_l = trust.tolist()
    score_l = trust_to_score(trust).tolist()
    rank_l = rank.tolist()
    pct_l = percentiles(trust).tolist()
    return [
        AccountScore(
            account=names[i],
            domain=domain,
            trust=trust_l[i],
            score=score_l[i],
            rank=rank_l[i],
            percentile=pct_l[i],
        )
        for i in by_rank
    ]


def _warm_vector(names: list[str], warm: Mapping[str, float] | None) -> np.ndarray | None:
    """The previous epoch's trust aligned to this graph, or None when it says nothing.

    Only a starting point: the fixed point is the same from any start, so accounts new
    to this epoch start at 0 and the vector needs no particular normalisation.
    """
    if not warm:
        return None
    x0 = np.fromiter((warm.get(name, 0.0) for name in names), dtype=np.float64, count=len(names))
    return x0 if x0.sum() > 0 else None


def _after_distrust(
    trust: np.ndarray,
    local: np.ndarray,
    src: np.ndarray,
    weight: np.ndarray,
    negative: tuple[np.ndarray, np.ndarray, np.ndarray],
    beta: float,
) -> np.ndarray:
    """Distrust from this graph's accounts onto this graph's accounts (scoring.distrust).

    A distruster outside the graph has no trust here, and a distrusted account outside it
    has no score here, so both are left out; a distruster's out-weight counts all its
    edges in the graph's domain, trust and distrust, wherever they point.
    """
    n_src, n_dst, n_w = negative
    n = trust.size
    out = np.zeros(n, dtype=np.float64)
    np.add.at(out, local[src], weight)
    src_local = local[n_src]
    has_src = src_local >= 0
    np.add.at(out, src_local[has_src], n_w[has_src])
    dst_local = local[n_dst]
    rows = has_src & (dst_local >= 0)
    adjusted, _ = apply_distrust(trust, src_local[rows], dst_local[rows], n_w[rows], out, beta=beta)
    return adjusted


def score_accounts(
    edges: EdgeTable,
    seeds: Sequence[str],
    *,
    alpha: float = 0.15,
    tol: float = 1e-10,
    max_iter: int = 1000,
    distrust: EdgeTable | None = None,
    beta: float = 1.0,
    warm: Mapping[str, Mapping[str, float]] | None = None,
) -> list[AccountScore]:
    """Score every account globally and in each domain.

    Runs seeded trust propagation (:meth:`scoring.propagation.TrustMatrix.propagate`)
    once on all edges (domain :data:`GLOBAL_DOMAIN`, parallel edges of
    different domains summed) and once per domain on that domain's edges
    alone, with the same seeds each time.

    Parameters
    ----------
    edges : EdgeTable
        Trust edges with final weights. Validated here.
    seeds : sequence of str
        Pre-trusted account ids; duplicates are ignored, and seeds absent from
        ``edges`` are allowed (they still receive teleport mass).
    alpha, tol, max_iter
        Passed to the propagation; see there.
    distrust : EdgeTable, optional
        Negative evidence over the same account and domain index as ``edges``, applied
        after propagation in each graph (:mod:`scoring.distrust`); trust, score, rank and
        percentile are then those of the adjusted trust.
    beta : float
        Strength of distrust (see :func:`scoring.distrust.apply_distrust`).
    warm : mapping of domain to (account to trust), optional
        The previous epoch's trust, to start each graph's iteration from (the answer is
        the same; only the iteration count changes).

    Returns
    -------
    list of AccountScore
        The global results first, then each domain's in order of domain name;
        within a domain, by rank. A graph's results cover exactly the accounts
        in its edges (self loops included) plus all seeds. A domain without
        edges yields nothing.

    Raises
    ------
    TypeError
        If ``seeds`` is a single string (a common slip that would seed its
        characters).
    ValueError
        If there are no seeds, the table is invalid, or a domain is named
        :data:`GLOBAL_DOMAIN`.
    scoring.propagation.ConvergenceError
        If a propagation does not converge.

    Examples
    --------
    >>> t = EdgeTable.from_records(
    ...     [("mod", "ann", 1.0, "code"), ("ann", "bob", 1.0, "code"), ("bob", "ann", 1.0, "art")]
    ... )
    >>> [(s.domain, s.account, s.rank) for s in score_accounts(t, ["mod"])][:3]
    [('global', 'ann', 1), ('global', 'bob', 2), ('global', 'mod', 3)]
    """
    if isinstance(seeds, str):
        raise TypeError("seeds must be a sequence of account ids, not a single string")
    edges.validate()
    if GLOBAL_DOMAIN in edges.domains:
        raise ValueError(f"domain name {GLOBAL_DOMAIN!r} is reserved for the all-domains score")
    seed_ids = list(dict.fromkeys(seeds))
    if not seed_ids:
        raise ValueError(
            "score_accounts needs at least one seed account: unseeded trust is what "
            "sybil farms exploit"
        )
    ids = list(edges.accounts)
    index = {account: i for i, account in enumerate(ids)}
    seed_list: list[int] = []
    for account in seed_ids:
        if account not in index:
            index[account] = len(ids)
            ids.append(account)
        seed_list.append(index[account])
    seed_idx = np.asarray(seed_list, dtype=np.intp)
    src, dst = edges.src, edges.dst
    if distrust is not None:
        distrust.validate()
        if distrust.accounts != edges.accounts or distrust.domains != edges.domains:
            raise ValueError("distrust must share the account and domain index of edges")
        neg_all = (distrust.src, distrust.dst, distrust.weight)

    results = _score_graph(
        ids,
        GLOBAL_DOMAIN,
        src,
        dst,
        edges.weight,
        seed_idx,
        alpha=alpha,
        tol=tol,
        max_iter=max_iter,
        negative=neg_all if distrust is not None else None,
        beta=beta,
        warm=(warm or {}).get(GLOBAL_DOMAIN),
    )

    # One stable sort by domain instead of a full-table mask per domain.
    order = np.argsort(edges.domain, kind="stable")
    sorted_domain = edges.domain[order]
    for name in sorted(edges.domains):
        k = edges.domains.index(name)
        lo = int(np.searchsorted(sorted_domain, k, side="left"))
        hi = int(np.searchsorted(sorted_domain, k, side="right"))
        if lo == hi:
            continue
        rows = order[lo:hi]
        results.extend(
            _score_graph(
                ids,
                name,
                src[rows],
                dst[rows],
                edges.weight[rows],
                seed_idx,
                alpha=alpha,
                tol=tol,
                max_iter=max_iter,
                negative=_domain_rows(distrust, k) if distrust is not None else None,
                beta=beta,
                warm=(warm or {}).get(name),
            )
        )
    return results


def _domain_rows(table: EdgeTable, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = np.flatnonzero(table.domain == k)
    return table.src[rows], table.dst[rows], table.weight[rows]
