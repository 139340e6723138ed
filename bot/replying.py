"""Replying to a question in Slack: show that work is under way, then post (or fill in) the answer.

Progress is `assistant.threads.setStatus` (with rotating loading messages) wherever the
answer goes into a thread: assistant threads, and channel threads too since Slack let
`chat:write` set it there (changelog 2026-03-05); Slack clears it when the app replies.
A 👀 reaction on the question stands in where no status can be set (a top-level DM
answer, or a workspace that refuses the call). A
placeholder message, later replaced with `chat.update`, is for slow answers (an LLM
writing) so people see where the answer will appear.

Cosmetic calls (the progress marker, its removal, draft previews) never stop or delay
an answer: their failures are logged and ignored, and they go through a client that
retries a rate-limited call only when Slack asks to wait at most COSMETIC_MAX_WAIT_S
(the answer's own calls wait out any Retry-After: the answer is the point). The progress
marker is shown and removed on a background lane of its own, one call after the other,
so a 429 with `Retry-After: 20` on the 👀 cost the answer nothing (it used to cost 20.7 s).

Posting is idempotent per Slack event: every message answering an event carries message
`metadata` (`event_type` ANSWER_EVENT_TYPE, `event_payload` {"event_id", "complete"}), and
`find_posted` reads the thread back (`conversations.replies`, or `conversations.history`
for a top-level DM answer, with `include_all_metadata`) so a resumed or retried event
finds the answer it already posted instead of posting it twice. A stream whose ts never reached
the delivery log has no metadata yet: `orphan_streams` picks it out of the same read-back (the
bot's own message, after the question, in the time the start was under way, no answer metadata).
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.client import HTTPException
from typing import Any, Callable, Optional
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from bot.blocks.answer import Message

log = logging.getLogger(__name__)

ANSWER_EVENT_TYPE = "strategy_bot_answer"  # the metadata event type of every message answering an event
FIND_PAGES = 5  # pages of a thread read back looking for an earlier answer (200 messages each)
# Slack error codes that say "try again later" (HTTP 5xx and 429 are transient whatever the code).
TRANSIENT_ERRORS = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable",
                              "request_timeout"})
COSMETIC_MAX_WAIT_S = 2  # a cosmetic call is retried only when Retry-After is at most this
COSMETIC_TIMEOUT_S = 10  # seconds per cosmetic call (the answer's calls keep the client's 30)
# A message a stream start left behind has a ts in [mark - ORPHAN_SKEW_S, mark + ORPHAN_WINDOW_S], the mark
# being our clock just before chat.startStream: Slack's clock may differ by a few seconds, and the start can
# take the client's 30 s timeout plus waits for rate limits before Slack creates the message.
ORPHAN_SKEW_S = 10.0
ORPHAN_WINDOW_S = 120.0


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


def is_transient(exc: BaseException) -> bool:
    """A Slack failure worth retrying later: HTTP 5xx or 429, Slack's own "try later" codes, or no
    answer at all (connection refused or reset, a timeout, a broken HTTP exchange). Other OSErrors
    (a local file) are not: they would be retried for an hour without the user hearing of it."""
    if isinstance(exc, SlackApiError):
        status = getattr(exc.response, "status_code", 200) or 200
        return status >= 500 or status == 429 or error_code(exc) in TRANSIENT_ERRORS
    return isinstance(exc, (URLError, ConnectionError, TimeoutError, HTTPException))


def error_code(exc: BaseException) -> str:
    """Slack's error code (`channel_not_found`), or the exception's type for anything else."""
    if isinstance(exc, SlackApiError):
        try:
            return str(exc.response.get("error") or f"http_{exc.response.status_code}")
        except AttributeError:  # a body that is not JSON
            return f"http_{exc.response.status_code}"
    return type(exc).__name__


def orphan_candidates(messages: list[dict], *, bot_user_id: str | None, bot_id: str | None, question_ts: str,
                      marked_at: float) -> list[str]:
    """The ts of the messages that may be a stream this bot started for the question but never noted.

    Such a message is the bot's own (its `bot_id` or bot user, as `auth.test` says), after the question,
    created while the start was under way (ORPHAN_SKEW_S before the mark to ORPHAN_WINDOW_S after), and
    has no answer metadata: any message with it answers some event (this one's would have been found by
    `find_posted`). An earlier answer in the thread, the question, other people's messages are not.
    """
    low, high = marked_at - ORPHAN_SKEW_S, marked_at + ORPHAN_WINDOW_S
    found = []
    for message in messages:
        ts = str(message.get("ts") or "")
        try:
            when = float(ts)
        except ValueError:
            continue
        ours = (bot_id and message.get("bot_id") == bot_id) or (bot_user_id and message.get("user") == bot_user_id)
        answers_some_event = (message.get("metadata") or {}).get("event_type") == ANSWER_EVENT_TYPE
        if ours and not answers_some_event and when > float(question_ts) and low <= when <= high:
            found.append(ts)
    return found


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
    reaction: str = "eyes"
    event_id: str | None = None  # the Slack event answered: carried in each message's metadata
    placeholder_ts: str | None = None
    streamed: bool = False  # placeholder_ts is a streamed message (chat.startStream), maybe never stopped
    _shown: str | None = None  # "reaction" or "status" once the progress marker is up
    _shown_at: float = 0.0
    _sent_at: float | None = None
    _lane: ThreadPoolExecutor | None = None
    _thread_read: list[dict] | None = field(default=None, repr=False)
    _cosmetic_client: WebClient | None = field(default=None, repr=False)

    @property
    def cosmetic(self) -> WebClient:
        if self._cosmetic_client is None:
            self._cosmetic_client = cosmetic_client(self.client)
        return self._cosmetic_client

    def working(self, status: str, loading_messages: list[str] | None = None) -> None:
        """Show that the question is being answered (in the background: the answer does not wait)."""
        self._in_background(self._show_working, status, loading_messages)

    def placeholder(self, message: Message) -> None:
        """Post a stand-in message now; `send` will replace it in place."""
        if self.placeholder_ts:  # a resumed answer reuses the placeholder it posted before
            return
        response = self.client.chat_postMessage(channel=self.channel, thread_ts=self.thread_ts, text=message.text,
                                                blocks=message.blocks, unfurl_links=False, unfurl_media=False,
                                                **self._metadata(complete=False))
        self.placeholder_ts = response["ts"]

    def send(self, message: Message) -> str:
        """Post the message (or update the placeholder); returns its ts. Rate limits are retried by the client."""
        if self.placeholder_ts:
            if self.streamed:  # a stream an earlier attempt left open is closed first (else it may refuse updates)
                self._cosmetic("chat.stopStream", self.client.chat_stopStream, channel=self.channel,
                               ts=self.placeholder_ts)
                self.streamed = False
            self.client.chat_update(channel=self.channel, ts=self.placeholder_ts, text=message.text,
                                    blocks=message.blocks, **self._metadata(complete=True))
            ts = self.placeholder_ts
        else:
            response = self.client.chat_postMessage(channel=self.channel, thread_ts=self.thread_ts,
                                                    text=message.text, blocks=message.blocks,
                                                    unfurl_links=False, unfurl_media=False,
                                                    **self._metadata(complete=True))
            ts = str(response["ts"])
        self._sent_at = time.monotonic()
        return ts

    def find_posted(self) -> tuple[str, bool] | None:
        """(ts, complete) of the message this event's answer was posted as, if it is in Slack already;
        `complete` is False for a placeholder the answer never replaced (it is then reused)."""
        if not self.event_id:
            return None
        for message in self._read_back():
            metadata = message.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if metadata.get("event_type") == ANSWER_EVENT_TYPE and payload.get("event_id") == self.event_id:
                return str(message["ts"]), bool(payload.get("complete", True))
        return None

    def orphan_streams(self, *, bot_user_id: str | None, bot_id: str | None, marked_at: float) -> list[str]:
        """The ts of messages in the thread that a stream start marked at `marked_at` may have left
        (see `orphan_candidates`); read from the read-back `find_posted` did, or read now."""
        if not self.thread_ts:  # only thread replies are streamed
            return []
        return orphan_candidates(self._read_back(), bot_user_id=bot_user_id, bot_id=bot_id,
                                 question_ts=self.question_ts, marked_at=marked_at)

    def _read_back(self) -> list[dict]:
        """The thread (its parent and replies), or for a top-level DM answer the channel since the question,
        with metadata; read once per reply (FIND_PAGES pages at most), since a retry looks twice."""
        if self._thread_read is None:
            if self.thread_ts:
                pages = self._pages(self.client.conversations_replies, channel=self.channel, ts=self.thread_ts)
            else:
                pages = self._pages(self.client.conversations_history, channel=self.channel,
                                    oldest=self.question_ts)
            self._thread_read = [message for messages in pages for message in messages]
        return self._thread_read

    def resume_from(self, placeholder_ts: str, *, streamed: bool = False) -> None:
        """Carry on from a placeholder (or a stream) an earlier attempt posted: `send` replaces it."""
        self.placeholder_ts, self.streamed = placeholder_ts, streamed

    def sent(self) -> None:
        """The answer reached Slack another way (a stream that stopped): for clearing the status."""
        self._sent_at = time.monotonic()

    def metadata(self, complete: bool) -> dict:
        """The `metadata` argument marking a message as this event's answer (empty without an event)."""
        return self._metadata(complete=complete)

    @staticmethod
    def _pages(method: Callable[..., Any], **kwargs: Any):
        """The `messages` of each page of a conversations.* read (cursor pagination, FIND_PAGES at most)."""
        cursor = None
        for _ in range(FIND_PAGES):
            response = method(include_all_metadata=True, limit=200, cursor=cursor, **kwargs)
            yield response.get("messages") or []
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not response.get("has_more") or not cursor:
                return

    def _metadata(self, *, complete: bool) -> dict:
        if not self.event_id:
            return {}
        return {"metadata": {"event_type": ANSWER_EVENT_TYPE,
                             "event_payload": {"event_id": self.event_id, "complete": complete}}}

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

    def _show_working(self, status: str, loading_messages: list[str] | None = None) -> None:
        if self.thread_ts:
            if self._cosmetic("assistant.threads.setStatus", self.cosmetic.assistant_threads_setStatus,
                              channel_id=self.channel, thread_ts=self.thread_ts, status=status,
                              loading_messages=loading_messages or None):
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
