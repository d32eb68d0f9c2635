"""Seeded trust propagation: personalized PageRank / EigenTrust on sparse arrays.

This is the hot loop of a scoring epoch. It is a plain ``scipy.sparse`` CSR
power iteration built straight from edge arrays, because that is the fastest
thing measured here at 10M edges (DESIGN.md section 6): networkx is about
100x slower and is kept as the reference the tests compare against.

Why seeded: an unseeded (uniform-teleport) PageRank gives every account the
same free teleport mass, which a sybil farm multiplies by the number of
accounts it creates and then concentrates on its target. With teleport and
dangling mass going only to pre-trusted seeds, trust can reach an account only
along edges from the seeded region, so a farm gets no more than the edges
into it carry (Gyöngyi et al.'s TrustRank, Kamvar et al.'s EigenTrust).
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import sparse

__all__ = [
    "DEFAULT_MAX_THREADS",
    "PARALLEL_MIN_NNZ",
    "BlockProduct",
    "ConvergenceError",
    "PropagationResult",
    "TrustMatrix",
    "product",
    "thread_count",
]

#: Below this many stored edges a sparse matrix-vector product runs on one thread: the
#: hand-off to a second thread outweighs the work. Measured on the 2-core benchmark
#: machine with its second core idle (docs/performance.md): 2 threads take 1.07-1.3 x
#: the time of one up to 0.49M edges, 0.55-0.62 x from 0.59M to 10M edges. (With the
#: other core busy, 2 threads lose 2-42% at every size: a shared machine may prefer
#: ``threads=1``.)
PARALLEL_MIN_NNZ = 600_000

#: Threads used by default above :data:`PARALLEL_MIN_NNZ`: at most this many, and no
#: more than the CPUs this process may run on. Two is what was measured (the machine
#: has two cores, and the SpMV is bound by memory latency, not by arithmetic).
DEFAULT_MAX_THREADS = 2


class ConvergenceError(RuntimeError):
    """The power iteration did not reach the tolerance within ``max_iter``.

    A typed error rather than a warning and a half-converged vector: scores
    from an unconverged run would be published on chain as if they were final.

    Attributes
    ----------
    iterations : int
        Iterations performed (equal to ``max_iter``).
    residual : float
        L1 change of the last iteration.
    """

    def __init__(self, iterations: int, residual: float) -> None:
        super().__init__(iterations, residual)
        self.iterations = iterations
        self.residual = residual

    def __str__(self) -> str:
        return (
            f"trust propagation did not converge in {self.iterations} iterations "
            f"(last L1 change {self.residual:.3e})"
        )


@dataclass(frozen=True, eq=False)
class PropagationResult:
    """Outcome of one propagation run.

    Attributes
    ----------
    trust : numpy.ndarray of float64, shape (n,)
        Stationary trust, non-negative and summing to one (read-only).
    iterations : int
        Power iterations performed.
    residual : float
        L1 change of the last iteration (below the tolerance on success).
    """

    trust: np.ndarray
    iterations: int
    residual: float


# --------------------------------------------------------------------------- edges


def check_edges(
    n: int, src: npt.ArrayLike, dst: npt.ArrayLike, weight: npt.ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate edge arrays against ``n`` accounts; return them as numpy arrays.

    Shared by :meth:`TrustMatrix.from_edges` and
    :meth:`scoring.incremental.IncrementalTrust.add_edges`, so that both reject the same
    input with the same message.

    Raises
    ------
    ValueError
        On a negative ``n``, mismatched shapes, non-integer or out-of-range indices, or
        weights that are not finite and strictly positive.
    """
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    src_a = np.asarray(src)
    dst_a = np.asarray(dst)
    w_a = np.asarray(weight, dtype=np.float64)
    if not (src_a.ndim == dst_a.ndim == w_a.ndim == 1):
        raise ValueError("src, dst and weight must be 1-D arrays")
    if not (src_a.shape == dst_a.shape == w_a.shape):
        raise ValueError(
            f"src, dst and weight must have equal lengths, got "
            f"{src_a.shape[0]}, {dst_a.shape[0]}, {w_a.shape[0]}"
        )
    if src_a.shape[0]:
        for name, arr in (("src", src_a), ("dst", dst_a)):
            if not np.issubdtype(arr.dtype, np.integer):
                raise ValueError(f"{name} must hold integer indices, got dtype {arr.dtype}")
            if int(arr.min()) < 0 or int(arr.max()) >= n:
                raise ValueError(f"{name} has indices outside [0, {n})")
        if not bool(np.all(np.isfinite(w_a) & (w_a > 0))):
            raise ValueError("weights must be finite and > 0")
    else:
        # Empty lists come in as float arrays; they index nothing.
        src_a = src_a.astype(np.intp)
        dst_a = dst_a.astype(np.intp)
    return src_a, dst_a, w_a


