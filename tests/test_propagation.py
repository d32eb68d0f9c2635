"""Seeded trust propagation against networkx, a dense reference and its properties."""

from __future__ import annotations

import random

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse

from scoring import propagation
from scoring.propagation import (
    BlockProduct,
    ConvergenceError,
    PropagationResult,
    TrustMatrix,
    product,
    thread_count,
)

Edge = tuple[int, int, float]

# --------------------------------------------------------------------------- references


def dense_reference(
    n: int,
    edges: list[Edge],
    seeds: list[int],
    seed_weights: list[float] | None,
    alpha: float,
    retain: list[float] | None = None,
) -> list[float]:
    """Slow, pure-Python stationary trust by a direct linear solve.

    Independent of the power iteration under test: it builds the dense matrix
    G = (1-alpha)(M + p d^T) from plain loops and solves (I - G') x = alpha p by
    Gaussian elimination, where G' = (1-alpha)(M + p d^T). With ``retain``, account j
    sends r_j of its trust along its edges and 1 - r_j to the seeds.
    """
    weights = seed_weights if seed_weights is not None else [1.0] * len(seeds)
    p = [0.0] * n
    for s, w in zip(seeds, weights, strict=True):
        p[s] += w
    total_p = sum(p)
    p = [v / total_p for v in p]

    w_out = [[0.0] * n for _ in range(n)]  # w_out[j][i]: weight j -> i
    for s, d, w in edges:
        if s != d:
            w_out[s][d] += w
    beta = 1.0 - alpha
    a = [[0.0] * n for _ in range(n)]  # a[i][j] = I - beta * (M + p d^T)
    for j in range(n):
        out = sum(w_out[j])
        r = 1.0 if retain is None else retain[j]
        for i in range(n):
            step = r * w_out[j][i] / out + (1.0 - r) * p[i] if out > 0 else p[i]
            a[i][j] = (1.0 if i == j else 0.0) - beta * step
    b = [alpha * v for v in p]

    for col in range(n):  # Gaussian elimination with partial pivoting
        pivot = max(range(col, n), key=lambda r: abs(a[r][col]))
        a[col], a[pivot] = a[pivot], a[col]
        b[col], b[pivot] = b[pivot], b[col]
        for r in range(col + 1, n):
            f = a[r][col] / a[col][col]
            if f:
                for c in range(col, n):
                    a[r][c] -= f * a[col][c]
                b[r] -= f * b[col]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        x[r] = (b[r] - sum(a[r][c] * x[c] for c in range(r + 1, n))) / a[r][r]
    return x


def networkx_reference(
    n: int, edges: list[Edge], seeds: list[int], seed_weights: list[float] | None, alpha: float
) -> np.ndarray:
    """networkx.pagerank with the same teleport and dangling vectors, self loops removed.

    networkx stops when the L1 change is below ``len(G) * tol`` (DESIGN.md
    section 6), so a tiny tol is passed to make it a reference.
    """
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    for s, d, w in edges:
        if s == d:
            continue
        if g.has_edge(s, d):
            g[s][d]["weight"] += w
        else:
            g.add_edge(s, d, weight=w)
    weights = seed_weights if seed_weights is not None else [1.0] * len(seeds)
    p: dict[int, float] = {}
    for s, w in zip(seeds, weights, strict=True):
        p[s] = p.get(s, 0.0) + w
    pr = nx.pagerank(g, alpha=1 - alpha, personalization=p, dangling=p, tol=1e-15, max_iter=100_000)
    return np.array([pr[i] for i in range(n)])


