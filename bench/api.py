"""HTTP API benchmark (issue 6): score lookups and batch lookups per second, p50/p99.

    python -m bench.api [--accounts 100000] [--seconds 10] [--concurrency 1,16,64]
                        [--workers 2] [--batch 1000] [--pg-url URL]

Setup (not timed): a fresh PostgreSQL schema, migrated, holding N accounts and one epoch
with a score for each in ``global`` and in three domains (4 N score rows, written with
COPY, then VACUUM ANALYZE), as `renown score` would leave it. Then ``renown serve`` runs
in its own processes (``--workers`` uvicorn workers, rate limits lifted) on loopback.

Timed, for each concurrency C, for ``--seconds`` each (after a 1 s warm-up):

* **single**: ``GET /v1/scores/{account}`` for random accounts (every domain of the
  account, with the domains' sizes), C requests in flight;
* **batch**: ``POST /v1/scores/batch`` with ``--batch`` random accounts in ``global``;
* **floor**: the bare SQLAlchemy query the single route runs for its scores (the account's
  rows of the epoch, joined to its name), in a loop on C threads with a session each,
  no HTTP: what the database and the driver cost alone.

The load generator is one asyncio process with httpx (HTTP/1.1 keep-alive, C
connections); it shares the 2 cores with the server workers and PostgreSQL, so the
figures are what this machine serves with everything on it, not the server's ceiling.
Latency is per request, client side (send to last byte).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx
from sqlalchemy import Engine, select, text

from bench.tables import markdown_table
from storage import migrate
from storage.db import make_engine, make_session_factory
from storage.models import Account, Score
from storage.uow import UnitOfWork

DOMAINS = ("global", "general", "images", "text")
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@contextmanager
def scored_schema(base_url: str, n: int) -> Iterator[str]:
    """A migrated schema with n accounts and one scored epoch; its URL. Dropped after."""
    schema = f"bench_api_{uuid.uuid4().hex[:10]}"
    admin = make_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base_url else "?"
    url = f"{base_url}{sep}options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        _fill(engine, n)
        with admin.connect() as conn:
            for table in ("accounts", "scores", "score_epochs"):
                conn.execute(text(f'VACUUM ANALYZE "{schema}".{table}'))
        yield url
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def _fill(engine: Engine, n: int) -> None:
    rng = random.Random(5)
    now = datetime.now(UTC)
    raw = engine.raw_connection()
    try:
        pg = raw.driver_connection
        assert pg is not None
        with pg.cursor() as cur:
            with cur.copy("COPY accounts (id, account_id, first_seen_ns) FROM STDIN") as cp:
                for i in range(1, n + 1):
                    cp.write_row((i, f"acct{i:08d}.near", 0))
            cur.execute(
                "INSERT INTO score_epochs (epoch, model, params, events_through, accounts, "
                "edges, started_at, finished_at) VALUES (1, 'bench', '{}', 0, %s, 0, %s, %s)",
                (n, now, now),
            )
            with cur.copy(
                "COPY scores (epoch, domain, account_id, trust, score, rank, percentile, "
                "confidence, explanation) FROM STDIN"
            ) as cp:
                for domain in DOMAINS:
                    trust = sorted((rng.random() for _ in range(n)), reverse=True)
                    order = list(range(1, n + 1))
                    rng.shuffle(order)
                    for rank, (acc, t) in enumerate(zip(order, trust, strict=True), start=1):
                        cp.write_row(
                            (1, domain, acc, t / n, 100 * t, rank, 100 * (n - rank + 1) / n,
                             0.5, None)
                        )  # fmt: skip
        pg.commit()
    finally:
        raw.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(url: str, workers: int) -> Iterator[str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENOWN_")}
    env |= {"RENOWN_API_RATE_PUBLIC": "1000000", "RENOWN_API_RATE_KEY": "10000000"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "renown.cli", "--database-url", url, "serve", "--port",
         str(port), "--workers", str(workers)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/v1/domains", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"renown serve did not start: {proc.stderr.read()[-2000:]}")  # type: ignore[union-attr]
            time.sleep(0.2)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def _summary(lat: list[float], seconds: float, errors: int) -> dict[str, float]:
    lat.sort()
    q = statistics.quantiles(lat, n=100) if len(lat) >= 2 else [lat[0] if lat else 0.0] * 99
    return {
        "rps": len(lat) / seconds,
        "p50": q[49] * 1000,
        "p99": q[98] * 1000,
        "errors": float(errors),
        "n": float(len(lat)),
    }


async def _load(base: str, c: int, seconds: float, make: object) -> dict[str, float]:
    lat: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=c, max_keepalive_connections=c)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        stop_warm = time.perf_counter() + 1.0
        stop = stop_warm + seconds

        async def worker() -> None:
            nonlocal errors
            while True:
                t0 = time.perf_counter()
                if t0 >= stop:
                    return
                r = await make(client)  # type: ignore[operator]
                t1 = time.perf_counter()
                if r.status_code != 200:
                    errors += 1
                elif t0 >= stop_warm:
                    lat.append(t1 - t0)

        await asyncio.gather(*(worker() for _ in range(c)))
    return _summary(lat, seconds, errors)


def _floor(url: str, n: int, c: int, seconds: float) -> dict[str, float]:
    engine = make_engine(url, pool_size=c, max_overflow=0)
    sessions = make_session_factory(engine)
    lat: list[float] = []
    lock = threading.Lock()
    stop_warm = time.perf_counter() + 1.0
    stop = stop_warm + seconds

    def loop(seed: int) -> None:
        rng = random.Random(seed)
        mine: list[float] = []
        while True:
            t0 = time.perf_counter()
            if t0 >= stop:
                break
            name = f"acct{rng.randint(1, n):08d}.near"
            with UnitOfWork(sessions) as uow:
                uow.session.execute(
                    select(Account.account_id, Score.domain, Score.score, Score.rank)
                    .join(Account, Account.id == Score.account_id)
                    .where(Score.epoch == 1, Account.account_id == name)
                ).all()
            if t0 >= stop_warm:
                mine.append(time.perf_counter() - t0)
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(c)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    engine.dispose()
    return _summary(lat, seconds, 0)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--accounts", type=int, default=100_000)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--concurrency", default="1,16,64")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--pg-url", default=os.environ.get("RENOWN_TEST_PG_URL", PG_URL))
    args = p.parse_args(argv)
    n = args.accounts
    levels = [int(x) for x in args.concurrency.split(",")]
    rng = random.Random(11)

    def one(client: httpx.AsyncClient) -> object:
        return client.get(f"/v1/scores/acct{rng.randint(1, n):08d}.near")

    def batch(client: httpx.AsyncClient) -> object:
        names = [f"acct{rng.randint(1, n):08d}.near" for _ in range(args.batch)]
        return client.post("/v1/scores/batch", json={"accounts": names})

    body: list[list[str]] = []
    print(f"setting up {n:,} accounts x {len(DOMAINS)} domains in PostgreSQL ...", flush=True)
    with scored_schema(args.pg_url, n) as url:
        with server(url, args.workers) as base:
            for c in levels:
                for name, make in (("single", one), ("batch", batch)):
                    r = asyncio.run(_load(base, c, args.seconds, make))
                    per = f"{r['rps'] * args.batch:,.0f} accounts/s" if name == "batch" else ""
                    body.append([name, str(c), f"{r['rps']:,.0f}", f"{r['p50']:.1f}",
                                 f"{r['p99']:.1f}", f"{r['errors']:.0f}", per])  # fmt: skip
                    print(
                        f"  {name} C={c}: {r['rps']:,.0f}/s p50 {r['p50']:.1f} ms "
                        f"p99 {r['p99']:.1f} ms errors {r['errors']:.0f} {per}",
                        flush=True,
                    )
        for c in levels:
            r = _floor(url, n, c, args.seconds)
            body.append(["floor (SQLAlchemy, no HTTP)", str(c), f"{r['rps']:,.0f}",
                         f"{r['p50']:.1f}", f"{r['p99']:.1f}", "0", ""])  # fmt: skip
            print(f"  floor C={c}: {r['rps']:,.0f}/s p50 {r['p50']:.1f} ms p99 {r['p99']:.1f} ms",
                  flush=True)  # fmt: skip
    print()
    print(markdown_table(
        ["lookup", "concurrency", "requests/s", "p50 ms", "p99 ms", "errors", "note"], body
    ))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
