"""Streamed answers, the agent view and the message shortcut, over the wire (issue 13, parts 1, 2 and 6).

The real bot in HTTP mode (SLACK_STREAMING on) against the fake Web API, which implements
chat.startStream / appendStream / stopStream, assistant.threads.* and chat.postEphemeral with
Slack's shapes; one streamed mention also goes over Socket Mode through `strategy-bot serve`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest
import yaml
from slack_sdk import WebClient

from bot.blocks.answer import answer_message, answer_sections
from bot.blocks.text import escape, slack_texts
from bot.listeners.shortcut import CALLBACK_ID
from bot.state.deliveries import DeliveryLog
from fake_openai import FakeOpenAI, Reply
from retrieval.service import KnowledgeBase
from slack_harness import (
    BOT_USER_ID,
    CHANNEL_ID,
    DM_CHANNEL_ID,
    REPO,
    TEAM_ID,
    USER_ID,
    FakeSlackAPI,
    FakeSocketModeServer,
    assistant_thread_started_event,
    block_action_payload,
    bot_settings,
    event_payload,
    mention_event,
    message_event,
    message_shortcut_payload,
    new_ts,
    running_bot,
    serve_subprocess,
)
from strategy_bot.migrate import open_state
from strategy_bot.settings import Settings

QUESTION = "What are the long-term costs of open-sourcing a model?"


@pytest.fixture(scope="module")
def bot(slack, kb, tmp_path_factory):
    data = tmp_path_factory.mktemp("streaming") / "data"
    with running_bot(bot_settings(data, slack, slack_streaming=True), kb=kb) as server:
        yield server


pytestmark = pytest.mark.usefixtures("fresh_slack_calls")


def mention(bot, text: str = QUESTION, **kwargs) -> tuple[dict, str]:
    event = mention_event(f"<@{BOT_USER_ID}> {text}", **kwargs)
    payload = event_payload(event)
    assert bot.send_event(payload).status == 200
    return event, json.loads(payload)["event_id"]


def expected_tail(kb, question: str, answer_id: int) -> list[dict]:
    """The blocks the streamed text stands above: the posted answer's blocks after its text sections."""
    answer = kb.ask(question)
    blocks = answer_message(answer, answer_id).blocks
    return blocks[len(answer_sections(answer.answer, slack_texts()["limits"])):]


def answer_id_of(blocks: list[dict]) -> int:
    return json.loads(blocks[-1]["elements"][0]["positive_button"]["value"])["answer_id"]


def test_a_mention_is_streamed_and_ends_with_sources_and_feedback(bot, slack, kb):
    event, event_id = mention(bot)
    stop = slack.wait_for("chat.stopStream")[0]
    start = slack.calls("chat.startStream")[0].body
    assert (start["channel"], start["thread_ts"]) == (CHANNEL_ID, event["ts"])
    assert (start["recipient_team_id"], start["recipient_user_id"]) == (TEAM_ID, USER_ID)
    step = start["chunks"][0]
    documents = kb.status().documents
    assert step["type"] == "task_update" and step["status"] == "in_progress"
    assert step["title"] == slack_texts()["streaming"]["en"]["searching"].format(documents=documents)
    appended = slack.calls("chat.appendStream")
    assert appended and appended[0].at < stop.at
    blocks = stop.body["blocks"]
    assert any(b["type"] == "context_actions" for b in blocks) and "*Sources*" in json.dumps(blocks)
    assert blocks == expected_tail(kb, QUESTION, answer_id_of(blocks))
    [message] = slack.in_thread(event["ts"])  # one message: the stream; nothing posted beside it
    assert message["text"] == escape(kb.ask(QUESTION).answer)
    assert message["metadata"]["event_payload"] == {"event_id": event_id, "complete": True}
    assert slack.calls("chat.postMessage") == [] and slack.streams()[(CHANNEL_ID, message["ts"])]["state"] == "stopped"
    status = slack.wait_for("assistant.threads.setStatus")[0].body  # a status in the channel thread, no 👀
    assert (status["channel_id"], status["thread_ts"]) == (CHANNEL_ID, event["ts"]) and status["loading_messages"]
    slack.settle(quiet=0.3)
    assert slack.calls("reactions.add") == []
    assert bot.services.deliveries.get(event_id).reply_ts == message["ts"]


