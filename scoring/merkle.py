"""Epoch snapshots as a sha256 Merkle tree: canonical leaves, root, inclusion proofs.

Why a Merkle tree: the NEAR contract stores one 32-byte root per epoch (and the scores of a
bounded set of accounts); any of the millions of scores can then be proven against that
root with about 20 hashes, so a marketplace contract can gate on a score without trusting
Renown's servers, and anyone can check that the published table is the one the root
commits to.

The encoding is part of the public interface (docs/contract.md) and is implemented three
times: here, in the contract (contract/renown_snapshots.py) and in the verification guide.
Every rule below is therefore fixed and versioned by ``LEAF_VERSION``:

* **Leaf.** ``sha256(0x00 || u8 version || u16be len(account) || account ||
  u16be len(domain) || domain || u64be score_micro || u64be epoch)``, with account and
  domain in UTF-8 (NEAR account ids are ASCII, at most 64 bytes) and ``score_micro`` the
  0-100 score in millionths of a point, rounded half to even (``round(score * 1e6)``).
  The leading 0x00 and the 0x01 of inner nodes keep a leaf from being read as a node
  (the second-preimage attack on Merkle trees, as in RFC 6962).
* **Order.** Leaves are sorted by ``(account, domain)`` as UTF-8 bytes; each (account,
  domain) pair appears once. Sorting makes the tree a function of the scores alone (same
  scores, same root, on any machine) and lets a reader binary-search the table.
* **Inner node.** ``sha256(0x01 || left || right)``.
* **Odd levels.** The last node of a level with an odd count is promoted unchanged to the
  next level (no duplication: duplicating it, as Bitcoin does, lets two different leaf
  lists share a root, CVE-2012-2459).
* **Empty tree.** The root of zero leaves is ``sha256(b"")``.
* **Proof.** The leaf's index and the sibling hashes from the leaf up, skipping levels
  where the node is promoted. Which side each sibling is on follows from the index and the
  leaf count, which the contract stores with the root, so a proof carries no flags.
"""

from __future__ import annotations

import hashlib
import itertools
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "LEAF_VERSION",
    "Leaf",
    "MerkleTree",
    "Proof",
    "empty_root",
    "leaf_hash",
    "node_hash",
    "score_micro",
    "verify",
]

LEAF_VERSION = 1
SCORE_SCALE = 1_000_000
_LEAF = b"\x00"
_NODE = b"\x01"
MAX_NAME_BYTES = 0xFFFF


def score_micro(score: float) -> int:
    """The 0-100 score as an integer number of millionths of a point.

    Fixed point so that the contract (which has no floats worth trusting) and every
    reader compare integers; a millionth of a point is far below any gate a marketplace
    would set, and 100e6 fits easily in a u64.
    """
    if not 0.0 <= score <= 100.0:
        raise ValueError(f"score must lie in [0, 100], got {score!r}")
    return round(score * SCORE_SCALE)


def stored_score_micro(score: float) -> int:
    """A stored score as its leaf value: clamped to [0, 100] first (a float computed as
    100 may come back as 100.00000000000001), the one rule the snapshot, the publisher
    and the API's downloads share so that all three give the leaf's exact value."""
    return score_micro(min(max(score, 0.0), 100.0))


def _name(value: str, what: str) -> bytes:
    raw = value.encode("utf-8")
    if not raw or len(raw) > MAX_NAME_BYTES:
        raise ValueError(f"{what} must be 1..{MAX_NAME_BYTES} UTF-8 bytes, got {len(raw)}")
    return struct.pack(">H", len(raw)) + raw


@dataclass(frozen=True, order=True, slots=True)
class Leaf:
    """One (account, domain) score of an epoch; ordered as the tree orders leaves."""

    account: str
    domain: str
    score_micro: int
    epoch: int

    def encode(self) -> bytes:
        """The canonical bytes hashed into the leaf (the module docstring's layout)."""
        if not 0 <= self.score_micro <= 100 * SCORE_SCALE:
            raise ValueError(f"score_micro out of range: {self.score_micro}")
        if not 0 <= self.epoch < 2**64:
            raise ValueError(f"epoch out of range: {self.epoch}")
        return (
            bytes([LEAF_VERSION])
            + _name(self.account, "account")
            + _name(self.domain, "domain")
            + struct.pack(">QQ", self.score_micro, self.epoch)
        )

    @property
    def key(self) -> tuple[bytes, bytes]:
        return self.account.encode("utf-8"), self.domain.encode("utf-8")


def leaf_hash(leaf: Leaf) -> bytes:
    return hashlib.sha256(_LEAF + leaf.encode()).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE + left + right).digest()


def empty_root() -> bytes:
    return hashlib.sha256(b"").digest()


