"""Running the bot: Socket Mode when SLACK_APP_TOKEN is set, otherwise HTTP on PORT.

HTTP mode serves Bolt's WSGI adapter (`bot.wsgi`) with waitress (`bot.http_server` sets
its limits). Why waitress: a production WSGI server that is pure Python (nothing to compile in the Docker image),
multi-threaded (acks are never queued behind an answer), maintained by the Pylons
project, and it refuses malformed HTTP with a 400 and carries on — unlike Bolt's
development server. Why not uvicorn/ASGI: our Bolt app and knowledge base are
synchronous; an ASGI server would only add a thread-pool hop per request.
In Socket Mode, the same server answers `/healthz` only, for the container's HEALTHCHECK.
"""
from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from slack_sdk.errors import SlackApiError

from bot.app import SlackSetupError, build_app
from bot.http_server import create_http_server, stop_http_server
from bot.resume import Resumer
from bot.services import Services, build_services
from bot.wsgi import BotWsgiApp
from strategy_bot.settings import Settings

log = logging.getLogger(__name__)


def serve_forever(settings: Settings) -> None:
    """Serve until SIGINT/SIGTERM. The index loads in the background; `/healthz` says when it is ready."""
    _stop_on_sigterm()
    services = build_services(settings)
    resumer = None
    try:
        services.load_index_in_background()
        app = build_app(services)
        resumer = Resumer(app, services)  # answers what a crash left acknowledged but unanswered
        resumer.start()
        if settings.slack_app_token:
            _serve_socket_mode(app, services)
        else:
            _serve_http(app, services)
    finally:
        if resumer is not None:
            resumer.stop()
        services.close()


def _serve_http(app, services: Services) -> None:
    settings = services.settings
    server = create_http_server(BotWsgiApp(app, services), settings)
    log.info("Slack HTTP endpoint on http://%s:%s/slack/events (health: /healthz)",
                settings.host, server.effective_port)
    try:
        server.run()
    except (KeyboardInterrupt, SystemExit):
        log.info("stopping")
    finally:
        server.close()


def _serve_socket_mode(app, services: Services) -> None:
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    settings = services.settings
    health_server = create_http_server(BotWsgiApp(None, services), settings, threads=2)
    health_thread = threading.Thread(target=health_server.run, name="health", daemon=True)
    health_thread.start()
    handler = SocketModeHandler(app, settings.slack_app_token)
    log.info("Socket Mode: connecting to Slack (health on port %s)", health_server.effective_port)
    try:
        handler.start()
    except (KeyboardInterrupt, SystemExit):
        log.info("stopping")
    except SlackApiError as exc:  # apps.connections.open refused the app token
        raise SlackSetupError(f"Slack did not accept SLACK_APP_TOKEN: {exc.response.get('error')}") from None
    finally:
        handler.close()
        stop_http_server(health_server, health_thread)


def _stop_on_sigterm() -> None:
    """`docker stop` sends SIGTERM: leave like on Ctrl-C, closing stores and connections."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)
