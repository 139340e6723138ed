"""A streamed answer: Slack's `chat.startStream` / `appendStream` / `stopStream`, through slack-sdk's `ChatStream`.

What people see: a task line "Searching N documents" the moment work starts, then the
answer's text as it is written, then (when the stream stops) the sources and feedback
blocks under it. The answer text is streamed as Slack markdown; the blocks at the end are
the same ones the posted answer message carries (bot/blocks/answer.py), so both paths
show the same sources and buttons.

Exactly-once: a streamed message carries the delivery's message metadata only from
`chat.stopStream` on (Slack takes metadata there, not when the stream starts), so the
stream's ts is written to the delivery log (`DeliveryLog.note_reply`) the moment Slack
returns it. A retried event finds it there (and, once stopped, by its metadata like any
answer) and finishes that message with `chat.update` instead of starting a second one.
Before the start, `on_starting` marks the delivery (`DeliveryLog.mark_stream`): if the ts
never reaches the log (a crash in between, or a start Slack carried out but answered with a
5xx or a timeout), the retry knows a message may exist without metadata and looks for it in
the thread (`bot.replying.orphan_candidates`) instead of starting a second one.
`stopStream` says `complete: false` when the text that was streamed is not the final
answer (an LLM answer whose check changed it): the `chat.update` that follows says
`complete: true`, so a crash between the two leaves a message a retry still finishes.

Failures: a stream Slack refuses before any message exists (an older workspace, a token
without the scope) is `StreamRefused`: the caller posts the answer the classic way. A
stream that dies once its message exists (`message_not_in_streaming_state`, a stream
Slack expired) is `StreamBroken` with that message's ts: the caller fills the message in
with `chat.update`. Transient errors (5xx, 429, no connection) are raised as they are:
the delivery is retried, and the retry finds the noted message.
"""
from __future__ import annotations

import logging
from typing import Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.models.messages.chunk import TaskUpdateChunk
from slack_sdk.web.chat_stream import ChatStream

from bot.blocks.text import escape
from bot.replying import Reply, error_code, is_transient

log = logging.getLogger(__name__)

SEARCH_TASK_ID = "search"


class StreamRefused(Exception):
    """Slack would not start a stream here; nothing was posted."""


class StreamBroken(Exception):
    """The stream's message exists (`ts`) but can no longer be appended to or stopped."""

    def __init__(self, ts: str, code: str) -> None:
        super().__init__(f"the stream of {ts} broke: {code}")
        self.ts, self.code = ts, code


class AnswerStream:
    """One answer streamed into a thread; `start`, then `write` as often as the text grows, then `finish`."""

    def __init__(self, reply: Reply, *, recipient_team_id: str | None, recipient_user_id: str | None,
                 texts: dict, buffer_chars: int, on_starting: Callable[[], None],
                 on_started: Callable[[str], None]) -> None:
        if not reply.thread_ts:
            raise ValueError("Slack streams only thread replies")
        self.reply = reply
        self.texts = texts  # prompts/slack.yaml `streaming`, in the question's language
        self.on_starting, self.on_started = on_starting, on_started
        self._stream: ChatStream = reply.client.chat_stream(
            channel=reply.channel, thread_ts=reply.thread_ts, buffer_size=buffer_chars,
            recipient_team_id=recipient_team_id, recipient_user_id=recipient_user_id)
        self._sent = ""  # the markdown handed to the stream so far (buffered or flushed)
        self._searching = True

    @property
    def ts(self) -> str | None:
        return self._stream.ts

    def start(self, documents: int) -> None:
        """Open the stream with the search step (a task that completes when the text begins)."""
        title = self.texts["searching"].format(documents=documents)
        self._call(self._stream.append, chunks=[TaskUpdateChunk(id=SEARCH_TASK_ID, title=title,
                                                                status="in_progress")])

    def write(self, text: str) -> None:
        """The answer so far (each draft extends the previous one); only what is new is appended.

        A draft that rewrites what was already streamed cannot be taken back: it is not streamed,
        and `finish` replaces the text with the final answer.
        """
        text = escape(text)
        if not text.startswith(self._sent):
            return
        delta = text[len(self._sent):]
        if not delta and not self._searching:
            return
        if self._searching:  # the first text: close the search step and show the text at once
            self._searching = False
            done = TaskUpdateChunk(id=SEARCH_TASK_ID, title=self.texts["searched"], status="complete")
            self._call(self._stream.append, markdown_text=delta, chunks=[done])
        else:
            self._call(self._stream.append, markdown_text=delta)
        self._sent = text

    def finish(self, final_text: str, blocks: list[dict], metadata: Callable[[bool], dict]) -> bool:
        """Stop the stream with `blocks` under the text and the delivery's metadata; True when the text
        streamed is the final answer (else the caller replaces it with `chat.update`)."""
        self.write(final_text)
        exact = self._sent == escape(final_text)
        self._call(self._stream.stop, blocks=blocks, **metadata(exact))
        return exact

    def _call(self, method: Callable, **kwargs) -> None:
        started = self._stream.ts is not None
        if not started:  # this call may start the stream: a message may exist from here on, ts or not
            self.on_starting()
        try:
            method(**kwargs)
        except SlackApiError as exc:
            if is_transient(exc):
                raise
            code = error_code(exc)
            ts = self._stream.ts
            if ts is None:
                log.info("Slack refused to stream here (%s); posting instead", code)
                raise StreamRefused(code) from None
            log.warning("the stream of %s broke (%s); filling the message in instead", ts, code)
            raise StreamBroken(ts, code) from None
        if not started and self._stream.ts:
            self.on_started(self._stream.ts)
