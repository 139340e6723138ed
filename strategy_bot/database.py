"""Where the bot's state lives: one SQLAlchemy engine, SQLite by default, PostgreSQL by configuration.

`DATABASE_URL` unset: one SQLite file, `DATA_DIR/state.sqlite3` (nothing to install or run).
`DATABASE_URL=postgresql://…`: a PostgreSQL database every replica shares, through psycopg 3.

Why SQLAlchemy Core rather than sqlite3 and psycopg by hand: one set of queries for both engines,
a connection pool that is thread-safe, and Alembic (strategy_bot/migrate.py) on the same schema.
Only the URL's host and database name are ever shown; the URL itself may hold a password.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import SQLAlchemyError

from strategy_bot.settings import Settings

log = logging.getLogger(__name__)

STATE_FILE = "state.sqlite3"
CONNECT_TIMEOUT_S = 5  # a PostgreSQL that does not answer fails start-up and /healthz in seconds, not minutes
SQLITE_BUSY_TIMEOUT_MS = 30_000  # writers of one file queue for up to this long instead of failing


# An advisory lock key for this deployment: the constant mixed with the search_path, so deployments (or
# test runs) sharing one PostgreSQL database in different schemas never hold each other's locks.
# search_path, not current_schema(): the latter is NULL until the schema exists.
SCHEMA_LOCK_KEY = "(:key # hashtext(current_setting('search_path')))"


class DatabaseUnavailable(RuntimeError):
    """The database does not answer; the message names host and database, never the password."""


def database_url(settings: Settings) -> URL:
    """The URL of the state: DATABASE_URL with the psycopg 3 driver, or the SQLite file under DATA_DIR."""
    raw = settings.database_url.strip()
    if not raw:
        return make_url(f"sqlite:///{Path(settings.data_dir).resolve() / STATE_FILE}")
    for short in ("postgres://", "postgresql://"):
        if raw.startswith(short):
            raw = "postgresql+psycopg://" + raw[len(short):]
    return make_url(raw)


def describe(url: URL | Engine) -> str:
    """The database in words for logs and errors: engine, host and name, no user or password."""
    url = url.url if isinstance(url, Engine) else url
    if url.get_backend_name() == "sqlite":
        return f"SQLite {url.database}"
    return f"PostgreSQL {url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"


def open_engine(url: URL | str) -> Engine:
    """An engine for `url`; SQLite files get WAL and a busy timeout, PostgreSQL a connect timeout."""
    url = make_url(url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_S
    # pre_ping: a connection the server closed (restart, failover) is replaced instead of failing a request.
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def is_shared(settings: Settings) -> bool:
    """Whether DATABASE_URL names a database every replica shares (PostgreSQL): then builds and uploads
    are shared through it too. The embedded SQLite default keeps them in DATA_DIR."""
    return database_url(settings).get_backend_name() == "postgresql"


def engine_for(settings: Settings) -> Engine:
    return open_engine(database_url(settings))


def _sqlite_engine(url: URL) -> Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin (the recipe of
        # SQLAlchemy's pysqlite docs): the module's own implicit BEGIN skips DDL and SELECT, which
        # would leave a migration half-applied when two processes start on one file at once.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
        cursor.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable across a process crash
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # IMMEDIATE on request (migrations): take the write lock first, so a second process waits
        # for the first one's upgrade instead of failing half-way through its own.
        immediate = connection.get_execution_options().get("sqlite_immediate", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def check_reachable(engine: Engine) -> None:
    """DatabaseUnavailable (one line: which database, why) unless a `SELECT 1` answers."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:200]
        raise DatabaseUnavailable(f"{describe(engine)} does not answer: {reason}") from None


def is_reachable(engine: Engine) -> bool:
    """What /healthz reports: True when the database answers a `SELECT 1` now."""
    try:
        check_reachable(engine)
    except DatabaseUnavailable:
        return False
    return True


def insert(engine_or_connection: Engine | Connection, table: Any) -> Any:
    """An INSERT with the dialect's `on_conflict_do_*` (SQLite and PostgreSQL spell upserts alike)."""
    dialect = engine_or_connection.dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
