"""Over-the-wire Slack test harness, shared by every Slack feature's tests.

- `FakeSlackAPI`: a fake Slack Web API on 127.0.0.1 (a real HTTP server the real
  `WebClient` talks to). Every method answers `ok: true` with sensible fields; calls
  are recorded (method, headers, parsed body) thread-safely; responses can be scripted
  per method, 429s with `Retry-After` injected, files served for `files.info` +
  `url_private_download` (bearer token required; or a redirect elsewhere), `response_url`
  posts recorded.
  Like Slack, it refuses messages over the block limits (`invalid_blocks`). Messages posted
  with `chat.postMessage` are kept (with their `metadata`, updated by `chat.update`) and read
  back by `conversations.replies` / `conversations.history` in Slack's shapes (metadata only
  with `include_all_metadata`); streamed messages too (`chat.startStream` / `appendStream` /
  `stopStream`: text gathered from the chunks, blocks and metadata from `stopStream`;
  `refuse_streaming(error)` makes `startStream` refuse, `break_streams(error)` makes a live
  stream die; `streams()` shows each with its calls; a live stream's message is read back with
  the bot's `user` and `bot_id` and no metadata, as Slack shows it); `fail_after(method)` carries a
  call out and answers it 500 anyway; `assistant.threads.*` and `chat.postEphemeral`
  (kept: `ephemeral()`) check their arguments as Slack does; `hold(method)` keeps a method's
  responses back (the message is posted, the answer not sent) until `release(method)`, to kill
  a bot mid-post.
- Views and canvases: `views.open` (a modal, needs a trigger_id) and `views.publish` (a home tab) are
  validated with slack_sdk's view and block models and kept (`opened_views()`, `home_of(user)`);
  `conversations.canvases.create` (one channel canvas per channel) and `canvases.create` keep the
  canvases (`canvases()`); `refuse_canvases(error)` makes both refuse as a workspace without canvases does.
- `FakeSocketModeServer`: the WebSocket end of Socket Mode (ws:// on loopback) that pushes
  `events_api` envelopes and records the bot's acks.
- `sign(...)`: Slack's v0 request signature headers.
- Payload builders with Slack's real shapes: `event_payload`, `mention_event`,
  `message_event`, `slash_payload`, `block_action_payload`, `url_verification_payload`.
- `running_bot(...)`: starts the REAL bot (services, Bolt app, waitress server — the
  code `strategy-bot serve` runs in HTTP mode) on a free loopback port in a background
  thread; `BotServer` sends signed requests to it. Features register their own
  listeners through `extra_listeners`, or simply rely on `bot.listeners.MODULES`.
- `serve_subprocess(...)`: the `strategy-bot serve` command itself, in a child process.

Typical use (`kb` is the session fixture; tests import this module as `slack_harness`):

    with FakeSlackAPI() as slack, running_bot(bot_settings(tmp_path, slack), kb=kb) as bot:
        bot.send_event(event_payload(mention_event(f"<@{BOT_USER_ID}> what does open source cost?")))
        post = slack.wait_for("chat.postMessage")[0]
        bot.send_form(slash_payload("/strategy-check", "payload licensing"))
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

REPO = Path(__file__).resolve().parent.parent
BOT_TOKEN = "xoxb-test-token"
SIGNING_SECRET = "test-signing-secret"
TEAM_ID = "T0TEAM001"
APP_ID = "A0APP0001"
BOT_USER_ID = "UBOT00001"
BOT_ID = "BBOT00001"
USER_ID = "U0USER001"
CHANNEL_ID = "C0CHAN001"
DM_CHANNEL_ID = "D0DM00001"

_ts_counter = itertools.count(1)
_ts_lock = threading.Lock()


def new_ts() -> str:
    """A unique Slack message timestamp ("seconds.micro")."""
    with _ts_lock:
        n = next(_ts_counter)
    return f"{int(time.time())}.{n:06d}"


# --------------------------------------------------------------------------- fake Web API


@dataclass
class Call:
    """One request the bot made to the fake Slack."""

    method: str  # Web API method ("chat.postMessage"), "response_url" or "file_download"
    headers: dict[str, str]
    body: dict[str, Any]
    path: str
    at: float  # time.perf_counter() when it arrived
    response: dict | None = None  # what the fake answered (set just after the call is recorded)

    @property
    def token(self) -> str | None:
        auth = self.headers.get("authorization", "")
        return auth[len("Bearer "):] if auth.startswith("Bearer ") else self.body.get("token")


@dataclass
class Scripted:
    response: dict | Callable[[Call], dict]
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1


@dataclass
class FakeFile:
    id: str
    name: str
    content: bytes
    mimetype: str
    filetype: str
    user: str

    def info(self, base_url: str) -> dict:
        url = f"{base_url}/files/{self.id}/{self.name}"
        return {"id": self.id, "name": self.name, "title": self.name, "mimetype": self.mimetype,
                "filetype": self.filetype, "size": len(self.content), "user": self.user, "mode": "hosted",
                "url_private": url, "url_private_download": url + "?download=1", "created": int(time.time())}


class FakeSlackAPI:
    """A fake Slack Web API on 127.0.0.1; use as a context manager (or `start()`/`stop()`)."""

    def __init__(self, token: str = BOT_TOKEN, bot_user_id: str = BOT_USER_ID, bot_id: str = BOT_ID,
                 team_id: str = TEAM_ID, validate_blocks: bool = True) -> None:
        self.token, self.bot_user_id, self.bot_id, self.team_id = token, bot_user_id, bot_id, team_id
        self.validate_blocks = validate_blocks
        self._calls: list[Call] = []
        self._scripts: dict[str, list[Scripted]] = {}
        self._files: dict[str, FakeFile] = {}
        self._redirects: dict[str, str] = {}
        self._users: dict[str, dict] = {}
        self._messages: dict[str, list[dict]] = {}  # channel -> messages the bot posted, in order
        self._holds: dict[str, threading.Event] = {}
        self._streams: dict[tuple[str, str], dict] = {}  # (channel, ts) -> {"state", "chunks"}
        self._refuse_streaming: str | None = None
        self._break_streams: str | None = None
        self._ephemeral: list[dict] = []
        self._views: list[dict] = []  # modals opened by views.open, in order
        self._homes: dict[str, dict] = {}  # user -> their published home view
        self._canvases: list[dict] = []  # canvases created: {canvas_id, channel_id, title, markdown, method}
        self._canvases_refused: str | None = None
        self._cond = threading.Condition()
        self._server: ThreadingHTTPServer | None = None

    # lifecycle
    def start(self) -> "FakeSlackAPI":
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="fake-slack", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeSlackAPI":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server, "the fake Slack API is not running"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_url(self) -> str:
        """The value for the SLACK_API_URL setting."""
        return f"{self.url}/api/"

    def response_url(self, name: str = "") -> str:
        return f"{self.url}/response/{name or uuid.uuid4().hex}"

    # scripting
    def script(self, method: str, response: dict | Callable[[Call], dict], *, status: int = 200,
               headers: dict[str, str] | None = None, times: int = 1) -> None:
        """The next `times` calls of `method` get this response (a dict, or a function of the call)."""
        with self._cond:
            self._scripts.setdefault(method, []).append(Scripted(response, status, headers or {}, times))

    def default_answer(self, call: Call) -> dict:
        """What the fake answers when nothing is scripted: for a scripted function that only holds a call."""
        return self._default(call)

    def fail_after(self, method: str, *, status: int = 500, error: str = "internal_error", times: int = 1) -> None:
        """The next `times` calls of `method` are carried out (a stream's message is created, a message
        posted) but answered with HTTP `status` and `error`, as Slack does when it fails after the work."""
        def carried_out(call: Call) -> dict:
            self._default(call)
            return {"ok": False, "error": error}

        self.script(method, carried_out, status=status, times=times)

    def rate_limit(self, method: str, retry_after: int = 1, times: int = 1) -> None:
        """The next `times` calls of `method` get HTTP 429 with `Retry-After`, as Slack sends them."""
        self.script(method, {"ok": False, "error": "ratelimited"}, status=429,
                    headers={"Retry-After": str(retry_after)}, times=times)

    def add_file(self, name: str, content: bytes, *, mimetype: str = "text/markdown", filetype: str = "markdown",
                 user: str = USER_ID, file_id: str | None = None) -> dict:
        """A file `files.info` describes and `url_private_download` serves (with the bot token only)."""
        fake = FakeFile(file_id or f"F{uuid.uuid4().hex[:10].upper()}", name, content, mimetype, filetype, user)
        with self._cond:
            self._files[fake.id] = fake
        return fake.info(self.url)

    def redirect_download(self, file_id: str, location: str) -> None:
        """Downloads of `file_id` answer 302 to `location` (as a file host may); `public_url` gives a
        link on this fake that serves the file without a token, like a pre-signed one."""
        with self._cond:
            self._redirects[file_id] = location

    def public_url(self, file_id: str) -> str:
        fake = self._files[file_id]
        return f"{self.url}/public/{fake.id}/{fake.name}"

    def add_user(self, user_id: str, **fields: Any) -> None:
        """What `users.info` returns for `user_id` (e.g. is_admin=True, is_owner=False)."""
        with self._cond:
            self._users[user_id] = {"id": user_id, "name": user_id.lower(), "team_id": self.team_id,
                                    "is_admin": False, "is_owner": False, "is_bot": False, **fields}

    def refuse_canvases(self, error: str | None = "free_team_canvas_not_allowed") -> None:
        """Both canvas methods answer `error`, as a workspace without canvases does (None: allowed again)."""
        with self._cond:
            self._canvases_refused = error

    def canvases(self) -> list[dict]:
        with self._cond:
            return [dict(c) for c in self._canvases]

    def opened_views(self) -> list[dict]:
        with self._cond:
            return list(self._views)

    def home_of(self, user: str) -> dict | None:
        with self._cond:
            return self._homes.get(user)

    def hold(self, method: str) -> None:
        """Calls of `method` are carried out (a message is posted) but not answered until `release`."""
        with self._cond:
            self._holds[method] = threading.Event()

    def release(self, method: str) -> None:
        with self._cond:
            gate = self._holds.pop(method, None)
        if gate is not None:
            gate.set()

    def refuse_streaming(self, error: str | None = "method_not_supported") -> None:
        """chat.startStream answers `error` (None: streams work again), as a workspace without streaming does."""
        with self._cond:
            self._refuse_streaming = error

    def break_streams(self, error: str | None = "message_not_in_streaming_state") -> None:
        """Every live stream dies: appendStream / stopStream answer `error` (None: no more breaking)."""
        with self._cond:
            self._break_streams = error
            if error:
                for stream in self._streams.values():
                    stream["state"] = "broken" if stream["state"] == "streaming" else stream["state"]

    def streams(self) -> dict[tuple[str, str], dict]:
        """Each stream started: {"state": streaming|stopped|broken, "chunks": [...]} by (channel, ts)."""
        with self._cond:
            return {key: {"state": v["state"], "chunks": list(v["chunks"])} for key, v in self._streams.items()}

    def ephemeral(self) -> list[dict]:
        """Ephemeral messages posted (channel, user, thread_ts, text, blocks)."""
        with self._cond:
            return [dict(m) for m in self._ephemeral]

    # inspection
    def messages(self, channel: str | None = None) -> list[dict]:
        """Messages the bot posted (as Slack keeps them: ts, thread_ts, text, blocks, metadata)."""
        with self._cond:
            return [dict(m) for c, kept in self._messages.items() if channel in (None, c) for m in kept]

    def in_thread(self, thread_ts: str, channel: str = CHANNEL_ID) -> list[dict]:
        """The bot's messages in one thread of a channel, oldest first."""
        return [m for m in self.messages(channel) if m.get("thread_ts") == thread_ts]

    def calls(self, method: str | None = None) -> list[Call]:
        with self._cond:
            return [c for c in self._calls if method is None or c.method == method]

    def wait_for(self, method: str, count: int = 1, timeout: float = 15.0,
                 where: Callable[[Call], bool] | None = None) -> list[Call]:
        """Block until `count` matching calls arrived; AssertionError (listing what did arrive) on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [c for c in self._calls if c.method == method and (where is None or where(c))]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(c.method, c.body.get("channel"), c.body.get("thread_ts")) for c in self._calls]
                    raise AssertionError(f"waited {timeout}s for {count}× {method}, got {len(found)}; calls: {seen}")
                self._cond.wait(left)

    def ts_of(self, call: Call, timeout: float = 5.0) -> str:
        """The ts the fake answered to a chat.postMessage `call`, so a test can click that very message.

        A call is recorded just before it is answered: this waits for the answer.
        """
        with self._cond:
            assert self._cond.wait_for(lambda: call.response is not None, timeout), f"no answer to {call.method}"
            assert call.response is not None
            return str(call.response.get("ts", ""))

    def settle(self, quiet: float = 0.3, timeout: float = 10.0) -> None:
        """Wait until no call arrived for `quiet` seconds (to assert that something did NOT happen)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._cond:
                last = self._calls[-1].at if self._calls else 0.0
            idle = time.perf_counter() - last
            if idle >= quiet:
                return
            time.sleep(quiet - idle)

    def reset(self) -> None:
        with self._cond:
            self._calls.clear()
            self._scripts.clear()
            self._messages.clear()
            self._streams.clear()
            self._ephemeral.clear()
            self._refuse_streaming = self._break_streams = None

    # request handling (called by the HTTP handler's threads)
    def _record(self, call: Call) -> None:
        with self._cond:
            self._calls.append(call)
            self._cond.notify_all()

    def _answered(self, call: Call, payload: dict) -> None:
        with self._cond:
            call.response = payload
            self._cond.notify_all()

    def _scripted(self, method: str) -> Scripted | None:
        with self._cond:
            queue = self._scripts.get(method)
            if not queue:
                return None
            item = queue[0]
            item.times -= 1
            if item.times <= 0:
                queue.pop(0)
            return item

    def _answer(self, call: Call) -> tuple[int, dict, dict]:
        scripted = self._scripted(call.method)
        if scripted is not None:
            body = scripted.response(call) if callable(scripted.response) else scripted.response
            return scripted.status, scripted.headers, body
        if call.token != self.token and call.method not in {"api.test"}:
            return 200, {}, {"ok": False, "error": "not_authed" if not call.token else "invalid_auth"}
        return 200, {}, self._default(call)

    def _default(self, call: Call) -> dict:
        body, method = call.body, call.method
        if method == "auth.test":
            return {"ok": True, "url": "https://fake.slack.com/", "team": "Fake", "user": "strategy-bot",
                    "team_id": self.team_id, "user_id": self.bot_user_id, "bot_id": self.bot_id,
                    "is_enterprise_install": False}
        if method in {"chat.postMessage", "chat.update"}:
            problem = message_problem(body) if self.validate_blocks else None
            if problem:
                return {"ok": False, "error": problem}
            with self._cond:  # a live stream's message is changed by appending to it, not by chat.update
                stream = self._streams.get((str(body.get("channel")), str(body.get("ts"))))
                if method == "chat.update" and stream and stream["state"] == "streaming":
                    return {"ok": False, "error": "cant_update_message"}
            ts = body.get("ts") if method == "chat.update" else new_ts()
            message = {"type": "message", "user": self.bot_user_id, "bot_id": self.bot_id, "app_id": APP_ID,
                       "ts": ts, "text": body.get("text", ""), "blocks": body.get("blocks", [])}
            if body.get("thread_ts"):
                message["thread_ts"] = body["thread_ts"]
            metadata = _metadata_of(body)
            if metadata:
                message["metadata"] = metadata
            self._keep(method, str(body.get("channel")), message)
            return {"ok": True, "channel": body.get("channel"), "ts": ts, "message": message}
        if method == "conversations.replies":
            return self._replies(body)
        if method == "conversations.history":
            return self._history(body)
        if method == "chat.postEphemeral":
            return self._post_ephemeral(body)
        if method in {"chat.startStream", "chat.appendStream", "chat.stopStream"}:
            return self._stream_call(method, body)
        if method.startswith("assistant.threads."):
            return _assistant_problem(method, body) or {"ok": True}
        if method == "files.info":
            fake = self._files.get(str(body.get("file")))
            return {"ok": True, "file": fake.info(self.url)} if fake else {"ok": False, "error": "file_not_found"}
        if method in {"views.open", "views.publish"}:
            return self._view(method, body)
        if method in {"canvases.create", "conversations.canvases.create"}:
            return self._canvas(method, body)
        if method == "users.info":
            user = self._users.get(str(body.get("user")))
            return {"ok": True, "user": user or {"id": body.get("user"), "is_admin": False, "is_owner": False,
                                                 "is_bot": False, "team_id": self.team_id}}
        return {"ok": True}

    def _post_ephemeral(self, body: dict) -> dict:
        problem = message_problem(body) if self.validate_blocks else None
        if not body.get("user"):
            problem = "user_not_in_channel"
        if problem:
            return {"ok": False, "error": problem}
        with self._cond:
            self._ephemeral.append({k: body.get(k) for k in ("channel", "user", "thread_ts", "text", "blocks")})
        return {"ok": True, "message_ts": new_ts()}

    def _stream_call(self, method: str, body: dict) -> dict:
        """chat.startStream / appendStream / stopStream (Slack's arguments and errors)."""
        channel = str(body.get("channel") or "")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        text = "".join(c.get("text", "") for c in body.get("chunks") or [] if c.get("type") == "markdown_text")
        text = (body.get("markdown_text") or "") + text
        if len(text) > 12000:
            return {"ok": False, "error": "msg_too_long"}
        problem = sdk_block_problem(body.get("blocks") or []) if self.validate_blocks else None
        if problem:
            return {"ok": False, "error": problem}
        with self._cond:
            if method == "chat.startStream":
                if self._refuse_streaming:
                    return {"ok": False, "error": self._refuse_streaming}
                if not body.get("thread_ts"):
                    return {"ok": False, "error": "invalid_thread_ts"}
                if not channel.startswith("D") and not (body.get("recipient_team_id")
                                                        and body.get("recipient_user_id")):
                    return {"ok": False, "error": "invalid_arguments"}  # required outside DMs
                ts = new_ts()
                message = {"type": "message", "user": self.bot_user_id, "bot_id": self.bot_id, "app_id": APP_ID,
                           "ts": ts, "thread_ts": body["thread_ts"], "text": text, "blocks": []}
                self._messages.setdefault(channel, []).append(message)
                self._streams[(channel, ts)] = {"state": "streaming", "chunks": list(body.get("chunks") or [])}
                return {"ok": True, "channel": channel, "ts": ts}
            ts = str(body.get("ts") or "")
            stream = self._streams.get((channel, ts))
            if stream is None:
                return {"ok": False, "error": "message_not_found"}
            if self._break_streams and stream["state"] == "streaming":
                stream["state"] = "broken"
            if stream["state"] != "streaming":
                return {"ok": False, "error": self._break_streams or "message_not_in_streaming_state"}
            stream["chunks"].extend(body.get("chunks") or [])
            message = next(m for m in self._messages[channel] if m["ts"] == ts)
            message["text"] += text
            if method == "chat.stopStream":
                stream["state"] = "stopped"
                message["blocks"] = list(body.get("blocks") or [])
                metadata = _metadata_of(body)
                if metadata:
                    message["metadata"] = metadata
            return {"ok": True, "channel": channel, "ts": ts}
    def _view(self, method: str, body: dict) -> dict:
        """views.open (a modal for a fresh trigger_id) / views.publish (a user's home), in Slack's shapes."""
        view = body.get("view")
        if isinstance(view, str):
            try:
                view = json.loads(view)
            except ValueError:
                return {"ok": False, "error": "invalid_arguments"}
        if method == "views.open" and not body.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        if method == "views.publish" and not body.get("user_id"):
            return {"ok": False, "error": "invalid_arguments"}
        wanted = "modal" if method == "views.open" else "home"
        problem = view_problem(view, wanted) if self.validate_blocks else None
        if problem:
            return {"ok": False, "error": problem}
        shown = {**view, "id": f"V{uuid.uuid4().hex[:10].upper()}", "team_id": self.team_id, "app_id": APP_ID,
                 "bot_id": self.bot_id, "state": {"values": {}}, "hash": f"{time.time():.6f}.{uuid.uuid4().hex[:8]}",
                 "root_view_id": None, "previous_view_id": None}
        with self._cond:
            if method == "views.open":
                self._views.append(shown)
            else:
                self._homes[str(body["user_id"])] = shown
        return {"ok": True, "view": shown}

    def _canvas(self, method: str, body: dict) -> dict:
        """canvases.create / conversations.canvases.create: `{"ok": true, "canvas_id": "F…"}` as Slack answers;
        a channel has at most one channel canvas (`channel_canvas_already_exists`)."""
        content = body.get("document_content") or {}
        if isinstance(content, str):
            content = json.loads(content)
        channel = body.get("channel_id")
        with self._cond:
            if self._canvases_refused:
                return {"ok": False, "error": self._canvases_refused}
            if method == "conversations.canvases.create" and not channel:
                return {"ok": False, "error": "channel_not_found"}
            if content and (content.get("type") != "markdown" or not isinstance(content.get("markdown"), str)):
                return {"ok": False, "error": "invalid_arguments"}
            if len(content.get("markdown") or "") > 1_048_576:
                return {"ok": False, "error": "canvas_creation_failed"}
            if method == "conversations.canvases.create" and any(
                    c["channel_id"] == channel and c["method"] == method for c in self._canvases):
                return {"ok": False, "error": "channel_canvas_already_exists"}
            canvas_id = f"F{uuid.uuid4().hex[:10].upper()}"
            self._canvases.append({"canvas_id": canvas_id, "channel_id": channel, "title": body.get("title"),
                                   "markdown": content.get("markdown", ""), "method": method})
        return {"ok": True, "canvas_id": canvas_id}

    def _keep(self, method: str, channel: str, message: dict) -> None:
        with self._cond:
            kept = self._messages.setdefault(channel, [])
            if method == "chat.postMessage":
                kept.append(message)
                return
            for old in kept:  # chat.update: the message changes in place (metadata only when given)
                if old["ts"] == message["ts"]:
                    old.update({k: v for k, v in message.items() if k not in {"thread_ts", "metadata"}})
                    if "metadata" in message:
                        old["metadata"] = message["metadata"]

    def _replies(self, body: dict) -> dict:
        """conversations.replies: the thread's parent (the question: a person's message) and the replies."""
        channel, ts = str(body.get("channel")), str(body.get("ts"))
        with self._cond:
            kept = [dict(m) for m in self._messages.get(channel, [])]
        parent = next((m for m in kept if m["ts"] == ts), None) or {
            "type": "message", "user": USER_ID, "text": "(the question)", "ts": ts, "thread_ts": ts}
        replies = sorted((m for m in kept if m.get("thread_ts") == ts and m["ts"] != ts), key=lambda m: m["ts"])
        parent.update(thread_ts=ts, reply_count=len(replies))
        return self._page([parent, *replies], body)

    def _history(self, body: dict) -> dict:
        """conversations.history: top-level messages after `oldest`, newest first."""
        channel, oldest = str(body.get("channel")), float(body.get("oldest") or 0)
        with self._cond:
            kept = [dict(m) for m in self._messages.get(channel, [])]
        top = [m for m in kept if m.get("thread_ts") in (None, m["ts"]) and float(m["ts"]) > oldest]
        return self._page(sorted(top, key=lambda m: float(m["ts"]), reverse=True), body)

    @staticmethod
    def _page(messages: list[dict], body: dict) -> dict:
        """One page (`limit`, `cursor`) of `messages`; metadata only with `include_all_metadata`, as Slack does."""
        limit = int(body.get("limit") or 100)
        start = int(base64.b64decode(body["cursor"]).decode().split(":")[1]) if body.get("cursor") else 0
        page = messages[start:start + limit]
        if str(body.get("include_all_metadata", "")).lower() not in {"1", "true"}:
            for message in page:
                message.pop("metadata", None)
        more = start + limit < len(messages)
        cursor = base64.b64encode(f"offset:{start + limit}".encode()).decode() if more else ""
        return {"ok": True, "messages": page, "has_more": more, "response_metadata": {"next_cursor": cursor}}


