"""`strategy-bot settings`: the settings in effect, and their generated documentation.

The README's settings tables and `.env.example` are written from the Settings fields
(strategy_bot/settings_docs.py); this command prints or rewrites them.
"""
from __future__ import annotations

import click

from strategy_bot import settings_docs
from strategy_bot.settings import SECTIONS


@click.command(name="settings")
@click.option("--env-example", "env_example", is_flag=True, help="Print .env.example as the fields describe it.")
@click.option("--markdown", type=click.Choice(SECTIONS), help="Print the README table of one section.")
@click.option("--write", is_flag=True, help="Rewrite .env.example and the README's tables in the source tree.")
def settings_command(env_example: bool, markdown: str | None, write: bool) -> None:
    """Show the settings in effect (secrets hidden), or write their documentation."""
    from bot.cli_base import load_settings

    if env_example:
        click.echo(settings_docs.env_example(), nl=False)
    elif markdown:
        click.echo(settings_docs.markdown_table(markdown), nl=False)
    elif write:
        written = settings_docs.write()
        click.echo("\n".join(f"wrote {path}" for path in written) or "already up to date")
    else:
        for name, value in load_settings().redacted().items():
            shown = ",".join(value) if isinstance(value, tuple) else value
            click.echo(f"{name.upper()}={shown}")
