"""Hostile documents shared with the bot, over the wire: redirects that would carry the bot token away,
and decompression bombs. The real bot (Bolt app, waitress) with an admin, a private copy of the
corpus and of the session's index, and the fake Slack Web API serving the files.
"""
from __future__ import annotations

import shutil
import time

import pytest

from document_files import docx_with_body, make_docx, repeated
from retrieval.service import KnowledgeBase
from slack_harness import DM_CHANNEL_ID, FakeSlackAPI, bot_settings, event_payload, message_event, running_bot
from strategy_bot.settings import DEFAULT_KNOWLEDGE_DIR

ADMIN = "U0ADMIN01"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@pytest.fixture(scope="module")
def elsewhere():
    """Another host (another port on loopback): it serves and records whatever is asked of it."""
    with FakeSlackAPI() as api:
        yield api


@pytest.fixture(scope="module")
def dirs(tmp_path_factory, built_data_dir):
    root = tmp_path_factory.mktemp("hostile-uploads")
    shutil.copytree(built_data_dir, root / "data", symlinks=True)
    shutil.copytree(DEFAULT_KNOWLEDGE_DIR, root / "knowledge")
    return root / "data", root / "knowledge"


@pytest.fixture(scope="module")
def bot(slack, dirs, e5):
    data, knowledge = dirs
    settings = bot_settings(data, slack, knowledge_dir=knowledge, admin_user_ids=(ADMIN,))
    with running_bot(settings, kb=KnowledgeBase(settings, e5)) as server:
        yield server


@pytest.fixture(autouse=True)
def clean_calls(slack, elsewhere):
    slack.reset()
    elsewhere.reset()


def share(bot, slack, info: dict) -> str:
    """An admin shares the file in the bot's DM; the text of the bot's final reply."""
    slack.reset()
    event = message_event("", channel=DM_CHANNEL_ID, channel_type="im", user=ADMIN, subtype="file_share",
                          files=[{"id": info["id"], "name": info["name"], "mode": "hosted"}])
    assert bot.send_event(event_payload(event)).status == 200
    started, reply = slack.wait_for("chat.postMessage", 2, timeout=60)[:2]  # "Got it…", then what happened
    assert info["name"] in _text(started)
    return _text(reply)


def _text(call) -> str:
    blocks = " ".join(b["text"]["text"] for b in call.body.get("blocks") or [] if b.get("type") == "section")
    return f"{call.body.get('text', '')} {blocks}"


def test_a_redirect_to_another_host_is_not_followed_and_the_token_stays_home(bot, slack, elsewhere, dirs):
    info = slack.add_file("plan.md", b"# Plan\n\nThe real plan.", user=ADMIN)
    planted = elsewhere.add_file("plan.md", b"# Planted\n\nWhatever the other host says.", file_id=info["id"])
    slack.redirect_download(info["id"], planted["url_private_download"])
    reply = share(bot, slack, info)
    assert "Not added" in reply and "away from its file servers" in reply
    assert slack.calls("file_download")[0].headers["authorization"] == f"Bearer {slack.token}"
    assert elsewhere.calls() == []  # not a single request there, let alone one with the token
    assert not list(dirs[1].glob("plan*"))


def test_a_redirect_on_slacks_own_host_is_followed_without_the_token(bot, slack, dirs):
    info = slack.add_file("Ocelot notes.md", b"# Ocelot notes\n\nOcelot weights stay on the customer's servers.",
                          user=ADMIN)
    slack.redirect_download(info["id"], slack.public_url(info["id"]))
    reply = share(bot, slack, info)
    assert "Added" in reply and "`Ocelot-notes.md`" in reply
    first, second = slack.calls("file_download")
    assert first.headers["authorization"] == f"Bearer {slack.token}"
    assert "authorization" not in second.headers and second.path.startswith("/public/")
    assert (dirs[1] / "Ocelot-notes.md").is_file()


def test_a_decompression_bomb_is_refused_at_once_and_nothing_is_stored(bot, slack, dirs):
    # 20 MB of empty paragraphs (in a 77 KB file) around one real one: python-docx alone took a minute.
    bomb = docx_with_body([b"<w:p><w:r><w:t>The ocelot clause.</w:t></w:r></w:p>",
                           *repeated(b"<w:p></w:p>", 20 << 20)])
    info = slack.add_file("bomb.docx", bomb, mimetype=DOCX, filetype="docx", user=ADMIN)
    started = time.monotonic()
    reply = share(bot, slack, info)
    assert "Not added" in reply and "decompression bomb" in reply
    assert time.monotonic() - started < 30  # refused from the zip's directory, not after parsing
    assert not (dirs[1] / "bomb.docx").exists()
    good = slack.add_file("small.docx", make_docx("Ocelot terms", {"Hosting": "Ocelot hosts its own."}),
                          mimetype=DOCX, filetype="docx", user=ADMIN)
    assert "Added" in share(bot, slack, good)  # an ordinary Word file still goes through