def _metadata_of(body: dict) -> dict | None:
    """A message's `metadata` argument (a JSON object, or a JSON string in a form-encoded call)."""
    metadata = body.get("metadata")
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except ValueError:
            return None
    if isinstance(metadata, dict) and metadata.get("event_type"):
        return {"event_type": metadata["event_type"], "event_payload": metadata.get("event_payload") or {}}
    return None


def sdk_block_problem(blocks: list[dict], limit: int = 50) -> str | None:
    """`invalid_blocks` for a block slack-sdk's block models reject (unknown type, a field over Slack's
    published limits, a missing field), as Slack would, or for more than `limit` blocks (50 in a message,
    100 in a modal or home tab); None when every block is valid."""
    from slack_sdk.errors import SlackObjectFormationError
    from slack_sdk.models.blocks import Block

    if not isinstance(blocks, list) or len(blocks) > limit:
        return "invalid_blocks"
    for block in blocks:
        parsed = Block.parse(block) if isinstance(block, dict) else None
        if parsed is None or type(parsed) is Block:  # a type slack-sdk does not know
            return "invalid_blocks"
        try:
            parsed.validate_json()
        except (SlackObjectFormationError, TypeError, KeyError, AttributeError):
            return "invalid_blocks"
    return None


def view_problem(view: Any, wanted: str) -> str | None:
    """A views.open / views.publish refusal: the wrong type, a title or metadata over Slack's limits
    (slack_sdk's View model), or blocks it refuses (at most 100)."""
    from slack_sdk.errors import SlackObjectFormationError
    from slack_sdk.models.views import View

    if not isinstance(view, dict) or view.get("type") != wanted:
        return "invalid_arguments"
    try:
        View(**view).validate_json()
    except (SlackObjectFormationError, TypeError, KeyError, AttributeError):
        return "invalid_arguments"
    return sdk_block_problem(view.get("blocks") or [], 100)


