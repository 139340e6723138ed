"""The bot's WSGI application: Slack's endpoint through Bolt's WSGI adapter, plus `/healthz`.

We extend Bolt's adapter rather than write our own so routing, OAuth paths and
response shaping stay Bolt's; the extension does what Bolt 1.30 gets wrong:

- it checks Slack's signature first, on the raw bytes, and refuses an unsigned request
  with 401 and one short log line (path, size, reason). Bolt would log the whole body of
  every unsigned request at INFO (ten 4 MB posts: 40 MB of log, and a raw newline in the
  body forged a log line), and answered a timestamp that is not a number with a 500 and
  a traceback. Nothing unsigned is parsed;
- it parses form bodies by field (slash commands mentioning "payload" were dropped,
  see `bot.bolt_request`), and answers a signed body it cannot read (not JSON, nested
  too deeply) with 400 instead of letting a parse exception escape to the server.
"""
from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import re
import time
from typing import Iterable

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.adapter.wsgi.http_request import WsgiHttpRequest
from slack_bolt.response import BoltResponse

from bot.bolt_request import FormSafeBoltRequest, MalformedBody
from bot.services import Services
from retrieval.service import KnowledgeBase
from strategy_bot.database import is_reachable

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
JSON = {"content-type": ["application/json;charset=utf-8"]}


class BotRequestHandler(SlackRequestHandler):
    """Bolt's WSGI handler behind our signature check, with our request parsing."""

    def __init__(self, app: App, signing_secret: str, path: str = EVENTS_PATH) -> None:
        super().__init__(app, path)
        self.signing_secret = signing_secret

    def dispatch(self, request: WsgiHttpRequest) -> BoltResponse:
        headers = request.get_headers()
        raw = _raw_body(request)
        problem = signature_problem(raw, headers, self.signing_secret)
        if problem:
            log.info("refused an unsigned request to %s (%d bytes): %s", self.path, len(raw), problem)
            return BoltResponse(status=401, body=json.dumps({"error": "invalid request"}), headers=JSON)
        try:
            bolt_request = FormSafeBoltRequest(body=raw.decode("utf-8"), query=request.query_string,
                                               headers=headers)
        except (MalformedBody, UnicodeDecodeError) as exc:
            reason = str(exc) if isinstance(exc, MalformedBody) else "the body is not UTF-8"
            log.warning("refused a signed request with a malformed body (%d bytes): %s", len(raw), reason)
            return BoltResponse(status=400, body=json.dumps({"error": "malformed body", "detail": reason}),
                                headers=JSON)
        return self.app.dispatch(bolt_request)


# Slack sends the Unix time in seconds; anything longer than this many digits is not one (and a
# 5,000-digit "timestamp" would make int() raise instead of refusing).
TIMESTAMP = re.compile(r"[0-9]{1,12}")


def signature_problem(raw: bytes, headers: dict, secret: str, max_age_s: int = 300) -> str | None:
    """Why the request is not signed by Slack (v0 signature over the raw bytes), or None when it is.

    Ours rather than slack_sdk's `SignatureVerifier`: that one decodes the body as UTF-8
    first, and raises (a 500) on a timestamp that is not a number.
    """
    timestamp = str(headers.get("x-slack-request-timestamp", ""))
    signature = str(headers.get("x-slack-signature", ""))
    if not secret:
        return "no signing secret configured"
    if not signature:
        return "no signature"
    if not TIMESTAMP.fullmatch(timestamp):
        return "the timestamp is not a Unix time"
    if abs(time.time() - int(timestamp)) > max_age_s:
        return f"the timestamp is more than {max_age_s} s away"
    expected = "v0=" + hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + raw,
                                hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
        return "bad signature"
    return None


def _raw_body(request: WsgiHttpRequest) -> bytes:
    """The body bytes as read off the wire (kept in the environ by `_cache_body`)."""
    return request.environ.get("strategy_bot.raw_body", b"")


class BotWsgiApp:
    """Routes `GET /healthz` here and everything else to Bolt's handler (404 without an app:
    Socket Mode serves only the health check over HTTP)."""

    def __init__(self, app: App | None, services: Services) -> None:
        self.services = services
        self.slack = BotRequestHandler(app, services.settings.slack_signing_secret) if app else None

    def __call__(self, environ: dict, start_response) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == HEALTH_PATH and environ.get("REQUEST_METHOD") in {"GET", "HEAD"}:
            return self._health(start_response)
        if self.slack is None:
            start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "9")])
            return [b"Not Found"]
        _cache_body(environ)
        return self.slack(environ, start_response)

    def _health(self, start_response) -> Iterable[bytes]:
        status, body = health(self.services)
        payload = json.dumps(body).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
        return [payload]


def health(services: Services) -> tuple[str, dict]:
    """200 once the index is loaded and the state database answers; 503 while the index loads, after
    it failed to (with the reason), or while the database does not answer. The database is named by
    its engine only (`sqlite`, `postgresql`): its URL may hold a password. A loaded index is named
    by its build (`build_health`)."""
    status, body = _index_health(services)
    database = getattr(services, "database", None)
    if database is None:
        return status, body
    reachable = is_reachable(database)
    body = {**body, "database": "ok" if reachable else "unreachable", "database_engine": database.dialect.name}
    if not reachable and status.startswith("200"):
        return "503 Service Unavailable", {**body, "status": "error", "error": "the state database does not answer"}
    return status, body


def _index_health(services: Services) -> tuple[str, dict]:
    readiness = services.readiness
    if readiness.loaded.is_set() or services.kb.is_loaded:  # a question may have loaded it after a failure
        return "200 OK", {"status": "ok", **build_health(services)}
    if readiness.error:
        return "503 Service Unavailable", {"status": "error", "error": readiness.error}
    return "503 Service Unavailable", {"status": "loading"}


def build_health(services: Services) -> dict:
    """The build this replica serves; with shared builds (PostgreSQL) also the published one and
    whether they are the same (false for the seconds a new build takes to arrive, or when it cannot)."""
    kb = services.kb
    if not isinstance(kb, KnowledgeBase):  # a stand-in knowledge base (tests of readiness alone) has no builds
        return {}
    body: dict = {"build": kb.loaded_build}
    if kb.shared is not None:
        published = kb.published_build()
        body.update(published_build=published, build_current=published is not None and published == kb.loaded_build)
    return body


def _cache_body(environ: dict) -> None:
    """Read the body once and keep the bytes, so a refusal can still check the signature."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    raw = environ["wsgi.input"].read(length) if length > 0 and "wsgi.input" in environ else b""
    environ["strategy_bot.raw_body"] = raw
    environ["wsgi.input"] = io.BytesIO(raw)
    environ["CONTENT_LENGTH"] = str(len(raw))
