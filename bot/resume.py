"""The resumer: answers events that were acknowledged but never finished.

After a crash (or a transient Slack failure that released an event) Slack will not send
the event again: it had its 200. Every few seconds (a third of DELIVERY_LEASE_S, 2 s at most) the
resumer asks the delivery log for due events (pending, nobody's lease running), claims
each with a lease of its own and runs it.

How it runs one: the recorded event callback is dispatched through the same Bolt app
as a live request, as a `BoltRequest` in Socket Mode form (a dict body). Why this way
rather than calling the answer functions directly: Bolt then does everything it does for a
live event (authorization and the bot user id in the context, the client, listener
matching in the same order: a DM with files goes to uploads, a follow-up is recognised
as one, an event nobody handles is finished by the fallback), so a resumed event takes
exactly the code path a live one does, and no feature has to know about resuming. Why
Socket Mode form: Bolt checks no HTTP signature for it (there is no HTTP request to
sign: the body was verified when it arrived); it is built here, never from the network.
The context carries RESUMED_KEY (the attempt number), which tells the delivery middleware
that the event is claimed already; nothing from a request can set it.
"""
from __future__ import annotations

import logging
import threading

from slack_bolt import App, BoltRequest

from bot.middleware import RESUMED_KEY
from bot.services import Services

log = logging.getLogger(__name__)

READY_POLL_S = 0.5  # how often the resumer looks whether the index has loaded
MAX_INTERVAL_S = 2.0  # a released event waits its backoff plus at most this (one indexed SELECT a round)


class Resumer:
    """A background thread claiming and dispatching due events; `start()` once, `stop()` at shutdown."""

    def __init__(self, app: App, services: Services) -> None:
        self.app = app
        self.services = services
        self.interval_s = min(services.deliveries.lease_s / 3, MAX_INTERVAL_S)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> threading.Thread:
        self._thread = threading.Thread(target=self._run, name="delivery-resumer", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        readiness = self.services.readiness
        # Once the index is loaded (or failed to load: the answer then says so), so a resumed question
        # is answered like a live one instead of waiting in a worker for the load.
        while not (readiness.loaded.is_set() or readiness.error) and not self._stop.wait(READY_POLL_S):
            pass
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # a locked database, say: the next round tries again
                log.exception("resuming deliveries failed")
            self._stop.wait(self.interval_s)

    def run_once(self) -> int:
        """Claim and dispatch the due events this process has room for; returns how many."""
        deliveries = self.services.deliveries
        room = 2 * self.services.settings.slack_workers - deliveries.held()  # a queue ahead of the workers
        started = 0
        for event_id in deliveries.due(limit=max(room, 0)):
            claim = deliveries.claim(event_id)
            if claim is None:  # another process (or a Slack retry) got it first
                continue
            self.dispatch(event_id, claim.attempt)
            started += 1
        return started

    def dispatch(self, event_id: str, attempt: int) -> None:
        """Run a claimed event's recorded body through the app, as a live event."""
        deliveries = self.services.deliveries
        body = deliveries.body(event_id)
        if not body or body.get("type") != "event_callback" or not isinstance(body.get("event"), dict):
            log.warning("cannot resume %s: its recorded body is unreadable", event_id)
            deliveries.fail(event_id, "unreadable_body")
            return
        log.info("resuming %s (attempt %d)", event_id, attempt)
        request = BoltRequest(body=body, mode="socket_mode", context={RESUMED_KEY: attempt})
        try:
            response = self.app.dispatch(request)
        except Exception:
            log.exception("resuming %s failed", event_id)
            deliveries.release(event_id)
            return
        if response.status != 200:  # Bolt refused it before any listener (authorization failed...)
            log.warning("resuming %s: the app answered %s; it will be retried", event_id, response.status)
            deliveries.release(event_id)