def _assistant_problem(method: str, body: dict) -> dict | None:
    """assistant.threads.setStatus / setTitle / setSuggestedPrompts: Slack's required arguments and limits."""
    if not body.get("channel_id"):
        return {"ok": False, "error": "channel_not_found"}
    if not body.get("thread_ts"):
        return {"ok": False, "error": "invalid_thread_ts"}
    if method == "assistant.threads.setStatus":
        loading = body.get("loading_messages") or []
        if "status" not in body or len(loading) > 10:
            return {"ok": False, "error": "invalid_arguments"}
    elif method == "assistant.threads.setTitle":
        if not body.get("title"):
            return {"ok": False, "error": "invalid_arguments"}
    elif method == "assistant.threads.setSuggestedPrompts":
        prompts = body.get("prompts") or []
        if not 1 <= len(prompts) <= 4 or not all(p.get("title") and p.get("message") for p in prompts):
            return {"ok": False, "error": "invalid_arguments"}
    else:
        return {"ok": False, "error": "unknown_method"}
    return None


def message_problem(body: dict) -> str | None:
    """Slack's own refusals of a message: too many blocks, a section too long, no content."""
    blocks = body.get("blocks")
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    if not body.get("channel"):
        return "channel_not_found"
    if not blocks and not body.get("text"):
        return "no_text"
    if len(body.get("text") or "") > 40000:
        return "msg_too_long"
    if blocks:
        if len(blocks) > 50:
            return "invalid_blocks"
        for block in blocks:
            text = (block.get("text") or {}).get("text", "")
            if block.get("type") == "section" and not 0 < len(text) <= 3000:
                return "invalid_blocks"
            for element in block.get("elements", []):
                if len(str(element.get("value", ""))) > 2000 or len(element.get("action_id", "")) > 255:
                    return "invalid_blocks"
        return sdk_block_problem(blocks, 50)  # and whatever slack_sdk's block models refuse
    return None


