"""chain cursors

Where ``renown chain-source`` stands on each chain (and each backfill range): the last
block whose events are all in Kafka, and the chain's final head for the lag in /metrics.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 12:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chain_cursors",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("height", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=64), nullable=True),
        sa.Column("block_timestamp", sa.BigInteger(), nullable=True),
        sa.Column("head_height", sa.BigInteger(), nullable=True),
        sa.Column("head_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("messages", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_chain_cursors")),
    )


def downgrade() -> None:
    op.drop_table("chain_cursors")
