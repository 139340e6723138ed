"""Settings: every field is read from its environment variable, and bad values say which one.

The variable is the field name upper-cased; each field is set alone to a value other than its
default, so a field of a type `Settings.from_env` cannot read fails here by name.
"""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from strategy_bot.settings import Settings, SettingsError

# Fields whose value must be one of a few words.
CHOICES = {"embedding_backend": "sentence-transformers", "llm_provider": "openai"}


def example(name: str, default: object) -> tuple[str, object]:
    """(what a user writes in the environment, what the setting then holds)."""
    if name in CHOICES:
        return CHOICES[name], CHOICES[name]
    if isinstance(default, bool):
        return str(not default).lower(), not default
    if isinstance(default, int):
        return str(default + 3), default + 3
    if isinstance(default, float):
        return str(default + 0.5), default + 0.5
    if isinstance(default, Path):
        return "/srv/strategy-bot/elsewhere", Path("/srv/strategy-bot/elsewhere")
    if isinstance(default, tuple):
        return " U01, U02 ,", ("U01", "U02")
    return "something-else", "something-else"


@pytest.mark.parametrize("name", [f.name for f in fields(Settings)])
def test_every_setting_is_read_from_its_environment_variable(name):
    written, expected = example(name, getattr(Settings(), name))
    assert getattr(Settings.from_env({name.upper(): written}, dotenv=False), name) == expected


@pytest.mark.parametrize("variable, value, message", [
    ("MAX_UPLOAD_MB", "twenty", "MAX_UPLOAD_MB must be a whole number, not 'twenty'"),
    ("ABSTAIN_MARGIN", "high", "ABSTAIN_MARGIN must be a number, not 'high'"),
    ("ALLOW_WORKSPACE_ADMINS", "maybe", "ALLOW_WORKSPACE_ADMINS must be true or false, not 'maybe'"),
])
def test_a_value_of_the_wrong_kind_names_the_variable(variable, value, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({variable: value}, dotenv=False)