def _handler_for(api: FakeSlackAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            path = urlsplit(self.path).path
            headers = {k.lower(): v for k, v in self.headers.items()}
            body = _parse(raw, headers.get("content-type", ""))
            if path.startswith("/response/"):
                api._record(Call("response_url", headers, body, path, time.perf_counter()))
                return self._send(200, {}, b"ok", "text/plain")
            self._api_call(path, headers, body)

        def _api_call(self, path: str, headers: dict, body: dict) -> None:
            method = path.removeprefix("/api/").strip("/")
            call = Call(method, headers, body, path, time.perf_counter())
            api._record(call)
            status, extra, payload = api._answer(call)
            with api._cond:
                gate = api._holds.get(method)
            if gate is not None:  # carried out, answer held back (the bot may be killed meanwhile)
                gate.wait(60)
            api._answered(call, payload)
            self._send(status, extra, json.dumps(payload).encode(), "application/json; charset=utf-8")

        def do_GET(self) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            split = urlsplit(self.path)
            if split.path.startswith("/api/"):  # Web API methods slack_sdk calls with GET (conversations.*)
                query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
                return self._api_call(split.path, headers, query)
            parts = split.path.strip("/").split("/")
            api._record(Call("file_download", headers, {"path": self.path}, self.path, time.perf_counter()))
            fake = api._files.get(parts[1]) if len(parts) >= 3 and parts[0] in ("files", "public") else None
            if fake is None:
                return self._send(404, {}, b"not found", "text/plain")
            if parts[0] == "public":  # a pre-signed link: no token needed
                return self._send(200, {}, fake.content, fake.mimetype)
            if fake.id in api._redirects:
                return self._send(302, {"Location": api._redirects[fake.id]}, b"", "text/plain")
            if headers.get("authorization") != f"Bearer {api.token}":
                return self._send(403, {}, b"<html>sign in to Slack</html>", "text/html")
            self._send(200, {}, fake.content, fake.mimetype)

        def _send(self, status: int, extra: dict, payload: bytes, content_type: str) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)
            except OSError:  # the bot was killed while its call was held
                self.close_connection = True

    return Handler


