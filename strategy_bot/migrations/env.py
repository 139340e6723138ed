"""Alembic's entry point, run by strategy_bot/migrate.py on a connection it already holds (and locks)."""
from __future__ import annotations

from alembic import context

from strategy_bot.schema import metadata


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:  # e.g. the `alembic` command without strategy-bot's configuration
        raise RuntimeError("run the migrations with `strategy-bot db upgrade`")
    # render_as_batch: SQLite cannot ALTER most things; Alembic's batch mode copies the table instead.
    context.configure(connection=connection, target_metadata=metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