def summed_matrix(n: int, src: np.ndarray, dst: np.ndarray, weight: np.ndarray) -> sparse.csr_array:
    """The unnormalised trust matrix: ``W[i, j]`` = summed weight of the edges ``j -> i``.

    Canonical CSR (sorted column indices, no duplicates, no explicit zeros), self loops
    dropped. Inputs must have passed :func:`check_edges`.

    Why this shape: it is built with one COO -> CSR conversion and nothing else, and
    both the normalised matrix (:meth:`TrustMatrix.from_edges` divides ``data`` in
    place) and the incremental one (which keeps ``W`` and the out-strengths apart) start
    from it. Self loops are given weight zero rather than filtered out, so no edge array
    is copied when, as usual, there are none (``eliminate_zeros`` then runs only when
    there were some).
    """
    loops = src == dst
    has_loops = bool(loops.any())
    w = np.where(loops, 0.0, weight) if has_loops else weight
    index_dtype = np.int32 if n <= np.iinfo(np.int32).max else np.int64
    # csr_array sums duplicate (dst, src) pairs and sorts each row while converting.
    matrix = sparse.csr_array(
        (w, (dst.astype(index_dtype, copy=False), src.astype(index_dtype, copy=False))),
        shape=(n, n),
    )
    if has_loops:
        matrix.eliminate_zeros()
    return matrix


