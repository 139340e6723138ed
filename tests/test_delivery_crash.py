"""Exactly one answer per question across a kill -9 and across two processes sharing DATA_DIR.

Real `strategy-bot serve` processes (HTTP mode) get signed events; the fake Slack Web API
holds back its answers to `chat.postMessage` (the message is posted, the bot has not heard
so yet), so a kill lands with answers mid-post and others still queued behind the workers.
Every count is of messages in the fake Slack, per question's thread.
"""
from __future__ import annotations

import json
import signal
import time
from collections import Counter

from slack_harness import (
    BOT_USER_ID,
    BotServer,
    FakeSlackAPI,
    bot_settings,
    event_payload,
    mention_event,
    serve_subprocess,
)

QUESTIONS = ["What are the long-term costs of open-sourcing a model?",
             "Why would a company keep its model closed source?",
             "How does open source affect data privacy?"]
IN_FLIGHT = 12
WORKERS = 4
LEASE_S = 2.0
# The lease is short so the test is quick; the variable is read by the bot (unknown variables are ignored).
ENV = {"DELIVERY_LEASE_S": str(LEASE_S), "SLACK_WORKERS": str(WORKERS)}


def mentions(count: int) -> list[tuple[str, str]]:
    """(thread ts, signed-ready payload) of `count` distinct mentions."""
    out = []
    for i in range(count):
        event = mention_event(f"<@{BOT_USER_ID}> {QUESTIONS[i % len(QUESTIONS)]}")
        out.append((event["ts"], event_payload(event)))
    return out


def answers_per_thread(slack) -> Counter:
    return Counter(m.get("thread_ts") for m in slack.messages())


def wait_answered(slack, threads: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(answers_per_thread(slack)[t] for t in threads):
            return
        time.sleep(0.1)
    counts = answers_per_thread(slack)
    raise AssertionError(f"unanswered after {timeout} s: {sum(1 for t in threads if not counts[t])} of {len(threads)}")


def assert_exactly_once(slack, threads: list[str]) -> None:
    slack.settle(quiet=LEASE_S + 1.0)  # past a lease and a resumer round: nothing more is coming
    counts = answers_per_thread(slack)
    assert {t: counts[t] for t in threads} == {t: 1 for t in threads}
    texts = json.dumps([m["blocks"] for m in slack.messages()], ensure_ascii=False)
    assert "Sorry" not in texts and texts.count("*Sources*") == len(threads)


def test_kill_9_with_acknowledged_mentions_in_flight_then_restart_answers_each_once(fresh_data_dir):
    sent = mentions(IN_FLIGHT)
    threads = [ts for ts, _ in sent]
    with FakeSlackAPI() as slack:
        settings = bot_settings(fresh_data_dir, slack)
        with serve_subprocess(settings, extra_env=ENV) as (url, process):
            bot = BotServer(url, services=None, app=None)
            slack.hold("chat.postMessage")
            for _, payload in sent:
                assert bot.send_event(payload).status == 200  # acknowledged: Slack will not send it again...
            slack.wait_for("chat.postMessage", count=WORKERS, timeout=60)  # every worker is mid-post
            process.send_signal(signal.SIGKILL)
            assert process.wait(timeout=10) == -signal.SIGKILL
        slack.release("chat.postMessage")
        posted_before = sum(answers_per_thread(slack)[t] for t in threads)
        assert 0 < posted_before < IN_FLIGHT  # some were posted (unconfirmed), the rest never started

        with serve_subprocess(settings, extra_env=ENV) as (url, process):
            bot = BotServer(url, services=None, app=None)
            for _, payload in sent:  # ...except as retries, which must not double anything either
                assert bot.send_event(payload, retry_num=1, retry_reason="http_timeout").status == 200
            wait_answered(slack, threads, timeout=60)
            assert_exactly_once(slack, threads)
            assert slack.calls("conversations.replies")  # resumed ones looked for their answer first


def test_a_retry_landing_on_a_second_process_while_the_first_answers_is_dropped(fresh_data_dir):
    (thread, payload), (thread2, payload2) = mentions(2)
    with FakeSlackAPI() as slack:
        settings = bot_settings(fresh_data_dir, slack)
        with serve_subprocess(settings, extra_env=ENV) as (url_a, _a), \
                serve_subprocess(settings, extra_env=ENV) as (url_b, _b):
            a, b = BotServer(url_a, None, None), BotServer(url_b, None, None)
            slack.hold("chat.postMessage")
            assert a.send_event(payload).status == 200
            slack.wait_for("chat.postMessage", timeout=60)  # A is answering...
            time.sleep(LEASE_S * 1.5)  # ...for longer than a lease: its heartbeat keeps it A's
            assert b.send_event(payload, retry_num=1, retry_reason="http_timeout").status == 200
            assert b.send_event(payload2).status == 200  # B answers what is its own
            time.sleep(LEASE_S)
            slack.release("chat.postMessage")
            wait_answered(slack, [thread, thread2], timeout=60)
            assert_exactly_once(slack, [thread, thread2])
