"""Native feedback with reasons and the App Home, end to end over signed HTTP.

The real bot (Bolt app, waitress) over a private copy of the session's index and corpus (so the
admins' re-index may run), a fake Slack Web API on loopback, and the state in SQLite under the
test's DATA_DIR. The stores underneath are checked on SQLite and PostgreSQL (`state_engine`).
"""
from __future__ import annotations

import json
import shutil
import time

import pytest

from bot.state.conversations import ConversationLog
from bot.state.feedback import REASON_TEXT_CHARS, FeedbackLog
from bot.state.home_visits import HomeVisits
from retrieval.service import KnowledgeBase
from slack_harness import (
    BOT_USER_ID,
    USER_ID,
    FakeSlackAPI,
    block_action_payload,
    bot_settings,
    event_payload,
    home_action_payload,
    home_opened_event,
    mention_event,
    new_ts,
    running_bot,
    slash_payload,
    view_submission_payload,
)
from strategy_bot.settings import DEFAULT_KNOWLEDGE_DIR

ADMIN = "U0ADMIN01"
VOTER = "U0VOTER01"
QUESTION = "What are the advantages of a closed-source model?"
DECLINED = "How do I bake sourdough bread?"


@pytest.fixture
def slack():
    with FakeSlackAPI() as api:
        yield api


@pytest.fixture
def bot(slack, tmp_path, built_data_dir, e5):
    shutil.copytree(built_data_dir, tmp_path / "data", symlinks=True)
    shutil.copytree(DEFAULT_KNOWLEDGE_DIR, tmp_path / "knowledge")
    settings = bot_settings(tmp_path / "data", slack, knowledge_dir=tmp_path / "knowledge", admin_user_ids=(ADMIN,))
    with running_bot(settings, kb=KnowledgeBase(settings, e5)) as server:
        yield server


def ask(bot, slack, question: str, user: str = USER_ID):
    """A mention over the wire; the answer's chat.postMessage call."""
    event = mention_event(f"<@{BOT_USER_ID}> {question}", user=user)
    assert bot.send_event(event_payload(event)).status == 200
    return slack.wait_for("chat.postMessage", timeout=60, where=lambda c: c.body.get("thread_ts") == event["ts"])[0]


def vote(bot, post, side: str, user: str) -> None:
    [buttons] = post.body["blocks"][-1]["elements"]
    form = block_action_payload(buttons["action_id"], buttons[side]["value"], user=user, message_ts=new_ts(),
                                thread_ts=post.body["thread_ts"], message_blocks=post.body["blocks"],
                                block_id="answer_feedback", action_type="feedback_buttons")
    assert bot.send_form(form).status == 200


def submit(bot, view: dict, user: str, reason: str = "outdated", text: str = "") -> None:
    values = {"reason": {"reason_choice": {"value": reason, "text": {"type": "plain_text", "text": reason}}},
              "details": {"reason_text": text}}
    response = bot.send_form(view_submission_payload(view, values, user=user))
    assert response.status == 200 and response.body in ("", "{}")  # acknowledged: the modal closes


def answered(call) -> dict:
    """The fake's answer to a recorded call (`wait_for` returns once a call arrives, before it is answered)."""
    deadline = time.monotonic() + 10
    while call.response is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert call.response is not None
    return call.response


def opened_modal(slack) -> dict:
    reply = answered(slack.wait_for("views.open")[0])
    assert reply["ok"], reply
    return reply["view"]


def home_text(view: dict) -> str:
    return json.dumps(view["blocks"], ensure_ascii=False)


def open_home(bot, slack, user: str) -> dict:
    before = len([c for c in slack.calls("views.publish") if c.body.get("user_id") == user])
    assert bot.send_event(event_payload(home_opened_event(user))).status == 200
    slack.wait_for("views.publish", before + 1, timeout=30, where=lambda c: c.body.get("user_id") == user)
    published = [c for c in slack.calls("views.publish") if c.body.get("user_id") == user][-1]
    assert answered(published)["ok"], published.response
    return slack.home_of(user)


# --------------------------------------------------------------------------- feedback with reasons


