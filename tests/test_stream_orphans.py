"""A stream whose ts never reached the delivery log is adopted by the retry, not answered a second time.

Slack takes a streamed message's metadata only at `chat.stopStream`, so until `note_reply` writes the
ts a started stream is a bot message nothing ties to its event. Two ways to lose that ts, both over
the wire against the fake Slack Web API: the process is killed (`kill -9`, a real `strategy-bot serve`)
while Slack's answer to `chat.startStream` is on its way, and Slack creates the message but answers
`chat.startStream` with HTTP 500. Either way the retry must finish that message, and only that one:
an earlier answer in the same thread, or a bot message from before the question, is never taken over.
"""
from __future__ import annotations

import json
import signal
import time

import pytest
from slack_sdk import WebClient

from bot.blocks.answer import answer_message
from bot.replying import ANSWER_EVENT_TYPE, orphan_candidates
from slack_harness import (
    BOT_ID,
    BOT_USER_ID,
    CHANNEL_ID,
    USER_ID,
    BotServer,
    FakeSlackAPI,
    bot_settings,
    event_payload,
    mention_event,
    running_bot,
    serve_subprocess,
)

QUESTION = "What are the long-term costs of open-sourcing a model?"
FOLLOW_UP = "Why would a company keep its model closed source?"
LEASE_S = 2.0


@pytest.fixture(scope="module")
def bot(slack, kb, tmp_path_factory):
    data = tmp_path_factory.mktemp("orphans") / "data"
    with running_bot(bot_settings(data, slack, slack_streaming=True), kb=kb) as server:
        yield server


pytestmark = pytest.mark.usefixtures("fresh_slack_calls")


def answer_id_of(blocks: list[dict]) -> int:
    return json.loads(blocks[-1]["elements"][0]["positive_button"]["value"])["answer_id"]


def answered(message: dict, event_id: str) -> bool:
    metadata = message.get("metadata") or {}
    return metadata.get("event_type") == ANSWER_EVENT_TYPE and metadata["event_payload"] == {
        "event_id": event_id, "complete": True}


