"""``renown demo``: the whole pipeline on a fresh machine, with nothing configured.

simulate a world -> produce it to Kafka (the embedded broker unless one is configured)
-> ingest through a consumer group into the database -> score -> report how the
malicious groups rank. It uses exactly the code paths of the production commands.

With ``--serve`` it then leaves the HTTP API (the same app as ``renown serve``) running on
the demo's database until Ctrl-C, with two moderator keys made for the occasion, and
prints where to look: a top account's standing page, the leaderboard, the moderator queue.
"""

from __future__ import annotations

import argparse
import dataclasses
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from statistics import median

from ingest.produce import ensure_topic, make_producer, produce
from renown import bootstrap
from renown.broker import EmbeddedBroker
from renown.report import format_table, score_table
from renown.settings import Settings
from scoring.model import GLOBAL_DOMAIN, AccountScore
from simulate.world import PRESETS, GroundTruth, generate, truth_path_for, write_world
from storage import keys_repo, migrate
from storage.db import make_engine
from storage.scoring_repo import top_scores
from storage.uow import UnitOfWork


class _Progress:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    def step(self, text: str) -> None:
        print(f"[{time.perf_counter() - self.started:6.1f} s] {text}", flush=True)


@contextmanager
def _kafka(settings: Settings, progress: _Progress) -> Iterator[str]:
    if settings.kafka_bootstrap:
        progress.step(f"using Kafka at {settings.kafka_bootstrap}")
        yield settings.kafka_bootstrap
        return
    with EmbeddedBroker() as broker:
        progress.step(f"started the embedded Kafka-protocol broker (tansu) on {broker.bootstrap}")
        try:
            yield broker.bootstrap
        finally:
            progress.step("stopping the embedded broker")


def roles(truth: GroundTruth) -> dict[str, str]:
    role = {a: "honest" for a in truth.honest}
    role.update({a: "honest, pushed by a serial voter" for a in truth.serial_targets})
    role.update({a: "seed (moderator)" for a in truth.seeds})
    role.update({a: "label spammer" for a in truth.spammers})
    role.update({a: "sybil" for a in truth.sybils})
    role.update({a: "vote ring" for a in truth.ring})
    role.update({a: "serial voter" for a in truth.serial_voters})
    role.update({a: "camouflaged attacker" for a in truth.camouflaged})
    return role


