"""Settings: every field is read from its environment variable, bad values say which one, and
the documentation (README tables, `.env.example`) is the one the fields describe.

The variable is the field name upper-cased; each field is set alone to a value other than its
default, so a field of a type `Settings.from_env` cannot read fails here by name. The README
tables and `.env.example` are written by `strategy-bot settings --write`; a field added,
removed or re-documented without running it fails `test_the_committed_documentation_...`.
"""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest
from click.testing import CliRunner
from dotenv import dotenv_values

from bot.cli import cli
from strategy_bot import settings_docs
from strategy_bot.settings import PACKAGE_ROOT, SECTIONS, Settings, SettingsError

# Fields whose value must be one of a few words.
CHOICES = {"embedding_backend": "sentence-transformers", "llm_provider": "openai",
           "database_url": "postgresql://bot@db:5432/state"}


def example(name: str, default: object, kind: type) -> tuple[str, object]:
    """(what a user writes in the environment, what the setting then holds)."""
    if name in CHOICES:
        return CHOICES[name], CHOICES[name]
    if default is None:  # a tuned number's override: unset by default
        return "0.25", kind(0.25)
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
    kind = next(f.metadata.get("kind") for f in fields(Settings) if f.name == name)
    written, expected = example(name, getattr(Settings(), name), kind)
    assert getattr(Settings.from_env({name.upper(): written}, dotenv=False), name) == expected


@pytest.mark.parametrize("variable, value, message", [
    ("MAX_UPLOAD_MB", "twenty", "MAX_UPLOAD_MB must be a whole number, not 'twenty'"),
    ("ABSTAIN_MARGIN", "high", "ABSTAIN_MARGIN must be a number, not 'high'"),
    ("ALLOW_WORKSPACE_ADMINS", "maybe", "ALLOW_WORKSPACE_ADMINS must be true or false, not 'maybe'"),
])
def test_a_value_of_the_wrong_kind_names_the_variable(variable, value, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({variable: value}, dotenv=False)


def test_the_committed_documentation_is_what_the_fields_describe():
    stale = [path.name for path in settings_docs.stale_files()]
    assert stale == [], f"run `strategy-bot settings --write` to update {', '.join(stale)}"


def test_every_setting_is_documented_in_a_section():
    for f in fields(Settings):
        assert f.metadata.get("help", "").strip() and f.metadata.get("section") in SECTIONS, \
            f"declare {f.name} with setting(default, help, section=...) in strategy_bot/settings.py"
        assert f"`{f.name.upper()}`" in settings_docs.markdown_table(f.metadata["section"])
        assert f.name.upper() + "=" in settings_docs.env_example()


def test_the_example_file_holds_the_defaults():
    """Copied to `.env` unchanged, it configures exactly the defaults (its commented lines stay unset)."""
    values = dotenv_values(PACKAGE_ROOT / ".env.example")
    assert "KNOWLEDGE_DIR" not in values and "DECISION_MODEL_FILE" not in values
    assert Settings.from_env(values, dotenv=False) == Settings()


def test_a_stale_readme_table_is_found_and_rewritten(tmp_path):
    readme = (PACKAGE_ROOT / "README.md").read_text(encoding="utf-8")
    (tmp_path / "README.md").write_text(readme.replace("| `TOP_K` | `5` |", "| `TOP_K` | `7` |"), encoding="utf-8")
    (tmp_path / ".env.example").write_text(settings_docs.env_example(), encoding="utf-8")
    assert [p.name for p in settings_docs.stale_files(tmp_path)] == ["README.md"]
    settings_docs.write(tmp_path)
    assert (tmp_path / "README.md").read_text(encoding="utf-8") == readme
    assert settings_docs.stale_files(tmp_path) == []


def test_the_settings_command_shows_what_is_in_effect_without_secrets():
    result = CliRunner().invoke(cli, ["settings"], env={"TOP_K": "7", "SLACK_BOT_TOKEN": "xoxb-do-not-show"})
    assert result.exit_code == 0, result.output
    assert "TOP_K=7" in result.output.splitlines() and "SLACK_BOT_TOKEN=(set)" in result.output.splitlines()
    assert "xoxb-do-not-show" not in result.output
