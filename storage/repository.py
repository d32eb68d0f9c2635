"""Write-side repository for ingest: set-based, idempotent inserts that never commit.

Every write is a multi-row ``INSERT ... ON CONFLICT`` so that a batch of a thousand
events costs a handful of round trips, and so that re-applying anything already
stored is a no-op on both SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import psycopg
from sqlalchemy import JSON, Table, select, tuple_, update
from sqlalchemy import column as sa_column
from sqlalchemy import table as sa_table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from storage.models import (
    Account,
    Base,
    ConsumerOffset,
    Content,
    ContentAuthor,
    ContentParent,
    DeadLetter,
    Event,
    Gold,
    Interaction,
    Label,
    Review,
    SkippedMessage,
    Task,
)

EventKeyTuple = tuple[str, int, int, int]  # receipt_id, log_index, data_index, part
PartitionKey = tuple[str, int]  # topic, partition

# Parameters per statement stay well under SQLite's 32766 host-parameter limit.
_CHUNK = 500


class OffsetConflict(RuntimeError):
    """Another consumer advanced a partition we were applying: our batch must not land.

    Raised when the stored offset is not the one this consumer started from, which
    happens only when a rebalance gave the partition to someone else mid-batch.
    """


def _table(model: type[Base]) -> Table:
    """The model's Table (typed: ``__table__`` is declared as a bare FromClause)."""
    return cast(Table, model.__table__)


def _insert(session: Session, table: Table) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT (both SQLite and PostgreSQL do)."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"unsupported database dialect {name!r}")


