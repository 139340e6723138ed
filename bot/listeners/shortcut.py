"""Private answers on request: the message shortcut "Ask strategy-bot about this message".

The shortcut answers the message's text only to the person who asked (chat.postEphemeral;
through the shortcut's `response_url` where the bot is not in the channel), with the usual
sources and feedback and a "Share in thread" button. The button posts that same answer,
citations included, into the message's thread, once: the shared message's ts is recorded
with the answer, and a second click (or a double click) finds it and posts nothing.

The answer is recorded in the conversation log under a thread key of its own
(`shortcut:<thread ts>`), not the message's thread: a private answer must not make the bot
answer every later reply in that thread as a follow-up. Only the person who asked may
share it (checked from the record, not the button's value).
"""
from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from dataclasses import asdict

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.blocks.answer import Message, answer_message
from bot.blocks.text import MAX_BLOCKS, escape, plain_question, section, slack_texts
from bot.services import Services
from retrieval.index_store import IndexError_
from retrieval.service import QuestionError

log = logging.getLogger(__name__)

CALLBACK_ID = "ask_about_message"
SHARE_ACTION = "share_answer"
THREAD_KEY_PREFIX = "shortcut:"
KEPT_ANSWERS = 256  # rendered answers kept for "Share in thread"; older ones are asked again (same question)


class SharedAnswers:
    """The rendered answers shown privately, so "Share in thread" posts exactly what was shown."""

    def __init__(self, size: int = KEPT_ANSWERS) -> None:
        self._kept: OrderedDict[int, Message] = OrderedDict()
        self._size = size
        self.lock = threading.Lock()  # one share at a time: two clicks cannot both post

    def keep(self, answer_id: int, message: Message) -> None:
        with self.lock:
            self._kept[answer_id] = message
            while len(self._kept) > self._size:
                self._kept.popitem(last=False)

    def get(self, answer_id: int) -> Message | None:
        return self._kept.get(answer_id)


def register(app: App, services: Services) -> None:
    shared = SharedAnswers()

    @app.message_shortcut(CALLBACK_ID)
    def on_shortcut(ack: Ack, shortcut: dict, client: WebClient, respond) -> None:
        ack()
        message = shortcut.get("message") or {}
        channel, user = shortcut["channel"]["id"], shortcut["user"]["id"]
        texts = slack_texts()
        question = plain_question(message.get("text") or "", None)
        if not question:
            return _private(client, respond, channel, user, message, Message(texts["shortcut"]["empty"], [
                section(texts["shortcut"]["empty"])]))
        thread = message.get("thread_ts") or message["ts"]
        answer_id = services.conversations.start(channel, THREAD_KEY_PREFIX + thread, message["ts"], user, question)
        try:
            result = services.kb.ask(question)
        except QuestionError as exc:
            text = texts["question_refused"].format(reason=escape(str(exc)))
            return _private(client, respond, channel, user, message, Message(text, [section(text)]))
        except IndexError_ as exc:
            text = texts["index_unavailable"].format(reason=escape(str(exc)))
            return _private(client, respond, channel, user, message, Message(text, [section(text)]))
        listed = result.closest if result.abstained else result.citations
        services.conversations.complete(answer_id, result.answer, result.abstained,
                                        [_citation_record(c) for c in listed])
        rendered = answer_message(result, answer_id)
        shared.keep(answer_id, rendered)
        _private(client, respond, channel, user, message, with_share_button(rendered, answer_id))

    @app.action(SHARE_ACTION)
    def on_share(ack: Ack, body: dict, action: dict, client: WebClient, respond) -> None:
        ack()
        texts = slack_texts()["shortcut"]
        try:
            answer_id = int(json.loads(action.get("value") or "{}")["answer_id"])
        except (ValueError, KeyError, TypeError):
            log.info("a share click with an unreadable value was ignored")
            return
        turn = services.conversations.get(answer_id)
        user = (body.get("user") or {}).get("id")
        if turn is None or not turn.thread_ts.startswith(THREAD_KEY_PREFIX) or turn.user_id != user:
            respond(response_type="ephemeral", replace_original=False, text=texts["share_expired"])
            return
        with shared.lock:
            turn = services.conversations.get(answer_id) or turn
            if not turn.reply_ts:  # not shared yet
                message = shared.get(answer_id) or _asked_again(services, turn.question, answer_id)
                heading = section(texts["shared_by"].format(user=user))
                posted = client.chat_postMessage(
                    channel=turn.channel, thread_ts=turn.thread_ts.removeprefix(THREAD_KEY_PREFIX),
                    text=message.text, blocks=[heading, *message.blocks][:MAX_BLOCKS],
                    unfurl_links=False, unfurl_media=False)
                services.conversations.set_reply(answer_id, str(posted["ts"]))
        try:  # the private copy loses its button: the answer is in the thread now
            respond(replace_original=True, text=texts["shared"], blocks=[section(texts["shared"])])
        except Exception as exc:  # the response_url expired: the share itself happened
            log.info("could not update the private answer after sharing (%s)", type(exc).__name__)


def with_share_button(message: Message, answer_id: int) -> Message:
    """The private answer and a "Share in thread" button (a source fewer if the message is full)."""
    button = {"type": "actions", "block_id": "share_answer", "elements": [{
        "type": "button", "action_id": SHARE_ACTION, "style": "primary",
        "text": {"type": "plain_text", "text": slack_texts()["shortcut"]["share_button"], "emoji": True},
        "value": json.dumps({"answer_id": answer_id})}]}
    blocks = list(message.blocks)
    while len(blocks) + 1 > MAX_BLOCKS:
        blocks.pop(-2)  # the last source; the feedback block stays last
    return Message(message.text, [*blocks, button])


def _asked_again(services: Services, question: str, answer_id: int) -> Message:
    """An answer this process no longer keeps (a restart, another replica): the same question asked again."""
    return answer_message(services.kb.ask(question), answer_id)


def _citation_record(citation) -> dict:
    """What the conversation log keeps of a citation (as answers.py does): where it points, not the passage."""
    data = asdict(citation)
    data.pop("text", None)
    return data


def _private(client: WebClient, respond, channel: str, user: str, message: dict, reply: Message) -> None:
    """chat.postEphemeral in the message's thread; through the response_url where the bot cannot post."""
    try:
        client.chat_postEphemeral(channel=channel, user=user, text=reply.text, blocks=reply.blocks,
                                  thread_ts=message.get("thread_ts"))
    except SlackApiError as exc:
        log.info("chat.postEphemeral failed (%s); answering through the response_url",
                 exc.response.get("error"))
        respond(response_type="ephemeral", text=reply.text, blocks=reply.blocks)