def group_report(rows: list[AccountScore], truth: GroundTruth) -> list[dict[str, object]]:
    """How each group ranks: the question the demo answers."""
    by_account = {r.account: r for r in rows}
    total = len(rows)
    top_cut = max(1, total // 10)
    groups = {
        "honest (not seeds)": [a for a in truth.honest if a not in set(truth.seeds)],
        "sybils": truth.sybils,
        "vote ring": truth.ring,
        "label spammers": truth.spammers,
        "serial voters": truth.serial_voters,
        "camouflaged": truth.camouflaged,
    }
    out: list[dict[str, object]] = []
    for name, members in groups.items():
        scored = [by_account[a] for a in members if a in by_account]
        if not members:
            continue
        pct = [r.percentile for r in scored]
        out.append(
            {
                "group": name,
                "accounts": len(members),
                "scored": len(scored),
                "median pct": f"{median(pct):.1f}" if pct else "-",
                "best rank": min((r.rank for r in scored), default="-"),
                "in top 10%": sum(1 for r in scored if r.rank <= top_cut),
            }
        )
    return out


def run_demo(args: argparse.Namespace, settings: Settings) -> int:
    progress = _Progress()
    config = PRESETS[args.preset]
    if args.seed is not None:
        config = dataclasses.replace(config, seed=args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    world = generate(config)
    messages_path = out / "world.jsonl"
    truth_path = truth_path_for(messages_path)
    write_world(world, messages_path, truth_path)
    progress.step(
        f"simulated a marketplace ({args.preset}, seed {config.seed}): "
        f"{len(world.messages):,} messages -> {messages_path}"
    )
    seeds = settings.seeds or world.truth.seeds
    # Group joins wait for about half the session timeout; a demo needs no 10 s margin.
    settings = settings.model_copy(
        update={"seeds": seeds, "session_timeout_ms": 3000, "heartbeat_interval_ms": 1000}
    )

    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    engine.dispose()
    db = bootstrap.open_database(settings)
    progress.step(f"database ready: {db.url}")
    try:
        with _kafka(settings, progress) as servers:
            settings = settings.model_copy(update={"kafka_bootstrap": servers})
            ensure_topic(servers, settings.topic, settings.topic_partitions)
            producer = make_producer(servers)
            try:
                result = produce(
                    producer, settings.topic, ((m.key, m.value) for m in world.messages)
                )
            finally:
                producer.close()
            progress.step(
                f"produced {result.messages:,} messages to {settings.topic} "
                f"({result.rate:,.0f} msg/s)"
            )

            # A fresh group per run: the embedded broker forgets its topics when it
            # stops, so offsets stored by an earlier demo do not apply to this one.
            group = f"renown-demo-{int(time.time() * 1000)}"
            loop = bootstrap.build_ingest_loop(settings, db, group_id=group)

            def on_batch(_result: object) -> None:
                done = loop.stats.totals.messages
                if loop.stats.batches % 10 == 0:
                    progress.step(f"  ingested {done:,} / {result.messages:,} messages")

            loop.on_batch = on_batch
            stats = bootstrap.run_ingest(loop, max_messages=result.messages, idle_stop_s=15)
            s = stats.summary()
            progress.step(
                f"ingested {s['messages']:,} messages as group {group}: {s['events']:,} new "
                f"events, {s['duplicates']:,} already stored, {s['dead_letters']} dead letters, "
                f"{s['skipped']} skipped ({s['messages_per_s']:,.0f} msg/s)"
            )
        if stats.totals.messages < result.messages:
            print(
                f"renown demo: only {stats.totals.messages} of {result.messages} messages "
                "arrived before the broker went idle",
                file=sys.stderr,
            )
            return 1

        summary = bootstrap.run_scoring(settings, db)
        progress.step(
            f"scored epoch {summary.epoch}: {summary.accounts} accounts, "
            f"{summary.edges:,} edges, domains {', '.join(summary.domains)} "
            f"({summary.seconds:.2f} s)"
        )
        with UnitOfWork(db.sessions) as uow:
            rows = top_scores(uow.session, summary.epoch, GLOBAL_DOMAIN, 1_000_000)
    finally:
        db.close()

    role = roles(world.truth)
    print("\nTop accounts (global):")
    print(score_table(rows[:15], {"role (ground truth)": role}))
    print("\nHow the malicious groups rank:")
    print(format_table(group_report(rows, world.truth)))
    print(f"\nDatabase: {db.url}")
    print(f"World and ground truth: {messages_path}, {truth_path}")
    print(f"Try: renown --database-url {settings.database_url} scores --top 10")
    if args.serve:
        return serve_demo(args, settings, rows[0].account if rows else None)
    return 0


DEMO_MODERATORS = ("moderator-a.demo", "moderator-b.demo")


def serve_demo(args: argparse.Namespace, settings: Settings, top: str | None) -> int:
    """Serve the API on the demo's database until Ctrl-C (or SIGTERM)."""
    import uvicorn

    from api.app import create_app

    host = args.host or settings.api_host
    port = settings.api_port if args.port is None else args.port
    with socket.socket() as probe:  # a clear line now rather than a traceback later
        try:
            probe.bind((host, port))
        except OSError as exc:
            print(f"renown demo: cannot serve on {host}:{port}: {exc.strerror}; pass --port",
                  file=sys.stderr)  # fmt: skip
            return 1
    db = bootstrap.open_database(settings)
    try:
        with UnitOfWork(db.writer_sessions) as uow:
            keys = [keys_repo.create_key(uow.session, m, "moderator")[1] for m in DEMO_MODERATORS]
            uow.commit()
    finally:
        db.close()
    base = f"http://{host}:{port}"
    print("\nServing the API on the demo's database (Ctrl-C stops it):")
    if top is not None:
        print(f"  standing of the top account: {base}/accounts/{top}")
    print(f"  leaderboard:                 {base}/leaderboard")
    print(f"  moderator queue:             {base}/moderation")
    print(f"  API reference:               {base}/docs")
    print("Moderator keys for this demo database (paste one into the queue's key field; an")
    print("appeal is decided by a moderator other than the one who confirmed the flag):")
    for owner, key in zip(DEMO_MODERATORS, keys, strict=True):
        print(f"  {owner}: {key}")
    print(flush=True)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")
    print("API stopped.")
    return 0
