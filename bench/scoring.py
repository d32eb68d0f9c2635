"""Scoring benchmark (issue 3): graph build, trust propagation, warm epochs, peers, loading.

    python bench/scoring.py [--sizes 10000,100000,1000000] [--edges-per-node 10]
                            [--peers networkx,igraph] [--peer-limit-s 600]
                            [--model-limit-s 300] [--db-rows 1000000,10000000]
                            [--pg-url URL] [--skip-db] [--skip-pg] [--skip-sqlite]
                            [--previous]
                            [--profile DIR]

For each size N, one synthetic power-law graph (numpy, seeded): N accounts, about
``--edges-per-node`` x N weighted edges. Destinations follow a bounded Zipf law over a
random permutation of the accounts (P(rank r) ~ r^-0.8, so in-degrees have a power-law
tail of exponent about 2.25, like preferential attachment); sources a milder one
(r^-0.6); weights uniform in [0.5, 2]; three domains (60/30/10% of the edges); 1% of the
accounts, drawn at random, are the seeds. Everything uses the production defaults
(alpha 0.15, L1 tolerance 1e-10).

What is timed, per size (wall clock, ``time.perf_counter``; generation is not timed;
the core steps are run 5 times and the median is reported):

* build: ``TrustMatrix.from_edges(n, src, dst, weight)``, and the previous build
  (``build_copying``, before it normalised in place) for comparison;
* propagate, cold: ``TrustMatrix.propagate(seeds)`` on its default threads (2 above
  ``scoring.propagation.PARALLEL_MIN_NNZ`` stored edges when 2 CPUs are available, else
  1), at tol 1e-10 and at 1e-6; and forced to 1 and to 2 threads (checked bit-identical);
* bare: the floor in the same run, a bare power iteration of the same column-normalised
  matrix on the same product (``scoring.propagation.product``, same threads), with the
  same seeds, teleport, dangling rule and stopping test (the product and three vector
  operations per iteration, nothing else); plus one SpMV alone on 1 and 2 threads and in
  float32 (median of 5) and the memory-bandwidth floor of one SpMV: 12 bytes per stored
  edge + 4 per row pointer + 8 per account read and 8 written, at the copy bandwidth
  measured at start-up (``np.copyto`` of 512 MB, counting read + write);
* warm epoch: 1% new edges (same distributions) arrive. Incremental (production,
  ``scoring.incremental.IncrementalTrust``): ``add_edges`` (the array update) and
  propagate with ``x0`` = the previous epoch's trust, on the default threads and on 1;
  also the structure's build (once, in the previous epoch), a forced merge, and with
  ``track_edges`` its ``add_edges`` and a ``reweight`` of every edge. Rebuild (the way
  before it): append to the edge arrays (``np.concatenate``), ``from_edges``, warm
  propagate. Both against the cold epoch on the same new graph (build + cold propagate),
  whose answer the incremental one must equal within the tolerance bound (1.1e-9);
* ``score_accounts`` (global + 3 domains), bare, and as ``renown score`` calls it: with
  5% distrust edges, evidence kinds (so every row gets a confidence and an explanation)
  and the previous epoch's trust as the warm start. The second is skipped where it is
  estimated to take longer than ``--model-limit-s``;
* peers (optional): ``networkx.pagerank`` (graph built from the edge arrays, then
  pagerank with personalization = dangling = the seeds and ``tol = 1e-10 / N``, because
  networkx stops at ``N * tol``), and igraph's ``personalized_pagerank`` (PRPACK, its own
  fixed tolerance; from the ``bench`` extra). Both get the parallel edges pre-summed and
  self loops removed (not timed), and must agree with ours. A peer whose run is
  estimated, from the previous size, to take longer than ``--peer-limit-s`` is skipped,
  and the output says so and why;

Memory, per step: peak RSS growth, i.e. VmHWM (reset through /proc/self/clear_refs
before the step, after ``gc.collect()`` and ``malloc_trim``) minus VmRSS before it: what
the step added on top of what the process already held (the edge arrays are inputs, held
before). For build + propagate also the tracemalloc peak of a separate, untimed run
(numpy and scipy allocate through tracked calls).

Loading (``--db-rows``): R evidence rows (direct account votes and endorsements, a
power-law graph of R / edges-per-node accounts) are written straight into a fresh,
migrated database: a new PostgreSQL schema (binary COPY built with numpy, foreign-key
triggers off, secondary indexes re-created after, then VACUUM ANALYZE) and a temporary
SQLite file (executemany); none of that is timed. Then
``storage.scoring_repo.load_evidence`` is timed (median of 3, each in a new session), and
its evidence is checked against the rows written (as a multiset: same accounts, and the
same rows up to order). ``--previous`` also times the row-wise loader it replaced
(``rowwise_load_evidence`` below, 38-60 s and +6.3-7 GB at 10M rows), once.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# `python bench/scoring.py` puts bench/ first on sys.path, where this file would shadow
# the `scoring` package: put the repository root there instead.
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(ROOT)

import argparse  # noqa: E402
import contextlib  # noqa: E402
import cProfile  # noqa: E402
import ctypes  # noqa: E402
import dataclasses  # noqa: E402
import gc  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import sqlite3  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Callable, Iterator, Sequence  # noqa: E402
from functools import partial  # noqa: E402
from typing import Any, TypeVar  # noqa: E402

import numpy as np  # noqa: E402
import scipy  # noqa: E402
from scipy import sparse  # noqa: E402
from sqlalchemy import Engine, select, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from bench.tables import markdown_table  # noqa: E402
from scoring.events import (  # noqa: E402
    ATTEST,
    DEFAULT_DOMAIN,
    ENDORSE,
    REVIEW,
    VOTE_ACCOUNT,
    VOTE_CONTENT,
)
from scoring.evidence import KINDS, Evidence  # noqa: E402
from scoring.graph import EdgeTable  # noqa: E402
from scoring.incremental import IncrementalTrust  # noqa: E402
from scoring.model import score_accounts  # noqa: E402
from scoring.propagation import BlockProduct, TrustMatrix, product  # noqa: E402
from storage import migrate  # noqa: E402
from storage.db import make_engine, make_session_factory  # noqa: E402
from storage.models import Account  # noqa: E402
from storage.scoring_repo import _EVIDENCE_SQL, latest_event_id, load_evidence  # noqa: E402

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ALPHA = 0.15  # the production defaults of TrustMatrix.propagate and score_accounts
TOL = 1e-10
TOL_DESIGN = 1e-6  # DESIGN.md section 6 measured at this tolerance
DOMAINS = ("general", "code", "labeling")
DOMAIN_SHARE = (0.6, 0.3, 0.1)
DST_EXPONENT = 0.8  # P(rank r) ~ r^-s: in-degree tail ~ k^-(1 + 1/s)
SRC_EXPONENT = 0.6
SEED_SHARE = 0.01
NEW_EDGE_SHARE = 0.01

T = TypeVar("T")


def note(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- memory and timing ---------------------------------------------------------------


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


_PEAK_SEEN_MB = 0.0  # the largest VmHWM seen before any reset: the process's own peak


def _reset_peak() -> None:
    global _PEAK_SEEN_MB
    _PEAK_SEEN_MB = max(_PEAK_SEEN_MB, peak_mb())
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def rss_mb() -> float:
    kb = _status_kb("VmRSS")
    return (kb or 0) / 1024


def peak_mb() -> float:
    kb = _status_kb("VmHWM")
    if kb is None:
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024


@dataclasses.dataclass
class Timed:
    seconds: float
    grow_mb: float  # peak RSS during the step minus RSS before it


def _trim() -> None:
    """Collect garbage and hand freed heap back to the OS, so RSS before a step is honest."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


REPEAT = 5  # the core steps are timed this many times; the median is reported


