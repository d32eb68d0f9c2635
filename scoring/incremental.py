"""Incremental epochs: keep the trust matrix between epochs and only add what is new.

Why: an epoch that rebuilds the normalised matrix from all edges spends most of its
time on that rebuild (a COO -> CSR conversion of every edge, 0.4-0.8 s at 10M edges) even
when only 1% of the edges are new, and a warm start saves only a few iterations
(docs/performance.md, "Warm epoch"). Normalisation is what forces the rebuild: a new
edge from account ``j`` changes ``j``'s out-strength ``o_j`` and so every entry of
column ``j`` of ``M``. Keeping the matrix *unnormalised* removes that coupling:

.. math::

    M x = W (x / o),

with ``W[i, j]`` the summed weight of the edges ``j -> i`` and ``x / o`` taken as 0
where ``o = 0`` (dangling accounts, whose trust goes back to the seeds anyway). A new
edge then changes one entry of ``W`` and one of ``o``, and nothing of the size of the
graph is rewritten:

* new edges go into a small *delta* matrix ``D`` (summed per pair, kept sorted by
  pair), and the iteration multiplies by ``W + D`` (the second product costs its
  nonzeros, about 1% of the first);
* when ``D`` passes ``merge_fraction`` of ``W`` (5% by default), it is merged into
  ``W`` in one linear pass (pairs already in ``W`` add in place, the others go in with
  ``np.insert`` at positions found by binary search; no sort), like the levels of a
  log-structured merge tree.

The result is the same fixed point as :meth:`scoring.propagation.TrustMatrix.propagate`
on a fresh build from all edges (the tests check 1e-12), by the same loop
(:func:`scoring.propagation.power_iteration`) and the same stopping rule.

Edge weights that change after they were added (decay with age, and the
``log2(1 + W)`` repeat curve of :func:`scoring.evidence.signed_edges`, under which a
uniform time shift does not cancel) are not additions. For those,
:meth:`IncrementalTrust.reweight` recomputes every stored weight from a new weight per
edge ever added, through a stored edge -> position map (``track_edges=True``): one
``bincount`` over the edges, still without sorting or rebuilding anything.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy import sparse

from scoring.propagation import (
    BlockProduct,
    PropagationResult,
    TrustMatrix,
    check_edges,
    check_run_options,
    power_iteration,
    product,
    retain_vector,
    seed_distribution,
    start_vector,
    summed_matrix,
)

__all__ = ["DEFAULT_MERGE_FRACTION", "IncrementalTrust"]

#: Merge the delta into the base matrix when it holds this share of the base's
#: nonzeros. The delta's product costs about its share of an iteration (its rows are
#: as random as the base's), and a merge costs about one tenth of a full rebuild, so a
#: few percent keeps both small; 5% is the "few percent" the benchmark assumed.
DEFAULT_MERGE_FRACTION = 0.05

_KEY_SHIFT = np.int64(32)  # pair key = (trusted << 32) | truster: row-major order
_KEY_MASK = np.int64(0xFFFFFFFF)
_MAX_ACCOUNTS = 2**31 - 1  # so that an index fits in the 32 bits of a key


def _csr(
    data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, shape: tuple[int, int]
) -> sparse.csr_array:
    """A CSR array around existing arrays, without scipy's copies or checks.

    The constructor copies an array that is a small view of a larger one and may
    re-check the whole structure; these arrays are already valid and canonical
    (sorted indices, no duplicates), by construction.
    """
    matrix = sparse.csr_array(shape, dtype=np.float64)
    matrix.indptr = indptr
    matrix.indices = indices
    matrix.data = data
    return matrix


def _sums(index: np.ndarray, weight: np.ndarray, minlength: int) -> np.ndarray:
    """``np.bincount`` with weights, always float64 (numpy gives int64 for empty input)."""
    return np.bincount(index, weights=weight, minlength=minlength).astype(np.float64, copy=False)


def _index_dtype(n: int, nnz: int) -> type[np.signedinteger]:
    return np.int32 if max(n, nnz) <= np.iinfo(np.int32).max else np.int64


def _locate(
    indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray, cols: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Where each ``(rows[k], cols[k])`` is, or would be inserted, in a canonical CSR.

    A vectorised binary search within each row (columns are sorted in a canonical CSR):
    ``ceil(log2(longest row)) + 1`` passes over the queries, none over the matrix.

    Returns
    -------
    pos : numpy.ndarray of int64
        The first position in the row whose column is ``>= cols[k]``.
    found : numpy.ndarray of bool
        Whether that position holds ``cols[k]``.
    """
    lo = indptr[rows].astype(np.int64)
    end = indptr[rows + 1].astype(np.int64)
    hi = end.copy()
    active = np.flatnonzero(lo < hi)
    while active.size:
        mid = (lo[active] + hi[active]) >> 1
        right = indices[mid] < cols[active]
        lo[active[right]] = mid[right] + 1
        hi[active[~right]] = mid[~right]
        active = active[lo[active] < hi[active]]
    found = lo < end
    if found.any():
        found[found] = indices[lo[found]] == cols[found]
    return lo, found