def _parse(raw: bytes, content_type: str) -> dict[str, Any]:
    text = raw.decode("utf-8", errors="replace")
    if "json" in content_type:
        return json.loads(text or "{}")
    body: dict[str, Any] = {k: v[0] if len(v) == 1 else v for k, v in parse_qs(text, keep_blank_values=True).items()}
    for key in ("blocks", "attachments"):  # form-encoded calls send these as JSON strings
        if isinstance(body.get(key), str):
            try:
                body[key] = json.loads(body[key])
            except ValueError:
                pass
    return body


# --------------------------------------------------------------------------- fake Socket Mode


class FakeSocketModeServer:
    """The WebSocket end of Slack's Socket Mode on 127.0.0.1 (plain ws://, one client at a time).

    Point `apps.connections.open` at it (`slack.script("apps.connections.open", {"ok": True, "url":
    server.url}, times=100)`), then `send_event(payload)` pushes an `events_api` envelope and
    `wait_ack(envelope_id)` returns the bot's acknowledgement. Just enough of RFC 6455 for slack_sdk's
    built-in client: the handshake, text frames both ways, ping/pong and close.
    """

    GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._client: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._cond = threading.Condition()
        self.acks: list[dict] = []
        self.connections = 0
        threading.Thread(target=self._accept, name="fake-socket-mode", daemon=True).start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self._listener.getsockname()[1]}/link/?ticket=fake"

    def close(self) -> None:
        self._listener.close()
        if self._client:
            self._client.close()

    def __enter__(self) -> "FakeSocketModeServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait_connected(self, timeout: float = 60.0) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self._client is not None, timeout):
                raise AssertionError("the bot never opened the Socket Mode connection")

    def send_event(self, payload: str, envelope_id: str | None = None, retry_attempt: int = 0) -> str:
        """Push an Events API payload (as `event_payload` builds it) in an envelope; returns its id."""
        envelope_id = envelope_id or str(uuid.uuid4())
        self._send_text(json.dumps({"envelope_id": envelope_id, "type": "events_api",
                                    "payload": json.loads(payload), "accepts_response_payload": False,
                                    "retry_attempt": retry_attempt, "retry_reason": ""}))
        return envelope_id

    def wait_ack(self, envelope_id: str, timeout: float = 15.0) -> dict:
        with self._cond:
            found = self._cond.wait_for(
                lambda: next((a for a in self.acks if a.get("envelope_id") == envelope_id), None), timeout)
        if not found:
            raise AssertionError(f"no ack for envelope {envelope_id} in {timeout}s")
        return found

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = conn.recv(4096)
            if not chunk:
                return
            request += chunk
        headers = dict(line.split(": ", 1) for line in request.decode().split("\r\n")[1:] if ": " in line)
        key = {k.lower(): v for k, v in headers.items()}.get("sec-websocket-key", "")
        accept = base64.b64encode(hashlib.sha1((key + self.GUID).encode()).digest()).decode()
        conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode())
        with self._cond:
            self._client, self.connections = conn, self.connections + 1
            self._cond.notify_all()
        self._send_text(json.dumps({"type": "hello", "num_connections": 1, "debug_info": {}}))
        self._read_frames(conn)

    def _read_frames(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        while True:
            head = reader.read(2)
            if len(head) < 2:
                return
            opcode, length = head[0] & 0x0F, head[1] & 0x7F
            if length == 126:
                length = int.from_bytes(reader.read(2), "big")
            elif length == 127:
                length = int.from_bytes(reader.read(8), "big")
            mask = reader.read(4) if head[1] & 0x80 else b"\0\0\0\0"
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(reader.read(length)))
            if opcode == 0x8:  # close
                return
            if opcode == 0x9:  # ping -> pong
                self._send_frame(0xA, data)
            elif opcode == 0x1:
                with self._cond:
                    self.acks.append(json.loads(data.decode()))
                    self._cond.notify_all()

    def _send_text(self, text: str) -> None:
        self.wait_connected()
        self._send_frame(0x1, text.encode())

    def _send_frame(self, opcode: int, data: bytes) -> None:
        n = len(data)
        if n < 126:
            size = bytes([n])
        elif n < 65536:
            size = bytes([126]) + n.to_bytes(2, "big")
        else:
            size = bytes([127]) + n.to_bytes(8, "big")
        with self._send_lock:
            assert self._client is not None
            self._client.sendall(bytes([0x80 | opcode]) + size + data)


