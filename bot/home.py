"""Publishing the App Home: gathering what one user's home shows, and republishing after a re-index.

Whether a user sees the admin part is decided here, on the server, with `bot.admins.Admins`
(ADMIN_USER_IDS, optionally workspace admins) at every publish — a non-admin's view never contains
the admin blocks, and the admin actions re-check it when clicked (bot/listeners/home.py). The data
comes from the knowledge base's public API (`status`) and the state stores (questions, feedback).
"""
from __future__ import annotations

import logging
import time

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.admins import Admins
from bot.blocks.home import AdminData, HomeData, home_texts, home_view
from bot.services import Services
from retrieval.embeddings import EmbeddingError
from retrieval.index_store import IndexError_, IndexMissing

log = logging.getLogger(__name__)

DAY_S = 24 * 3600


def gather(services: Services, user_id: str, admin: bool) -> HomeData:
    bounds = home_texts()["bounds"]
    status, problem = None, None
    try:
        status = services.kb.status()
    except IndexMissing:
        pass
    except (IndexError_, EmbeddingError) as exc:  # worded for people already
        problem = str(exc)
    except Exception:  # noqa: BLE001 - the home must still open; the log has the trace
        log.exception("App Home: the index status could not be read")
        problem = "the index could not be read; the logs have the details"
    recent = services.conversations.recent_questions(user_id, bounds["recent_questions"])
    return HomeData(status=status, problem=problem, recent=recent,
                    admin=_admin_data(services, bounds) if admin else None)


def _admin_data(services: Services, bounds: dict) -> AdminData:
    since, rows = time.time() - bounds["window_days"] * DAY_S, bounds["admin_rows"]
    return AdminData(declined=services.conversations.most_declined(since, rows),
                     disliked=services.feedback.most_disliked(since, rows),
                     cited=services.conversations.most_cited(since, rows),
                     max_upload_mb=services.settings.max_upload_mb)


def publish(services: Services, admins: Admins, client: WebClient, user_id: str) -> bool:
    """Publish `user_id`'s home (the admin part only if the server says they are an admin)."""
    admin = admins.is_admin(client, user_id)
    try:
        client.views_publish(user_id=user_id, view=home_view(gather(services, user_id, admin)))
    except SlackApiError as exc:
        log.warning("views.publish for %s failed (%s)", user_id, exc.response.get("error"))
        return False
    return True


def republish_recent(services: Services, admins: Admins, client: WebClient) -> int:
    """After a re-index: the homes of recent visitors (at most `republish_max`), so none shows the old index."""
    visits = services.home_visits
    if visits is None:
        return 0
    users = visits.recent(home_texts()["bounds"]["republish_max"])
    done = sum(publish(services, admins, client, user) for user in users)
    log.info("republished %d of %d App Homes after a re-index", done, len(users))
    return done
