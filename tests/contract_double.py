"""TEST DOUBLE: an in-memory model of the snapshot contract behind the ChainClient seam.

It implements the contract's rules (contract/renown_snapshots.py: publisher-only calls,
epochs strictly increasing, store_scores for a published epoch, idempotent, an older
epoch never overwriting a newer stored score) in plain Python, so that the publisher's
own logic (batching, resume, failure reporting) can be tested fast and with injected
faults. It is not the contract: the contract's wasm is tested through py-near, the
JSON-RPC double and the wasmtime host emulator (tests/test_contract*.py).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from chain.client import DEFAULT_GAS, CallOutcome, ChainUnavailable, ViewError
from scoring.merkle import Leaf, Proof, verify


class Crash(BaseException):
    """Raised after a transaction applied, as if the publisher process died right then."""


@dataclass
class SnapshotContractDouble:
    contract_id: str = "snapshots.renown.near"
    publisher: str = "publisher.renown.near"
    caller: str = "publisher.renown.near"
    snapshots: dict[int, dict[str, Any]] = field(default_factory=dict)
    scores: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    # Fault injection: method -> remaining count.
    fail: dict[str, str] = field(default_factory=dict)  # method -> panic message, once
    crash_after: dict[str, int] = field(default_factory=dict)  # method -> nth call crashes
    down: bool = False
    max_batch: int = 100
    _tx: itertools.count = field(default_factory=itertools.count)  # type: ignore[type-arg]

    # ------------------------------------------------------------------ views
    def view(self, method: str, args: dict[str, Any]) -> Any:
        if self.down:
            raise ChainUnavailable("test double: RPC down")
        if method == "get_latest_snapshot":
            return self.snapshots[max(self.snapshots)] if self.snapshots else None
        if method == "get_snapshot":
            return self.snapshots.get(int(args["epoch"]))
        if method == "get_score":
            return self.scores.get((args["account"], args["domain"]))
        if method == "verify":
            snap = self.snapshots.get(int(args["epoch"]))
            if snap is None:  # the contract panics, which py-near raises as a view error
                raise ViewError(f"verify: epoch {args['epoch']} is not published")
            leaf = Leaf(args["account"], args["domain"], int(args["score_micro"]), snap["epoch"])
            sib = tuple(bytes.fromhex(s) for s in args["siblings"])
            proof = Proof(leaf, int(args["index"]), snap["count"], sib)
            return verify(proof, bytes.fromhex(snap["root"]), snap["count"])
        raise AssertionError(f"unknown view {method}")

    # ------------------------------------------------------------------ calls
    def call(self, method: str, args: dict[str, Any], *, gas: int = DEFAULT_GAS) -> CallOutcome:
        if self.down:
            raise ChainUnavailable("test double: RPC down")
        tx = f"tx{next(self._tx):04d}"
        self.calls.append((method, args))
        if method in self.fail:
            return CallOutcome(False, tx, self.fail.pop(method))
        try:
            value = getattr(self, f"_{method}")(**args)
        except ValueError as exc:  # a contract panic: state unchanged, Failure status
            return CallOutcome(False, tx, f"Smart contract panicked: {exc}")
        if method in self.crash_after:
            self.crash_after[method] -= 1
            if self.crash_after[method] == 0:
                del self.crash_after[method]
                raise Crash(f"died after {method} applied")
        return CallOutcome(True, tx, None, [], value)

    def _only_publisher(self) -> None:
        if self.caller != self.publisher:
            raise ValueError(f"only the publisher {self.publisher} may do this")

    def _publish(self, epoch: int, root: str, count: int, uri: str) -> None:
        self._only_publisher()
        last = max(self.snapshots) if self.snapshots else -1
        if epoch <= last:
            raise ValueError(f"epoch {epoch} is not newer than the last published ({last})")
        self.snapshots[epoch] = {"epoch": epoch, "root": root, "count": count, "uri": uri}

    def _store_scores(self, epoch: int, scores: list[dict[str, Any]]) -> int:
        self._only_publisher()
        if epoch not in self.snapshots:
            raise ValueError(f"epoch {epoch} is not published")
        if len(scores) > self.max_batch:
            raise ValueError(f"at most {self.max_batch} scores per call")
        for s in scores:
            key = (s["account"], s["domain"])
            old = self.scores.get(key)
            if old is None or old["epoch"] <= epoch:
                self.scores[key] = {"score_micro": int(s["score_micro"]), "epoch": epoch}
        return len(scores)
