"""Every feature's Slack listeners, registered on the app in a fixed order.

Each feature is a module here with `register(app, services) -> None`; add its name to
MODULES. Bolt runs only the first listener whose matchers accept a request, so keep
matchers specific (a listener that takes every message would hide the others).
After all features, `register_fallbacks` acknowledges events nobody wanted: Bolt
would otherwise answer 404, Slack would retry, and repeated failures get an app's
event subscriptions disabled.
"""
from __future__ import annotations

import importlib
import logging
import re
from typing import Callable, Iterable

from slack_bolt import App, BoltContext

from bot.middleware import EVENT_ID_KEY

log = logging.getLogger(__name__)

# Feature modules, in registration order.
# "uploads" comes before "answers": it takes DM messages that carry files, which are never questions.
# "assistant" installs Bolt's Assistant middleware (questions in the agent view's threads); "shortcut" is the
# "Ask strategy-bot about this message" message shortcut; "home" publishes the App Home.
MODULES: list[str] = ["uploads", "answers", "feedback", "strategy_check", "reindex", "assistant", "shortcut", "home"]


def register_all(app: App, services, extra: Iterable[Callable[[App, object], None]] = ()) -> None:
    for name in MODULES:
        importlib.import_module(f"{__name__}.{name}").register(app, services)
    for register in extra:
        register(app, services)
    register_fallbacks(app, services)


def register_fallbacks(app: App, services=None) -> None:
    @app.event(re.compile(".*"))
    def unhandled_event(event: dict, context: BoltContext) -> None:
        """Acknowledged (Bolt acks events before this runs) and otherwise ignored: its delivery is finished,
        or the resumer would offer it again once its lease ran out."""
        log.debug("no feature handles %s/%s events", event.get("type"), event.get("subtype") or "-")
        if services is not None and context.get(EVENT_ID_KEY):
            services.deliveries.finish(context[EVENT_ID_KEY], "ignored")
