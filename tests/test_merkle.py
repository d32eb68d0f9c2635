"""Snapshot Merkle trees (scoring.merkle) against a slow recursive reference."""

from __future__ import annotations

import hashlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.merkle import (
    Leaf,
    MerkleTree,
    Proof,
    empty_root,
    leaf_hash,
    root_from_proof,
    score_micro,
    verify,
)


def reference_leaf(account: str, domain: str, micro: int, epoch: int) -> bytes:
    """The documented layout, written out independently of Leaf.encode."""
    a, d = account.encode(), domain.encode()
    body = b"\x01" + len(a).to_bytes(2, "big") + a + len(d).to_bytes(2, "big") + d
    body += micro.to_bytes(8, "big") + epoch.to_bytes(8, "big")
    return hashlib.sha256(b"\x00" + body).digest()


def reference_root(hashes: list[bytes]) -> bytes:
    """Level by level, the plain way: pair up, promote an odd last node."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    level = hashes
    while len(level) > 1:
        nxt = []
        for i in range(0, len(level), 2):
            if i + 1 < len(level):
                nxt.append(hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest())
            else:
                nxt.append(level[i])
        level = nxt
    return level[0]


def leaves(n: int, epoch: int = 7) -> list[Leaf]:
    return [Leaf(f"acct{i:05d}.near", "global", (i * 7919) % 100_000_001, epoch) for i in range(n)]


def test_leaf_encoding_matches_the_documented_layout() -> None:
    leaf = Leaf("alice.near", "labeling", 53_300_000, 12)
    assert leaf_hash(leaf) == reference_leaf("alice.near", "labeling", 53_300_000, 12)
    assert leaf.encode()[:1] == b"\x01"  # the version byte
    assert struct.unpack(">QQ", leaf.encode()[-16:]) == (53_300_000, 12)


def test_known_root_of_three_leaves() -> None:
    """A hand-computed root: h(h(l0, l1), l2), the odd third leaf promoted."""
    ls = leaves(3)
    h = [reference_leaf(x.account, x.domain, x.score_micro, x.epoch) for x in ls]
    node = hashlib.sha256(b"\x01" + h[0] + h[1]).digest()
    want = hashlib.sha256(b"\x01" + node + h[2]).digest()
    assert MerkleTree(ls).root == want


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 7, 8, 9, 31, 32, 33, 100])
def test_root_matches_reference_and_every_proof_verifies(n: int) -> None:
    ls = leaves(n)
    tree = MerkleTree(reversed(ls))  # input order does not matter
    assert tree.root == reference_root([leaf_hash(x) for x in sorted(ls, key=lambda x: x.key)])
    for i in range(n):
        proof = tree.proof(i)
        assert verify(proof, tree.root, tree.count)
        assert Proof.from_json(proof.to_json()) == proof
    if n == 0:
        assert tree.root == empty_root()


def test_leaves_are_sorted_by_account_then_domain_bytes() -> None:
    tree = MerkleTree(
        [Leaf("b.near", "a", 1, 1), Leaf("a.near", "z", 1, 1), Leaf("a.near", "b", 1, 1)]
    )
    assert [(x.account, x.domain) for x in tree.leaves] == [
        ("a.near", "b"),
        ("a.near", "z"),
        ("b.near", "a"),
    ]
    assert tree.index_of("b.near", "a") == 2
    with pytest.raises(KeyError):
        tree.index_of("c.near", "a")


def test_forged_proofs_fail() -> None:
    tree = MerkleTree(leaves(10))
    proof = tree.proof(4)
    leaf = proof.leaf
    other = Leaf(leaf.account, leaf.domain, leaf.score_micro + 1, leaf.epoch)
    assert not verify(Proof(other, proof.index, proof.count, proof.siblings), tree.root, tree.count)
    stale = Leaf(leaf.account, leaf.domain, leaf.score_micro, leaf.epoch - 1)
    assert not verify(Proof(stale, proof.index, proof.count, proof.siblings), tree.root, tree.count)
    assert not verify(
        Proof(leaf, proof.index + 1, proof.count, proof.siblings), tree.root, tree.count
    )
    assert not verify(
        Proof(leaf, proof.index, proof.count + 1, proof.siblings), tree.root, tree.count
    )
    assert not verify(
        Proof(leaf, proof.index, proof.count, proof.siblings[:-1]), tree.root, tree.count
    )
    assert not verify(
        Proof(leaf, proof.index, proof.count, (*proof.siblings, b"\0" * 32)), tree.root, tree.count
    )
    assert not verify(Proof(leaf, 99, proof.count, proof.siblings), tree.root, tree.count)


def test_an_inner_node_cannot_pass_as_a_leaf() -> None:
    """Domain separation: the pair hashed under a node is not a leaf encoding."""
    tree = MerkleTree(leaves(4))
    left, right = tree.levels[0][0], tree.levels[0][1]
    # Folding the level-1 node with index 0 of 2 gives the root, but only as a node.
    node = tree.levels[1][0]
    assert root_from_proof(node, 0, 2, [tree.levels[1][1]]) == tree.root
    assert hashlib.sha256(b"\x00" + left + right).digest() != node


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        MerkleTree([Leaf("a.near", "g", 1, 1), Leaf("a.near", "g", 2, 1)])
    with pytest.raises(ValueError, match="score"):
        score_micro(100.5)
    with pytest.raises(ValueError, match="account"):
        Leaf("", "g", 1, 1).encode()
    with pytest.raises(IndexError):
        MerkleTree(leaves(2)).proof(2)
    assert score_micro(53.3) == 53_300_000
    assert score_micro(0.0) == 0 and score_micro(100.0) == 100_000_000


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.text(min_size=1, max_size=12), st.sampled_from(["global", "code", "art"])),
        min_size=1,
        max_size=70,
        unique=True,
    ),
    st.integers(0, 2**64 - 1),
    st.data(),
)
def test_property_every_proof_verifies_and_any_flipped_bit_fails(
    keys: list[tuple[str, str]], epoch: int, data: st.DataObject
) -> None:
    ls = [Leaf(a, d, (i * 104729) % 100_000_001, epoch) for i, (a, d) in enumerate(keys)]
    tree = MerkleTree(ls)
    assert tree.root == reference_root([leaf_hash(x) for x in tree.leaves])
    i = data.draw(st.integers(0, tree.count - 1))
    proof = tree.proof(i)
    assert verify(proof, tree.root, tree.count)
    if proof.siblings:
        k = data.draw(st.integers(0, len(proof.siblings) - 1))
        bit = data.draw(st.integers(0, 255))
        flipped = bytearray(proof.siblings[k])
        flipped[bit // 8] ^= 1 << (bit % 8)
        sib = list(proof.siblings)
        sib[k] = bytes(flipped)
        assert not verify(Proof(proof.leaf, i, proof.count, tuple(sib)), tree.root, tree.count)
    root = bytearray(tree.root)
    bit = data.draw(st.integers(0, 255))
    root[bit // 8] ^= 1 << (bit % 8)
    assert not verify(proof, bytes(root), tree.count)
