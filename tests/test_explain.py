"""Explanations and confidence: the inflow decomposition, its shares, and the confidence rule."""

from __future__ import annotations

import dataclasses
import itertools
import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.events import ENDORSE, REVIEW, VOTE_ACCOUNT, VOTE_CONTENT
from scoring.evidence import DERIVED, KINDS
from scoring.explain import (
    DEFAULT_SOURCE_SCALE,
    Explanation,
    Inflows,
    Source,
    explain_account,
    render,
)
from scoring.graph import EdgeTable
from scoring.model import GLOBAL_DOMAIN, score_accounts
from scoring.propagation import TrustMatrix

KindEdge = tuple[str, str, float, str]  # src, dst, weight, kind name
CODE = {k: i for i, k in enumerate(KINDS)}


def build(
    edges: list[KindEdge],
    seeds: list[str],
    *,
    alpha: float = 0.15,
    seed_weights: list[float] | None = None,
    names: list[str] | None = None,
) -> Inflows:
    """Propagate on named edges and decompose the result."""
    ids = list(names or [])
    for s, d, _, _ in edges:
        for a in (s, d):
            if a not in ids:
                ids.append(a)
    for a in seeds:
        if a not in ids:
            ids.append(a)
    index = {a: i for i, a in enumerate(ids)}
    src = np.array([index[s] for s, _, _, _ in edges], dtype=np.int32)
    dst = np.array([index[d] for _, d, _, _ in edges], dtype=np.int32)
    w = np.array([w for _, _, w, _ in edges], dtype=np.float64)
    kind = np.array([CODE[k] for _, _, _, k in edges], dtype=np.int8)
    seed_idx = [index[a] for a in seeds]
    trust = (
        TrustMatrix.from_edges(len(ids), src, dst, w)
        .propagate(seed_idx, seed_weights=seed_weights, alpha=alpha, tol=1e-13)
        .trust
    )
    return Inflows.from_arrays(
        len(ids),
        src,
        dst,
        w,
        kind,
        trust,
        seed_idx,
        seed_weights=seed_weights,
        alpha=alpha,
        accounts=ids,
    )


def contribution_reference(
    n: int, edges: list[tuple[int, int, float]], trust: np.ndarray, alpha: float
) -> list[dict[int, float]]:
    """Slow pure-Python inflow per (account, source): beta * w(j->i) / out(j) * x_j."""
    out = [0.0] * n
    pair: dict[tuple[int, int], float] = {}
    for s, d, w in edges:
        if s != d:
            out[s] += w
            pair[(d, s)] = pair.get((d, s), 0.0) + w
    res: list[dict[int, float]] = [{} for _ in range(n)]
    for (d, s), w in pair.items():
        res[d][s] = (1 - alpha) * w / out[s] * float(trust[s])
    return res


def all_shares(inf: Inflows, i: int) -> float:
    e = inf.explain(i, k=inf.n)
    assert len(e.sources) == e.n_sources
    return e.seed_share + sum(s.share for s in e.sources)


# The worked example of docs/scoring.md: ann = 17/37, bob = 10.8375/37, mod = 9.1625/37.
WORKED: list[KindEdge] = [
    ("mod", "ann", 1.0, ENDORSE),
    ("ann", "bob", 3.0, VOTE_ACCOUNT),
    ("ann", "mod", 1.0, VOTE_ACCOUNT),
    ("bob", "ann", 1.0, REVIEW),
    ("syb", "bob", 1.0, VOTE_ACCOUNT),
]


# --------------------------------------------------------------------------- exactness


