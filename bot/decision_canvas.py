"""Saving a /strategy-check result as a canvas in its channel, or saying why it could not be.

Two ways in, as Slack offers them: `conversations.canvases.create` makes *the* channel canvas
(one per channel); when the channel has one already, or the workspace refuses channel canvases,
`canvases.create` with `channel_id` makes a standalone canvas tabbed in (and so shared with) the
channel. Free workspaces, workspaces with canvases switched off, or a missing scope refuse both:
`CanvasRefused` then carries Slack's error code, and the caller posts the plain Markdown export
instead. Neither call is repeated blind after a 5xx (bot/app.py, NOT_BLINDLY_REPEATED): it may
have created the canvas already.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)

MARKDOWN_LIMIT = 1_000_000  # Slack: document_content markdown is limited to 1 MiB
# conversations.canvases.create errors after which a standalone canvas in the channel may still work.
TRY_STANDALONE = frozenset({"channel_canvas_already_exists", "free_team_canvas_tab_already_exists",
                            "team_tier_cannot_create_channel_canvases", "channel_canvas_creation_failed",
                            "canvas_tab_creation_failed", "restricted_action", "not_allowed"})


class CanvasRefused(Exception):
    """Slack would not create a canvas here; `code` is its error (e.g. free_team_canvas_not_allowed)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Canvas:
    canvas_id: str
    channel_canvas: bool  # the channel's own canvas, or a standalone one tabbed in the channel


def create_canvas(client: WebClient, channel: str, title: str, markdown: str) -> Canvas:
    """A canvas in `channel` holding `markdown`; CanvasRefused when the workspace will not have one."""
    content = {"type": "markdown", "markdown": markdown[:MARKDOWN_LIMIT]}
    try:
        reply = client.conversations_canvases_create(channel_id=channel, title=title, document_content=content)
        return Canvas(str(reply["canvas_id"]), True)
    except SlackApiError as exc:
        code = _code(exc)
        if code not in TRY_STANDALONE:
            raise CanvasRefused(code) from None
        log.info("no channel canvas in %s (%s): creating a standalone canvas tabbed in the channel", channel, code)
    try:
        reply = client.canvases_create(title=title, document_content=content, channel_id=channel)
    except SlackApiError as exc:
        raise CanvasRefused(_code(exc)) from None
    return Canvas(str(reply["canvas_id"]), False)


def canvas_url(team_domain: str | None, team_id: str | None, canvas_id: str) -> str | None:
    """The canvas's address in the Slack client, when the click said which workspace it came from."""
    if not (team_domain and team_id and team_domain.replace("-", "").isalnum() and canvas_id.isalnum()):
        return None
    return f"https://{team_domain}.slack.com/docs/{team_id}/{canvas_id}"


def _code(exc: SlackApiError) -> str:
    return str((exc.response or {}).get("error") or "unknown_error")
