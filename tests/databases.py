"""Real databases for the tests: a SQLite file, or a private schema on a real PostgreSQL server.

PostgreSQL comes from `DATABASE_URL` (default: the local server every development and CI machine
runs, trust auth). Each test module gets its own schema, created here and dropped after; the URL
handed out selects it through `search_path`, so the code under test (and a `strategy-bot`
subprocess given that URL) sees an empty database of its own. Without a server the tests skip,
with one line saying where they looked.
"""
from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import text

from strategy_bot import migrate
from strategy_bot.database import DatabaseUnavailable, check_reachable, describe, open_engine
from strategy_bot.schema import metadata

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
ENGINES = ("sqlite", "postgresql")


def postgres_server_url() -> str:
    """The server tests use, with the psycopg 3 driver (the URL as the bot would turn it)."""
    raw = os.environ.get("DATABASE_URL", "").strip() or DEFAULT_POSTGRES
    if not raw.startswith(("postgresql", "postgres:")):
        raw = DEFAULT_POSTGRES  # a DATABASE_URL for something else (a SQLite file) says nothing of the server
    for short in ("postgres://", "postgresql://"):
        if raw.startswith(short):
            raw = "postgresql+psycopg://" + raw[len(short):]
    return raw


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A URL selecting a fresh, empty schema on the server (dropped afterwards); skips without a server."""
    admin = open_engine(postgres_server_url())
    try:
        check_reachable(admin)
    except DatabaseUnavailable:
        admin.dispose()
        where = describe(admin).removeprefix("PostgreSQL ")
        pytest.skip(f"PostgreSQL not reachable at {where} (set DATABASE_URL to test against one)")
    name = f"test_{uuid.uuid4().hex[:12]}"
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{name}"'))
    url = admin.url.update_query_dict({"options": f"-csearch_path={name}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


def sqlite_url(folder: Path) -> str:
    return f"sqlite:///{Path(folder).resolve() / 'state.sqlite3'}"


def upgraded(url: str) -> str:
    """`url` with its schema brought to the current migration (what `strategy-bot db upgrade` does)."""
    engine = open_engine(url)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()
    return url


def empty_tables(url: str) -> None:
    """Delete every row of the state tables (a module's tests share one PostgreSQL schema)."""
    engine = open_engine(url)
    try:
        with engine.begin() as connection:
            names = ", ".join(table.name for table in metadata.sorted_tables)
            connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY"))
    finally:
        engine.dispose()