def _tracked_matrix(
    n: int, src: np.ndarray, dst: np.ndarray, weight: np.ndarray
) -> tuple[sparse.csr_array, np.ndarray]:
    """``W`` as :func:`~scoring.propagation.summed_matrix` builds it, plus each edge's position.

    Built from the sorted distinct pair keys (``np.unique``), whose order is the
    canonical CSR order, so the position of every edge comes with the sort (-1 for a
    self loop). A sort of the edges costs about twice scipy's conversion; looking each
    edge up in a matrix built the usual way costs more (a binary search per edge in
    rows of up to 10^5 entries).
    """
    keep = np.flatnonzero(src != dst)
    keys = (dst[keep].astype(np.int64) << _KEY_SHIFT) | src[keep].astype(np.int64)
    pairs, inverse = np.unique(keys, return_inverse=True)
    dtype = _index_dtype(n, pairs.size)
    indptr = np.zeros(n + 1, dtype=dtype)
    np.cumsum(np.bincount(pairs >> _KEY_SHIFT, minlength=n), out=indptr[1:])
    matrix = _csr(
        _sums(inverse, weight[keep], pairs.size),
        (pairs & _KEY_MASK).astype(dtype),
        indptr,
        (n, n),
    )
    slots = np.full(src.shape[0], -1, dtype=np.int64)
    slots[keep] = inverse
    return matrix, slots


