"""Index builds and uploads shared through PostgreSQL (retrieval/build_registry.py, shared_index.py,
knowledge/upload_registry.py), in process: two knowledge bases with their own DATA_DIR, one database.

Real PostgreSQL (this module's own schema), the real index of the shipped corpus (copied per
replica), the real embedder. Skips with one line when no server answers.
"""
from __future__ import annotations

import hashlib
import logging
import shutil
import time
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select, text

from bot.wsgi import build_health
from databases import empty_tables, postgres_schema, upgraded
from knowledge.upload_registry import UploadRegistry
from retrieval import service
from retrieval.build_registry import BUILD_LOCK_KEY, KEEP_PUBLISHED, BuildFollower, BuildRegistry
from retrieval.index_store import META_FILE, BuildFiles, IndexBusy, IndexCorrupt, read_meta_file
from retrieval.service import KnowledgeBase
from strategy_bot.database import SCHEMA_LOCK_KEY, open_engine
from strategy_bot.schema import index_files, uploads
from strategy_bot.settings import Settings

ZEBRA = ("# Zebra licensing memo\n\nThe zebra clause lets licensed partners fine-tune the model weights for "
         "internal use.\n")
ZEBRA_QUESTION = "What does the zebra clause let partners do?"


@pytest.fixture(scope="module")
def pg_url(upgraded_postgres_url):
    return upgraded_postgres_url


@pytest.fixture
def engine(pg_url):
    empty_tables(pg_url)
    engine = open_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture
def replicas(tmp_path, built_data_dir, engine, pg_url, e5):
    """Two knowledge bases (A, B), each over its own copy of the built DATA_DIR, sharing the database."""
    made = []
    for name in ("a", "b"):
        data = tmp_path / name
        shutil.copytree(built_data_dir, data, symlinks=True)
        kb = KnowledgeBase(Settings(data_dir=data, database_url=pg_url), e5, database=engine)
        kb.ensure_index()
        made.append(kb)
    return made


def served(kb: KnowledgeBase) -> str:
    return (kb.settings.data_dir / "index").resolve().name


def cited(kb: KnowledgeBase, question: str) -> set[str]:
    return {c.doc_id for c in kb.ask(question).citations}


def test_the_first_replica_publishes_its_build_and_the_second_takes_it_as_it_is(replicas, engine):
    a, b = replicas
    registry = BuildRegistry(engine)
    assert registry.current() == served(a) == served(b) == a.loaded_build == b.loaded_build
    with engine.connect() as connection:
        names = set(connection.execute(select(index_files.c.name)).scalars())
    assert META_FILE in names and "vectors.faiss" in names


def test_a_build_on_one_replica_is_served_by_the_other_after_a_refresh(replicas, monkeypatch):
    # Only the explicit refresh may load it: a question's own check (every REFRESH_CHECK_S, counted from B's
    # start) would fire inside `cited(b, ...)` whenever the build took longer than that (a loaded machine).
    monkeypatch.setattr(service, "REFRESH_CHECK_S", 3600.0)
    a, b = replicas
    (a.settings.upload_dir).mkdir(parents=True, exist_ok=True)
    (a.settings.upload_dir / "zebra-licensing.md").write_text(ZEBRA, encoding="utf-8")
    old = b.loaded_build
    summary = a.reindex(built_by="U0ADMIN01")
    assert summary.added == ["zebra-licensing"] and a.published_build() == summary.build_id
    assert "zebra-licensing" not in cited(b, ZEBRA_QUESTION) and b.loaded_build == old  # not yet
    assert b.refresh()
    assert b.loaded_build == summary.build_id and "zebra-licensing" in cited(b, ZEBRA_QUESTION)
    folder = b.settings.data_dir / "indexes" / summary.build_id
    assert BuildFiles(folder, read_meta_file(folder / META_FILE)).damaged() == []
    assert not b.refresh()  # nothing new: one pointer read


def test_a_question_on_the_other_replica_loads_a_published_build_by_itself(replicas, monkeypatch):
    """No explicit refresh: a question checks for a newer build once REFRESH_CHECK_S have passed (0 here)."""
    a, b = replicas
    (a.settings.upload_dir).mkdir(parents=True, exist_ok=True)
    (a.settings.upload_dir / "zebra-licensing.md").write_text(ZEBRA, encoding="utf-8")
    summary = a.reindex(built_by="U0ADMIN01")
    monkeypatch.setattr(service, "REFRESH_CHECK_S", 0.0)
    assert "zebra-licensing" in cited(b, ZEBRA_QUESTION) and b.loaded_build == summary.build_id