def test_a_thumbs_down_with_a_reason_is_stored_with_question_citations_and_build(bot, slack):
    post = ask(bot, slack, QUESTION)
    vote(bot, post, "negative_button", VOTER)
    assert slack.wait_for("views.open")[0].body["trigger_id"]  # the click's own (Slack honours it for 3 s)
    modal = opened_modal(slack)
    options = modal["blocks"][1]["element"]["options"]
    assert [o["value"] for o in options] == ["wrong_source", "outdated", "not_asked", "wrong_language", "other"]
    submit(bot, modal, VOTER, "outdated", "The 2024 pricing memo says otherwise. " * 40)
    thanks = slack.wait_for("chat.postEphemeral", where=lambda c: "reason" in c.body.get("text", ""))[0]
    assert thanks.body["user"] == VOTER and thanks.body["thread_ts"] == post.body["thread_ts"]

    answer_id = json.loads(modal["private_metadata"])["answer_id"]
    record = bot.services.feedback.get(answer_id, VOTER)
    turn = bot.services.conversations.get(answer_id)
    assert (record.vote, record.reason) == ("down", "outdated")
    assert record.reason_text.startswith("The 2024 pricing memo") and len(record.reason_text) <= REASON_TEXT_CHARS
    assert record.question == QUESTION and record.citations == turn.citations and record.citations
    assert record.build_id and record.build_id == turn.build_id == bot.services.kb.loaded_build


def test_a_forged_or_foreign_reason_writes_nothing_and_breaks_nothing(bot, slack):
    post = ask(bot, slack, QUESTION)
    vote(bot, post, "negative_button", VOTER)
    modal = opened_modal(slack)
    answer_id = json.loads(modal["private_metadata"])["answer_id"]
    submit(bot, modal, VOTER, "wrong_source")
    slack.wait_for("chat.postEphemeral", where=lambda c: "reason" in c.body.get("text", ""))

    submit(bot, modal, "U0INTRUDE1", "other", "someone else's record")  # no vote of theirs on it
    vote(bot, post, "positive_button", "U0HAPPY01")
    submit(bot, modal, "U0HAPPY01", "other", "a reason on a 👍")  # a 👍 has no reason
    for metadata in ("not json", json.dumps({"answer_id": "1; DROP TABLE feedback"}), json.dumps([1, 2]),
                     json.dumps({"answer_id": answer_id, "channel": "C0ELSEWHERE", "message_ts": "1.2"}),
                     "x" * 5000):
        submit(bot, {**modal, "private_metadata": metadata}, VOTER, "other", "forged")
    submit(bot, modal, VOTER, "made_up_reason")
    slack.settle()
    records = {f.user_id: f for f in bot.services.feedback.all() if f.answer_id == answer_id}
    assert set(records) == {VOTER, "U0HAPPY01"}
    assert (records[VOTER].reason, records[VOTER].reason_text) == ("wrong_source", None)
    assert records["U0HAPPY01"].reason is None
    assert bot.get("/healthz").status == 200


# --------------------------------------------------------------------------- the App Home


def test_the_home_shows_everyone_the_index_and_their_questions_and_only_admins_the_admin_part(bot, slack):
    post = ask(bot, slack, QUESTION)
    ask(bot, slack, DECLINED)
    vote(bot, post, "negative_button", VOTER)
    submit(bot, opened_modal(slack), VOTER, "not_asked", "I asked about cost")

    mine = home_text(open_home(bot, slack, USER_ID))
    status = bot.services.kb.status()
    assert f"*{status.documents}* documents ({status.chunks} passages)" in mine
    assert QUESTION in mine and DECLINED in mine and "How to ask" in mine
    assert "For admins" not in mine and "home_reindex" not in mine

    admin = home_text(open_home(bot, slack, ADMIN))
    assert "For admins" in admin and "home_reindex" in admin
    assert "You haven't asked me anything yet" in admin  # their own questions: none
    assert f"{DECLINED} — 1×" in admin  # most declined
    assert f"{QUESTION} — 1 👎 (not what was asked ×1)" in admin and "I asked about cost" in admin
    assert "Documents most cited" in admin and " — 1 answers" in admin

    assert bot.send_event(event_payload(home_opened_event(USER_ID, tab="messages"))).status == 200
    slack.settle()  # the Messages tab publishes nothing
    assert len([c for c in slack.calls("views.publish") if c.body.get("user_id") == USER_ID]) == 1


def test_a_non_admin_cannot_re_index_by_forging_the_home_button_and_an_admin_can(bot, slack):
    open_home(bot, slack, USER_ID)
    before = bot.services.kb.status().built_at
    response = bot.send_form(home_action_payload("home_reindex", "reindex", user=USER_ID))
    assert response.status == 200
    slack.wait_for("views.publish", 2, where=lambda c: c.body.get("user_id") == USER_ID)  # their home, again
    slack.settle()
    assert "For admins" not in home_text(slack.home_of(USER_ID))
    assert slack.calls("chat.postMessage") == [] and bot.services.kb.status().built_at == before

    open_home(bot, slack, ADMIN)
    assert bot.send_form(home_action_payload("home_reindex", "reindex", user=ADMIN)).status == 200
    done = slack.wait_for("chat.postMessage", timeout=300,
                          where=lambda c: c.body.get("channel") == ADMIN and "re-indexed" in json.dumps(c.body))
    assert done and bot.services.kb.status().built_at > before
    # Both visitors' homes are republished with the new build, each with what they may see.
    slack.wait_for("views.publish", 3, timeout=30, where=lambda c: c.body.get("user_id") == USER_ID)
    slack.wait_for("views.publish", 2, timeout=30, where=lambda c: c.body.get("user_id") == ADMIN)
    assert "For admins" not in home_text(slack.home_of(USER_ID))
    assert "For admins" in home_text(slack.home_of(ADMIN))


