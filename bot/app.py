"""`build_app`: the Bolt app of the bot, wired to the Web API at SLACK_API_URL.

The same app serves HTTP mode (through `bot.server`'s WSGI server) and Socket Mode.
Listeners run after the ack (`process_before_response=False`) on the services'
executor, so Slack gets its 200 in milliseconds whatever the answer costs.
"""
from __future__ import annotations

import logging
from typing import Callable, Iterable

from slack_bolt import App
from slack_bolt.error import BoltError
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest

from bot import middleware
from bot.listeners import register_all
from bot.services import Services
from strategy_bot.settings import Settings

log = logging.getLogger(__name__)

RATE_LIMIT_RETRIES = 3  # each waits Slack's Retry-After (plus up to 1 s of jitter)
SERVER_ERROR_RETRIES = 2  # after 0.5 s, then 1 s (slack_sdk's backoff)
# Calls that may have taken effect although Slack answered 5xx or the connection dropped: never repeated
# blind. The answer's chat.postMessage is repeated by the resumer after reading the thread back; a stream's
# start would make a second message and a repeated append would show its text twice (the answer is then
# filled in with chat.update instead: bot/streaming.py). A canvas call that failed that way may have created
# the canvas: the clicker is told, and can click again.
NOT_BLINDLY_REPEATED = ("/chat.postMessage", "/chat.startStream", "/chat.appendStream", "/canvases.create",
                        "/conversations.canvases.create")
Register = Callable[[App, Services], None]


class SlackSetupError(RuntimeError):
    """Slack refused the bot's token at start-up; the message says what to fix (never the token)."""


class _RepeatableOnly:
    """Mixin for slack_sdk retry handlers: no retry of a call in NOT_BLINDLY_REPEATED (a 429 is always
    safe to retry: Slack refused it before doing anything)."""

    def _can_retry(self, *, state, request: HttpRequest, response=None, error=None) -> bool:
        if request.url.split("?")[0].endswith(NOT_BLINDLY_REPEATED):
            return False
        return super()._can_retry(state=state, request=request, response=response, error=error)  # type: ignore


class RepeatableServerErrorRetry(_RepeatableOnly, ServerErrorRetryHandler):
    """slack_sdk's retry of HTTP 500/503, for calls that can be repeated."""


class RepeatableConnectionErrorRetry(_RepeatableOnly, ConnectionErrorRetryHandler):
    """slack_sdk's retry of dropped connections, for calls that can be repeated."""


def make_web_client(settings: Settings) -> WebClient:
    """A Web API client that retries rate-limited calls after `Retry-After`, and server errors and dropped
    connections with a backoff (except posting a message: see NOT_BLINDLY_REPEATED)."""
    return WebClient(
        token=settings.slack_bot_token or None,
        base_url=_with_slash(settings.slack_api_url),
        retry_handlers=[RepeatableConnectionErrorRetry(max_retry_count=2),
                        RateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
                        RepeatableServerErrorRetry(max_retry_count=SERVER_ERROR_RETRIES)],
    )


class _SkipTokenNotice(logging.Filter):
    """Bolt also reads SLACK_BOT_TOKEN from the environment and then warns that the client we pass
    wins; it does (that is the point), so the warning would only confuse whoever reads the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


BOLT_LOGGER = logging.getLogger("strategy_bot.slack")
BOLT_LOGGER.addFilter(_SkipTokenNotice())


def build_app(services: Services, extra_listeners: Iterable[Register] = ()) -> App:
    """The Bolt app with every feature's listeners (`extra_listeners` go before the catch-all ones)."""
    settings = services.settings
    try:
        app = App(
            client=make_web_client(settings),
            signing_secret=settings.slack_signing_secret,
            process_before_response=False,
            listener_executor=services.executor,
            logger=BOLT_LOGGER,
        )
    except BoltError as exc:  # auth.test failed: Bolt's message names Slack's error code, not the token
        raise SlackSetupError(f"Slack did not accept SLACK_BOT_TOKEN: {exc}") from None
    middleware.install(app, services)
    register_all(app, services, extra_listeners)
    return app


def _with_slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"
