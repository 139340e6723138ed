"""Shared fixtures: one real index of the shipped corpus, built once per test session.

Building embeds every chunk, sentence and background line with the real model
(about half a minute), so tests that only read share `kb`; tests that change the
index copy it with `fresh_data_dir`.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from strategy_bot.settings import DEFAULT_KNOWLEDGE_DIR, Settings

Settings().apply_thread_limits()  # before any OpenMP library starts (see Settings)

REPO = Path(__file__).resolve().parent.parent
SHARED_EVAL = REPO.parent / "shared" / "eval" / "public_qa.jsonl"


@pytest.fixture(scope="session")
def e5():
    from retrieval.embeddings import E5Embeddings

    return E5Embeddings()


@pytest.fixture(scope="session")
def built_data_dir(tmp_path_factory, e5) -> Path:
    """A DATA_DIR holding an index of the shipped corpus (do not modify: copy it)."""
    from retrieval.service import KnowledgeBase

    data_dir = tmp_path_factory.mktemp("built") / "data"
    KnowledgeBase(Settings(data_dir=data_dir), e5).ensure_index()
    return data_dir


@pytest.fixture(scope="session")
def kb(built_data_dir, e5):
    """A loaded knowledge base over the shipped corpus, for read-only tests."""
    from retrieval.service import KnowledgeBase

    base = KnowledgeBase(Settings(data_dir=built_data_dir), e5)
    base.ensure_index()
    return base


@pytest.fixture(scope="module")
def slack():
    """The fake Slack Web API on loopback (tests/slack_harness.py), one per test module; a module whose
    tests need a clean one each defines its own function-scoped `slack`."""
    from slack_harness import FakeSlackAPI

    with FakeSlackAPI() as api:
        yield api


@pytest.fixture
def fresh_slack_calls(request):
    """Forget the module's fake Slack calls before each test that uses it (`pytestmark =
    pytest.mark.usefixtures("fresh_slack_calls")`), so a test reads only its own calls."""
    if "slack" in request.fixturenames:
        request.getfixturevalue("slack").reset()


@pytest.fixture
def fresh_data_dir(tmp_path, built_data_dir) -> Path:
    """A private copy of the built DATA_DIR (symlinks kept), for tests that change it."""
    target = tmp_path / "data"
    shutil.copytree(built_data_dir, target, symlinks=True)
    return target


@pytest.fixture
def knowledge_copy(tmp_path) -> Path:
    """A private copy of the shipped corpus folder, for tests that add or break files."""
    target = tmp_path / "knowledge"
    shutil.copytree(DEFAULT_KNOWLEDGE_DIR, target)
    return target


# ----------------------------------------------------------------------------- state databases


@pytest.fixture(scope="module")
def postgres_url():
    """A URL selecting this module's own empty PostgreSQL schema (skips without a server)."""
    from databases import postgres_schema

    with postgres_schema() as url:
        yield url


@pytest.fixture(scope="module")
def upgraded_postgres_url(postgres_url) -> str:
    """This module's PostgreSQL schema at the current migration, as `strategy-bot db upgrade` leaves it
    before replicas start (rows are the tests' to empty)."""
    from databases import upgraded

    return upgraded(postgres_url)


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request, tmp_path) -> str:
    """The URL of an empty state database at the current schema: once per engine (SQLite in tmp_path,
    this module's PostgreSQL schema emptied first), for tests that must hold on both."""
    from databases import empty_tables, sqlite_url, upgraded

    url = upgraded(sqlite_url(tmp_path) if request.param == "sqlite" else request.getfixturevalue("postgres_url"))
    if request.param == "postgresql":
        empty_tables(url)
    return url


@pytest.fixture
def state_engine(state_url):
    """An engine on `state_url` (disposed after the test)."""
    from strategy_bot.database import open_engine

    engine = open_engine(state_url)
    yield engine
    engine.dispose()