def test_worked_example_decomposes_exactly() -> None:
    inf = build(WORKED, ["mod"])
    ann = inf.explain("ann")
    assert ann.trust == pytest.approx(17 / 37, abs=1e-12)
    assert ann.seed_share == 0.0
    assert [s.account for s in ann.sources] == ["bob", "mod"]  # bob is the top source
    assert ann.sources[0].share == pytest.approx(9.211875 / 17, abs=1e-12)  # 0.85 bob / ann
    assert ann.sources[1].share == pytest.approx(7.788125 / 17, abs=1e-12)  # 0.85 mod / ann
    assert ann.sources[0].kinds == (("review", ann.sources[0].share),)
    assert dict(ann.kinds) == pytest.approx({"review": 9.211875 / 17, "endorse": 7.788125 / 17})

    mod = inf.explain("mod")
    assert mod.seed_share == pytest.approx(5.55 / 9.1625, abs=1e-12)  # 0.15 of 1 over mod
    assert [(s.account, s.share) for s in mod.sources] == [("ann", pytest.approx(3.6125 / 9.1625))]

    bob = inf.explain("bob")  # syb votes for bob but holds no trust: not a source
    assert [s.account for s in bob.sources] == ["ann"] and bob.n_sources == 1
    assert bob.sources[0].share == pytest.approx(1.0, abs=1e-12)

    syb = inf.explain("syb")
    assert syb.trust == 0 and syb.sources == () and syb.kinds == () and syb.seed_share == 0
    assert syb.confidence == 0.0 and syb.source_share == 0.0


@pytest.mark.parametrize("seed_weights", [None, [3.0, 1.0]])
def test_inflows_sum_to_trust_on_small_graphs(seed_weights: list[float] | None) -> None:
    rng = random.Random(5)
    for _ in range(20):
        n = rng.randint(2, 12)
        names = [f"a{i}" for i in range(n)]
        edges: list[KindEdge] = [
            (rng.choice(names), rng.choice(names), rng.uniform(0.1, 5), rng.choice(KINDS))
            for _ in range(rng.randint(0, 4 * n))
        ]
        seeds = rng.sample(names, 2)
        alpha = rng.choice([0.15, 0.5])
        inf = build(edges, seeds, alpha=alpha, seed_weights=seed_weights, names=names)
        idx = [(names.index(s), names.index(d), w) for s, d, w, _ in edges]
        ref = contribution_reference(n, idx, inf.trust, alpha)
        for i in range(n):
            got = {inf.index(s.account): s.share * inf.inflow[i] for s in inf.explain(i, n).sources}
            want = {j: a for j, a in ref[i].items() if a > 0}
            assert got.keys() == want.keys()
            for j in want:
                assert got[j] == pytest.approx(want[j], rel=1e-12, abs=1e-15)
            # x_i = seed inflow + sum of contributions, at the fixed point
            total = inf.seed_inflow[i] + sum(ref[i].values())
            assert total == pytest.approx(inf.trust[i], abs=1e-9)
            if inf.inflow[i] > 0:
                assert all_shares(inf, i) == pytest.approx(1.0, abs=1e-12)
                e = inf.explain(i)
                assert e.seed_share + sum(v for _, v in e.kinds) == pytest.approx(1.0, abs=1e-12)


def test_dangling_mass_is_part_of_the_seed_share() -> None:
    # b trusts nobody: its trust returns to the seed through the teleport vector.
    inf = build([("s", "a", 1.0, ENDORSE), ("a", "b", 1.0, REVIEW)], ["s"])
    s = inf.explain("s")
    assert s.n_sources == 0 and s.seed_share == 1.0
    x = dict(zip(inf.accounts or [], inf.trust.tolist(), strict=True))
    assert x["s"] == pytest.approx(0.15 + 0.85 * x["b"], abs=1e-12)
    assert float(inf.seed_inflow[inf.index("s")]) == pytest.approx(x["s"], abs=1e-12)


