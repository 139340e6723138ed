"""The Slack bot end to end: the real server in HTTP mode, signed requests, a fake Slack Web API.

One bot (over the session's index) serves most tests; each test starts from an empty
record of Web API calls. Deliveries use fresh event ids, so tests do not interfere.
"""
from __future__ import annotations

import json
import re
import shutil
import socket
import time
from pathlib import Path

import pytest

from bot.blocks.answer import answer_message
from bot.blocks.text import slack_texts
from slack_harness import (
    BOT_ID,
    BOT_USER_ID,
    CHANNEL_ID,
    DM_CHANNEL_ID,
    USER_ID,
    block_action_payload,
    bot_settings,
    event_payload,
    mention_event,
    message_event,
    new_ts,
    running_bot,
    slash_payload,
    url_verification_payload,
)

QUESTION = "What are the long-term costs of open-sourcing a model?"


@pytest.fixture(scope="module")
def bot_data(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("slackbot") / "data"


def probe_listeners(app, services) -> None:
    """Trivial slash command listeners to test the Bolt "payload" bug guard on. They come after
    the feature modules' listeners, so a real /strategy-check listener, when there is one, wins."""
    app.received = []  # type: ignore[attr-defined]

    @app.command(re.compile(r"^/(payload-probe|strategy-check)$"))
    def probe(ack, command):
        app.received.append((command["command"], command["text"]))
        ack(f"got: {command['text']}")


@pytest.fixture(scope="module")
def bot(slack, kb, bot_data):
    with running_bot(bot_settings(bot_data, slack), kb=kb, extra_listeners=[probe_listeners]) as server:
        yield server


pytestmark = pytest.mark.usefixtures("fresh_slack_calls")


def mention(bot, text: str = QUESTION, **kwargs):
    event = mention_event(f"<@{BOT_USER_ID}> {text}", **kwargs)
    response = bot.send_event(event_payload(event))
    assert response.status == 200, response.body
    return event


def posts_in(slack, thread_ts: str | None, channel: str = CHANNEL_ID):
    return [c for c in slack.calls("chat.postMessage")
            if c.body.get("channel") == channel and c.body.get("thread_ts") == thread_ts]


def wait_post(slack, thread_ts: str | None, channel: str = CHANNEL_ID):
    return slack.wait_for("chat.postMessage", where=lambda c: c.body.get("channel") == channel
                          and c.body.get("thread_ts") == thread_ts)[0]


def sections(call) -> list[str]:
    return [b["text"]["text"] for b in call.body["blocks"] if b["type"] == "section"]


# --------------------------------------------------------------------------- the wire


def test_url_verification_echoes_the_challenge(bot):
    response = bot.post(url_verification_payload("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"),
                        "application/json")
    assert response.status == 200
    assert response.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}


def test_bad_or_stale_signature_is_refused_and_does_nothing(bot, slack):
    payload = event_payload(mention_event(f"<@{BOT_USER_ID}> {QUESTION}"))
    assert bot.send_event(payload, secret="not-the-secret").status == 401
    assert bot.send_event(payload, timestamp=int(time.time()) - 600).status == 401  # replayed
    assert bot.send_event(payload, signed=False).status == 401
    slack.settle()
    assert slack.calls("chat.postMessage") == []


def test_healthz_reports_the_loaded_index(bot):
    response = bot.get("/healthz")
    assert response.status == 200
    assert response.json() == {"status": "ok", "database": "ok", "database_engine": "sqlite",
                               "build": bot.services.kb.loaded_build}
    assert response.json()["build"].startswith("20")  # DATA_DIR/indexes/<build id>