def run(
    n: int,
    edges: list[Edge],
    seeds: list[int],
    seed_weights: list[float] | None = None,
    alpha: float = 0.15,
    **kwargs: object,
) -> PropagationResult:
    src = np.array([e[0] for e in edges], dtype=np.int32)
    dst = np.array([e[1] for e in edges], dtype=np.int32)
    w = np.array([e[2] for e in edges], dtype=np.float64)
    tm = TrustMatrix.from_edges(n, src, dst, w)
    return tm.propagate(seeds, seed_weights=seed_weights, alpha=alpha, **kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- hand-built graphs

# name -> (n, edges, seeds, seed_weights, alpha)
HAND_GRAPHS: dict[str, tuple[int, list[Edge], list[int], list[float] | None, float]] = {
    "chain_with_dangling_end": (4, [(0, 1, 1.0), (1, 2, 1.0), (2, 3, 1.0)], [0], None, 0.15),
    "disconnected_parts": (
        6,
        # 0 <-> 1 <-> 2 is seeded; 3 <-> 4 is a separate ring; 5 has no edges at all.
        [(0, 1, 1.0), (1, 0, 1.0), (1, 2, 1.0), (2, 1, 1.0), (3, 4, 1.0), (4, 3, 1.0)],
        [0],
        None,
        0.15,
    ),
    "parallel_edges_and_self_loops": (
        4,
        [
            (0, 1, 1.0),
            (0, 1, 2.0),
            (0, 2, 1.0),
            (1, 1, 5.0),
            (1, 2, 1.0),
            (2, 0, 1.0),
            (2, 2, 3.0),
            (3, 3, 1.0),  # 3's self loop is dropped; its trust all goes to 0
            (3, 0, 0.5),
            (3, 0, 0.5),
        ],
        [0, 1],
        None,
        0.15,
    ),
    "weighted_with_weighted_seeds": (
        5,
        [
            (0, 1, 10.0),
            (0, 2, 1.0),
            (1, 3, 0.25),
            (1, 4, 0.75),
            (2, 3, 3.0),
            (3, 0, 1.0),
            (4, 2, 2.5),
        ],
        [0, 4],
        [3.0, 1.0],
        0.2,
    ),
    "sybil_ring_with_one_attack_edge": (
        7,
        [
            (0, 1, 1.0),
            (1, 2, 1.0),
            (2, 0, 1.0),
            (1, 0, 1.0),
            (2, 3, 1.0),  # the attack edge into the ring 3-4-5-6
            (3, 4, 1.0),
            (4, 5, 1.0),
            (5, 6, 1.0),
            (6, 3, 1.0),
            (4, 3, 1.0),
            (5, 3, 1.0),
            (6, 4, 1.0),
        ],
        [0],
        None,
        0.15,
    ),
    "all_dangling_seeds_only": (3, [], [0, 2], None, 0.15),
}


@pytest.mark.parametrize("name", sorted(HAND_GRAPHS))
def test_matches_networkx_pagerank(name: str) -> None:
    n, edges, seeds, seed_weights, alpha = HAND_GRAPHS[name]
    got = run(n, edges, seeds, seed_weights, alpha, tol=1e-13).trust
    want = networkx_reference(n, edges, seeds, seed_weights, alpha)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", sorted(HAND_GRAPHS))
def test_matches_dense_reference(name: str) -> None:
    n, edges, seeds, seed_weights, alpha = HAND_GRAPHS[name]
    got = run(n, edges, seeds, seed_weights, alpha).trust  # default tol 1e-10
    want = dense_reference(n, edges, seeds, seed_weights, alpha)
    # The stopping rule bounds the L1 error by (1 - alpha) / alpha * tol.
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


def test_published_pagerank_example() -> None:
    """Wikipedia's 11-page PageRank figure (damping 0.85, uniform teleport).

    With every account a seed, p is uniform and this is classic PageRank; the
    figure's published percentages are A 3.3, B 38.4, C 34.3, D 3.9, E 8.1,
    F 3.9 and 1.6 for each of G..K.
    """
    names = "ABCDEFGHIJK"
    out_links = {"B": "C", "C": "B", "D": "AB", "E": "BDF", "F": "BE"}
    out_links |= {"G": "BE", "H": "BE", "I": "BE", "J": "E", "K": "E"}  # A is dangling
    ix = {c: i for i, c in enumerate(names)}
    edges = [(ix[a], ix[b], 1.0) for a, targets in out_links.items() for b in targets]
    trust = run(11, edges, list(range(11))).trust
    published = [3.3, 38.4, 34.3, 3.9, 8.1, 3.9, 1.6, 1.6, 1.6, 1.6, 1.6]
    np.testing.assert_allclose(np.round(100 * trust, 1), published)


def test_seed_only_graph_is_uniform_over_seeds() -> None:
    trust = run(3, [], [0, 2]).trust
    np.testing.assert_allclose(trust, [0.5, 0.0, 0.5], atol=1e-15)


def test_unreachable_component_gets_exactly_zero() -> None:
    n, edges, seeds, seed_weights, alpha = HAND_GRAPHS["disconnected_parts"]
    trust = run(n, edges, seeds, seed_weights, alpha).trust
    assert trust[3] == trust[4] == trust[5] == 0.0


def test_sybil_ring_is_bounded_by_its_attack_edge() -> None:
    """However dense the ring, it only receives what the attack edge carries."""
    n, edges, seeds, seed_weights, alpha = HAND_GRAPHS["sybil_ring_with_one_attack_edge"]
    trust = run(n, edges, seeds, seed_weights, alpha).trust
    inflow = (1 - alpha) * trust[2] * 0.5  # account 2 splits its trust between 0 and 3
    # Ring mass m satisfies m = inflow + (1 - alpha) m (the ring has no exits).
    assert trust[3:].sum() == pytest.approx(inflow / alpha, abs=1e-9)


# --------------------------------------------------------------------------- matrix building


def test_matrix_is_column_stochastic_without_self_loops() -> None:
    n, edges, *_ = HAND_GRAPHS["parallel_edges_and_self_loops"]
    src, dst, w = (np.array(c) for c in zip(*edges, strict=True))
    tm = TrustMatrix.from_edges(n, src.astype(np.int32), dst.astype(np.int32), w)
    dense = tm.matrix.toarray()
    assert np.all(np.diag(dense) == 0.0)
    assert tm.dangling.tolist() == []
    np.testing.assert_allclose(dense.sum(axis=0), 1.0)
    assert dense[0, 3] == pytest.approx(1.0)
    # 0 -> 1 parallel edges summed: 3 of 0's 4 units go to 1.
    assert dense[1, 0] == pytest.approx(0.75)
    # 1 -> 1 is dropped, so all of 1's trust goes to 2.
    assert dense[2, 1] == pytest.approx(1.0)
    assert tm.matrix.indices.dtype == np.int32


def test_account_with_only_a_self_loop_is_dangling() -> None:
    tm = TrustMatrix.from_edges(2, np.array([0, 1]), np.array([0, 0]), np.array([1.0, 1.0]))
    assert tm.dangling.tolist() == [0]


@pytest.mark.parametrize(
    ("src", "dst", "w", "match"),
    [
        ([0, 1], [1], [1.0, 1.0], "equal lengths"),
        ([0, 3], [1, 0], [1.0, 1.0], "src has indices outside"),
        ([0, 1], [-1, 0], [1.0, 1.0], "dst has indices outside"),
        ([0, 1], [1, 0], [1.0, 0.0], "finite and > 0"),
        ([0, 1], [1, 0], [1.0, -2.0], "finite and > 0"),
        ([0, 1], [1, 0], [1.0, np.nan], "finite and > 0"),
        ([0, 1], [1, 0], [1.0, np.inf], "finite and > 0"),
        ([0.0, 1.0], [1, 0], [1.0, 1.0], "integer indices"),
    ],
)
def test_from_edges_rejects_bad_input(
    src: list[float], dst: list[int], w: list[float], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        TrustMatrix.from_edges(3, np.array(src), np.array(dst), np.array(w))


# --------------------------------------------------------------------------- errors and options


def test_no_seeds_is_a_value_error() -> None:
    tm = TrustMatrix.from_edges(2, np.array([0]), np.array([1]), np.array([1.0]))
    with pytest.raises(ValueError, match="at least one seed"):
        tm.propagate([])
    with pytest.raises(ValueError, match="at least one seed"):
        tm.propagate(np.array([], dtype=np.int64))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.5}, "alpha"),
        ({"tol": 0.0}, "tol"),
        ({"max_iter": 0}, "max_iter"),
        ({"x0": np.ones(3)}, "x0 must have shape"),
        ({"x0": np.zeros(2)}, "positive sum"),
        ({"x0": np.array([1.0, -1.0])}, "x0 must be finite"),
        ({"seed_weights": [1.0, 2.0]}, "match seeds"),
        ({"seed_weights": [0.0]}, "positive sum"),
        ({"seed_weights": [-1.0]}, ">= 0"),
    ],
)
def test_bad_options_are_value_errors(kwargs: dict[str, object], match: str) -> None:
    tm = TrustMatrix.from_edges(2, np.array([0]), np.array([1]), np.array([1.0]))
    with pytest.raises(ValueError, match=match):
        tm.propagate([0], **kwargs)  # type: ignore[arg-type]