def timed(fn: Callable[[], T], repeat: int = 1) -> tuple[T, Timed]:
    """Wall clock (median of ``repeat`` runs) and peak RSS growth of the first run.

    The result is the first run's; the others are dropped as soon as they are done.
    """
    result, first = _timed_once(fn)
    if repeat > 1:
        seconds = [first.seconds]
        for _ in range(repeat - 1):
            seconds.append(_timed_once(fn)[1].seconds)
        first.seconds = float(np.median(seconds))
    return result, first


def _timed_once(fn: Callable[[], T]) -> tuple[T, Timed]:
    _trim()
    _reset_peak()
    before = rss_mb()
    started = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - started
    global _PEAK_SEEN_MB
    peak = peak_mb()
    _PEAK_SEEN_MB = max(_PEAK_SEEN_MB, peak)
    return result, Timed(seconds, max(0.0, peak - before))


def traced_peak_mb(fn: Callable[[], Any]) -> float:
    """tracemalloc peak of ``fn`` (numpy and scipy arrays are traced), result dropped."""
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def copy_bandwidth_gbs(mb: int = 512) -> float:
    """Best of 5 ``np.copyto`` of ``mb`` MB, bytes read + written per second (STREAM copy)."""
    a = np.ones(mb * 2**20 // 8)
    b = np.empty_like(a)
    np.copyto(b, a)  # fault the pages in
    best = min(_seconds(lambda: np.copyto(b, a)) for _ in range(5))
    return 2 * a.nbytes / best / 1e9


def _seconds(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


# --- synthetic graph -----------------------------------------------------------------


def zipf_ranks(rng: np.random.Generator, n: int, size: int, s: float) -> np.ndarray:
    """``size`` ranks in [0, n) with P(r) ~ (r + 1)^-s (inverse CDF of the continuous law)."""
    a = 1.0 - s
    u = rng.random(size)
    r = ((((n + 1.0) ** a - 1.0) * u + 1.0) ** (1.0 / a)).astype(np.int64) - 1
    return np.minimum(r, n - 1)


@dataclasses.dataclass
class Graph:
    n: int
    src: np.ndarray  # int32
    dst: np.ndarray  # int32
    weight: np.ndarray  # float64
    domain: np.ndarray  # int16
    seeds: np.ndarray  # intp, 1% of the accounts
    by_popularity: np.ndarray  # account index of each destination rank
    by_activity: np.ndarray  # account index of each source rank
    rng: np.random.Generator

    @property
    def m(self) -> int:
        return int(self.src.shape[0])

    def more_edges(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``k`` new edges from the same distributions (continuing the random stream)."""
        rng = self.rng
        src = self.by_activity[zipf_ranks(rng, self.n, k, SRC_EXPONENT)]
        dst = self.by_popularity[zipf_ranks(rng, self.n, k, DST_EXPONENT)]
        weight = rng.uniform(0.5, 2.0, k)
        domain = rng.choice(len(DOMAINS), size=k, p=DOMAIN_SHARE).astype(np.int16)
        return src, dst, weight, domain


def make_graph(n: int, edges_per_node: int, seed: int = 7) -> Graph:
    rng = np.random.default_rng(seed)
    by_popularity = rng.permutation(n).astype(np.int32)
    by_activity = rng.permutation(n).astype(np.int32)
    seeds = np.sort(rng.choice(n, size=max(1, int(n * SEED_SHARE)), replace=False))
    g = Graph(n, np.empty(0, np.int32), np.empty(0, np.int32), np.empty(0), np.empty(0, np.int16),
              seeds.astype(np.intp), by_popularity, by_activity, rng)
    g.src, g.dst, g.weight, g.domain = g.more_edges(n * edges_per_node)
    return g


def summed_edges(n: int, src: np.ndarray, dst: np.ndarray,
                 weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parallel edges summed, self loops dropped: the graph every method sees."""
    keep = src != dst
    coo = sparse.coo_array((weight[keep], (src[keep], dst[keep])), shape=(n, n))
    coo.sum_duplicates()
    return coo.coords[0], coo.coords[1], coo.data


# --- the floor: a bare power iteration -----------------------------------------------


def bare_iteration(matrix: sparse.csr_array, dangling: np.ndarray, seed_idx: np.ndarray,
                   seed_p: np.ndarray, tol: float, x0: np.ndarray | None = None,
                   max_iter: int = 1000,
                   matvec: Callable[[np.ndarray], np.ndarray] | None = None,
                   ) -> tuple[np.ndarray, int]:
    """``x <- beta (M x + (d.x) p) + alpha p`` until the L1 change is below ``tol``.

    ``matvec`` replaces ``matrix @ x`` (the threaded proposal).
    """
    beta = 1.0 - ALPHA
    mv = matvec if matvec is not None else matrix.__matmul__
    if x0 is None:
        x = np.zeros(matrix.shape[0])
        x[seed_idx] = seed_p
    else:
        x = x0
    for iteration in range(1, max_iter + 1):
        y = mv(x)
        y *= beta
        y[seed_idx] += (beta * x[dangling].sum() + ALPHA) * seed_p
        residual = np.abs(y - x).sum()
        x = y
        if residual < tol:
            return x, iteration
    raise RuntimeError(f"bare iteration did not converge in {max_iter} iterations")


def spmv_ms(matrix: sparse.csr_array, x: np.ndarray) -> float:
    """Median of 5 ``matrix @ x``, in ms."""
    matrix @ x
    return 1000 * float(np.median([_seconds(lambda: matrix @ x) for _ in range(5)]))


def _cpu_ticks() -> tuple[float, float, float]:
    """(busy, total) CPU seconds of the whole machine from /proc/stat, and this process's."""
    hz = os.sysconf("SC_CLK_TCK")
    try:
        with open("/proc/stat") as fh:
            v = [int(t) for t in fh.readline().split()[1:9]]
    except OSError:
        return 0.0, 0.0, 0.0
    own = os.times()
    return (sum(v) - v[3] - v[4]) / hz, sum(v) / hz, own.user + own.system


def others_cpu(before: tuple[float, float, float]) -> float:
    """Average CPUs used by *other* processes since ``before`` (the machine is shared)."""
    busy0, total0, own0 = before
    busy1, total1, own1 = _cpu_ticks()
    if total1 <= total0:
        return 0.0
    ncpu = os.cpu_count() or 1
    return max(0.0, (busy1 - busy0) - (own1 - own0)) / (total1 - total0) * ncpu


def spmv_threads_ms(matrix: sparse.csr_array, x: np.ndarray, threads: int) -> float:
    """Median of 5 production products on ``threads`` row blocks (``BlockProduct``), in ms.

    Checked bit-identical to scipy's one-thread product first.
    """
    prod = BlockProduct([matrix], threads)
    if not np.array_equal(prod(x), matrix @ x):
        raise RuntimeError(f"the {threads}-thread SpMV is not bit-identical to scipy's")
    return 1000 * float(np.median([_seconds(lambda: prod(x)) for _ in range(5)]))


def floor_ms(matrix: sparse.csr_array, bandwidth_gbs: float) -> float:
    """Bytes one SpMV must move (data + indices + indptr + x read + y written) / bandwidth."""
    n = matrix.shape[0]
    moved = matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes + 16 * n
    return 1000 * moved / (bandwidth_gbs * 1e9)


# --- the previous build, for the before/after comparison -----------------------------


def build_copying(n: int, src: np.ndarray, dst: np.ndarray,
                  weight: np.ndarray) -> sparse.csr_array:
    """``from_edges``'s body before it normalised in place (commit 737f908).

    Copies the edge arrays without self loops (when there are any), divides every edge
    by its truster's out-strength, then converts COO -> CSR (summing duplicates). Same
    matrix as today's ``from_edges`` up to rounding (checked).
    """
    keep = src != dst
    if not keep.all():
        src, dst, weight = src[keep], dst[keep], weight[keep]
    out = np.bincount(src, weights=weight, minlength=n)
    share = weight / out[src]
    return sparse.csr_array((share, (dst, src)), shape=(n, n))


# --- one size ------------------------------------------------------------------------


@dataclasses.dataclass
class SizeResult:
    n: int
    m: int
    nnz: int
    index_dtype: str
    build: Timed
    cold: Timed
    cold_iters: int
    bare_s: float
    bare_iters: int
    cold6_s: float
    cold6_iters: int
    bare6_s: float
    bare6_iters: int
    spmv_ms: float
    floor_ms: float
    traced_mb: float
    # warm epoch after 1% new edges
    append_s: float = 0.0
    rebuild_s: float = 0.0
    warm_s: float = 0.0
    warm_iters: int = 0
    warm_first_residual: float = 0.0
    cold_new_s: float = 0.0
    cold_new_iters: int = 0
    warm_grow_mb: float = 0.0
    cold_new_1t_s: float = 0.0
    # the incremental epoch (scoring.incremental.IncrementalTrust)
    inc_build_s: float = 0.0
    inc_build_grow_mb: float = 0.0
    inc_update_s: float = 0.0
    inc_update_grow_mb: float = 0.0
    inc_prop_s: float = 0.0
    inc_prop_1t_s: float = 0.0
    inc_iters: int = 0
    inc_delta_nnz: int = 0
    inc_max_diff: float = 0.0
    inc_merge_s: float = 0.0
    inc_tracked_update_s: float = 0.0
    inc_reweight_s: float = 0.0
    # build and kernel
    threads: int = 1  # TrustMatrix.propagate's default at this size
    others_cpu: float = 0.0  # CPUs other processes used during the core steps, on average
    build_copying_s: float = 0.0
    spmv32_ms: float = 0.0
    spmv2t_ms: float = 0.0
    cold_1t_s: float = 0.0
    cold_2t_s: float = 0.0
    # the model
    score_s: float | None = None
    score_rows: int = 0
    score_grow_mb: float = 0.0
    full_s: float | None = None
    full_rows: int = 0
    full_grow_mb: float = 0.0
    full_skipped: str | None = None
    peers: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    trust: np.ndarray | None = None

    @property
    def build_prop_s(self) -> float:
        return self.build.seconds + self.cold.seconds

    @property
    def warm_total_s(self) -> float:
        return self.append_s + self.rebuild_s + self.warm_s

    @property
    def cold_total_new_s(self) -> float:
        return self.rebuild_s + self.cold_new_s

    @property
    def inc_total_s(self) -> float:
        return self.inc_update_s + self.inc_prop_s


def _warm_epoch(g: Graph, res: SizeResult, x: np.ndarray) -> None:
    """1% new edges: the incremental epoch and the rebuild epoch, against a cold one.

    *Incremental* (production, ``scoring.incremental``): the previous epoch's
    ``IncrementalTrust`` (built untimed before each run, its build timed once and shown
    apart) takes the new edges with ``add_edges`` (the array update) and propagates
    from the previous trust. *Rebuild* (before it): append the edges to the arrays,
    ``from_edges``, warm propagate. *Cold*: ``from_edges`` of all edges and propagate
    from the seeds. Propagation with its default threads; 1 thread also, for reference.
    """
    n = g.n
    k = max(1, int(g.m * NEW_EDGE_SHARE))
    new_src, new_dst, new_w, _ = g.more_edges(k)

    def append() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (np.concatenate([g.src, new_src]), np.concatenate([g.dst, new_dst]),
                np.concatenate([g.weight, new_w]))

    def warm_epoch() -> tuple[Any, float, float, Any]:
        t0 = time.perf_counter()
        src2, dst2, w2 = append()
        t1 = time.perf_counter()
        tm2 = TrustMatrix.from_edges(n, src2, dst2, w2)
        t2 = time.perf_counter()
        return tm2, t1 - t0, t2 - t1, tm2.propagate(g.seeds, alpha=ALPHA, tol=TOL, x0=x)

    runs = []
    for _ in range(REPEAT):  # the run with the median total is reported
        (tm2, append_s, rebuild_s, warm), t_warm = timed(warm_epoch)
        runs.append((t_warm.seconds, append_s, rebuild_s, t_warm.grow_mb))
    total, res.append_s, res.rebuild_s, _ = sorted(runs)[len(runs) // 2]
    res.warm_s = total - res.append_s - res.rebuild_s
    res.warm_iters = warm.iterations
    res.warm_grow_mb = runs[0][3]
    cold_new, t_cold_new = timed(partial(tm2.propagate, g.seeds, alpha=ALPHA, tol=TOL), REPEAT)
    res.cold_new_s, res.cold_new_iters = t_cold_new.seconds, cold_new.iterations
    _, t_cold_new1 = timed(partial(tm2.propagate, g.seeds, alpha=ALPHA, tol=TOL, threads=1),
                           REPEAT)
    res.cold_new_1t_s = t_cold_new1.seconds
    # How far the previous trust is from the new answer (the warm start's head start).
    res.warm_first_residual = float(np.abs(x - cold_new.trust).sum())
    del tm2, warm

    # The incremental epoch: add_edges + propagate, no rebuild.
    inc, t_inc_build = timed(lambda: IncrementalTrust(n, g.src, g.dst, g.weight))
    res.inc_build_s, res.inc_build_grow_mb = t_inc_build.seconds, t_inc_build.grow_mb
    updates: list[Timed] = []
    for i in range(REPEAT):
        if i:  # add_edges changes the instance: each run starts from a fresh one
            del inc
            _trim()
            inc = IncrementalTrust(n, g.src, g.dst, g.weight)
        _, t_update = timed(partial(inc.add_edges, new_src, new_dst, new_w))
        updates.append(t_update)
    res.inc_update_s = float(np.median([t.seconds for t in updates]))
    res.inc_update_grow_mb = updates[0].grow_mb
    res.inc_delta_nnz = inc.delta_nnz
    inc_res, t_inc = timed(partial(inc.propagate, g.seeds, alpha=ALPHA, tol=TOL, x0=x), REPEAT)
    inc_res1, t_inc1 = timed(partial(inc.propagate, g.seeds, alpha=ALPHA, tol=TOL, x0=x,
                                     threads=1), REPEAT)
    res.inc_prop_s, res.inc_prop_1t_s, res.inc_iters = (
        t_inc.seconds, t_inc1.seconds, inc_res.iterations)
    if not np.array_equal(inc_res.trust, inc_res1.trust):
        raise RuntimeError("the incremental propagation differs between 1 and default threads")
    res.inc_max_diff = float(np.abs(inc_res.trust - cold_new.trust).max())
    # Warm and cold runs stop at different points within the tolerance: each is within
    # (1 - alpha) / alpha * tol of the fixed point in L1 (TrustMatrix.propagate), so
    # they may differ by twice that (seen: 1.7e-12 at 1,000 accounts).
    bound = 2 * (1 - ALPHA) / ALPHA * TOL
    if res.inc_max_diff > bound:
        raise RuntimeError(f"incremental trust differs from a fresh build by {res.inc_max_diff}")
    _, t_merge = timed(inc.merge)  # 1% stays below the 5% merge threshold: forced here
    res.inc_merge_s = t_merge.seconds
    del inc
    # With the edge -> position map: its cost on add_edges, and a reweight of every edge.
    tracked = IncrementalTrust(n, g.src, g.dst, g.weight, track_edges=True)
    _, t_tracked = timed(partial(tracked.add_edges, new_src, new_dst, new_w))
    res.inc_tracked_update_s = t_tracked.seconds
    decayed = np.concatenate([g.weight, new_w]) * g.rng.uniform(0.5, 1.0, g.m + k)
    _, t_reweight = timed(partial(tracked.reweight, decayed), REPEAT)
    res.inc_reweight_s = t_reweight.seconds
    del tracked
    note(f"N={n:,}: rebuild epoch {res.warm_total_s:.2f} s ({res.warm_iters} it), incremental "
         f"{res.inc_update_s + res.inc_prop_s:.2f} s ({res.inc_iters} it) against cold "
         f"{res.cold_total_new_s:.2f} s ({res.cold_new_iters} it)")


def bench_size(g: Graph, bandwidth: float, profile_dir: Path | None, model_limit_s: float,
               previous: dict[str, tuple[int, float]]) -> SizeResult:
    n = g.n
    ticks = _cpu_ticks()
    tm, t_build = timed(lambda: TrustMatrix.from_edges(n, g.src, g.dst, g.weight), REPEAT)
    cold, t_cold = timed(lambda: tm.propagate(g.seeds, alpha=ALPHA, tol=TOL), REPEAT)
    seed_idx, seed_p = tm.seed_distribution(g.seeds)
    # The floor runs on the product propagate uses (same thread count), so that the ratio
    # measures the loop's overhead, not the threads.
    matvec = product([tm.matrix])
    (bare_x, bare_iters), t_bare = timed(
        lambda: bare_iteration(tm.matrix, tm.dangling, seed_idx, seed_p, TOL, matvec=matvec),
        REPEAT)
    diff = float(np.abs(bare_x / bare_x.sum() - cold.trust).max())
    if diff > 1e-12:
        raise RuntimeError(f"bare iteration differs from propagate by {diff:.2e}")
    cold6, t_cold6 = timed(lambda: tm.propagate(g.seeds, alpha=ALPHA, tol=TOL_DESIGN), REPEAT)
    (_, bare6_iters), t_bare6 = timed(
        lambda: bare_iteration(tm.matrix, tm.dangling, seed_idx, seed_p, TOL_DESIGN,
                               matvec=matvec), REPEAT)
    x = np.asarray(cold.trust)
    res = SizeResult(
        n=n, m=g.m, nnz=tm.matrix.nnz, index_dtype=str(tm.matrix.indices.dtype),
        build=t_build, cold=t_cold, cold_iters=cold.iterations,
        bare_s=t_bare.seconds, bare_iters=bare_iters,
        cold6_s=t_cold6.seconds, cold6_iters=cold6.iterations,
        bare6_s=t_bare6.seconds, bare6_iters=bare6_iters,
        spmv_ms=spmv_ms(tm.matrix, x), floor_ms=floor_ms(tm.matrix, bandwidth),
        traced_mb=traced_peak_mb(
            lambda: TrustMatrix.from_edges(n, g.src, g.dst, g.weight).propagate(g.seeds)),
        trust=x, threads=matvec.threads,
    )
    note(f"N={n:,}: build {t_build.seconds:.2f} s, propagate {t_cold.seconds:.2f} s "
         f"({cold.iterations} it, {res.threads} thread(s)), bare {t_bare.seconds:.2f} s "
         f"({bare_iters} it)")

    # build and kernel on the same graph
    m_old, t_copying = timed(lambda: build_copying(n, g.src, g.dst, g.weight), REPEAT)
    if abs(m_old - tm.matrix).max() > 1e-12:
        raise RuntimeError("the previous build differs from from_edges")
    res.build_copying_s = t_copying.seconds
    del m_old
    m32 = sparse.csr_array((tm.matrix.data.astype(np.float32), tm.matrix.indices,
                            tm.matrix.indptr), shape=tm.matrix.shape)
    res.spmv32_ms = spmv_ms(m32, x.astype(np.float32))
    del m32
    res.spmv2t_ms = spmv_threads_ms(tm.matrix, x, 2)
    one, t_one = timed(lambda: tm.propagate(g.seeds, alpha=ALPHA, tol=TOL, threads=1), REPEAT)
    two, t_two = timed(lambda: tm.propagate(g.seeds, alpha=ALPHA, tol=TOL, threads=2), REPEAT)
    if not (np.array_equal(one.trust, two.trust) and np.array_equal(one.trust, cold.trust)):
        raise RuntimeError("propagation on 1 and 2 threads is not bit-identical")
    res.cold_1t_s, res.cold_2t_s = t_one.seconds, t_two.seconds
    del one, two

    _warm_epoch(g, res, x)
    res.others_cpu = others_cpu(ticks)
    note(f"N={n:,}: other processes used {res.others_cpu:.2f} CPUs on average meanwhile")

    _model(g, res, profile_dir, model_limit_s, previous)
    return res


KIND_MIX = {VOTE_ACCOUNT: 0.4, VOTE_CONTENT: 0.3, ENDORSE: 0.15, REVIEW: 0.1, ATTEST: 0.05}
DISTRUST_SHARE = 0.05


def _model(g: Graph, res: SizeResult, profile_dir: Path | None, limit_s: float,
           previous: dict[str, tuple[int, float]]) -> None:
    """``score_accounts`` bare, then as ``renown score`` calls it (distrust, kinds, warm)."""
    n = g.n
    accounts = [f"acct{i:08d}.near" for i in range(n)]
    table = EdgeTable(accounts=accounts, domains=list(DOMAINS), src=g.src, dst=g.dst,
                      weight=g.weight, domain=g.domain)
    seed_ids = [accounts[i] for i in g.seeds.tolist()]
    rows, t_score = timed(lambda: score_accounts(table, seed_ids, alpha=ALPHA, tol=TOL))
    res.score_s, res.score_rows, res.score_grow_mb = t_score.seconds, len(rows), t_score.grow_mb
    note(f"N={n:,}: score_accounts {t_score.seconds:.2f} s, {res.score_rows:,} rows")
    # The previous epoch's trust, as renown.bootstrap hands it over (storage's epoch_trust).
    warm: dict[str, dict[str, float]] = {}
    for row in rows:
        warm.setdefault(row.domain, {})[row.account] = row.trust
    del rows
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
        prof = cProfile.Profile()
        prof.runcall(lambda: score_accounts(table, seed_ids, alpha=ALPHA, tol=TOL))
        prof.dump_stats(str(profile_dir / f"score_accounts_{n}.prof"))
        prof = cProfile.Profile()
        prof.runcall(lambda: TrustMatrix.from_edges(n, g.src, g.dst, g.weight))
        prof.dump_stats(str(profile_dir / f"from_edges_{n}.prof"))

    codes = np.array([KINDS.index(k) for k in KIND_MIX], dtype=np.int8)
    kinds = g.rng.choice(codes, size=g.m, p=list(KIND_MIX.values())).astype(np.int8)
    d_src, d_dst, d_w, d_dom = g.more_edges(int(g.m * DISTRUST_SHARE))
    distrust = EdgeTable(accounts=accounts, domains=list(DOMAINS), src=d_src, dst=d_dst,
                         weight=d_w, domain=d_dom)
    key = "score_accounts(full)"
    if key in previous:
        m_prev, s_prev = previous[key]
        estimate = s_prev * g.m / m_prev * PEER_GROWTH
        if estimate > limit_s:
            res.full_skipped = (f"estimated {estimate:,.0f} s from {s_prev:.1f} s at "
                                f"{m_prev:,} edges")
            note(f"N={n:,}: full score_accounts skipped ({res.full_skipped})")
            return

    def full() -> int:
        out = score_accounts(table, seed_ids, alpha=ALPHA, tol=TOL, distrust=distrust, beta=1.0,
                             warm=warm, kinds=kinds)
        return len(out)

    full_rows, t_full = timed(full)
    res.full_s, res.full_rows, res.full_grow_mb = t_full.seconds, full_rows, t_full.grow_mb
    previous[key] = (g.m, t_full.seconds)
    note(f"N={n:,}: score_accounts with distrust, kinds (explanations) and warm start "
         f"{t_full.seconds:.2f} s, {full_rows:,} rows")
    if profile_dir is not None:
        prof = cProfile.Profile()
        prof.runcall(lambda: score_accounts(table, seed_ids, alpha=ALPHA, tol=TOL,
                                            distrust=distrust, beta=1.0, warm=warm, kinds=kinds))
        prof.dump_stats(str(profile_dir / f"score_accounts_full_{n}.prof"))


# --- peers ---------------------------------------------------------------------------


def run_networkx(g: Graph, trust: np.ndarray) -> dict[str, Any]:
    import networkx as nx

    s, d, w = summed_edges(g.n, g.src, g.dst, g.weight)

    def build() -> Any:
        graph = nx.DiGraph()
        graph.add_nodes_from(range(g.n))
        graph.add_weighted_edges_from(zip(s.tolist(), d.tolist(), w.tolist(), strict=True))
        return graph

    graph, t_build = timed(build)
    p = dict.fromkeys(g.seeds.tolist(), 1.0 / g.seeds.size)

    def run() -> dict[int, float]:
        return nx.pagerank(graph, alpha=1.0 - ALPHA, personalization=p, dangling=p,
                           tol=TOL / g.n, max_iter=1000, weight="weight")

    pr, t_run = timed(run)
    got = np.fromiter((pr[i] for i in range(g.n)), dtype=np.float64, count=g.n)
    return {"build_s": t_build.seconds, "run_s": t_run.seconds,
            "grow_mb": max(t_build.grow_mb, t_run.grow_mb),
            "max_diff": float(np.abs(got - trust).max())}


def run_igraph(g: Graph, trust: np.ndarray) -> dict[str, Any]:
    import igraph as ig

    s, d, w = summed_edges(g.n, g.src, g.dst, g.weight)

    def build() -> Any:
        # a list of tuples: igraph walks a numpy edge array 2.5x slower
        graph = ig.Graph(n=g.n, edges=list(zip(s.tolist(), d.tolist(), strict=True)),
                         directed=True)
        graph.es["weight"] = w.tolist()
        return graph

    graph, t_build = timed(build)
    seeds = g.seeds.tolist()

    def run() -> list[float]:
        return graph.personalized_pagerank(directed=True, damping=1.0 - ALPHA,
                                           reset_vertices=seeds, weights="weight",
                                           implementation="prpack")

    pr, t_run = timed(run)
    got = np.asarray(pr)
    return {"build_s": t_build.seconds, "run_s": t_run.seconds,
            "grow_mb": max(t_build.grow_mb, t_run.grow_mb),
            "max_diff": float(np.abs(got - trust).max())}


PEERS: dict[str, Callable[[Graph, np.ndarray], dict[str, Any]]] = {
    "networkx": run_networkx,
    "igraph": run_igraph,
}
PEER_GROWTH = 1.3  # assumed superlinearity when extrapolating a peer's time to a larger graph


def run_peers(g: Graph, res: SizeResult, peers: Sequence[str], limit_s: float,
              previous: dict[str, tuple[int, float]]) -> None:
    assert res.trust is not None
    for name in peers:
        if name in previous:
            m_prev, s_prev = previous[name]
            estimate = s_prev * (g.m / m_prev) * PEER_GROWTH
            if estimate > limit_s:
                res.peers[name] = {"skipped": f"estimated {estimate:,.0f} s from "
                                              f"{s_prev:.1f} s at {m_prev:,} edges"}
                note(f"N={g.n:,}: {name} skipped ({res.peers[name]['skipped']})")
                continue
        try:
            out = PEERS[name](g, res.trust)
        except ImportError as exc:
            res.peers[name] = {"skipped": f"not installed ({exc})"}
            continue
        res.peers[name] = out
        previous[name] = (g.m, out["build_s"] + out["run_s"])
        note(f"N={g.n:,}: {name} build {out['build_s']:.2f} s, run {out['run_s']:.2f} s, "
             f"max abs diff {out['max_diff']:.1e}")
        gc.collect()


# --- loading evidence from a database ------------------------------------------------


@dataclasses.dataclass
class Rows:
    """R synthetic evidence rows: direct account votes (80%) and endorsements (20%)."""

    accounts: int
    src: np.ndarray  # account ids (1-based, as in the accounts table)
    dst: np.ndarray
    kind: np.ndarray  # 0 vote_account, 1 endorse
    value: np.ndarray
    weight: np.ndarray
    ts_ns: np.ndarray
    domain: np.ndarray  # index into DOMAINS; 0 is stored as NULL (the default domain)

    @property
    def n(self) -> int:
        return int(self.src.shape[0])


ROW_KINDS = (VOTE_ACCOUNT, ENDORSE)
T0_NS = 1_790_000_000 * 10**9


def make_rows(r: int, edges_per_node: int) -> Rows:
    g = make_graph(max(10, r // edges_per_node), edges_per_node, seed=11)
    k = g.m if g.m <= r else r
    rng = g.rng
    kind = (rng.random(k) < 0.2).astype(np.int8)
    weight = np.where(kind == 1, rng.uniform(0.5, 2.0, k), 1.0)
    value = np.where(rng.random(k) < 0.95, 1, -1).astype(np.int8)
    ts = T0_NS + rng.integers(0, 365 * 86_400 * 10**9, k)
    return Rows(g.n, g.src[:k].astype(np.int64) + 1, g.dst[:k].astype(np.int64) + 1, kind,
                value, weight, ts, g.domain[:k])


def _accounts_rows(rows: Rows) -> Iterator[tuple[int, str, int]]:
    for i in range(1, rows.accounts + 1):
        yield i, f"acct{i:08d}.near", T0_NS


def _interaction_rows(rows: Rows, chunk: int = 1_000_000) -> Iterator[tuple[Any, ...]]:
    """(id, event_id, kind, src_id, dst_id, domain, value, weight, ts_ns), kind as a name."""
    doms = [None, *DOMAINS[1:]]
    for lo in range(0, rows.n, chunk):
        hi = min(rows.n, lo + chunk)
        yield from zip(
            range(lo + 1, hi + 1), range(lo + 1, hi + 1),
            [ROW_KINDS[k] for k in rows.kind[lo:hi].tolist()],
            rows.src[lo:hi].tolist(), rows.dst[lo:hi].tolist(),
            [doms[d] for d in rows.domain[lo:hi].tolist()], rows.value[lo:hi].tolist(),
            rows.weight[lo:hi].tolist(), rows.ts_ns[lo:hi].tolist(), strict=True)


CONTRACT = "renown.near"
_INTERACTION_COLS = "id, event_id, contract_id, kind, src_id, dst_id, domain, value, weight, ts_ns"


def _pgcopy_interactions(rows: Rows) -> Iterator[bytes]:
    """The rows as a PGCOPY binary stream, built with numpy one (kind, domain) group at a time.

    Within a group every row has the same byte layout (the text columns are constant), so
    a structured array is the stream: no Python object per row.
    """
    yield b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
    ids = np.arange(1, rows.n + 1, dtype=np.int64)
    for k, kind in enumerate(ROW_KINDS):
        for d in range(len(DOMAINS)):
            sel = np.flatnonzero((rows.kind == k) & (rows.domain == d))
            if not sel.size:
                continue
            texts = {"contract_id": CONTRACT.encode(), "kind": kind.encode(),
                     "domain": DOMAINS[d].encode() if d else None}
            fields: list[tuple[str, str]] = [("nfields", ">i2")]
            values: dict[str, Any] = {"nfields": 10}
            for col, code, value in (
                    ("id", ">i8", ids[sel]), ("event_id", ">i8", ids[sel]),
                    ("contract_id", "", None), ("kind", "", None),
                    ("src_id", ">i4", rows.src[sel]), ("dst_id", ">i4", rows.dst[sel]),
                    ("domain", "", None), ("value", ">i2", rows.value[sel]),
                    ("weight", ">f8", rows.weight[sel]), ("ts_ns", ">i8", rows.ts_ns[sel])):
                if code:
                    fields += [(f"len_{col}", ">i4"), (col, code)]
                    values[f"len_{col}"] = np.dtype(code).itemsize
                    values[col] = value
                elif texts[col] is None:  # NULL: length -1, no bytes
                    fields.append((f"len_{col}", ">i4"))
                    values[f"len_{col}"] = -1
                else:
                    raw = texts[col]
                    assert raw is not None
                    fields += [(f"len_{col}", ">i4"), (col, f"S{len(raw)}")]
                    values[f"len_{col}"] = len(raw)
                    values[col] = raw
            rec = np.empty(sel.size, dtype=np.dtype(fields))
            for name, value in values.items():
                rec[name] = value
            yield rec.tobytes()
    yield (-1).to_bytes(2, "big", signed=True)


_EVENT_COLS = ("id, receipt_id, log_index, data_index, part, standard, version, name, "
               "block_height, block_timestamp_ns, contract_id, predecessor_id, payload")
# receipt ids zero-padded, so that the unique index is appended to in order
_PG_EVENTS = (f"INSERT INTO events ({_EVENT_COLS}) SELECT g, 'r' || lpad(g::text, 12, '0'), "
              "0, 0, 0, 'renown', '1.0.0', 'vote_cast', g, g, 'renown.near', 'x.near', '{}' "
              "FROM generate_series(1, %s) g")
_SQLITE_EVENTS = (f"WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < ?) "
                  f"INSERT INTO events ({_EVENT_COLS}) SELECT g, printf('r%012d', g), 0, 0, 0, "
                  "'renown', '1.0.0', 'vote_cast', g, g, 'renown.near', 'x.near', '{}' FROM s")
_PG_SECONDARY_INDEXES = """
SELECT i.relname, pg_get_indexdef(i.oid)
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace ns ON ns.oid = t.relnamespace
WHERE ns.nspname = current_schema() AND t.relname IN ('events', 'interactions')
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid)
"""


@contextlib.contextmanager
def pg_database(base_url: str, rows: Rows) -> Iterator[Engine]:
    """A fresh, migrated schema holding ``rows`` (untimed setup); dropped at the end.

    Bulk load as a restore would do it: the secondary indexes of ``events`` and
    ``interactions`` are dropped and re-created after the COPY from their own definitions,
    and foreign-key triggers are off while loading (the data is consistent by
    construction). Then VACUUM ANALYZE, so the planner has statistics.
    """
    schema = f"bench_scoring_{uuid.uuid4().hex[:10]}"
    admin = make_engine(base_url, isolation_level="AUTOCOMMIT")
    engine: Engine | None = None
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in base_url else "?"
        engine = make_engine(f"{base_url}{sep}options=-csearch_path%3D{schema}")
        migrate.upgrade(engine)
        started = time.perf_counter()
        raw = engine.raw_connection()
        try:
            pg = raw.driver_connection
            assert pg is not None
            with pg.cursor() as cur:
                cur.execute(_PG_SECONDARY_INDEXES)
                indexes = cur.fetchall()
                for name, _ in indexes:
                    cur.execute(f'DROP INDEX "{name}"')
                cur.execute("SET session_replication_role = replica")  # no FK triggers
                with cur.copy("COPY accounts (id, account_id, first_seen_ns) FROM STDIN") as cp:
                    for row in _accounts_rows(rows):
                        cp.write_row(row)
                cur.execute(_PG_EVENTS % rows.n)
                with cur.copy(f"COPY interactions ({_INTERACTION_COLS}) FROM STDIN "
                              "(FORMAT BINARY)") as cp:
                    for block in _pgcopy_interactions(rows):
                        cp.write(block)
                for _, definition in indexes:
                    cur.execute(definition)
            pg.commit()
        finally:
            raw.close()
        with admin.connect() as conn:
            for table in ("accounts", "events", "interactions"):
                conn.execute(text(f'VACUUM ANALYZE "{schema}".{table}'))
            count = conn.execute(text(f'SELECT count(*) FROM "{schema}".interactions')).scalar()
        if count != rows.n:
            raise RuntimeError(f"PostgreSQL setup wrote {count} interactions, not {rows.n}")
        note(f"PostgreSQL: {rows.n:,} rows written in {time.perf_counter() - started:.0f} s "
             "(not timed)")
        yield engine
    finally:
        if engine is not None:
            engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@contextlib.contextmanager
def sqlite_database(rows: Rows) -> Iterator[Engine]:
    """A temporary SQLite file, migrated, holding ``rows`` (untimed setup, executemany).

    As for PostgreSQL, the secondary indexes are dropped while loading and re-created from
    their own definitions, and foreign keys are not checked while loading.
    """
    with tempfile.TemporaryDirectory(prefix="renown-bench-") as tmp:
        path = Path(tmp) / "bench.db"
        engine = make_engine(f"sqlite:///{path}")
        migrate.upgrade(engine)
        engine.dispose()
        started = time.perf_counter()
        con = sqlite3.connect(path, isolation_level=None)
        try:
            con.execute("PRAGMA foreign_keys=OFF")
            con.execute("PRAGMA synchronous=OFF")
            indexes = con.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                "AND tbl_name IN ('events', 'interactions')").fetchall()
            con.execute("BEGIN")
            for name, _ in indexes:
                con.execute(f'DROP INDEX "{name}"')
            con.executemany("INSERT INTO accounts (id, account_id, first_seen_ns) VALUES (?,?,?)",
                            _accounts_rows(rows))
            con.execute(_SQLITE_EVENTS, (rows.n,))
            con.executemany(
                f"INSERT INTO interactions ({_INTERACTION_COLS}) VALUES "
                f"(?, ?, '{CONTRACT}', ?, ?, ?, ?, ?, ?, ?)", _interaction_rows(rows))
            for _, definition in indexes:
                con.execute(definition)
            con.execute("COMMIT")
            con.execute("ANALYZE")
            count = con.execute("SELECT count(*) FROM interactions").fetchone()[0]
        finally:
            con.close()
        if count != rows.n:
            raise RuntimeError(f"SQLite setup wrote {count} interactions, not {rows.n}")
        note(f"SQLite: {rows.n:,} rows written in {time.perf_counter() - started:.0f} s "
             "(not timed)")
        engine = make_engine(f"sqlite:///{path}")
        try:
            yield engine
        finally:
            engine.dispose()


# The loader load_evidence replaced, for --previous: the same query as Python rows.


def rowwise_load_evidence(session: Session, through_event_id: int) -> Evidence:
    """``load_evidence`` as it was before ``storage.evidence_load`` (commit 737f908).

    SQLAlchemy rows copied into numpy in a Python loop, account ids mapped with
    ``np.searchsorted``: 70M Python objects at 10M rows.
    """
    id_rows = session.execute(select(Account.id, Account.account_id).order_by(Account.id)).all()
    ids = np.fromiter((r[0] for r in id_rows), dtype=np.int64, count=len(id_rows))
    accounts = [r[1] for r in id_rows]
    rows = session.execute(
        text(_EVIDENCE_SQL), {"general": DEFAULT_DOMAIN, "through": through_event_id}
    ).all()
    kind_code = {k: i for i, k in enumerate(KINDS)}
    domains: dict[str, int] = {}
    n = len(rows)
    src = np.empty(n, dtype=np.int64)
    dst = np.empty(n, dtype=np.int64)
    kind = np.empty(n, dtype=np.int8)
    value = np.empty(n, dtype=np.int8)
    weight = np.empty(n, dtype=np.float64)
    ts = np.empty(n, dtype=np.int64)
    dom = np.empty(n, dtype=np.int32)
    for i, (s, d, k, v, w, t, domain, _key) in enumerate(rows):
        src[i], dst[i], kind[i], value[i], weight[i], ts[i] = s, d, kind_code[k], v, w, t
        dom[i] = domains.setdefault(domain, len(domains))
    return Evidence(
        accounts=accounts, domains=list(domains),
        src=np.searchsorted(ids, src).astype(np.int32),
        dst=np.searchsorted(ids, dst).astype(np.int32),
        kind=kind, value=value, weight=weight, ts_ns=ts, domain=dom,
    )


def matches_rows(ev: Evidence, rows: Rows) -> bool:
    """``ev`` holds exactly the rows written: same accounts, same rows up to order."""
    if len(ev) != rows.n or ev.accounts != [name for _, name, _ in _accounts_rows(rows)]:
        return False
    dom_code = np.array([DOMAINS.index(d) if d in DOMAINS else -1 for d in ev.domains])
    kind_code = np.array([KINDS.index(k) for k in ROW_KINDS], dtype=np.int8)
    want = (rows.src - 1, rows.dst - 1, kind_code[rows.kind], rows.value, rows.weight,
            rows.ts_ns, rows.domain)
    got = (ev.src, ev.dst, ev.kind, ev.value, ev.weight, ev.ts_ns,
           dom_code[ev.domain] if len(ev) else ev.domain)

    def canon(cols: tuple[np.ndarray, ...]) -> list[np.ndarray]:
        order = np.lexsort(cols[::-1])
        return [np.asarray(c)[order] for c in cols]

    return all(np.array_equal(a, b) for a, b in zip(canon(want), canon(got), strict=True))


@dataclasses.dataclass
class LoadResult:
    database: str
    rows: int
    seconds: float  # load_evidence, median of LOAD_REPEAT
    grow_mb: float
    same: bool  # load_evidence's evidence matches the rows written
    previous_seconds: float | None = None  # the row-wise loader (--previous)
    previous_grow_mb: float | None = None
    previous_same: bool | None = None


LOAD_REPEAT = 3


def time_loads(label: str, engine: Engine, rows: Rows, previous: bool) -> LoadResult:
    factory = make_session_factory(engine)
    with factory() as session:
        through = latest_event_id(session)

    def load(fn: Callable[[Session, int], Evidence]) -> Evidence:
        with factory() as session:  # a new transaction, as renown score has
            return fn(session, through)

    ev, t = timed(lambda: load(load_evidence), repeat=LOAD_REPEAT)
    result = LoadResult(label, rows.n, t.seconds, t.grow_mb, matches_rows(ev, rows))
    del ev
    if previous:
        _trim()
        old, t_old = timed(lambda: load(rowwise_load_evidence))
        result.previous_seconds, result.previous_grow_mb = t_old.seconds, t_old.grow_mb
        result.previous_same = matches_rows(old, rows)
        del old
    note(f"{label}: load_evidence {rows.n:,} rows {t.seconds:.2f} s (median of "
         f"{LOAD_REPEAT}), matches the rows written: {result.same}"
         + ("" if result.previous_seconds is None else
            f"; row-wise {result.previous_seconds:.2f} s, matches: {result.previous_same}"))
    return result


# --- printing ------------------------------------------------------------------------


def print_table(head: Sequence[str], body: Sequence[Sequence[str]]) -> None:
    print(markdown_table(head, body))
    print()


def _n(x: int) -> str:
    return f"{x:,}"


def report(results: Sequence[SizeResult], loads: Sequence[LoadResult], peers: Sequence[str],
           bandwidth: float) -> list[str]:
    """Print the tables; return the targets' verdicts."""
    print("### Build and propagation (tol 1e-10 unless said)\n")
    print_table(
        ("accounts", "edges", "build s", "propagate s", "threads", "iters", "ms/iter",
         "bare s", "bare iters", "ratio", "SpMV ms", "floor ms", "build+prop s",
         "RSS grow MB", "traced MB"),
        [(_n(r.n), _n(r.m), f"{r.build.seconds:.3f}", f"{r.cold.seconds:.3f}", str(r.threads),
          str(r.cold_iters), f"{1000 * r.cold.seconds / r.cold_iters:.2f}", f"{r.bare_s:.3f}",
          str(r.bare_iters), f"{r.cold.seconds / r.bare_s:.2f}", f"{r.spmv_ms:.2f}",
          f"{r.floor_ms:.2f}", f"{r.build_prop_s:.2f}",
          f"{max(r.build.grow_mb, r.cold.grow_mb):,.0f}", f"{r.traced_mb:,.0f}")
         for r in results])
    print("### At DESIGN.md's tolerance (1e-6)\n")
    print_table(
        ("accounts", "propagate s", "iters", "bare s", "bare iters", "ratio"),
        [(_n(r.n), f"{r.cold6_s:.3f}", str(r.cold6_iters), f"{r.bare6_s:.3f}",
          str(r.bare6_iters), f"{r.cold6_s / r.bare6_s:.2f}") for r in results])
    print("### Build and kernel (SpMV and ms/iter on 1 and 2 threads)\n")
    print_table(
        ("accounts", "previous build s", "build s", "SpMV ms", "SpMV 2 threads ms",
         "SpMV f32 ms", "floor ms", "ms/iter", "2-thread ms/iter", "2-thread iter / floor"),
        [(_n(r.n), f"{r.build_copying_s:.3f}", f"{r.build.seconds:.3f}", f"{r.spmv_ms:.2f}",
          f"{r.spmv2t_ms:.2f}", f"{r.spmv32_ms:.2f}", f"{r.floor_ms:.2f}",
          f"{1000 * r.cold_1t_s / r.cold_iters:.2f}",
          f"{1000 * r.cold_2t_s / r.cold_iters:.2f}",
          f"{1000 * r.cold_2t_s / r.cold_iters / r.floor_ms:.1f}") for r in results])
    print("### Warm epoch after 1% new edges (propagation on its default threads)\n")
    print_table(
        ("accounts", "cold s", "cold iters", "rebuild epoch s", "rebuild / cold",
         "add_edges s", "propagate s", "iters", "incremental s", "incremental / cold",
         "L1 head start", "max abs diff", "rebuild RSS grow MB"),
        [(_n(r.n), f"{r.cold_total_new_s:.3f}", str(r.cold_new_iters), f"{r.warm_total_s:.3f}",
          f"{r.warm_total_s / r.cold_total_new_s:.2f}", f"{r.inc_update_s:.4f}",
          f"{r.inc_prop_s:.3f}", str(r.inc_iters), f"{r.inc_total_s:.3f}",
          f"{r.inc_total_s / r.cold_total_new_s:.2f}", f"{r.warm_first_residual:.1e}",
          f"{r.inc_max_diff:.1e}", f"{r.warm_grow_mb:,.0f}")
         for r in results])
    print("Incremental epoch, details (1 thread; the structure's own costs):\n")
    print_table(
        ("accounts", "threads", "1-thread cold s", "1-thread incremental s",
         "1-thread incremental / cold", "IncrementalTrust build s", "build RSS grow MB",
         "add_edges RSS grow MB", "delta pairs", "merge s", "add_edges tracked s",
         "reweight s", "others' CPUs"),
        [(_n(r.n), str(r.threads), f"{r.rebuild_s + r.cold_new_1t_s:.3f}",
          f"{r.inc_update_s + r.inc_prop_1t_s:.3f}",
          f"{(r.inc_update_s + r.inc_prop_1t_s) / (r.rebuild_s + r.cold_new_1t_s):.2f}",
          f"{r.inc_build_s:.3f}", f"{r.inc_build_grow_mb:,.0f}",
          f"{r.inc_update_grow_mb:,.1f}", _n(r.inc_delta_nnz),
          f"{r.inc_merge_s:.3f}", f"{r.inc_tracked_update_s:.4f}", f"{r.inc_reweight_s:.3f}",
          f"{r.others_cpu:.2f}")
         for r in results])
    print("### The model: score_accounts (global + 3 domains)\n")
    print_table(
        ("accounts", "bare s", "rows", "µs/row", "RSS grow MB", "as renown score calls it s",
         "µs/row", "RSS grow MB"),
        [(_n(r.n), f"{r.score_s:.2f}", _n(r.score_rows),
          f"{1e6 * (r.score_s or 0) / max(r.score_rows, 1):.1f}", f"{r.score_grow_mb:,.0f}",
          *(("skipped", "-", "-") if r.full_s is None else
            (f"{r.full_s:.2f}", f"{1e6 * r.full_s / max(r.full_rows, 1):.1f}",
             f"{r.full_grow_mb:,.0f}")))
         for r in results])
    for r in results:
        if r.full_skipped:
            print(f"- skipped: score_accounts as renown score calls it at {r.n:,} accounts: "
                  f"{r.full_skipped}")
    skipped: list[str] = []
    if peers:
        print("### Peers (same graph, same seeds, teleport and dangling rule)\n")
        head = ["accounts"]
        for p in peers:
            head += [f"{p} build s", f"{p} run s", f"{p} max abs diff", f"{p} RSS grow MB"]
        body = []
        for r in results:
            row = [_n(r.n)]
            for p in peers:
                out = r.peers.get(p, {"skipped": "not run"})
                if "skipped" in out:
                    row += ["skipped", "skipped", "-", "-"]
                    skipped.append(f"{p} at {r.n:,} accounts: {out['skipped']}")
                else:
                    row += [f"{out['build_s']:.2f}", f"{out['run_s']:.2f}",
                            f"{out['max_diff']:.1e}", f"{out['grow_mb']:,.0f}"]
            body.append(row)
        print_table(head, body)
    for line in skipped:
        print(f"- skipped: {line}")
    if skipped:
        print()
    if loads:
        print("### Loading evidence (storage.scoring_repo.load_evidence)\n")

        def prev(lr: LoadResult) -> tuple[str, str, str]:
            if lr.previous_seconds is None or lr.previous_grow_mb is None:
                return "-", "-", "-"
            return (f"{lr.previous_seconds:.2f}", f"{lr.previous_grow_mb:,.0f}",
                    f"{lr.previous_seconds / lr.seconds:.1f}x")

        print_table(
            ("database", "rows", "load_evidence s", "rows/s", "RSS grow MB", "row-wise s",
             "row-wise RSS grow MB", "speed-up", "matches rows written"),
            [(lr.database, _n(lr.rows), f"{lr.seconds:.2f}", f"{lr.rows / lr.seconds:,.0f}",
              f"{lr.grow_mb:,.0f}", *prev(lr),
              str(lr.same) + ("" if lr.previous_same in (None, True) else
                              " (row-wise: False)")) for lr in loads])

    verdicts: list[str] = []
    big = max(results, key=lambda r: r.n)
    grow = max(big.build.grow_mb, big.cold.grow_mb)
    ok = big.build_prop_s < 3.0 and grow < 1024
    verdicts.append(
        f"build + propagation at {big.n:,} accounts / {big.m:,} edges < 3 s and < 1 GB: "
        f"{'met' if ok else 'NOT met'} ({big.build_prop_s:.2f} s, {grow:,.0f} MB RSS growth, "
        f"{big.traced_mb:,.0f} MB traced)")
    ratio = big.cold.seconds / big.bare_s
    verdicts.append(f"propagation within 1.5x of the bare iteration: "
                    f"{'met' if ratio <= 1.5 else 'NOT met'} ({ratio:.2f}x)")
    per_iter = 1000 * big.cold.seconds / big.cold_iters
    verdicts.append(
        f"stretch, per iteration within 3x the memory-bandwidth floor: "
        f"{'met' if per_iter <= 3 * big.floor_ms else 'NOT met'} ({per_iter:.1f} ms on "
        f"{big.threads} thread(s) against a floor of {big.floor_ms:.1f} ms at "
        f"{bandwidth:.1f} GB/s: {per_iter / big.floor_ms:.1f}x; 1 thread "
        f"{1000 * big.cold_1t_s / big.cold_iters / big.floor_ms:.1f}x, 2 threads "
        f"{1000 * big.cold_2t_s / big.cold_iters / big.floor_ms:.1f}x)")
    wr = big.inc_total_s / big.cold_total_new_s
    wr1 = (big.inc_update_s + big.inc_prop_1t_s) / (big.rebuild_s + big.cold_new_1t_s)
    verdicts.append(f"warm start <= 30% of cold after 1% new edges, array update counted: "
                    f"{'met' if wr <= 0.3 else 'NOT met'} ({100 * wr:.0f}% incremental on "
                    f"{big.threads} thread(s), {100 * wr1:.0f}% on 1 thread; rebuild epoch "
                    f"{100 * big.warm_total_s / big.cold_total_new_s:.0f}%)")
    pg10 = [lr for lr in loads if lr.database == "PostgreSQL" and lr.rows >= 10_000_000]
    if pg10:
        lr = pg10[0]
        was = ("" if lr.previous_seconds is None else
               f"; the row-wise loader {lr.previous_seconds:.1f} s")
        verdicts.append(f"load 10M edges from PostgreSQL < 20 s: "
                        f"{'met' if lr.seconds < 20 else 'NOT met'} ({lr.seconds:.1f} s, "
                        f"median of {LOAD_REPEAT}, +{lr.grow_mb:,.0f} MB RSS{was})")
    print("### Targets\n")
    for v in verdicts:
        print(f"- {v}")
    return verdicts


# --- main ----------------------------------------------------------------------------


def _sizes(s: str) -> list[int]:
    return [int(x.replace("_", "")) for x in s.split(",") if x.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=_sizes, default=[10_000, 100_000, 1_000_000],
                        help="accounts per graph, comma separated")
    parser.add_argument("--edges-per-node", type=int, default=10)
    parser.add_argument("--peers", default="networkx,igraph",
                        help="comma separated, from: " + ", ".join(PEERS) + " (empty: none)")
    parser.add_argument("--peer-limit-s", type=float, default=600.0,
                        help="skip a peer estimated to take longer than this at a size")
    parser.add_argument("--model-limit-s", type=float, default=300.0,
                        help="skip the full score_accounts where it is estimated to take longer")
    parser.add_argument("--db-rows", type=_sizes, default=[1_000_000, 10_000_000],
                        help="evidence rows to load from each database")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL,
                        help="PostgreSQL server to create a scratch schema on")
    parser.add_argument("--skip-db", action="store_true")
    parser.add_argument("--skip-pg", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--previous", action="store_true",
                        help="also time the row-wise loader load_evidence replaced (slow: "
                             "38-60 s and +6.3-7 GB RSS at 10M rows)")
    parser.add_argument("--profile", metavar="DIR", type=Path,
                        help="also write cProfile stats of score_accounts and from_edges")
    args = parser.parse_args(argv)
    peers = [p for p in args.peers.split(",") if p]
    unknown = set(peers) - set(PEERS)
    if unknown:
        parser.error(f"unknown peers: {sorted(unknown)}")

    started = time.perf_counter()
    bandwidth = copy_bandwidth_gbs()
    print(f"Machine: {platform.machine()}, nproc {os.cpu_count()}, Python "
          f"{platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}; "
          f"copy bandwidth {bandwidth:.1f} GB/s; load average at start "
          f"{os.getloadavg()[0]:.2f}\n")
    results: list[SizeResult] = []
    previous: dict[str, tuple[int, float]] = {}
    for n in args.sizes:
        gen_started = time.perf_counter()
        g = make_graph(n, args.edges_per_node)
        note(f"N={n:,}: generated {g.m:,} edges in {time.perf_counter() - gen_started:.1f} s "
             "(not timed)")
        res = bench_size(g, bandwidth, args.profile, args.model_limit_s, previous)
        run_peers(g, res, peers, args.peer_limit_s, previous)
        res.trust = None
        results.append(res)
        del g
        gc.collect()

    loads: list[LoadResult] = []
    if not args.skip_db:
        for r in args.db_rows:
            rows = make_rows(r, args.edges_per_node)
            if not args.skip_pg:
                with pg_database(args.pg_url, rows) as engine:
                    loads.append(time_loads("PostgreSQL", engine, rows, args.previous))
                gc.collect()
            if not args.skip_sqlite:
                with sqlite_database(rows) as engine:
                    loads.append(time_loads("SQLite", engine, rows, args.previous))
                gc.collect()
            del rows

    report(results, loads, peers, bandwidth)
    print(f"\nWhole run: {time.perf_counter() - started:.0f} s; peak RSS of the process "
          f"{max(_PEAK_SEEN_MB, peak_mb()):,.0f} MB; load average at the end "
          f"{os.getloadavg()[0]:.2f} (1 min), {os.getloadavg()[2]:.2f} (15 min).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
