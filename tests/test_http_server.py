"""Stopping the HTTP server (bot/http_server.py) with a request in flight: a real waitress server on
loopback and a real client; the WSGI app is a stand-in whose answer is held half-way by the test."""
from __future__ import annotations

import logging
import threading
import time

from bot.http_server import create_http_server, stop_http_server
from slack_harness import http_request
from strategy_bot.settings import Settings

BODY = b"first half, second half"


def test_stopping_the_server_lets_a_request_in_flight_finish_its_answer(tmp_path, caplog):
    """The answer being written when the server stops arrives whole, and no worker trips on a closed socket.

    The old stop closed every socket first: the client lost the rest of the answer, and a worker finishing
    a request just then wrote to the loop's closed wake-up pipe (`OSError: Bad file descriptor`)."""
    halfway, go_on = threading.Event(), threading.Event()

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))])

        def body():
            yield BODY[:11]
            halfway.set()
            go_on.wait(60)
            yield BODY[11:]
        return body()

    server = create_http_server(app, Settings(data_dir=tmp_path, host="127.0.0.1", port=0), threads=2)
    loop = threading.Thread(target=server.run, name="test-http", daemon=True)
    loop.start()
    answers: list = []
    client = threading.Thread(target=lambda: answers.append(_get(f"http://127.0.0.1:{server.effective_port}/")))
    client.start()
    assert halfway.wait(30), "the request never reached the app"
    with caplog.at_level(logging.WARNING):
        stopping = threading.Thread(target=stop_http_server, args=(server, loop, 30.0), name="test-stop")
        stopping.start()
        deadline = time.monotonic() + 2.0  # the old stop closed the sockets within milliseconds
        while server._map and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server._map, "the sockets were closed with a request in flight"
        go_on.set()
        client.join(30)
        stopping.join(60)
    assert not stopping.is_alive() and not loop.is_alive(), "the server did not stop"
    assert answers == [(200, BODY)]
    assert not server._map  # every socket closed in the end
    assert "Bad file descriptor" not in caplog.text and "Exception" not in caplog.text, caplog.text[-1000:]


def _get(url: str) -> tuple[int, bytes] | str:
    try:
        answer = http_request(url, method="GET", timeout=60)
    except Exception as exc:  # e.g. IncompleteRead: the connection closed half-way
        return f"{type(exc).__name__}: {exc}"
    return answer.status, answer.body.encode()