def test_out_of_range_seed_is_a_value_error() -> None:
    tm = TrustMatrix.from_edges(2, np.array([0]), np.array([1]), np.array([1.0]))
    with pytest.raises(ValueError, match="seed indices"):
        tm.propagate([2])


def test_convergence_error_when_max_iter_too_small() -> None:
    n, edges, seeds, seed_weights, alpha = HAND_GRAPHS["sybil_ring_with_one_attack_edge"]
    with pytest.raises(ConvergenceError) as info:
        run(n, edges, seeds, seed_weights, alpha, max_iter=3)
    err = info.value
    assert isinstance(err, RuntimeError)
    assert err.iterations == 3
    assert err.residual >= 1e-10
    assert "did not converge in 3 iterations" in str(err)


def test_warm_start_from_the_answer_converges_at_once() -> None:
    n, edges, seeds, seed_weights, alpha = HAND_GRAPHS["weighted_with_weighted_seeds"]
    cold = run(n, edges, seeds, seed_weights, alpha)
    warm = run(n, edges, seeds, seed_weights, alpha, x0=cold.trust)
    assert cold.iterations > 10
    assert warm.iterations <= 2
    np.testing.assert_allclose(warm.trust, cold.trust, rtol=0, atol=1e-9)


def test_warm_start_is_normalised_and_does_not_change_the_answer() -> None:
    n, edges, seeds, seed_weights, alpha = HAND_GRAPHS["disconnected_parts"]
    cold = run(n, edges, seeds, seed_weights, alpha)
    # A start that puts mass on the unseeded ring still ends at the same fixed point.
    warm = run(n, edges, seeds, seed_weights, alpha, x0=np.arange(1.0, n + 1.0))
    np.testing.assert_allclose(warm.trust, cold.trust, atol=1e-9)


