"""Snapshots: an epoch's Merkle root, its publications on chain, its full table."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.deps import database, read_session
from api.errors import ApiError
from api.schemas import Publication, SnapshotInfo
from renown.bootstrap import Database
from scoring.merkle import stored_score_micro
from storage.models import Account, Score
from storage.models import Publication as PublicationRow
from storage.snapshot_repo import NoSnapshot, latest_snapshot, snapshot_of
from storage.uow import UnitOfWork

router = APIRouter(tags=["snapshots"])

DOWNLOAD_CHUNK = 10_000  # rows per fetch while streaming a table

# The largest epoch number: epochs are 32-bit integers in the database (storage/models.py).
# A larger one in a request is a 422, not a 500 from the driver (found by
# tests/test_api_fuzz.py: SQLite overflowed past 2**63, PostgreSQL past 2**31 - 1).
MAX_EPOCH = 2**31 - 1
Epoch = Annotated[int, Path(ge=1, le=MAX_EPOCH)]


def _iso(at: datetime | None) -> str | None:
    if at is None:
        return None
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).isoformat()


def publications_of(session: Session, epoch: int) -> list[Publication]:
    """Where the epoch's root was published (one row per contract), with the transaction."""
    rows = session.scalars(select(PublicationRow).where(PublicationRow.epoch == epoch))
    return [
        Publication(
            contract_id=p.contract_id,
            stage=p.stage,
            snapshot_tx=p.snapshot_tx,
            batches_done=p.batches_done,
            batches_total=p.batches_total,
            finished_at=_iso(p.finished_at),
        )
        for p in rows
    ]


def _info(session: Session, epoch: int | None) -> SnapshotInfo:
    try:
        snap = latest_snapshot(session) if epoch is None else snapshot_of(session, epoch)
    except NoSnapshot as exc:
        raise ApiError(404, "no_snapshot", str(exc), "GET /v1/snapshots/latest") from None
    base = f"/v1/snapshots/{snap.epoch}/scores"
    return SnapshotInfo(
        epoch=snap.epoch,
        root=snap.root,
        count=snap.leaf_count,
        leaf_version=snap.leaf_version,
        built_at=_iso(snap.built_at) or "",
        publications=publications_of(session, snap.epoch),
        download={"jsonl": f"{base}?format=jsonl", "csv": f"{base}?format=csv"},
    )


@router.get("/snapshots/latest", response_model=SnapshotInfo)
def latest(session: Annotated[Session, Depends(read_session)]) -> SnapshotInfo:
    """The latest epoch's root, leaf count, publications and download links."""
    return _info(session, None)


@router.get("/snapshots/{epoch}", response_model=SnapshotInfo)
def by_epoch(epoch: Epoch, session: Annotated[Session, Depends(read_session)]) -> SnapshotInfo:
    """One epoch's root, leaf count, publications and download links."""
    return _info(session, epoch)


COLUMNS = ("account", "domain", "score", "score_micro", "rank", "percentile", "confidence")


def _rows(db: Database, epoch: int) -> Iterator[tuple[object, ...]]:
    """The epoch's scores by domain and rank, fetched in chunks in a session of their own
    (a streamed response outlives the request's session)."""
    with UnitOfWork(db.sessions) as uow:
        result = uow.session.execute(
            select(
                Account.account_id,
                Score.domain,
                Score.score,
                Score.rank,
                Score.percentile,
                Score.confidence,
            )
            .join(Account, Account.id == Score.account_id)
            .where(Score.epoch == epoch)
            .order_by(Score.domain, Score.rank)
            .execution_options(yield_per=DOWNLOAD_CHUNK)
        )
        for account, domain, score, rank, pct, conf in result:
            yield account, domain, score, stored_score_micro(score), rank, pct, conf


@router.get(
    "/snapshots/{epoch}/scores",
    # Not JSON: without response_class, FastAPI documents an application/json 200 as well.
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {
                "application/x-ndjson": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}},
            },
            "description": "every score of the epoch, by domain and rank: one JSON object "
            "per line (format=jsonl) or CSV with a header row (format=csv)",
        }
    },
)
def download(
    epoch: Epoch,
    request: Request,
    session: Annotated[Session, Depends(read_session)],
    format: Annotated[Literal["jsonl", "csv"], Query()] = "jsonl",
) -> StreamingResponse:
    """The full table of an epoch (every account and domain), streamed as JSON lines or
    CSV: what the snapshot's root commits to (``score_micro`` is the leaf's value)."""
    _info(session, epoch)  # 404 before streaming starts
    db = database(request)
    name = f"renown-epoch-{epoch}.{format}"

    def jsonl() -> Iterator[str]:
        for row in _rows(db, epoch):
            yield json.dumps(dict(zip(COLUMNS, row, strict=True)), separators=(",", ":")) + "\n"

    def csv_lines() -> Iterator[str]:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(COLUMNS)
        for i, row in enumerate(_rows(db, epoch)):
            writer.writerow(row)
            if i % 1000 == 999:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue()

    return StreamingResponse(
        jsonl() if format == "jsonl" else csv_lines(),
        media_type="application/x-ndjson" if format == "jsonl" else "text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
