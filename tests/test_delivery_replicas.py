"""Exactly one answer per question with two replicas sharing PostgreSQL, over the wire.

Two real `strategy-bot serve` processes (HTTP mode), each with its own DATA_DIR (its own copy of
the index, as two machines would have), share one PostgreSQL schema (DATABASE_URL) and the fake
Slack Web API. The delivery log lives in that database, so a retry landing on the other replica,
the leases of a replica that died, and an event one replica released after a Slack 500 are seen
by both. Counts are of messages in the fake Slack, per question's thread (the machinery of
tests/test_delivery_crash.py). Without a PostgreSQL server the module skips (conftest.postgres_url).
"""
from __future__ import annotations

import json
import shutil
import signal
import time
from contextlib import ExitStack

import pytest
from sqlalchemy import select

from databases import empty_tables
from slack_harness import BotServer, FakeSlackAPI, bot_settings, serve_subprocess
from strategy_bot.database import open_engine
from strategy_bot.schema import deliveries
from test_delivery_crash import (
    ENV,
    LEASE_S,
    WORKERS,
    answers_per_thread,
    assert_exactly_once,
    mentions,
    wait_answered,
)

IN_FLIGHT = 20


@pytest.fixture(scope="module")
def shared_url(upgraded_postgres_url) -> str:
    """This module's PostgreSQL schema, upgraded to the current migration (as `strategy-bot db upgrade`)."""
    return upgraded_postgres_url


@pytest.fixture
def replicas(shared_url, built_data_dir, tmp_path) -> list:
    """Settings of replicas A and B: their own DATA_DIR each, one shared (emptied) PostgreSQL schema."""
    empty_tables(shared_url)

    def settings(name: str, slack: FakeSlackAPI):
        data_dir = tmp_path / name
        if not data_dir.exists():
            shutil.copytree(built_data_dir, data_dir, symlinks=True)
        return bot_settings(data_dir, slack, database_url=shared_url)

    return settings


def serving(stack: ExitStack, settings) -> tuple[BotServer, object]:
    url, process = stack.enter_context(serve_subprocess(settings, extra_env=ENV))
    return BotServer(url, services=None, app=None), process


def kill_9(process) -> None:
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=10) == -signal.SIGKILL


def delivery(url: str, event_id: str):
    """The event's row in the shared delivery log, read by the test itself."""
    engine = open_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(select(deliveries).where(deliveries.c.event_id == event_id)).first()
    finally:
        engine.dispose()


def test_a_retry_landing_on_the_other_replica_while_the_first_answers_is_dropped(replicas):
    (thread, payload), (thread2, payload2) = mentions(2)
    with FakeSlackAPI() as slack, ExitStack() as stack:
        a, _ = serving(stack, replicas("a", slack))
        b, _ = serving(stack, replicas("b", slack))
        slack.hold("chat.postMessage")
        assert a.send_event(payload).status == 200
        slack.wait_for("chat.postMessage", timeout=60)  # A is answering...
        time.sleep(LEASE_S * 1.5)  # ...for longer than a lease: its heartbeat keeps it A's
        assert b.send_event(payload, retry_num=1, retry_reason="http_timeout").status == 200
        assert b.send_event(payload2).status == 200  # B answers what is its own
        slack.wait_for("chat.postMessage", count=2, timeout=60)
        slack.release("chat.postMessage")
        wait_answered(slack, [thread, thread2], timeout=60)
        assert_exactly_once(slack, [thread, thread2])
        row = delivery(replicas("a", slack).database_url, json.loads(payload)["event_id"])
        assert (row.status, row.attempts, row.deliveries) == ("done", 1, 2)


def test_kill_9_of_the_replica_holding_answers_in_flight_the_survivor_answers_each_once(replicas):
    sent = mentions(IN_FLIGHT)
    threads = [ts for ts, _ in sent]
    with FakeSlackAPI() as slack, ExitStack() as survivor:
        b, _ = serving(survivor, replicas("b", slack))
        with ExitStack() as doomed:
            a, process_a = serving(doomed, replicas("a", slack))
            slack.hold("chat.postMessage")
            for _, payload in sent:
                assert a.send_event(payload).status == 200  # acknowledged: Slack will not send it again...
            slack.wait_for("chat.postMessage", count=WORKERS, timeout=60)  # every worker of A is mid-post
            kill_9(process_a)
        slack.release("chat.postMessage")
        posted_before = sum(answers_per_thread(slack)[t] for t in threads)
        assert 0 < posted_before < IN_FLIGHT  # some were posted (unconfirmed), the rest never started
        for _, payload in sent[::2]:  # ...except as retries, now sent to the survivor
            assert b.send_event(payload, retry_num=1, retry_reason="http_timeout").status == 200
        wait_answered(slack, threads, timeout=90)
        assert_exactly_once(slack, threads)
        assert slack.calls("conversations.replies")  # taken-over events looked for their answer first


def test_one_server_error_then_success_gives_one_answer_even_when_the_other_replica_retries(replicas):
    """A gets HTTP 500 from chat.postMessage and gives the event back (due after a backoff), then dies:
    B's resumer retries it, reads the thread back first, and posts the one answer."""
    (thread, payload), = mentions(1)
    event_id = json.loads(payload)["event_id"]
    with FakeSlackAPI() as slack, ExitStack() as survivor:
        b, _ = serving(survivor, replicas("b", slack))
        url = replicas("b", slack).database_url
        with ExitStack() as doomed:
            a, process_a = serving(doomed, replicas("a", slack))
            slack.script("chat.postMessage", {"ok": False, "error": "internal_error"}, status=500)
            assert a.send_event(payload).status == 200
            failed = slack.wait_for("chat.postMessage", timeout=60)[0]
            assert slack.ts_of(failed) == ""  # the 500 has reached A
            # A gives the event back, due after a 1 s backoff, and dies before that: only B can retry it.
            # (If A is killed before it gave it back, B takes it over after the lease: one answer all the same.)
            deadline = time.monotonic() + 0.5
            while not released_by_a(url, event_id) and time.monotonic() < deadline:
                time.sleep(0.02)
            kill_9(process_a)
        wait_answered(slack, [thread], timeout=60)
        assert_exactly_once(slack, [thread])
        posts = [c for c in slack.calls("chat.postMessage") if c.body.get("thread_ts") == thread]
        assert [p.response["ok"] for p in posts] == [False, True]
        assert slack.calls("conversations.replies")  # the retry looked for an earlier answer first
        row = delivery(url, event_id)
        assert (row.status, row.outcome, row.reply_ts) == ("done", "answered", posts[1].response["ts"])


def released_by_a(url: str, event_id: str) -> bool:
    """The event is recorded, pending and held by nobody: given back after a transient failure."""
    row = delivery(url, event_id)
    return row is not None and row.status == "pending" and row.owner is None