def test_parallel_edges_of_two_kinds_split_by_weight() -> None:
    edges: list[KindEdge] = [
        ("s", "a", 1.0, ENDORSE),
        ("s", "c", 1.0, ENDORSE),
        ("a", "b", 3.0, ENDORSE),
        ("a", "b", 1.0, VOTE_ACCOUNT),
        ("a", "b", 0.5, VOTE_ACCOUNT),  # same kind again: summed into its row
        ("c", "b", 2.0, REVIEW),
        ("a", "a", 9.0, ENDORSE),  # self loop: ignored, as propagation ignores it
    ]
    inf = build(edges, ["s"])
    b = inf.explain("b")
    by_src = {s.account: s for s in b.sources}
    a_share = by_src["a"].share
    assert dict(by_src["a"].kinds) == pytest.approx(
        {ENDORSE: a_share * 3 / 4.5, VOTE_ACCOUNT: a_share * 1.5 / 4.5}, abs=1e-15
    )
    assert by_src["a"].kinds[0][0] == ENDORSE  # largest first
    assert dict(by_src["c"].kinds) == pytest.approx({REVIEW: by_src["c"].share})
    assert dict(b.kinds) == pytest.approx(
        {ENDORSE: a_share * 3 / 4.5, VOTE_ACCOUNT: a_share * 1.5 / 4.5, REVIEW: by_src["c"].share}
    )
    assert sum(s.share for s in b.sources) == pytest.approx(1.0, abs=1e-12)
    # a's outgoing weight excludes the self loop: all of a's 0.85 * x_a goes to b
    assert a_share * inf.trust[inf.index("b")] == pytest.approx(
        0.85 * inf.trust[inf.index("a")], rel=1e-9
    )


# --------------------------------------------------------------------------- ordering


def test_ties_are_broken_by_account_id_whatever_the_index_order() -> None:
    # Three equal sources, indexed in non-alphabetical order.
    edges: list[KindEdge] = [("s", x, 1.0, ENDORSE) for x in ("zed", "amy", "kim")]
    edges += [(x, "t", 1.0, VOTE_ACCOUNT) for x in ("zed", "amy", "kim")]
    a = build(edges, ["s"], names=["t", "zed", "kim", "amy", "s"]).explain("t")
    b = build(list(reversed(edges)), ["s"], names=["amy", "s", "kim", "t", "zed"]).explain("t")
    assert [s.account for s in a.sources] == ["amy", "kim", "zed"]
    assert a == b
    inf = build(edges, ["s"], names=["t", "zed", "kim", "amy", "s"])
    index, _ = inf.top_sources(2)
    assert [inf.name(int(j)) for j in index[inf.index("t")]] == ["amy", "kim"]


def test_explanations_are_frozen_and_deterministic() -> None:
    inf = build(WORKED, ["mod"])
    e = inf.explain("ann")
    with pytest.raises(dataclasses.FrozenInstanceError):
        e.trust = 1.0  # type: ignore[misc]
    assert isinstance(e.sources[0], Source) and isinstance(e, Explanation)
    assert build(WORKED, ["mod"]).explain("ann") == e
    assert list(inf.explanations()) == [inf.explain(i) for i in range(inf.n)]


# --------------------------------------------------------------------------- vectorised vs one


def random_inflows(seed: int, n: int, m: int) -> tuple[Inflows, dict[str, object]]:
    rng = np.random.default_rng(seed)
    src = rng.integers(0, n, m).astype(np.int32)
    dst = (rng.pareto(1.0, m) * 3).astype(np.int64) % n
    dst = dst.astype(np.int32)
    w = rng.choice([0.5, 1.0, 2.0], m)  # repeated weights: exact ties happen
    kind = rng.integers(0, len(KINDS), m).astype(np.int8)
    seeds = rng.choice(n, 3, replace=False)
    names = [f"acct{(i * 7919) % n:05d}" for i in range(n)]  # id order != index order
    trust = TrustMatrix.from_edges(n, src, dst, w).propagate(seeds).trust
    args: dict[str, object] = dict(
        n=n, src=src, dst=dst, weight=w, kind=kind, trust=trust, seeds=seeds, accounts=names
    )
    return Inflows.from_arrays(**args), args  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_vectorised_results_match_per_account_explanations(seed: int) -> None:
    inf, args = random_inflows(seed, 300, 3000)
    k = 4
    top_idx, top_share = inf.top_sources(k)
    kinds = inf.kind_shares()
    seed_share = inf.seed_share()
    n_sources = inf.n_sources()
    n_eff = inf.effective_sources()
    independent = inf.independent_sources()
    confidence = inf.confidence()
    b, big_f = inf.bottleneck()
    for i in range(inf.n):
        e = inf.explain(i, k)
        assert [s.account for s in e.sources] == [inf.name(int(j)) for j in top_idx[i] if j >= 0]
        assert [s.share for s in e.sources] == pytest.approx(top_share[i][: len(e.sources)])
        assert dict(e.kinds) == pytest.approx(
            {KINDS[c]: v for c, v in enumerate(kinds[i].tolist()) if v > 0}
        )
        assert e.seed_share == pytest.approx(seed_share[i])
        assert e.n_sources == n_sources[i]
        assert e.effective_sources == pytest.approx(n_eff[i])
        assert e.independent_sources == pytest.approx(independent[i])
        assert e.confidence == pytest.approx(confidence[i])
        assert e.bottleneck == (
            (inf.name(int(b[i])), pytest.approx(big_f[i])) if b[i] >= 0 and big_f[i] > 0 else None
        )
        # the one-account path agrees, without the fields that need every account
        alone = explain_account(i, k=k, **args)  # type: ignore[arg-type]
        assert alone == dataclasses.replace(
            e, independent_sources=None, bottleneck=None, confidence=None
        )
    assert np.all((confidence >= 0) & (confidence <= 1))
    assert np.all(confidence[inf.inflow == 0] == 0)


