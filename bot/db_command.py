"""`strategy-bot db upgrade` and `db current`: the state database's schema version.

`serve` upgrades the embedded SQLite file by itself; a shared PostgreSQL database is upgraded with
`db upgrade`, once per release, before the replicas start (they refuse to start on an old schema).
"""
from __future__ import annotations

import click

from bot.cli_base import load_settings


@click.group(name="db")
def db() -> None:
    """The state database (DATABASE_URL, else DATA_DIR/state.sqlite3): schema version and upgrades."""


@db.command()
def upgrade() -> None:
    """Bring the schema to this version's (idempotent; safe from two replicas at once), importing an
    earlier install's SQLite files from DATA_DIR the first time."""
    from strategy_bot import migrate
    from strategy_bot.database import DatabaseUnavailable, check_reachable, describe, engine_for
    from strategy_bot.legacy import LegacyImportError

    settings = load_settings()
    if not settings.database_url:  # the embedded default: its file goes under DATA_DIR
        settings = load_settings(writes=True)
    engine = engine_for(settings)
    try:
        check_reachable(engine)
        before, after = migrate.upgrade(engine, settings.data_dir)
    except (DatabaseUnavailable, LegacyImportError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()
    if before == after:
        click.echo(f"{describe(engine)}: schema already at version {after}")
    else:
        click.echo(f"{describe(engine)}: schema upgraded from {before or 'empty'} to version {after}")


@db.command()
def current() -> None:
    """Show the schema version; exit status 1 when it is not the one this strategy-bot needs."""
    from strategy_bot import migrate
    from strategy_bot.database import DatabaseUnavailable, check_reachable, describe, engine_for

    engine = engine_for(load_settings())
    try:
        check_reachable(engine)
        found = migrate.current(engine)
    except DatabaseUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()
    wanted = migrate.head()
    click.echo(f"{describe(engine)}: schema version {found or 'none (empty)'}; this strategy-bot needs {wanted}")
    if found != wanted:
        raise click.exceptions.Exit(1)

