"""Schema versions (Alembic), applied by `strategy-bot db upgrade` and checked at start.

Alembic is configured here in code (no alembic.ini): the scripts ship inside the package
(strategy_bot/migrations), so an installed bot upgrades its database the same way a checkout does.

- `upgrade` is idempotent and safe to run from two replicas at once: on PostgreSQL it holds an
  advisory lock for the transaction (the second waits, then finds the schema current); on SQLite
  it takes the file's write lock first (BEGIN IMMEDIATE). PostgreSQL's DDL is transactional, so a
  failed upgrade leaves the previous version intact.
- `prepare` is what `serve` runs: the embedded SQLite default is upgraded on the spot (zero setup);
  a PostgreSQL schema that is behind stops start-up with one line saying to run `db upgrade`, since
  a shared database is upgraded deliberately, once, not by whichever replica starts first.
"""
from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from strategy_bot.database import SCHEMA_LOCK_KEY, check_reachable, describe, engine_for
from strategy_bot.legacy import import_legacy
from strategy_bot.settings import Settings

log = logging.getLogger(__name__)
# Alembic logs every step at INFO ("Context impl…", on each check too); the bot logs one line per upgrade.
logging.getLogger("alembic").setLevel(logging.WARNING)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# pg_advisory_xact_lock key of the upgrade: any constant no other tool on the database uses ("strategy").
UPGRADE_LOCK_KEY = 0x7374726174656779


class SchemaNotCurrent(RuntimeError):
    """The database's schema is not the one this version of the bot needs; the message says what to do."""


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head() -> str:
    """The newest schema version this code knows."""
    return str(ScriptDirectory.from_config(alembic_config()).get_current_head())


def current(engine: Engine) -> str | None:
    """The database's schema version (None: never upgraded)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, data_dir: Path | None = None) -> tuple[str | None, str]:
    """Bring the schema to head, then copy in an earlier install's SQLite files found in `data_dir`
    (once: strategy_bot/legacy.py). Returns (version before, version after)."""
    config = alembic_config()
    with engine.connect().execution_options(sqlite_immediate=True) as connection, connection.begin():
        if connection.dialect.name == "postgresql":
            connection.execute(text(f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK_KEY})"), {"key": UPGRADE_LOCK_KEY})
        before = MigrationContext.configure(connection).get_current_revision()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        after = MigrationContext.configure(connection).get_current_revision()
        if data_dir is not None:
            import_legacy(connection, data_dir)
    if before != after:
        log.info("upgraded the schema of %s from %s to %s", describe(engine), before or "empty", after)
    return before, str(after)


def check_current(engine: Engine) -> None:
    """SchemaNotCurrent unless the database is at this code's head version."""
    found, wanted = current(engine), head()
    if found == wanted:
        return
    if found is not None and found not in _known_revisions():
        raise SchemaNotCurrent(f"the schema of {describe(engine)} is at version {found}, newer than this "
                               f"strategy-bot knows ({wanted}): upgrade strategy-bot")
    raise SchemaNotCurrent(f"the schema of {describe(engine)} is at version {found or 'none (empty)'}, this "
                           f"strategy-bot needs {wanted}: run `strategy-bot db upgrade`")


def prepare(engine: Engine, data_dir: Path) -> None:
    """At start: upgrade the embedded SQLite file; require a current schema on a shared database."""
    if engine.dialect.name == "sqlite":
        upgrade(engine, data_dir)
    else:
        check_current(engine)


def open_state(settings: Settings) -> Engine:
    """The state database of a starting bot, reachable and at the current schema (see `prepare`).

    Raises DatabaseUnavailable, SchemaNotCurrent or LegacyImportError, each one line for the user.
    """
    engine = engine_for(settings)
    try:
        check_reachable(engine)
        prepare(engine, settings.data_dir)
    except BaseException:
        engine.dispose()
        raise
    log.info("state database: %s, schema version %s", describe(engine), head())
    return engine


def _known_revisions() -> set[str]:
    return {script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
