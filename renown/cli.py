"""The ``renown`` command: thin entry points over the composition root.

Every command builds its settings in ``main()``, turns the errors a user can cause
(bad configuration, database or broker unreachable, missing files) into one line on
stderr and exit code 2, and leaves stack traces to real bugs.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from chain.client import ChainClient, ChainUnavailable, ViewError
from chain.publisher import PublishConflict, PublishFailed
from chain.rpc import RpcError
from chain.source import ChainSourceError
from ingest.consumer import BrokerUnavailable
from ingest.produce import KafkaSink, ProduceError, ensure_topic, make_producer, produce
from moderation import service as moderation
from moderation.lifecycle import IllegalTransition
from moderation.service import FlagView, ModerationError
from renown import bootstrap, keys_cli
from renown.broker import BrokerError
from renown.report import (
    explain_text,
    flag_table,
    flag_text,
    format_table,
    history_text,
    score_table,
)
from renown.settings import Settings, SettingsError, load_settings
from scoring.merkle import Proof, verify
from scoring.model import GLOBAL_DOMAIN
from scoring.propagation import ConvergenceError
from storage import migrate
from storage.db import DatabaseUnavailable, make_engine
from storage.history_repo import account_history
from storage.keys_repo import ApiKeyError
from storage.models import DeadLetter
from storage.scoring_repo import domain_size, latest_epoch, scores_of, top_scores
from storage.snapshot_repo import (
    NoSnapshot,
    NotInSnapshot,
    SnapshotMismatch,
    latest_snapshot,
    prove,
    snapshot_of,
)
from storage.uow import UnitOfWork

log = logging.getLogger("renown")

EXIT_USAGE = 2


class UserError(RuntimeError):
    """An error the user can fix; printed as one line, exit code 2."""


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(
        args.config,
        database_url=args.database_url,
        kafka_bootstrap=args.bootstrap,
    )


# --- commands ------------------------------------------------------------------------


def cmd_db(args: argparse.Namespace) -> int:
    settings = _settings(args)
    engine = make_engine(settings.database_url)
    try:
        if args.action == "upgrade":
            migrate.upgrade(engine)
            print(f"database at revision {migrate.current_revision(engine)} (head)")
        else:
            current = migrate.current_revision(engine)
            head = migrate.head_revision()
            state = "up to date" if current == head else "needs `renown db upgrade`"
            print(f"current revision: {current or 'none'}; head: {head}; {state}")
    finally:
        engine.dispose()
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    settings = _settings(args)
    db = bootstrap.open_database(settings)
    try:
        with bootstrap.stop_on_signals() as stop, bootstrap.health_probe(settings, "ingest") as h:
            loop = bootstrap.build_ingest_loop(settings, db, stop=stop)
            loop.on_poll = bootstrap.beat_ingest(h)
            log.info(
                "ingesting %s from %s into %s as group %s",
                settings.topic,
                settings.kafka_bootstrap,
                db.url,
                settings.group_id,
            )
            stats = bootstrap.run_ingest(
                loop, idle_stop_s=args.idle_exit, max_messages=args.max_messages
            )
        print(format_table([stats.summary()]))
    finally:
        db.close()
    return 0


def _require_seeds(settings: Settings) -> None:
    if not settings.seeds:
        raise UserError(
            "no seed accounts configured: set RENOWN_SEEDS=a.near,b.near "
            "(trust flows from them; without seeds sybils win)"
        )


def _interval(flag: str, seconds: float | None) -> float | None:
    if seconds is not None and not 0 < seconds <= 7 * 24 * 3600:
        raise UserError(f"{flag} {seconds:g}: give 0 < seconds <= 604800")
    return seconds


def cmd_score(args: argparse.Namespace) -> int:
    from renown.run import Scheduler

    settings = _settings(args)
    _require_seeds(settings)
    every = _interval("--every", args.every)
    db = bootstrap.open_database(settings)
    try:
        if every is not None:  # the scorer on a schedule: an epoch when something changed
            settings = settings.model_copy(update={"score_interval_s": every})
            with (
                bootstrap.stop_on_signals() as stop,
                bootstrap.health_probe(settings, "score") as health,
            ):
                scheduler = Scheduler(settings, db, stop, health=health)
                log.warning("scoring every %g s when anything changed (until SIGTERM)", every)
                scheduler.run()
            print(f"epochs scored: {len(scheduler.epochs)}, failed rounds: {scheduler.failures}")
            return 0
        summary = bootstrap.run_scoring(settings, db)
    finally:
        db.close()
    print(
        f"epoch {summary.epoch}: {summary.accounts} accounts, {summary.edges} edges, "
        f"domains {', '.join(summary.domains)}, events through #{summary.events_through}, "
        f"{summary.seconds:.2f} s"
    )
    print(f"snapshot root {summary.root} over {summary.leaves} scores")
    if summary.sanctions:
        flags = ", ".join(f"#{i}" for i in summary.sanctions)
        print(f"confirmed flags applied: {flags}")
    if summary.flags_raised or summary.findings_seen_again:
        print(
            f"detectors: {len(summary.flags_raised)} new flag(s), "
            f"{summary.findings_seen_again} finding(s) already flagged (`renown flags list`)"
        )
    for kind, error in summary.detector_errors.items():
        print(f"detector {kind} failed (scores are stored): {error}", file=sys.stderr)
    return 0


def _latest_epoch(session: Session) -> int:
    latest = latest_epoch(session)
    if latest is None:
        raise UserError("no scores yet: run `renown score` first")
    return latest.epoch


def cmd_run(args: argparse.Namespace) -> int:
    from renown.run import Scheduler

    settings = _settings(args)
    if _interval("--score-every", args.score_every) is not None:
        settings = settings.model_copy(update={"score_interval_s": args.score_every})
    _require_seeds(settings)
    bootstrap.require_bootstrap(settings)
    client = bootstrap.make_chain_client(settings, signer=True) if settings.contract_id else None
    db = bootstrap.open_database(settings)
    try:
        publish = None
        if client is not None:
            publish = bootstrap.build_publisher(settings, db, client).publish
        with bootstrap.stop_on_signals() as stop, bootstrap.health_probe(settings, "run") as h:
            loop = bootstrap.build_ingest_loop(settings, db, stop=stop)
            loop.on_poll = bootstrap.beat_ingest(h)
            scheduler = Scheduler(settings, db, stop, publish)
            thread = scheduler.start()
            log.warning(
                "renown run: ingesting %s from %s into %s as group %s; scoring every %g s%s",
                settings.topic, settings.kafka_bootstrap, db.url, settings.group_id,
                settings.score_interval_s,
                f"; publishing to {settings.contract_id}" if publish else "; publishing off",
            )  # fmt: skip
            try:
                stats = bootstrap.run_ingest(loop)
            finally:
                stop.set()
                thread.join()  # an epoch in progress finishes (it is all or nothing anyway)
        print(format_table([stats.summary()]))
        print(f"epochs scored: {len(scheduler.epochs)}, failed rounds: {scheduler.failures}")
    finally:
        db.close()
        close = getattr(client, "close", None)
        if close is not None:
            close()
    return 0


def cmd_chain_source(args: argparse.Namespace) -> int:
    from chain.rpc import JsonRpc
    from chain.source import ChainSource, Progress

    settings = _settings(args)
    if not settings.chain_contracts:
        raise UserError(
            "no contracts to follow: set RENOWN_CHAIN_CONTRACTS=labels.market.near,... "
            "(the contracts whose NEP-297 events feed Renown)"
        )
    if args.to_height is not None and args.from_height is None:
        raise UserError("--to-height needs --from-height (a backfill reads a closed range)")
    if args.to_height is not None and args.to_height < args.from_height:
        raise UserError(f"--to-height {args.to_height} is below --from-height {args.from_height}")
    servers = bootstrap.require_bootstrap(settings)
    rpc = JsonRpc(settings.near_rpc_url, timeout=settings.chain_rpc_timeout_s)
    db = bootstrap.open_database(settings)
    producer = None
    try:
        chain_id = bootstrap.chain_id_of(rpc)
        if ensure_topic(servers, settings.topic, settings.topic_partitions):
            log.warning("created topic %s (%d partitions)", settings.topic,
                        settings.topic_partitions)  # fmt: skip
        producer = make_producer(servers, client_id="renown-chain-source")
        sink = KafkaSink(producer, settings.topic)
        backfill = args.to_height is not None
        name = f"{chain_id}:backfill:{args.from_height}-{args.to_height}" if backfill else chain_id
        start = args.from_height if args.from_height is not None else settings.chain_start_height
        stored = bootstrap.DatabaseCursors(db).load(name)
        if stored is not None and args.from_height is not None and not backfill:
            log.warning("cursor %s is at %d: resuming there; --from-height %d applies only "
                        "to a new cursor", name, stored[0], args.from_height)  # fmt: skip
        bar = _ProgressBar(args.from_height, args.to_height) if backfill else None
        with (
            bootstrap.stop_on_signals() as stop,
            bootstrap.health_probe(settings, "chain-source") as health,
        ):
            source = ChainSource(
                rpc=rpc,
                contracts=frozenset(settings.chain_contracts),
                send=sink.send,
                flush=sink.flush,
                cursors=bootstrap.DatabaseCursors(db),
                stop=stop,
                poll_s=settings.chain_poll_s,
                batch_blocks=settings.chain_batch_blocks,
                on_progress=bar.update if bar is not None else None,
                heartbeat=lambda p: health.beat(
                    height=p.height or 0, final_head=p.head or 0, messages=p.messages,
                    retries=p.retries,
                ),
            )  # fmt: skip
            log.warning(
                "chain source: %s (%s) -> %s/%s, contracts %s, cursor %s",
                settings.near_rpc_url, chain_id, servers, settings.topic,
                ",".join(settings.chain_contracts), name,
            )  # fmt: skip
            try:
                progress: Progress = source.run(name, start_height=start, to_height=args.to_height)
            except InterruptedError:
                progress = source.progress
            finally:
                if bar is not None:
                    bar.close()
    finally:
        if producer is not None:
            producer.close()
        rpc.close()
        db.close()
    print(
        f"chain source: {progress.blocks} blocks to height {progress.height} "
        f"(final head {progress.head}), {progress.skipped_heights} skipped heights, "
        f"{progress.transactions} transactions, {progress.messages} messages, "
        f"{progress.retries} retries"
    )
    return 0


class _ProgressBar:
    """A backfill's progress on stderr: a bar redrawn in place on a terminal, a log line
    every 10 s otherwise (a pod's log should not fill with carriage returns)."""

    def __init__(self, first: int, last: int) -> None:
        self.first, self.last = first, last
        self.tty = sys.stderr.isatty()
        self.started = self.shown = time.monotonic()

    def update(self, progress: Any) -> None:
        now = time.monotonic()
        if now - self.shown < (0.2 if self.tty else 10.0):
            return
        self.shown = now
        done = (progress.height or self.first) - self.first + 1
        total = self.last - self.first + 1
        share = min(1.0, done / total)
        rate = done / max(now - self.started, 1e-9)
        eta = (total - done) / rate if rate > 0 else float("inf")
        text = (
            f"height {progress.height}/{self.last} {share:6.1%} "
            f"{progress.messages} messages, {rate:,.1f} blocks/s, eta {eta:,.0f} s"
        )
        if self.tty:
            filled = int(share * 30)
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {text}")
            sys.stderr.flush()
        else:
            log.warning("backfill %s", text)

    def close(self) -> None:
        if self.tty:
            sys.stderr.write("\n")


def cmd_scores(args: argparse.Namespace) -> int:
    settings = _settings(args)
    db = bootstrap.open_database(settings)
    try:
        with UnitOfWork(db.sessions) as uow:
            epoch = _latest_epoch(uow.session)
            if args.accounts:
                rows = scores_of(uow.session, epoch, args.accounts, args.domain)
            else:
                rows = top_scores(uow.session, epoch, args.domain, args.top)
    finally:
        db.close()
    missing = sorted(set(args.accounts) - {r.account for r in rows})
    print(f"epoch {epoch}, domain {args.domain}")
    print(score_table(rows))
    for name in missing:
        print(
            f"{name}: no score in domain {args.domain} at epoch {epoch} "
            "(unknown account, or no trust edges in that domain)",
            file=sys.stderr,
        )
    return 1 if missing else 0


def cmd_explain(args: argparse.Namespace) -> int:
    settings = _settings(args)
    db = bootstrap.open_database(settings)
    try:
        with UnitOfWork(db.sessions) as uow:
            epoch = _latest_epoch(uow.session)
            rows = scores_of(uow.session, epoch, [args.account], args.domain)
            total = domain_size(uow.session, epoch, args.domain)
    finally:
        db.close()
    if not rows:
        raise UserError(
            f"{args.account} has no score in domain {args.domain} at epoch {epoch}: unknown "
            "account, or nothing links it to the trusted accounts in that domain yet"
        )
    print(explain_text(rows[0], epoch=epoch, accounts_in_domain=total))
    return 0


@contextlib.contextmanager
def _reading(args: argparse.Namespace) -> Iterator[Session]:
    """A read session on the configured database; snapshot errors become user errors."""
    db = bootstrap.open_database(_settings(args))
    try:
        with UnitOfWork(db.sessions) as uow:
            try:
                yield uow.session
            except (NoSnapshot, NotInSnapshot, SnapshotMismatch) as exc:
                raise UserError(str(exc)) from None
    finally:
        db.close()


def cmd_history(args: argparse.Namespace) -> int:
    with _reading(args) as session:
        found = account_history(session, args.account, args.domain, limit=args.limit)
    if found is None:
        raise UserError(f"unknown account {args.account}: never seen in any event")
    entries, pending = found
    if args.json:
        print(
            json.dumps(
                {
                    "account": args.account,
                    "domain": args.domain,
                    "epochs": [h.to_json() for h in entries],
                    "pending": [e.to_json() for e in pending],
                }
            )
        )
    else:
        print(history_text(args.account, args.domain, entries, pending))
    return 0


# --- flags (moderation) -----------------------------------------------------------------


@contextlib.contextmanager
def _moderating(args: argparse.Namespace) -> Iterator[tuple[bootstrap.Database, list[str]]]:
    """The database and the configured moderators; moderation errors become user errors."""
    settings = _settings(args)
    db = bootstrap.open_database(settings)
    try:
        try:
            yield db, settings.moderators
        except (ModerationError, IllegalTransition) as exc:
            raise UserError(str(exc)) from None
    finally:
        db.close()


def _print_flag(view: FlagView, as_json: bool) -> None:
    print(json.dumps(view.to_json()) if as_json else flag_text(view))


def cmd_flags(args: argparse.Namespace) -> int:
    with _moderating(args) as (db, moderators):
        w = db.writer_sessions
        action = args.flags_action
        if action == "list":
            status = [s for s in (args.status or "").split(",") if s] or None
            views, total = moderation.list_flags(
                db.sessions,
                status=status,
                kind=args.kind,
                account=args.account,
                limit=args.limit,
                offset=args.offset,
            )
            if args.json:
                print(json.dumps({"total": total, "flags": [v.to_json() for v in views]}))
            else:
                print(flag_table(views))
                print(
                    f"{len(views)} of {total} flag(s)"
                    + (f" from {args.offset}" if args.offset else "")
                )
            return 0
        if action == "audit":
            entries = moderation.audit_log(
                db.sessions, flag_id=args.flag, actor=args.actor, account=args.account,
                limit=args.limit, offset=args.offset,
            )  # fmt: skip
            if args.json:
                print(json.dumps(entries))
            else:
                print(
                    format_table(
                        entries, ["id", "at", "actor", "action", "flag", "from", "to", "reason"]
                    )
                )
            return 0
        if action == "show":
            view = moderation.show(db.sessions, args.flag)
        elif action == "raise":
            view = moderation.raise_flag(
                w, moderator=args.moderator, kind=args.kind, accounts=args.account,
                reason=args.reason, moderators=moderators, severity=args.severity, via="cli",
            )  # fmt: skip
        elif action == "confirm":
            view = moderation.confirm(
                w, args.flag, moderator=args.moderator, reason=args.reason,
                moderators=moderators, trust_factor=args.trust_factor,
                label_factor=args.label_factor, score_factor=args.score_factor, via="cli",
            )  # fmt: skip
        elif action == "dismiss":
            view = moderation.dismiss(
                w, args.flag, moderator=args.moderator, reason=args.reason, moderators=moderators,
                via="cli",
            )  # fmt: skip
        elif action == "appeal":
            view = moderation.appeal(
                w, args.flag, account=args.account, statement=args.statement, via="cli"
            )
        else:  # decide
            view = moderation.decide(
                w, args.flag, moderator=args.moderator, uphold=args.verdict == "uphold",
                reason=args.reason, moderators=moderators, via="cli",
            )  # fmt: skip
    _print_flag(view, args.json)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import os

    import uvicorn

    settings = _settings(args)
    # Fail here, with one line, rather than in every worker: the schema must be current.
    bootstrap.open_database(settings).close()
    # Workers are new processes that read the settings from the environment: hand the
    # command line's overrides to them that way.
    if args.database_url:
        os.environ["RENOWN_DATABASE_URL"] = args.database_url
    if args.bootstrap:
        os.environ["RENOWN_KAFKA_BOOTSTRAP"] = args.bootstrap
    host = args.host or settings.api_host
    port = args.port or settings.api_port
    workers = args.workers or settings.api_workers
    print(f"serving the API on http://{host}:{port}/ ({workers} worker(s)); docs at /docs")
    uvicorn.run(
        "api.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
    )
    return 0


def cmd_snapshot(args: argparse.Namespace) -> int:
    with _reading(args) as session:
        snap = latest_snapshot(session) if args.epoch is None else snapshot_of(session, args.epoch)
        data = {
            "epoch": snap.epoch,
            "root": snap.root,
            "count": snap.leaf_count,
            "leaf_version": snap.leaf_version,
            "built_at": snap.built_at.isoformat(),
        }
    if args.json:
        print(json.dumps(data))
    else:
        print(
            f"epoch {data['epoch']}: root {data['root']} over {data['count']} scores "
            f"(leaf version {data['leaf_version']}, built {data['built_at']})"
        )
    return 0


def cmd_proof(args: argparse.Namespace) -> int:
    with _reading(args) as session:
        proven = prove(session, args.account, args.domain, args.epoch)
    data = proven.proof.to_json() | {"root": proven.root}
    if args.json:
        print(json.dumps(data))
        return 0
    leaf = proven.proof.leaf
    print(
        f"{leaf.account}, domain {leaf.domain}, epoch {leaf.epoch}: score "
        f"{leaf.score_micro / 1e6:.6f} (score_micro {leaf.score_micro})\n"
        f"leaf {proven.proof.index} of {proven.proof.count}, root {proven.root}\n"
        f"siblings, leaf to root ({len(proven.proof.siblings)}):"
    )
    for sib in proven.proof.siblings:
        print(f"  {sib.hex()}")
    print("verified against the stored root; --json gives the form the contract's verify takes")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from renown.run import every

    settings = _settings(args)
    interval = _interval("--every", args.every)
    db = bootstrap.open_database(settings)
    client = bootstrap.make_chain_client(settings, signer=True)
    try:
        try:
            publisher = bootstrap.build_publisher(settings, db, client)
        except LookupError as exc:
            raise UserError(str(exc)) from None
        if interval is not None:  # the publisher on a schedule: each new epoch, once

            def round_() -> None:
                try:
                    done = publisher.publish()
                except LookupError as exc:  # no epoch scored yet
                    log.info("nothing to publish: %s", exc)
                    return
                if not done.already_done:
                    log.warning("epoch %s published to %s: root %s", done.epoch,
                                client.contract_id, done.root)  # fmt: skip

            with (
                bootstrap.stop_on_signals() as stop,
                bootstrap.health_probe(settings, "publish") as health,
            ):
                log.warning("publishing new epochs to %s, checking every %g s",
                            client.contract_id, interval)  # fmt: skip
                failed = every(interval, stop, round_, health=health, what="publication")
            print(f"publisher stopped; failed rounds: {failed}")
            return 0
        try:
            res = publisher.publish()
        except LookupError as exc:
            raise UserError(str(exc)) from None
    finally:
        db.close()
        close = getattr(client, "close", None)
        if close is not None:
            close()
    if res.already_done:
        print(f"epoch {res.epoch} is already published to {client.contract_id}: nothing to do")
        return 0
    print(
        f"epoch {res.epoch} published to {client.contract_id}: root {res.root}, snapshot "
        f"transaction {res.snapshot_tx or '(sent by an earlier run)'}; {res.batches} score "
        f"batches ({res.batches_sent} sent now, {res.batches_found_on_chain} found on chain)"
        + ("" if res.announced else "; NOT announced to Kafka (not configured, or down)")
    )
    return 0


def verify_on_chain(client: ChainClient, proof: Proof) -> tuple[bool, bool, dict[str, object]]:
    """(proven locally against the contract's root, the contract's own verify view, the
    contract's snapshot of that epoch)."""
    snap = client.view("get_snapshot", {"epoch": proof.leaf.epoch})
    if not snap:
        raise UserError(
            f"the contract {client.contract_id} has no snapshot for epoch {proof.leaf.epoch}: "
            "run `renown publish` first"
        )
    local = verify(proof, bytes.fromhex(str(snap["root"])), int(snap["count"]))  # type: ignore[call-overload]
    args = proof.to_json()
    args.pop("count")
    remote = bool(client.view("verify", args))
    return local, remote, snap


def cmd_verify(args: argparse.Namespace) -> int:
    with _reading(args) as session:
        proven = prove(session, args.account, args.domain, args.epoch)
    client = bootstrap.make_chain_client(_settings(args), signer=False)
    try:
        local, remote, snap = verify_on_chain(client, proven.proof)
    finally:
        close = getattr(client, "close", None)
        if close is not None:
            close()
    leaf = proven.proof.leaf
    what = (
        f"{leaf.account} in {leaf.domain} at epoch {leaf.epoch}: score {leaf.score_micro / 1e6:.6f}"
    )
    if local and remote:
        print(f"PROVEN: {what}, against root {snap['root']} read from {client.contract_id}")
        return 0
    print(
        f"NOT PROVEN: {what}; contract root {snap['root']}, this database's {proven.root} "
        f"(checked here: {local}, by the contract: {remote})"
    )
    return 1


def cmd_dead_letters(args: argparse.Namespace) -> int:
    settings = _settings(args)
    db = bootstrap.open_database(settings)
    try:
        with UnitOfWork(db.sessions) as uow:
            total = uow.session.execute(select(func.count()).select_from(DeadLetter)).scalar_one()
            letters = (
                uow.session.execute(
                    select(DeadLetter).order_by(DeadLetter.id.desc()).limit(args.limit)
                )
                .scalars()
                .all()
            )
    finally:
        db.close()
    print(f"{total} dead letters; newest {len(letters)}:")
    print(
        format_table(
            [
                {"topic": d.topic, "partition": d.partition, "offset": d.offset, "reason": d.reason}
                for d in letters
            ]
        )
    )
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from simulate.world import PRESETS, generate, truth_path_for, write_world

    config = PRESETS[args.preset]
    if args.seed is not None:
        config = dataclasses.replace(config, seed=args.seed)
    world = generate(config)
    out = Path(args.out)
    truth = truth_path_for(out)
    write_world(world, out, truth)
    print(f"wrote {len(world.messages)} messages to {out} and the ground truth to {truth}")
    print(f"seed accounts (configure them as RENOWN_SEEDS): {','.join(world.truth.seeds)}")
    return 0


def cmd_produce(args: argparse.Namespace) -> int:
    from simulate.world import read_messages

    settings = _settings(args)
    bootstrap_servers = bootstrap.require_bootstrap(settings)
    path = Path(args.file)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    if ensure_topic(bootstrap_servers, settings.topic, settings.topic_partitions):
        print(f"created topic {settings.topic} with {settings.topic_partitions} partitions")
    producer = make_producer(bootstrap_servers)
    try:
        result = produce(producer, settings.topic, ((m.key, m.value) for m in read_messages(path)))
    finally:
        producer.close()
    print(
        f"produced {result.messages} messages to {settings.topic} in {result.seconds:.2f} s "
        f"({result.rate:,.0f} msg/s)"
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from renown.demo import run_demo

    return run_demo(args, _settings(args))


# --- parser ----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="renown", description="Contributor reputation engine for NEAR data ecosystems."
    )
    parser.add_argument("--config", help="TOML settings file (also RENOWN_CONFIG)")
    parser.add_argument("--database-url", help="overrides RENOWN_DATABASE_URL")
    parser.add_argument(
        "--bootstrap", help="Kafka bootstrap servers; overrides RENOWN_KAFKA_BOOTSTRAP"
    )
    parser.add_argument("-v", "--verbose", action="count", default=0)
    sub = parser.add_subparsers(dest="command", required=True)

    def add(
        name: str, func: Callable[[argparse.Namespace], int], help_: str
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(func=func)
        return p

    p = add("db", cmd_db, "database schema: upgrade to the latest migration, or show the revision")
    p.add_argument("action", choices=["upgrade", "current"])

    p = add("ingest", cmd_ingest, "consume events from Kafka into the database (until SIGTERM)")
    p.add_argument(
        "--idle-exit",
        type=float,
        metavar="SECONDS",
        help="exit after this long without messages (backfills, tests)",
    )
    p.add_argument("--max-messages", type=int, help="exit after this many messages")

    p = add(
        "chain-source",
        cmd_chain_source,
        "follow NEAR's final blocks and produce the followed contracts' events to Kafka",
    )
    p.add_argument(
        "--from-height",
        type=int,
        metavar="H",
        help="first height for a new cursor (default: RENOWN_CHAIN_START_HEIGHT, else the head)",
    )
    p.add_argument(
        "--to-height",
        type=int,
        metavar="H",
        help="backfill --from-height..H (its own cursor, resumable) and exit",
    )

    p = add("score", cmd_score, "compute a new scoring epoch from the stored events")
    p.add_argument(
        "--every",
        type=float,
        metavar="SECONDS",
        help="stay up and score an epoch every SECONDS when events or decisions arrived",
    )

    p = add(
        "run",
        cmd_run,
        "ingest, score on a schedule and publish, in one process (small installations)",
    )
    p.add_argument(
        "--score-every",
        type=float,
        metavar="SECONDS",
        help="scoring interval; default: RENOWN_SCORE_INTERVAL_S (900)",
    )

    p = add("scores", cmd_scores, "show the latest epoch's scores: the top N, or given accounts")
    p.add_argument("accounts", nargs="*")
    p.add_argument("--domain", default=GLOBAL_DOMAIN)
    p.add_argument("--top", type=int, default=20)

    p = add("explain", cmd_explain, "why an account's score is what it is, and how to raise it")
    p.add_argument("account")
    p.add_argument("--domain", default=GLOBAL_DOMAIN)

    p = add("history", cmd_history, "an account's score across epochs and the decisions behind it")
    p.add_argument("account")
    p.add_argument("--domain", default=GLOBAL_DOMAIN)
    p.add_argument("--limit", type=int, default=50, help="the last N epochs")
    p.add_argument("--json", action="store_true")

    keys_cli.add_parser(sub)

    p = add("serve", cmd_serve, "serve the HTTP API (docs/api.md) until SIGTERM")
    p.add_argument("--host", help="default: RENOWN_API_HOST (127.0.0.1)")
    p.add_argument("--port", type=int, help="default: RENOWN_API_PORT (8080)")
    p.add_argument("--workers", type=int, help="default: RENOWN_API_WORKERS (1)")

    _flags_parser(add("flags", cmd_flags, "the moderation queue: flags, decisions, appeals, audit"))

    p = add("snapshot", cmd_snapshot, "the Merkle root of an epoch's scores (default: latest)")
    p.add_argument("--epoch", type=int)
    p.add_argument("--json", action="store_true")

    p = add("proof", cmd_proof, "an inclusion proof of an account's score against the root")
    p.add_argument("account")
    p.add_argument("--domain", default=GLOBAL_DOMAIN)
    p.add_argument("--epoch", type=int, help="default: the latest epoch with a snapshot")
    p.add_argument("--json", action="store_true")

    p = add("publish", cmd_publish, "publish the latest epoch's root and top scores to NEAR")
    p.add_argument(
        "--every",
        type=float,
        metavar="SECONDS",
        help="stay up and publish each new epoch, checking every SECONDS",
    )

    p = add("verify", cmd_verify, "check an account's score against the root on the contract")
    p.add_argument("account")
    p.add_argument("--domain", default=GLOBAL_DOMAIN)
    p.add_argument("--epoch", type=int, help="default: the latest epoch with a snapshot")

    p = add("dead-letters", cmd_dead_letters, "list the messages that could not be applied")
    p.add_argument("--limit", type=int, default=20)

    p = add("simulate", cmd_simulate, "write a simulated labeling marketplace as EVENTS.md JSONL")
    p.add_argument("--out", default="world.jsonl")
    p.add_argument("--preset", default="default", choices=["tiny", "small", "default", "large"])
    p.add_argument("--seed", type=int)

    p = add("produce", cmd_produce, "send a JSONL file of messages to the Kafka topic")
    p.add_argument("file")

    p = add("demo", cmd_demo, "simulate, produce, ingest and score a world end to end")
    p.add_argument("--preset", default="default", choices=["tiny", "small", "default", "large"])
    p.add_argument("--seed", type=int)
    p.add_argument("--out", default="demo-out", help="folder for the simulated world files")
    p.add_argument(
        "--serve",
        action="store_true",
        help="then serve the API and web pages on the demo's database until Ctrl-C",
    )
    p.add_argument("--host", help="with --serve; default: RENOWN_API_HOST (127.0.0.1)")
    p.add_argument("--port", type=int, help="with --serve; default: RENOWN_API_PORT (8080)")
    return parser


def _flags_parser(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="flags_action", required=True)
    moderator_help = "who acts (must be in RENOWN_MODERATORS)"

    def action(name: str, help_: str, *, flag: bool = True) -> argparse.ArgumentParser:
        q = sub.add_parser(name, help=help_, description=help_)
        if flag:
            q.add_argument("flag", type=int, help="the flag's number")
        q.add_argument("--json", action="store_true")
        return q

    q = action("list", "the queue, most severe first", flag=False)
    q.add_argument("--status", help="comma-separated: open,confirmed,dismissed,appealed,overturned")
    q.add_argument("--kind")
    q.add_argument("--account", help="flags concerning this account")
    q.add_argument("--limit", type=int, default=50)
    q.add_argument("--offset", type=int, default=0)
    action("show", "a flag with its evidence, appeal and audit trail")
    q = action("raise", "raise a flag by hand", flag=False)
    q.add_argument("--moderator", required=True, help=moderator_help)
    q.add_argument("--kind", default="manual")
    q.add_argument("--account", action="append", required=True, help="repeat for several")
    q.add_argument("--reason", required=True)
    q.add_argument("--severity", type=float, default=0.5)
    q = action("confirm", "confirm an open flag: its accounts are discounted from the next epoch")
    q.add_argument("--moderator", required=True, help=moderator_help)
    q.add_argument("--reason", required=True)
    q.add_argument("--trust-factor", type=float, help="share of trust they still pass on")
    q.add_argument("--label-factor", type=float, help="weight of their labels")
    q.add_argument(
        "--score-factor", type=float, help="share of their own trust they keep (default 1)"
    )
    q = action("dismiss", "dismiss an open flag (final)")
    q.add_argument("--moderator", required=True, help=moderator_help)
    q.add_argument("--reason", required=True)
    q = action("appeal", "appeal a confirmed flag, as the flagged account (once)")
    q.add_argument("--account", required=True, help="the flagged account appealing")
    q.add_argument("--statement", required=True)
    q = action("decide", "decide an appeal (not by the moderator who confirmed the flag)")
    q.add_argument("verdict", choices=["uphold", "reject"])
    q.add_argument("--moderator", required=True, help=moderator_help)
    q.add_argument("--reason", required=True)
    q = action("audit", "the audit log, oldest first", flag=False)
    q.add_argument("--flag", type=int)
    q.add_argument("--actor")
    q.add_argument("--account")
    q.add_argument("--limit", type=int, default=100)
    q.add_argument("--offset", type=int, default=0)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except (
        SettingsError,
        UserError,
        bootstrap.NotConfigured,
        DatabaseUnavailable,
        ProduceError,
        BrokerUnavailable,
        BrokerError,
        ConvergenceError,
        ChainUnavailable,
        ChainSourceError,
        RpcError,
        ViewError,
        PublishFailed,
        PublishConflict,
        ApiKeyError,
    ) as exc:
        print(f"renown {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
