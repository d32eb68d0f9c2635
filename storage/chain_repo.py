"""The chain source's cursors (``chain_cursors``): read, advance, report.

Why the cursor lives in the database and not in Kafka or a file: the source is restarted
on another machine or pod as easily as on its own; the database is the one store every
Renown process already shares and backs up, and ``/metrics`` (the API) reads the lag from
it without asking the source. A cursor is advanced only after the messages of every block
up to it were acknowledged by Kafka, so a crash replays at most the blocks since the last
advance, which ingest's idempotency keys make harmless.

Like every repository here these functions add and query; the caller commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import ChainCursor

__all__ = ["CursorState", "all_cursors", "get_cursor", "save_cursor", "save_head"]


@dataclass(frozen=True)
class CursorState:
    name: str
    height: int
    block_hash: str | None
    block_timestamp: int | None
    head_height: int | None
    head_seen_at: datetime | None
    messages: int
    updated_at: datetime


def _state(row: ChainCursor) -> CursorState:
    return CursorState(
        row.name,
        row.height,
        row.block_hash,
        row.block_timestamp,
        row.head_height,
        row.head_seen_at,
        row.messages,
        row.updated_at,
    )


def get_cursor(session: Session, name: str) -> CursorState | None:
    row = session.get(ChainCursor, name)
    return None if row is None else _state(row)


def all_cursors(session: Session) -> list[CursorState]:
    return [_state(r) for r in session.scalars(select(ChainCursor).order_by(ChainCursor.name))]


def save_cursor(
    session: Session,
    name: str,
    *,
    height: int,
    block_hash: str | None,
    block_timestamp: int | None,
    head_height: int | None,
    added_messages: int,
    now: datetime,
) -> None:
    """Advance (or create) the cursor ``name`` to ``height``; ``added_messages`` counts
    the messages produced since the previous save."""
    row = session.get(ChainCursor, name)
    if row is None:
        row = ChainCursor(name=name, messages=0)
        session.add(row)
    row.height = height
    row.block_hash = block_hash
    row.block_timestamp = block_timestamp
    if head_height is not None:
        row.head_height = head_height
        row.head_seen_at = now
    row.messages = (row.messages or 0) + added_messages
    row.updated_at = now


def save_head(session: Session, name: str, head_height: int, *, now: datetime) -> None:
    """Record the chain's final head seen while idle at the head (the lag stays fresh in
    /metrics when no block brings events); no-op before the cursor exists."""
    row = session.get(ChainCursor, name)
    if row is not None:
        row.head_height = head_height
        row.head_seen_at = now