def test_duplicate_seeds_add_up() -> None:
    n, edges, *_ = HAND_GRAPHS["chain_with_dangling_end"]
    a = run(n, edges, [0, 0, 2]).trust
    b = run(n, edges, [0, 2], seed_weights=[2.0, 1.0]).trust
    np.testing.assert_allclose(a, b, atol=1e-15)


def test_alpha_one_returns_the_seed_distribution() -> None:
    n, edges, *_ = HAND_GRAPHS["chain_with_dangling_end"]
    res = run(n, edges, [1, 2], alpha=1.0)
    np.testing.assert_allclose(res.trust, [0, 0.5, 0.5, 0])
    assert res.iterations == 1


def test_result_is_read_only() -> None:
    res = run(2, [(0, 1, 1.0)], [0])
    with pytest.raises(ValueError):
        res.trust[0] = 1.0


# --------------------------------------------------------------------------- properties


@st.composite
def graphs(
    draw: st.DrawFn, max_n: int = 10
) -> tuple[int, list[Edge], list[int], list[float] | None, float]:
    n = draw(st.integers(1, max_n))
    node = st.integers(0, n - 1)
    weight = st.floats(0.01, 100.0, allow_nan=False, allow_infinity=False)
    edges = draw(st.lists(st.tuples(node, node, weight), max_size=4 * n))
    seeds = draw(st.lists(node, min_size=1, max_size=n))
    seed_weights = draw(
        st.none() | st.lists(st.floats(0.1, 10.0), min_size=len(seeds), max_size=len(seeds))
    )
    alpha = draw(st.sampled_from([0.15, 0.3, 0.5, 0.85]))
    return n, edges, seeds, seed_weights, alpha


@settings(max_examples=150, deadline=None)
@given(graphs())
def test_property_is_a_distribution_matching_dense_reference(
    g: tuple[int, list[Edge], list[int], list[float] | None, float],
) -> None:
    n, edges, seeds, seed_weights, alpha = g
    trust = run(n, edges, seeds, seed_weights, alpha).trust
    assert trust.shape == (n,)
    assert trust.dtype == np.float64
    assert np.all(trust >= 0)
    assert trust.sum() == pytest.approx(1.0, abs=1e-12)
    want = dense_reference(n, edges, seeds, seed_weights, alpha)
    np.testing.assert_allclose(trust, want, rtol=0, atol=1e-9)


