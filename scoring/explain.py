"""Explanations and confidence: where an account's trust comes from, and how far to rely on it.

At the fixed point of the seeded propagation (:mod:`scoring.propagation`)

.. math::

    x = \\beta (M x + (d^\\top x)\\, p) + \\alpha p, \\qquad \\beta = 1 - \\alpha ,

an account's trust is a sum of inflows: :math:`\\beta M_{ij} x_j` from each
account ``j`` that trusts it, plus the teleport and returned dangling mass
:math:`(\\alpha + \\beta\\, d^\\top x)\\, p_i` if it is a seed. An edge ``e`` from
``j`` carries :math:`\\beta\\, w_e / o_j \\cdot x_j` of it (``o_j`` is ``j``'s
outgoing weight), so parallel edges of different kinds split a pair's inflow in
proportion to their weights. :class:`Inflows` computes every edge's amount once,
groups the amounts by receiving account, source and evidence kind, and answers
from those arrays: shares, top sources, kinds, and a confidence, for one
account (:meth:`Inflows.explain`) or all of them at once (the array methods).

Shares are fractions of the account's *inflow* ``y_i``, so the seed share and
the source shares sum to one up to rounding. At the fixed point ``y = x``; the
trust from :meth:`~scoring.propagation.TrustMatrix.propagate` is within its
tolerance of it, and a vector that is not (trust from another graph, other
seeds or another ``alpha``) is rejected rather than explained wrongly.

The edge arrays, not the :class:`~scoring.propagation.TrustMatrix`, are the
input: the matrix has summed parallel edges, so the kinds are gone from it.

docs/explanations.md has the derivation, the confidence definition and costs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt
from scipy import sparse

from scoring.evidence import KINDS
from scoring.graph import EdgeTable, compact_index
from scoring.propagation import TrustMatrix
from scoring.scale import GLOBAL_DOMAIN, trust_to_score

__all__ = [
    "BOTTLENECK_MAX_ROUNDS",
    "BOTTLENECK_TOL",
    "DEFAULT_ATOL",
    "DEFAULT_SOURCE_SCALE",
    "KIND_LABELS",
    "Explanation",
    "Inflows",
    "KindShares",
    "Source",
    "explain_account",
    "render",
]

KindShares = tuple[tuple[str, float], ...]
"""``((kind, share), ...)``: largest share first, ties by kind name."""

DEFAULT_SOURCE_SCALE = 3.0
"""``κ`` in ``1 - exp(-n / κ)``: one independent source gives 0.28, three 0.63, ten 0.96."""

DEFAULT_ATOL = 1e-6
"""Largest accepted ``sum(|inflow - trust|)`` before a trust vector is rejected."""

BOTTLENECK_TOL = 1e-6
"""The bottleneck rounds stop when no account's bottleneck share moves by more."""

BOTTLENECK_MAX_ROUNDS = 64
"""At most this many bottleneck rounds (each follows chains one hop further upstream)."""


@dataclass(frozen=True, slots=True)
class Source:
    """One account that passes trust to the explained account.

    Attributes
    ----------
    account : str
        The trusting account.
    share : float
        Its share of the explained account's trust (all its edges together).
    kinds : tuple of (str, float)
        That share split by evidence kind, each part also a share of the
        explained account's trust (they sum to ``share``), largest first.
    """

    account: str
    share: float
    kinds: KindShares


@dataclass(frozen=True, slots=True)
class Explanation:
    """Where one account's trust in one domain comes from.

    Every share is a fraction of the account's trust:
    ``seed_share + (shares of all sources) == 1`` and
    ``seed_share + sum(share for _, share in kinds) == 1`` up to rounding,
    unless nothing flows into the account, when every share is 0.

    Attributes
    ----------
    account, domain : str
    trust : float
        The account's trust, as given.
    seed_share : float
        Share that is seed allocation (teleport plus returned dangling mass);
        0 for accounts that are not seeds.
    sources : tuple of Source
        The top sources, largest share first, ties by account id.
    kinds : tuple of (str, float)
        Inflow from all sources by evidence kind, largest first.
    n_sources : int
        Number of accounts that pass it a positive amount of trust
        (``sources`` lists at most the top ``k``).
    effective_sources : float
        Inverse Herfindahl index of the source shares (renormalised to the
        inflow from edges): 1 for one source, 10 for ten equal ones, 0 for none.
    independent_sources : float or None
        ``min(effective_sources, 1 / f)`` with ``f`` the share of the edge
        inflow that passes through the bottleneck: sources behind one common
        upstream account count as one. ``None`` from :func:`explain_account`,
        which looks at this account's edges only.
    bottleneck : (str, float) or None
        The non-seed account through which the largest share of this
        account's trust passes, directly or upstream, and that share;
        ``None`` without one, or from :func:`explain_account`.
    confidence : float or None
        In ``[0, 1]``, see :meth:`Inflows.confidence`; ``None`` from
        :func:`explain_account`.
    """

    account: str
    domain: str
    trust: float
    seed_share: float
    sources: tuple[Source, ...]
    kinds: KindShares
    n_sources: int
    effective_sources: float = 0.0
    independent_sources: float | None = None
    bottleneck: tuple[str, float] | None = None
    confidence: float | None = None

    @property
    def source_share(self) -> float:
        """Share of the trust that comes from other accounts (0 if nothing flows in)."""
        return 1.0 - self.seed_share if (self.n_sources or self.seed_share > 0) else 0.0


# --------------------------------------------------------------------------- input checks


def _check_index(name: str, arr: npt.ArrayLike, n: int) -> np.ndarray:
    a = np.asarray(arr)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if a.size == 0:
        return a.astype(np.int64)
    if not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name} must hold integer indices, got dtype {a.dtype}")
    if int(a.min()) < 0 or int(a.max()) >= n:
        raise ValueError(f"{name} has values outside [0, {n})")
    return a