# --------------------------------------------------------------------------- signing and payloads


def sign(body: str | bytes, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    """Slack's signature headers: v0=HMAC-SHA256(secret, "v0:{timestamp}:{body}")."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    raw = body.encode() if isinstance(body, str) else body
    digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + raw, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def url_verification_payload(challenge: str = "challenge-token") -> str:
    return json.dumps({"token": "legacy-token", "challenge": challenge, "type": "url_verification"})


def event_payload(event: dict, *, event_id: str | None = None, team_id: str = TEAM_ID,
                  bot_user_id: str = BOT_USER_ID) -> str:
    """The Events API envelope Slack POSTs for `event` (JSON)."""
    return json.dumps({
        "token": "legacy-token", "team_id": team_id, "context_team_id": team_id, "context_enterprise_id": None,
        "api_app_id": APP_ID, "event": event, "type": "event_callback",
        "event_id": event_id or f"Ev{uuid.uuid4().hex[:12].upper()}", "event_time": int(time.time()),
        "authorizations": [{"enterprise_id": None, "team_id": team_id, "user_id": bot_user_id, "is_bot": True,
                            "is_enterprise_install": False}],
        "is_ext_shared_channel": False,
        "event_context": f"4-{uuid.uuid4().hex}",
    }, ensure_ascii=False)


def _rich_text(text: str) -> list[dict]:
    return [{"type": "rich_text", "block_id": uuid.uuid4().hex[:5],
             "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}]}]


def mention_event(text: str, *, user: str = USER_ID, channel: str = CHANNEL_ID, ts: str | None = None,
                  thread_ts: str | None = None) -> dict:
    """An `app_mention` event; `text` should contain `<@BOT_USER_ID>` like Slack's does."""
    ts = ts or new_ts()
    event = {"type": "app_mention", "user": user, "text": text, "ts": ts, "channel": channel, "event_ts": ts,
             "team": TEAM_ID, "client_msg_id": str(uuid.uuid4()), "blocks": _rich_text(text)}
    if thread_ts:
        event["thread_ts"] = thread_ts
        event["parent_user_id"] = user
    return event


def message_event(text: str, *, channel: str = CHANNEL_ID, channel_type: str = "channel", user: str | None = USER_ID,
                  ts: str | None = None, thread_ts: str | None = None, subtype: str | None = None,
                  bot_id: str | None = None, **extra: Any) -> dict:
    """A `message` event as delivered for message.channels / message.im (pass subtype/bot_id for others)."""
    ts = ts or new_ts()
    event: dict[str, Any] = {"type": "message", "text": text, "ts": ts, "channel": channel,
                             "channel_type": channel_type, "event_ts": ts, "team": TEAM_ID}
    if user:
        event["user"] = user
    if subtype:
        event["subtype"] = subtype
    else:
        event["client_msg_id"] = str(uuid.uuid4())
        event["blocks"] = _rich_text(text)
    if bot_id:
        event["bot_id"] = bot_id
        event["bot_profile"] = {"id": bot_id, "name": "other-bot", "app_id": "A0OTHER01", "team_id": TEAM_ID}
    if thread_ts:
        event["thread_ts"] = thread_ts
    event.update(extra)
    return event


def slash_payload(command: str, text: str = "", *, user_id: str = USER_ID, channel_id: str = CHANNEL_ID,
                  response_url: str = "https://hooks.slack.com/commands/T/1/x", **extra: str) -> str:
    """A slash command's form body, as Slack POSTs it."""
    fields = {
        "token": "legacy-token", "team_id": TEAM_ID, "team_domain": "fake", "channel_id": channel_id,
        "channel_name": "general" if channel_id.startswith("C") else "directmessage", "user_id": user_id,
        "user_name": user_id.lower(), "command": command, "text": text, "api_app_id": APP_ID,
        "is_enterprise_install": "false", "response_url": response_url,
        "trigger_id": f"{int(time.time())}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex}",
        **extra,
    }
    return urlencode(fields)


def block_action_payload(action_id: str, value: str, *, user: str = USER_ID, channel: str = CHANNEL_ID,
                         message_ts: str | None = None, thread_ts: str | None = None,
                         message_blocks: list[dict] | None = None, block_id: str = "actions",
                         response_url: str = "https://hooks.slack.com/actions/T/1/x",
                         action_type: str = "button", selected_option: dict | None = None) -> str:
    """A `block_actions` interaction (a button click or a select) as Slack POSTs it: `payload=<json>`."""
    message_ts = message_ts or new_ts()
    message: dict[str, Any] = {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "ts": message_ts,
                               "text": "", "team": TEAM_ID, "blocks": message_blocks or []}
    container: dict[str, Any] = {"type": "message", "message_ts": message_ts, "channel_id": channel,
                                 "is_ephemeral": False}
    if thread_ts:
        message["thread_ts"] = thread_ts
        container["thread_ts"] = thread_ts
    action: dict[str, Any] = {"action_id": action_id, "block_id": block_id, "type": action_type,
                              "action_ts": f"{time.time():.6f}"}
    if action_type in ("button", "feedback_buttons"):
        action.update(value=value, text={"type": "plain_text", "text": value[:20] or "button", "emoji": True})
    elif selected_option is not None:
        action["selected_option"] = selected_option
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM_ID},
        "api_app_id": APP_ID, "token": "legacy-token", "container": container,
        "trigger_id": f"{int(time.time())}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex}",
        "team": {"id": TEAM_ID, "domain": "fake"}, "enterprise": None, "is_enterprise_install": False,
        "channel": {"id": channel, "name": "general"}, "message": message, "state": {"values": {}},
        "response_url": response_url, "actions": [action],
    }
    return urlencode({"payload": json.dumps(payload, ensure_ascii=False)})


