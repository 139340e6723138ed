"""Global Bolt middleware shared by every feature: drop noise, record and claim each event.

Both run after Bolt's own checks (signature, authorization, the bot's own events) and
before any listener, inside the 3-second ack window, so each is one dict lookup or a
few SQLite statements. The event is recorded (body included) before Bolt acknowledges
it, so an acknowledged event survives a crash (bot/state/deliveries.py). A dropped
request is still acknowledged with 200: otherwise Slack would retry it, and eventually
disable the app's event subscriptions. A failure to record it is not acknowledged
(Bolt answers 500), so Slack sends it again.
"""
from __future__ import annotations

import logging
from typing import Callable

from slack_bolt import App, BoltRequest, BoltResponse

from bot.services import Services

log = logging.getLogger(__name__)

# Message subtypes that are never a question to answer: edits, deletions, bots, thread bookkeeping.
NOISE_SUBTYPES = frozenset({"bot_message", "message_changed", "message_deleted", "message_replied"})
EVENT_ID_KEY = "event_id"
ATTEMPT_KEY = "delivery_attempt"  # 1: first delivery; more: it may be answered already (check the thread)
RESUMED_KEY = "resumed_attempt"  # set by the resumer on events it claimed itself (never by a request)


def is_noise(event: dict) -> bool:
    """A bot's message or mention (ours or another app's), an edit or a deletion."""
    if event.get("type") not in {"message", "app_mention"}:
        return False
    return bool(event.get("bot_id") or event.get("bot_profile") or event.get("subtype") in NOISE_SUBTYPES)


def ignore_noise(req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]) -> BoltResponse:
    event = req.body.get("event") if req.body.get("type") == "event_callback" else None
    if isinstance(event, dict) and is_noise(event):
        log.debug("ignored %s/%s event", event.get("type"), event.get("subtype") or "-")
        return BoltResponse(status=200, body="")
    return next()


def deduplicate(services: Services) -> Callable[..., BoltResponse]:
    """Middleware recording each `event_id` and claiming it for this process; a delivery of an event
    that is finished, or held by a live lease (here or on another process), is acknowledged and dropped."""

    def middleware(req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]) -> BoltResponse:
        event_id = req.body.get("event_id") if req.body.get("type") == "event_callback" else None
        if not event_id:
            return next()
        resumed = req.context.get(RESUMED_KEY)
        if resumed:  # the resumer claimed it already
            req.context[EVENT_ID_KEY], req.context[ATTEMPT_KEY] = str(event_id), int(resumed)
            return next()
        claim = services.deliveries.receive(str(event_id), req.body)
        if claim is None:
            retry = (req.headers.get("x-slack-retry-num") or ["-"])[0]
            log.info("duplicate delivery of %s (retry %s) dropped", event_id, retry)
            return BoltResponse(status=200, body="")
        req.context[EVENT_ID_KEY], req.context[ATTEMPT_KEY] = claim.event_id, claim.attempt
        return next()

    return middleware


def install(app: App, services: Services) -> None:
    """Noise first (no need to remember events we never act on), then de-duplication."""
    app.use(ignore_noise)
    app.use(deduplicate(services))