def test_a_refused_stream_falls_back_to_one_post(bot, slack, kb):
    slack.refuse_streaming("method_not_supported")
    event, _ = mention(bot)
    post = slack.wait_for("chat.postMessage", where=lambda c: c.body.get("thread_ts") == event["ts"])[0]
    expected = answer_message(kb.ask(QUESTION), answer_id_of(post.body["blocks"]))
    assert post.body["blocks"] == expected.blocks
    slack.settle(quiet=0.5)
    assert len(slack.in_thread(event["ts"])) == 1
    assert slack.calls("chat.appendStream") == [] and slack.calls("chat.stopStream") == []


def test_a_stream_that_dies_is_filled_in_not_posted_again(bot, slack, kb):
    def die(call):
        slack.break_streams("message_not_in_streaming_state")
        return {"ok": False, "error": "message_not_in_streaming_state"}

    slack.script("chat.appendStream", die)
    event, event_id = mention(bot)
    update = slack.wait_for("chat.update")[0]
    expected = answer_message(kb.ask(QUESTION), answer_id_of(update.body["blocks"]))
    assert update.body["blocks"] == expected.blocks
    slack.settle(quiet=0.5)
    [message] = slack.in_thread(event["ts"])
    assert message["ts"] == update.body["ts"] and message["metadata"]["event_payload"]["complete"] is True
    assert slack.calls("chat.postMessage") == []
    assert bot.services.deliveries.status(event_id)[0] == "done"


def test_a_retry_after_a_failure_mid_stream_finishes_that_message(bot, slack, kb):
    """Slack failed (HTTP 500) after the stream began: the event is retried by the resumer, which finds the
    stream through the delivery log (it has no metadata yet) and fills it in; nothing is posted twice."""
    slack.script("chat.appendStream", {"ok": False, "error": "internal_error"}, status=500)
    event, event_id = mention(bot)
    update = slack.wait_for("chat.update", timeout=30)[0]
    slack.settle(quiet=0.5)
    [message] = slack.in_thread(event["ts"])
    assert update.body["ts"] == message["ts"] and len(slack.calls("chat.startStream")) == 1
    assert message["metadata"]["event_payload"] == {"event_id": event_id, "complete": True}
    assert message["blocks"] == answer_message(kb.ask(QUESTION), answer_id_of(message["blocks"])).blocks
    assert slack.calls("chat.postMessage") == []
    delivery = bot.services.deliveries.get(event_id)
    assert (delivery.status, delivery.attempts, delivery.reply_ts) == ("done", 2, message["ts"])


def test_a_stream_left_by_a_dead_process_is_finished_not_started_again(tmp_path, kb):
    """A process recorded the event, started its stream (noting the ts), wrote a little and died: the
    restart's resumer finds the stream in the delivery log and turns it into the whole answer."""
    with FakeSlackAPI() as slack:
        settings = bot_settings(tmp_path / "data", slack, slack_streaming=True, delivery_lease_s=2.0)
        event = mention_event(f"<@{BOT_USER_ID}> {QUESTION}")
        payload = json.loads(event_payload(event))
        state = open_state(settings)
        dead = DeliveryLog(state, lease_s=2.0, boot_id="dead-process")
        assert dead.receive(payload["event_id"], payload) is not None
        client = WebClient(token=slack.token, base_url=slack.api_url)
        ts = client.chat_startStream(channel=CHANNEL_ID, thread_ts=event["ts"], recipient_team_id=TEAM_ID,
                                     recipient_user_id=USER_ID, markdown_text="Open-sourcing")["ts"]
        dead.note_reply(payload["event_id"], ts)
        dead.close()
        state.dispose()
        with running_bot(settings, kb=kb) as bot:
            update = slack.wait_for("chat.update", timeout=30)[0]
            slack.settle(quiet=0.5)
            record = bot.services.deliveries.get(payload["event_id"])
        [message] = slack.in_thread(event["ts"])
        assert update.body["ts"] == ts == message["ts"] and len(slack.calls("chat.startStream")) == 1
        assert message["blocks"] == answer_message(kb.ask(QUESTION), answer_id_of(message["blocks"])).blocks
        assert message["metadata"]["event_payload"] == {"event_id": payload["event_id"], "complete": True}
        assert slack.calls("chat.postMessage") == []
        assert (record.status, record.reply_ts, record.attempts) == ("done", ts, 2)