def assistant_thread_started_event(*, user: str = USER_ID, channel: str = DM_CHANNEL_ID,
                                   thread_ts: str | None = None, context_channel: str = CHANNEL_ID) -> dict:
    """`assistant_thread_started`: someone opened the bot's agent view (a new thread in its DM)."""
    thread_ts = thread_ts or new_ts()
    return {"type": "assistant_thread_started", "assistant_thread": {
        "user_id": user, "channel_id": channel, "thread_ts": thread_ts,
        "context": {"channel_id": context_channel, "team_id": TEAM_ID, "enterprise_id": None}},
        "event_ts": new_ts()}


def message_shortcut_payload(callback_id: str, text: str, *, user: str = USER_ID, channel: str = CHANNEL_ID,
                             message_ts: str | None = None, thread_ts: str | None = None,
                             author: str = "U0AUTHOR01",
                             response_url: str = "https://hooks.slack.com/app/T/1/x") -> str:
    """A `message_action` (a message shortcut) as Slack POSTs it: `payload=<json>`."""
    message_ts = message_ts or new_ts()
    message: dict[str, Any] = {"type": "message", "user": author, "ts": message_ts, "text": text,
                               "team": TEAM_ID, "blocks": _rich_text(text)}
    if thread_ts:
        message["thread_ts"] = thread_ts
    payload = {
        "type": "message_action", "token": "legacy-token", "action_ts": f"{time.time():.6f}",
        "team": {"id": TEAM_ID, "domain": "fake"}, "user": {"id": user, "username": user.lower(),
                                                            "team_id": TEAM_ID, "name": user.lower()},
        "channel": {"id": channel, "name": "general"}, "is_enterprise_install": False, "enterprise": None,
        "callback_id": callback_id, "trigger_id": f"{int(time.time())}.{uuid.uuid4().int % 10**12}.x",
        "response_url": response_url, "message_ts": message_ts, "message": message,
    }
    return urlencode({"payload": json.dumps(payload, ensure_ascii=False)})


def home_opened_event(user: str = USER_ID, tab: str = "home") -> dict:
    """An `app_home_opened` event (`tab` "home" or "messages"), as Slack sends it when a user opens the app."""
    return {"type": "app_home_opened", "user": user, "channel": DM_CHANNEL_ID, "tab": tab,
            "event_ts": f"{time.time():.6f}"}


def home_action_payload(action_id: str, value: str, *, user: str = USER_ID) -> str:
    """A `block_actions` click on a button in the App Home (no channel, no message, no response_url)."""
    view_id = f"V{uuid.uuid4().hex[:10].upper()}"
    payload = {
        "type": "block_actions", "user": {"id": user, "username": user.lower(), "team_id": TEAM_ID},
        "api_app_id": APP_ID, "token": "legacy-token", "container": {"type": "view", "view_id": view_id},
        "trigger_id": f"{int(time.time())}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex}",
        "team": {"id": TEAM_ID, "domain": "fake"}, "enterprise": None, "is_enterprise_install": False,
        "view": {"id": view_id, "type": "home", "team_id": TEAM_ID, "blocks": [], "state": {"values": {}}},
        "actions": [{"action_id": action_id, "block_id": "home_admin", "type": "button", "value": value,
                     "text": {"type": "plain_text", "text": value}, "action_ts": f"{time.time():.6f}"}],
    }
    return urlencode({"payload": json.dumps(payload, ensure_ascii=False)})


def view_submission_payload(view: dict, values: dict, *, user: str = USER_ID) -> str:
    """A modal's `view_submission` as Slack POSTs it: the opened view back with the inputs' state.

    `values`: {block_id: {action_id: value}}, a value being a selected option's value (radio buttons,
    given as {"selected_option": ...}) or a text input's text."""
    state: dict = {}
    for block_id, actions in values.items():
        for action_id, value in actions.items():
            entry = ({"type": "radio_buttons", "selected_option": value} if isinstance(value, dict)
                     else {"type": "plain_text_input", "value": value})
            state.setdefault(block_id, {})[action_id] = entry
    payload = {
        "type": "view_submission", "team": {"id": TEAM_ID, "domain": "fake"},
        "user": {"id": user, "username": user.lower(), "team_id": TEAM_ID}, "api_app_id": APP_ID,
        "token": "legacy-token", "trigger_id": f"{int(time.time())}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex}",
        "view": {**view, "state": {"values": state}}, "response_urls": [], "is_enterprise_install": False,
    }
    return urlencode({"payload": json.dumps(payload, ensure_ascii=False)})


# --------------------------------------------------------------------------- the real bot, served


@dataclass
class Response:
    status: int
    body: str
    headers: dict[str, str]
    elapsed_ms: float

    def json(self) -> Any:
        return json.loads(self.body)