def test_hub_accounts_use_the_same_ordering() -> None:
    # One account with 200 sources (the numpy path of explain) and many exact ties.
    edges: list[KindEdge] = [("s", f"v{i:03d}", 1.0, ENDORSE) for i in range(200)]
    edges += [(f"v{i:03d}", "hub", 1.0 + (i % 3 == 0), VOTE_CONTENT) for i in range(200)]
    edges += [(f"v{i:03d}", "else", 1.0, VOTE_CONTENT) for i in range(200)]
    inf = build(edges, ["s"], names=["hub"] + [f"v{i:03d}" for i in reversed(range(200))])
    e = inf.explain("hub", k=5)
    assert [s.account for s in e.sources] == ["v000", "v003", "v006", "v009", "v012"]
    assert e.n_sources == 200
    index, _ = inf.top_sources(5)
    assert [inf.name(int(j)) for j in index[inf.index("hub")]] == [s.account for s in e.sources]
    assert all_shares(inf, inf.index("hub")) == pytest.approx(1.0, abs=1e-12)


# --------------------------------------------------------------------------- confidence


def test_confidence_is_zero_without_inflow() -> None:
    edges: list[KindEdge] = [("s", "a", 1.0, ENDORSE), ("x", "y", 1.0, ENDORSE)]
    inf = build(edges, ["s"], names=["lonely"])
    conf = dict(zip(inf.accounts or [], inf.confidence().tolist(), strict=True))
    assert conf["x"] == conf["y"] == conf["lonely"] == 0.0  # no path from a seed
    assert conf["s"] == 1.0  # all seed allocation, far above the average share
    assert 0 < conf["a"] < 1
    for name in ("x", "y", "lonely"):
        e = inf.explain(name)
        assert (e.confidence, e.independent_sources, e.n_sources) == (0.0, 0.0, 0)


def seeds_to_target(k: int) -> tuple[Inflows, int]:
    """k seeds, each trusting the target and its own idle account (equal, independent)."""
    edges: list[KindEdge] = [(f"s{j}", "t", 1.0, ENDORSE) for j in range(k)]
    edges += [(f"s{j}", f"idle{j}", 1.0, ENDORSE) for j in range(k)]
    inf = build(edges, [f"s{j}" for j in range(k)])
    return inf, inf.index("t")


def chains_to_target(k: int) -> tuple[Inflows, int]:
    """k independent two-hop chains seed -> middle -> target."""
    edges: list[KindEdge] = []
    for j in range(k):
        edges += [(f"s{j}", f"m{j}", 1.0, ENDORSE), (f"m{j}", "t", 1.0, VOTE_ACCOUNT)]
    inf = build(edges, [f"s{j}" for j in range(k)])
    return inf, inf.index("t")


