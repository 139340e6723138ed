"""👍/👎 clicks on an answer: recorded with who clicked and which citations the answer had.

The click is acknowledged at once (Bolt waits for `ack()`), then the vote is stored and
the clicker gets an ephemeral note in the answer's thread — visible only to them, so a
busy thread does not fill with thank-yous.
"""
from __future__ import annotations

import logging
import re

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.blocks.answer import FEEDBACK_ACTION_PREFIX, parse_feedback_value
from bot.blocks.text import slack_texts
from bot.services import Services

log = logging.getLogger(__name__)

VOTE_EMOJI = {"up": "👍", "down": "👎"}


def register(app: App, services: Services) -> None:
    @app.action(re.compile(rf"^{FEEDBACK_ACTION_PREFIX}(up|down)$"))
    def on_feedback(ack: Ack, body: dict, action: dict, client: WebClient) -> None:
        ack()
        record_click(services, client, body, action)


def record_click(services: Services, client: WebClient, body: dict, action: dict) -> None:
    texts = slack_texts()
    user = body["user"]["id"]
    channel = (body.get("channel") or {}).get("id") or body.get("container", {}).get("channel_id", "")
    message = body.get("message") or {}
    message_ts = message.get("ts") or body.get("container", {}).get("message_ts", "")
    try:
        answer_id, vote = parse_feedback_value(action.get("value", ""))
    except (ValueError, KeyError, TypeError):
        log.warning("feedback click with a value that is not ours: %r", action.get("value", "")[:100])
        return
    turn = services.conversations.get(answer_id)
    if turn is None or turn.channel != channel:
        _note(client, channel, user, message.get("thread_ts"), texts["feedback_unknown"])
        return
    changed = services.feedback.record(answer_id=answer_id, user_id=user, vote=vote, channel=channel,
                                       message_ts=message_ts, question=turn.question, citations=turn.citations)
    log.info("feedback %s on answer %s from %s", vote, answer_id, user)
    note = (texts["feedback_thanks"][vote].format(user=user) if changed
            else texts["feedback_repeat"].format(emoji=VOTE_EMOJI[vote]))
    _note(client, channel, user, message.get("thread_ts"), note)


def _note(client: WebClient, channel: str, user: str, thread_ts: str | None, text: str) -> None:
    """An ephemeral message to the clicker, in the answer's thread when it has one."""
    try:
        client.chat_postEphemeral(channel=channel, user=user, text=text, thread_ts=thread_ts)
    except SlackApiError as exc:
        log.info("could not acknowledge feedback (%s)", exc.response.get("error"))