def seed_distribution(
    n: int,
    seeds: Sequence[int] | npt.ArrayLike,
    seed_weights: Sequence[float] | npt.ArrayLike | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The teleport distribution ``p`` over ``n`` accounts as (unique indices, probabilities).

    Kept sparse because seed sets are small next to ``n``: the teleport step then costs
    O(|seeds|) per iteration instead of O(n).

    Raises
    ------
    ValueError
        If there are no seeds, an index is out of range, or the weights are not finite,
        non-negative and of positive sum.
    """
    idx = np.asarray(seeds).reshape(-1)
    if idx.size == 0:
        raise ValueError(
            "trust propagation needs at least one seed (pre-trusted account): "
            "an unseeded computation hands teleport mass to every account, "
            "which is exactly what a sybil farm exploits"
        )
    if not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"seeds must be integer account indices, got dtype {idx.dtype}")
    if int(idx.min()) < 0 or int(idx.max()) >= n:
        raise ValueError(f"seed indices must lie in [0, {n})")
    if seed_weights is None:
        w = np.ones(idx.size, dtype=np.float64)
    else:
        w = np.asarray(seed_weights, dtype=np.float64).reshape(-1)
        if w.shape != idx.shape:
            raise ValueError(
                f"seed_weights must match seeds in length, got {w.size} and {idx.size}"
            )
        if not bool(np.all(np.isfinite(w) & (w >= 0))):
            raise ValueError("seed_weights must be finite and >= 0")
    unique, inverse = np.unique(idx, return_inverse=True)
    total = np.bincount(inverse, weights=w, minlength=unique.size)
    mass = float(total.sum())
    if not mass > 0:
        raise ValueError("seed_weights must have a positive sum")
    keep = total > 0
    return unique[keep], total[keep] / mass


# --------------------------------------------------------------------------- threaded SpMV

_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """The module's worker threads, created on first use and shared by every product.

    One pool for the process rather than one per call or per matrix: starting threads
    costs more than a small product, and a long-running scorer calls propagate many
    times. Its threads are started on demand (one per concurrently running block) and
    are joined at interpreter exit.
    """
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(
                max_workers=max(1, _available_cpus()), thread_name_prefix="renown-spmv"
            )
        return _POOL


def _forget_pool() -> None:
    # A forked child inherits the pool object but none of its threads: a product
    # submitted there would wait forever. Start afresh instead.
    global _POOL, _POOL_LOCK
    _POOL = None
    _POOL_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def thread_count(nnz: int, threads: int | None = None, min_nnz: int = PARALLEL_MIN_NNZ) -> int:
    """How many row blocks (threads) a product over ``nnz`` stored edges should use.

    ``threads`` given: that many (at least 1). Otherwise one below ``min_nnz`` and
    ``min(DEFAULT_MAX_THREADS, CPUs available)`` at or above it.
    """
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        return threads
    if nnz < min_nnz:
        return 1
    return max(1, min(DEFAULT_MAX_THREADS, _available_cpus()))


def _row_block(matrix: sparse.csr_array, lo: int, hi: int) -> sparse.csr_array:
    """Rows ``lo:hi`` of ``matrix`` sharing its ``data`` and ``indices`` (no copy).

    ``matrix[lo:hi]`` copies the block, and so does the ``csr_array`` constructor for
    a view of less than half its base (scipy's ``_prune_array``): either would double the
    matrix in memory. The block is assembled from views instead; only its row pointer
    (``hi - lo + 1`` entries) is new.
    """
    a, b = int(matrix.indptr[lo]), int(matrix.indptr[hi])
    indptr = matrix.indptr[lo : hi + 1]
    if a:
        indptr = indptr - matrix.indptr.dtype.type(a)
    block = sparse.csr_array((hi - lo, matrix.shape[1]), dtype=matrix.dtype)
    block.indptr = indptr
    block.indices = matrix.indices[a:b]
    block.data = matrix.data[a:b]
    return block


class BlockProduct:
    """``y = (A_1 + ... + A_k) @ x`` over row blocks of about equal nonzeros, one thread each.

    Why: scipy's CSR kernel is single-threaded and bound by memory latency (random
    gathers of ``x``), not bandwidth, so a second thread running the other half of the
    rows nearly halves the product (docs/performance.md). The kernel releases the GIL,
    so plain Python threads run in parallel. The calling thread computes the first
    block itself and hands the others to the module's pool.

    Deterministic, and bit-identical to the one-thread product: every ``y[i]`` is
    computed by the same kernel from the same row, in the same order (each matrix's
    row in stored order, the matrices in the order given, then the row subsets), and
    each thread writes only its own slice of ``y``. Nothing is summed across threads.

    Parameters
    ----------
    matrices : sequence of scipy.sparse.csr_array
        Matrices of one shape ``(rows, columns)`` (e.g. a large base). Held, not
        copied: the blocks are views, so changing a matrix's ``data`` in place is seen
        by the product, but changing its structure needs a new ``BlockProduct``.
    threads : int
        Number of row blocks, at least 1. One block is the plain scipy product.
    row_subsets : sequence of (numpy.ndarray, scipy.sparse.csr_array), optional
        Addends stored by the rows they touch: ``(rows, C)`` adds ``C @ x`` to
        ``y[rows]``, with ``rows`` sorted and unique and ``C`` of shape
        ``(len(rows), columns)``. Why: a small delta matrix stored as a full CSR costs
        a pass over all ``rows + 1`` row pointers and an O(n) addition per product,
        most of it for empty rows (15% of the product at 1M accounts for a 1% delta);
        stored by its rows it costs its nonzeros.
    """

    def __init__(
        self,
        matrices: Sequence[sparse.csr_array],
        threads: int,
        row_subsets: Sequence[tuple[np.ndarray, sparse.csr_array]] = (),
    ) -> None:
        if not matrices:
            raise ValueError("BlockProduct needs at least one matrix")
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        shape = matrices[0].shape
        if any(m.shape != shape for m in matrices):
            raise ValueError("BlockProduct's matrices must have one shape")
        if any(c.shape != (r.shape[0], shape[1]) for r, c in row_subsets):
            raise ValueError("a row subset (rows, C) needs C of shape (len(rows), columns)")
        self.shape: tuple[int, int] = (int(shape[0]), int(shape[1]))
        self.matrices = list(matrices)
        self.row_subsets = [(np.asarray(r, dtype=np.intp), c) for r, c in row_subsets]
        rows = self.shape[0]
        # Cut where the cumulative count of stored edges (over all addends) crosses
        # k / threads of the total: the work of a block is its nonzeros.
        if threads > 1:
            if len(self.matrices) == 1 and not self.row_subsets:
                cumulative = self.matrices[0].indptr  # no copy: the usual case
            else:
                cumulative = np.zeros(rows + 1, dtype=np.int64)
                for m in self.matrices:
                    cumulative += m.indptr
            if self.row_subsets:
                per_row = np.zeros(rows + 1, dtype=np.int64)
                for r, c in self.row_subsets:
                    per_row[r + 1] += np.diff(c.indptr)
                cumulative += np.cumsum(per_row)
            total = int(cumulative[-1])
            inner = [
                int(np.searchsorted(cumulative, total * k // threads)) for k in range(1, threads)
            ]
        else:
            inner = []
        cuts = sorted({0, rows, *(min(max(c, 0), rows) for c in inner)})
        self.cuts: list[int] = cuts
        self._blocks = [self._block(lo, hi) for lo, hi in itertools.pairwise(cuts)]

    def _block(self, lo: int, hi: int) -> _Block:
        if lo == 0 and hi == self.shape[0]:
            mats = list(self.matrices)
        else:
            mats = [_row_block(m, lo, hi) for m in self.matrices]
        subsets = []
        for r, c in self.row_subsets:
            a, b = np.searchsorted(r, [lo, hi])
            if b > a:
                subsets.append((r[a:b] - lo, _row_block(c, int(a), int(b))))
        return _Block(lo, hi, mats, subsets)

    @property
    def threads(self) -> int:
        """Row blocks actually used (fewer than asked when there are few rows)."""
        return max(1, len(self._blocks))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The product with ``x`` (float64, shape ``(columns,)``), as a new array."""
        if len(self._blocks) <= 1:
            if not self._blocks:  # no rows
                return np.zeros(0, dtype=np.float64)
            return self._blocks[0].product(x)
        y = np.empty(self.shape[0], dtype=np.float64)

        def run(block: _Block) -> None:
            y[block.lo : block.hi] = block.product(x)

        pool = _pool()
        futures: list[Future[None]] = [pool.submit(run, b) for b in self._blocks[1:]]
        try:
            run(self._blocks[0])
        finally:
            for f in futures:
                f.result()
        return y


@dataclass(frozen=True)
class _Block:
    """Rows ``lo:hi`` of a :class:`BlockProduct`: views of each addend's rows."""

    lo: int
    hi: int
    matrices: list[sparse.csr_array]
    subsets: list[tuple[np.ndarray, sparse.csr_array]]

    def product(self, x: np.ndarray) -> np.ndarray:
        part = np.asarray(self.matrices[0] @ x)
        for m in self.matrices[1:]:
            part += m @ x
        for local, c in self.subsets:
            part[local] += c @ x
        return part


def product(
    matrices: Sequence[sparse.csr_array],
    *,
    threads: int | None = None,
    min_nnz: int = PARALLEL_MIN_NNZ,
    row_subsets: Sequence[tuple[np.ndarray, sparse.csr_array]] = (),
) -> BlockProduct:
    """The matrix-vector product propagation iterates with: threaded on large matrices.

    Parameters
    ----------
    matrices : sequence of scipy.sparse.csr_array
        Summed in the product (see :class:`BlockProduct`).
    threads : int, optional
        Force this many row blocks; default from :func:`thread_count` (one below
        ``min_nnz`` stored edges in total, two above it on a machine with two CPUs).
    min_nnz : int, default :data:`PARALLEL_MIN_NNZ`
        Size threshold for the default; tests pass a tiny one to force threads.
    row_subsets : sequence of (rows, matrix), optional
        Addends stored by the rows they touch (see :class:`BlockProduct`).

    Returns
    -------
    BlockProduct
        Callable ``x -> y``, bit-identical whatever the number of threads.
    """
    nnz = sum(int(m.nnz) for m in matrices) + sum(int(c.nnz) for _, c in row_subsets)
    return BlockProduct(matrices, thread_count(nnz, threads, min_nnz), row_subsets)


# --------------------------------------------------------------------------- the iteration


def start_vector(
    n: int, seed_idx: np.ndarray, seed_p: np.ndarray, x0: npt.ArrayLike | None
) -> np.ndarray:
    """The first iterate: ``x0`` checked and normalised, or the seed distribution."""
    if x0 is None:
        x = np.zeros(n, dtype=np.float64)
        x[seed_idx] = seed_p
        return x
    x = np.array(x0, dtype=np.float64, copy=True).reshape(-1)
    if x.shape != (n,):
        raise ValueError(f"x0 must have shape ({n},), got {x.shape}")
    if not bool(np.all(np.isfinite(x) & (x >= 0))):
        raise ValueError("x0 must be finite and >= 0")
    total = float(x.sum())
    if not total > 0:
        raise ValueError("x0 must have a positive sum")
    x /= total
    return x


def check_run_options(alpha: float, tol: float, max_iter: int) -> None:
    """Reject an ``alpha``, ``tol`` or ``max_iter`` out of range (see ``TrustMatrix.propagate``)."""
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must lie in (0, 1], got {alpha}")
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol}")
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")