@pytest.mark.parametrize("family", [seeds_to_target, chains_to_target])
def test_confidence_increases_with_equal_independent_sources(family: object) -> None:
    values = []
    for k in range(1, 9):
        inf, t = family(k)  # type: ignore[operator]
        assert inf.effective_sources()[t] == pytest.approx(k)
        assert inf.independent_sources()[t] == pytest.approx(k)
        values.append(float(inf.confidence()[t]))
    assert all(a < b for a, b in itertools.pairwise(values)), values
    # breadth alone is 1 - exp(-k / 3) for these (mass is 1: trust above average)
    inf, t = family(5)  # type: ignore[operator]
    assert inf.mass()[t] == 1.0
    assert inf.confidence()[t] == pytest.approx(1 - math.exp(-5 / DEFAULT_SOURCE_SCALE))


def test_sources_without_trust_do_not_raise_confidence() -> None:
    # One trusted voucher plus 50 vouchers that nobody trusts: still one source.
    edges: list[KindEdge] = [("s", "h", 1.0, ENDORSE), ("h", "t", 1.0, ENDORSE)]
    edges += [(f"z{j}", "t", 1.0, ENDORSE) for j in range(50)]
    inf = build(edges, ["s"])
    e = inf.explain("t")
    assert e.n_sources == 1 and e.effective_sources == 1.0 and e.independent_sources == 1.0
    alone = build(edges[:2], ["s"]).explain("t")
    assert e.confidence == pytest.approx(alone.confidence, rel=0.2)  # only mass differs (n)
    assert e.confidence is not None and e.confidence < 0.3


def honest_region(rng: random.Random) -> list[KindEdge]:
    seeds = ["s0", "s1", "s2"]
    honest = [f"h{i:02d}" for i in range(30)]
    edges: list[KindEdge] = []
    for s in seeds:
        edges += [(s, h, 1.0, ENDORSE) for h in rng.sample(honest, 10)]
    for h in honest:
        edges += [(h, o, 1.0, VOTE_ACCOUNT) for o in rng.sample(honest, 6) if o != h]
    return edges


def test_sybil_farm_behind_one_attack_edge_has_low_confidence() -> None:
    rng = random.Random(11)
    edges = honest_region(rng)
    # h03 is compromised: one edge to "entry", which fans out to 10 sybils that all
    # vouch for "target"; a second cluster is a clique behind one edge from h07.
    sybils = [f"y{i}" for i in range(10)]
    edges.append(("h03", "entry", 1.0, ENDORSE))
    edges += [("entry", y, 1.0, ENDORSE) for y in sybils]
    edges += [(y, "target", 1.0, ENDORSE) for y in sybils]
    clique = [f"c{i}" for i in range(8)]
    edges.append(("h07", "c0", 1.0, ENDORSE))
    edges += [(a, b, 1.0, ENDORSE) for a in clique for b in clique if a != b]
    inf = build(edges, ["s0", "s1", "s2"])
    conf = inf.confidence()

    target = inf.explain("target")
    assert target.n_sources == 10 and target.effective_sources == pytest.approx(10)
    assert target.independent_sources == pytest.approx(1.0)  # ... but all behind "entry"
    assert target.bottleneck == ("entry", pytest.approx(1.0))
    for name in ["entry", "target", *sybils, *clique]:
        i = inf.index(name)
        assert inf.independent_sources()[i] == pytest.approx(1.0, abs=1e-4), name
        assert conf[i] < 0.3, name
    assert inf.explain("c5").bottleneck == ("c0", pytest.approx(1.0, abs=1e-4))
    assert inf.explain("c0").bottleneck == ("h07", pytest.approx(1.0, abs=1e-4))

    honest = [inf.index(f"h{i:02d}") for i in range(30)]
    assert float(np.median(conf[honest])) > 0.45
    assert float(np.median(conf[honest])) > 2 * max(conf[inf.index(y)] for y in sybils)
    text = render(target)
    assert "entry" in text and "not independent" in text


