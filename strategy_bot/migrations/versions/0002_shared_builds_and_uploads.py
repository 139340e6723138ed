"""Index builds and uploads shared by every replica: index_builds, index_files, index_current, uploads.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02

Written out rather than taken from strategy_bot/schema.py (see 0001).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "index_builds",
        sa.Column("build_id", sa.Text, primary_key=True),
        sa.Column("built_at", sa.Double, nullable=False),
        sa.Column("built_by", sa.Text, nullable=False),
        sa.Column("meta", sa.Text, nullable=False),
        sa.Column("published_at", sa.Double, nullable=False),
    )
    op.create_table(
        "index_files",
        sa.Column("build_id", sa.Text, sa.ForeignKey("index_builds.build_id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("sha256", sa.Text, nullable=False),
        sa.Column("bytes", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("build_id", "name"),
    )
    op.create_table(
        "index_current",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("build_id", sa.Text, sa.ForeignKey("index_builds.build_id"), nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.CheckConstraint("id = 1", name="index_current_one_row"),
    )
    op.create_table(
        "uploads",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("sha256", sa.Text, nullable=False),
        sa.Column("bytes", sa.LargeBinary, nullable=False),
        sa.Column("uploaded_by", sa.Text, nullable=False),
        sa.Column("uploaded_at", sa.Double, nullable=False),
    )


def downgrade() -> None:
    for table in ("uploads", "index_current", "index_files", "index_builds"):
        op.drop_table(table)
