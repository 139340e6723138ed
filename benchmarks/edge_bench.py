"""Hostile traffic against `strategy-bot serve` (HTTP mode): its cost to the bot, and whether Slack still gets in.

The bot runs as a real `strategy-bot serve` child process with its log in a file; this
process plays both the attacker and Slack (signed mentions, and the fake Web API that
receives the answers).

Phases, in this order:
  log flood   10 unsigned 4 MB posts, then one unsigned form whose body holds a raw newline
              and a forged log line: how much the log grows, and whether the forged line appears
  cosmetic    the 👀 reaction answered 429 with Retry-After: 20: mention → answer latency
  idle        200 connections that each send a request line and then one header line every 8 s
              (re-opened when the bot drops them, as an attacker would), held for `--hold` seconds
              while a signed mention is sent every 2 s: /healthz, ack and mention → answer latency,
              the bot's RSS (last: without the limits, requests stuck here are served much later)

    .venv/bin/python benchmarks/edge_bench.py [--connections 200] [--hold 30]

DATA_DIR (default ./data) must hold an index, or one is built first (as slack_bench.py does).
"""
from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "benchmarks"), str(REPO / "tests")]
from bench_stats import percentile  # noqa: E402
from slack_bench import prepared_data_dir  # noqa: E402
from slack_harness import (  # noqa: E402
    BOT_USER_ID,
    FakeSlackAPI,
    bot_settings,
    event_payload,
    http_request,
    mention_event,
    serve_subprocess,
    sign,
)
from strategy_bot.settings import Settings  # noqa: E402

FLOOD_POSTS = 10
FLOOD_BYTES = 4 * 1024 * 1024
FORGED = "2030-01-01 00:00:00,000 ERROR bot.listeners.reindex: re-index by UADMIN001 FORGED"
TRICKLE_EVERY_S = 8.0
QUESTION = "What are the long-term costs of open-sourcing a model?"


def rss_mb(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 1_048_576


def log_flood(url: str, log: Path) -> dict:
    """Unsigned posts of FLOOD_BYTES, then a form body carrying a forged log line."""
    before = log.stat().st_size
    statuses = []
    envelope = json.dumps({"type": "event_callback", "event": {"type": "app_mention", "text": ""}}).encode()
    body = envelope[:-3] + b"x" * (FLOOD_BYTES - len(envelope)) + envelope[-3:]  # valid JSON, FLOOD_BYTES long
    for _ in range(FLOOD_POSTS):
        statuses.append(http_request(f"{url}/slack/events", body, {"Content-Type": "application/json"},
                                     "POST", timeout=60).status)
    forged = f"command=/strategy-reindex&user_id=UADMIN001\n{FORGED}&text=rebuild".encode()
    statuses.append(http_request(f"{url}/slack/events", forged,
                                 {"Content-Type": "application/x-www-form-urlencoded"}, "POST").status)
    time.sleep(0.5)  # let the log handler flush
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    return {"grown": log.stat().st_size - before, "statuses": statuses,
            "forged_line": any(line.startswith(FORGED[:30]) for line in lines)}


class Trickler:
    """Connections that start a request and then send one header line every TRICKLE_EVERY_S."""

    def __init__(self, host: str, port: int, count: int) -> None:
        self.address, self.count = (host, port), count
        self.sockets: list[socket.socket | None] = [None] * count
        self.reopened = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="trickler", daemon=True)

    def _open(self) -> socket.socket:
        sock = socket.create_connection(self.address, timeout=5)
        sock.sendall(b"POST /slack/events HTTP/1.1\r\nHost: bot\r\n")
        return sock

    def start(self) -> "Trickler":
        for i in range(self.count):
            self.sockets[i] = self._open()
        self._thread.start()
        return self

    def _run(self) -> None:
        line = 0
        while not self._stop.wait(TRICKLE_EVERY_S):
            line += 1
            for i, sock in enumerate(self.sockets):
                try:
                    assert sock is not None
                    sock.sendall(f"X-Trickle-{line}: 1\r\n".encode())
                except OSError:  # the bot dropped it: come back, as an attacker would
                    if sock is not None:
                        sock.close()
                    try:
                        self.sockets[i] = self._open()
                        self.reopened += 1
                    except OSError:
                        self.sockets[i] = None

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        for sock in self.sockets:
            if sock is not None:
                sock.close()