def retain_vector(n: int, retain: npt.ArrayLike | None) -> np.ndarray | None:
    """``retain`` checked (shape ``(n,)``, values in [0, 1]) as float64, or None."""
    if retain is None:
        return None
    keep = np.asarray(retain, dtype=np.float64).reshape(-1)
    if keep.shape != (n,):
        raise ValueError(f"retain must have shape ({n},), got {keep.shape}")
    if not bool(np.all((keep >= 0) & (keep <= 1))):
        raise ValueError("retain must lie in [0, 1]")
    return keep


def power_iteration(
    matvec: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    dangling: np.ndarray,
    seed_idx: np.ndarray,
    seed_p: np.ndarray,
    *,
    alpha: float,
    tol: float,
    max_iter: int,
    keep: np.ndarray | None = None,
    scale: np.ndarray | None = None,
) -> PropagationResult:
    """The seeded power iteration of :meth:`TrustMatrix.propagate`, on any product.

    One loop for the normalised matrix (``scale`` None: ``matvec`` is ``M @``) and for
    the incremental one (``matvec`` is ``W @`` and ``scale`` the reciprocal
    out-strengths, 0 for dangling accounts, so ``W (scale * x) = M x``): both then stop
    by the same rule and converge to the same fixed point.

    ``x`` is the start vector (overwritten: pass a copy); ``keep`` the checked
    ``retain`` vector. Raises :class:`ConvergenceError` after ``max_iter`` iterations.
    """
    n = x.shape[0]
    beta = 1.0 - alpha
    diff = np.empty(n, dtype=np.float64)
    passed_buf = np.empty(n, dtype=np.float64) if keep is not None else x
    z_buf = np.empty(n, dtype=np.float64) if scale is not None else x
    residual = float("inf")
    for iteration in range(1, max_iter + 1):
        passed = x if keep is None else np.multiply(keep, x, out=passed_buf)
        z = passed if scale is None else np.multiply(passed, scale, out=z_buf)
        x_new = matvec(z)
        if keep is None:
            held = float(x[dangling].sum())
        else:
            # Held back: all of a dangling account's trust, (1 - r) of the others'.
            held = float(x.sum() - passed.sum() + passed[dangling].sum())
        x_new *= beta
        x_new[seed_idx] += (beta * held + alpha) * seed_p
        np.subtract(x_new, x, out=diff)
        np.abs(diff, out=diff)
        residual = float(diff.sum())
        x = x_new
        if residual < tol:
            # The iteration preserves total mass up to rounding; renormalise
            # so callers can rely on an exact distribution.
            x /= x.sum()
            x.flags.writeable = False
            return PropagationResult(trust=x, iterations=iteration, residual=residual)
    raise ConvergenceError(max_iter, residual)