@settings(max_examples=150, deadline=None)
@given(graphs(), st.data())
def test_property_retain_matches_dense_reference(
    g: tuple[int, list[Edge], list[int], list[float] | None, float], data: st.DataObject
) -> None:
    n, edges, seeds, seed_weights, alpha = g
    retain = data.draw(st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n))
    tm = TrustMatrix.from_edges(
        n, [e[0] for e in edges], [e[1] for e in edges], [e[2] for e in edges]
    )
    trust = tm.propagate(seeds, seed_weights=seed_weights, alpha=alpha, retain=retain).trust
    assert trust.sum() == pytest.approx(1.0, abs=1e-12)
    want = dense_reference(n, edges, seeds, seed_weights, alpha, retain)
    np.testing.assert_allclose(trust, want, rtol=0, atol=1e-9)


def test_retain_one_is_plain_propagation_and_zero_cuts_all_flow() -> None:
    tm = TrustMatrix.from_edges(4, [0, 1, 2], [1, 2, 3], [1.0, 1.0, 1.0])
    plain = tm.propagate([0]).trust
    np.testing.assert_allclose(tm.propagate([0], retain=np.ones(4)).trust, plain, atol=1e-12)
    # Account 1 passes nothing on: 2 and 3 get nothing, the chain stops at 1.
    cut = tm.propagate([0], retain=[1.0, 0.0, 1.0, 1.0]).trust
    assert cut[2] == 0.0 and cut[3] == 0.0
    assert cut[1] == pytest.approx(0.85 * cut[0])


@pytest.mark.parametrize("retain", [[1.0, 1.0], [0.5, 1.0, 1.2], [-0.1, 1.0, 1.0]])
def test_bad_retain_is_a_value_error(retain: list[float]) -> None:
    tm = TrustMatrix.from_edges(3, [0], [1], [1.0])
    with pytest.raises(ValueError, match="retain"):
        tm.propagate([0], retain=retain)


@settings(max_examples=100, deadline=None)
@given(graphs(), st.randoms(use_true_random=False))
def test_property_relabeling_permutes_the_result(
    g: tuple[int, list[Edge], list[int], list[float] | None, float], rnd: random.Random
) -> None:
    n, edges, seeds, seed_weights, alpha = g
    perm = list(range(n))
    rnd.shuffle(perm)
    relabeled = [(perm[s], perm[d], w) for s, d, w in edges]
    rnd.shuffle(relabeled)
    base = run(n, edges, seeds, seed_weights, alpha).trust
    moved = run(n, relabeled, [perm[s] for s in seeds], seed_weights, alpha).trust
    np.testing.assert_allclose(moved[perm], base, rtol=0, atol=1e-9)


