"""Documents shared with the bot in a direct message: an admin's are stored and indexed.

Slack sends a `message` event (subtype `file_share`, with `files`); we ask `files.info`
for each file's name, size and `url_private_download`, refuse what we could never
index before downloading it (type, size), download it with the bot token, and hand the
bytes to `knowledge.uploads.store_upload` (safe name, no overwriting, must parse).
Then one re-index — the same code path as `/strategy-reindex` — and a reply saying
what was added. Non-admins' files are never downloaded; they get a polite reply.

This listener takes every DM message that carries files, so the question listener
(`answers.py`, which only takes plain messages) never answers a file share; it is
registered before `answers` so it wins even for a file message without a subtype.
"""
from __future__ import annotations

import http.client
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

from slack_bolt import App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.admins import Admins
from bot.blocks.answer import Message
from bot.blocks.reindex import UploadOutcome, text_message, upload_message
from bot.blocks.text import escape
from bot.middleware import EVENT_ID_KEY
from bot.services import Services
from knowledge.parsers import ParseLimits
from knowledge.uploads import StoredUpload, UploadRejected, check_upload, safe_file_name, store_upload
from retrieval.embeddings import EmbeddingError
from retrieval.index_store import IndexBusy, IndexError_

log = logging.getLogger(__name__)

MAX_FILES_PER_MESSAGE = 10
DOWNLOAD_TIMEOUT_S = 60
CHUNK_BYTES = 1 << 16
SLACK_FILE_HOSTS = frozenset({"files.slack.com"})  # where `url_private_download` points
MAX_REDIRECTS = 3
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})


class DownloadError(RuntimeError):
    """The file could not be fetched from Slack; the message says why (never the token)."""


@dataclass(frozen=True)
class SharedFile:
    id: str
    name: str
    size: int
    download_url: str


def register(app: App, services: Services) -> None:
    admins = Admins(services.settings)

    @app.event("message", matchers=[carries_files])
    def on_file_share(event: dict, client: WebClient, context: BoltContext) -> None:
        try:
            handle_file_share(services, admins, client, event)
        except Exception:  # the sender must hear back even when something unforeseen broke
            log.exception("handling the files shared in %s failed", event.get("channel"))
            _tell_failure(client, event["channel"])
        finally:
            if context.get(EVENT_ID_KEY):
                services.deliveries.finish(context[EVENT_ID_KEY])


def carries_files(event: dict) -> bool:
    """A person's direct message with files attached (Slack marks most with subtype `file_share`).

    Files shared in channels are people talking to each other, not documents for us.
    """
    return (event.get("channel_type") == "im" and "user" in event and not event.get("bot_id")
            and (event.get("subtype") == "file_share" or bool(event.get("files"))))


def handle_file_share(services: Services, admins: Admins, client: WebClient, event: dict) -> None:
    channel, user = event["channel"], event.get("user", "")
    if not admins.is_admin(client, user):
        _post(client, channel, text_message("upload_not_admin"))
        return
    files = [f for f in event.get("files") or [] if f.get("id")][:MAX_FILES_PER_MESSAGE]
    names = ", ".join(f"`{escape(str(f.get('name') or f['id']))}`" for f in files) or "your message"
    _post(client, channel, text_message("upload_started", names=names))
    outcomes, stored = ingest(services, client, files, uploaded_by=user)
    if not stored:
        _post(client, channel, upload_message(outcomes))
        return
    _post(client, channel, reindex_and_report(services, user, outcomes, stored))


def ingest(services: Services, client: WebClient, files: list[dict], uploaded_by: str = ""
           ) -> tuple[list[UploadOutcome], list[StoredUpload]]:
    """Fetch, check and store each file; a refused file does not stop the others.

    With a shared database the file is also recorded there (knowledge/upload_registry.py), so a
    build on any replica indexes it."""
    settings = services.settings
    outcomes: list[UploadOutcome] = []
    stored: list[StoredUpload] = []
    for item in files:
        name = str(item.get("name") or item["id"])
        try:
            shared = file_info(client, item["id"])
            name = shared.name
            check_upload(safe_file_name(shared.name), shared.size, settings.max_upload_mb * 1_048_576)
            data = download(shared, settings.slack_bot_token, settings.slack_api_url,
                            settings.max_upload_mb * 1_048_576)
            result = _store(services, shared.name, data, uploaded_by)
        except (UploadRejected, DownloadError) as exc:
            outcomes.append(UploadOutcome(name=name, reason=str(exc)))
            continue
        log.info("stored %s (%d bytes) as %s", name, len(data), result.path)
        stored.append(result)
        outcomes.append(UploadOutcome(name=name, stored_as=result.path.name, title=result.title,
                                      created=result.created))
    return outcomes, stored


def _store(services: Services, name: str, data: bytes, uploaded_by: str) -> StoredUpload:
    settings = services.settings
    options = dict(knowledge_dirs=settings.knowledge_dirs, limits=ParseLimits.from_settings(settings))
    registry = services.kb.uploads
    if registry is None:
        return store_upload(settings.upload_dir, name, data, **options)
    return registry.store(settings.upload_dir, name, data, uploaded_by=uploaded_by, **options)