@pytest.fixture(scope="module")
def fake_llm() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    yield server
    server.stop()


def test_an_llm_answer_is_streamed_as_it_is_written(tmp_path, built_data_dir, e5, kb, fake_llm):
    llm = dict(llm_provider="openai", llm_model="fake-model", llm_api_key="sk-test", llm_base_url=fake_llm.url,
               llm_max_retries=0, llm_timeout_s=10.0)
    llm_kb = KnowledgeBase(Settings(data_dir=built_data_dir, **llm), e5)
    llm_kb.ensure_index()
    # sentences the passages say (their reviewed renderings, cited right), so the support check keeps them
    quotes = kb.ask(QUESTION).quotes
    written = " ".join(f"{q.text.rstrip('.。')} [{q.n}]." for q in quotes[:3])
    fake_llm.reply(Reply(written, chunk_chars=20, chunk_delay_s=0.05))
    with FakeSlackAPI() as slack:
        settings = bot_settings(tmp_path / "data", slack, slack_streaming=True, **llm)
        with running_bot(settings, kb=llm_kb) as bot:
            event, event_id = mention(bot)
            stop = slack.wait_for("chat.stopStream", timeout=60)[0]
            slack.settle(quiet=0.5)
        texts = [c.body["chunks"][0]["text"] for c in slack.calls("chat.appendStream")
                 if c.body["chunks"] and c.body["chunks"][0]["type"] == "markdown_text"]
        assert len(texts) >= 2 and all(t for t in texts)  # the text came in pieces, before the end
        assert slack.calls("chat.appendStream")[0].at < stop.at
        assert slack.calls("chat.postMessage") == [] and "*Sources*" in json.dumps(stop.body["blocks"])
        [message] = slack.in_thread(event["ts"])
        assert message["metadata"]["event_payload"] == {"event_id": event_id, "complete": True}
        if slack.calls("chat.update"):  # the checked answer differed from the draft: it replaced the text
            assert stop.body["metadata"]["event_payload"]["complete"] is False


def test_opening_the_agent_view_suggests_prompts_in_the_users_language(bot, slack):
    slack.add_user("U0CHINESE1", locale="zh-CN")
    texts = slack_texts()["assistant"]
    for user, language in ((USER_ID, "en"), ("U0CHINESE1", "zh")):
        thread_ts = new_ts()
        bot.send_event(event_payload(assistant_thread_started_event(user=user, thread_ts=thread_ts)))
        call = slack.wait_for("assistant.threads.setSuggestedPrompts",
                              where=lambda c, ts=thread_ts: c.body["thread_ts"] == ts)[0]
        assert call.body["channel_id"] == DM_CHANNEL_ID and call.body["prompts"] == texts["prompts"][language]
        assert call.body["title"] == texts["prompts_title"][language]
        assert any("strategy check" in p["title"].lower() or "策略检查" in p["title"] for p in call.body["prompts"])


def test_a_question_in_the_agent_view_is_titled_and_streamed(bot, slack, kb):
    root = new_ts()
    event = message_event(QUESTION, channel=DM_CHANNEL_ID, channel_type="im", thread_ts=root)
    bot.send_event(event_payload(event))
    stop = slack.wait_for("chat.stopStream")[0]
    title = slack.wait_for("assistant.threads.setTitle")[0].body
    assert (title["channel_id"], title["thread_ts"], title["title"]) == (DM_CHANNEL_ID, root, QUESTION)
    assert stop.body["channel"] == DM_CHANNEL_ID
    [message] = slack.in_thread(root, DM_CHANNEL_ID)
    assert message["text"] == escape(kb.ask(QUESTION).answer)


def test_run_a_strategy_check_prompt_starts_the_dialogue_not_an_answer(bot, slack):
    """(The dialogue itself: tests/test_strategy_check_slack.py.)"""
    root = new_ts()
    bot.send_event(event_payload(message_event("Run a strategy check", channel=DM_CHANNEL_ID, channel_type="im",
                                               thread_ts=root)))
    post = slack.wait_for("chat.postMessage")[0]
    assert post.body["thread_ts"] == root and post.body["text"].startswith("Question 1/")
    assert any(b["type"] == "actions" for b in post.body["blocks"])
    slack.settle(quiet=0.3)
    assert slack.calls("chat.startStream") == [] and len(slack.calls("chat.postMessage")) == 1


