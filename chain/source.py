"""``renown chain-source``: NEAR's final blocks to EVENTS.md messages in Kafka.

How it reads the chain, with the JSON-RPC alone (docs/chain.md has the why and the cost):

1. ``block {"finality": "final"}`` gives the final head; nothing above it is ever read.
2. Each height from the cursor + 1 to the head: ``block {"block_id": h}``. A height NEAR
   skipped answers ``UNKNOWN_BLOCK``; it is passed over, and the next block must name the
   last one read as its ``prev_hash``, so a node that merely lacks blocks (not archival)
   is caught instead of silently skipped.
3. Each chunk *new in that block* (``height_included`` equal to the block's height; a shard
   that produced no chunk repeats its previous header, which was read already):
   ``chunk {"chunk_id": hash}`` lists its transactions.
4. Each transaction sent to a followed contract: ``EXPERIMENTAL_tx_status`` with
   ``wait_until: FINAL`` gives every receipt's outcome, in whatever later block it ran,
   with its logs, status and executor, and the receipts themselves with their
   ``predecessor_id``. Until the whole transaction is final the node answers
   ``TIMEOUT_ERROR`` or a non-final status: the source waits and asks again.
5. Each successful receipt executed by a followed contract: each log that starts with
   ``EVENT_JSON:`` becomes one message, ``log_index`` being the log's position among the
   receipt's logs (the idempotency key with ``receipt_id``), ``block_height`` and
   ``block_timestamp`` those of the block the receipt ran in. A failed receipt's logs are
   dropped: its state changes were reverted, so its events did not happen.
6. Messages are produced keyed by the subject account (EVENTS.md: the account acting in
   the log's first data item; the predecessor when the log names none); after every
   ``chain_batch_blocks`` blocks, and at the head, the producer is flushed and only then
   is the cursor advanced (height and hash).

A crash between the flush and the cursor's commit replays those blocks: the same
messages again, applied once by ingest (``(receipt_id, log_index, item)``). Transactions
sent to other contracts that call a followed contract are not seen (docs/chain.md: NEAR
Lake sees every receipt).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from chain.client import ChainUnavailable
from chain.rpc import RateLimited, RpcError
from ingest.decode import EVENT_PREFIX, subject_of

__all__ = [
    "Backoff",
    "BlockInfo",
    "ChainGap",
    "ChainSource",
    "ChainSourceError",
    "CursorStore",
    "Progress",
    "Rpc",
    "events_of_tx",
]

log = logging.getLogger("renown.chain.source")



Keyed = tuple[str, dict[str, Any]]  # (Kafka key, EVENTS.md message)
GAP_RETRIES = 3  # re-reads of the heights before a block that does not follow the last
BEAT_S = 5.0  # a waiting loop tells the health probe it is alive this often


class ChainSourceError(RuntimeError):
    """Something waiting will not fix: the operator must act (docs/chain.md)."""


class ChainGap(ChainSourceError):
    """A block does not follow the last one read: the node lacks blocks in between."""


class Rpc(Protocol):
    def call(self, method: str, params: Any) -> Any: ...


class CursorStore(Protocol):
    """Where the source keeps its place (storage.chain_repo behind it in production)."""

    def load(self, name: str) -> tuple[int, str | None] | None: ...

    def save(
        self,
        name: str,
        *,
        height: int,
        block_hash: str | None,
        block_timestamp: int | None,
        head_height: int | None,
        added_messages: int,
    ) -> None: ...

    def save_head(self, name: str, head_height: int) -> None: ...


@dataclass(frozen=True)
class BlockInfo:
    height: int
    hash: str
    timestamp_ns: int


def events_of_tx(
    status: dict[str, Any],
    contracts: frozenset[str],
    block_of: Callable[[str], BlockInfo],
) -> list[Keyed]:
    """The (key, EVENTS.md message) pairs of one final ``EXPERIMENTAL_tx_status`` answer.

    Pure but for ``block_of`` (block hash to height and time), so the rules are tested
    on NEAR's shapes without a node. Order: by the block each receipt ran in, then as the
    node listed the outcomes (execution order within a block).
    """
    senders: dict[str, str] = {}
    for receipt in status.get("receipts") or []:
        if isinstance(receipt, dict) and "receipt_id" in receipt:
            senders[str(receipt["receipt_id"])] = str(receipt.get("predecessor_id") or "")
    signer = str((status.get("transaction") or {}).get("signer_id") or "")
    found: list[tuple[int, int, str, dict[str, Any]]] = []
    for position, item in enumerate(status.get("receipts_outcome") or []):
        outcome = item.get("outcome") or {}
        if outcome.get("executor_id") not in contracts:
            continue
        if "Failure" in (outcome.get("status") or {}):
            continue  # reverted: its events did not happen
        logs = [line for line in outcome.get("logs") or [] if isinstance(line, str)]
        if not any(line.startswith(EVENT_PREFIX) for line in logs):
            continue
        receipt_id = str(item["id"])
        block = block_of(str(item["block_hash"]))
        predecessor = senders.get(receipt_id) or signer
        for index, line in enumerate(logs):
            if not line.startswith(EVENT_PREFIX):
                continue
            key = subject_of(line) or predecessor
            message = {
                "block_height": block.height,
                "block_timestamp": block.timestamp_ns,
                "receipt_id": receipt_id,
                "log_index": index,
                "contract_id": outcome["executor_id"],
                "predecessor_id": predecessor,
                "log": line,
            }
            found.append((block.height, position, key, message))
    found.sort(key=lambda f: (f[0], f[1]))
    return [(key, message) for _, _, key, message in found]


@dataclass
class Backoff:
    """Exponential waits with full jitter between ``base`` and ``cap`` seconds, reset by a
    success; a rate limit's ``Retry-After`` wins when longer."""

    base: float = 0.5
    cap: float = 30.0
    attempt: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def next_wait(self, at_least: float | None = None) -> float:
        self.attempt += 1
        # the exponent capped: after hours of failures 2**attempt would overflow a float
        wait = self.rng.uniform(self.base, min(self.cap, self.base * 2 ** min(self.attempt, 30)))
        return max(wait, at_least or 0.0)

    def reset(self) -> None:
        self.attempt = 0


