"""Replying to a question in Slack: show that work is under way, then post (or fill in) the answer.

Progress is a 👀 reaction on the question, or `assistant.threads.setStatus` in an
assistant thread (a DM thread: Slack clears that status when the app replies). A
placeholder message, later replaced with `chat.update`, is for slow answers (an LLM
writing) so people see where the answer will appear.

Cosmetic calls (the progress marker, its removal, draft previews) never stop or delay
an answer: their failures are logged and ignored, and they go through a client that
retries a rate-limited call only when Slack asks to wait at most COSMETIC_MAX_WAIT_S
(the answer's own calls wait out any Retry-After: the answer is the point). The progress
marker is shown and removed on a background lane of its own, one call after the other,
so a 429 with `Retry-After: 20` on the 👀 cost the answer nothing (it used to cost 20.7 s).
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from bot.blocks.answer import Message

log = logging.getLogger(__name__)

COSMETIC_MAX_WAIT_S = 2  # a cosmetic call is retried only when Retry-After is at most this
COSMETIC_TIMEOUT_S = 10  # seconds per cosmetic call (the answer's calls keep the client's 30)


class ShortRateLimitRetry(RateLimitErrorRetryHandler):
    """slack_sdk's rate-limit retry, but only when Slack asks to wait at most `max_wait_s`:
    past that, the call is given up (the 429 surfaces as a SlackApiError) instead of sleeping."""

    def __init__(self, max_wait_s: float, max_retry_count: int = 1) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait_s = max_wait_s

    def _can_retry(self, *, state: RetryState, request: HttpRequest, response: Optional[HttpResponse] = None,
                   error: Optional[Exception] = None) -> bool:
        return super()._can_retry(state=state, request=request, response=response, error=error) \
            and response is not None and retry_after_s(response) <= self.max_wait_s


def retry_after_s(response: HttpResponse) -> float:
    """The `Retry-After` of a 429 in seconds (1 when absent or unreadable, as slack_sdk assumes)."""
    for name, values in response.headers.items():
        if name.lower() == "retry-after":
            value = values[0] if isinstance(values, list) and values else values
            try:
                return float(value)
            except (TypeError, ValueError):
                return 1.0
    return 1.0


def cosmetic_client(client: WebClient) -> WebClient:
    """A client for calls the answer does not need: same token and API, short waits."""
    return WebClient(token=client.token, base_url=client.base_url, timeout=COSMETIC_TIMEOUT_S,
                     retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=1),
                                     ShortRateLimitRetry(max_wait_s=COSMETIC_MAX_WAIT_S)])


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
    _shown: str | None = None  # "reaction" or "status" once the progress marker is up
    _shown_at: float = 0.0
    _sent_at: float | None = None
    _lane: ThreadPoolExecutor | None = None
    _cosmetic_client: WebClient | None = field(default=None, repr=False)

    @property
    def cosmetic(self) -> WebClient:
        if self._cosmetic_client is None:
            self._cosmetic_client = cosmetic_client(self.client)
        return self._cosmetic_client

    def working(self, status: str) -> None:
        """Show that the question is being answered (in the background: the answer does not wait)."""
        self._in_background(self._show_working, status)

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
            ts = self.placeholder_ts
        else:
            response = self.client.chat_postMessage(channel=self.channel, thread_ts=self.thread_ts,
                                                    text=message.text, blocks=message.blocks,
                                                    unfurl_links=False, unfurl_media=False)
            ts = str(response["ts"])
        self._sent_at = time.monotonic()
        return ts

    def progress(self, message: Message) -> None:
        """Show the answer so far in the placeholder (an LLM writing); a failed update only costs the preview.

        In line, not in the background: a late preview must never overwrite the final answer.
        """
        if self.placeholder_ts:
            self._cosmetic("chat.update", self.cosmetic.chat_update, channel=self.channel, ts=self.placeholder_ts,
                           text=message.text, blocks=message.blocks)

    def done(self) -> None:
        """Take the progress marker off once its own call has finished (in the background); idempotent."""
        if self._lane is not None:
            self._lane.submit(self._clear_working)
            self._lane.shutdown(wait=False)  # its thread ends once the lane is empty
            self._lane = None

    # ------------------------------------------------------------------ the background lane

    def _in_background(self, call: Callable[..., None], *args: Any) -> None:
        """Run cosmetic calls one after the other on this reply's own thread, off the answer's path."""
        if self._lane is None:
            self._lane = ThreadPoolExecutor(max_workers=1, thread_name_prefix="slack-cosmetic")
        self._lane.submit(call, *args)

    def _show_working(self, status: str) -> None:
        if self.assistant_thread and self.thread_ts:
            if self._cosmetic("assistant.threads.setStatus", self.cosmetic.assistant_threads_setStatus,
                              channel_id=self.channel, thread_ts=self.thread_ts, status=status):
                self._shown, self._shown_at = "status", time.monotonic()
                return
        if self._cosmetic("reactions.add", self.cosmetic.reactions_add, channel=self.channel,
                          timestamp=self.question_ts, name=self.reaction):
            self._shown, self._shown_at = "reaction", time.monotonic()

    def _clear_working(self) -> None:
        if self._shown == "reaction":
            self._cosmetic("reactions.remove", self.cosmetic.reactions_remove, channel=self.channel,
                           timestamp=self.question_ts, name=self.reaction)
        elif self._shown == "status" and (self._sent_at is None or self._shown_at > self._sent_at):
            # Slack clears the status when the app replies, but not one set after the reply was posted.
            self._cosmetic("assistant.threads.setStatus", self.cosmetic.assistant_threads_setStatus,
                           channel_id=self.channel, thread_ts=self.thread_ts, status="")
        self._shown = None

    @staticmethod
    def _cosmetic(method: str, call: Callable[..., Any], **kwargs: Any) -> bool:
        try:
            call(**kwargs)
            return True
        except SlackApiError as exc:
            log.info("%s failed (%s); carrying on", method, exc.response.get("error"))
        except OSError as exc:  # connection trouble: the answer itself may still get through
            log.info("%s failed (%s); carrying on", method, exc)
        return False