def test_seed_allocation_counts_as_sure() -> None:
    # A seed whose trust is half its allocation, half from one account.
    edges: list[KindEdge] = [("s", "a", 1.0, ENDORSE), ("a", "s", 1.0, ENDORSE)]
    inf = build(edges, ["s"])
    s = inf.index("s")
    sigma = inf.seed_share()[s]
    assert 0 < sigma < 1
    assert inf.breadth()[s] == pytest.approx(sigma + (1 - sigma) * (1 - math.exp(-1 / 3)))


def test_mass_follows_the_score_scale() -> None:
    inf, _ = random_inflows(4, 200, 600)
    x, n = inf.trust, inf.n
    with np.errstate(divide="ignore"):
        expected = np.clip(1 + np.log10(n * x) / 4, 0, 1)
    assert inf.mass() == pytest.approx(np.nan_to_num(expected, neginf=0.0), abs=1e-12)


# --------------------------------------------------------------------------- rendering


def test_render_names_the_top_source_and_its_share() -> None:
    inf = build(WORKED, ["mod"])
    text = render(inf.explain("ann"))
    assert text.startswith("100% of ann's trust comes from 2 accounts: bob 54% (accepted reviews)")
    assert "mod 46% (endorsements)" in text
    assert "Fragile: 66% of it depends on bob (54% directly" in text  # 0.54 / (1 - 0.46 * 0.39)
    assert "Confidence" in text and "To raise it" in text

    text = render(inf.explain("mod"))
    assert "39% of mod's trust comes from 1 account: ann 39% (account votes)" in text
    assert "61% is its seed allocation" in text

    assert render(inf.explain("syb")).startswith("syb has no trust: no account")


def test_render_lists_kinds_and_remaining_sources() -> None:
    edges: list[KindEdge] = [("s", f"v{i}", 1.0, ENDORSE) for i in range(6)]
    edges += [("v0", "t", 4.0, ENDORSE), ("v0", "t", 1.0, REVIEW)]
    edges += [(f"v{i}", "t", 1.0, DERIVED) for i in range(1, 6)]
    inf = build(edges, ["s"])
    text = render(inf.explain("t", k=2))
    assert "v0 17% (endorsements 13%, accepted reviews 3%)" in text
    assert "and 67% from 4 more" in text
    assert "By kind: derived works 83%, endorsements 13%, accepted reviews 3%." in text
    seed_text = render(inf.explain("s"))
    assert "All of s's trust is its seed allocation" in seed_text


def test_render_of_a_domain_and_of_a_one_account_explanation() -> None:
    inf = build(WORKED, ["mod"])
    e = dataclasses.replace(inf.explain("ann"), domain="code", confidence=None)
    text = render(e)
    assert "ann's trust in code comes from" in text and "Confidence" not in text


# --------------------------------------------------------------------------- the model's graphs


def table_with_kinds() -> tuple[EdgeTable, np.ndarray]:
    records = [
        ("mod", "alice", 1.0, "code"),
        ("mod", "bob", 1.0, "code"),
        ("alice", "bob", 2.0, "code"),
        ("alice", "bob", 1.0, "code"),
        ("bob", "carol", 1.0, "code"),
        ("alice", "carol", 1.0, "art"),
        ("carol", "alice", 1.0, "art"),
        ("carol", "carol", 4.0, "art"),
        ("dave", "erin", 1.0, "art"),
    ]
    kinds = [
        ENDORSE,
        VOTE_ACCOUNT,
        ENDORSE,
        REVIEW,
        VOTE_CONTENT,
        REVIEW,
        ENDORSE,
        ENDORSE,
        DERIVED,
    ]
    return EdgeTable.from_records(records), np.array([CODE[k] for k in kinds], dtype=np.int8)