def test_a_re_index_by_slash_command_republishes_the_homes_people_opened(bot, slack):
    open_home(bot, slack, USER_ID)
    form = slash_payload("/strategy-reindex", "", user_id=ADMIN, response_url=slack.response_url("reindex"))
    assert bot.send_form(form).status == 200
    slack.wait_for("views.publish", 2, timeout=300, where=lambda c: c.body.get("user_id") == USER_ID)
    assert "re-indexed" in json.dumps([c.body for c in slack.calls("response_url")])
    assert "For admins" not in home_text(slack.home_of(USER_ID))


# --------------------------------------------------------------------------- the stores, on both engines


def test_reasons_are_written_only_onto_the_voters_own_thumbs_down(state_engine):
    log = FeedbackLog(state_engine)
    common = dict(channel="C1", message_ts="1.1", question="q?", citations=[{"n": 1, "doc_id": "d"}])
    log.record(answer_id=1, user_id="U1", vote="down", build_id="b1", **common)
    log.record(answer_id=1, user_id="U2", vote="up", build_id="b1", **common)
    assert log.set_reason(1, "U1", "outdated", "  old   numbers " + "x" * 2000)
    assert not log.set_reason(1, "U2", "other", "on a 👍")
    assert not log.set_reason(1, "U3", "other", "no vote")
    assert not log.set_reason(2, "U1", "other", "no such answer")
    with pytest.raises(ValueError):
        log.set_reason(1, "U1", "because")
    mine = log.get(1, "U1")
    assert (mine.reason, mine.build_id, mine.citations) == ("outdated", "b1", [{"n": 1, "doc_id": "d"}])
    assert mine.reason_text.startswith("old numbers x") and len(mine.reason_text) == REASON_TEXT_CHARS
    assert log.get(1, "U2").reason is None
    [disliked] = log.most_disliked(since=0)
    assert (disliked.answer_id, disliked.downs, disliked.reasons) == (1, 1, [("outdated", 1)])
    log.record(answer_id=1, user_id="U1", vote="up", **common)  # changing the vote drops the reason
    assert log.get(1, "U1").reason is None and log.most_disliked(since=0) == []


def test_declined_questions_citations_and_recent_visitors_are_counted(state_engine):
    log = ConversationLog(state_engine, current_build=lambda: "build-7")
    for user, question, declined, docs in [("U1", "Lunch?", True, []), ("U2", " lunch? ", True, []),
                                           ("U1", "Cost?", False, ["a", "b"]), ("U2", "Moat?", False, ["a"])]:
        answer_id = log.start("C1", new_ts(), new_ts(), user, question)
        cited = [{"n": i + 1, "doc_id": d, "title": d.upper()} for i, d in enumerate(docs)]
        log.complete(answer_id, "…", declined, cited)
    assert log.get(answer_id).build_id == "build-7"
    assert [(q.strip(), n) for q, n in log.most_declined(since=0)] == [("lunch?", 2)] or \
        [(q.strip(), n) for q, n in log.most_declined(since=0)] == [("Lunch?", 2)]
    assert log.most_declined(since=time.time() + 60) == []
    assert log.most_cited(since=0) == [("a", "A", 2), ("b", "B", 1)]
    assert [t.question for t in log.recent_questions("U1")] == ["Cost?", "Lunch?"]
    visits = HomeVisits(state_engine)
    visits.opened("U1", now=time.time() - 40 * 86400)  # long ago: forgotten
    visits.opened("U2", now=time.time() - 10)
    visits.opened("U3")
    assert visits.recent(10) == ["U3", "U2"] and visits.recent(1) == ["U3"]


def test_the_manifest_declares_the_home_tab_its_event_and_the_canvas_scope():
    import yaml

    from slack_harness import REPO

    manifest = yaml.safe_load((REPO / "manifest.yml").read_text(encoding="utf-8"))
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert "app_home_opened" in manifest["settings"]["event_subscriptions"]["bot_events"]
    assert "canvases:write" in manifest["oauth_config"]["scopes"]["bot"]