@dataclass(frozen=True, eq=False)
class TrustMatrix:
    """Normalised local-trust matrix, built once and reused across runs.

    Building the CSR matrix dominates an epoch's cost once a warm start cuts
    the iterations (DESIGN.md section 6), so it is built once here and then
    :meth:`propagate` can be called for several seed sets or warm starts.
    An epoch that only adds edges to the previous one need not rebuild at all:
    see :class:`scoring.incremental.IncrementalTrust`.

    Attributes
    ----------
    n : int
        Number of accounts (matrix dimension).
    matrix : scipy.sparse.csr_array, shape (n, n)
        ``matrix[i, j]`` is the share of account ``j``'s outgoing trust that
        goes to account ``i``. Every column of an account with outgoing trust
        sums to one; columns of dangling accounts are empty.
    dangling : numpy.ndarray of intp
        Indices of accounts with no outgoing trust (after dropping self loops).

    Use :meth:`from_edges` to build one.
    """

    n: int
    matrix: sparse.csr_array
    dangling: np.ndarray

    @classmethod
    def from_edges(
        cls,
        n: int,
        src: npt.ArrayLike,
        dst: npt.ArrayLike,
        weight: npt.ArrayLike,
    ) -> TrustMatrix:
        """Build the column-normalised trust matrix from edge arrays.

        Self loops are dropped (an account cannot vouch for itself) and
        parallel edges are summed. Each account's outgoing weights are then
        divided by their total, so that spreading one's trust over many
        accounts dilutes it: vote spamming buys nothing.

        Parameters
        ----------
        n : int
            Number of accounts; indices must lie in ``[0, n)``.
        src, dst : array_like of int, shape (m,)
            Truster and trusted account index of each edge.
        weight : array_like of float, shape (m,)
            Edge weights, finite and strictly positive.

        Returns
        -------
        TrustMatrix

        Raises
        ------
        ValueError
            On mismatched shapes, out-of-range indices or bad weights.

        Notes
        -----
        With :math:`w_{ji}` the summed weight of edges :math:`j \\to i`
        (:math:`j \\ne i`) and :math:`o_j = \\sum_i w_{ji}`,
        :math:`M_{ij} = w_{ji} / o_j` when :math:`o_j > 0`; accounts with
        :math:`o_j = 0` are dangling.

        The matrix is built unnormalised (:func:`summed_matrix`: one COO -> CSR
        conversion, which sums parallel edges) and then normalised in place:
        the out-strengths are a ``bincount`` over the *distinct* edges and the
        division one pass over ``data``. Doing it the other way round (divide
        every edge, then convert) needs three more edge-length temporaries;
        this order is 13% faster at 10M edges (docs/performance.md). Memory:
        the CSR holds 12 bytes per distinct edge plus 4 bytes per account;
        building it needs scipy's conversion temporaries, about 16 bytes per
        edge.
        """
        src_a, dst_a, w_a = check_edges(n, src, dst, weight)
        matrix = summed_matrix(n, src_a, dst_a, w_a)
        out = np.bincount(matrix.indices, weights=matrix.data, minlength=n)
        matrix.data /= out[matrix.indices]
        dangling = np.flatnonzero(out == 0)
        return cls(n=n, matrix=matrix, dangling=dangling)

    def seed_distribution(
        self,
        seeds: Sequence[int] | npt.ArrayLike,
        seed_weights: Sequence[float] | npt.ArrayLike | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The teleport distribution ``p`` as (unique indices, probabilities).

        Kept sparse because seed sets are small next to ``n``: the teleport
        step then costs O(|seeds|) per iteration instead of O(n).

        Raises
        ------
        ValueError
            If there are no seeds, an index is out of range, or the weights
            are not finite, non-negative and of positive sum.
        """
        return seed_distribution(self.n, seeds, seed_weights)

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
        """Seeded trust propagation (personalized PageRank with seed-bound dangling mass).

        Parameters
        ----------
        seeds : sequence of int
            Indices of the pre-trusted accounts. Duplicates add up.
        seed_weights : sequence of float, optional
            Weight of each entry of ``seeds``; uniform over seeds if omitted.
            Normalised to sum to one.
        alpha : float, default 0.15
            Teleport probability, in ``(0, 1]``: the share of trust that
            returns to the seeds at every step. 0.15 is the classic PageRank
            damping (0.85) and EigenTrust's usual value: larger values pin
            trust closer to the seeds (more sybil-resistant, less reach);
            smaller values reach further but converge more slowly and let
            well-connected rings keep more of what reaches them.
        tol : float, default 1e-10
            Stop when the L1 change between iterations is below ``tol``. Not
            scaled by ``n`` (unlike ``networkx.pagerank``).
        max_iter : int, default 1000
            Raise :class:`ConvergenceError` after this many iterations.
        x0 : array_like of float, shape (n,), optional
            Warm start, e.g. the previous epoch's trust (pad new accounts with
            zeros). Normalised to sum to one. Defaults to the seed
            distribution.
        retain : array_like of float, shape (n,), optional
            Share of its trust each account passes on along its edges, in
            ``[0, 1]``; the rest goes back to the seeds, like a dangling
            account's. Omitted, every account passes on all of it. This is how
            an account whose standing was cut after a first propagation (by
            distrust, or as a member of a closed group) vouches with what it
            kept rather than with what it had (:mod:`scoring.model`).
        threads : int, optional
            Threads for the sparse product. By default one below
            :data:`PARALLEL_MIN_NNZ` stored edges and two above it (when the
            process may use two CPUs). The result is bit-identical whatever the
            number (:class:`BlockProduct`); only the time changes.

        Returns
        -------
        PropagationResult
            ``trust`` sums to one; ``iterations`` and ``residual`` report the
            run.

        Raises
        ------
        ValueError
            If there are no seeds, or an argument is out of range.
        ConvergenceError
            If the L1 change is still ``>= tol`` after ``max_iter`` iterations.

        Notes
        -----
        Let :math:`M` be the column-normalised trust matrix
        (:meth:`from_edges`), :math:`d` the indicator vector of dangling
        accounts, :math:`p` the seed distribution and
        :math:`\\beta = 1 - \\alpha`. The iteration is

        .. math::

            x^{(k+1)} = \\beta \\left(M x^{(k)} + (d^\\top x^{(k)})\\, p\\right)
                        + \\alpha\\, p ,

        and with ``retain`` = :math:`r`, :math:`M x` becomes :math:`M (r \\circ x)` and
        the mass held back, :math:`\\sum_j (1 - r_j) x_j` over non-dangling
        :math:`j`, joins the dangling mass (the matrix stays column-stochastic, so
        everything below holds with :math:`M` replaced by
        :math:`M \\operatorname{diag}(r)`).

        i.e. the power method on the column-stochastic matrix
        :math:`G = \\beta (M + p d^\\top) + \\alpha p \\mathbf{1}^\\top`,
        whose unique stationary vector is the returned trust. Dangling mass
        goes back to the seeds, as in EigenTrust, not uniformly to everyone
        as in the original PageRank, for the sybil reason in the module
        docstring. It is exactly ``networkx.pagerank(G, alpha=1 - alpha,
        personalization=p, dangling=p)`` on the same graph without self loops.

        ``G`` contracts the L1 distance between distributions by
        :math:`\\beta`, so the error after stopping is at most
        :math:`\\beta / \\alpha \\cdot \\mathrm{tol}` (about ``5.7 * tol``
        with the default), and a cold start needs at most
        :math:`\\lceil \\log(\\mathrm{tol}/2) / \\log \\beta \\rceil`
        iterations (146 with the defaults), whatever the graph. A warm start
        from a nearby vector needs fewer.

        Cost per iteration: one CSR sparse matrix-vector product (about 12
        bytes of memory traffic per distinct edge) plus O(n) vector work.

        References
        ----------
        .. [1] S. D. Kamvar, M. T. Schlosser and H. Garcia-Molina, "The
           EigenTrust algorithm for reputation management in P2P networks",
           Proc. WWW 2003.
        .. [2] T. H. Haveliwala, "Topic-sensitive PageRank", Proc. WWW 2002.
        .. [3] L. Page, S. Brin, R. Motwani and T. Winograd, "The PageRank
           citation ranking: bringing order to the Web", Stanford InfoLab
           technical report, 1999.

        Examples
        --------
        Account 0 is the seed; it trusts 1, which trusts 2; 2 trusts nobody,
        so its trust flows back to the seed.

        >>> import numpy as np
        >>> tm = TrustMatrix.from_edges(3, [0, 1], [1, 2], [1.0, 1.0])
        >>> res = tm.propagate([0])
        >>> np.round(res.trust, 4).tolist()
        [0.3887, 0.3304, 0.2809]
        >>> tm.propagate([0], x0=res.trust).iterations
        1
        """
        check_run_options(alpha, tol, max_iter)
        seed_idx, seed_p = seed_distribution(self.n, seeds, seed_weights)
        x = start_vector(self.n, seed_idx, seed_p, x0)
        keep = retain_vector(self.n, retain)
        return power_iteration(
            product([self.matrix], threads=threads),
            x,
            self.dangling,
            seed_idx,
            seed_p,
            alpha=alpha,
            tol=tol,
            max_iter=max_iter,
            keep=keep,
        )