def test_from_table_matches_the_model_in_every_domain() -> None:
    table, kind = table_with_kinds()
    seeds = ["mod", "zoe"]  # zoe is in no edge: appended, as the model does
    scores = score_accounts(table, seeds)
    for domain in [GLOBAL_DOMAIN, *table.domains]:
        model = {s.account: s.trust for s in scores if s.domain == domain}
        inf = Inflows.from_table(table, kind, seeds, domain=domain)
        assert dict(zip(inf.accounts or [], inf.trust.tolist(), strict=True)) == model
        given = Inflows.from_table(table, kind, seeds, domain=domain, trust=model)
        assert given.explain("carol") == inf.explain("carol")
        for i in range(inf.n):
            if inf.inflow[i] > 0:
                assert all_shares(inf, i) == pytest.approx(1.0, abs=1e-12)
    bob = Inflows.from_table(table, kind, seeds, domain="code").explain("bob")
    assert bob.domain == "code"
    alice = next(s for s in bob.sources if s.account == "alice")
    assert dict(alice.kinds) == pytest.approx(
        {ENDORSE: alice.share * 2 / 3, REVIEW: alice.share / 3}
    )
    art = Inflows.from_table(table, kind, seeds, domain="art")
    assert art.explain("dave").confidence == 0.0


def test_from_table_rejects_bad_input() -> None:
    table, kind = table_with_kinds()
    with pytest.raises(TypeError):
        Inflows.from_table(table, kind, "mod")
    with pytest.raises(ValueError, match="one code per edge row"):
        Inflows.from_table(table, kind[:-1], ["mod"])
    with pytest.raises(ValueError, match="unknown domain"):
        Inflows.from_table(table, kind, ["mod"], domain="music")
    with pytest.raises(ValueError, match="seed"):
        Inflows.from_table(table, kind, [])
    with pytest.raises(ValueError, match="not the fixed point"):
        Inflows.from_table(table, kind, ["mod"], trust={"mod": 1.0})


# --------------------------------------------------------------------------- input checks


def test_trust_that_is_not_the_fixed_point_is_rejected() -> None:
    inf = build(WORKED, ["mod"])
    n = inf.n
    args = dict(
        n=n,
        src=np.array([0, 1, 1, 2, 3]),
        dst=np.array([1, 2, 0, 1, 2]),
        weight=np.array([1.0, 3.0, 1.0, 1.0, 1.0]),
        kind=np.zeros(5, dtype=np.int8),
        seeds=[0],
    )
    x = inf.trust  # accounts mod, ann, bob, syb in this order
    Inflows.from_arrays(trust=x, **args)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not the fixed point"):
        Inflows.from_arrays(trust=np.full(n, 1 / n), **args)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not the fixed point"):
        Inflows.from_arrays(trust=x, alpha=0.3, **args)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not the fixed point"):
        explain_account(3, trust=np.array([0.2, 0.2, 0.2, 0.4]), **args)  # type: ignore[arg-type]
    loose = Inflows.from_arrays(trust=np.full(n, 1 / n), atol=None, **args)  # type: ignore[arg-type]
    assert loose.n == n


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"kind": np.array([0, 0, 0, 0, 99])}, "kind has values outside"),
        ({"src": np.array([0, 1, 1, 2])}, "equal lengths"),
        ({"weight": np.array([1.0, -1.0, 1.0, 1.0, 1.0])}, "finite and > 0"),
        ({"dst": np.array([1.0, 2.0, 0.0, 1.0, 2.0])}, "integer indices"),
        ({"trust": np.ones(3)}, "shape"),
        ({"seeds": []}, "at least one seed"),
        ({"alpha": 0.0}, "alpha"),
        ({"accounts": ["a", "b"]}, "names"),
        ({"source_scale": 0.0}, "source_scale"),
    ],
)
def test_from_arrays_rejects_malformed_input(change: dict[str, object], match: str) -> None:
    inf = build(WORKED, ["mod"])
    args: dict[str, object] = dict(
        n=4,
        src=np.array([0, 1, 1, 2, 3]),
        dst=np.array([1, 2, 0, 1, 2]),
        weight=np.array([1.0, 3.0, 1.0, 1.0, 1.0]),
        kind=np.zeros(5, dtype=np.int8),
        trust=inf.trust,
        seeds=[0],
    )
    args.update(change)
    with pytest.raises(ValueError, match=match):
        Inflows.from_arrays(**args)  # type: ignore[arg-type]


