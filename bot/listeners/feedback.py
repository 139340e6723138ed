"""👍/👎 on an answer, and why a 👎: recorded with who, the question, its citations and its build.

The answers carry Slack's native feedback buttons (bot/blocks/answer.py); older answers still in
Slack carry the classic 👍/👎 buttons, handled the same way. A click is acknowledged at once, then
the vote is stored (with the answer's question, citations and the index build that answered,
from the conversation log — never from the payload). A 👍 gets an ephemeral thank-you in the
answer's thread, visible only to the voter; a 👎 opens a small modal asking why (views.open
with the click's trigger_id, which Slack honours for 3 seconds, so it is opened right after
the vote is stored). The modal's submission (view_submission) comes back with the answer's
reference in private_metadata: it is checked, and the reason is written only onto the
submitter's own 👎 of that answer, so a forged reference can neither write someone else's
record nor a reason onto a 👍.
"""
from __future__ import annotations

import logging
import re

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.blocks.answer import FEEDBACK_ACTION_ID, FEEDBACK_ACTION_PREFIX, parse_feedback_value
from bot.blocks.feedback import REASON_CALLBACK_ID, parse_reference, reason_modal, submitted_reason
from bot.blocks.text import slack_texts
from bot.services import Services

log = logging.getLogger(__name__)

VOTE_EMOJI = {"up": "👍", "down": "👎"}


def register(app: App, services: Services) -> None:
    @app.action(re.compile(rf"^(?:{FEEDBACK_ACTION_ID}|{FEEDBACK_ACTION_PREFIX}(?:up|down))$"))
    def on_feedback(ack: Ack, body: dict, action: dict, client: WebClient) -> None:
        ack()
        record_click(services, client, body, action)

    @app.view_submission(REASON_CALLBACK_ID)
    def on_reason(ack: Ack, body: dict, view: dict, client: WebClient) -> None:
        ack()  # closes the modal; what follows is stored, or logged in one line when it is not ours
        record_reason(services, client, body, view)


def record_click(services: Services, client: WebClient, body: dict, action: dict) -> None:
    texts = slack_texts()
    user = body["user"]["id"]
    channel = (body.get("channel") or {}).get("id") or body.get("container", {}).get("channel_id", "")
    message = body.get("message") or {}
    message_ts = message.get("ts") or body.get("container", {}).get("message_ts", "")
    try:
        answer_id, vote = parse_feedback_value(action.get("value", ""))
    except (ValueError, KeyError, TypeError):
        log.warning("feedback click with a value that is not ours: %r", str(action.get("value", ""))[:100])
        return
    turn = services.conversations.get(answer_id)
    if turn is None or turn.channel != channel:
        _note(client, channel, user, message.get("thread_ts"), texts["feedback_unknown"])
        return
    changed = services.feedback.record(answer_id=answer_id, user_id=user, vote=vote, channel=channel,
                                       message_ts=message_ts, question=turn.question, citations=turn.citations,
                                       build_id=turn.build_id)
    log.info("feedback %s on answer %s from %s", vote, answer_id, user)
    if vote == "down" and _ask_why(client, body.get("trigger_id"), answer_id, channel, message_ts):
        return
    note = (texts["feedback_thanks"][vote].format(user=user) if changed
            else texts["feedback_repeat"].format(emoji=VOTE_EMOJI[vote]))
    _note(client, channel, user, message.get("thread_ts"), note)


def _ask_why(client: WebClient, trigger_id: str | None, answer_id: int, channel: str, message_ts: str) -> bool:
    """Open the reason modal; False when Slack refused (an expired trigger: the thank-you note instead)."""
    if not trigger_id:
        return False
    try:
        client.views_open(trigger_id=trigger_id, view=reason_modal(answer_id, channel, message_ts))
    except SlackApiError as exc:
        log.info("could not open the feedback reason modal (%s)", exc.response.get("error"))
        return False
    return True


def record_reason(services: Services, client: WebClient, body: dict, view: dict) -> None:
    user = (body.get("user") or {}).get("id") or ""
    try:
        answer_id, channel, _ = parse_reference(view.get("private_metadata") or "")
        reason, text = submitted_reason(view)
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("feedback reason from %s refused: %s", user[:20], exc)
        return
    turn = services.conversations.get(answer_id)
    if turn is None or turn.channel != channel or not services.feedback.set_reason(answer_id, user, reason, text):
        log.warning("feedback reason from %s refused: no 👎 of theirs on answer %s", user[:20], answer_id)
        return
    log.info("feedback reason %s on answer %s from %s", reason, answer_id, user)
    in_thread = None if channel.startswith("D") else turn.thread_ts  # a DM answer stands alone (answers.py)
    _note(client, channel, user, in_thread, slack_texts()["feedback_reason_thanks"].format(user=user))


def _note(client: WebClient, channel: str, user: str, thread_ts: str | None, text: str) -> None:
    """An ephemeral message to the voter, in the answer's thread when it has one."""
    try:
        client.chat_postEphemeral(channel=channel, user=user, text=text, thread_ts=thread_ts)
    except SlackApiError as exc:
        log.info("could not acknowledge feedback (%s)", exc.response.get("error"))