def test_malformed_bodies_are_refused_and_the_server_carries_on(bot, slack):
    assert bot.post("{this is not json", "application/json").status == 400
    assert bot.post("{this is not json", "application/json", signed=False).status == 401
    assert bot.post(b"\xff\xfe\x00 not utf-8", "application/json").status == 400
    assert bot.send_form("payload=%7Bbroken").status == 400
    assert bot.post("[1, 2, 3]", "application/json").status == 400
    # Broken HTTP itself: not HTTP at all, a nonsense length, an absurd length, a body cut short.
    assert raw_exchange(bot, b"\x16\x03\x01 garbage that is not HTTP\r\n\r\n").split(b" ")[1] == b"400"
    assert raw_exchange(bot, b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"
                        ).split(b" ")[1] == b"400"
    assert raw_exchange(bot, b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n"
                        ).split(b" ")[1] == b"413"
    raw_exchange(bot, b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n{\"type\":", read=False)
    assert bot.post(url_verification_payload("still-alive"), "application/json").json() == {"challenge": "still-alive"}
    event = mention(bot)
    assert "*Sources*" in sections(wait_post(slack, event["ts"]))


def raw_exchange(bot, data: bytes, read: bool = True) -> bytes:
    """Send raw bytes on a new connection; the first bytes of the reply (the status line)."""
    host, port = bot.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(data)
        return sock.recv(64) if read else b""


# --------------------------------------------------------------------------- answering


def test_mention_is_answered_in_its_thread_with_citations(bot, slack, kb):
    event = mention(bot)
    post = wait_post(slack, event["ts"])
    expected = answer_message(kb.ask(QUESTION), answer_id=_answer_id(post))
    assert post.body["blocks"] == expected.blocks and post.body["text"] == expected.text
    texts = sections(post)
    assert "*Sources*" in texts
    sources = [t for t in texts if t.startswith("*[")]
    assert sources and all("›" in s.split("\n")[0] and "\n>" in s for s in sources)
    assert post.token == slack.token
    status = slack.wait_for("assistant.threads.setStatus")[0].body  # chat:write sets it in channels too
    assert (status["channel_id"], status["thread_ts"]) == (CHANNEL_ID, event["ts"]) and status["status"]
    assert slack.calls("reactions.add") == []


def test_the_eyes_reaction_stands_in_where_no_status_can_be_set(bot, slack):
    slack.script("assistant.threads.setStatus", {"ok": False, "error": "not_allowed_token_type"})
    event = mention(bot)
    wait_post(slack, event["ts"])
    reaction = slack.wait_for("reactions.add")[0].body
    assert (reaction["channel"], reaction["timestamp"], reaction["name"]) == (CHANNEL_ID, event["ts"], "eyes")
    slack.wait_for("reactions.remove")


def test_an_english_mention_is_answered_in_english_with_the_originals_under_sources(bot, slack, kb):
    """The Chinese sentence each English quote renders is one line away: in its source's quote."""
    event = mention(bot, "What are the advantages of a closed-source model?")
    texts = sections(wait_post(slack, event["ts"]))
    assert texts[0].startswith("From the documents (translated")
    answer = kb.ask("What are the advantages of a closed-source model?")
    sources = "\n".join(t for t in texts if t.startswith("*["))
    for quote in answer.quotes:
        assert quote.text[:40] in texts[0]
        assert quote.source[:20] in sources
    # the sources it quotes come first; the others follow under "See also"
    used = {q.n for q in answer.quotes}
    assert texts.index("*Sources*") < texts.index("*See also*")
    numbers = [int(t[2]) for t in texts if t.startswith("*[")]
    assert numbers[: len(used)] == sorted(used) and numbers == sorted(numbers)


def test_mention_inside_a_thread_is_answered_in_that_thread(bot, slack):
    root = new_ts()
    mention(bot, thread_ts=root)
    assert "*Sources*" in sections(wait_post(slack, root))


def test_same_event_id_is_answered_once(bot, slack):
    event = mention_event(f"<@{BOT_USER_ID}> {QUESTION}")
    payload = event_payload(event)
    assert bot.send_event(payload).status == 200
    assert bot.send_event(payload, retry_num=1).status == 200
    assert bot.send_event(payload, retry_num=2, retry_reason="http_error").status == 200
    wait_post(slack, event["ts"])
    slack.settle(quiet=0.5)
    assert len(posts_in(slack, event["ts"])) == 1
    assert bot.services.deliveries.status(json.loads(payload)["event_id"]) == ("done", 3)


def test_a_retry_whose_first_delivery_never_came_is_answered(bot, slack):
    event = mention_event(f"<@{BOT_USER_ID}> {QUESTION}")
    assert bot.send_event(event_payload(event), retry_num=1).status == 200
    assert "*Sources*" in sections(wait_post(slack, event["ts"]))


def test_a_retry_after_a_restart_is_still_recognised(slack, kb, tmp_path):
    settings = bot_settings(tmp_path / "data", slack)
    event = mention_event(f"<@{BOT_USER_ID}> {QUESTION}")
    payload = event_payload(event)
    with running_bot(settings, kb=kb) as first:
        first.send_event(payload)
        wait_post(slack, event["ts"])
    with running_bot(settings, kb=kb) as restarted:
        assert restarted.send_event(payload, retry_num=1).status == 200
        slack.settle(quiet=0.5)
    assert len(posts_in(slack, event["ts"])) == 1


def test_a_direct_message_is_answered(bot, slack):
    event = message_event(QUESTION, channel=DM_CHANNEL_ID, channel_type="im")
    assert bot.send_event(event_payload(event)).status == 200
    post = wait_post(slack, None, channel=DM_CHANNEL_ID)  # top-level in the DM, not in a thread
    assert "*Sources*" in sections(post)
    assert slack.wait_for("reactions.add")[0].body["timestamp"] == event["ts"]  # no thread: no status


def test_a_question_in_a_dm_thread_shows_assistant_status(bot, slack):
    root = new_ts()
    event = message_event(QUESTION, channel=DM_CHANNEL_ID, channel_type="im", thread_ts=root)
    bot.send_event(event_payload(event))
    wait_post(slack, root, channel=DM_CHANNEL_ID)
    status = slack.wait_for("assistant.threads.setStatus")[0].body
    assert status["channel_id"] == DM_CHANNEL_ID and status["thread_ts"] == root and status["status"]
    assert slack.calls("reactions.add") == []


def test_a_bare_mention_gets_a_hint(bot, slack):
    event = mention_event(f"<@{BOT_USER_ID}>")
    bot.send_event(event_payload(event))
    assert sections(wait_post(slack, event["ts"])) == [slack_texts()["empty_question"]]


def test_bot_messages_edits_and_deletions_are_ignored(bot, slack):
    thread = mention(bot)["ts"]
    wait_post(slack, thread)
    slack.reset()
    ignored = [
        message_event(QUESTION, channel=DM_CHANNEL_ID, channel_type="im", user=None, subtype="bot_message",
                      bot_id="B0OTHER01"),
        message_event(QUESTION, channel=DM_CHANNEL_ID, channel_type="im", user="U0OTHERBOT", bot_id="B0OTHER01"),
        message_event(QUESTION, thread_ts=thread, user=BOT_USER_ID, bot_id=BOT_ID),  # our own reply
        message_event("", thread_ts=thread, subtype="message_changed",
                      message={"type": "message", "user": USER_ID, "text": QUESTION, "ts": new_ts()}),
        message_event("", channel=DM_CHANNEL_ID, channel_type="im", subtype="message_deleted",
                      deleted_ts=new_ts()),
        {**mention_event(f"<@{BOT_USER_ID}> {QUESTION}"), "bot_id": "B0OTHER01"},  # another app mentioning us
        message_event(QUESTION),  # a channel message that neither mentions the bot nor is in its thread
        message_event(QUESTION, thread_ts=new_ts()),  # a reply in a thread the bot is not part of
    ]
    for event in ignored:
        response = bot.send_event(event_payload(event))
        assert response.status == 200, (event, response.body)  # acknowledged, so Slack does not retry
    slack.settle(quiet=0.5)
    assert slack.calls("chat.postMessage") == [] and slack.calls("reactions.add") == []


def test_a_thread_follow_up_is_answered_with_the_thread_as_context(bot, slack, kb):
    first = "How does open-sourcing affect data privacy?"
    follow_up = "And what about the costs?"
    assert kb.ask(follow_up, history=[first]).citations != kb.ask(follow_up).citations  # context matters here
    thread = mention(bot, first)["ts"]
    wait_post(slack, thread)
    reply = message_event(follow_up, thread_ts=thread)
    assert bot.send_event(event_payload(reply)).status == 200
    post = slack.wait_for("chat.postMessage", count=2, where=lambda c: c.body.get("thread_ts") == thread)[1]
    expected = answer_message(kb.ask(follow_up, history=[first]), answer_id=_answer_id(post))
    assert post.body["blocks"] == expected.blocks
    turns = bot.services.conversations.turns(CHANNEL_ID, thread)
    assert [t.question for t in turns] == [first, follow_up]


def test_a_follow_up_that_mentions_the_bot_is_answered_once(bot, slack):
    thread = mention(bot)["ts"]
    wait_post(slack, thread)
    text = f"<@{BOT_USER_ID}> and what about the costs?"
    ts = new_ts()
    # Slack sends both events for such a message: the mention and the channel message.
    bot.send_event(event_payload(mention_event(text, ts=ts, thread_ts=thread)))
    bot.send_event(event_payload(message_event(text, ts=ts, thread_ts=thread)))
    slack.wait_for("chat.postMessage", count=2, where=lambda c: c.body.get("thread_ts") == thread)
    slack.settle(quiet=0.5)
    assert len(posts_in(slack, thread)) == 2


def test_a_rate_limited_post_is_retried_after_retry_after(bot, slack):
    slack.rate_limit("chat.postMessage", retry_after=1)
    event = mention(bot)
    calls = slack.wait_for("chat.postMessage", count=2, timeout=20,
                           where=lambda c: c.body.get("thread_ts") == event["ts"])
    assert calls[1].at - calls[0].at >= 1.0
    assert calls[0].body == calls[1].body and "*Sources*" in sections(calls[1])
    slack.settle(quiet=0.5)
    assert len(posts_in(slack, event["ts"])) == 2  # the refused attempt and the retry; no more


@pytest.mark.parametrize("method, channel, thread", [("reactions.add", DM_CHANNEL_ID, False),
                                                     ("assistant.threads.setStatus", DM_CHANNEL_ID, True),
                                                     ("assistant.threads.setStatus", CHANNEL_ID, True)])
def test_a_rate_limited_progress_marker_never_holds_up_the_answer(bot, slack, method, channel, thread):
    slack.rate_limit(method, retry_after=20)
    if channel == CHANNEL_ID:
        event = mention_event(f"<@{BOT_USER_ID}> {QUESTION}")
        root = event["ts"]
    else:
        root = new_ts() if thread else None
        event = message_event(QUESTION, channel=channel, channel_type="im", thread_ts=root)
    sent = time.perf_counter()
    assert bot.send_event(event_payload(event)).status == 200
    post = wait_post(slack, root, channel=channel)
    assert post.at - sent < 10  # it used to wait out the 20 s of the 👀's Retry-After first
    slack.settle(quiet=0.5)
    assert len(slack.calls(method)) == 1  # given up, not retried 20 s later
    assert len(posts_in(slack, root, channel)) == 1


def test_a_failure_is_told_to_the_user(bot, slack):
    """A permanent refusal of the answer itself (a transient one is retried: tests/test_delivery_faults.py)."""
    slack.script("chat.postMessage", {"ok": False, "error": "invalid_blocks"})
    event = mention(bot)
    calls = slack.wait_for("chat.postMessage", count=2, where=lambda c: c.body.get("thread_ts") == event["ts"])
    assert calls[1].body["text"] == slack_texts()["failed"]


# --------------------------------------------------------------------------- feedback


def test_feedback_clicks_are_recorded_and_acknowledged_in_the_thread(bot, slack):
    event = mention(bot)
    post = wait_post(slack, event["ts"])
    [buttons] = post.body["blocks"][-1]["elements"]  # Slack's native feedback_buttons element
    up, down = buttons["positive_button"], buttons["negative_button"]
    answer_id = _answer_id(post)

    def click(button, user="U0VOTER01"):
        form = block_action_payload(buttons["action_id"], button["value"], user=user, message_ts=new_ts(),
                                    thread_ts=event["ts"], message_blocks=post.body["blocks"],
                                    block_id="answer_feedback", action_type="feedback_buttons")
        assert bot.send_form(form).status == 200

    click(up)
    note = slack.wait_for("chat.postEphemeral")[0].body
    assert note["user"] == "U0VOTER01" and note["thread_ts"] == event["ts"] and "👍" in note["text"]
    click(up)  # the same vote again: counted once
    slack.wait_for("chat.postEphemeral", count=2)
    click(down, user="U0VOTER02")  # a 👎 asks why, in a modal
    assert slack.wait_for("views.open")[0].body["view"]["callback_id"] == "feedback_reason"
    votes = {(f.user_id, f.vote) for f in bot.services.feedback.all() if f.answer_id == answer_id}
    assert votes == {("U0VOTER01", "up"), ("U0VOTER02", "down")}
    record = next(f for f in bot.services.feedback.all() if f.answer_id == answer_id)
    turn = bot.services.conversations.get(answer_id)
    assert record.question == QUESTION and record.citations == turn.citations and record.citations
    shown = {int(s[2:].split("]")[0]) for s in sections(post) if s.startswith("*[")}
    assert {c["n"] for c in record.citations} == shown


def test_feedback_on_an_unknown_answer_is_not_counted(bot, slack):
    before = len(bot.services.feedback.all())
    form = block_action_payload("answer_feedback_up", json.dumps({"answer_id": 999999, "vote": "up"}))
    assert bot.send_form(form).status == 200
    assert slack.wait_for("chat.postEphemeral")[0].body["text"] == slack_texts()["feedback_unknown"]
    assert len(bot.services.feedback.all()) == before


# --------------------------------------------------------------------------- slash commands


def test_a_slash_command_mentioning_payload_is_served(bot):
    """Bolt 1.30 drops this with 404: its body parser sees "payload" and looks for a payload= field."""
    response = bot.send_form(slash_payload("/payload-probe", "payload licensing"))
    assert response.status == 200, response.body
    assert bot.app.received[-1] == ("/payload-probe", "payload licensing")
    assert "got: payload licensing" in response.body


def test_strategy_check_with_payload_in_its_text_is_not_dropped(bot):
    response = bot.send_form(slash_payload("/strategy-check", "payload licensing"))
    assert response.status == 200, response.body  # served by the real listener, or else by the probe


# --------------------------------------------------------------------------- hostile documents


@pytest.fixture(scope="module")
def hostile_kb(tmp_path_factory, built_data_dir, e5):
    """The shipped corpus plus a document full of Slack control sequences and a huge title
    (indexed incrementally from a copy of the session's index: only the new document is embedded)."""
    from retrieval.service import KnowledgeBase
    from strategy_bot.settings import DEFAULT_KNOWLEDGE_DIR, Settings

    root = tmp_path_factory.mktemp("hostile")
    shutil.copytree(built_data_dir, root / "data", symlinks=True)
    shutil.copytree(DEFAULT_KNOWLEDGE_DIR, root / "knowledge")
    # The title is over Slack's 3,000-character section limit; '=' runs keep it cheap to embed.
    (root / "knowledge" / "zz-broadcast.md").write_text(
        "# Broadcast etiquette for model releases " + "=" * 3100 + "\n\n## Announcements\n\n"
        "A model release announcement must never contain <!channel> or <!here>; ping <@U0LEADER1> only, "
        "and keep <b>markup</b> & ampersands out.\n\n"
        "## Checklist\n\nThe announcement checklist covers the licence, the weights and the model card.\n",
        encoding="utf-8")
    base = KnowledgeBase(Settings(data_dir=root / "data", knowledge_dir=root / "knowledge"), e5)
    base.reindex(built_by="test")
    return base


@pytest.fixture(scope="module")
def hostile_bot(slack, hostile_kb, tmp_path_factory):
    with running_bot(bot_settings(tmp_path_factory.mktemp("hostile-bot"), slack), kb=hostile_kb) as server:
        yield server


def test_document_text_cannot_ping_anyone(hostile_bot, slack):
    event = mention(hostile_bot, "<!channel> what must a model release announcement never contain?")
    post = wait_post(slack, event["ts"])
    sent = json.dumps(post.body, ensure_ascii=False)
    assert "Broadcast etiquette" in sent  # the hostile document was cited
    for forbidden in ("<!channel>", "<!here>", "<@U0LEADER1>", "<b>"):
        assert forbidden not in sent
    assert "&lt;!channel&gt;" in sent or "&lt;!" in sent
    assert "&amp;" in sent


def test_a_huge_title_is_trimmed_not_refused(hostile_bot, slack, hostile_kb):
    question = "What does the announcement checklist cover?"
    assert any(len(c.title) > 3000 for c in hostile_kb.ask(question).citations)
    event = mention(hostile_bot, question)
    post = wait_post(slack, event["ts"])  # the fake Slack refuses over-long sections, like Slack
    assert "*Sources*" in sections(post) and all(len(t) <= 3000 for t in sections(post))
    assert len(post.body["blocks"]) <= 50
    slack.settle()
    assert [c.body["text"] for c in posts_in(slack, event["ts"])] != [slack_texts()["failed"]]
    assert len(posts_in(slack, event["ts"])) == 1


def _answer_id(post) -> int:
    return json.loads(post.body["blocks"][-1]["elements"][0]["positive_button"]["value"])["answer_id"]
