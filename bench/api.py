"""HTTP API benchmark (issue 6): score lookups and batch lookups per second, p50/p99.

    python -m bench.api [--accounts 100000] [--seconds 10] [--concurrency 1,16,64]
                        [--workers 2] [--batch 1000] [--pg-url URL]

(``make bench-api`` installs wrk, the load generator, and runs it.)

Setup (not timed): a fresh PostgreSQL schema, migrated, holding N accounts and one epoch
with a score for each in ``global`` and in three domains (4 N score rows, written with
COPY, then VACUUM ANALYZE), as `renown score` would leave it, and a reader API key. Then
two ``renown serve`` run in their own processes (``--workers`` uvicorn workers each, rate
limits lifted) on loopback: the default one, which answers score lookups from the latest
epoch in memory (api/epoch_cache.py), and one with that copy turned off
(``RENOWN_API_CACHE_ROWS=0``), which answers every lookup from PostgreSQL as it does for
an epoch too large to hold.

Timed, for each concurrency C, for ``--seconds`` each (after a 2 s warm-up):

* **single**: ``GET /v1/scores/{account}`` for random accounts (every domain of the
  account, with the domains' sizes), C connections each with one request in flight;
* **single, API key**: the same with a reader key (a marketplace's traffic);
* **batch**: ``POST /v1/scores/batch`` with ``--batch`` random accounts in ``global``;
* **single, from PostgreSQL** and **batch, from PostgreSQL**: the same against the server
  without the in-memory copy;
* **floor**: the bare SQLAlchemy query the database path runs for an account's scores
  (its rows of the epoch joined to its name), in a loop on C threads with a session each,
  no HTTP: what the database and the driver cost alone.

The load generator is wrk (C, one thread, keep-alive; bench/wrk/*.lua pick the accounts):
it costs a few percent of a core, so the figures are the server's, not a Python client's.
It still shares the 2 cores with the server workers and PostgreSQL. Latency is per
request, client side (wrk's own percentiles).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import shutil
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

from api.epoch_cache import load_table
from bench.tables import markdown_table
from storage import keys_repo, migrate
from storage.db import make_engine, make_session_factory
from storage.models import Account, Score
from storage.uow import UnitOfWork

DOMAINS = ("global", "general", "images", "text")
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
WRK_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wrk")


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
def server(url: str, workers: int, **extra: str) -> Iterator[str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENOWN_")}
    env |= {"RENOWN_API_RATE_PUBLIC": "1000000", "RENOWN_API_RATE_KEY": "10000000", **extra}
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
        if extra.get("RENOWN_API_CACHE_ROWS") != "0":
            _until_loaded(base)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def _until_loaded(base: str, timeout: float = 300.0) -> None:
    """Wait until every worker holds the epoch in memory: 20 /metrics answers in a row,
    each on a new connection (the kernel hands each to a worker), say so."""
    deadline, streak = time.monotonic() + timeout, 0
    while streak < 20:
        if time.monotonic() > deadline:
            raise RuntimeError("the API workers did not load the epoch in time")
        text = httpx.get(f"{base}/metrics", timeout=10).text
        streak = streak + 1 if "\nrenown_api_cache_epoch 1.0" in text else 0
        if not streak:
            time.sleep(0.5)


def _summary(lat: list[float], seconds: float, errors: int) -> dict[str, float]:
    lat.sort()
    q = statistics.quantiles(lat, n=100) if len(lat) >= 2 else [lat[0] if lat else 0.0] * 99
    return {"rps": len(lat) / seconds, "p50": q[49] * 1000, "p99": q[98] * 1000,
            "errors": float(errors)}  # fmt: skip


def _wrk(base: str, script: str, c: int, seconds: float, **env: str) -> dict[str, float]:
    """One wrk run: requests/s, p50 and p99 (ms), and the failed requests."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{c}", f"-d{seconds:g}s", "--timeout", "10s",
         "-s", os.path.join(WRK_DIR, script), base],
        env={"PATH": os.environ.get("PATH", ""), "LUA_DIR": WRK_DIR, **env},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{out.stdout}\n{out.stderr}")
    r = json.loads(line.removeprefix("RESULT "))
    return {
        "rps": r["requests"] / (r["duration_us"] / 1e6),
        "p50": r["p50_us"] / 1000,
        "p99": r["p99_us"] / 1000,
        "errors": float(r["non2xx"] + r["socket_errors"]),
    }


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


