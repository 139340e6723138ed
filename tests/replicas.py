"""Two real `strategy-bot serve` replicas sharing one PostgreSQL, each with its own DATA_DIR.

For tests/test_replicas.py and benchmarks/replica_bench.py: the replicas are child processes
(as in production), Slack is the fake Web API on loopback, and every request to them is signed.
"""
from __future__ import annotations

import time
import uuid
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from sqlalchemy import Engine, text

from retrieval.build_registry import BUILD_LOCK_KEY
from slack_harness import BotServer, Call, FakeSlackAPI, bot_settings, serve_subprocess, slash_payload
from strategy_bot.database import SCHEMA_LOCK_KEY

ADMIN = "U0ADMIN01"
COMMAND = "/strategy-reindex"


@contextmanager
def two_replicas(data_dirs: tuple[Path, Path], slack: FakeSlackAPI, database_url: str,
                 **overrides: Any) -> Iterator[tuple[BotServer, BotServer]]:
    """Replica A, then B (A publishes its build first: B finds it current and loads its own copy)."""
    with ExitStack() as stack:
        bots = []
        for data in data_dirs:
            settings = bot_settings(data, slack, database_url=database_url, admin_user_ids=(ADMIN,), **overrides)
            url, _ = stack.enter_context(serve_subprocess(settings, log_path=data.parent / f"{data.name}.log"))
            bots.append(BotServer(url, services=None, app=None))
        yield bots[0], bots[1]


def note_text(call: Call) -> str:
    body = call.body
    blocks = " ".join(b["text"]["text"] for b in body.get("blocks") or [] if b.get("type") == "section")
    return f"{body.get('text', '')} {blocks}"


def request_reindex(bot: BotServer, slack: FakeSlackAPI, text_: str = "", user: str = ADMIN) -> str:
    """Send `/strategy-reindex` (signed); the name of its response_url, to read its notes with `wait_note`."""
    name = uuid.uuid4().hex
    response = bot.send_form(slash_payload(COMMAND, text_, user_id=user, response_url=slack.response_url(name)))
    assert response.status == 200, response.body
    return name


def wait_note(slack: FakeSlackAPI, name: str, containing: str, timeout: float = 120.0) -> Call:
    """The first ephemeral note sent to response_url `name` containing `containing`."""
    calls = slack.wait_for("response_url", timeout=timeout,
                           where=lambda c: c.path.endswith(name) and containing in note_text(c))
    return calls[0]


def notes(slack: FakeSlackAPI, name: str) -> list[str]:
    return [note_text(c) for c in slack.calls("response_url") if c.path.endswith(name)]


def build_lock_held(engine: Engine) -> bool:
    """Whether some session holds the build's advisory lock (a build is running somewhere)."""
    with engine.connect() as connection:
        return bool(connection.execute(text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND ((classid::bigint << 32) | objid::bigint) = " + SCHEMA_LOCK_KEY), {"key": BUILD_LOCK_KEY}).scalar())


def health(bot: BotServer) -> dict:
    return bot.get("/healthz").json()


def wait_until(condition: Callable[[], object], timeout: float, step: float = 0.02, what: str = "condition") -> float:
    """Poll until `condition()` is true; the time.perf_counter() it became so. AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return time.perf_counter()
        time.sleep(step)
    raise AssertionError(f"{what}: not within {timeout} s")