@settings(max_examples=100, deadline=None)
@given(graphs(), st.data())
def test_property_isolated_component_gets_zero_and_changes_nothing(
    g: tuple[int, list[Edge], list[int], list[float] | None, float], data: st.DataObject
) -> None:
    n, edges, seeds, seed_weights, alpha = g
    k = data.draw(st.integers(1, 6), label="component size")
    inner = st.integers(n, n + k - 1)
    weight = st.floats(0.01, 100.0)
    extra = data.draw(st.lists(st.tuples(inner, inner, weight), max_size=3 * k), label="inner")
    # Edges *from* the new component into the old graph carry no trust either,
    # because nothing ever reaches the component.
    outward = data.draw(
        st.lists(st.tuples(inner, st.integers(0, n - 1), weight), max_size=k), label="outward"
    )
    base = run(n, edges, seeds, seed_weights, alpha).trust
    grown = run(n + k, edges + extra + outward, seeds, seed_weights, alpha).trust
    assert np.all(grown[n:] == 0.0)
    np.testing.assert_allclose(grown[:n], base, rtol=0, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(graphs())
def test_property_warm_start_from_answer(
    g: tuple[int, list[Edge], list[int], list[float] | None, float],
) -> None:
    n, edges, seeds, seed_weights, alpha = g
    cold = run(n, edges, seeds, seed_weights, alpha)
    warm = run(n, edges, seeds, seed_weights, alpha, x0=cold.trust)
    assert warm.iterations <= 2
    # Both are within (1 - alpha) / alpha * tol of the fixed point, not identical.
    np.testing.assert_allclose(warm.trust, cold.trust, rtol=0, atol=1e-9)


# --------------------------------------------------------------------------- in-place build


def test_from_edges_stores_no_self_loops_or_duplicates() -> None:
    tm = TrustMatrix.from_edges(3, [0, 0, 1, 1, 2], [1, 1, 1, 0, 2], [1.0, 2.0, 5.0, 1.0, 1.0])
    assert tm.matrix.nnz == 2  # 0 -> 1 (summed) and 1 -> 0; both self loops gone
    assert tm.matrix.has_canonical_format
    assert tm.dangling.tolist() == [2]
    np.testing.assert_array_equal(tm.matrix.toarray(), [[0, 1, 0], [1, 0, 0], [0, 0, 0]])


def test_from_edges_leaves_its_inputs_alone() -> None:
    src, dst, w = np.array([0, 1, 1]), np.array([1, 1, 0]), np.array([1.0, 2.0, 3.0])
    TrustMatrix.from_edges(2, src, dst, w)
    assert src.tolist() == [0, 1, 1] and dst.tolist() == [1, 1, 0] and w.tolist() == [1, 2, 3]


# --------------------------------------------------------------------------- threaded SpMV


def _random_csr(rng: np.random.Generator, rows: int, cols: int, nnz: int) -> sparse.csr_array:
    r = np.minimum((rng.pareto(1.0, nnz) * 3).astype(np.int64), rows - 1)  # skewed rows
    c = rng.integers(0, cols, nnz)
    return sparse.csr_array((rng.uniform(0.1, 1.0, nnz), (r, c)), shape=(rows, cols))


@pytest.mark.parametrize("threads", [1, 2, 3, 7])
def test_block_product_is_bit_identical_to_scipy(threads: int) -> None:
    rng = np.random.default_rng(0)
    a = _random_csr(rng, 500, 500, 5000)
    b = _random_csr(rng, 500, 500, 300)
    x = rng.random(500)
    prod = BlockProduct([a], threads)
    assert prod.threads == threads
    assert np.array_equal(prod(x), a @ x)
    both = BlockProduct([a, b], threads)
    want = a @ x
    want += b @ x
    assert np.array_equal(both(x), want)
    # Blocks are views: an in-place change of the data is seen.
    a.data *= 2.0
    assert np.array_equal(prod(x), a @ x)


@pytest.mark.parametrize("threads", [1, 2, 3, 7])
def test_block_product_row_subsets_are_bit_identical(threads: int) -> None:
    """A delta stored by its rows adds to exactly those rows, the same way on any threads."""
    rng = np.random.default_rng(3)
    a = _random_csr(rng, 400, 400, 4000)
    rows = np.array([0, 3, 17, 199, 200, 201, 399])
    c = _random_csr(rng, rows.size, 400, 60)
    x = rng.random(400)
    want = a @ x
    want[rows] += c @ x
    got = BlockProduct([a], threads, row_subsets=[(rows, c)])(x)
    assert np.array_equal(got, want)
    assert np.array_equal(product([a], threads=threads, row_subsets=[(rows, c)])(x), want)
    with pytest.raises(ValueError, match="row subset"):
        BlockProduct([a], threads, row_subsets=[(rows[:3], c)])


def test_block_product_balances_nonzeros_and_shares_memory() -> None:
    rng = np.random.default_rng(1)
    a = _random_csr(rng, 1000, 1000, 20000)
    prod = BlockProduct([a], 2)
    lo, cut, hi = prod.cuts
    assert (lo, hi) == (0, 1000)
    assert abs(int(a.indptr[cut]) - a.nnz // 2) <= int(np.diff(a.indptr).max())
    for block in prod._blocks:
        assert np.shares_memory(block.matrices[0].data, a.data)
        assert np.shares_memory(block.matrices[0].indices, a.indices)


def test_block_product_edge_cases() -> None:
    empty = sparse.csr_array((4, 4))
    assert np.array_equal(BlockProduct([empty], 2)(np.ones(4)), np.zeros(4))
    tiny = sparse.csr_array(np.array([[0.0, 2.0], [1.0, 0.0]]))
    assert np.array_equal(BlockProduct([tiny], 5)(np.array([1.0, 3.0])), [6.0, 1.0])
    with pytest.raises(ValueError, match="threads"):
        BlockProduct([tiny], 0)
    with pytest.raises(ValueError, match="one shape"):
        BlockProduct([tiny, empty], 2)


def test_thread_count_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(propagation, "_available_cpus", lambda: 8)
    assert thread_count(10, min_nnz=100) == 1
    assert thread_count(100, min_nnz=100) == propagation.DEFAULT_MAX_THREADS
    assert thread_count(10, threads=3, min_nnz=100) == 3
    monkeypatch.setattr(propagation, "_available_cpus", lambda: 1)
    assert thread_count(10**9) == 1
    with pytest.raises(ValueError, match="threads"):
        thread_count(10, threads=0)
    a = sparse.csr_array(np.eye(3))
    assert product([a], min_nnz=1).threads == 1  # one CPU
    monkeypatch.setattr(propagation, "_available_cpus", lambda: 2)
    assert product([a], min_nnz=1).threads == 2
    assert product([a], min_nnz=4).threads == 1


@pytest.mark.parametrize("threads", [2, 4])
def test_threaded_propagation_is_bit_identical(threads: int) -> None:
    rng = np.random.default_rng(2)
    n, m = 2000, 20000
    src = rng.integers(0, n, m)
    dst = np.minimum((rng.pareto(1.0, m) * 5).astype(np.int64), n - 1)
    tm = TrustMatrix.from_edges(n, src, dst, rng.uniform(0.5, 2.0, m))
    retain = rng.uniform(0.0, 1.0, n)
    for kwargs in ({}, {"retain": retain}, {"x0": rng.random(n), "alpha": 0.3}):
        one = tm.propagate([0, 1, 2], threads=1, **kwargs)  # type: ignore[arg-type]
        many = tm.propagate([0, 1, 2], threads=threads, **kwargs)  # type: ignore[arg-type]
        assert np.array_equal(one.trust, many.trust)
        assert (one.iterations, one.residual) == (many.iterations, many.residual)


@settings(max_examples=100, deadline=None)
@given(graphs(), st.sampled_from([2, 3]), st.data())
def test_property_threaded_equals_single_threaded(
    g: tuple[int, list[Edge], list[int], list[float] | None, float],
    threads: int,
    data: st.DataObject,
) -> None:
    n, edges, seeds, seed_weights, alpha = g
    retain = data.draw(st.none() | st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n))
    tm = TrustMatrix.from_edges(
        n, [e[0] for e in edges], [e[1] for e in edges], [e[2] for e in edges]
    )
    one = tm.propagate(seeds, seed_weights=seed_weights, alpha=alpha, retain=retain, threads=1)
    x = np.random.default_rng(n).random(n)
    assert np.array_equal(
        product([tm.matrix], min_nnz=0, threads=threads)(x), product([tm.matrix], threads=1)(x)
    )
    many = tm.propagate(
        seeds, seed_weights=seed_weights, alpha=alpha, retain=retain, threads=threads
    )
    assert np.array_equal(one.trust, many.trust)
    assert one.iterations == many.iterations


def _propagate_in_child(conn: object) -> None:
    tm = TrustMatrix.from_edges(3, [0, 1, 2], [1, 2, 0], [1.0, 1.0, 1.0])
    conn.send(tm.propagate([0], threads=2).trust.tolist())  # type: ignore[attr-defined]


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_threaded_product_works_in_a_forked_child() -> None:
    """The pool's threads do not survive fork; the child must start its own."""
    import multiprocessing

    tm = TrustMatrix.from_edges(3, [0, 1, 2], [1, 2, 0], [1.0, 1.0, 1.0])
    want = tm.propagate([0], threads=2).trust.tolist()  # the parent's pool now exists
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_propagate_in_child, args=(child,))
    proc.start()
    try:
        assert parent.poll(30), "the forked child hung on the inherited thread pool"
        assert parent.recv() == want
    finally:
        proc.join(10)
        if proc.is_alive():
            proc.kill()
