"""IncrementalTrust against a fresh TrustMatrix build on the union of the edges."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.incremental import IncrementalTrust
from scoring.propagation import ConvergenceError, TrustMatrix

TIGHT = 1e-13  # both runs then end within (1 - alpha) / alpha * TIGHT of the fixed point

Batch = tuple[np.ndarray, np.ndarray, np.ndarray]


def random_batch(rng: np.random.Generator, n: int, k: int, lo: int = 0) -> Batch:
    """``k`` edges with destinations skewed towards low indices (so pairs repeat)."""
    src = rng.integers(lo, n, k)
    dst = np.minimum((rng.pareto(1.0, k) * 2).astype(np.int64), n - 1)
    return src, dst, rng.uniform(0.5, 2.0, k)


def union(batches: list[Batch]) -> Batch:
    return (
        np.concatenate([b[0] for b in batches]),
        np.concatenate([b[1] for b in batches]),
        np.concatenate([b[2] for b in batches]),
    )


def fresh(n: int, batches: list[Batch]) -> TrustMatrix:
    return TrustMatrix.from_edges(n, *union(batches))


def assert_same_trust(
    inc: IncrementalTrust, batches: list[Batch], seeds: list[int], **kwargs: object
) -> None:
    want = fresh(inc.n, batches).propagate(seeds, tol=TIGHT, **kwargs)  # type: ignore[arg-type]
    got = inc.propagate(seeds, tol=TIGHT, **kwargs)  # type: ignore[arg-type]
    np.testing.assert_allclose(got.trust, want.trust, rtol=0, atol=1e-12)
    assert got.trust.sum() == pytest.approx(1.0, abs=1e-12)


# --------------------------------------------------------------------------- rounds


@pytest.mark.parametrize("merge_fraction", [0.0, 0.05, 0.3, np.inf])
def test_rounds_of_new_edges_match_a_fresh_build(merge_fraction: float) -> None:
    rng = np.random.default_rng(1)
    n = 300
    batches = [random_batch(rng, n, 2000)]
    inc = IncrementalTrust(n, *batches[0], merge_fraction=merge_fraction)
    seeds = [0, 5, 17]
    previous = inc.propagate(seeds).trust
    for _ in range(6):
        batch = random_batch(rng, n, 150)
        batch[0][:3] = batch[1][:3]  # a few self loops: dropped, as from_edges does
        batches.append(batch)
        inc.add_edges(*batch)
        assert_same_trust(inc, batches, seeds)
        # The warm start reaches the same fixed point.
        warm = inc.propagate(seeds, x0=previous, tol=TIGHT)
        np.testing.assert_allclose(warm.trust, fresh(n, batches).propagate(seeds, tol=TIGHT).trust,
                                   rtol=0, atol=1e-12)
        previous = warm.trust
    if merge_fraction == 0.0:
        assert inc.delta_nnz == 0
    if merge_fraction == np.inf:
        assert inc.delta_nnz > 0
    inc.merge()
    assert inc.nnz == fresh(n, batches).matrix.nnz
    assert_same_trust(inc, batches, seeds)


def test_merge_changes_nothing_but_the_layout() -> None:
    rng = np.random.default_rng(2)
    n = 200
    base = random_batch(rng, n, 1000)
    inc = IncrementalTrust(n, *base, merge_fraction=np.inf)
    extra = random_batch(rng, n, 400)
    inc.add_edges(*extra)
    assert inc.delta_nnz > 0
    before = inc.propagate([1, 2], tol=TIGHT).trust
    inc.merge()
    nnz = inc.nnz
    assert inc.delta_nnz == 0 and nnz == fresh(n, [base, extra]).matrix.nnz
    np.testing.assert_allclose(inc.propagate([1, 2], tol=TIGHT).trust, before, rtol=0, atol=1e-14)
    assert_same_trust(inc, [base, extra], [1, 2])
    inc.merge()  # nothing to merge: a no-op
    assert inc.nnz == nnz


def test_edges_on_existing_pairs_add_up() -> None:
    inc = IncrementalTrust(4, [0, 1, 2, 3], [1, 2, 3, 1], [1.0] * 4, merge_fraction=np.inf)
    inc.add_edges([0, 1], [1, 2], [2.0, 0.5])  # pairs in W: delta entries until a merge
    assert inc.delta_nnz == 2
    inc.add_edges([3, 3], [0, 0], [1.0, 1.0])  # a new pair, twice: one entry
    assert inc.delta_nnz == 3
    inc.propagate([2])  # builds (and caches) the delta's product
    inc.add_edges([3], [0], [1.0])  # now in the delta: added in place there
    assert inc.delta_nnz == 3
    np.testing.assert_allclose(inc.out_strength, [3.0, 1.5, 1.0, 4.0])
    batches = [
        (np.array([0, 1, 2, 3, 0, 1, 3, 3, 3]), np.array([1, 2, 3, 1, 1, 2, 0, 0, 0]),
         np.array([1.0, 1, 1, 1, 2, 0.5, 1, 1, 1])),
    ]
    # Not seeded at 0: trust lost on 3 -> 0 would then look like teleport and cancel out.
    assert_same_trust(inc, batches, [2])
    inc.merge()
    assert inc.delta_nnz == 0 and inc.nnz == 5
    assert_same_trust(inc, batches, [2])


# --------------------------------------------------------------------------- accounts


def test_new_accounts_grow_the_dimension() -> None:
    rng = np.random.default_rng(3)
    n = 100
    batches = [random_batch(rng, n, 600)]
    inc = IncrementalTrust(n, *batches[0], merge_fraction=0.02)
    for step in range(4):
        grown = n + 25
        # New accounts trust old ones and are trusted by them; one stays isolated.
        src = np.concatenate([rng.integers(n, grown - 1, 40), rng.integers(0, n, 40)])
        dst = np.concatenate([rng.integers(0, n, 40), rng.integers(n, grown - 1, 40)])
        batch = (src, dst, rng.uniform(0.5, 2.0, 80))
        batches.append(batch)
        inc.add_edges(*batch, n=grown)
        n = grown
        assert inc.n == n
        assert n - 1 in inc.dangling.tolist()
        seeds = [0, n - 30] if step else [0]
        assert_same_trust(inc, batches, seeds)


def test_grow_without_edges_and_a_new_seed() -> None:
    inc = IncrementalTrust(3, [0, 1], [1, 2], [1.0, 1.0])
    inc.grow(5)
    assert inc.n == 5 and inc.dangling.tolist() == [2, 3, 4]
    trust = inc.propagate([0, 4]).trust
    want = TrustMatrix.from_edges(5, [0, 1], [1, 2], [1.0, 1.0]).propagate([0, 4]).trust
    np.testing.assert_allclose(trust, want, rtol=0, atol=1e-12)
    assert trust[3] == 0.0


def test_dangling_accounts_become_non_dangling() -> None:
    # 2 and 3 trust nobody at first: their trust goes back to the seed.
    inc = IncrementalTrust(5, [0, 1, 1, 4], [1, 2, 3, 0], [1.0, 1.0, 2.0, 1.0])
    assert inc.dangling.tolist() == [2, 3]
    batches = [(np.array([0, 1, 1, 4]), np.array([1, 2, 3, 0]), np.array([1.0, 1.0, 2.0, 1.0]))]
    assert_same_trust(inc, batches, [0])
    new = (np.array([2, 3, 3]), np.array([4, 4, 2]), np.array([1.0, 0.5, 0.5]))
    inc.add_edges(*new)
    batches.append(new)
    assert inc.dangling.tolist() == []
    assert_same_trust(inc, batches, [0])
    assert_same_trust(inc, batches, [0], retain=[1.0, 0.5, 0.0, 1.0, 0.25])


def test_self_loop_only_account_stays_dangling() -> None:
    inc = IncrementalTrust(3, [0], [1], [1.0])
    inc.add_edges([2, 2], [2, 2], [1.0, 3.0])
    assert inc.dangling.tolist() == [1, 2]
    assert inc.nnz == 1


# --------------------------------------------------------------------------- options


def test_retain_matches_a_fresh_build() -> None:
    rng = np.random.default_rng(4)
    n = 150
    batches = [random_batch(rng, n, 900)]
    inc = IncrementalTrust(n, *batches[0])
    batches.append(random_batch(rng, n, 90))
    inc.add_edges(*batches[-1])
    retain = rng.uniform(0.0, 1.0, n)
    retain[:10] = 0.0
    retain[10:20] = 1.0
    assert_same_trust(inc, batches, [3, 7], retain=retain)
    assert_same_trust(inc, batches, [3, 7], retain=retain, seed_weights=[2.0, 1.0], alpha=0.3)


@pytest.mark.parametrize("threads", [2, 3])
def test_threads_give_bit_identical_results(threads: int) -> None:
    rng = np.random.default_rng(5)
    n = 400
    inc = IncrementalTrust(n, *random_batch(rng, n, 3000), merge_fraction=np.inf)
    inc.add_edges(*random_batch(rng, n, 300))
    retain = rng.uniform(0.5, 1.0, n)
    one = inc.propagate([0, 9], retain=retain, threads=1)
    many = inc.propagate([0, 9], retain=retain, threads=threads)
    assert np.array_equal(one.trust, many.trust)
    assert one.iterations == many.iterations and one.residual == many.residual


def test_trust_matrix_snapshot_equals_from_edges() -> None:
    rng = np.random.default_rng(6)
    n = 120
    batches = [random_batch(rng, n, 700), random_batch(rng, n, 70)]
    inc = IncrementalTrust(n, *batches[0], merge_fraction=np.inf)
    inc.add_edges(*batches[1])
    got, want = inc.trust_matrix(), fresh(n, batches)
    assert abs(got.matrix - want.matrix).max() < 1e-15
    assert np.array_equal(got.dangling, want.dangling)


def test_empty_start() -> None:
    inc = IncrementalTrust(3, [], [], [])
    np.testing.assert_allclose(inc.propagate([1]).trust, [0.0, 1.0, 0.0])
    inc.add_edges([1], [2], [1.0])
    want = TrustMatrix.from_edges(3, [1], [2], [1.0]).propagate([1], tol=TIGHT).trust
    np.testing.assert_allclose(inc.propagate([1], tol=TIGHT).trust, want, atol=1e-12)
    inc.add_edges([], [], [])
    assert inc.nnz == 1


# --------------------------------------------------------------------------- reweight


def test_reweight_matches_a_fresh_build_with_the_new_weights() -> None:
    rng = np.random.default_rng(7)
    n = 200
    batches = [random_batch(rng, n, 1200)]
    batches[0][0][:5] = batches[0][1][:5]  # self loops are tracked (as -1) too
    inc = IncrementalTrust(n, *batches[0], merge_fraction=0.04, track_edges=True)
    for _ in range(5):  # some rounds merge, some do not
        batches.append(random_batch(rng, n + 10, 80))
        inc.add_edges(*batches[-1], n=n + 10)
        n += 10
    assert inc.n_edges == sum(b[0].size for b in batches)
    src, dst, _ = union(batches)
    decayed = rng.uniform(0.01, 3.0, src.size)  # every weight changes, not by one factor
    inc.reweight(decayed)
    want = TrustMatrix.from_edges(n, src, dst, decayed).propagate([0, 4], tol=TIGHT).trust
    np.testing.assert_allclose(inc.propagate([0, 4], tol=TIGHT).trust, want, rtol=0, atol=1e-12)
    assert abs(inc.trust_matrix().matrix - TrustMatrix.from_edges(n, src, dst, decayed).matrix
               ).max() < 1e-15
    # And the map survives further additions and a merge.
    more = random_batch(rng, n, 100)
    inc.add_edges(*more)
    inc.merge()
    src2, dst2 = np.concatenate([src, more[0]]), np.concatenate([dst, more[1]])
    w2 = rng.uniform(0.01, 3.0, src2.size)
    inc.reweight(w2)
    want = TrustMatrix.from_edges(n, src2, dst2, w2).propagate([0, 4], tol=TIGHT).trust
    np.testing.assert_allclose(inc.propagate([0, 4], tol=TIGHT).trust, want, rtol=0, atol=1e-12)


def test_reweight_needs_tracking_and_valid_weights() -> None:
    inc = IncrementalTrust(3, [0, 1], [1, 2], [1.0, 1.0])
    with pytest.raises(RuntimeError, match="track_edges"):
        inc.reweight([1.0, 1.0])
    tracked = IncrementalTrust(3, [0, 1], [1, 2], [1.0, 1.0], track_edges=True)
    with pytest.raises(ValueError, match="shape"):
        tracked.reweight([1.0])
    with pytest.raises(ValueError, match="finite and > 0"):
        tracked.reweight([1.0, 0.0])


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("src", "dst", "w", "n", "match"),
    [
        ([0, 3], [1, 0], [1.0, 1.0], None, "src has indices outside"),
        ([0, 1], [1, 0], [1.0, -1.0], None, "finite and > 0"),
        ([0], [1, 2], [1.0], None, "equal lengths"),
        ([0], [1], [1.0], 2, "cannot shrink"),
    ],
)
def test_add_edges_rejects_bad_input(
    src: list[int], dst: list[int], w: list[float], n: int | None, match: str
) -> None:
    inc = IncrementalTrust(3, [0], [1], [1.0])
    with pytest.raises(ValueError, match=match):
        inc.add_edges(src, dst, w, n=n)
    assert inc.nnz == 1 and inc.n == 3  # nothing half-applied


def test_constructor_and_propagate_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="2\\*\\*31"):
        IncrementalTrust(2**31, [], [], [])
    with pytest.raises(ValueError, match="merge_fraction"):
        IncrementalTrust(2, [0], [1], [1.0], merge_fraction=-0.1)
    inc = IncrementalTrust(2, [0], [1], [1.0])
    with pytest.raises(ValueError, match="at least one seed"):
        inc.propagate([])
    with pytest.raises(ValueError, match="x0 must have shape"):
        inc.propagate([0], x0=np.ones(3))
    with pytest.raises(ValueError, match="retain"):
        inc.propagate([0], retain=[1.0, 2.0])
    with pytest.raises(ValueError, match="alpha"):
        inc.propagate([0], alpha=0.0)


def test_convergence_error() -> None:
    inc = IncrementalTrust(4, [0, 1, 2, 3], [1, 2, 3, 0], [1.0] * 4)
    with pytest.raises(ConvergenceError):
        inc.propagate([0], max_iter=2)


# --------------------------------------------------------------------------- properties

Edge = tuple[int, int, float]


@st.composite
def histories(draw: st.DrawFn) -> tuple[int, list[Edge], list[tuple[int, list[Edge]]]]:
    """A first graph, then batches that may bring new accounts (new total, edges)."""
    n = draw(st.integers(1, 8))
    weight = st.floats(0.01, 100.0, allow_nan=False, allow_infinity=False)

    def edges(k: int) -> st.SearchStrategy[list[Edge]]:
        node = st.integers(0, k - 1)
        return st.lists(st.tuples(node, node, weight), max_size=3 * k)

    first = draw(edges(n))
    batches = []
    total = n
    for _ in range(draw(st.integers(1, 4))):
        total += draw(st.integers(0, 3))
        batches.append((total, draw(edges(total))))
    return n, first, batches


def _arrays(edges: list[Edge]) -> Batch:
    return (
        np.array([e[0] for e in edges], dtype=np.int64),
        np.array([e[1] for e in edges], dtype=np.int64),
        np.array([e[2] for e in edges], dtype=np.float64),
    )


@settings(max_examples=150, deadline=None)
@given(
    histories(),
    st.sampled_from([0.0, 0.1, 1.0, np.inf]),
    st.sampled_from([1, 2, 3]),
    st.data(),
)
def test_property_incremental_equals_fresh_build(
    history: tuple[int, list[Edge], list[tuple[int, list[Edge]]]],
    merge_fraction: float,
    threads: int,
    data: st.DataObject,
) -> None:
    n, first, batches = history
    inc = IncrementalTrust(n, *_arrays(first), merge_fraction=merge_fraction, track_edges=True)
    everything = list(first)
    for total, edges in batches:
        inc.add_edges(*_arrays(edges), n=total)
        everything += edges
    seeds = data.draw(st.lists(st.integers(0, inc.n - 1), min_size=1, max_size=inc.n))
    alpha = data.draw(st.sampled_from([0.15, 0.5, 0.85]))
    retain = data.draw(
        st.none() | st.lists(st.floats(0.0, 1.0), min_size=inc.n, max_size=inc.n)
    )
    want = TrustMatrix.from_edges(inc.n, *_arrays(everything)).propagate(
        seeds, alpha=alpha, tol=TIGHT, retain=retain
    )
    got = inc.propagate(seeds, alpha=alpha, tol=TIGHT, retain=retain, threads=threads)
    np.testing.assert_allclose(got.trust, want.trust, rtol=0, atol=1e-12)
    one = inc.propagate(seeds, alpha=alpha, tol=TIGHT, retain=retain, threads=1)
    assert np.array_equal(one.trust, got.trust)
    # Reweighting every edge gives the fresh build with those weights.
    if everything:
        new_w = data.draw(st.lists(st.floats(0.01, 100.0), min_size=len(everything),
                                   max_size=len(everything)))
        inc.reweight(new_w)
        src, dst, _ = _arrays(everything)
        want = TrustMatrix.from_edges(inc.n, src, dst, new_w).propagate(
            seeds, alpha=alpha, tol=TIGHT, retain=retain
        )
        got = inc.propagate(seeds, alpha=alpha, tol=TIGHT, retain=retain, threads=threads)
        np.testing.assert_allclose(got.trust, want.trust, rtol=0, atol=1e-12)