def _check_edges(
    n: int,
    src: npt.ArrayLike,
    dst: npt.ArrayLike,
    weight: npt.ArrayLike,
    kind: npt.ArrayLike,
    n_kinds: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validated edge arrays, self loops dropped (propagation ignores them too)."""
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    s = _check_index("src", src, n)
    d = _check_index("dst", dst, n)
    k = _check_index("kind", kind, n_kinds)
    w = np.asarray(weight, dtype=np.float64)
    if w.ndim != 1:
        raise ValueError(f"weight must be 1-D, got shape {w.shape}")
    if not (s.shape == d.shape == w.shape == k.shape):
        raise ValueError(
            f"src, dst, weight and kind must have equal lengths, got "
            f"{s.shape[0]}, {d.shape[0]}, {w.shape[0]}, {k.shape[0]}"
        )
    if w.size and not bool(np.all(np.isfinite(w) & (w > 0))):
        raise ValueError("weights must be finite and > 0")
    keep = s != d
    if not keep.all():
        s, d, w, k = s[keep], d[keep], w[keep], k[keep]
    return s, d, w, k


def _check_trust(n: int, trust: npt.ArrayLike) -> np.ndarray:
    x = np.asarray(trust, dtype=np.float64).reshape(-1)
    if x.shape != (n,):
        raise ValueError(f"trust must have shape ({n},), got {x.shape}")
    if not bool(np.all(np.isfinite(x) & (x >= 0))):
        raise ValueError("trust must be finite and >= 0")
    return x


def _seed_inflow(
    n: int,
    out: np.ndarray,
    x: np.ndarray,
    seeds: Sequence[int] | npt.ArrayLike,
    seed_weights: Sequence[float] | npt.ArrayLike | None,
    alpha: float,
    retain: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The seed inflow ``(alpha + beta * d.x) * p`` as a dense vector, and the seed mask.

    With ``retain``, the trust accounts held back (``1 - retain`` of it) returns to the
    seeds with the dangling mass, as in :meth:`TrustMatrix.propagate`.
    """
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must lie in (0, 1], got {alpha}")
    # Exactly propagation's seed distribution (validation, duplicates adding up).
    none = np.zeros(0, dtype=np.int64)
    seed_idx, seed_p = TrustMatrix.from_edges(n, none, none, none).seed_distribution(
        seeds, seed_weights
    )
    dangling_mass = float(x[out == 0].sum())
    if retain is not None:
        dangling_mass += float(((1.0 - retain) * x)[out > 0].sum())
    seed_in = np.zeros(n, dtype=np.float64)
    seed_in[seed_idx] = (alpha + (1.0 - alpha) * dangling_mass) * seed_p
    is_seed = np.zeros(n, dtype=bool)
    is_seed[seed_idx] = True
    return seed_in, is_seed


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    res = np.zeros(np.broadcast(num, den).shape, dtype=np.float64)
    np.divide(num, den, out=res, where=den > 0)
    return res


def _segment_argmax(
    values: np.ndarray,
    starts: np.ndarray,
    counts: np.ndarray,
    segment_of: np.ndarray,
    ref: np.ndarray,
    rank_of: Callable[[np.ndarray], np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Position of each segment's maximum, for segments whose maximum is positive.

    Exact ties go to the lowest ``rank_of(ref[position])`` (account-id order),
    which is only evaluated for the tied positions. Returns the positions and
    their segment labels (``segment_of`` at them).
    """
    best = np.maximum.reduceat(values, starts)
    hits = np.flatnonzero((values == np.repeat(best, counts)) & (values > 0))
    label = segment_of[hits]
    new = np.ones(hits.shape[0], dtype=bool)
    np.not_equal(label[1:], label[:-1], out=new[1:])
    first = np.flatnonzero(new)
    if first.shape[0] == hits.shape[0]:
        return hits, label
    n_hits = np.diff(np.append(first, hits.shape[0]))
    tied = n_hits > 1
    in_tie = np.repeat(tied, n_hits)
    sub, sub_label = hits[in_tie], label[in_tie]
    key = rank_of(ref[sub])
    sub_first = np.flatnonzero(np.append(True, sub_label[1:] != sub_label[:-1]))
    lowest = np.minimum.reduceat(key, sub_first)
    keep = key == np.repeat(lowest, np.diff(np.append(sub_first, sub.shape[0])))
    sub, sub_label = sub[keep], sub_label[keep]
    sub_first = np.flatnonzero(np.append(True, sub_label[1:] != sub_label[:-1]))
    untied = first[~tied]
    return (
        np.concatenate([hits[untied], sub[sub_first]]),
        np.concatenate([label[untied], sub_label[sub_first]]),
    )


# --------------------------------------------------------------------------- the inflow table


@dataclass(frozen=True, eq=False)
class Inflows:
    """Every account's inflows, grouped by receiving account, source and kind.

    Build one with :meth:`from_arrays` or :meth:`from_table`. :meth:`explain`
    then answers for one account in time proportional to its number of
    sources, and the array methods (:meth:`seed_share`,
    :meth:`effective_sources`, :meth:`kind_shares`, :meth:`top_sources`,
    :meth:`confidence`, ...) answer for all accounts at once.

    Layout (CSR-like numpy arrays): the pairs ``(source, account)`` with at
    least one edge, sorted by account then source, account ``i``'s pairs being
    ``account_ptr[i]:account_ptr[i + 1]``; each pair's inflow split into rows
    by evidence kind, pair ``q``'s rows being ``pair_ptr[q]:pair_ptr[q + 1]``
    in kind-code order.

    Attributes
    ----------
    accounts : sequence of str or None
        Index -> account id; ``None`` names accounts by their index.
    domain : str
    kind_names : tuple of str
        Kind code -> name (:data:`scoring.evidence.KINDS` by default).
    trust : numpy.ndarray, shape (n,)
    inflow : numpy.ndarray, shape (n,)
        Seed inflow plus the inflow along all edges (equal to ``trust`` at the
        fixed point, within the propagation's tolerance).
    seed_inflow : numpy.ndarray, shape (n,)
    is_seed : numpy.ndarray of bool, shape (n,)
    account_ptr : numpy.ndarray of int64, shape (n + 1,)
    pair_src : numpy.ndarray of int, shape (P,)
    pair_amount : numpy.ndarray of float64, shape (P,)
    pair_ptr : numpy.ndarray of int64, shape (P + 1,)
    row_kind : numpy.ndarray of int, shape (R,)
    row_amount : numpy.ndarray of float64, shape (R,)
    complete : bool
        Whether every account's inflows are present; ``False`` for the
        one-account table behind :func:`explain_account`, which therefore has
        no confidence.
    source_scale : float
        ``κ`` of :meth:`breadth`.
    """

    accounts: Sequence[str] | None
    domain: str
    kind_names: tuple[str, ...]
    trust: np.ndarray
    inflow: np.ndarray
    seed_inflow: np.ndarray
    is_seed: np.ndarray
    account_ptr: np.ndarray
    pair_src: np.ndarray
    pair_amount: np.ndarray
    pair_ptr: np.ndarray
    row_kind: np.ndarray
    row_amount: np.ndarray
    complete: bool = True
    source_scale: float = DEFAULT_SOURCE_SCALE

    # ----------------------------------------------------------------- construction

    @classmethod
    def from_arrays(
        cls,
        n: int,
        src: npt.ArrayLike,
        dst: npt.ArrayLike,
        weight: npt.ArrayLike,
        kind: npt.ArrayLike,
        trust: npt.ArrayLike,
        seeds: Sequence[int] | npt.ArrayLike,
        *,
        seed_weights: Sequence[float] | npt.ArrayLike | None = None,
        alpha: float = 0.15,
        accounts: Sequence[str] | None = None,
        domain: str = GLOBAL_DOMAIN,
        kind_names: Sequence[str] = KINDS,
        source_scale: float = DEFAULT_SOURCE_SCALE,
        atol: float | None = DEFAULT_ATOL,
        retain: npt.ArrayLike | None = None,
    ) -> Inflows:
        """Decompose ``trust`` into inflows along the given edges.

        Parameters
        ----------
        n : int
            Number of accounts; indices lie in ``[0, n)``.
        src, dst, weight : array_like, shape (m,)
            The edges the trust was propagated on (what went into
            :meth:`TrustMatrix.from_edges`); self loops are ignored, as there.
        kind : array_like of int, shape (m,)
            Evidence kind code of each edge, an index into ``kind_names``
            (:attr:`scoring.evidence.Evidence.kind` of the row it came from).
        trust : array_like of float, shape (n,)
            The propagated trust (:attr:`PropagationResult.trust`).
        seeds, seed_weights, alpha
            As given to :meth:`TrustMatrix.propagate`.
        accounts : sequence of str, optional
            Account ids, for explanations and to break ties.
        domain : str, default ``"global"``
            Reported in explanations.
        kind_names : sequence of str, default :data:`scoring.evidence.KINDS`
        source_scale : float, default :data:`DEFAULT_SOURCE_SCALE`
            ``κ`` of the confidence's breadth.
        atol : float or None, default :data:`DEFAULT_ATOL`
            Reject ``trust`` if ``sum(|inflow - trust|)`` exceeds it; ``None``
            skips the check. With the default propagation tolerance the gap
            is about 1e-10.
        retain : array_like of float, shape (n,), optional
            As given to :meth:`TrustMatrix.propagate`: each account passed on only this
            share of its trust (a closed group's members, a distrusted account).

        Raises
        ------
        ValueError
            On malformed input, or a trust vector that is not the fixed point
            of these edges and seeds (the ``atol`` check).

        Notes
        -----
        Cost: a few O(m) vectorised passes and one COO -> CSR conversion (a
        counting sort in C): about 1-1.5 s and 530 MB traced peak for 10M
        edges, 300 MB kept (docs/explanations.md).
        """
        names = tuple(kind_names)
        s, d, w, k = _check_edges(n, src, dst, weight, kind, len(names))
        x = _check_trust(n, trust)
        if accounts is not None and len(accounts) != n:
            raise ValueError(f"accounts must have {n} names, got {len(accounts)}")
        out = np.bincount(s, weights=w, minlength=n)
        keep = None
        if retain is not None:
            keep = np.asarray(retain, dtype=np.float64).reshape(-1)
            if keep.shape != (n,) or not bool(np.all((keep >= 0) & (keep <= 1))):
                raise ValueError(f"retain must have shape ({n},) and lie in [0, 1]")
        ratio = _safe_div(x if keep is None else x * keep, out)  # r_j x_j / o_j
        amount = ((1.0 - alpha) * w) * ratio[s]
        seed_in, is_seed = _seed_inflow(n, out, x, seeds, seed_weights, alpha, keep)
        return cls._group(
            n,
            s,
            d,
            k,
            amount,
            x,
            seed_in,
            is_seed,
            accounts=accounts,
            domain=domain,
            kind_names=names,
            source_scale=source_scale,
            atol=atol,
            only=None,
        )

    @classmethod
    def from_table(
        cls,
        edges: EdgeTable,
        kind: npt.ArrayLike,
        seeds: Sequence[str],
        *,
        domain: str = GLOBAL_DOMAIN,
        trust: Mapping[str, float] | None = None,
        alpha: float = 0.15,
        tol: float = 1e-10,
        max_iter: int = 1000,
        kind_names: Sequence[str] = KINDS,
        source_scale: float = DEFAULT_SOURCE_SCALE,
        atol: float | None = DEFAULT_ATOL,
    ) -> Inflows:
        """Inflows of one of the graphs that :func:`scoring.model.score_accounts` scores.

        The graph is built as the model builds it: all edges for ``"global"``,
        else that domain's edges, compacted to the accounts in them plus the
        seeds (seeds absent from the table appended), with the same indices.

        Parameters
        ----------
        edges : EdgeTable
        kind : array_like of int, shape (edges.n_edges,)
            Evidence kind code of each row of ``edges``.
        seeds : sequence of str
            As given to ``score_accounts``.
        domain : str, default ``"global"``
        trust : mapping of str to float, optional
            The model's trust in this domain, e.g.
            ``{s.account: s.trust for s in scores if s.domain == domain}``;
            absent accounts count as 0. If omitted, trust is propagated here
            with ``alpha``, ``tol`` and ``max_iter``, which reproduces the
            model's values exactly.
        kind_names, source_scale, atol
            As for :meth:`from_arrays`.

        Raises
        ------
        TypeError
            If ``seeds`` is a single string.
        ValueError
            If there are no seeds, the table or ``kind`` is invalid, the domain
            is unknown, or ``trust`` fails the ``atol`` check.
        """
        if isinstance(seeds, str):
            raise TypeError("seeds must be a sequence of account ids, not a single string")
        edges.validate()
        kind_all = np.asarray(kind)
        if kind_all.shape != (edges.n_edges,):
            raise ValueError(
                f"kind must have one code per edge row ({edges.n_edges}), got shape "
                f"{kind_all.shape}"
            )
        ids = list(edges.accounts)
        index = {a: i for i, a in enumerate(ids)}
        seed_list: list[int] = []
        for a in dict.fromkeys(seeds):
            if a not in index:
                index[a] = len(ids)
                ids.append(a)
            seed_list.append(index[a])
        if not seed_list:
            raise ValueError("at least one seed account is needed")
        seed_idx = np.asarray(seed_list, dtype=np.intp)
        if domain == GLOBAL_DOMAIN:
            src, dst, weight, k = edges.src, edges.dst, edges.weight, kind_all
        else:
            rows = np.flatnonzero(edges.domain == edges.domain_index(domain))
            src, dst, weight = edges.src[rows], edges.dst[rows], edges.weight[rows]
            k = kind_all[rows]
        # The compaction of scoring.model._score_graph, so indices and trust match it.
        present, local = compact_index(len(ids), src, dst, seed_idx)
        names = [ids[i] for i in present.tolist()]
        lsrc, ldst, lseeds = local[src], local[dst], local[seed_idx]
        if trust is None:
            x = (
                TrustMatrix.from_edges(present.size, lsrc, ldst, weight)
                .propagate(lseeds, alpha=alpha, tol=tol, max_iter=max_iter)
                .trust
            )
        else:
            x = np.array([float(trust.get(a, 0.0)) for a in names], dtype=np.float64)
        return cls.from_arrays(
            present.size,
            lsrc,
            ldst,
            weight,
            k,
            x,
            lseeds,
            alpha=alpha,
            accounts=names,
            domain=domain,
            kind_names=kind_names,
            source_scale=source_scale,
            atol=atol,
        )

    @classmethod
    def _group(
        cls,
        n: int,
        src: np.ndarray,
        dst: np.ndarray,
        kind: np.ndarray,
        amount: np.ndarray,
        x: np.ndarray,
        seed_in: np.ndarray,
        is_seed: np.ndarray,
        *,
        accounts: Sequence[str] | None,
        domain: str,
        kind_names: tuple[str, ...],
        source_scale: float,
        atol: float | None,
        only: int | None,
    ) -> Inflows:
        """Group per-edge amounts by (account, source, kind).

        One ``scipy.sparse`` COO -> CSR conversion with rows = receiving
        account and columns = ``source * K + kind`` does the grouping: a
        counting sort by account, then each account's columns sorted and
        duplicate (account, source, kind) entries summed, all in C. ``only``
        marks a table holding one account's edges (checked alone).
        """
        if not source_scale > 0:
            raise ValueError(f"source_scale must be > 0, got {source_scale}")
        n_kinds = max(len(kind_names), 1)
        col = src.astype(np.int64) * n_kinds + kind
        grouped = sparse.csr_array((amount, (dst, col)), shape=(n, n * n_kinds))
        grouped.sum_duplicates()
        row_ptr = np.asarray(grouped.indptr, dtype=np.int64)
        row_col = np.asarray(grouped.indices)
        row_amount = np.asarray(grouped.data, dtype=np.float64)
        small = np.int32 if n < 2**31 else np.int64
        row_kind = (row_col % n_kinds).astype(np.int8 if n_kinds <= 127 else np.int64)
        row_src = (row_col // n_kinds).astype(small)
        del row_col, grouped, col
        n_rows = row_src.shape[0]
        new_pair = np.ones(n_rows, dtype=bool)
        if n_rows:
            np.not_equal(row_src[1:], row_src[:-1], out=new_pair[1:])
            new_pair[row_ptr[:-1][row_ptr[1:] > row_ptr[:-1]]] = True  # an account starts
        pair_first = np.flatnonzero(new_pair)
        n_pairs = pair_first.shape[0]
        pair_ptr = np.empty(n_pairs + 1, dtype=np.int64)
        pair_ptr[:n_pairs] = pair_first
        pair_ptr[n_pairs] = n_rows
        account_ptr = np.searchsorted(pair_first, row_ptr).astype(np.int64)
        if n_rows:
            pair_amount = np.add.reduceat(row_amount, pair_first)
            nonempty = row_ptr[:-1] < row_ptr[1:]
            edge_in = np.zeros(n, dtype=np.float64)
            edge_in[nonempty] = np.add.reduceat(row_amount, row_ptr[:-1][nonempty])
        else:
            pair_amount = np.zeros(0, dtype=np.float64)
            edge_in = np.zeros(n, dtype=np.float64)
        inflow = seed_in + edge_in
        if atol is not None:
            gap = float(np.abs(inflow - x).sum() if only is None else abs(inflow[only] - x[only]))
            if not gap <= atol:
                raise ValueError(
                    f"trust is not the fixed point of these edges and seeds: the inflows it "
                    f"implies differ from it by {gap:.3e} (L1) > atol={atol:g}; was it "
                    f"propagated on the same edges, seeds and alpha, and converged?"
                )
        return cls(
            accounts=accounts,
            domain=domain,
            kind_names=kind_names,
            trust=x,
            inflow=inflow,
            seed_inflow=seed_in,
            is_seed=is_seed,
            account_ptr=account_ptr,
            pair_src=row_src[pair_first],
            pair_amount=pair_amount,
            pair_ptr=pair_ptr,
            row_kind=row_kind,
            row_amount=row_amount,
            complete=only is None,
            source_scale=source_scale,
        )

    # ----------------------------------------------------------------- basics

    @property
    def n(self) -> int:
        """Number of accounts."""
        return int(self.trust.shape[0])

    def name(self, i: int) -> str:
        """Account id of index ``i``."""
        return str(i) if self.accounts is None else self.accounts[i]

    @cached_property
    def _index(self) -> dict[str, int]:
        if self.accounts is None:
            return {str(i): i for i in range(self.n)}
        return {a: i for i, a in enumerate(self.accounts)}

    def index(self, account: str | int) -> int:
        """Index of an account given by id (an int is checked and passed through)."""
        if isinstance(account, int | np.integer):
            i = int(account)
            if not 0 <= i < self.n:
                raise IndexError(f"account index {i} outside [0, {self.n})")
            return i
        try:
            return self._index[account]
        except KeyError:
            raise KeyError(f"unknown account {account!r} in domain {self.domain!r}") from None

    @cached_property
    def _counts(self) -> np.ndarray:
        return np.diff(self.account_ptr)

    @cached_property
    def _segments(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Accounts with at least one pair, their first pair and their number of pairs."""
        has = np.flatnonzero(self._counts > 0)
        return has, self.account_ptr[:-1][has], self._counts[has]

    @cached_property
    def _pair_dst(self) -> np.ndarray:
        idx = np.int32 if self.n < 2**31 else np.int64
        return np.repeat(np.arange(self.n, dtype=idx), self._counts)

    @cached_property
    def _edge_inflow(self) -> np.ndarray:
        return self._per_account(self.pair_amount)

    def _per_account(self, pair_values: np.ndarray) -> np.ndarray:
        """Sum of a per-pair array over each account's pairs."""
        has, starts, _ = self._segments
        out = np.zeros(self.n, dtype=np.float64)
        if has.size:
            out[has] = np.add.reduceat(pair_values, starts)
        return out

    def _rank_of(self, idx: np.ndarray) -> np.ndarray:
        """Ranks of these accounts among themselves in account-id order (for exact ties)."""
        if self.accounts is None:
            return np.asarray(idx, dtype=np.int64)
        accounts = self.accounts
        ids = np.asarray([accounts[j] for j in idx.tolist()], dtype=str)
        return np.unique(ids, return_inverse=True)[1].reshape(-1)

    # ----------------------------------------------------------------- all accounts at once

    def seed_share(self) -> np.ndarray:
        """Share of each account's trust that is seed allocation (0 without inflow)."""
        return _safe_div(self.seed_inflow, self.inflow)

    def n_sources(self) -> np.ndarray:
        """Number of accounts passing each account a positive amount of trust."""
        return np.bincount(self._pair_dst[self.pair_amount > 0], minlength=self.n)

    def effective_sources(self) -> np.ndarray:
        """``(sum_j a_j)**2 / sum_j a_j**2`` over each account's source inflows ``a_j``.

        The inverse Herfindahl index of the source shares: 1 for one source,
        ``k`` for ``k`` equal ones, 0 without sources. A source counts by what
        it passes on, which already folds in its own trust, so many sources
        that hold little trust count for little.
        """
        return _safe_div(self._edge_inflow**2, self._per_account(self.pair_amount**2))

    def kind_shares(self) -> np.ndarray:
        """Shares of each account's trust by evidence kind, shape ``(n, len(kind_names))``."""
        n_kinds = len(self.kind_names)
        row_dst = np.repeat(self._pair_dst, np.diff(self.pair_ptr)).astype(np.int64)
        by_kind = np.bincount(
            row_dst * n_kinds + self.row_kind, weights=self.row_amount, minlength=self.n * n_kinds
        )
        return _safe_div(by_kind.reshape(self.n, n_kinds), self.inflow[:, None])

    def top_sources(self, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` largest sources of every account.

        Returns
        -------
        index : numpy.ndarray of int64, shape (n, k)
            Source account indices, largest share first, ties by account id;
            ``-1`` pads accounts with fewer than ``k`` sources.
        share : numpy.ndarray of float64, shape (n, k)
            Their shares of the account's trust (0 where padded).

        Notes
        -----
        ``k`` passes of a segmented maximum over the pairs: O(k * pairs), no
        sort (0.4 s for ``k = 5`` and 10M pairs); account ids are only
        compared for exact ties.
        """
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        index = np.full((self.n, k), -1, dtype=np.int64)
        share = np.zeros((self.n, k), dtype=np.float64)
        has, starts, counts = self._segments
        if k == 0 or has.size == 0:
            return index, share
        work = self.pair_amount.copy()
        for col in range(k):
            at, acc = _segment_argmax(
                work, starts, counts, self._pair_dst, self.pair_src, self._rank_of
            )
            if at.shape[0] == 0:
                break
            index[acc, col] = self.pair_src[at]
            share[acc, col] = work[at] / self.inflow[acc]
            work[at] = -1.0
        return index, share

    @cached_property
    def _bottleneck(self) -> tuple[np.ndarray, np.ndarray, int]:
        return self._bottlenecks()

    def _bottlenecks(
        self, max_rounds: int = BOTTLENECK_MAX_ROUNDS, tol: float = BOTTLENECK_TOL
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """Each account's main upstream bottleneck ``b``, the share ``F`` through it, rounds.

        With ``s_ij`` the share of account i's *edge* inflow that comes from j,

            phi_i(c) = sum_j s_ij ([j == c] + [b_j == c] F_j)  /  (1 - rho_i),
            rho_i    = sum_j s_ij [b_j == i] F_j ,

        is the fraction of i's edge inflow that passes through the non-seed
        account ``c``: directly, or by way of its sources' own bottlenecks;
        inflow that went round through i itself (``rho_i``) is taken to be
        composed like the rest. Each round evaluates three candidates per
        account: its top non-seed source, that source's bottleneck, and the
        bottleneck of the source with the largest ``s_ij F_j``; it keeps the
        best, ``f_i = min(1, phi_i(b_i))`` and ``F_i = (1 - seed_share_i) f_i``
        (a share of i's whole trust). Each round follows chains one hop
        further upstream; rounds stop when no ``F`` moves by more than ``tol``.
        Seeds are never bottlenecks: all trust starts at them by design.
        """
        n = self.n
        idx = np.int32 if n < 2**31 else np.int64
        b: np.ndarray = np.full(n, -1, dtype=idx)
        big_f = np.zeros(n, dtype=np.float64)
        has, starts, counts = self._segments
        if has.size == 0:
            return b, big_f, 0
        own = np.arange(n, dtype=idx)
        pair_src = self.pair_src
        pd = self._pair_dst
        share = _safe_div(self.pair_amount, self._edge_inflow[pd])
        direct = share * ~self.is_seed[pair_src]
        sigma = self.seed_share()
        # Round 1 in closed form: no source has a bottleneck yet, so phi is the
        # direct share and the best candidate is the top non-seed source.
        at, acc = _segment_argmax(direct, starts, counts, pd, pair_src, self._rank_of)
        cand_a: np.ndarray = np.full(n, -1, dtype=idx)
        cand_a[acc] = pair_src[at]
        direct_a = np.zeros(n, dtype=np.float64)
        direct_a[acc] = direct[at]
        b = cand_a.copy()
        big_f = (1.0 - sigma) * np.minimum(direct_a, 1.0)
        rounds = 1
        while rounds < max_rounds:
            rounds += 1
            bs = b[pair_src]
            t = share * big_f[pair_src]
            rho = self._per_account(t * (bs == pd))  # inflow that went round through i
            cand_b = np.where(cand_a >= 0, b[cand_a], -1)  # b[-1] is harmless here
            at, acc = _segment_argmax(t, starts, counts, pd, bs, self._rank_of)
            cand_c: np.ndarray = np.full(n, -1, dtype=idx)
            cand_c[acc] = bs[at]
            best_phi = np.zeros(n, dtype=np.float64)
            best_b: np.ndarray = np.full(n, -1, dtype=idx)
            for cand, known_direct in ((cand_a, direct_a), (cand_b, None), (cand_c, None)):
                cand[cand == own] = -1  # never one's own bottleneck
                valid = cand >= 0
                rep = cand[pd]
                phi = self._per_account(t * (bs == rep))
                if known_direct is None:
                    direct_c = self._per_account(direct * (pair_src == rep))
                else:
                    direct_c = known_direct
                phi += direct_c
                # The candidate's own inflow passes through it whatever its history, so
                # it is not feedback: take it out of rho for this candidate.
                c = np.where(valid, cand, 0)
                keep = 1.0 - rho + direct_c * big_f[c] * (b[c] == own)
                phi = np.where(keep > 1e-12, _safe_div(phi, keep), 1.0 * (phi > 0))
                phi *= valid
                better = phi > best_phi
                best_phi[better] = phi[better]
                best_b[better] = cand[better]
            new_f = (1.0 - sigma) * np.minimum(best_phi, 1.0)
            moved = float(np.max(np.abs(new_f - big_f)))
            b, big_f = best_b, new_f
            if moved <= tol:
                break
        return b, big_f, rounds

    def bottleneck(self) -> tuple[np.ndarray, np.ndarray]:
        """Each account's main non-seed bottleneck (``-1`` if none) and its share of the trust.

        See docs/explanations.md; an approximation that follows each source's
        single main bottleneck upstream.
        """
        self._require_complete()
        b, big_f, _ = self._bottleneck
        return b.copy(), big_f.copy()

    @cached_property
    def _independent(self) -> np.ndarray:
        _, big_f, _ = self._bottleneck
        f = _safe_div(big_f, 1.0 - self.seed_share())  # share of the edge inflow
        inverse = np.full(self.n, np.inf)
        np.divide(1.0, f, out=inverse, where=f > 0)
        return np.minimum(self.effective_sources(), inverse)

    def independent_sources(self) -> np.ndarray:
        """``min(effective_sources, 1 / f)``, ``f`` the bottleneck's share of the edge inflow.

        Equal to :meth:`effective_sources` unless several sources share an
        upstream bottleneck: ten sybils fed by one account count as one.
        """
        self._require_complete()
        return self._independent.copy()

    def mass(self) -> np.ndarray:
        """``min(1, score / 50)``: 1 from the average share ``1/n`` up, falling to 0 at 1e-4/n.

        That is ``clip(1 + log10(n * trust) / 4, 0, 1)`` with the model's
        score scale (:func:`scoring.model.trust_to_score`).
        """
        return np.minimum(trust_to_score(self.trust, self.n), 50.0) / 50.0

    def breadth(self) -> np.ndarray:
        """``σ + (1 - σ) (1 - exp(-independent_sources / κ))``; 0 without inflow.

        ``σ`` is the seed share: seed allocation is configured trust, as sure
        as the configuration, so only the earned part is judged by its spread.
        """
        self._require_complete()
        sigma = self.seed_share()
        return sigma + (1.0 - sigma) * -np.expm1(-self._independent / self.source_scale)

    @cached_property
    def _confidence(self) -> np.ndarray:
        return self.mass() * self.breadth()

    def confidence(self) -> np.ndarray:
        """Confidence in each account's trust, in ``[0, 1]``: ``mass * breadth``.

        High when the trust is carried by several independent, trusted
        sources (:meth:`breadth`) and is not negligible next to the average
        share (:meth:`mass`). 0 exactly when nothing flows into the account.
        Monotone in the number of equal independent sources; sources holding
        little trust count little (shares are by contribution); sources
        behind one common upstream account count as one.
        """
        self._require_complete()
        return self._confidence.copy()

    def _require_complete(self) -> None:
        if not self.complete:
            raise ValueError(
                "this table holds one account's inflows only (explain_account); build it with "
                "Inflows.from_arrays or Inflows.from_table for bottlenecks and confidence"
            )

    # ----------------------------------------------------------------- one account

    def explain(self, account: str | int, k: int = 5) -> Explanation:
        """Explain one account: its top ``k`` sources, kinds, seed share and confidence.

        O(sources of the account); the first call on a complete table also
        computes the confidence of all accounts (cached).
        """
        i = self.index(account)
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        y = float(self.inflow[i])
        lo, hi = int(self.account_ptr[i]), int(self.account_ptr[i + 1])
        amounts = self.pair_amount[lo:hi]
        if hi - lo > 64:  # a hub: threshold with numpy, then sort the few candidates
            positive = np.flatnonzero(amounts > 0)
            n_pos = int(positive.size)
            if n_pos > k:
                kth = np.partition(amounts[positive], n_pos - k)[n_pos - k] if k else np.inf
                positive = positive[amounts[positive] >= kth]
            candidates = positive.tolist()
            amt = dict(zip(candidates, amounts[positive].tolist(), strict=True))
            who = dict(zip(candidates, self.pair_src[lo + positive].tolist(), strict=True))
            sq = float(np.dot(amounts, amounts))
        else:
            values = amounts.tolist()
            candidates = [q for q, a in enumerate(values) if a > 0]
            n_pos = len(candidates)
            amt = {q: values[q] for q in candidates}
            src_l = self.pair_src[lo:hi].tolist()
            who = {q: src_l[q] for q in candidates}
            sq = sum(a * a for a in values)
        name = self.name
        chosen = sorted(candidates, key=lambda q: (-amt[q], name(who[q])))
        names = self.kind_names
        r0, r1 = int(self.pair_ptr[lo]), int(self.pair_ptr[hi])
        if r1 - r0 <= 256:
            kind_l = self.row_kind[r0:r1].tolist()
            amount_l = self.row_amount[r0:r1].tolist()
            all_kinds = _kind_shares(kind_l, amount_l, y, names)
        else:
            by_kind = np.bincount(
                self.row_kind[r0:r1], weights=self.row_amount[r0:r1], minlength=len(names)
            )
            all_kinds = _kind_shares(list(range(len(names))), by_kind.tolist(), y, names)
        sources = []
        for q in chosen[:k]:
            p0, p1 = int(self.pair_ptr[lo + q]), int(self.pair_ptr[lo + q + 1])
            if r1 - r0 <= 256:
                kinds = _kind_shares(
                    kind_l[p0 - r0 : p1 - r0], amount_l[p0 - r0 : p1 - r0], y, names
                )
            else:
                kinds = _kind_shares(
                    self.row_kind[p0:p1].tolist(), self.row_amount[p0:p1].tolist(), y, names
                )
            sources.append(Source(account=name(who[q]), share=amt[q] / y, kinds=kinds))
        edge_in = float(amounts.sum())
        independent: float | None = None
        bottleneck: tuple[str, float] | None = None
        confidence: float | None = None
        if self.complete:
            b, big_f, _ = self._bottleneck
            if b[i] >= 0 and big_f[i] > 0:
                bottleneck = (self.name(int(b[i])), float(big_f[i]))
            independent = float(self._independent[i])
            confidence = float(self._confidence[i])
        return Explanation(
            account=self.name(i),
            domain=self.domain,
            trust=float(self.trust[i]),
            seed_share=float(self.seed_inflow[i]) / y if y > 0 else 0.0,
            sources=tuple(sources),
            kinds=all_kinds,
            n_sources=n_pos,
            effective_sources=edge_in * edge_in / sq if sq > 0 else 0.0,
            independent_sources=independent,
            bottleneck=bottleneck,
            confidence=confidence,
        )

    def explanations(self, k: int = 5) -> Iterator[Explanation]:
        """:meth:`explain` for every account, in index order (about 20-40 µs each)."""
        for i in range(self.n):
            yield self.explain(i, k)


def _kind_shares(
    kind: list[int], amount: list[float], total: float, names: tuple[str, ...]
) -> KindShares:
    """``(name, amount / total)`` per kind with a positive amount, largest first."""
    if total <= 0:
        return ()
    if len(kind) == 1:
        return ((names[kind[0]], amount[0] / total),) if amount[0] > 0 else ()
    sums: dict[int, float] = {}
    for c, a in zip(kind, amount, strict=True):
        sums[c] = sums.get(c, 0.0) + a
    items = [(names[c], a / total) for c, a in sums.items() if a > 0]
    items.sort(key=lambda kv: (-kv[1], kv[0]))
    return tuple(items)


# --------------------------------------------------------------------------- one account alone


def explain_account(
    account: int,
    n: int,
    src: npt.ArrayLike,
    dst: npt.ArrayLike,
    weight: npt.ArrayLike,
    kind: npt.ArrayLike,
    trust: npt.ArrayLike,
    seeds: Sequence[int] | npt.ArrayLike,
    *,
    seed_weights: Sequence[float] | npt.ArrayLike | None = None,
    alpha: float = 0.15,
    accounts: Sequence[str] | None = None,
    domain: str = GLOBAL_DOMAIN,
    kind_names: Sequence[str] = KINDS,
    k: int = 5,
    atol: float | None = DEFAULT_ATOL,
) -> Explanation:
    """Explain one account without grouping every account's inflows.

    A few vectorised passes over the edges (validation, out-strengths, the
    edges into ``account``), then work proportional to the account's
    in-edges. Equal to ``Inflows.from_arrays(...).explain(account, k)``
    except that ``independent_sources``, ``bottleneck`` and ``confidence``,
    which need every account, are ``None``. ``atol`` checks this account's
    inflow against its trust only.
    """
    names = tuple(kind_names)
    s, d, w, kd = _check_edges(n, src, dst, weight, kind, len(names))
    x = _check_trust(n, trust)
    if not 0 <= account < n:
        raise IndexError(f"account index {account} outside [0, {n})")
    if accounts is not None and len(accounts) != n:
        raise ValueError(f"accounts must have {n} names, got {len(accounts)}")
    out = np.bincount(s, weights=w, minlength=n)
    seed_in, is_seed = _seed_inflow(n, out, x, seeds, seed_weights, alpha)
    into = np.flatnonzero(d == account)
    s_in = s[into]
    amount = ((1.0 - alpha) * w[into]) * (x[s_in] / out[s_in])
    table = Inflows._group(
        n,
        s_in,
        d[into],
        kd[into],
        amount,
        x,
        seed_in,
        is_seed,
        accounts=accounts,
        domain=domain,
        kind_names=names,
        source_scale=DEFAULT_SOURCE_SCALE,
        atol=atol,
        only=account,
    )
    return table.explain(account, k)


# --------------------------------------------------------------------------- rendering

KIND_LABELS: Mapping[str, str] = {
    "vote_account": "account votes",
    "vote_content": "content votes",
    "vote_label": "label votes",
    "endorse": "endorsements",
    "review": "accepted reviews",
    "attest": "attestations",
    "derived": "derived works",
    "agree": "agreement with other labelers",
}
"""Plural, plain-language names of the evidence kinds, for :func:`render`."""


def _label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind.replace("_", " "))


def _pct(share: float) -> str:
    if 0 < share < 0.005:
        return "<1%"
    if 0.995 <= share < 1:
        return ">99%"
    return f"{100 * share:.0f}%"


def _source_text(source: Source) -> str:
    if not source.kinds:  # stored explanations keep each source's share, not its kinds
        return f"{source.account} {_pct(source.share)}"
    if len(source.kinds) == 1:
        detail = _label(source.kinds[0][0])
    else:
        detail = ", ".join(f"{_label(kd)} {_pct(v)}" for kd, v in source.kinds)
    return f"{source.account} {_pct(source.share)} ({detail})"


def render(expl: Explanation) -> str:
    """The explanation in plain language, with advice derived from the data.

    Example (from docs/explanations.md)::

        62% of alice.near's trust comes from 3 accounts: bob.near 40%
        (endorsements), carol.near 15% (accepted reviews), dan.near 7% (content
        votes); 38% is its seed allocation (pre-trusted). ...
    """
    who = expl.account
    where = "" if expl.domain == GLOBAL_DOMAIN else f" in {expl.domain}"
    if expl.n_sources == 0 and expl.seed_share == 0:
        return (
            f"{who} has no trust{where}: no account that holds trust vouches for it. "
            f"To gain trust: earn endorsements or accepted reviews from accounts that are "
            f"themselves trusted; support from accounts without trust passes on nothing."
        )
    parts: list[str] = []
    if expl.n_sources:
        plural = "account" if expl.n_sources == 1 else "accounts"
        sentence = (
            f"{_pct(expl.source_share)} of {who}'s trust{where} comes from "
            f"{expl.n_sources} {plural}"
        )
        listed = [_source_text(s) for s in expl.sources]
        rest = expl.n_sources - len(expl.sources)
        if rest > 0:
            rest_share = max(expl.source_share - sum(s.share for s in expl.sources), 0.0)
            listed.append(f"and {_pct(rest_share)} from {rest} more")
        if listed:
            sentence += ": " + ", ".join(listed)
        if expl.seed_share > 0:
            sentence += f"; {_pct(expl.seed_share)} is its seed allocation (pre-trusted)"
        parts.append(sentence + ".")
        if len(expl.kinds) > 1:
            parts.append(
                "By kind: " + ", ".join(f"{_label(kd)} {_pct(v)}" for kd, v in expl.kinds) + "."
            )
    else:
        parts.append(
            f"All of {who}'s trust{where} is its seed allocation (pre-trusted); "
            f"no other account passes it trust."
        )
    if expl.confidence is not None:
        level = "low" if expl.confidence < 0.4 else "moderate" if expl.confidence < 0.7 else "high"
        detail = ""
        if expl.independent_sources is not None and expl.n_sources:
            detail = f"; about {expl.independent_sources:.1f} independent sources"
        parts.append(f"Confidence {expl.confidence:.2f} ({level}{detail}).")
    parts.extend(_advice(expl))
    return " ".join(parts)


def _advice(expl: Explanation) -> list[str]:
    """Actionable sentences: fragility, hidden common upstream, one-kind trust, what to earn."""
    out: list[str] = []
    earned = expl.source_share
    if expl.sources and earned > 0:
        top = expl.sources[0]
        upstream = expl.bottleneck
        if upstream is not None and upstream[0] != top.account and upstream[1] >= 0.5 * earned:
            out.append(
                f"Fragile: {_pct(upstream[1])} of it passes through {upstream[0]} upstream, "
                f"so its {expl.n_sources} sources are not independent; it rests on that "
                f"one account."
            )
        elif (
            upstream is not None
            and upstream[0] == top.account
            and upstream[1] >= 0.5 * earned
            and upstream[1] - top.share >= 0.01 * earned
        ):
            out.append(
                f"Fragile: {_pct(upstream[1])} of it depends on {top.account} ({_pct(top.share)} "
                f"directly, the rest by way of accounts whose trust came through it); if "
                f"{top.account} withdrew its support, about that much would go."
            )
        elif top.share >= 0.5 * earned:
            out.append(
                f"Fragile: {top.account} alone provides {_pct(top.share)}; if it withdrew its "
                f"support, about that much of the trust would go."
            )
        if expl.kinds and expl.kinds[0][1] >= 0.8 * earned:
            out.append(
                f"Nearly all of it comes from {_label(expl.kinds[0][0])}; other kinds of "
                f"evidence would diversify it."
            )
    if expl.seed_share >= 0.5:
        out.append(
            "Most of it is configured seed trust, not earned; it lasts as long as the account "
            "stays a seed."
        )
    have = {kd for kd, _ in expl.kinds}
    missing = [kd for kd in ("endorse", "review") if kd not in have]
    want = " or ".join(_label(kd) for kd in missing) if missing else "more endorsements"
    out.append(
        f"To raise it: earn {want} from more accounts that are themselves trusted; "
        f"support from accounts with little trust adds little."
    )
    return out
