"""Who may change the knowledge base from Slack.

Admins are the user ids in ADMIN_USER_IDS; with ALLOW_WORKSPACE_ADMINS=true, also the
workspace's admins and owners as `users.info` reports them. When Slack cannot be
asked (an error, a rate limit) the answer is "no": refusing an admin once is a
nuisance, letting anyone re-index is not. Workspace roles are cached for a minute so
a burst of uploads costs one `users.info` call.
"""
from __future__ import annotations

import logging
import threading
import time

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from strategy_bot.settings import Settings

log = logging.getLogger(__name__)

ROLE_CACHE_SECONDS = 60.0


class Admins:
    """`is_admin(client, user_id)`; one per app (holds the small role cache)."""

    def __init__(self, settings: Settings, cache_seconds: float = ROLE_CACHE_SECONDS) -> None:
        self.listed = frozenset(settings.admin_user_ids)
        self.allow_workspace_admins = settings.allow_workspace_admins
        self.cache_seconds = cache_seconds
        self._roles: dict[str, tuple[float, bool]] = {}
        self._lock = threading.Lock()

    def is_admin(self, client: WebClient, user_id: str | None) -> bool:
        if not user_id:
            return False
        if user_id in self.listed:
            return True
        if not self.allow_workspace_admins:
            return False
        return self._workspace_admin(client, user_id)

    def _workspace_admin(self, client: WebClient, user_id: str) -> bool:
        now = time.monotonic()
        with self._lock:
            cached = self._roles.get(user_id)
        if cached and now - cached[0] < self.cache_seconds:
            return cached[1]
        try:
            user = client.users_info(user=user_id).get("user") or {}
        except SlackApiError as exc:
            log.warning("users.info for %s failed (%s): treated as not an admin", user_id,
                        exc.response.get("error"))
            return False
        except OSError as exc:
            log.warning("users.info for %s failed (%s): treated as not an admin", user_id, exc)
            return False
        admin = is_workspace_admin(user)
        with self._lock:
            self._roles[user_id] = (now, admin)
        return admin


def is_workspace_admin(user: dict) -> bool:
    """An active, full member who is a workspace admin or owner (guests never are)."""
    if user.get("deleted") or user.get("is_restricted") or user.get("is_ultra_restricted"):
        return False
    return bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))
