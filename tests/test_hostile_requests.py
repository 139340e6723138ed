"""Hostile and malformed HTTP requests, over the wire: the real `serve` (or the real Bolt app on
waitress), requests signed as Slack signs them, and the fake Slack Web API.

What is checked: an unsigned request costs one short log line and cannot forge one; odd
signature headers and absurd JSON are refused with a 4xx, not a 500; slow or idle
connections cannot keep Slack out.
"""
from __future__ import annotations

import json
import re
import socket
import threading
import time
from contextlib import ExitStack, contextmanager
from typing import Iterator

import pytest

from slack_harness import (
    BOT_USER_ID,
    BotServer,
    FakeSlackAPI,
    bot_settings,
    event_payload,
    http_request,
    mention_event,
    running_bot,
    serve_subprocess,
    sign,
)

QUESTION = "What are the long-term costs of open-sourcing a model?"
FORGED = "2030-01-01 00:00:00,000 ERROR bot.listeners.reindex: re-index by UADMIN001 FORGED"
RECORD_START = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ")


pytestmark = pytest.mark.usefixtures("fresh_slack_calls")


def mention_body() -> tuple[dict, bytes]:
    event = mention_event(f"<@{BOT_USER_ID}> {QUESTION}")
    return event, event_payload(event).encode()


def wait_answer(slack: FakeSlackAPI, event: dict, timeout: float = 30.0):
    return slack.wait_for("chat.postMessage", timeout=timeout,
                          where=lambda c: c.body.get("thread_ts") == event["ts"])[0]


# --------------------------------------------------------------------------- the log


def test_unsigned_requests_cost_one_short_log_line_each_and_cannot_forge_one(fresh_data_dir, slack, tmp_path):
    log = tmp_path / "serve.log"
    big = json.dumps({"type": "event_callback", "event": {"type": "app_mention", "text": "x" * 1_000_000}})
    forged = f"command=/strategy-reindex&user_id=UADMIN001\n{FORGED}&text=rebuild"
    with serve_subprocess(bot_settings(fresh_data_dir, slack, log_level="INFO"), log_path=log) as (url, _):
        bot = BotServer(url, services=None, app=None)
        before = log.stat().st_size
        statuses = [bot.post(big, "application/json", signed=False).status for _ in range(3)]
        statuses.append(bot.send_form(forged, signed=False).status)
        statuses.append(bot.send_form(forged, headers={"X-Slack-Signature": "v0=" + "0" * 64}).status)
        event, body = mention_body()  # and Slack itself still gets through
        assert bot.post(body, "application/json").status == 200
        wait_answer(slack, event, timeout=60)
        time.sleep(0.5)  # the child's log handler writes as it goes; give the last line a moment
        grown = log.read_text(encoding="utf-8")[before:]
    assert statuses == [401] * 5
    assert len(grown) < 5 * 300 + 2000, grown[:3000]  # five short refusals and the answer's lines: not 3 MB
    assert "xxxxxxxxxx" not in grown
    lines = grown.splitlines()
    assert not any(line.startswith(FORGED[:24]) for line in lines)
    assert all(RECORD_START.match(line) for line in lines), lines
    refusals = [line for line in lines if "refused an unsigned request" in line]
    assert len(refusals) == 5 and "1000" in refusals[0] and "bad signature" in refusals[-1]


# --------------------------------------------------------------------------- odd headers and bodies


@pytest.fixture(scope="module")
def bot(slack, kb, tmp_path_factory):
    data = tmp_path_factory.mktemp("hostile") / "data"
    with running_bot(bot_settings(data, slack), kb=kb) as server:
        yield server


@pytest.mark.parametrize("timestamp", ["abc", "9" * 5000, "1700000000²", "-1", "1e9", ""])
def test_a_timestamp_that_is_not_a_unix_time_is_refused_with_401_not_500(bot, timestamp):
    _, body = mention_body()
    headers = {**sign(body), "X-Slack-Request-Timestamp": timestamp}
    response = bot.post(body, "application/json", signed=False, headers=headers)
    assert response.status == 401 and response.json() == {"error": "invalid request"}


def test_json_nested_200000_deep_is_refused_cheaply_signed_or_not(bot, slack):
    deep = "[" * 200_000 + "]" * 200_000
    assert bot.post(deep, "application/json", signed=False).status == 401
    response = bot.post(deep, "application/json")
    assert response.status == 400 and "nested too deeply" in response.json()["detail"]
    payload = "payload=" + "%5B" * 100_000 + "%5D" * 100_000
    assert bot.send_form(payload).status == 400
    event, body = mention_body()
    assert bot.post(body, "application/json").status == 200
    wait_answer(slack, event)


# --------------------------------------------------------------------------- slow and idle connections


@contextmanager
def trickling_connections(url: str, count: int, every_s: float) -> Iterator[list[socket.socket]]:
    """`count` connections that each start a request, then send one more header line every `every_s`."""
    host, port = url.removeprefix("http://").split(":")
    sockets: list[socket.socket] = []
    stop = threading.Event()

    def trickle() -> None:
        line = 0
        while not stop.wait(every_s):
            line += 1
            for sock in sockets:
                try:
                    sock.sendall(f"X-Trickle-{line}: 1\r\n".encode())
                except OSError:
                    pass

    with ExitStack() as stack:
        for _ in range(count):
            sock = stack.enter_context(socket.create_connection((host, int(port)), timeout=5))
            sock.sendall(b"POST /slack/events HTTP/1.1\r\nHost: bot\r\n")
            sockets.append(sock)
        thread = threading.Thread(target=trickle, daemon=True)
        thread.start()
        try:
            yield sockets
        finally:
            stop.set()
            thread.join(timeout=10)


def test_a_signed_mention_is_answered_while_200_trickling_connections_are_held(bot, slack):
    with trickling_connections(bot.url, 200, every_s=1.0):
        time.sleep(0.5)  # all of them accepted (or queued) by now
        assert http_request(f"{bot.url}/healthz", method="GET", timeout=5).status == 200
        event, body = mention_body()
        response = http_request(bot.events_url, body, {"Content-Type": "application/json", **sign(body)}, "POST",
                                timeout=5)
        assert response.status == 200 and response.elapsed_ms < 3000  # Slack's own limit
        assert "*Sources*" in json.dumps(wait_answer(slack, event, timeout=60).body["blocks"])


def test_a_request_that_has_not_arrived_in_time_is_dropped(slack, kb, tmp_path):
    settings = bot_settings(tmp_path / "data", slack, http_request_timeout_s=1.0)
    with running_bot(settings, kb=kb) as server, trickling_connections(server.url, 3, every_s=0.3) as sockets:
        deadline = time.monotonic() + 10
        for sock in sockets:
            sock.settimeout(max(deadline - time.monotonic(), 0.1))
            try:
                assert sock.recv(1024) == b""  # closed by the bot: the request took over a second
            except ConnectionResetError:
                pass
        assert time.monotonic() < deadline
        assert server.get("/healthz").status == 200