@dataclass
class Progress:
    """What the source did, for the logs, the progress bar and the tests."""

    blocks: int = 0
    skipped_heights: int = 0
    transactions: int = 0
    messages: int = 0
    retries: int = 0
    height: int | None = None
    head: int | None = None


@dataclass
class ChainSource:
    """Follows (or backfills) one chain for the ``contracts``; see the module docstring.

    ``send(key, message)`` hands a message to the producer, ``flush()`` returns once
    every message sent is acknowledged (raising if any was not). ``sleep`` is the wait
    between retries and head polls, interruptible by ``stop``.
    """

    rpc: Rpc
    contracts: frozenset[str]
    send: Callable[[str, dict[str, Any]], None]
    flush: Callable[[], None]
    cursors: CursorStore
    stop: threading.Event = field(default_factory=threading.Event)
    poll_s: float = 1.0
    batch_blocks: int = 50
    backoff: Backoff = field(default_factory=Backoff)
    on_progress: Callable[[Progress], None] | None = None
    heartbeat: Callable[[Progress], None] | None = None  # each round and each RPC attempt
    progress: Progress = field(default_factory=Progress)
    _block_cache: dict[str, BlockInfo] = field(default_factory=dict)
    _flush_failed: bool = False
    # The gap and finality loops wait between successful calls, which reset `backoff`:
    # each has its own, reset only when that loop is over.
    _gap_backoff: Backoff = field(init=False)
    _final_backoff: Backoff = field(init=False)

    def __post_init__(self) -> None:
        self._gap_backoff = Backoff(self.backoff.base, self.backoff.cap)
        self._final_backoff = Backoff(self.backoff.base, self.backoff.cap)

    def _sleep(self, seconds: float) -> bool:
        """Wait ``seconds`` unless stopped (True then), telling the health probe every few
        seconds that the loop is alive: a long back-off is waiting, not hanging."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.stop.wait(min(left, BEAT_S)):
                return True
            if self.heartbeat is not None:
                self.heartbeat(self.progress)
        return self.stop.is_set()

    # ------------------------------------------------------------------ RPC with retries

    def _call(self, method: str, params: Any, *, permanent_after: int = 0) -> Any:
        """``rpc.call`` until it answers. Transient failures wait (backoff) and retry
        forever while ``stop`` is clear; an RpcError that is not transient is raised,
        after ``permanent_after`` extra attempts (for answers a lagging node may give)."""
        left = permanent_after
        while True:
            if self.heartbeat is not None:  # alive, even while the node is down
                self.heartbeat(self.progress)
            try:
                result = self.rpc.call(method, params)
                self.backoff.reset()
                return result
            except RateLimited as exc:
                wait = self.backoff.next_wait(exc.retry_after)
                why = str(exc)
            except ChainUnavailable as exc:
                wait, why = self.backoff.next_wait(), str(exc)
            except RpcError as exc:
                if not exc.transient:
                    if left <= 0:
                        raise
                    left -= 1
                wait, why = self.backoff.next_wait(), str(exc)
            self.progress.retries += 1
            log.warning("%s failed (%s); retrying in %.1f s", method, why, wait)
            if self._sleep(wait):
                raise InterruptedError("stopped while waiting to retry")

    def final_head(self) -> BlockInfo:
        return self._info(self._call("block", {"finality": "final"}))

    def _info(self, block: dict[str, Any]) -> BlockInfo:
        header = block["header"]
        info = BlockInfo(int(header["height"]), str(header["hash"]), _timestamp(header))
        self._block_cache[info.hash] = info
        return info

    def _block_of(self, block_hash: str) -> BlockInfo:
        info = self._block_cache.get(block_hash)
        if info is None:  # a final receipt's block: a lagging node may not have it yet
            info = self._info(self._call("block", {"block_id": block_hash}, permanent_after=3))
        return info

    # ------------------------------------------------------------------ one block

    def fetch_block(self, height: int) -> dict[str, Any] | None:
        """The block at ``height``; None for a height the chain skipped."""
        try:
            return dict(self._call("block", {"block_id": height}))
        except RpcError as exc:
            if exc.cause == "UNKNOWN_BLOCK":
                return None
            raise

    def messages_of(self, block: dict[str, Any]) -> list[Keyed]:
        """The messages of the followed contracts' transactions in ``block``'s new chunks."""
        height = int(block["header"]["height"])
        messages: list[Keyed] = []
        for chunk_header in block.get("chunks") or []:
            if int(chunk_header.get("height_included", -1)) != height:
                continue  # no new chunk for this shard in this block: read before
            chunk_id = {"chunk_id": chunk_header["chunk_hash"]}
            chunk = self._call("chunk", chunk_id, permanent_after=3)
            for tx in chunk.get("transactions") or []:
                if tx.get("receiver_id") not in self.contracts:
                    continue
                self.progress.transactions += 1
                status = self._final_status(str(tx["hash"]), str(tx["signer_id"]))
                if status:
                    messages.extend(events_of_tx(status, self.contracts, self._block_of))
        return messages

    def _final_status(self, tx_hash: str, signer_id: str) -> dict[str, Any]:
        """The transaction's outcome once every receipt of it is final (never before);
        empty for a transaction the chunk included but that was invalid to apply."""
        params = {"tx_hash": tx_hash, "sender_account_id": signer_id, "wait_until": "FINAL"}
        started, waits = time.monotonic(), 0
        while True:
            try:
                status = self._call("EXPERIMENTAL_tx_status", params, permanent_after=5)
            except RpcError as exc:
                if exc.cause != "INVALID_TRANSACTION":
                    raise
                # A chunk may include a transaction that turns out invalid when applied
                # (nonce, balance): it never ran, so it has no receipts and no events.
                log.warning("tx %s in a final chunk is invalid (%s): no events", tx_hash, exc)
                return {}
            if status.get("final_execution_status") == "FINAL":
                self._final_backoff.reset()
                return dict(status)
            wait = self._final_backoff.next_wait()
            waits += 1
            self.progress.retries += 1
            # INFO at first (a receipt a block or two behind is normal), WARNING once it
            # lasts: a node that never says FINAL would otherwise stall the source silently.
            level = logging.WARNING if time.monotonic() - started > 60 else logging.INFO
            log.log(level, "tx %s not final yet (%s, %d waits); asking again in %.1f s",
                    tx_hash, status.get("final_execution_status"), waits, wait)  # fmt: skip
            if self._sleep(wait):
                raise InterruptedError("stopped while waiting for a final outcome")

    # ------------------------------------------------------------------ the loop

    def run(
        self,
        name: str,
        *,
        start_height: int | None = None,
        to_height: int | None = None,
    ) -> Progress:
        """Read from the cursor ``name`` (or ``start_height`` when it has none; a given
        ``start_height`` below the cursor is ignored so a restart never replays) to
        ``to_height`` (then return), or forever while ``stop`` is clear."""
        stored = self.cursors.load(name)
        if stored is not None:
            last_height, last_hash = stored
        elif start_height is not None:
            last_height, last_hash = start_height - 1, None
        else:
            head = self.final_head()
            last_height, last_hash = head.height, head.hash  # from now on
            self.cursors.save(name, height=head.height, block_hash=head.hash,
                              block_timestamp=head.timestamp_ns, head_height=head.height,
                              added_messages=0)  # fmt: skip
            log.warning("no cursor %s and no start height: following from the head, %d",
                        name, head.height)  # fmt: skip
        self.progress.height = last_height
        last_real = last_height  # the height of the block last_hash names
        gaps = 0  # consecutive failed continuity checks
        pending = 0  # messages sent since the cursor was last saved
        unsaved: BlockInfo | None = None
        head = self.final_head()
        self.progress.head = head.height
        try:
            while not self.stop.is_set():
                if to_height is not None and last_real >= to_height:
                    break  # the range is read (a block past its end confirmed the skips)
                # A range whose last heights answered UNKNOWN_BLOCK reads on past its end
                # until a block confirms those heights were skipped (checked, not used).
                end = head.height if to_height is None else min(to_height, head.height)
                if last_height >= head.height:  # caught up with the final head: wait
                    if self._sleep(self.poll_s):
                        break
                    head = self.final_head()
                    self.progress.head = head.height
                    self.cursors.save_head(name, head.height)
                    continue
                height = last_height + 1
                block = self.fetch_block(height)
                if block is None:
                    self.progress.skipped_heights += 1
                    last_height = height
                    self.progress.height = min(height, to_height or height)
                    continue
                info = self._info(block)
                header = block["header"]
                prev = str(header.get("prev_hash"))
                prev_height = header.get("prev_height")
                if (last_hash is not None and prev != last_hash) or (
                    prev_height is not None and int(prev_height) > last_real
                ):
                    # A height answered UNKNOWN_BLOCK was not a skipped one (the block's
                    # parent is at or after it). A lagging node behind a load balancer does
                    # that for recent blocks: read the heights since the last block again,
                    # a few times, before calling it a gap. On a new cursor or a backfill,
                    # prev_height catches it even before any hash is known.
                    gaps += 1
                    if gaps > GAP_RETRIES:
                        raise ChainGap(
                            f"block {height} ({info.hash}) follows block {prev_height} "
                            f"({prev}), not the last block read ({last_real}, {last_hash}): "
                            "the RPC node lacks blocks in between (use an archival node for "
                            "old heights, docs/chain.md)"
                        )
                    wait = self._gap_backoff.next_wait()
                    log.warning("block %d does not follow block %d: reading the heights in "
                                "between again in %.1f s", height, last_real, wait)  # fmt: skip
                    self.progress.skipped_heights -= height - 1 - last_real
                    self.progress.retries += 1
                    last_height = last_real
                    if self._sleep(wait):
                        raise InterruptedError("stopped while waiting to re-read a gap")
                    continue
                gaps = 0
                self._gap_backoff.reset()
                if to_height is not None and height > to_height:
                    break  # past the range: it only confirmed the range's last skips
                messages = self.messages_of(block)
                for key, message in messages:
                    self.send(key, message)
                pending += len(messages)
                self.progress.messages += len(messages)
                self.progress.blocks += 1
                last_height, last_hash, unsaved = height, info.hash, info
                last_real = height
                self.progress.height = height
                if self.progress.blocks % self.batch_blocks == 0 or height >= end:
                    if height < head.height:  # catching up: the head for the lag metrics
                        head = self.final_head()
                        self.progress.head = head.height
                    self._commit(name, unsaved, head.height, pending)
                    pending, unsaved = 0, None
                if self.on_progress is not None:
                    self.on_progress(self.progress)
                if len(self._block_cache) > 10_000:
                    self._block_cache.clear()
        except ChainGap:
            raise  # the blocks read since the last save may be the wrong chain's
        except BaseException:
            # Stopped, interrupted or failed mid-batch: keep what Kafka acknowledged.
            if unsaved is not None:
                self._save_on_exit(name, unsaved, head.height, pending)
            raise
        # Skipped heights at the end need no save: the next run skips them again.
        if unsaved is not None:
            self._save_on_exit(name, unsaved, head.height, pending)
        return self.progress

    def _save_on_exit(self, name: str, block: BlockInfo, head: int, added: int) -> None:
        if self._flush_failed:
            return  # Kafka refused messages: they must be read again, not skipped
        try:
            self._commit(name, block, head, added)
        except Exception as exc:  # not fatal: the replay after a restart covers these blocks
            log.error("could not save the cursor at %d on the way out: %s", block.height, exc)

    def _commit(self, name: str, block: BlockInfo, head: int, added: int) -> None:
        try:
            self.flush()  # every message up to this block acknowledged by Kafka...
        except BaseException:
            self._flush_failed = True
            raise
        self.cursors.save(  # ...then, and only then, the cursor moves past it
            name,
            height=block.height,
            block_hash=block.hash,
            block_timestamp=block.timestamp_ns,
            head_height=head,
            added_messages=added,
        )


def _timestamp(header: dict[str, Any]) -> int:
    # timestamp_nanosec is the exact value as a string; timestamp a JSON number that
    # JavaScript readers may round (both are in NEAR's BlockHeaderView).
    return int(header.get("timestamp_nanosec") or header["timestamp"])
