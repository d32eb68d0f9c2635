"""Chain source benchmark (issue 7): what reading NEAR costs Renown's side, per block and
per followed transaction.

    python -m bench.chain_source [--blocks 300] [--shards 4] [--txs 0,2,8]
                                 [--latency-ms 0,20]

The node is the JSON-RPC test double (tests/near_rpc_double.py) in a process of its own,
on loopback, with a scripted chain: ``--blocks`` blocks of ``--shards`` shards, each block
holding T transactions to the followed contract (each: one receipt with two event logs and
one plain log, the next block; one callback with one event, two blocks later). The source
(chain/source.py, ``ChainSource``) reads them all and produces to the embedded broker
with the production producer (``ingest.produce.KafkaSink``, acks=all); the cursor store
is in memory (a database save is once per ``chain_batch_blocks``, 50, here and in
production). ``--latency-ms`` adds that much to every RPC answer in the double, to show
what a remote node (a provider: typically 20-100 ms) does to a sequential reader.

Printed: blocks/s, followed transactions/s, messages/s, RPC requests per block, and the
share of wall time spent waiting on the RPC. The double's own time is in the RPC share:
on loopback with 0 ms latency that is the double's Python, not a real node's.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from bench.tables import markdown_table
from chain.rpc import JsonRpc
from chain.source import Backoff, ChainSource
from ingest.produce import KafkaSink, ensure_topic, make_producer
from renown.broker import EmbeddedBroker

MARKET = "labels.market.near"


def _event(event: str, item: dict[str, Any]) -> str:
    body = {"standard": "renown", "version": "1.0.0", "event": event, "data": [item]}
    return "EVENT_JSON:" + json.dumps(body, separators=(",", ":"))


def _serve(blocks: int, shards: int, txs: int, latency_ms: float, conn: Any) -> None:
    """The double, in its own process: builds the chain, serves, sends back its URL and
    the final height, then waits to be terminated."""
    from tests.near_emulator import NearEmulator
    from tests.near_rpc_double import NearRpcDouble, ScriptedReceipt, ScriptedTx

    rpc = NearRpcDouble(NearEmulator())
    rpc.final_lag = 2
    first = rpc.latest.height + 1
    n = 0
    for _ in range(blocks + 4):
        batch = []
        for t in range(txs):
            a, b = f"u{n}.near", f"u{n + 1}.near"
            n += 1
            logs = ("stored", _event("vote_cast", {"voter": a, "target_kind": "account",
                                                   "target": b, "value": 1}),
                    _event("endorsed", {"endorser": a, "endorsee": b}))  # fmt: skip
            batch.append(ScriptedTx(a, MARKET, (
                ScriptedReceipt(MARKET, a, logs, delay=1),
                ScriptedReceipt(MARKET, MARKET, (_event("endorsed", {"endorser": a,
                                                                     "endorsee": MARKET}),),
                                delay=2),
            ), shard=t % shards))  # fmt: skip
        rpc.script_block(batch, shards=shards)
    if latency_ms:
        inner = rpc.handle

        def slow(request: dict[str, Any]) -> dict[str, Any] | None:
            time.sleep(latency_ms / 1000)
            return inner(request)

        rpc.handle = slow  # type: ignore[method-assign]
    url = rpc.start()
    conn.send((url, first, first + blocks - 1))
    threading.Event().wait()


@dataclass
class Row:
    txs: int
    latency_ms: float
    blocks: int
    seconds: float
    transactions: int
    messages: int
    requests: int
    rpc_seconds: float


class _TimedRpc(JsonRpc):
    def __init__(self, url: str) -> None:
        super().__init__(url, timeout=30)
        self.seconds = 0.0
        self.requests = 0

    def call(self, method: str, params: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return super().call(method, params)
        finally:
            self.seconds += time.perf_counter() - t0
            self.requests += 1


def run_case(broker: EmbeddedBroker, blocks: int, shards: int, txs: int, latency: float) -> Row:
    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(
        target=_serve, args=(blocks, shards, txs, latency, child), daemon=True
    )
    proc.start()
    try:
        url, first, last = parent.recv()
        topic = f"bench-chain-{uuid.uuid4().hex[:8]}"
        ensure_topic(broker.bootstrap, topic, 4)
        producer = make_producer(broker.bootstrap)
        sink = KafkaSink(producer, topic)
        rpc = _TimedRpc(url)
        saved: dict[str, Any] = {}

        class Cursors:
            def load(self, name: str) -> tuple[int, str | None] | None:
                return None

            def save(self, name: str, **kw: Any) -> None:
                saved[name] = kw

            def save_head(self, name: str, head_height: int) -> None:
                pass

        source = ChainSource(
            rpc=rpc, contracts=frozenset({MARKET}), send=sink.send, flush=sink.flush,
            cursors=Cursors(), backoff=Backoff(0.01, 0.1),
        )  # fmt: skip
        t0 = time.perf_counter()
        progress = source.run("bench", start_height=first, to_height=last)
        seconds = time.perf_counter() - t0
        producer.close()
        rpc.close()
        assert progress.blocks == blocks and saved["bench"]["height"] == last
        assert progress.messages == blocks * txs * 3, progress
        return Row(txs, latency, blocks, seconds, progress.transactions, progress.messages,
                   rpc.requests, rpc.seconds)  # fmt: skip
    finally:
        proc.terminate()
        proc.join(5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--blocks", type=int, default=300)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--txs", default="0,2,8", help="followed transactions per block")
    ap.add_argument("--latency-ms", default="0,20", help="added to every RPC answer")
    args = ap.parse_args()
    rows: list[Row] = []
    with EmbeddedBroker() as broker:
        for latency in (float(x) for x in args.latency_ms.split(",")):
            for txs in (int(x) for x in args.txs.split(",")):
                rows.append(run_case(broker, args.blocks, args.shards, txs, latency))
                r = rows[-1]
                print(f"txs {txs} latency {latency:g} ms: {r.blocks / r.seconds:,.1f} blocks/s",
                      flush=True)  # fmt: skip
    head = ["latency ms", "txs/block", "blocks", "s", "blocks/s", "txs/s", "msgs/s",
            "requests/block", "RPC share"]  # fmt: skip
    body = [
        [
            f"{r.latency_ms:g}", str(r.txs), str(r.blocks), f"{r.seconds:.2f}",
            f"{r.blocks / r.seconds:,.1f}", f"{r.transactions / r.seconds:,.1f}",
            f"{r.messages / r.seconds:,.0f}", f"{r.requests / r.blocks:.1f}",
            f"{r.rpc_seconds / r.seconds:.0%}",
        ]
        for r in rows
    ]  # fmt: skip
    print()
    print(f"{args.shards} shards; every followed transaction: 2 receipts, 3 event logs")
    print(markdown_table(head, body))


if __name__ == "__main__":
    main()
