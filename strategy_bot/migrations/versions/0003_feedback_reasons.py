"""Feedback with reasons and the build that answered; App Home visits; indexes the App Home reads by.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

answers.build_id and feedback.build_id: which index build answered (a 👎 on an answer is about that
build's passages). feedback.reason / reason_text: why a 👎, from the modal. home_visits: who opened the
App Home, so a re-index republishes theirs. Written out rather than taken from strategy_bot/schema.py
(see 0001). Only nullable columns are added, so the upgrade of a filled database is instant and old
rows stay valid (their build is simply unknown).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("answers") as batch:  # batch: SQLite cannot ALTER much in place
        batch.add_column(sa.Column("build_id", sa.Text))
    op.create_index("answers_user", "answers", ["user_id", "id"])
    op.create_index("answers_created_at", "answers", ["created_at"])
    with op.batch_alter_table("feedback") as batch:
        batch.add_column(sa.Column("build_id", sa.Text))
        batch.add_column(sa.Column("reason", sa.Text))
        batch.add_column(sa.Column("reason_text", sa.Text))
    op.create_table(
        "home_visits",
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("opened_at", sa.Double, nullable=False),
    )
    op.create_index("home_visits_opened_at", "home_visits", ["opened_at"])


def downgrade() -> None:
    op.drop_index("home_visits_opened_at", "home_visits")
    op.drop_table("home_visits")
    with op.batch_alter_table("feedback") as batch:
        for column in ("reason_text", "reason", "build_id"):
            batch.drop_column(column)
    op.drop_index("answers_created_at", "answers")
    op.drop_index("answers_user", "answers")
    with op.batch_alter_table("answers") as batch:
        batch.drop_column("build_id")
