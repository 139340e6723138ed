"""`/strategy-reindex`: admins refresh the knowledge base from Slack; anyone may see its status.

The command is acknowledged at once (an empty ack: nothing is echoed to the channel);
everything after goes to the requester as ephemeral messages through the command's
`response_url` — a start notice, a progress note or two on a long build, then the
summary. Slack allows five uses of a `response_url`, so progress is throttled.
The build itself is `KnowledgeBase.reindex`, the CLI's code path: built aside, swapped
in atomically, one at a time (a second request gets `IndexBusy` and is told so).
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Optional

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.admins import Admins
from bot.blocks.answer import Message
from bot.blocks.reindex import documents_message, reindex_texts, status_message, summary_message, text_message
from bot.blocks.text import escape
from bot.home import republish_recent
from bot.services import Services
from retrieval.embeddings import EmbeddingError
from retrieval.index_store import IndexBusy, IndexError_, IndexMissing

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 20.0  # at most one progress note per this many seconds…
MAX_PROGRESS_NOTES = 2  # …and at most two: start + 2 + summary stays within response_url's five uses


def register(app: App, services: Services) -> None:
    admins = Admins(services.settings)
    command = reindex_texts()["command"]

    @app.command(command)
    def on_reindex(ack: Ack, command: dict, respond: Respond, client: WebClient) -> None:
        ack()
        handle(services, admins, client, respond, command.get("user_id", ""), command.get("text") or "")


def handle(services: Services, admins: Admins, client: WebClient, respond: Respond, user_id: str,
           text: str) -> None:
    """Dispatch on the first word: (nothing) / rebuild, status, list, help."""
    option = (text.strip().split() or [""])[0].lower()
    if option in {"", "rebuild"}:
        if not admins.is_admin(client, user_id):
            _say(respond, text_message("not_admin"))
            return
        run_reindex(services, respond, user_id, rebuild=option == "rebuild",
                    after=lambda: _republish_homes(services, admins, client))
    elif option == "status":
        _say(respond, _status(services))
    elif option == "list":
        _say(respond, _documents(services))
    elif option == "help":
        _say(respond, text_message("help", max_mb=services.settings.max_upload_mb))
    else:
        _say(respond, text_message("unknown_option", option=escape(option[:40]),
                                   usage=reindex_texts()["usage"]))


def run_reindex(services: Services, respond: Respond, user_id: str, *, rebuild: bool,
                after: Optional[Callable[[], object]] = None) -> None:
    """Start notice, the build (throttled progress notes), then the summary or the reason it failed;
    `after` runs once a build succeeded (the App Homes are republished with the new index)."""
    texts = reindex_texts()
    _say(respond, text_message("started", rebuild=texts["started_rebuild_suffix"] if rebuild else ""))
    try:
        summary = services.kb.reindex(rebuild=rebuild, built_by=user_id, progress=throttled_progress(respond))
    except IndexBusy:
        _say(respond, text_message("busy"))
        return
    except (IndexError_, EmbeddingError) as exc:
        _say(respond, text_message("failed", reason=escape(str(exc))))
        return
    except Exception:  # the old index keeps serving; the requester must not wait forever
        log.exception("re-index requested by %s failed", user_id)
        _say(respond, text_message("failed_unexpected"))
        return
    log.info("re-index by %s: +%d ~%d -%d =%d, %d chunks, %.1f s", user_id, len(summary.added),
             len(summary.changed), len(summary.removed), len(summary.unchanged), summary.chunks, summary.seconds)
    _say(respond, summary_message(summary))
    if after is not None:
        try:
            after()
        except Exception:  # noqa: BLE001 - the build is done and reported; a stale home is only cosmetic
            log.exception("after the re-index by %s: republishing the App Homes failed", user_id)


def _republish_homes(services: Services, admins: Admins, client: WebClient) -> None:
    republish_recent(services, admins, client)


def throttled_progress(respond: Respond, every_s: float = PROGRESS_EVERY_S,
                       limit: int = MAX_PROGRESS_NOTES) -> Callable[[str, int, int], None]:
    """A build `progress` callback that tells the requester now and then, never more than `limit` times."""
    state = {"last": time.monotonic(), "sent": 0}
    lock = threading.Lock()

    def progress(stage: str, done: int, total: int) -> None:
        with lock:
            now = time.monotonic()
            if state["sent"] >= limit or now - state["last"] < every_s or not total or done >= total:
                return
            state.update(last=now, sent=state["sent"] + 1)
        _say(respond, text_message("progress", stage=escape(stage), done=done, total=total))

    return progress


def _status(services: Services) -> Message:
    return _about_index(services, lambda: status_message(services.kb.status()))


def _documents(services: Services) -> Message:
    return _about_index(services, lambda: documents_message(services.kb.documents()))


def _about_index(services: Services, describe: Callable[[], Message]) -> Message:
    """`status` and `list` always answer: with no index, a damaged one, or one that cannot be
    loaded, they say so in words (and how to fix it) instead of leaving the requester waiting."""
    try:
        return describe()
    except IndexMissing:
        return status_message(None)
    except (IndexError_, EmbeddingError) as exc:
        return text_message("status_problem", reason=escape(str(exc)))
    except Exception:  # noqa: BLE001 - whatever it is, the requester gets an answer
        log.exception("/strategy-reindex status: the index could not be read")
        return text_message("status_problem", reason="the index could not be read; the logs have the details")


def _say(respond: Respond, message: Message) -> None:
    """An ephemeral note to the requester; a failed note is logged, never fatal to the build."""
    try:
        respond(text=message.text, blocks=message.blocks, response_type="ephemeral")
    except Exception as exc:  # noqa: BLE001 - Slack being unreachable must not abort a re-index
        log.warning("could not send a /strategy-reindex note: %s", exc)