def _reader_key(url: str) -> str:
    engine = make_engine(url)
    try:
        with UnitOfWork(make_session_factory(engine, writer=True)) as uow:
            _, secret = keys_repo.create_key(uow.session, "bench.near", "reader")
            uow.commit()
    finally:
        engine.dispose()
    return secret


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--accounts", type=int, default=100_000)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--concurrency", default="1,16,64")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--pg-url", default=os.environ.get("RENOWN_TEST_PG_URL", PG_URL))
    args = p.parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench/api.py needs wrk, the load generator: `make bench-api` installs it "
              "(apt-get install wrk)", file=sys.stderr)  # fmt: skip
        return 2
    n = args.accounts
    levels = [int(x) for x in args.concurrency.split(",")]
    base_env = {"N": str(n), "BATCH": str(args.batch), "SEED": "11"}
    body: list[list[str]] = []

    def row(name: str, c: int, r: dict[str, float], per: str = "") -> None:
        body.append([name, str(c), f"{r['rps']:,.0f}", f"{r['p50']:.1f}", f"{r['p99']:.1f}",
                     f"{r['errors']:.0f}", per])  # fmt: skip
        print(f"  {name} C={c}: {r['rps']:,.0f}/s p50 {r['p50']:.1f} ms p99 {r['p99']:.1f} ms "
              f"errors {r['errors']:.0f} {per}", flush=True)  # fmt: skip

    print(f"setting up {n:,} accounts x {len(DOMAINS)} domains in PostgreSQL ...", flush=True)
    with scored_schema(args.pg_url, n) as url:
        key = _reader_key(url)
        Load = tuple[str, str, dict[str, str]]  # row name, wrk script, its environment
        in_memory: list[Load] = [
            ("single", "single.lua", {}),
            ("single, API key", "single.lua", {"KEY": key}),
            ("batch", "batch.lua", {}),
        ]
        from_db: list[Load] = [("single", "single.lua", {}), ("batch", "batch.lua", {})]
        runs: list[tuple[str, dict[str, str], list[Load]]] = [
            ("", {}, in_memory),
            (", from PostgreSQL", {"RENOWN_API_CACHE_ROWS": "0"}, from_db),
        ]
        for suffix, server_env, loads in runs:
            with server(url, args.workers, **server_env) as base:
                _wrk(base, "single.lua", 16, 2.0, **base_env)  # warm-up: the epoch loads
                for c in levels:
                    for name, script, env in loads:
                        r = _wrk(base, script, c, args.seconds, **base_env, **env)
                        per = f"{r['rps'] * args.batch:,.0f} accounts/s" if "batch" in name else ""
                        row(name + suffix, c, r, per)
        for c in levels:
            row("floor (SQLAlchemy, no HTTP)", c, _floor(url, n, c, args.seconds))
        seconds, mb = _table_cost(url)
    print()
    print(markdown_table(
        ["lookup", "concurrency", "requests/s", "p50 ms", "p99 ms", "errors", "note"], body
    ))  # fmt: skip
    print(f"\nThe epoch in memory ({n:,} accounts x {len(DOMAINS)} domains): loaded in "
          f"{seconds:.1f} s, {mb:,.0f} MB resident per API worker")  # fmt: skip
    return 0


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _table_cost(url: str) -> tuple[float, float]:
    """What one worker pays for the in-memory epoch: load time and resident memory."""
    engine = make_engine(url)
    try:
        gc.collect()
        before = _rss_mb()
        t0 = time.perf_counter()
        with UnitOfWork(make_session_factory(engine)) as uow:
            table = load_table(uow.session, 1)
        seconds = time.perf_counter() - t0
        gc.collect()
        mb = _rss_mb() - before
        assert len(table.index) > 0
        return seconds, mb
    finally:
        engine.dispose()


if __name__ == "__main__":
    raise SystemExit(main())