def reindex_and_report(services: Services, user: str, outcomes: list[UploadOutcome],
                       stored: list[StoredUpload]) -> Message:
    # Re-indexed even when every file was already stored: an earlier try may have stored it but
    # found a re-index running; a no-change re-index costs about a second.
    files = ", ".join(f"`{escape(s.path.name)}`" for s in stored)
    try:
        summary = services.kb.reindex(built_by=user)
    except IndexBusy:
        return text_message("upload_busy", files=files)
    except (IndexError_, EmbeddingError) as exc:
        return text_message("upload_index_failed", files=files, reason=escape(str(exc)))
    chunks = {d.doc_id: d.chunks for d in services.kb.documents()}
    indexed = [UploadOutcome(o.name, o.stored_as, o.title, _chunks_of(o, stored, chunks), o.created, o.reason)
               for o in outcomes]
    return upload_message(indexed, summary)


def _chunks_of(outcome: UploadOutcome, stored: list[StoredUpload], chunks: dict[str, int]) -> int:
    for item in stored:
        if item.path.name == outcome.stored_as:
            return chunks.get(item.doc_id, 0)
    return 0


def file_info(client: WebClient, file_id: str) -> SharedFile:
    """Name, size and download address from `files.info` (the event's copy may be partial)."""
    try:
        info = client.files_info(file=file_id)["file"]
    except SlackApiError as exc:
        raise DownloadError(f"Slack would not describe the file ({exc.response.get('error')})") from None
    url = info.get("url_private_download") or info.get("url_private")
    if not url or info.get("mode") in {"external", "snippet", "post", "tombstone"}:
        raise UploadRejected("it is not a file stored in Slack that I can download")
    return SharedFile(id=file_id, name=str(info.get("name") or file_id), size=int(info.get("size") or 0),
                      download_url=url)


def download(shared: SharedFile, token: str, api_url: str, max_bytes: int) -> bytes:
    """The file's bytes, fetched with `Authorization: Bearer <bot token>`, never more than `max_bytes`.

    Why not a library: slack_sdk has no download helper; this is one GET with a size cap.
    The token goes only to Slack's file host (or SLACK_API_URL's host in tests), never to
    wherever a forged event might point. A redirect is followed only to such a host, and
    without the token: urllib on its own would follow any redirect and send the token along.
    """
    url, headers = shared.download_url, {"Authorization": f"Bearer {token}"}
    for hop in range(MAX_REDIRECTS + 1):
        if not trusted_download_url(url, api_url):
            raise DownloadError("the download address is not on Slack's servers" if hop == 0 else
                                "Slack redirected the download away from its file servers; not followed")
        try:
            with _NO_REDIRECTS.open(urllib.request.Request(_quoted(url), headers=headers),
                                    timeout=DOWNLOAD_TIMEOUT_S) as response:
                content_type = response.headers.get("Content-Type", "")
                data = _read_capped(response, max_bytes)
            break
        except urllib.error.HTTPError as exc:
            location = exc.headers.get("Location") if exc.code in REDIRECT_CODES else None
            exc.close()
            if not location:
                raise DownloadError(f"Slack refused the download (HTTP {exc.code})") from None
            url, headers = urljoin(url, location), {}  # the token is for the first address only
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
            raise DownloadError(f"the download failed ({getattr(exc, 'reason', exc)})") from None
    else:
        raise DownloadError(f"Slack redirected the download more than {MAX_REDIRECTS} times")
    if content_type.startswith("text/html") and not shared.name.lower().endswith((".html", ".htm")):
        # Slack answers a download without a valid token (or without files:read) with its sign-in page.
        raise DownloadError("Slack sent a sign-in page instead of the file (does the app have files:read?)")
    return data


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """Hands every redirect back to `download` as an HTTPError instead of following it."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001 - urllib's signature
        return None


_NO_REDIRECTS = urllib.request.build_opener(_RefuseRedirects)


def _quoted(url: str) -> str:
    """The URL with any raw spaces or non-ASCII characters in its path/query percent-encoded."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=quote(parts.path, safe="/%"), query=quote(parts.query, safe="=&%")))


def trusted_download_url(url: str, api_url: str) -> bool:
    """Slack's file host over HTTPS, or exactly SLACK_API_URL's scheme, host and port (the tests' fake)."""
    target, api = urlsplit(url), urlsplit(api_url)
    if (target.scheme, target.netloc) == (api.scheme, api.netloc):
        return True
    return (target.scheme == "https" and (target.hostname or "").lower() in SLACK_FILE_HOSTS
            and target.port in (None, 443))


def _read_capped(response, max_bytes: int) -> bytes:
    parts, total = [], 0
    while True:
        part = response.read(CHUNK_BYTES)
        if not part:
            return b"".join(parts)
        total += len(part)
        if total > max_bytes:
            raise UploadRejected(f"the file is over the {max_bytes / 1_048_576:.1f} MB limit")
        parts.append(part)


def _tell_failure(client: WebClient, channel: str) -> None:
    try:
        _post(client, channel, text_message("upload_failed"))
    except Exception:  # Slack itself is failing: the log has the first error already
        log.warning("could not tell the sender about the failure either")


def _post(client: WebClient, channel: str, message: Message) -> None:
    client.chat_postMessage(channel=channel, text=message.text, blocks=message.blocks,
                            unfurl_links=False, unfurl_media=False)