def test_lookup_errors_and_partial_tables() -> None:
    inf = build(WORKED, ["mod"])
    with pytest.raises(KeyError, match="unknown account"):
        inf.explain("nobody")
    with pytest.raises(IndexError):
        inf.explain(17)
    with pytest.raises(ValueError, match="k must be"):
        inf.explain("ann", k=-1)
    assert inf.explain("ann", k=0).sources == () and inf.explain("ann", k=0).n_sources == 2
    partial = Inflows._group(
        inf.n,
        np.zeros(0, dtype=np.int32),
        np.zeros(0, dtype=np.int32),
        np.zeros(0, dtype=np.int8),
        np.zeros(0),
        inf.trust,
        inf.seed_inflow,
        inf.is_seed,
        accounts=None,
        domain=GLOBAL_DOMAIN,
        kind_names=KINDS,
        source_scale=3.0,
        atol=None,
        only=0,
    )
    with pytest.raises(ValueError, match="one account's inflows only"):
        partial.confidence()
    assert partial.explain(0).account == "0"  # unnamed accounts are named by index


def test_empty_graph_with_a_seed() -> None:
    inf = Inflows.from_arrays(2, [], [], [], [], np.array([1.0, 0.0]), [0], accounts=["s", "x"])
    assert inf.confidence().tolist() == [1.0, 0.0]
    assert inf.top_sources(3)[0].tolist() == [[-1, -1, -1], [-1, -1, -1]]
    assert render(inf.explain("s")).startswith("All of s's trust is its seed allocation")


# --------------------------------------------------------------------------- properties


@st.composite
def graphs(draw: st.DrawFn) -> tuple[int, list[tuple[int, int, float, int]], list[int], float]:
    n = draw(st.integers(1, 10))
    node = st.integers(0, n - 1)
    weight = st.floats(0.01, 100.0, allow_nan=False, allow_infinity=False)
    kind = st.integers(0, len(KINDS) - 1)
    edges = draw(st.lists(st.tuples(node, node, weight, kind), max_size=4 * n))
    seeds = draw(st.lists(node, min_size=1, max_size=n))
    alpha = draw(st.sampled_from([0.15, 0.3, 0.85]))
    return n, edges, seeds, alpha


@settings(max_examples=150, deadline=None)
@given(graphs())
def test_property_inflows_sum_to_trust(
    graph: tuple[int, list[tuple[int, int, float, int]], list[int], float],
) -> None:
    n, edges, seeds, alpha = graph
    src = np.array([e[0] for e in edges], dtype=np.int64)
    dst = np.array([e[1] for e in edges], dtype=np.int64)
    w = np.array([e[2] for e in edges], dtype=np.float64)
    kind = np.array([e[3] for e in edges], dtype=np.int64)
    x = TrustMatrix.from_edges(n, src, dst, w).propagate(seeds, alpha=alpha, tol=1e-12).trust
    inf = Inflows.from_arrays(n, src, dst, w, kind, x, seeds, alpha=alpha)
    ref = contribution_reference(n, [(e[0], e[1], e[2]) for e in edges], x, alpha)
    assert np.abs(inf.inflow - x).max() <= 1e-9
    kinds = inf.kind_shares()
    conf = inf.confidence()
    for i in range(n):
        assert inf.seed_inflow[i] + sum(ref[i].values()) == pytest.approx(x[i], abs=1e-9)
        e = inf.explain(i, k=n)
        if inf.inflow[i] > 0:
            assert e.seed_share + sum(s.share for s in e.sources) == pytest.approx(1, abs=1e-12)
            assert e.seed_share + kinds[i].sum() == pytest.approx(1, abs=1e-12)
        else:
            assert e.sources == () and conf[i] == 0
        shares = [s.share for s in e.sources]
        assert shares == sorted(shares, reverse=True)
        assert 0 <= conf[i] <= 1
        assert e.independent_sources is not None
        assert e.independent_sources <= e.effective_sources + 1e-12