def test_the_shortcut_answers_privately_and_share_posts_once(bot, slack, kb):
    message_ts = new_ts()
    form = message_shortcut_payload("ask_about_message", QUESTION, message_ts=message_ts,
                                    response_url=slack.response_url("shortcut"))
    assert bot.send_form(form).status == 200
    ephemeral = slack.wait_for("chat.postEphemeral")[0].body
    assert (ephemeral["channel"], ephemeral["user"]) == (CHANNEL_ID, USER_ID)
    share = ephemeral["blocks"][-1]["elements"][0]
    assert share["action_id"] == "share_answer"
    answer_id = json.loads(share["value"])["answer_id"]
    assert ephemeral["blocks"][:-1] == answer_message(kb.ask(QUESTION), answer_id).blocks
    assert slack.in_thread(message_ts) == []  # nothing public yet
    click = block_action_payload("share_answer", share["value"], message_ts=new_ts(), block_id="share_answer",
                                 response_url=slack.response_url("share"))
    for _ in range(2):  # a double click
        assert bot.send_form(click).status == 200
    post = slack.wait_for("chat.postMessage")[0]
    slack.settle(quiet=0.5)
    assert len(slack.calls("chat.postMessage")) == 1
    assert post.body["thread_ts"] == message_ts and post.body["blocks"][1:] == ephemeral["blocks"][:-1]
    replaced = slack.wait_for("response_url", where=lambda c: c.path.endswith("/share"))[0].body
    assert replaced["replace_original"] is True and "share_answer" not in json.dumps(replaced)
    # the private answer does not make the bot answer the thread's later replies
    assert not bot.services.conversations.knows_thread(CHANNEL_ID, message_ts)


def test_a_share_click_by_someone_else_posts_nothing(bot, slack):
    form = message_shortcut_payload("ask_about_message", QUESTION, response_url=slack.response_url())
    bot.send_form(form)
    share = slack.wait_for("chat.postEphemeral")[0].body["blocks"][-1]["elements"][0]
    bot.send_form(block_action_payload("share_answer", share["value"], user="U0OTHER001",
                                       response_url=slack.response_url("other")))
    slack.wait_for("response_url", where=lambda c: c.path.endswith("/other"))
    assert slack.calls("chat.postMessage") == []


def test_a_streamed_mention_over_socket_mode(fresh_data_dir: Path):
    with FakeSlackAPI() as slack, FakeSocketModeServer() as socket_mode:
        slack.script("apps.connections.open", {"ok": True, "url": socket_mode.url}, times=100)
        settings = bot_settings(fresh_data_dir, slack, slack_app_token="xapp-test-app-token",
                                slack_signing_secret="", slack_streaming=True)
        with serve_subprocess(settings):
            socket_mode.wait_connected()
            event = mention_event(f"<@{BOT_USER_ID}> {QUESTION}")
            payload = event_payload(event)
            socket_mode.wait_ack(socket_mode.send_event(payload))
            stop = slack.wait_for("chat.stopStream", timeout=60)[0]
            socket_mode.wait_ack(socket_mode.send_event(payload, retry_attempt=1))  # a redelivery
            slack.settle(quiet=0.5)
        assert "*Sources*" in json.dumps(stop.body["blocks"])
        assert len(slack.calls("chat.startStream")) == 1 and slack.calls("chat.postMessage") == []
        assert len(slack.in_thread(event["ts"])) == 1


def test_the_manifest_declares_the_agent_view_and_the_shortcut():
    manifest = yaml.safe_load((REPO / "manifest.yml").read_text(encoding="utf-8"))
    view = manifest["features"]["assistant_view"]
    assert view["assistant_description"] and 1 <= len(view["suggested_prompts"]) <= 4
    assert {"assistant_thread_started", "assistant_thread_context_changed"} <= set(
        manifest["settings"]["event_subscriptions"]["bot_events"])
    assert {"assistant:write", "chat:write", "users:read"} <= set(manifest["oauth_config"]["scopes"]["bot"])
    [shortcut] = [s for s in manifest["features"]["shortcuts"] if s["type"] == "message"]
    assert shortcut["callback_id"] == CALLBACK_ID
