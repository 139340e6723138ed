"""Replying to a question in Slack: show that work is under way, then post (or fill in) the answer.

Progress is a 👀 reaction on the question, or `assistant.threads.setStatus` in an
assistant thread (a DM thread: Slack clears that status when the app replies). A
placeholder message, later replaced with `chat.update`, is for slow answers (an LLM
writing) so people see where the answer will appear. Cosmetic calls never stop an
answer: their failures are logged and ignored.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.blocks.answer import Message

log = logging.getLogger(__name__)


@dataclass
class Reply:
    """Where the answer to one question goes, and the progress shown meanwhile."""

    client: WebClient
    channel: str
    question_ts: str
    thread_ts: str | None  # None: reply at the top level (a DM question outside any thread)
    assistant_thread: bool = False
    reaction: str = "eyes"
    placeholder_ts: str | None = None
    _reacted: bool = False

    def working(self, status: str) -> None:
        """Show that the question is being answered."""
        if self.assistant_thread and self.thread_ts:
            if self._cosmetic("assistant.threads.setStatus", self.client.assistant_threads_setStatus,
                              channel_id=self.channel, thread_ts=self.thread_ts, status=status):
                return
        self._reacted = self._cosmetic("reactions.add", self.client.reactions_add, channel=self.channel,
                                       timestamp=self.question_ts, name=self.reaction)

    def placeholder(self, message: Message) -> None:
        """Post a stand-in message now; `send` will replace it in place."""
        response = self.client.chat_postMessage(channel=self.channel, thread_ts=self.thread_ts, text=message.text,
                                                blocks=message.blocks, unfurl_links=False, unfurl_media=False)
        self.placeholder_ts = response["ts"]

    def send(self, message: Message) -> str:
        """Post the message (or update the placeholder); returns its ts. Rate limits are retried by the client."""
        if self.placeholder_ts:
            self.client.chat_update(channel=self.channel, ts=self.placeholder_ts, text=message.text,
                                    blocks=message.blocks)
            return self.placeholder_ts
        response = self.client.chat_postMessage(channel=self.channel, thread_ts=self.thread_ts, text=message.text,
                                                blocks=message.blocks, unfurl_links=False, unfurl_media=False)
        return str(response["ts"])

    def progress(self, message: Message) -> None:
        """Show the answer so far in the placeholder (an LLM writing); a failed update only costs the preview."""
        if self.placeholder_ts:
            self._cosmetic("chat.update", self.client.chat_update, channel=self.channel, ts=self.placeholder_ts,
                           text=message.text, blocks=message.blocks)

    def done(self) -> None:
        """Take the 👀 off the question once it is answered."""
        if self._reacted:
            self._cosmetic("reactions.remove", self.client.reactions_remove, channel=self.channel,
                           timestamp=self.question_ts, name=self.reaction)

    @staticmethod
    def _cosmetic(method: str, call, **kwargs) -> bool:
        try:
            call(**kwargs)
            return True
        except SlackApiError as exc:
            log.info("%s failed (%s); carrying on", method, exc.response.get("error"))
        except OSError as exc:  # connection trouble: the answer itself may still get through
            log.info("%s failed (%s); carrying on", method, exc)
        return False