def test_a_second_build_anywhere_while_one_runs_is_told_one_is_running(replicas, engine):
    a, b = replicas
    with BuildRegistry(engine).build_lock():  # what a running build on any replica (or the CLI) holds
        with pytest.raises(IndexBusy, match="already running"):
            b.reindex()
        with pytest.raises(IndexBusy, match="already running"):
            a.reindex()
    with engine.connect() as connection:  # released: no advisory lock left behind
        held = connection.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                       "AND ((classid::bigint << 32) | objid::bigint) = " + SCHEMA_LOCK_KEY),
                                  {"key": BUILD_LOCK_KEY}).scalar()
    assert held == 0
    assert b.reindex().build_id == BuildRegistry(engine).current()


def test_only_the_newest_builds_are_kept_in_the_database(replicas, engine, tmp_path):
    a, _ = replicas
    registry = BuildRegistry(engine)
    source = (a.settings.data_dir / "index").resolve()
    published = []
    for i in range(KEEP_PUBLISHED + 2):
        copy = tmp_path / "copies" / f"29990101T0000{i:02d}-{i:08x}"
        shutil.copytree(source, copy)
        published.append(registry.publish(copy).build_id)
    assert registry.current() == published[-1]
    assert registry.builds() == list(reversed(published[-KEEP_PUBLISHED:]))
    with engine.connect() as connection:
        left = set(connection.execute(select(index_files.c.build_id).distinct()).scalars())
    assert left == set(published[-KEEP_PUBLISHED:])


@pytest.mark.parametrize("how", ["bytes only", "bytes and their stored checksum"])
def test_a_damaged_stored_build_is_not_loaded_and_the_old_one_keeps_serving(replicas, engine, tmp_path, how,
                                                                           caplog):
    a, b = replicas
    old = b.loaded_build
    copy = tmp_path / "copies" / "29990101T000000-0badf00d"
    shutil.copytree((a.settings.data_dir / "index").resolve(), copy)
    registry = BuildRegistry(engine)
    registry.publish(copy)
    with engine.begin() as connection:
        where = (index_files.c.build_id == copy.name) & (index_files.c.name == "vectors.faiss")
        data = bytearray(connection.execute(select(index_files.c.bytes).where(where)).scalar_one())
        data[len(data) // 2] ^= 0xFF
        values = {"bytes": bytes(data)}
        if how != "bytes only":  # the row agrees with itself: only meta.json's checksum can tell
            values["sha256"] = hashlib.sha256(data).hexdigest()
        connection.execute(index_files.update().where(where).values(**values))
    with caplog.at_level(logging.WARNING):
        assert not b.refresh()
    assert b.loaded_build == old and served(b) == old
    assert not (b.settings.data_dir / "indexes" / copy.name).exists()
    assert not [p for p in (b.settings.data_dir / "indexes").iterdir() if p.name.startswith(".")]
    assert "vectors.faiss" in caplog.text and "kept serving build" in caplog.text
    assert build_health(SimpleNamespace(kb=b)) == {"build": old, "published_build": copy.name,
                                                   "build_current": False}  # what /healthz says meanwhile
    with pytest.raises(IndexCorrupt, match="vectors.faiss"):
        registry.materialise(copy.name, tmp_path / "elsewhere", tmp_path / "elsewhere")
    assert "open-vs-closed-concepts" in {c.doc_id for c in b.ask("What are the advantages of a closed-source "
                                                                   "model?").citations}


def test_the_translation_cache_travels_with_the_build(replicas):
    a, b = replicas
    line = '{"source": "开源模型", "en": "open-source model", "kind": "sentence", "doc": "x", "by": "test"}'
    cache = a.settings.data_dir / "translations"
    cache.mkdir(exist_ok=True)
    (cache / "translations.en.jsonl").write_text(line + "\n", encoding="utf-8")
    mine = b.settings.data_dir / "translations"
    mine.mkdir(exist_ok=True)
    (mine / "translations.en.jsonl").write_text('{"source": "b only", "en": "kept"}\n', encoding="utf-8")
    a.reindex()
    assert b.refresh()
    lines = (mine / "translations.en.jsonl").read_text(encoding="utf-8").splitlines()
    assert lines == ['{"source": "b only", "en": "kept"}', line]  # merged: nothing local is lost


def test_an_upload_on_one_replica_is_indexed_by_a_build_on_the_other(replicas, engine):
    a, b = replicas
    stored = a.uploads.store(a.settings.upload_dir, "Zebra Licensing.md", ZEBRA.encode(), uploaded_by="U0ADMIN01")
    assert stored.created and stored.path.name == "Zebra-Licensing.md"
    assert not (b.settings.upload_dir / "Zebra-Licensing.md").exists()
    summary = b.reindex(built_by="U0ADMIN01")
    assert summary.added == ["zebra-licensing"]
    assert (b.settings.upload_dir / "Zebra-Licensing.md").read_text(encoding="utf-8") == ZEBRA
    assert a.refresh() and "zebra-licensing" in cited(a, ZEBRA_QUESTION)
    with engine.connect() as connection:
        row = connection.execute(select(uploads.c.uploaded_by, uploads.c.sha256)).one()
    assert row.uploaded_by == "U0ADMIN01" and row.sha256 == hashlib.sha256(ZEBRA.encode()).hexdigest()


def test_two_replicas_storing_different_files_under_one_name_keep_both(engine, tmp_path):
    first, second = UploadRegistry(engine), UploadRegistry(engine)
    one = first.store(tmp_path / "a", "memo.md", b"# Memo one\n\nFirst text.", uploaded_by="U1")
    # the second replica has not synced yet: its own folder has no memo.md, so it picks the same name first
    two = second.store(tmp_path / "b", "memo.md", b"# Memo two\n\nSecond text.", uploaded_by="U2")
    assert (one.path.name, two.path.name) == ("memo.md", "memo-2.md")
    assert (tmp_path / "b" / "memo.md").read_bytes() == b"# Memo one\n\nFirst text."
    again = first.store(tmp_path / "a", "memo.md", b"# Memo one\n\nFirst text.", uploaded_by="U1")
    assert not again.created and first.names().keys() == {"memo.md", "memo-2.md"}


def test_the_listener_swaps_in_a_published_build_within_seconds_and_reconnects(replicas, engine):
    a, b = replicas
    # No pointer check for 10 minutes: within the deadlines below only NOTIFY (and the pointer read on
    # reconnection) can bring B the build; the deadlines are generous, as B materialises and loads it.
    follower = BuildFollower(engine, lambda: b.refresh(wait=True), check_every_s=600).start()
    try:
        assert follower.connected.wait(30)
        (a.settings.upload_dir).mkdir(parents=True, exist_ok=True)
        (a.settings.upload_dir / "zebra-licensing.md").write_text(ZEBRA, encoding="utf-8")
        first = a.reindex().build_id
        wait_until(lambda: b.loaded_build == first, 60)  # NOTIFY, not the 600 s pointer check
        with engine.connect() as connection:  # the database drops the listener's connection
            killed = connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                             "WHERE application_name = 'strategy-bot build listener'")).all()
        assert killed
        second = a.reindex().build_id
        wait_until(lambda: b.loaded_build == second, 60)  # reconnected (pointer read on reconnection)
        assert follower.connected.wait(30)
    finally:
        follower.stop()