def signed_mention(url: str, slack: FakeSlackAPI, timeout: float = 30.0) -> tuple[float, float]:
    """(ack ms, mention → answer ms) of one signed mention; inf when it timed out."""
    event = mention_event(f"<@{BOT_USER_ID}> {QUESTION}")
    body = event_payload(event).encode()
    started = time.perf_counter()
    try:
        response = http_request(f"{url}/slack/events", body, {"Content-Type": "application/json", **sign(body)},
                                "POST", timeout=timeout)
    except OSError:
        return float("inf"), float("inf")
    ack = response.elapsed_ms if response.status == 200 else float("inf")
    try:
        call = slack.wait_for("chat.postMessage", timeout=timeout,
                              where=lambda c: c.body.get("thread_ts") == event["ts"])[0]
    except AssertionError:
        return ack, float("inf")
    return ack, (call.at - started) * 1000


def health_ms(url: str) -> float:
    try:
        response = http_request(f"{url}/healthz", method="GET", timeout=30)
    except OSError:
        return float("inf")
    return response.elapsed_ms if response.status == 200 else float("inf")


def idle_connections(url: str, slack: FakeSlackAPI, pid: int, count: int, hold_s: float) -> dict:
    port = int(url.rsplit(":", 1)[1])
    rss_before = rss_mb(pid)
    trickler = Trickler("127.0.0.1", port, count).start()
    acks, answers, health, rss = [], [], [], []
    try:
        time.sleep(1.0)
        deadline = time.monotonic() + hold_s
        while time.monotonic() < deadline:
            health.append(health_ms(url))
            ack, answer = signed_mention(url, slack)
            acks.append(ack)
            answers.append(answer)
            rss.append(rss_mb(pid))
            time.sleep(2.0)
    finally:
        trickler.stop()
    return {"acks": acks, "answers": answers, "health": health, "rss_before": rss_before, "rss_max": max(rss),
            "reopened": trickler.reopened}


def cosmetic_429(url: str, slack: FakeSlackAPI) -> float:
    slack.settle(quiet=1.0, timeout=60)
    slack.reset()
    slack.rate_limit("reactions.add", retry_after=20)
    return signed_mention(url, slack, timeout=60)[1]


def fmt(values: list[float]) -> str:
    timed_out = sum(v == float("inf") for v in values)
    done = [v for v in values if v != float("inf")]
    shown = f"p50 {percentile(done, 50):.0f} ms, max {max(done):.0f} ms" if done else "none answered"
    return f"{shown} ({len(values)} sent, {timed_out} timed out)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--hold", type=float, default=30.0, help="seconds the idle connections are held")
    args = parser.parse_args()
    configured = Settings.from_env()
    with tempfile.TemporaryDirectory(prefix="edge-bench-") as scratch, FakeSlackAPI() as slack:
        data_dir = prepared_data_dir(configured.data_dir.resolve(), Path(scratch))
        settings = bot_settings(data_dir, slack, log_level="INFO")
        log = Path(scratch) / "serve.log"
        with serve_subprocess(settings, log_path=log) as (url, process):
            signed_mention(url, slack)  # warm-up
            flood = log_flood(url, log)
            print(f"log flood: {FLOOD_POSTS} unsigned {FLOOD_BYTES >> 20} MB posts + 1 forged form: log grew "
                  f"{flood['grown']:,} bytes; statuses {sorted(set(flood['statuses']))}; forged line in the log: "
                  f"{'YES' if flood['forged_line'] else 'no'}", flush=True)
            answer = cosmetic_429(url, slack)  # before the idle phase, which may leave requests queued
            print(f"cosmetic 429 (reactions.add, Retry-After: 20): mention → answer {answer:.0f} ms", flush=True)
            idle = idle_connections(url, slack, process.pid, args.connections, args.hold)
            print(f"{args.connections} trickling connections held {args.hold:.0f} s "
                  f"({idle['reopened']} re-opened after the bot dropped them):")
            print(f"  /healthz          {fmt(idle['health'])}")
            print(f"  ack               {fmt(idle['acks'])}")
            print(f"  mention → answer  {fmt(idle['answers'])}")
            print(f"  bot RSS           {idle['rss_before']:.0f} MB before, {idle['rss_max']:.0f} MB at most",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