def _chunks(rows: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


@dataclass
class AccountCache:
    """account_id -> integer id; accounts are never deleted, so a process may cache forever."""

    ids: dict[str, int]
    #: Names cached by the transaction in progress: void if it rolls back.
    pending: list[str]

    @classmethod
    def empty(cls) -> AccountCache:
        return cls({}, [])

    def committed(self) -> None:
        self.pending.clear()

    def rolled_back(self) -> None:
        for name in self.pending:
            self.ids.pop(name, None)
        self.pending.clear()


class IngestRepository:
    def __init__(self, session: Session, accounts: AccountCache | None = None) -> None:
        self.session = session
        self.accounts = accounts or AccountCache.empty()

    # --- accounts -------------------------------------------------------------------

    def account_ids(self, first_seen: Mapping[str, int]) -> dict[str, int]:
        """Integer ids for the given accounts, creating the missing ones.

        ``first_seen`` maps account id to the earliest block timestamp it appears at in
        this batch; an existing account keeps its stored first-seen time.
        """
        cache = self.accounts.ids
        missing = [a for a in first_seen if a not in cache]
        if missing:
            table = _table(Account)
            for chunk in _chunks(sorted(missing)):
                rows = [{"account_id": a, "first_seen_ns": first_seen[a]} for a in chunk]
                self.session.execute(_insert(self.session, table).on_conflict_do_nothing(), rows)
                found = self.session.execute(
                    select(Account.account_id, Account.id).where(Account.account_id.in_(chunk))
                )
                for name, id_ in found:
                    cache[name] = id_
                    self.accounts.pending.append(name)
        return {a: cache[a] for a in first_seen}

    # --- the bulk write path ----------------------------------------------------------

    def _write(
        self,
        table: Table,
        rows: Sequence[dict[str, Any]],
        build: Callable[[Any], Any],
        *,
        returns: bool = False,
    ) -> list[Any]:
        """Write ``rows`` with the statement ``build`` makes of the dialect's INSERT.

        On PostgreSQL the rows go in with COPY into a session-local staging table and one
        ``INSERT ... SELECT`` (with the same ON CONFLICT clause): no SQL text grows with
        the batch, so nothing is parsed per row, and it is one round trip per table. On
        SQLite they go in with executemany, which SQLAlchemy batches into multi-row VALUES.
        """
        if not rows:
            return []
        if self.session.get_bind().dialect.name == "postgresql":
            columns = list(rows[0])
            stage = self._pg_stage(table, columns, rows)
            stmt = build(postgresql.insert(table).from_select(columns, select(stage)))
            result = self.session.execute(stmt)
            return list(result) if returns else []
        out: list[Any] = []
        stmt = build(_insert(self.session, table))
        for chunk in _chunks(rows):
            result = self.session.execute(stmt, list(chunk))
            if returns:
                out.extend(result)
        return out

    def _pg_stage(self, table: Table, columns: list[str], rows: Sequence[dict[str, Any]]) -> Any:
        """COPY rows into a temporary table shaped like ``table`` (emptied at each commit)."""
        name = f"renown_stage_{table.name}_{zlib.crc32(','.join(columns).encode()):08x}"
        fairy = self.session.connection().connection
        collist = ", ".join(f'"{c}"' for c in columns)
        json_cols = {c for c in columns if isinstance(table.c[c].type, JSON)}
        # The staging table is empty at the start of every transaction (ON COMMIT DELETE
        # ROWS; a rollback discards its rows): it needs emptying only if this transaction
        # (this session) used it already.
        used: set[str] = self.session.info.setdefault("renown_staged", set())
        try:
            self._pg_copy(fairy, name, table, columns, collist, json_cols, rows, name in used)
            used.add(name)
        except psycopg.Error as exc:
            # Raised by the driver directly, not through SQLAlchemy: wrap it the way
            # SQLAlchemy would, so callers see DataError, IntegrityError, OperationalError.
            raise DBAPIError.instance(f"COPY {name}", None, exc, psycopg.Error) from exc
        return sa_table(name, *(sa_column(c) for c in columns))

    @staticmethod
    def _pg_copy(
        fairy: Any,
        name: str,
        table: Table,
        columns: list[str],
        collist: str,
        json_cols: set[str],
        rows: Sequence[dict[str, Any]],
        truncate: bool,
    ) -> None:
        with fairy.dbapi_connection.cursor() as cur:
            # CREATE ... IF NOT EXISTS every time: a CREATE is rolled back with a failed
            # transaction, so "created once" cannot be remembered outside one.
            cur.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {name} ON COMMIT DELETE ROWS AS "
                f'SELECT {collist} FROM "{table.name}" WITH NO DATA'
                + (f"; TRUNCATE {name}" if truncate else "")
            )
            with cur.copy(f"COPY {name} ({collist}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(
                        [
                            json.dumps(row[c]) if c in json_cols and row[c] is not None else row[c]
                            for c in columns
                        ]
                    )

    # --- events ---------------------------------------------------------------------

    def insert_events(self, rows: Sequence[dict[str, Any]]) -> dict[EventKeyTuple, int]:
        """Insert raw events; returns the ids of those that were new (duplicates are skipped)."""
        t = _table(Event)
        found = self._write(
            t,
            rows,
            lambda ins: ins.on_conflict_do_nothing(
                index_elements=["receipt_id", "log_index", "data_index", "part"]
            ).returning(t.c.id, t.c.receipt_id, t.c.log_index, t.c.data_index, t.c.part),
            returns=True,
        )
        return {(r, li, di, p): id_ for id_, r, li, di, p in found}

    # --- derived rows ---------------------------------------------------------------

    def insert_rows(self, table: Table, rows: Sequence[dict[str, Any]]) -> None:
        """Plain insert (rows derived from new events cannot conflict)."""
        self._write(table, rows, lambda ins: ins)

    def insert_ignore(self, table: Table, rows: Sequence[dict[str, Any]]) -> None:
        """Insert, skipping rows that hit a unique constraint (first writer wins)."""
        self._write(table, rows, lambda ins: ins.on_conflict_do_nothing())

    def upsert_by_time(
        self,
        table: Table,
        rows: Sequence[dict[str, Any]],
        keys: Sequence[str],
        *,
        keep: str = "latest",
        ts: str = "ts_ns",
    ) -> None:
        """Insert, or replace the stored row when this one is newer (or older) on chain.

        Arrival order across partitions is arbitrary, so "latest" and "earliest" are by
        block time (ties by event id), never by arrival, and the result is the same
        whatever order the events are applied in.
        """
        if keep not in ("latest", "earliest"):
            raise ValueError("keep must be 'latest' or 'earliest'")
        sign = 1 if keep == "latest" else -1
        chosen: dict[tuple[Any, ...], dict[str, Any]] = {}
        for row in rows:  # one row per key per statement (PostgreSQL refuses two)
            k = tuple(row[c] for c in keys)
            order = (sign * row[ts], sign * row["event_id"])
            if k not in chosen or order > (sign * chosen[k][ts], sign * chosen[k]["event_id"]):
                chosen[k] = row
        deduped = list(chosen.values())
        if not deduped:
            return

        def build(ins: Any) -> Any:
            new, old = ins.excluded, table.c
            if keep == "latest":
                wins = (new[ts] > old[ts]) | ((new[ts] == old[ts]) & (new.event_id > old.event_id))
            else:
                wins = (new[ts] < old[ts]) | ((new[ts] == old[ts]) & (new.event_id < old.event_id))
            update_cols = {c: new[c] for c in deduped[0] if c not in keys}
            return ins.on_conflict_do_update(
                index_elements=list(keys), set_=update_cols, where=wins
            )

        self._write(table, deduped, build)

    def write_derived(self, rows: DerivedRows) -> None:
        self.insert_rows(_table(Interaction), rows.interactions)
        self.upsert_by_time(_table(Task), rows.tasks, ["contract_id", "task_id"])
        self.upsert_by_time(
            _table(Label), rows.labels, ["contract_id", "task_id", "item_id", "labeler_id"]
        )
        self.upsert_by_time(
            _table(Review),
            rows.reviews,
            ["contract_id", "task_id", "item_id", "labeler_id", "reviewer_id"],
        )
        self.upsert_by_time(_table(Gold), rows.gold, ["contract_id", "task_id", "item_id"])
        self.upsert_by_time(_table(Content), rows.content, ["content_id"], keep="earliest")
        self.insert_ignore(_table(ContentAuthor), rows.content_authors)
        self.insert_ignore(_table(ContentParent), rows.content_parents)

    # --- dead letters and skipped messages ------------------------------------------

    def add_dead_letters(self, rows: Sequence[dict[str, Any]]) -> None:
        self.insert_ignore(_table(DeadLetter), rows)

    def add_skipped(self, rows: Sequence[dict[str, Any]]) -> None:
        self.insert_ignore(_table(SkippedMessage), rows)

    # --- offsets --------------------------------------------------------------------

    def load_offsets(
        self, group_id: str, partitions: Iterable[PartitionKey]
    ) -> dict[PartitionKey, int]:
        """Stored next offsets for the given partitions (absent: never applied)."""
        wanted = list(partitions)
        if not wanted:
            return {}
        result = self.session.execute(
            select(ConsumerOffset.topic, ConsumerOffset.partition, ConsumerOffset.next_offset)
            .where(ConsumerOffset.group_id == group_id)
            .where(tuple_(ConsumerOffset.topic, ConsumerOffset.partition).in_(wanted))
        )
        return {(t, p): o for t, p, o in result}

    def advance_offsets(
        self,
        group_id: str,
        moves: Mapping[PartitionKey, tuple[int | None, int]],
    ) -> None:
        """Move each partition from its expected stored offset to a new one, or fail.

        ``moves`` maps (topic, partition) to (expected, new); expected ``None`` means no
        row yet. The compare-and-set is what fences a consumer that lost its partition
        in a rebalance but still tries to commit a batch.
        """
        table = _table(ConsumerOffset)
        for (topic, partition), (expected, new) in moves.items():
            if expected is None:
                stmt = (
                    _insert(self.session, table)
                    .values(group_id=group_id, topic=topic, partition=partition, next_offset=new)
                    .on_conflict_do_nothing()
                    .returning(table.c.next_offset)
                )
            else:
                stmt = (
                    update(ConsumerOffset)
                    .where(ConsumerOffset.group_id == group_id)
                    .where(ConsumerOffset.topic == topic)
                    .where(ConsumerOffset.partition == partition)
                    .where(ConsumerOffset.next_offset == expected)
                    .values(next_offset=new)
                    .returning(ConsumerOffset.next_offset)
                )
            # RETURNING, not rowcount: psycopg reports -1 for INSERT ... ON CONFLICT.
            if len(self.session.execute(stmt).all()) != 1:
                raise OffsetConflict(
                    f"{topic}[{partition}] moved under us (expected {expected}); "
                    "another consumer owns it now"
                )


@dataclass
class DerivedRows:
    """Rows derived from the new events of one batch, accumulated by the handlers."""

    interactions: list[dict[str, Any]]
    tasks: list[dict[str, Any]]
    labels: list[dict[str, Any]]
    reviews: list[dict[str, Any]]
    gold: list[dict[str, Any]]
    content: list[dict[str, Any]]
    content_authors: list[dict[str, Any]]
    content_parents: list[dict[str, Any]]

    @classmethod
    def empty(cls) -> DerivedRows:
        return cls([], [], [], [], [], [], [], [])

    def count(self) -> int:
        return sum(len(v) for v in vars(self).values())
