"""The state database: migrations, `strategy-bot db`, the start-up check, legacy import, health.

Every test runs against real databases: a SQLite file in tmp_path and a private schema on the
PostgreSQL server (tests/databases.py; skipped with one line when no server answers).
"""
from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import closing
from pathlib import Path
from types import SimpleNamespace

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select, text

from bot.services import IndexReadiness
from bot.state.conversations import ConversationLog
from bot.state.feedback import FeedbackLog
from bot.wsgi import health
from cli_helpers import run_cli, start_cli
from databases import postgres_schema, sqlite_url
from decision.dialogue_store import DialogueStore
from slack_harness import free_port
from strategy_bot import migrate
from strategy_bot.database import DatabaseUnavailable, database_url, describe, open_engine
from strategy_bot.schema import legacy_imports, metadata
from strategy_bot.settings import Settings


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request, tmp_path):
    """A database nothing has touched: a new SQLite file, or a new PostgreSQL schema."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture
def engine_of():
    engines = []

    def open_(url: str):
        engines.append(open_engine(url))
        return engines[-1]

    yield open_
    for engine in engines:
        engine.dispose()


def cli_database(url: str, tmp_path: Path) -> dict[str, object]:
    """The settings a `strategy-bot` subprocess needs to use `url` (SQLite: its DATA_DIR)."""
    if url.startswith("sqlite"):
        return {"data_dir": Path(url.removeprefix("sqlite:///")).parent}
    return {"data_dir": tmp_path / "data", "database_url": url}


# ----------------------------------------------------------------------------- migrations


def test_migrations_build_exactly_the_schema_from_an_empty_database(empty_url, engine_of):
    engine = engine_of(empty_url)
    assert migrate.current(engine) is None
    assert migrate.upgrade(engine) == (None, migrate.head())
    assert migrate.current(engine) == migrate.head()
    with engine.connect() as connection:  # what the migrations built is what schema.py declares
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []
        columns = [c["name"] for c in engine.dialect.get_columns(connection, "deliveries")]
    assert columns == ["event_id", "body", "status", "owner", "lease_until", "attempts", "deliveries",
                       "first_seen", "finished_at", "outcome", "reply_ts"]  # the shared spec, in its order
    assert migrate.upgrade(engine) == (migrate.head(), migrate.head()), "a second upgrade changes nothing"


def test_db_upgrade_is_idempotent_from_the_command_line(empty_url, tmp_path):
    settings = cli_database(empty_url, tmp_path)
    behind = run_cli("db", "current", cwd=tmp_path, **settings)
    assert behind.returncode == 1 and "schema version none (empty)" in behind.stdout
    first = run_cli("db", "upgrade", cwd=tmp_path, **settings)
    assert first.returncode == 0, first.stderr
    assert f"schema upgraded from empty to version {migrate.head()}" in first.stdout
    again = run_cli("db", "upgrade", cwd=tmp_path, **settings)
    assert again.returncode == 0 and f"schema already at version {migrate.head()}" in again.stdout
    current = run_cli("db", "current", cwd=tmp_path, **settings)
    assert current.returncode == 0 and f"schema version {migrate.head()};" in current.stdout
    assert "postgres@" not in first.stdout + current.stdout, "the URL is never shown, only host and database"


def test_replicas_running_db_upgrade_at_once_on_postgresql_all_succeed(postgres_url, tmp_path):
    """The advisory lock: the first upgrades, the others wait and find the schema current."""
    processes = [start_cli("db", "upgrade", cwd=tmp_path, data_dir=tmp_path / "data", database_url=postgres_url)
                 for _ in range(4)]
    outputs = [(p.wait(timeout=120), p.stdout.read().decode(), p.stderr.read().decode()) for p in processes]
    for process in processes:
        process.stdout.close()
        process.stderr.close()
    assert [code for code, _, _ in outputs] == [0, 0, 0, 0], outputs
    said = [out for _, out, _ in outputs]
    assert sum("upgraded from empty" in out for out in said) == 1, said
    assert sum("already at version" in out for out in said) == 3, said


def test_serve_refuses_to_start_on_a_postgresql_schema_that_is_behind(postgres_url, tmp_path):
    with postgres_schema() as behind:  # an empty schema: never upgraded
        done = run_cli("serve", cwd=tmp_path, data_dir=tmp_path / "data", database_url=behind,
                       slack_bot_token="xoxb-test", slack_signing_secret="secret", port=free_port(),
                       timeout=120)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "run `strategy-bot db upgrade`" in lines[0], done.stderr
    assert "none (empty)" in lines[0] and "Traceback" not in done.stderr


def test_the_embedded_default_is_upgraded_at_start(tmp_path):
    engine = migrate.open_state(Settings(data_dir=tmp_path / "data"))
    try:
        assert (tmp_path / "data" / "state.sqlite3").is_file()
        assert migrate.current(engine) == migrate.head()
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    finally:
        engine.dispose()


def test_a_database_that_does_not_answer_is_one_line_without_the_password(tmp_path):
    port = free_port()  # nothing listens there
    done = run_cli("db", "upgrade", cwd=tmp_path, data_dir=tmp_path / "data",
                   database_url=f"postgres://bot:s3cret@127.0.0.1:{port}/state")
    assert done.returncode == 1
    assert f"PostgreSQL 127.0.0.1:{port}/state does not answer" in done.stderr
    assert "s3cret" not in done.stderr + done.stdout and len(done.stderr.strip().splitlines()) == 1


def test_database_url_spellings():
    assert database_url(Settings(data_dir=Path("/srv/bot"))).render_as_string() == "sqlite:////srv/bot/state.sqlite3"
    for given in ("postgres://u:p@db:6543/state", "postgresql://u:p@db:6543/state"):
        url = database_url(Settings(database_url=given))
        assert url.drivername == "postgresql+psycopg" and describe(url) == "PostgreSQL db:6543/state"
    with pytest.raises(ValueError, match="not mysql:"):
        Settings(database_url="mysql://u:secret@h/x").validate()


# ----------------------------------------------------------------------------- an earlier install's files

OLD_SCHEMAS = {  # as bot/state/*.py and decision/dialogue_store.py created them before the shared schema
    "slack_conversations.sqlite3": """CREATE TABLE answers (id INTEGER PRIMARY KEY AUTOINCREMENT,
        channel TEXT NOT NULL, thread_ts TEXT NOT NULL, question_ts TEXT NOT NULL, user_id TEXT NOT NULL,
        question TEXT NOT NULL, answer TEXT, abstained INTEGER, citations TEXT, reply_ts TEXT,
        created_at REAL NOT NULL)""",
    "slack_feedback.sqlite3": """CREATE TABLE feedback (answer_id INTEGER NOT NULL, user_id TEXT NOT NULL,
        vote TEXT NOT NULL, channel TEXT NOT NULL, message_ts TEXT NOT NULL, question TEXT NOT NULL,
        citations TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL,
        PRIMARY KEY (answer_id, user_id))""",
    "dialogues.sqlite3": """CREATE TABLE dialogues (channel_id TEXT NOT NULL, thread_ts TEXT NOT NULL,
        user_id TEXT NOT NULL, step INTEGER NOT NULL, answers TEXT NOT NULL, context TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('active', 'finished', 'cancelled')), created_at REAL NOT NULL,
        updated_at REAL NOT NULL, message_ts TEXT NOT NULL, PRIMARY KEY (channel_id, thread_ts))""",
}


def write_old_install(data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    rows = {
        "slack_conversations.sqlite3": [
            "INSERT INTO answers VALUES (3, 'C1', '1.0', '1.0', 'U1', 'first?', 'one [1]', 0, "
            "'[{\"n\": 1}]', '1.1', 100.0)",
            "INSERT INTO answers VALUES (7, 'C1', '1.0', '1.2', 'U2', '第二?', NULL, NULL, NULL, NULL, 101.0)",
        ],
        "slack_feedback.sqlite3": [
            "INSERT INTO feedback VALUES (3, 'U2', 'down', 'C1', '1.1', 'first?', '[{\"n\": 1}]', 102.0, 103.0)",
        ],
        "dialogues.sqlite3": [
            "INSERT INTO dialogues VALUES ('C1', '5.0', 'U1', 1, '{\"data_sensitivity\": \"public\"}', 'fintech', "
            "'active', 104.0, 105.0, '{\"data_sensitivity\": \"5.1\"}')",
        ],
    }
    for name, schema in OLD_SCHEMAS.items():
        with closing(sqlite3.connect(data_dir / name)) as old:
            old.execute(schema)
            for statement in rows[name]:
                old.execute(statement)
            old.commit()


def test_an_earlier_install_is_imported_once_on_the_first_upgrade(empty_url, tmp_path, engine_of):
    data_dir = tmp_path / "old-data"
    write_old_install(data_dir)
    engine = engine_of(empty_url)
    migrate.upgrade(engine, data_dir)

    conversations = ConversationLog(engine)
    first = conversations.get(3)
    assert (first.question, first.answer, first.abstained, first.citations, first.reply_ts) == \
        ("first?", "one [1]", False, [{"n": 1}], "1.1")
    assert conversations.history("C1", "1.0", before_id=8) == ["first?", "第二?"]
    assert conversations.start("C1", "1.0", "1.3", "U1", "third?") == 8, "new answers come after the old ids"
    assert [(f.answer_id, f.user_id, f.vote, f.updated_at) for f in FeedbackLog(engine).all()] == \
        [(3, "U2", "down", 103.0)]
    dialogue = DialogueStore(engine).get("C1", "5.0")
    assert (dialogue.answers, dialogue.message_ts, dialogue.context, dialogue.version) == \
        ({"data_sensitivity": "public"}, {"data_sensitivity": "5.1"}, "fintech", 1)

    migrate.upgrade(engine, data_dir)  # the files are still there (kept as a backup): nothing is copied twice
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(metadata.tables["answers"])).scalar() == 3
        imported = dict(connection.execute(select(legacy_imports.c.source, legacy_imports.c.rows)).all())
    assert imported == {"slack_conversations.sqlite3": 2, "slack_feedback.sqlite3": 1, "dialogues.sqlite3": 1}
    assert all((data_dir / name).is_file() for name in OLD_SCHEMAS)


def test_a_damaged_old_file_stops_the_upgrade_naming_it_and_changes_nothing(tmp_path, engine_of):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "slack_feedback.sqlite3").write_bytes(b"not a database" * 100)
    engine = engine_of(sqlite_url(data_dir))
    with pytest.raises(RuntimeError, match="slack_feedback.sqlite3.*move it out of DATA_DIR"):
        migrate.upgrade(engine, data_dir)
    assert migrate.current(engine) is None, "the upgrade is one transaction"


# ----------------------------------------------------------------------------- /healthz


def test_health_reports_whether_the_database_answers(state_engine):
    ready = IndexReadiness()
    ready.loaded.set()
    services = SimpleNamespace(readiness=ready, kb=SimpleNamespace(is_loaded=True), database=state_engine)
    status, body = health(services)
    assert status == "200 OK"
    assert body == {"status": "ok", "database": "ok", "database_engine": state_engine.dialect.name}

    gone = open_engine(f"postgresql+psycopg://bot:s3cret@127.0.0.1:{free_port()}/state")
    try:
        status, body = health(SimpleNamespace(readiness=ready, kb=services.kb, database=gone))
    finally:
        gone.dispose()
    assert status == "503 Service Unavailable"
    assert body["database"] == "unreachable" and body["database_engine"] == "postgresql"
    assert "s3cret" not in json.dumps(body) and "127.0.0.1" not in json.dumps(body)


def test_a_store_works_from_many_threads_at_once(state_engine):
    log = ConversationLog(state_engine)
    ids: list[int] = []
    errors: list[BaseException] = []

    def ask(n: int) -> None:
        try:
            for i in range(10):
                ids.append(log.start("C1", f"{n}.0", f"{n}.{i}", "U1", f"q{i}"))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert len(set(ids)) == 80
    assert all(len(log.turns("C1", f"{n}.0", limit=20)) == 10 for n in range(8))


def test_check_reachable_raises_one_line(tmp_path):
    gone = open_engine(f"postgresql+psycopg://bot:s3cret@127.0.0.1:{free_port()}/state")
    try:
        with pytest.raises(DatabaseUnavailable) as error:
            migrate.open_state(Settings(data_dir=tmp_path, database_url=gone.url.render_as_string(False)))
    finally:
        gone.dispose()
    assert "does not answer" in str(error.value) and "s3cret" not in str(error.value)
