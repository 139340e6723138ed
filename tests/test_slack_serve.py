"""`strategy-bot serve` itself, in a child process: HTTP mode end to end, Socket Mode start-up, the manifest."""
from __future__ import annotations

import json
import subprocess
import sys

import yaml
from sqlalchemy import select

from databases import sqlite_url
from slack_harness import (
    BOT_USER_ID,
    REPO,
    BotServer,
    FakeSlackAPI,
    FakeSocketModeServer,
    bot_settings,
    event_payload,
    mention_event,
    serve_subprocess,
    url_verification_payload,
)
from strategy_bot.database import open_engine
from strategy_bot.schema import deliveries


def test_serve_answers_mentions_over_http_and_stops_cleanly(fresh_data_dir):
    with FakeSlackAPI() as slack:
        with serve_subprocess(bot_settings(fresh_data_dir, slack)) as (url, process):
            bot = BotServer(url, services=None, app=None)
            assert bot.post(url_verification_payload("x1"), "application/json").json() == {"challenge": "x1"}
            assert bot.get("/healthz").status == 200
            assert bot.get("/nope").status == 404
            event = mention_event(f"<@{BOT_USER_ID}> What does open-sourcing a model cost?")
            payload = event_payload(event)
            assert bot.send_event(payload).status == 200
            post = slack.wait_for("chat.postMessage", timeout=60)[0]
            assert post.body["thread_ts"] == event["ts"] and post.token == slack.token
            process.terminate()  # what `docker stop` sends
            assert process.wait(timeout=30) == 0
    state = open_engine(sqlite_url(fresh_data_dir))  # the delivery is recorded in the state database
    try:
        with state.connect() as connection:
            status = connection.execute(select(deliveries.c.status).where(
                deliveries.c.event_id == json.loads(payload)["event_id"])).scalar()
    finally:
        state.dispose()
    assert status == "done"


def test_socket_mode_answers_mentions_without_a_public_url(fresh_data_dir):
    with FakeSlackAPI() as slack, FakeSocketModeServer() as socket_mode:
        slack.script("apps.connections.open", {"ok": True, "url": socket_mode.url}, times=100)
        settings = bot_settings(fresh_data_dir, slack, slack_app_token="xapp-test-app-token",
                                slack_signing_secret="")
        with serve_subprocess(settings) as (url, process):  # healthy: /healthz is served in Socket Mode too
            socket_mode.wait_connected()
            assert slack.calls("apps.connections.open")[0].token == "xapp-test-app-token"
            event = mention_event(f"<@{BOT_USER_ID}> What does open-sourcing a model cost?")
            payload = event_payload(event)
            envelope = socket_mode.send_event(payload)
            assert socket_mode.wait_ack(envelope)["envelope_id"] == envelope
            post = slack.wait_for("chat.postMessage", timeout=60)[0]
            assert post.body["thread_ts"] == event["ts"] and "*Sources*" in json.dumps(post.body["blocks"])
            socket_mode.wait_ack(socket_mode.send_event(payload, retry_attempt=1))  # a redelivery: acked...
            slack.settle(quiet=0.5)
            assert len(slack.calls("chat.postMessage")) == 1  # ...and not answered twice
            assert BotServer(url, None, None).post("{}", "application/json").status == 404  # no HTTP endpoint
            process.terminate()
            assert process.wait(timeout=30) == 0


def test_socket_mode_asks_slack_for_a_connection_with_the_app_token(fresh_data_dir):
    with FakeSlackAPI() as slack:
        slack.script("apps.connections.open", {"ok": False, "error": "invalid_auth"}, times=5)
        settings = bot_settings(fresh_data_dir, slack, slack_app_token="xapp-test-app-token", slack_signing_secret="")
        env = {name.upper(): str(value) for name, value in settings.redacted().items()
               if not isinstance(value, tuple)}
        env.update(SLACK_BOT_TOKEN=settings.slack_bot_token, SLACK_APP_TOKEN=settings.slack_app_token,
                   SLACK_SIGNING_SECRET="", PORT="0", PATH="/usr/bin:/bin", DATABASE_URL=settings.database_url)
        done = subprocess.run([sys.executable, "-m", "bot.cli", "serve"], cwd=str(REPO), env=env,
                              capture_output=True, text=True, timeout=180)
        opened = slack.calls("apps.connections.open")
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Slack did not accept SLACK_APP_TOKEN: invalid_auth" in done.stderr
    assert "xapp-test-app-token" not in done.stderr + done.stdout  # secrets are never logged
    assert opened and opened[0].token == "xapp-test-app-token"


def test_serve_without_slack_settings_says_what_is_missing(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "DATA_DIR": str(tmp_path), "HOME": str(tmp_path),
           "SLACK_BOT_TOKEN": "", "SLACK_APP_TOKEN": "", "SLACK_SIGNING_SECRET": ""}  # a developer's .env stays out
    done = subprocess.run([sys.executable, "-m", "bot.cli", "serve"], cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "SLACK_BOT_TOKEN is not set" in done.stderr


def test_the_manifest_declares_what_the_listeners_need():
    manifest = yaml.safe_load((REPO / "manifest.yml").read_text(encoding="utf-8"))
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    assert {"app_mention", "message.im", "message.channels"} <= events
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"app_mentions:read", "channels:history", "im:history", "chat:write", "reactions:write",
            "commands"} <= scopes
    commands = {c["command"]: c for c in manifest["features"]["slash_commands"]}
    assert set(commands) == {"/strategy-check", "/strategy-reindex"}
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    urls = [c["url"] for c in commands.values()] + [manifest["settings"]["interactivity"]["request_url"],
                                                    manifest["settings"]["event_subscriptions"]["request_url"]]
    assert all(url.endswith("/slack/events") for url in urls)
    assert manifest["features"]["bot_user"]["display_name"]