class IncrementalTrust:
    """The trust graph as an unnormalised matrix plus a delta, updated edge batch by batch.

    Holds ``W`` (CSR, trusted x truster, summed weights, self loops dropped), the
    out-strengths ``o``, a small delta of the edges added since the last merge (summed
    per pair), and the number of accounts, which may grow. :meth:`propagate` has the
    semantics and the fixed point of :meth:`scoring.propagation.TrustMatrix.propagate` on
    a fresh
    ``TrustMatrix.from_edges`` of every edge added so far (see the module docstring for
    why this is cheaper between epochs).

    Parameters
    ----------
    n : int
        Number of accounts; indices must lie in ``[0, n)``, and ``n < 2**31``.
    src, dst : array_like of int, shape (m,)
        Truster and trusted account index of each edge.
    weight : array_like of float, shape (m,)
        Edge weights, finite and strictly positive. Parallel edges add up; self loops
        are dropped, as in ``TrustMatrix.from_edges``.
    merge_fraction : float, default :data:`DEFAULT_MERGE_FRACTION`
        Merge the delta into ``W`` when it has more than this share of ``W``'s
        nonzeros (``0`` merges after every batch).
    track_edges : bool, default False
        Keep the position of every edge ever added (8 bytes per edge), so that
        :meth:`reweight` can recompute all weights. Off, only additions are possible.
        On, the first build sorts the edges (about twice the time of a plain one).

    Raises
    ------
    ValueError
        On bad edges (as ``TrustMatrix.from_edges``), ``n >= 2**31`` or a negative
        ``merge_fraction``.

    Notes
    -----
    Not thread-safe for concurrent updates: one owner adds edges and propagates (the
    propagation's own threads only read).

    Examples
    --------
    >>> import numpy as np
    >>> inc = IncrementalTrust(3, [0, 1], [1, 2], [1.0, 1.0])
    >>> before = inc.propagate([0]).trust
    >>> inc.add_edges([2, 3], [3, 0], [1.0, 1.0], n=4)   # account 3 joins
    >>> fresh = TrustMatrix.from_edges(4, [0, 1, 2, 3], [1, 2, 3, 0], [1.0] * 4)
    >>> warm = inc.propagate([0], x0=np.append(before, 0.0)).trust
    >>> bool(np.abs(warm - fresh.propagate([0]).trust).max() < 1e-9)
    True
    """

    def __init__(
        self,
        n: int,
        src: npt.ArrayLike,
        dst: npt.ArrayLike,
        weight: npt.ArrayLike,
        *,
        merge_fraction: float = DEFAULT_MERGE_FRACTION,
        track_edges: bool = False,
    ) -> None:
        if n > _MAX_ACCOUNTS:
            raise ValueError(f"IncrementalTrust supports fewer than 2**31 accounts, got {n}")
        if not merge_fraction >= 0:
            raise ValueError(f"merge_fraction must be >= 0, got {merge_fraction}")
        src_a, dst_a, w_a = check_edges(n, src, dst, weight)
        self._n = n
        self.merge_fraction = float(merge_fraction)
        self._track = track_edges
        self._slots = np.empty(0, dtype=np.int64)
        self._n_edges = 0
        if track_edges:
            self._base, slots = _tracked_matrix(n, src_a, dst_a, w_a)
            self._append_slots(slots)
        else:
            base = summed_matrix(n, src_a, dst_a, w_a)
            dtype = _index_dtype(n, base.nnz)
            self._base = _csr(
                base.data,
                base.indices.astype(dtype, copy=False),
                base.indptr.astype(dtype, copy=False),
                (n, n),
            )
        self._out = _sums(self._base.indices, self._base.data, n)
        self._clear_delta()
        self._invalidate()

    # ----------------------------------------------------------------- state

    @property
    def n(self) -> int:
        """Number of accounts (matrix dimension)."""
        return self._n

    @property
    def nnz(self) -> int:
        """Entries stored in ``W`` and the delta (a pair in both counts twice until a merge)."""
        return int(self._base.nnz) + int(self._dkey.size)

    @property
    def delta_nnz(self) -> int:
        """Pairs in the delta, not yet merged into ``W``."""
        return int(self._dkey.size)

    @property
    def n_edges(self) -> int:
        """Edges added so far, self loops included (tracked with ``track_edges`` only)."""
        return self._n_edges

    @property
    def out_strength(self) -> np.ndarray:
        """``o``: each account's summed outgoing weight (read-only view)."""
        view = self._out.view()
        view.flags.writeable = False
        return view

    @property
    def dangling(self) -> np.ndarray:
        """Indices of accounts with no outgoing trust (``o = 0``)."""
        return self._scale_and_dangling()[1]

    def _clear_delta(self) -> None:
        self._dkey = np.empty(0, dtype=np.int64)  # pair keys, in order of arrival
        self._dw = np.empty(0, dtype=np.float64)  # their summed weights
        self._dsorted = np.empty(0, dtype=np.int64)  # the keys, sorted
        self._dorder = np.empty(0, dtype=np.intp)  # pair id of each sorted key

    def _invalidate(self) -> None:
        self._delta: tuple[np.ndarray, sparse.csr_array] | None = None
        self._scale: np.ndarray | None = None
        self._dangling: np.ndarray | None = None
        self._product: tuple[int | None, BlockProduct] | None = None

    def _append_slots(self, slots: np.ndarray) -> None:
        # A growing buffer (doubling), so that batch after batch costs O(batch).
        need = self._n_edges + slots.size
        if need > self._slots.size:
            grown = np.empty(max(need, 2 * self._slots.size), dtype=np.int64)
            grown[: self._n_edges] = self._slots[: self._n_edges]
            self._slots = grown
        self._slots[self._n_edges : need] = slots
        self._n_edges = need

    # ----------------------------------------------------------------- updates

    def grow(self, n: int) -> None:
        """Add accounts ``[self.n, n)`` with no edges (yet); O(n), nothing else moves.

        Raises
        ------
        ValueError
            If ``n`` is smaller than the current count or ``>= 2**31``.
        """
        if n < self._n:
            raise ValueError(f"the account count cannot shrink ({self._n} -> {n})")
        if n > _MAX_ACCOUNTS:
            raise ValueError(f"IncrementalTrust supports fewer than 2**31 accounts, got {n}")
        if n == self._n:
            return
        base = self._base
        tail = np.full(n - self._n, base.indptr[-1], dtype=base.indptr.dtype)
        self._base = _csr(base.data, base.indices, np.concatenate([base.indptr, tail]), (n, n))
        self._out = np.concatenate([self._out, np.zeros(n - self._n)])
        self._n = n
        self._invalidate()

    def add_edges(
        self,
        src: npt.ArrayLike,
        dst: npt.ArrayLike,
        weight: npt.ArrayLike,
        *,
        n: int | None = None,
    ) -> None:
        """Add a batch of edges, as if they had been in the edge arrays from the start.

        Cost: O(batch x log(delta)) to find the batch's pairs among the delta's and keep
        the delta sorted, O(n) for the out-strengths; plus, when the delta passes
        ``merge_fraction`` of ``W``, one O(nnz) merge (:meth:`merge`). Nothing is looked
        up in ``W`` here: a pair that is in ``W`` already gets a delta entry too (the
        product sums both), and the merge folds it in. Why: most new edges are new
        pairs (99% in the benchmark), and finding them absent from ``W`` is a binary
        search per edge in rows of up to 10^5 entries, 2/3 of this method's time at 1M
        accounts, which the merge then does once for all batches since the last one.

        Parameters
        ----------
        src, dst : array_like of int, shape (k,)
            Truster and trusted account index of each new edge.
        weight : array_like of float, shape (k,)
            Their weights, finite and > 0. An edge between a pair that exists already
            adds to its weight, exactly as a parallel edge in ``from_edges`` would.
        n : int, optional
            The new number of accounts, if the batch brings new ones (indices must
            lie in ``[0, n)``). Default: unchanged.

        Raises
        ------
        ValueError
            On bad edges (as ``TrustMatrix.from_edges``) or a shrinking ``n``. Nothing
            is changed then.
        """
        n_new = self._n if n is None else int(n)
        if n_new < self._n:
            raise ValueError(f"the account count cannot shrink ({self._n} -> {n_new})")
        src_a, dst_a, w_a = check_edges(n_new, src, dst, weight)
        self.grow(n_new)
        k = src_a.shape[0]
        if k == 0:
            return
        kept = np.flatnonzero(src_a != dst_a)
        if kept.size == k:
            s, d, w = src_a, dst_a, w_a
        else:
            s, d, w = src_a[kept], dst_a[kept], w_a[kept]
        s = s.astype(np.int64, copy=False)
        d = d.astype(np.int64, copy=False)
        self._out += _sums(s, w, self._n)
        keys = (d << _KEY_SHIFT) | s
        # 1. Pairs already in the delta: add in place.
        at = np.searchsorted(self._dsorted, keys)
        hit = at < self._dsorted.size
        hit[hit] = self._dsorted[at[hit]] == keys[hit]
        pair = np.empty(keys.size, dtype=np.int64)
        if hit.any():
            pair[hit] = self._dorder[at[hit]]
            np.add.at(self._dw, pair[hit], w[hit])
        # 2. New pairs: appended to the delta; its sorted index is merged, not re-sorted.
        miss = np.flatnonzero(~hit)
        if miss.size:
            new_keys, inverse = np.unique(keys[miss], return_inverse=True)
            ids = self._dkey.size + np.arange(new_keys.size)
            self._dkey = np.concatenate([self._dkey, new_keys])
            self._dw = np.concatenate([self._dw, _sums(inverse, w[miss], new_keys.size)])
            pair[miss] = ids[inverse]
            where = np.searchsorted(self._dsorted, new_keys)
            self._dsorted = np.insert(self._dsorted, where, new_keys)
            self._dorder = np.insert(self._dorder, where, ids)
        self._invalidate()  # the delta's CSR holds a copy of its weights
        if self._track:
            slots = np.full(k, -1, dtype=np.int64)
            slots[kept] = self._base.nnz + pair
            self._append_slots(slots)
        if self._dkey.size > self.merge_fraction * self._base.nnz:
            self.merge()

    def merge(self) -> None:
        """Merge the delta into ``W``: one linear pass over ``W``, no sort.

        Each delta pair is looked up in its row of ``W`` (a vectorised binary search):
        a pair found there adds its weight in place, the others are inserted where the
        search ended, so ``np.insert`` moves every entry of ``W`` once. The out-strengths
        are then recomputed from ``W``, which drops the rounding that batch-by-batch
        additions accumulate. Edge positions kept for :meth:`reweight` follow.
        """
        if self._dkey.size == 0:
            return
        base = self._base
        rows = self._dsorted >> _KEY_SHIFT
        cols = self._dsorted & _KEY_MASK
        values = self._dw[self._dorder]  # in key order, like rows and cols
        pos, found = _locate(base.indptr, base.indices, rows, cols)
        new = ~found
        ins = pos[new]
        nnz = base.nnz + ins.size
        dtype = _index_dtype(self._n, nnz)
        data = np.insert(base.data, ins, values[new])  # a new array: W itself is unchanged
        # A found pair's W entry moved up by the insertions at or before it.
        hit = pos[found]
        np.add.at(data, hit + np.searchsorted(ins, hit, side="right"), values[found])
        indices = np.insert(base.indices.astype(dtype, copy=False), ins, cols[new].astype(dtype))
        indptr = base.indptr.astype(dtype, copy=True)
        indptr[1:] += np.cumsum(np.bincount(rows[new], minlength=self._n), dtype=dtype)
        if self._track and self._n_edges:
            slots = self._slots[: self._n_edges]
            in_base = (slots >= 0) & (slots < base.nnz)
            in_delta = slots >= base.nnz
            # Entry s of W moves up by the number of insertions at positions <= s: a
            # running count over W's positions (O(nnz)), then one gather per edge.
            moved = np.cumsum(np.bincount(ins, minlength=base.nnz + 1))
            slots[in_base] += moved[slots[in_base]]
            # Where each delta pair (by key rank) ends: a found one where its W entry
            # moved; the j-th inserted one at ins[j] + j (each earlier insertion
            # shifts it by one).
            target = np.empty(rows.size, dtype=np.int64)
            target[found] = pos[found] + moved[pos[found]]
            target[new] = ins + np.arange(ins.size)
            rank = np.empty(self._dorder.size, dtype=np.int64)
            rank[self._dorder] = np.arange(self._dorder.size)
            slots[in_delta] = target[rank[slots[in_delta] - base.nnz]]
        self._base = _csr(data, indices, indptr, (self._n, self._n))
        self._out = _sums(indices, data, self._n)
        self._clear_delta()
        self._invalidate()

    def reweight(self, weight: npt.ArrayLike) -> None:
        """Replace the weight of every edge added so far, e.g. after another epoch of decay.

        Why: decay and the ``log2(1 + W)`` repeat curve change old edges' weights from
        epoch to epoch, and not by a common factor, so an exact epoch must recompute
        them. This does so in place: the stored weight of each pair becomes the sum of
        its edges' new weights (one ``bincount`` through the edge -> position map),
        and the out-strengths are recomputed. O(edges + nnz); nothing is sorted and the
        matrix structure does not change.

        Parameters
        ----------
        weight : array_like of float, shape (n_edges,)
            New weight of each edge, in the order the edges were given (the
            constructor's, then each :meth:`add_edges` batch's, self loops included
            and ignored). Finite and > 0.

        Raises
        ------
        RuntimeError
            If the instance was built without ``track_edges``.
        ValueError
            On a wrong length or a weight that is not finite and > 0.
        """
        if not self._track:
            raise RuntimeError("reweight needs IncrementalTrust(..., track_edges=True)")
        w = np.asarray(weight, dtype=np.float64).reshape(-1)
        if w.shape != (self._n_edges,):
            raise ValueError(f"weight must have shape ({self._n_edges},), got {w.shape}")
        if not bool(np.all(np.isfinite(w) & (w > 0))):
            raise ValueError("weights must be finite and > 0")
        slots = self._slots[: self._n_edges]
        valid = slots >= 0
        base = self._base
        total: np.ndarray = _sums(slots[valid], w[valid], base.nnz + self._dkey.size)
        base.data[:] = total[: base.nnz]
        self._dw = total[base.nnz :].copy()
        out = _sums(base.indices, base.data, self._n)
        if self._dkey.size:
            out += _sums(self._dkey & _KEY_MASK, self._dw, self._n)
        self._out = out
        self._delta = None
        self._product = None
        self._scale = None
        self._dangling = None

    # ----------------------------------------------------------------- reading

    def _delta_rows(self) -> tuple[np.ndarray, sparse.csr_array] | None:
        """The delta stored by the rows it touches: (rows, CSR of those rows).

        Not as an n x n CSR: the product with that would walk all n row pointers and
        add an n-vector every iteration for about 1% of the nonzeros.
        """
        if self._dkey.size == 0:
            return None
        if self._delta is None:
            dtype = self._base.indices.dtype
            rows, counts = np.unique(self._dsorted >> _KEY_SHIFT, return_counts=True)
            indptr = np.zeros(rows.size + 1, dtype=dtype)
            np.cumsum(counts, out=indptr[1:])
            indices = (self._dsorted & _KEY_MASK).astype(dtype)
            matrix = _csr(self._dw[self._dorder], indices, indptr, (rows.size, self._n))
            self._delta = (rows.astype(np.intp), matrix)
        return self._delta

    def _scale_and_dangling(self) -> tuple[np.ndarray, np.ndarray]:
        if self._scale is None or self._dangling is None:
            out = self._out
            positive = out > 0
            scale = np.zeros(self._n, dtype=np.float64)
            np.divide(1.0, out, out=scale, where=positive)
            self._scale = scale
            self._dangling = np.flatnonzero(~positive)
        return self._scale, self._dangling

    def _matvec(self, threads: int | None) -> BlockProduct:
        if self._product is not None and self._product[0] == threads:
            return self._product[1]
        delta = self._delta_rows()
        prod = product([self._base], threads=threads, row_subsets=() if delta is None else [delta])
        # The blocks are views of W's and the delta's data: in-place additions and
        # reweighting are seen; a structural change (new pairs, merge, growth) drops it.
        self._product = (threads, prod)
        return prod

    def trust_matrix(self) -> TrustMatrix:
        """A normalised :class:`~scoring.propagation.TrustMatrix` of the current graph.

        For consumers that need ``M`` itself (explanations, tests). Costs an O(nnz)
        copy; propagation does not need it.
        """
        merged = self._base.copy()
        delta = self._delta_rows()
        if delta is not None:
            rows, matrix = delta
            coo = matrix.tocoo()
            local_row, col = coo.coords
            expanded = sparse.csr_array(
                (coo.data, (rows[local_row], col)), shape=(self._n, self._n)
            )
            merged = sparse.csr_array(merged + expanded)
        out = _sums(merged.indices, merged.data, self._n)
        merged.data /= out[merged.indices]
        return TrustMatrix(n=self._n, matrix=merged, dangling=np.flatnonzero(out == 0))

    def propagate(
        self,
        seeds: Sequence[int] | npt.ArrayLike,
        *,
        seed_weights: Sequence[float] | npt.ArrayLike | None = None,
        alpha: float = 0.15,
        tol: float = 1e-10,
        max_iter: int = 1000,
        x0: npt.ArrayLike | None = None,
        retain: npt.ArrayLike | None = None,
        threads: int | None = None,
    ) -> PropagationResult:
        """Seeded trust propagation on the current graph.

        Same parameters, semantics, errors and fixed point as
        :meth:`scoring.propagation.TrustMatrix.propagate` on
        ``TrustMatrix.from_edges`` of every edge added so far, by the same loop; only
        the product differs: ``(W + D) (x / o)`` instead of ``M x``, which agree up to
        rounding. A warm start from the previous epoch's trust needs ``x0`` padded
        with zeros for accounts added since.

        Returns
        -------
        scoring.propagation.PropagationResult

        Raises
        ------
        ValueError
            If there are no seeds, or an argument is out of range.
        scoring.propagation.ConvergenceError
            If the L1 change is still ``>= tol`` after ``max_iter`` iterations.
        """
        check_run_options(alpha, tol, max_iter)
        seed_idx, seed_p = seed_distribution(self._n, seeds, seed_weights)
        x = start_vector(self._n, seed_idx, seed_p, x0)
        keep = retain_vector(self._n, retain)
        scale, dangling = self._scale_and_dangling()
        return power_iteration(
            self._matvec(threads),
            x,
            dangling,
            seed_idx,
            seed_p,
            alpha=alpha,
            tol=tol,
            max_iter=max_iter,
            keep=keep,
            scale=scale,
        )
