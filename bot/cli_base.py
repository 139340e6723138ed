"""What every `strategy-bot` command starts from: the settings and the knowledge base.

Its own module so that the command modules (bot/cli.py, bot/check_command.py) share it
without importing each other.
"""
from __future__ import annotations

import click

from strategy_bot.settings import Settings, SettingsError
from strategy_bot.tuning import Tuning, TuningError


def load_settings(*, batch: bool = False, writes: bool = False) -> Settings:
    """Settings from the environment, with OpenMP threads capped before any engine loads
    (`batch` for a command that only embeds, like `index`: see Settings.apply_thread_limits).

    `writes`: the command writes under DATA_DIR (`index`, `serve`), so an unwritable one stops
    it at once, exit 1, with one line naming the folder and the fix.
    """
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None
    if writes:
        try:
            settings.check_data_dir()
        except SettingsError as exc:
            raise click.ClickException(str(exc)) from None
    settings.apply_thread_limits(batch=batch)
    return settings


def knowledge_base(settings: Settings, tuning: Tuning | None = None):
    """The knowledge base every command uses; a bad TUNING_FILE stops the command naming the entry."""
    from retrieval.service import KnowledgeBase

    try:
        return KnowledgeBase(settings, tuning=tuning)
    except TuningError as exc:
        raise click.ClickException(str(exc)) from None
