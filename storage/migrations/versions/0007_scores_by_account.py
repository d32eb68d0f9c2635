"""scores by account

An account's scores (every domain of an epoch; its history across epochs) were found by
scanning the epoch: the primary key starts with (epoch, domain). This index makes the
API's score lookup and ``renown history`` index reads.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 10:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_scores_account_id", "scores", ["account_id", "epoch"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_scores_account_id", table_name="scores")
