"""Slack failing while the bot answers: over the wire (real Bolt app in HTTP mode, signed events, fake Slack).

- one HTTP 500 from `chat.postMessage`: the event stays pending, the resumer retries it after
  reading the thread back, and the question gets exactly one answer (no "Sorry…");
- a 500 that Slack answered *after* posting the message: the retry finds the answer in the
  thread (by its metadata) and does not post it again;
- a permanent error (`channel_not_found`): no retry, no "Sorry…", one log line, event failed.
"""
from __future__ import annotations

import json
import logging
import time

import pytest

from slack_harness import BOT_USER_ID, bot_settings, event_payload, mention_event, running_bot

QUESTION = "What are the long-term costs of open-sourcing a model?"


@pytest.fixture(scope="module")
def bot(slack, kb, tmp_path_factory):
    with running_bot(bot_settings(tmp_path_factory.mktemp("faults") / "data", slack), kb=kb) as server:
        yield server


@pytest.fixture(autouse=True)
def clean_calls(slack):
    slack.reset()


def ask(bot) -> tuple[dict, str]:
    event = mention_event(f"<@{BOT_USER_ID}> {QUESTION}")
    payload = event_payload(event)
    assert bot.send_event(payload).status == 200
    return event, json.loads(payload)["event_id"]


def posts_in(slack, thread_ts: str) -> list:
    return [c for c in slack.calls("chat.postMessage") if c.body.get("thread_ts") == thread_ts]


def wait_finished(bot, event_id: str, timeout: float = 20.0) -> str | None:
    """The event's final status ("done", "failed") once it has one, or the last one seen after `timeout`."""
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        status = (bot.services.deliveries.status(event_id) or (None,))[0]
        if status in {"done", "failed"}:
            return status
        time.sleep(0.05)
    return status


def test_one_server_error_from_chat_post_message_then_success_gives_one_answer(bot, slack):
    slack.script("chat.postMessage", {"ok": False, "error": "internal_error"}, status=500)
    event, event_id = ask(bot)
    slack.wait_for("chat.postMessage", count=2, timeout=30, where=lambda c: c.body.get("thread_ts") == event["ts"])
    assert wait_finished(bot, event_id) == "done"
    slack.settle(quiet=0.5)
    posts = posts_in(slack, event["ts"])
    assert len(posts) == 2 and posts[0].response["ok"] is False and posts[1].response["ok"] is True
    assert "*Sources*" in json.dumps(posts[1].body["blocks"]) and "Sorry" not in json.dumps(posts[1].body)
    assert slack.calls("conversations.replies")  # the retry looked for an earlier answer first
    record = bot.services.deliveries.get(event_id)
    assert (record.outcome, record.reply_ts, record.attempts) == ("answered", posts[1].response["ts"], 2)
    metadata = posts[1].body["metadata"]
    assert metadata["event_type"] == "strategy_bot_answer" and metadata["event_payload"]["event_id"] == event_id


def test_a_server_error_after_slack_posted_the_answer_does_not_post_it_twice(bot, slack):
    def posted_then_failed(call):  # Slack posted the message, then answered 500 (it happens)
        slack._default(call)
        return {"ok": False, "error": "internal_error"}

    slack.script("chat.postMessage", posted_then_failed, status=500)
    event, event_id = ask(bot)
    assert wait_finished(bot, event_id, timeout=30) == "done"
    slack.settle(quiet=0.5)
    assert [m["thread_ts"] for m in slack.messages()].count(event["ts"]) == 1
    assert len(posts_in(slack, event["ts"])) == 1
    record = bot.services.deliveries.get(event_id)
    assert record.outcome == "already_posted" and record.reply_ts == slack.messages()[0]["ts"]


def test_a_permanent_error_is_not_retried_and_logged_once(bot, slack, caplog):
    slack.script("chat.postMessage", {"ok": False, "error": "channel_not_found"})
    with caplog.at_level(logging.INFO):
        event, event_id = ask(bot)
        wait_finished(bot, event_id)
        slack.settle(quiet=2.5)  # longer than the resumer's round: nothing retries it
    assert len(slack.calls("chat.postMessage")) == 1  # no retry, no "Sorry…" (it could not be posted anyway)
    assert bot.services.deliveries.status(event_id)[0] == "failed"
    record = bot.services.deliveries.get(event_id)
    assert record.outcome == "channel_not_found" and bot.services.deliveries.due() == []
    problems = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(problems) == 1 and "channel_not_found" in problems[0] and event["ts"] in problems[0], problems


@pytest.mark.parametrize("status, body, transient", [
    (500, {"ok": False, "error": "internal_error"}, True), (503, {"ok": False}, True),
    (429, {"ok": False, "error": "ratelimited"}, True), (200, {"ok": False, "error": "fatal_error"}, True),
    (200, {"ok": False, "error": "channel_not_found"}, False), (200, {"ok": False, "error": "not_in_channel"}, False),
    (200, {"ok": False, "error": "invalid_auth"}, False),
])
def test_slack_errors_are_told_apart(status, body, transient):
    from slack_sdk.errors import SlackApiError
    from slack_sdk.web import SlackResponse

    from bot.replying import error_code, is_transient

    response = SlackResponse(client=None, http_verb="POST", api_url="https://slack.com/api/chat.postMessage",
                             req_args={}, data=body, headers={}, status_code=status)
    exc = SlackApiError("failed", response)
    assert is_transient(exc) is transient
    assert error_code(exc) == body.get("error", f"http_{status}")


def test_no_connection_is_transient_but_a_local_file_error_is_not():
    import socket
    from urllib.error import URLError

    from bot.replying import is_transient

    assert is_transient(URLError(ConnectionRefusedError(111, "refused"))) and is_transient(socket.timeout())
    assert is_transient(ConnectionResetError()) and not is_transient(FileNotFoundError("x"))
