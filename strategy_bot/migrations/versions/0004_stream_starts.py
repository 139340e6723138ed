"""Streams being started are recorded, so a retry can find the message such a start left.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

stream_starts: a row per event, written just before `chat.startStream` is called for it. A crash
between Slack creating the stream's message and the delivery log noting its ts (or a start that
answered 5xx or timed out after Slack created the message) leaves a message without metadata and
without a noted ts; the retry sees this mark and adopts that message instead of starting a second
one (bot/listeners/answers.py). Written out rather than taken from strategy_bot/schema.py (see
0001). A table of its own rather than a column of deliveries, whose columns are a shared spec; a
new empty table, so the upgrade of a filled database is instant.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stream_starts",
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("started_at", sa.Double, nullable=False),
    )
    op.create_index("stream_starts_started_at", "stream_starts", ["started_at"])


def downgrade() -> None:
    op.drop_index("stream_starts_started_at", "stream_starts")
    op.drop_table("stream_starts")