def wait_until(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s")


def test_the_cli_index_command_publishes_for_every_replica(replicas, engine, tmp_path):
    """`strategy-bot index` with DATABASE_URL on PostgreSQL takes the same lock and publishes."""
    from cli_helpers import run_cli

    a, b = replicas
    before = BuildRegistry(engine).current()
    done = run_cli("index", cwd=tmp_path, data_dir=a.settings.data_dir, database_url=a.settings.database_url)
    assert done.returncode == 0, done.stderr
    now = BuildRegistry(engine).current()
    assert now != before and b.refresh() and b.loaded_build == now


def test_publishing_is_one_transaction(replicas, engine, tmp_path):
    """A build whose files cannot all be stored leaves neither rows nor a moved pointer behind."""
    from strategy_bot.schema import index_builds

    a, _ = replicas
    registry = BuildRegistry(engine)
    before = registry.current()
    copy = tmp_path / "copies" / "29990101T000000-00000bad"
    shutil.copytree((a.settings.data_dir / "index").resolve(), copy)
    with pytest.raises(OSError):  # read inside the transaction, after the build's row and files went in
        registry.publish(copy, {"translations/translations.en.jsonl": tmp_path / "gone.jsonl"})
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(index_files)
                                  .where(index_files.c.build_id == copy.name)).scalar() == 0
        assert connection.execute(select(func.count()).select_from(index_builds)
                                  .where(index_builds.c.build_id == copy.name)).scalar() == 0
    assert registry.current() == before


def test_deployments_in_other_schemas_of_one_database_build_at_the_same_time(engine):
    """The build lock belongs to one deployment (its schema), not to the whole database server."""
    with postgres_schema() as other_url:
        other = open_engine(upgraded(other_url))
        try:
            with BuildRegistry(engine).build_lock(), BuildRegistry(other).build_lock():
                with pytest.raises(IndexBusy, match="already running"):
                    with BuildRegistry(engine).build_lock():
                        pass
        finally:
            other.dispose()