@dataclass(frozen=True, slots=True)
class Proof:
    """An inclusion proof: the leaf, its index among ``count`` leaves, the siblings."""

    leaf: Leaf
    index: int
    count: int
    siblings: tuple[bytes, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "account": self.leaf.account,
            "domain": self.leaf.domain,
            "score_micro": self.leaf.score_micro,
            "epoch": self.leaf.epoch,
            "index": self.index,
            "count": self.count,
            "siblings": [s.hex() for s in self.siblings],
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Proof:
        sib = data["siblings"]
        if not isinstance(sib, list):
            raise ValueError("siblings must be a list of hex strings")
        return cls(
            leaf=Leaf(
                str(data["account"]),
                str(data["domain"]),
                int(data["score_micro"]),  # type: ignore[call-overload]
                int(data["epoch"]),  # type: ignore[call-overload]
            ),
            index=int(data["index"]),  # type: ignore[call-overload]
            count=int(data["count"]),  # type: ignore[call-overload]
            siblings=tuple(bytes.fromhex(str(s)) for s in sib),
        )


def root_from_proof(leaf_digest: bytes, index: int, count: int, siblings: Sequence[bytes]) -> bytes:
    """Fold a proof up to the root it implies; ValueError if its shape is wrong.

    The walk the contract's ``verify`` makes, step for step: at each level of ``size``
    nodes, a node at the last position of an odd level is promoted; otherwise its sibling
    is the next hash of the proof, on the left when the index is odd.
    """
    if not 0 <= index < count:
        raise ValueError(f"index {index} outside [0, {count})")
    node, size, used = leaf_digest, count, 0
    while size > 1:
        if index == size - 1 and size % 2 == 1:
            pass  # promoted
        else:
            if used >= len(siblings):
                raise ValueError("proof too short")
            sib = siblings[used]
            used += 1
            node = node_hash(sib, node) if index % 2 else node_hash(node, sib)
        index //= 2
        size = (size + 1) // 2
    if used != len(siblings):
        raise ValueError("proof too long")
    return node


def verify(proof: Proof, root: bytes, count: int) -> bool:
    """Whether ``proof`` proves its leaf against a trusted ``root`` of ``count`` leaves.

    ``count`` must come from the same trusted place as the root (the contract stores both
    per epoch), not from the proof: the shape of the walk depends on it, and some indices
    walk the same way for several counts. A proof claiming another count is refused.
    False on any malformed proof.
    """
    if proof.count != count:
        return False
    try:
        digest = root_from_proof(leaf_hash(proof.leaf), proof.index, count, proof.siblings)
    except ValueError:
        return False
    return digest == root


def _leaf_hashes(leaves: Sequence[Leaf]) -> list[bytes]:
    """``leaf_hash`` of each leaf, inlined: this loop is most of a million-leaf build."""
    sha = hashlib.sha256
    pack = struct.Struct(">QQ").pack
    version = bytes([LEAF_VERSION])
    names: dict[str, bytes] = {}  # domains repeat; accounts repeat across domains
    out: list[bytes] = []
    append = out.append
    for leaf in leaves:
        if not 0 <= leaf.score_micro <= 100 * SCORE_SCALE or not 0 <= leaf.epoch < 2**64:
            leaf.encode()  # raises the precise error
        a = names.get(leaf.account)
        if a is None:
            a = names[leaf.account] = _name(leaf.account, "account")
        d = names.get(leaf.domain)
        if d is None:
            d = names[leaf.domain] = _name(leaf.domain, "domain")
        append(sha(_LEAF + version + a + d + pack(leaf.score_micro, leaf.epoch)).digest())
    return out


class MerkleTree:
    """All levels of the tree over one epoch's leaves, for the root and any proof.

    Holds every level (about 2 × 32 bytes per leaf: 64 MB at a million leaves) so that a
    proof costs O(log n) lookups; the leaves themselves are kept sorted for lookup by
    account and domain.
    """

    def __init__(self, leaves: Iterable[Leaf]) -> None:
        # Code-point order of str is the byte order of their UTF-8 encodings, so sorting
        # the strings sorts the keys without encoding them.
        ordered = sorted(leaves, key=lambda leaf: (leaf.account, leaf.domain))
        self._index = {(leaf.account, leaf.domain): i for i, leaf in enumerate(ordered)}
        if len(self._index) != len(ordered):
            for a, b in itertools.pairwise(ordered):
                if (a.account, a.domain) == (b.account, b.domain):
                    raise ValueError(f"duplicate leaf for {a.account!r} in {a.domain!r}")
        self.leaves: list[Leaf] = ordered
        level = _leaf_hashes(ordered)
        self.levels: list[list[bytes]] = [level]
        while len(level) > 1:
            nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                nxt.append(level[-1])
            self.levels.append(nxt)
            level = nxt

    @property
    def count(self) -> int:
        return len(self.leaves)

    @property
    def root(self) -> bytes:
        return self.levels[-1][0] if self.leaves else empty_root()

    def index_of(self, account: str, domain: str) -> int:
        """Position of the (account, domain) leaf; KeyError if it is not in the tree."""
        return self._index[(account, domain)]

    def proof(self, index: int) -> Proof:
        if not 0 <= index < self.count:
            raise IndexError(f"leaf index {index} outside [0, {self.count})")
        siblings: list[bytes] = []
        i = index
        for level in self.levels[:-1]:
            size = len(level)
            if not (i == size - 1 and size % 2 == 1):
                siblings.append(level[i ^ 1])
            i //= 2
        return Proof(self.leaves[index], index, self.count, tuple(siblings))