def http_request(url: str, data: bytes | None = None, headers: dict[str, str] | None = None,
                 method: str | None = None, timeout: float = 30.0) -> Response:
    """One HTTP request with the status as a value (4xx/5xx are not exceptions)."""
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            body, status, got = reply.read(), reply.status, dict(reply.headers)
    except urllib.error.HTTPError as exc:
        body, status, got = exc.read(), exc.code, dict(exc.headers)
    return Response(status, body.decode("utf-8", errors="replace"), got, (time.perf_counter() - started) * 1000)


@dataclass
class BotServer:
    """A running bot and a Slack-side client for it: every `send_*` signs like Slack does."""

    url: str
    services: Any  # bot.services.Services
    app: Any  # slack_bolt.App
    secret: str = SIGNING_SECRET

    @property
    def events_url(self) -> str:
        return f"{self.url}/slack/events"

    def post(self, body: str | bytes, content_type: str, *, signed: bool = True, secret: str | None = None,
             timestamp: int | None = None, headers: dict[str, str] | None = None) -> Response:
        raw = body.encode() if isinstance(body, str) else body
        sent = {"Content-Type": content_type, "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)"}
        if signed:
            sent.update(sign(raw, secret or self.secret, timestamp))
        sent.update(headers or {})
        return http_request(self.events_url, raw, sent, "POST")

    def send_event(self, payload: str, *, retry_num: int | None = None, retry_reason: str = "http_timeout",
                   **kwargs: Any) -> Response:
        """POST an Events API payload; `retry_num` adds Slack's retry headers."""
        headers = dict(kwargs.pop("headers", None) or {})
        if retry_num is not None:
            headers.update({"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": retry_reason})
        return self.post(payload, "application/json", headers=headers, **kwargs)

    def send_form(self, form: str, **kwargs: Any) -> Response:
        """POST a slash command or an interaction (form-encoded, as Slack sends both)."""
        return self.post(form, "application/x-www-form-urlencoded", **kwargs)

    def get(self, path: str) -> Response:
        return http_request(f"{self.url}{path}", method="GET")


def bot_settings(data_dir: Path, slack: FakeSlackAPI, **overrides: Any):
    """Settings for a bot in HTTP mode talking to `slack`, keeping its state in `data_dir`."""
    from strategy_bot.settings import Settings

    values: dict[str, Any] = dict(data_dir=Path(data_dir), slack_bot_token=slack.token, slack_app_token="",
                                  slack_signing_secret=SIGNING_SECRET, slack_api_url=slack.api_url,
                                  host="127.0.0.1", port=0, http_threads=8, slack_workers=4,
                                  # The post-and-update path most tests exercise; streaming tests turn it on.
                                  slack_streaming=False)
    values.update(overrides)
    return Settings(**values)


@contextmanager
def running_bot(settings, *, kb=None, extra_listeners=(), wait_ready: bool = True,
                ready_timeout: float = 120.0) -> Iterator[BotServer]:
    """The real bot in HTTP mode on 127.0.0.1 (a free port), served by waitress in a thread.

    `kb`: an already-loaded `KnowledgeBase` to share (tests reuse the session's); without it the
    bot loads (or builds) the index under `settings.data_dir` as `strategy-bot serve` does.
    `extra_listeners`: `register(app, services)` functions run after the feature modules.
    Leaving the block stops the server and waits for answers in flight, then closes the stores
    — so a new `running_bot` over the same DATA_DIR is a restart.
    """
    from bot.app import build_app
    from bot.http_server import create_http_server, stop_http_server
    from bot.resume import Resumer
    from bot.services import build_services
    from bot.wsgi import BotWsgiApp

    services = build_services(settings, kb=kb)
    server = thread = resumer = None
    try:
        services.load_index_in_background()
        app = build_app(services, extra_listeners=extra_listeners)
        resumer = Resumer(app, services)  # as `strategy-bot serve` does
        resumer.start()
        server = create_http_server(BotWsgiApp(app, services), settings.with_(host="127.0.0.1", port=0))
        thread = threading.Thread(target=server.run, name="bot-http", daemon=True)
        thread.start()
        bot = BotServer(f"http://127.0.0.1:{server.effective_port}", services, app, settings.slack_signing_secret)
        if wait_ready:
            wait_healthy(bot.url, ready_timeout)
        yield bot
    finally:
        if server is not None:
            stop_http_server(server, thread)
        if resumer is not None:
            resumer.stop()
        services.close()


def wait_healthy(url: str, timeout: float = 120.0) -> None:
    """Poll `GET /healthz` until 200; AssertionError with the last answer on timeout."""
    deadline = time.monotonic() + timeout
    last: Response | str = "no answer"
    while time.monotonic() < deadline:
        try:
            last = http_request(f"{url}/healthz", method="GET", timeout=5)
            if last.status == 200:
                return
        except OSError as exc:
            last = str(exc)
        time.sleep(0.1)
    raise AssertionError(f"{url}/healthz not ready after {timeout}s: {last}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve_subprocess(settings, *, ready_timeout: float = 180.0, extra_env: dict[str, str] | None = None,
                     log_path: Path | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """`strategy-bot serve` in a child process configured by `settings` (env vars); yields (url, process).

    Slower than `running_bot` (the child loads the model and index itself): for tests of the
    command and of process-level behaviour (restarts, signals). `log_path`: keep the child's
    output (its log) in that file, for tests and benchmarks that read it.
    """
    port = settings.port or free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
    env.update({name.upper(): str(value) for name, value in settings.redacted().items()
                if not isinstance(value, (tuple, list))})
    env.update(SLACK_BOT_TOKEN=settings.slack_bot_token, SLACK_APP_TOKEN=settings.slack_app_token,
               SLACK_SIGNING_SECRET=settings.slack_signing_secret, LLM_API_KEY=settings.llm_api_key,
               ADMIN_USER_IDS=",".join(settings.admin_user_ids), PORT=str(port), HOST="127.0.0.1",
               DATABASE_URL=settings.database_url)
    env.update(extra_env or {})
    # The child's output goes to a file, not a pipe nobody reads (a full pipe would stall the bot).
    with (open(log_path, "w+", encoding="utf-8", errors="replace") if log_path else
          tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace")) as output:
        process = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve"], cwd=str(REPO), env=env,
                                   stdout=output, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            try:
                wait_healthy(url, ready_timeout)
            except AssertionError:
                process.kill()
                process.wait(timeout=10)
                output.seek(0)
                raise AssertionError(f"`strategy-bot serve` did not become healthy; its output:\n"
                                     f"{output.read()[-4000:]}") from None
            yield url, process
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
