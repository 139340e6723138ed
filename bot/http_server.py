"""The HTTP server (waitress) and the limits that keep it reachable by Slack under hostile traffic.

waitress reads each request on its event loop and hands it to a worker thread only once
it has fully arrived, so slow clients cost connections, not threads. Its defaults still
let a few clients take the bot offline: 100 connections at most, and an inactivity
timeout that a client trickling one header line every few seconds never triggers (105
such connections made /healthz and Slack's events time out for as long as they were
held). So:

- `HTTP_CONNECTION_LIMIT` (default 1000) connections, watched with poll() (select()
  cannot watch descriptors past 1024), and the process's open-file limit raised to fit;
- `HTTP_REQUEST_TIMEOUT_S` (default 10): a request's headers and body must have arrived
  this long after its first byte, or the connection is closed. waitress has no such
  deadline; `DeadlineChannel` adds it (see there);
- idle connections are closed after CHANNEL_TIMEOUT_S, checked every CLEANUP_INTERVAL_S
  (waitress checks every 30 s by default, which would let idle ones linger twice as long);
- headers over MAX_HEADER_BYTES get 431, bodies over MAX_BODY_BYTES 413.

In production a reverse proxy belongs in front anyway (README: "In front of the bot").
"""
from __future__ import annotations

import logging
import resource
import threading
import time

from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import MultiSocketServer, TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher

from strategy_bot.settings import Settings

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 5 * 1024 * 1024  # Slack's payloads are kilobytes; refuse anything absurd (413)
MAX_HEADER_BYTES = 32 * 1024  # Slack sends about 1 KB of headers (waitress's default: 256 KB)
CHANNEL_TIMEOUT_S = 30  # close connections idle this long (no request in progress)
CLEANUP_INTERVAL_S = 2  # how often waitress looks for idle connections (default 30 s)
RESERVED_FILES = 128  # descriptors kept for everything but client connections (SQLite, sockets to Slack…)


class TimedRequestParser(HTTPRequestParser):
    """waitress's request parser, remembering when the request's first bytes arrived."""

    def __init__(self, adj: Adjustments) -> None:
        super().__init__(adj)
        self.started = time.monotonic()


class DeadlineChannel(HTTPChannel):
    """A connection that is closed when its request has not fully arrived `request_timeout_s`
    after its first byte.

    Why a subclass: waitress only closes connections that are *inactive* for
    `channel_timeout`, which a client sending one header line every few seconds never is.
    `readable()` is the hook waitress's event loop calls on every connection at least once a
    second (the loop's timeout), before reading from it; marking the channel `will_close`
    there is how waitress's own maintenance closes idle channels, so the close itself is
    waitress's code path.
    """

    parser_class = TimedRequestParser

    def readable(self) -> bool:
        request = self.request
        limit = getattr(self.server, "request_timeout_s", None)
        if (limit and request is not None and not request.completed and not self.will_close
                and time.monotonic() - request.started > limit):
            log.info("closed a connection from %s: its request did not arrive within %g s",
                     self.addr[0] if self.addr else "?", limit)
            self.will_close = True
            return False
        return super().readable()


class BotHTTPServer(TcpWSGIServer):
    """waitress's TCP server with `DeadlineChannel` connections."""

    channel_class = DeadlineChannel
    request_timeout_s: float = 10.0


def create_http_server(wsgi_app, settings: Settings, *, threads: int | None = None):
    """A waitress server bound now to settings.host:port (port 0 picks a free one: see
    `.effective_port`); `.run()` serves. `threads` overrides HTTP_THREADS."""
    limit = fit_connection_limit(settings.http_connection_limit)
    adj = Adjustments(host=settings.host, port=settings.port, threads=threads or settings.http_threads,
                      ident="strategy-bot", max_request_body_size=MAX_BODY_BYTES,
                      max_request_header_size=MAX_HEADER_BYTES, channel_timeout=CHANNEL_TIMEOUT_S,
                      cleanup_interval=CLEANUP_INTERVAL_S, connection_limit=limit, asyncore_use_poll=True,
                      clear_untrusted_proxy_headers=True)
    # What waitress.create_server does for TCP addresses, with our server class (it has no parameter for one).
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(adj.threads)
    socket_map: dict = {}
    servers = [BotHTTPServer(wsgi_app, socket_map, dispatcher=dispatcher, adj=adj, sockinfo=info)
               for info in adj.listen]
    for server in servers:
        server.request_timeout_s = settings.http_request_timeout_s
    if len(servers) == 1:
        return servers[0]
    return MultiSocketServer(socket_map, adj, [(s.effective_host, s.effective_port) for s in servers],
                             dispatcher, servers[-1].log_info)


def fit_connection_limit(wanted: int) -> int:
    """The connection limit the process's open-file limit allows, raising that limit (up to the
    hard one) when it is too low: past it, accept() fails on every loop and no one gets in."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = wanted + RESERVED_FILES
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and soft < needed:
        fitted = max(soft - RESERVED_FILES, 16)
        log.warning("HTTP_CONNECTION_LIMIT=%d does not fit the open-file limit (%d): using %d connections",
                    wanted, soft, fitted)
        return fitted
    return wanted


def stop_http_server(server, thread: threading.Thread | None = None, timeout: float = 10.0) -> None:
    """Stop a server whose `run()` loop is in another thread: first its workers finish the requests
    they are serving (at most `timeout` s; the loop still runs, writing their answers out), then the
    loop closes its sockets itself (closing them from here would pull them from under its `poll`).

    Why in that order: a worker ends each request by waking the loop through its pipe; closed first,
    the pipe was gone (`OSError: Bad file descriptor`, or a byte written into whatever file took the
    descriptor's number) and the answer still being written was cut off."""
    server.task_dispatcher.shutdown(timeout=timeout)
    server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
    if thread is not None:
        thread.join(timeout)