def wait_answered(slack, thread_ts: str, event_id: str, timeout: float) -> None:
    """Poll the thread until a message carries this event's complete answer (the retry is the resumer's)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(answered(m, event_id) for m in slack.in_thread(thread_ts)):
            return
        time.sleep(0.1)
    raise AssertionError(f"no complete answer to {event_id} after {timeout} s: {slack.in_thread(thread_ts)}")


def test_a_kill_between_the_stream_start_and_noting_it_is_finished_by_the_restart(fresh_data_dir, kb):
    event = mention_event(f"<@{BOT_USER_ID}> {QUESTION}")
    payload = event_payload(event)
    event_id = json.loads(payload)["event_id"]
    env = {"DELIVERY_LEASE_S": str(LEASE_S)}
    with FakeSlackAPI() as slack:
        settings = bot_settings(fresh_data_dir, slack, slack_streaming=True)
        with serve_subprocess(settings, extra_env=env) as (url, process):
            slack.hold("chat.startStream")  # Slack creates the message; the bot never hears its ts
            assert BotServer(url, None, None).send_event(payload).status == 200
            slack.wait_for("chat.startStream", timeout=60)
            process.send_signal(signal.SIGKILL)
            assert process.wait(timeout=10) == -signal.SIGKILL
        slack.release("chat.startStream")
        [orphan] = slack.in_thread(event["ts"])
        assert "metadata" not in orphan and slack.streams()[(CHANNEL_ID, orphan["ts"])]["state"] == "streaming"

        with serve_subprocess(settings, extra_env=env):
            wait_answered(slack, event["ts"], event_id, timeout=60)
            slack.settle(quiet=LEASE_S + 1.0)  # past a lease and a resumer round: nothing more is coming
        [message] = slack.in_thread(event["ts"])
        assert message["ts"] == orphan["ts"] and answered(message, event_id)
        assert message["blocks"] == answer_message(kb.ask(QUESTION), answer_id_of(message["blocks"])).blocks
        assert len(slack.calls("chat.startStream")) == 1 and slack.calls("chat.postMessage") == []


def test_a_stream_slack_created_but_answered_500_is_finished_by_the_retry(bot, slack, kb):
    slack.fail_after("chat.startStream", status=500, error="internal_error")
    event = mention_event(f"<@{BOT_USER_ID}> {QUESTION}")
    payload = event_payload(event)
    event_id = json.loads(payload)["event_id"]
    assert bot.send_event(payload).status == 200
    wait_answered(slack, event["ts"], event_id, timeout=30)
    slack.settle(quiet=0.5)
    [message] = slack.in_thread(event["ts"])
    started = slack.calls("chat.startStream")
    assert len(started) == 1 and started[0].response == {"ok": False, "error": "internal_error"}
    assert message["blocks"] == answer_message(kb.ask(QUESTION), answer_id_of(message["blocks"])).blocks
    assert slack.calls("chat.postMessage") == []
    delivery = bot.services.deliveries.get(event_id)
    assert (delivery.status, delivery.attempts, delivery.reply_ts) == ("done", 2, message["ts"])


def test_an_earlier_answer_and_an_older_bot_message_in_the_thread_are_not_adopted(bot, slack):
    """The follow-up's start answered 500 after creating its message: the retry adopts that message and
    leaves alone the thread's first answer (metadata of another event) and a bot message without
    metadata posted before the follow-up was asked (not after the event: not its stream)."""
    first = mention_event(f"<@{BOT_USER_ID}> {QUESTION}")
    first_payload = event_payload(first)
    root = first["ts"]
    assert bot.send_event(first_payload).status == 200
    wait_answered(slack, root, json.loads(first_payload)["event_id"], timeout=30)
    client = WebClient(token=slack.token, base_url=slack.api_url)  # the bot's token: another feature's message
    older = client.chat_postMessage(channel=CHANNEL_ID, thread_ts=root, text="Reindexing finished.")["ts"]
    before = {m["ts"]: m for m in slack.in_thread(root)}

    slack.fail_after("chat.startStream", status=500, error="internal_error")
    follow_up = mention_event(f"<@{BOT_USER_ID}> {FOLLOW_UP}", thread_ts=root)
    payload = event_payload(follow_up)
    event_id = json.loads(payload)["event_id"]
    assert bot.send_event(payload).status == 200
    wait_answered(slack, root, event_id, timeout=30)
    slack.settle(quiet=0.5)

    after = {m["ts"]: m for m in slack.in_thread(root)}
    assert len(after) == 3 and len(slack.calls("chat.startStream")) == 2
    assert all(after[ts] == m for ts, m in before.items())  # the first answer and the older message as they were
    [adopted] = [m for ts, m in after.items() if ts not in before]  # the message the failed start created
    assert answered(adopted, event_id) and "*Sources*" in json.dumps(adopted["blocks"])
    assert (CHANNEL_ID, adopted["ts"]) in slack.streams() and "metadata" not in after[older]
    assert [c.body["text"] for c in slack.calls("chat.postMessage")] == ["Reindexing finished."]


def test_orphan_candidates_are_the_bots_own_after_the_question_inside_the_window():
    question, marked = "1000.000100", 1000.5
    answer = {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "ts": "1000.000300",
              "metadata": {"event_type": ANSWER_EVENT_TYPE, "event_payload": {"event_id": "Ev1"}}}
    thread = [
        {"type": "message", "user": USER_ID, "ts": question, "thread_ts": question},  # the question
        {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "ts": "1000.000050"},  # before it
        answer,  # another event's answer
        {"type": "message", "user": "U0OTHER01", "ts": "1000.000400"},  # a person
        {"type": "message", "user": "U0OTHERBOT", "bot_id": "B0OTHER01", "ts": "1000.000500"},  # another bot
        {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "ts": "1000.000600"},  # the orphan
        {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "ts": "1500.000100"},  # long after the start
    ]
    assert orphan_candidates(thread, bot_user_id=BOT_USER_ID, bot_id=BOT_ID, question_ts=question,
                             marked_at=marked) == ["1000.000600"]
    assert orphan_candidates(thread, bot_user_id=None, bot_id=BOT_ID, question_ts=question,
                             marked_at=marked) == ["1000.000600"]  # the bot_id alone is enough
