"""The state tables: answers, feedback, dialogues (versioned), deliveries, legacy_imports.

Revision ID: 0001
Revises:
Create Date: 2026-12-02

Written out rather than taken from strategy_bot/schema.py, so that this version stays what it
was when the schema moves on (tests/test_database.py checks the two agree at head).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "answers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("thread_ts", sa.Text, nullable=False),
        sa.Column("question_ts", sa.Text, nullable=False),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("answer", sa.Text),
        sa.Column("abstained", sa.Boolean),
        sa.Column("citations", sa.Text),
        sa.Column("reply_ts", sa.Text),
        sa.Column("created_at", sa.Double, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("answers_thread", "answers", ["channel", "thread_ts", "id"])
    op.create_table(
        "feedback",
        sa.Column("answer_id", sa.Integer, nullable=False),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("vote", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("message_ts", sa.Text, nullable=False),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("citations", sa.Text, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("answer_id", "user_id"),
    )
    op.create_table(
        "dialogues",
        sa.Column("channel_id", sa.Text, nullable=False),
        sa.Column("thread_ts", sa.Text, nullable=False),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("answers", sa.Text, nullable=False),
        sa.Column("context", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.Column("message_ts", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False, server_default=sa.text("1")),
        sa.PrimaryKeyConstraint("channel_id", "thread_ts"),
        sa.CheckConstraint("status IN ('active', 'finished', 'cancelled')", name="dialogues_status"),
    )
    op.create_index("dialogues_updated_at", "dialogues", ["updated_at"])
    op.create_table(
        "deliveries",
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("owner", sa.Text),
        sa.Column("lease_until", sa.Double),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("deliveries", sa.Integer, nullable=False, server_default=sa.text("1")),
        sa.Column("first_seen", sa.Double, nullable=False),
        sa.Column("finished_at", sa.Double),
        sa.Column("outcome", sa.Text),
        sa.Column("reply_ts", sa.Text),
    )
    op.create_index("deliveries_due", "deliveries", ["status", "lease_until"])
    op.create_index("deliveries_first_seen", "deliveries", ["first_seen"])
    op.create_table(
        "legacy_imports",
        sa.Column("source", sa.Text, primary_key=True),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("imported_at", sa.Double, nullable=False),
    )


def downgrade() -> None:
    for table in ("legacy_imports", "deliveries", "dialogues", "feedback", "answers"):
        op.drop_table(table)
