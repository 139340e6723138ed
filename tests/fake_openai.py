"""A fake OpenAI-compatible chat server on loopback, for driving the real ChatOpenAI client.

LLM providers cannot run here, so tests talk to this instead: it serves
`POST /v1/chat/completions` (plain JSON, or server-sent events for `stream: true`)
with completions scripted by the test, and records every request it got. Written by
hand because it is the thing under the client, not a client: no library plays it.
"""
from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


@dataclass(frozen=True)
class Reply:
    """One scripted completion: its text, how long to wait before answering, or an HTTP error."""

    content: str = ""
    delay_s: float = 0.0
    status: int = 200
    error: str = ""
    chunk_chars: int = 6  # streamed replies come in pieces this long
    chunk_delay_s: float = 0.0  # and this far apart, like a model writing


@dataclass(frozen=True)
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.body.get("messages", [])

    def message(self, role: str) -> str:
        return "\n".join(str(m.get("content", "")) for m in self.messages if m.get("role") == role)


class FakeOpenAI:
    """Start with `start()`; script with `reply(...)`; read `requests`; `stop()` at the end."""

    def __init__(self) -> None:
        self._script: deque[Reply] = deque()
        self._responder: Callable[[Recorded], Reply | str] | None = None
        self._lock = threading.Lock()
        self.requests: list[Recorded] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> "FakeOpenAI":
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reply(self, *replies: Reply | str) -> None:
        """Replace the script and forget earlier requests."""
        with self._lock:
            self._script = deque(r if isinstance(r, Reply) else Reply(r) for r in replies)
            self.requests, self._responder = [], None

    def respond(self, responder: Callable[[Recorded], Reply | str]) -> None:
        """Answer every request with `responder(request)` (e.g. a translation per sentence)."""
        with self._lock:
            self._responder, self._script, self.requests = responder, deque(), []

    def _next(self, recorded: Recorded, pop: bool) -> Reply | None:
        with self._lock:
            self.requests.append(recorded)
            if pop and self._responder is not None:
                reply = self._responder(recorded)
                return reply if isinstance(reply, Reply) else Reply(reply)
            return self._script.popleft() if pop and self._script else None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                recorded = Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                routed = self.path.endswith("/chat/completions")
                reply = fake._next(recorded, pop=routed)
                if not routed:
                    return self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                if reply is None:
                    return self._json(500, {"error": {"message": "no scripted reply left", "type": "server_error"}})
                time.sleep(reply.delay_s)
                try:
                    if reply.status != 200:
                        self._json(reply.status, {"error": {"message": reply.error, "type": "invalid_request_error",
                                                            "code": str(reply.status)}})
                    elif body.get("stream"):
                        self._stream(reply, body)
                    else:
                        self._json(200, completion(reply.content, body.get("model", "")))
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (its timeout): nothing to answer

            def _json(self, status: int, data: dict) -> None:
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _stream(self, reply: Reply, body: dict) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                model = body.get("model", "")
                text = reply.content
                pieces = [text[i:i + reply.chunk_chars] for i in range(0, len(text), reply.chunk_chars)]
                for i, piece in enumerate(pieces):
                    delta = {"content": piece, **({"role": "assistant"} if i == 0 else {})}
                    if i:
                        time.sleep(reply.chunk_delay_s)
                    self._event(chunk(model, delta, None))
                self._event(chunk(model, {}, "stop"))
                if (body.get("stream_options") or {}).get("include_usage"):
                    self._event({**chunk(model, {}, None), "choices": [], "usage": usage(text)})
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

            def _event(self, data: dict) -> None:
                self.wfile.write(f"data: {json.dumps(data)}\n\n".encode())
                self.wfile.flush()

        return Handler


def usage(text: str) -> dict[str, int]:
    return {"prompt_tokens": 100, "completion_tokens": len(text) // 4, "total_tokens": 100 + len(text) // 4}


def completion(content: str, model: str) -> dict:
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": "stop", "logprobs": None}],
            "usage": usage(content)}


def chunk(model: str, delta: dict, finish_reason: str | None) -> dict:
    return {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}]}
