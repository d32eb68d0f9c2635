"""The scoring model: seeded trust per domain, closed groups cut, distrust, scores and ranks.

Its contract is :func:`score_accounts`: an :class:`~scoring.graph.EdgeTable` whose
weights are final (decay, kind weights and label quality applied by the caller), the
distrust edges and a seed list in; one :class:`AccountScore` per account and domain out,
each with its confidence and explanation. Per graph: propagate, cut closed groups
(:mod:`scoring.collusion`) and propagate again, apply distrust in passes
(:mod:`scoring.distrust`); docs/scoring.md gives the equations and why.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import numpy as np

from scoring.collusion import DEFAULT_RETENTION, ClosedGroups, GraphGroups, closed_groups
from scoring.distrust import apply_distrust
from scoring.explain import Inflows
from scoring.graph import EdgeTable, compact_index
from scoring.propagation import TrustMatrix
from scoring.scale import GLOBAL_DOMAIN, SCORE_DECADES, percentiles, ranks, trust_to_score

DEFAULT_DISTRUST_PASSES = 2

__all__ = [
    "DEFAULT_DISTRUST_PASSES",
    "GLOBAL_DOMAIN",
    "SCORE_DECADES",
    "AccountScore",
    "percentiles",
    "ranks",
    "score_accounts",
    "trust_to_score",
]


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
    confidence: float | None = None
    explanation: dict[str, Any] | None = None


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
    kind: np.ndarray | None = None,
    group_retention: float | None = DEFAULT_RETENTION,
    distrust_passes: int = DEFAULT_DISTRUST_PASSES,
    outgoing: np.ndarray | None = None,
    held: np.ndarray | None = None,
    on_groups: Callable[[str, GraphGroups], None] | None = None,
) -> list[AccountScore]:
    """Propagate on one graph, compacted to the accounts it involves, cut its closed
    groups, then apply distrust.

    ``negative`` holds this graph's distrust edges (src, dst, weight) in account indices;
    ``outgoing`` the share of its trust each account (by index) may pass on, ``held``
    the share of its own trust it keeps at the end.
    """
    # Compacted to the accounts present: per-domain runs cost what the domain holds.
    present, local = compact_index(len(ids), src, dst, seed_idx)
    l_src, l_dst, l_seeds = local[src], local[dst], local[seed_idx]
    matrix = TrustMatrix.from_edges(present.size, l_src, l_dst, weight)
    names = [ids[i] for i in present.tolist()]
    x0 = _warm_vector(names, warm)

    def propagate(m: TrustMatrix, start: np.ndarray | None, keep: np.ndarray | None) -> np.ndarray:
        return m.propagate(
            l_seeds, alpha=alpha, tol=tol, max_iter=max_iter, x0=start, retain=keep
        ).trust

    # Sanctioned accounts (scoring.sanctions) pass on only their factor, from the first
    # propagation on, so the closed-group partition sees the flows without them.
    sanctioned = None if outgoing is None else outgoing[present]
    trust = propagate(matrix, x0, sanctioned)
    # Closed groups (scoring.collusion): cut the edges inside them and propagate again,
    # so that a group holds what flows into it from outside and no more.
    groups = None
    retain: np.ndarray | None = sanctioned
    e_src, e_dst, e_weight, e_kind = l_src, l_dst, weight, kind
    if group_retention is not None:
        groups = closed_groups(
            present.size, l_src, l_dst, weight, trust, l_seeds, retention=group_retention
        )
        if on_groups is not None:
            on_groups(domain, GraphGroups(names, l_src, l_dst, weight, trust, groups))
        if groups.count:
            uncut = ~groups.cut
            e_src, e_dst, e_weight = l_src[uncut], l_dst[uncut], weight[uncut]
            e_kind = None if kind is None else kind[uncut]
            retain = groups.retain if retain is None else groups.retain * retain
            matrix = TrustMatrix.from_edges(present.size, e_src, e_dst, e_weight)
            trust = propagate(matrix, trust, retain)
    taken = np.zeros_like(trust)
    propagated = trust
    if negative is not None and negative[0].size and beta > 0:
        adjusted = _after_distrust(trust, local, src, weight, negative, beta)
        # Each further pass: a distrusted account vouches only with the share of its
        # trust that distrust left it (the rest returns to the seeds), so what it passed
        # on before being distrusted is withdrawn too (docs/scoring.md, "Distrust").
        for _ in range(distrust_passes - 1):
            if not bool((adjusted < trust).any()):
                break  # distrust took nothing: another pass would change nothing
            kept = np.divide(adjusted, trust, out=np.ones_like(trust), where=trust > 0)
            np.clip(kept, 0.0, 1.0, out=kept)
            retain = kept if retain is None else retain * kept
            trust = propagate(matrix, trust, retain)
            adjusted = _after_distrust(trust, local, src, weight, negative, beta)
        propagated = trust
        taken = trust - adjusted
        trust = adjusted
    if held is not None:
        # A moderator's score factor, after everything else: what the account keeps of
        # its own trust; nothing flows on from the cut (its outgoing is decided above).
        trust = trust * held[present]
    explained = (
        _explanations(
            names,
            domain,
            e_src,
            e_dst,
            e_weight,
            e_kind,
            propagated,
            l_seeds,
            alpha,
            taken,
            retain,
            groups,
        )
        if e_kind is not None
        else None
    )
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
            confidence=None if explained is None else explained[0][i],
            explanation=None if explained is None else explained[1][i],
        )
        for i in by_rank
    ]


EXPLAIN_TOP = 5


def _explanations(
    names: list[str],
    domain: str,
    src: np.ndarray,
    dst: np.ndarray,
    weight: np.ndarray,
    kind: np.ndarray,
    trust: np.ndarray,
    seeds: np.ndarray,
    alpha: float,
    taken: np.ndarray,
    retain: np.ndarray | None = None,
    groups: ClosedGroups | None = None,
) -> tuple[list[float], list[dict[str, Any]]]:
    """Confidence and a JSON-ready explanation for every account of one graph.

    The explanation decomposes the propagated trust (before distrust, after the closed
    groups' cut) into its top sources and evidence kinds (:mod:`scoring.explain`), says
    which share of it distrust took away, and, for a member of a closed group, the
    group's size and how much of its trust it kept inside.
    """
    inflows = Inflows.from_arrays(
        len(names),
        src,
        dst,
        weight,
        kind,
        trust,
        seeds,
        alpha=alpha,
        accounts=names,
        domain=domain,
        retain=retain,
    )
    confidence = inflows.confidence().tolist()
    top_idx, top_share = inflows.top_sources(EXPLAIN_TOP)
    kinds = inflows.kind_shares()
    seed_share = inflows.seed_share().tolist()
    n_sources = inflows.n_sources().tolist()
    kind_names = inflows.kind_names
    with np.errstate(divide="ignore", invalid="ignore"):
        taken_share = np.where(trust > 0, np.minimum(taken / trust, 1.0), 0.0).tolist()
    # Whole-matrix passes, then one cheap Python loop: a numpy call per account (the
    # previous form) cost more than everything vectorised here (docs/performance.md).
    n = len(names)
    k_rows, k_cols = np.nonzero(kinds > 0)
    k_vals = kinds[k_rows, k_cols].tolist()
    k_names = [kind_names[c] for c in k_cols.tolist()]
    k_bounds = np.searchsorted(k_rows, np.arange(n + 1)).tolist()
    top_l = top_idx.tolist()
    share_l = top_share.tolist()
    out: list[dict[str, Any]] = []
    for i in range(n):
        lo, hi = k_bounds[i], k_bounds[i + 1]
        out.append(
            {
                "seed_share": seed_share[i],
                "n_sources": int(n_sources[i]),
                "sources": [
                    {"account": names[j], "share": sh}
                    for j, sh in zip(top_l[i], share_l[i], strict=True)
                    if j >= 0
                ],
                "kinds": dict(zip(k_names[lo:hi], k_vals[lo:hi], strict=True)),
                "distrust_share": taken_share[i],
            }
        )
    if groups is not None and groups.count:
        for i in np.flatnonzero(groups.group >= 0).tolist():
            g = int(groups.group[i])
            out[i]["closed_group"] = {
                "members": int(groups.size[g]),
                "retention": float(groups.retention[g]),
            }
    return confidence, out


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


P = ParamSpec("P")
R = TypeVar("R")


def _gc_paused(fn: Callable[P, R]) -> Callable[P, R]:
    """Pause the cyclic garbage collector while ``fn`` runs.

    Creating millions of small result objects triggers the collector over and over
    although none of them can form a cycle: pausing it halves the time of a 1M-account
    epoch (docs/performance.md, scoring).
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            if was_enabled:
                gc.enable()

    return wrapper


@_gc_paused
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
    kinds: np.ndarray | None = None,
    group_retention: float | None = DEFAULT_RETENTION,
    distrust_passes: int = DEFAULT_DISTRUST_PASSES,
    outgoing: Mapping[str, float] | None = None,
    held: Mapping[str, float] | None = None,
    on_groups: Callable[[str, GraphGroups], None] | None = None,
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
    kinds : ndarray of int, optional
        Evidence kind code (:data:`scoring.evidence.KINDS`) of each row of ``edges``.
        Given, every result carries a confidence and an explanation
        (:mod:`scoring.explain`).
    warm : mapping of domain to (account to trust), optional
        The previous epoch's trust, to start each graph's iteration from (the answer is
        the same; only the iteration count changes).
    group_retention : float or None, default 0.8
        Cut the internal edges of closed groups, communities without a seed that keep at
        least this share of their outgoing trust inside
        (:func:`scoring.collusion.closed_groups`), and propagate again. None turns it off.
    distrust_passes : int, default 2
        1: distrust is applied once after propagation. 2 or more: after each
        application, propagate again with every account passing on only the share of its
        trust distrust left it, then apply distrust again (docs/scoring.md).
    outgoing : mapping of account to float in [0, 1], optional
        The share of its trust an account may pass on (confirmed moderation flags,
        :mod:`scoring.sanctions`); accounts left out pass on all of it. The held-back
        share returns to the seeds. Applied in every graph, before the closed-group cut.
    held : mapping of account to float in [0, 1], optional
        The share of its own final trust an account keeps (a moderator's score factor);
        applied last, so ranks and percentiles reflect it.
    on_groups : callable, optional
        Called with each graph's domain and its closed-group step
        (:class:`scoring.collusion.GraphGroups`), for the vote-ring detector.

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
    if distrust_passes < 1:
        raise ValueError(f"distrust_passes must be >= 1, got {distrust_passes}")
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
    out_vec = _factor_vector(ids, outgoing, "outgoing")
    held_vec = _factor_vector(ids, held, "held")
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
        kind=kinds,
        group_retention=group_retention,
        distrust_passes=distrust_passes,
        outgoing=out_vec,
        held=held_vec,
        on_groups=on_groups,
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
                kind=None if kinds is None else kinds[rows],
                group_retention=group_retention,
                distrust_passes=distrust_passes,
                outgoing=out_vec,
                held=held_vec,
                on_groups=on_groups,
            )
        )
    return results


def _factor_vector(
    ids: list[str], factors: Mapping[str, float] | None, name: str
) -> np.ndarray | None:
    """Per account of ``ids``, its factor (1 when not given); None when none is given."""
    if not factors:
        return None
    bad = {a: f for a, f in factors.items() if not 0.0 <= f <= 1.0}
    if bad:
        raise ValueError(f"{name} factors must lie in [0, 1]: {bad}")
    return np.fromiter((factors.get(a, 1.0) for a in ids), np.float64, count=len(ids))


def _domain_rows(table: EdgeTable, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = np.flatnonzero(table.domain == k)
    return table.src[rows], table.dst[rows], table.weight[rows]
