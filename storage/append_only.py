"""Append-only tables: changes to a written row are refused before they reach the database.

Why in the storage layer and not only in the database: the database triggers (migration
0005) stop everything, but answer with a driver error after the fact; these guards stop
an ORM update or delete, and a bulk ``update()``/``delete()`` statement, at the point the
program tries it, with an error that says which table and why. Both stay: the guards for
the program, the triggers for anything else that writes to the database.

Imported by :mod:`storage.models`, so the guards are on wherever the models are used.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Delete, Engine, Update, event
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

__all__ = ["APPEND_ONLY_TABLES", "AppendOnlyError"]

#: Tables whose rows, once written, are never changed nor removed.
APPEND_ONLY_TABLES = frozenset({"moderation_audit"})


class AppendOnlyError(RuntimeError):
    """An update or delete of an append-only table's row was attempted."""


def _table_name(obj: Any) -> str | None:
    table = getattr(type(obj), "__table__", None)
    return None if table is None else str(table.name)


def _refuse(table: str, what: str) -> AppendOnlyError:
    return AppendOnlyError(
        f"{table} is append-only: {what} refused (record a new entry instead; "
        "docs/moderation.md, audit log)"
    )


@event.listens_for(Session, "before_flush")
def _refuse_changed_rows(session: Session, _ctx: UOWTransaction, _instances: Any) -> None:
    for obj in session.deleted:
        name = _table_name(obj)
        if name in APPEND_ONLY_TABLES:
            raise _refuse(name, "DELETE")
    for obj in session.dirty:
        name = _table_name(obj)
        if name in APPEND_ONLY_TABLES and session.is_modified(obj):
            raise _refuse(name, "UPDATE")


def _statement_table(statement: Any) -> str | None:
    if isinstance(statement, Update | Delete):
        return str(getattr(statement.table, "name", "")) or None
    return None


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_orm(state: ORMExecuteState) -> None:
    name = _statement_table(state.statement)
    if name in APPEND_ONLY_TABLES:
        raise _refuse(name, "UPDATE" if state.is_update else "DELETE")


@event.listens_for(Engine, "before_execute")
def _refuse_bulk_core(_conn: Any, clause: Any, *_args: Any) -> None:
    name = _statement_table(clause)
    if name in APPEND_ONLY_TABLES:
        raise _refuse(name, "UPDATE" if isinstance(clause, Update) else "DELETE")
