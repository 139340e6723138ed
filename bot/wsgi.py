"""The bot's WSGI application: Slack's endpoint through Bolt's WSGI adapter, plus `/healthz`.

We extend Bolt's adapter rather than write our own so routing, OAuth paths and
response shaping stay Bolt's; the extension does two things Bolt 1.30 gets wrong:
it parses form bodies by field (slash commands mentioning "payload" were dropped,
see `bot.bolt_request`), and it answers a body it cannot read with 400 (or 401 when
unsigned) instead of letting a parse exception escape to the server.
"""
from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import time
from typing import Iterable

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.adapter.wsgi.http_request import WsgiHttpRequest
from slack_bolt.response import BoltResponse

from bot.bolt_request import FormSafeBoltRequest, MalformedBody
from bot.services import Services

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
JSON = {"content-type": ["application/json;charset=utf-8"]}


class BotRequestHandler(SlackRequestHandler):
    """Bolt's WSGI handler with our request parsing and a clear refusal of unreadable bodies."""

    def __init__(self, app: App, signing_secret: str, path: str = EVENTS_PATH) -> None:
        super().__init__(app, path)
        self.signing_secret = signing_secret

    def dispatch(self, request: WsgiHttpRequest) -> BoltResponse:
        headers = request.get_headers()
        try:
            raw = request.get_body()
            bolt_request = FormSafeBoltRequest(body=raw, query=request.query_string, headers=headers)
        except (MalformedBody, UnicodeDecodeError) as exc:
            return self._refuse(request, headers, str(exc))
        return self.app.dispatch(bolt_request)

    def _refuse(self, request: WsgiHttpRequest, headers: dict, reason: str) -> BoltResponse:
        """401 when the request is not Slack's (as Bolt would say), else 400 naming the problem."""
        if not is_signed(_raw_body(request), headers, self.signing_secret):
            return BoltResponse(status=401, body=json.dumps({"error": "invalid request"}), headers=JSON)
        log.warning("refused a signed request with a malformed body: %s", reason)
        return BoltResponse(status=400, body=json.dumps({"error": "malformed body", "detail": reason}),
                            headers=JSON)


def is_signed(raw: bytes, headers: dict, secret: str, max_age_s: int = 300) -> bool:
    """Slack's v0 signature check on the raw bytes.

    Ours rather than slack_sdk's `SignatureVerifier` because that one decodes the body as
    UTF-8 first and raises on the very bodies we are refusing.
    """
    timestamp = str(headers.get("x-slack-request-timestamp", ""))
    signature = str(headers.get("x-slack-signature", ""))
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > max_age_s or not secret:
        return False
    expected = "v0=" + hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + raw,
                                hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


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
    """200 once the index is loaded; 503 while it loads or after it failed to (with the reason)."""
    readiness = services.readiness
    if readiness.loaded.is_set() or services.kb.is_loaded:  # a question may have loaded it after a failure
        return "200 OK", {"status": "ok"}
    if readiness.error:
        return "503 Service Unavailable", {"status": "error", "error": readiness.error}
    return "503 Service Unavailable", {"status": "loading"}


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
