"""What the Slack bot says when its index is damaged or cannot exist, over the wire, and the repair.

The real bot (Bolt app in HTTP mode, waitress) runs with a fake Slack Web API on loopback and
receives signed requests, as from Slack. Two situations:

- The served build's `vectors.faiss` was cut short (a full disk, an interrupted copy). `/healthz`
  says the index is damaged, naming the file, in words (never FAISS's C++ message); a question
  gets "the index is damaged ... an admin can repair it with /strategy-reindex" rather than
  "Sorry…"; `/strategy-reindex status` answers; and an admin's ordinary `/strategy-reindex`
  repairs it (reporting the repair), after which the bot is healthy and answers.
- No index yet and an empty KNOWLEDGE_DIR: `/healthz` and `status` say there is no index and which
  folder is empty, not that "the current index is kept".

Tests in the damaged-index part share one bot and run in order: the last one repairs it.
"""
from __future__ import annotations

import json
import os
import shutil
import uuid

import pytest

from retrieval.service import KnowledgeBase
from slack_harness import (
    BOT_USER_ID,
    bot_settings,
    event_payload,
    mention_event,
    running_bot,
    slash_payload,
    wait_healthy,
)
from strategy_bot.settings import DEFAULT_KNOWLEDGE_DIR

ADMIN = "U0ADMIN01"
CPP_TRACES = ("faiss::", "Error in", "read error", "RuntimeError", "index_read.cpp")


def text_of(call) -> str:
    body = call.body
    blocks = " ".join(b["text"]["text"] for b in body.get("blocks") or [] if b.get("type") == "section")
    return f"{body.get('text', '')} {blocks}"


def command(bot, slack, text: str, user: str = ADMIN, until: str = "", timeout: float = 120.0) -> list[str]:
    """`/strategy-reindex TEXT` over the wire; the ephemeral notes it got, once one containing `until` came."""
    name = uuid.uuid4().hex
    sent = bot.send_form(slash_payload("/strategy-reindex", text, user_id=user, response_url=slack.response_url(name)))
    assert sent.status == 200 and sent.elapsed_ms < 3000
    mine = lambda c: c.path.endswith(name)  # noqa: E731
    slack.wait_for("response_url", where=lambda c: mine(c) and until in text_of(c), timeout=timeout)
    return [text_of(c) for c in slack.calls("response_url") if mine(c)]


def ask(bot, slack, question: str) -> str:
    """A mention over the wire; the text of the bot's reply in its thread."""
    event = mention_event(f"<@{BOT_USER_ID}> {question}")
    assert bot.send_event(event_payload(event)).status == 200
    post = slack.wait_for("chat.postMessage", timeout=60, where=lambda c: c.body.get("thread_ts") == event["ts"])[0]
    return text_of(post) + json.dumps(post.body.get("blocks"), ensure_ascii=False)


# --- a damaged index ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def damaged(tmp_path_factory, built_data_dir):
    """A copy of the session's index whose vectors.faiss lost its second half, and of the corpus."""
    root = tmp_path_factory.mktemp("damaged")
    shutil.copytree(built_data_dir, root / "data", symlinks=True)
    shutil.copytree(DEFAULT_KNOWLEDGE_DIR, root / "knowledge")
    vectors = (root / "data" / "index").resolve() / "vectors.faiss"
    os.truncate(vectors, vectors.stat().st_size // 2)
    return root / "data", root / "knowledge"


@pytest.fixture(scope="module")
def bot(slack, damaged, e5):
    data, knowledge = damaged
    settings = bot_settings(data, slack, knowledge_dir=knowledge, admin_user_ids=(ADMIN,))
    with running_bot(settings, kb=KnowledgeBase(settings, e5), wait_ready=False) as server:
        server.services.load_index()  # what the background loader does, done now so /healthz has its verdict
        yield server


def test_healthz_says_the_index_is_damaged_in_words(bot):
    response = bot.get("/healthz")
    assert response.status == 503
    error = response.json()["error"]
    assert "the index is damaged" in error and "vectors.faiss" in error and "/strategy-reindex" in error
    assert not [trace for trace in CPP_TRACES if trace in error], error


def test_a_question_is_told_the_index_is_damaged_and_how_it_is_repaired(bot, slack):
    reply = ask(bot, slack, "What are the advantages of a closed-source model?")
    assert "the index is damaged" in reply and "/strategy-reindex" in reply, reply
    assert "Sorry" not in reply


def test_status_answers_that_the_index_is_damaged(bot, slack):
    note = command(bot, slack, "status", user="U0USER001", until="Knowledge base", timeout=30)[-1]
    assert "the index is damaged" in note and "vectors.faiss" in note and "/strategy-reindex" in note


def test_an_ordinary_re_index_repairs_it_and_the_bot_answers_again(bot, slack):
    notes = command(bot, slack, "", until="re-indexed")
    summary = notes[-1]
    assert "Repaired" in summary and "`vectors.faiss`" in summary and "*Unchanged* 2" in summary, summary
    assert not any("failed" in note for note in notes), notes
    wait_healthy(bot.url, timeout=60)
    reply = ask(bot, slack, "What are the advantages of a closed-source model?")
    assert "开源还是闭源" in reply and "damaged" not in reply
    assert "2 documents" in command(bot, slack, "status", until="Knowledge base:")[-1]


# --- no index, and nothing to build it from -------------------------------------------------------------------


def test_with_no_index_and_an_empty_knowledge_folder_health_and_status_say_so(slack, tmp_path, e5):
    knowledge = tmp_path / "knowledge"
    knowledge.mkdir()
    settings = bot_settings(tmp_path / "data", slack, knowledge_dir=knowledge, admin_user_ids=(ADMIN,))
    with running_bot(settings, kb=KnowledgeBase(settings, e5), wait_ready=False) as bot:
        bot.services.load_index()
        response = bot.get("/healthz")
        assert response.status == 503
        error = response.json()["error"]
        assert "there is no index yet" in error and f"{knowledge} is empty" in error, error
        assert "index is kept" not in error
        note = command(bot, slack, "status", user="U0USER001", until="no index yet")[-1]
        assert "There is no index yet" in note
