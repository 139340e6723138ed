"""/strategy-check benchmark: whole dialogues against `strategy-bot serve` (HTTP mode) and a fake Web API.

The bot runs as a real `strategy-bot serve` child process; this process plays Slack and the
users: it signs and POSTs the slash command and every click, and runs the fake Web API that
receives the bot's messages. N users run their dialogues at the same time, each answering all
questions as soon as the next one arrives, then exporting the result.

Figures printed:
  ack        HTTP response time of every command and click (Slack's limit: 3 s)
  next       click → the next question arrives at the fake Slack
  result     last answer → the cited result arrives (scoring + 3 retrievals + quotes)
  export     export click → the Markdown code block arrives

    .venv/bin/python benchmarks/strategy_check_bench.py [--users 8] [--rounds 2]

DATA_DIR (default ./data) must hold an index, or one is built first (`strategy-bot index`);
it is copied to a temporary folder so the benchmark's dialogues do not touch it.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]
from bench_stats import percentile  # noqa: E402
from decision import load_decision_model  # noqa: E402
from slack_harness import (  # noqa: E402
    CHANNEL_ID,
    SIGNING_SECRET,
    Call,
    FakeSlackAPI,
    block_action_payload,
    bot_settings,
    http_request,
    serve_subprocess,
    sign,
    slash_payload,
)
from strategy_bot.settings import Settings  # noqa: E402

ACK_LIMIT_MS = 3000.0




class FakeSlack:
    """The fake Web API's chat.postMessage calls, waited for in order, each with the ts it was given."""

    def __init__(self, api: FakeSlackAPI) -> None:
        self.api = api

    def posts(self) -> list[Call]:
        return self.api.calls("chat.postMessage")

    def wait_post(self, where, after: int, timeout: float = 60.0) -> tuple[float, dict[str, Any], str, int]:
        """The first post matching `where` among those after position `after`, and the position after it."""
        earlier = {id(c) for c in self.posts()[:after]}
        try:
            self.api.wait_for("chat.postMessage", timeout=timeout,
                              where=lambda c: id(c) not in earlier and where(c.body))
        except AssertionError:
            notes = [c.body.get("text") for c in self.api.calls("chat.postEphemeral")]
            raise TimeoutError(f"the bot did not post the expected message (ephemeral notes: {notes})") from None
        posts = self.posts()
        i = next(i for i, c in enumerate(posts[after:], start=after) if where(c.body))
        return posts[i].at, posts[i].body, self.api.ts_of(posts[i]), i + 1


class User:
    """One person running one dialogue from the command to the export."""

    def __init__(self, slack: FakeSlack, url: str, user: str, answers: list[str]) -> None:
        self.slack, self.url, self.user, self.answers = slack, url, user, answers
        self.acks: list[float] = []
        self.next: list[float] = []
        self.result: list[float] = []
        self.export: list[float] = []

    def post(self, form: str) -> float:
        body = form.encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body, SIGNING_SECRET)}
        started = time.perf_counter()
        response = http_request(f"{self.url}/slack/events", body, headers, "POST")
        if response.status != 200:
            raise RuntimeError(f"bot answered {response.status}: {response.body[:200]}")
        self.acks.append(response.elapsed_ms)
        return started

    def run(self) -> None:
        before = len(self.slack.posts())
        self.post(slash_payload("/strategy-check", "benchmark", user_id=self.user,
                                response_url=self.slack.api.response_url()))
        anchor = f"<@{self.user}> started"
        _, _, thread, seen = self.slack.wait_post(lambda b: b.get("text", "").startswith(anchor), before)
        in_thread = lambda b: b.get("thread_ts") == thread  # noqa: E731
        _, body, ts, seen = self.slack.wait_post(in_thread, seen)
        for number, value in enumerate(self.answers, start=1):
            started = self.click(body, ts, thread, value)
            at, body, ts, seen = self.slack.wait_post(in_thread, seen)
            (self.result if number == len(self.answers) else self.next).append((at - started) * 1000)
        export = next(e for b in body["blocks"] if b.get("type") == "actions" for e in b["elements"]
                      if e["action_id"] == "strategy_check:export")
        started = self.post(block_action_payload(export["action_id"], export["value"], user=self.user,
                                                 message_ts=ts, thread_ts=thread, message_blocks=body["blocks"]))
        at, _, _, _ = self.slack.wait_post(in_thread, seen)
        self.export.append((at - started) * 1000)

    def click(self, body: dict[str, Any], ts: str, thread: str, value: str) -> float:
        elements = [e for b in body["blocks"] if b.get("block_id") == "choices" for e in b["elements"]]
        if elements[0]["type"] == "static_select":
            option = next(o for o in elements[0]["options"] if json.loads(o["value"])["v"] == value)
            form = block_action_payload(elements[0]["action_id"], "", user=self.user, message_ts=ts,
                                        thread_ts=thread, message_blocks=body["blocks"],
                                        action_type="static_select", selected_option=option)
        else:
            button = next(e for e in elements if json.loads(e["value"])["v"] == value)
            form = block_action_payload(button["action_id"], button["value"], user=self.user, message_ts=ts,
                                        thread_ts=thread, message_blocks=body["blocks"])
        return self.post(form)


def line(name: str, values: list[float]) -> str:
    return (f"{name:<8} n={len(values):<4} p50 {statistics.median(values):7.1f} ms   "
            f"p95 {percentile(values, 95):7.1f} ms   max {max(values):7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=8, help="dialogues running at the same time")
    parser.add_argument("--rounds", type=int, default=2, help="times each user runs a whole dialogue")
    args = parser.parse_args()
    model = load_decision_model()
    plans = [[q.options[(u + i) % len(q.options)].value for i, q in enumerate(model.questions)]
             for u in range(args.users)]
    source = Settings.from_env().data_dir
    if not (source / "index").exists():
        sys.exit(f"no index in {source}: run `strategy-bot index` first (or set DATA_DIR)")
    print(f"load average before: {os.getloadavg()[0]:.2f} (2-core shared machine: timings are indicative)")
    with tempfile.TemporaryDirectory() as tmp, FakeSlackAPI() as api:
        data_dir = Path(tmp) / "data"
        shutil.copytree(source, data_dir, symlinks=True)
        slack = FakeSlack(api)
        with serve_subprocess(bot_settings(data_dir, api)) as (url, _process):
            users = [User(slack, url, f"U0BENCH{u:03d}", plans[u]) for u in range(args.users)]
            started = time.perf_counter()
            for _ in range(args.rounds):
                threads = [threading.Thread(target=u.run) for u in users]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
            wall = time.perf_counter() - started
    acks = [v for u in users for v in u.acks]
    print(f"{args.users} users × {args.rounds} dialogues of {len(model.questions)} questions "
          f"in {wall:.1f} s (channel {CHANNEL_ID})")
    for name, values in (("ack", acks), ("next", [v for u in users for v in u.next]),
                         ("result", [v for u in users for v in u.result]),
                         ("export", [v for u in users for v in u.export])):
        print(line(name, values))
    print(f"acks over {ACK_LIMIT_MS:.0f} ms: {sum(a >= ACK_LIMIT_MS for a in acks)}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
