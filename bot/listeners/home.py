"""The App Home tab: published when a user opens it; the admins' re-index button.

`app_home_opened` (also sent for the Messages tab: only `tab == "home"` is answered) records
the visit and publishes the user's home. The re-index button is only ever shown to admins, but
a block_actions payload can be forged by anyone who can reach the endpoint with a valid
signature of the workspace (any member's client can send one), so the click re-checks admin
status on the server before anything runs; a refused click changes nothing and republishes the
clicker's (non-admin) home. The re-index reports to the admin in their DM with the bot (a home
tab click has no response_url), and every recent visitor's home is republished when it ends.
"""
from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import home
from bot.admins import Admins
from bot.blocks.home import REINDEX_ACTION, home_texts
from bot.listeners.reindex import run_reindex
from bot.middleware import EVENT_ID_KEY
from bot.services import Services

log = logging.getLogger(__name__)


def register(app: App, services: Services) -> None:
    admins = Admins(services.settings)

    @app.event("app_home_opened")
    def on_home_opened(event: dict, context: BoltContext, client: WebClient) -> None:
        user = event.get("user")
        try:
            if event.get("tab") == "home" and user:
                if services.home_visits is not None:
                    services.home_visits.opened(user)
                home.publish(services, admins, client, user)
        finally:  # a home that failed to publish is published again on the next open: never resumed
            if context.get(EVENT_ID_KEY):
                services.deliveries.finish(context[EVENT_ID_KEY], "home")

    @app.action(REINDEX_ACTION)
    def on_reindex_click(ack: Ack, body: dict, client: WebClient) -> None:
        ack()
        user = (body.get("user") or {}).get("id") or ""
        if not admins.is_admin(client, user):
            log.warning("App Home re-index refused: %s is not an admin", user[:20] or "(no user)")
            if user:
                home.publish(services, admins, client, user)
            return
        _say(client, user)(text=home_texts()["reindex_started"])
        run_reindex(services, _say(client, user), user, rebuild=False,
                    after=lambda: home.republish_recent(services, admins, client))


def _say(client: WebClient, user: str):
    """A `respond` for run_reindex that writes to the admin's DM with the bot (chat.postMessage to a user id)."""
    def respond(text: str, blocks: Any = None, **_: Any) -> None:
        try:
            client.chat_postMessage(channel=user, text=text, blocks=blocks)
        except SlackApiError as exc:
            log.warning("could not tell %s about the re-index (%s)", user, exc.response.get("error"))
    return respond
