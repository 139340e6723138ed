"""Streamed answers: time to the first streamed text and to the complete answer, against `strategy-bot serve`.

The bot runs as a real `strategy-bot serve` child process (HTTP mode) over a copy of the
index; this process plays Slack (signed `app_mention` events, the fake Web API) and, for
the LLM runs, the model (tests/fake_openai.py writing WRITTEN in 20-character pieces 50 ms
apart, about 400 characters a second, like a hosted model). Mentions are sent one after the
other; each is timed from the moment its POST starts (both clocks are this process's):

  first text  the first call carrying answer text: `chat.appendStream` (or `chat.stopStream`)
              with markdown text when streaming; the answer's `chat.postMessage` (extractive) or
              the first preview `chat.update` of the placeholder (LLM) when not
  complete    `chat.stopStream` (or the `chat.update` that replaces a streamed draft after it);
              the answer's `chat.postMessage` or final `chat.update` when not streaming

Runs: extractive and fake-LLM, each streamed and posted (SLACK_STREAMING=false), so the
figures compare the two paths on the same machine.

    .venv/bin/python benchmarks/stream_bench.py [--mentions 30] [--runs extractive-stream,llm-stream,...]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "benchmarks")]
from bench_stats import percentile  # noqa: E402
from fake_openai import FakeOpenAI, Reply  # noqa: E402
from slack_bench import QUESTIONS, prepared_data_dir  # noqa: E402
from slack_harness import (  # noqa: E402
    BOT_USER_ID,
    SIGNING_SECRET,
    FakeSlackAPI,
    bot_settings,
    event_payload,
    http_request,
    mention_event,
    serve_subprocess,
    sign,
)
from strategy_bot.settings import Settings  # noqa: E402

WRITTEN = ("Open-sourcing moves the cost from licences to deployment and operations [1]. "
           "Closed models keep the intellectual property in-house and charge for access [2]. "
           "A hybrid opens the base model and keeps the applications closed [1].")
RUNS = ("extractive-stream", "extractive-post", "llm-stream", "llm-post")


def _has_text(call) -> bool:
    chunks = call.body.get("chunks") or []
    return bool(call.body.get("markdown_text")) or any(c.get("type") == "markdown_text" and c.get("text")
                                                       for c in chunks)


def _final_blocks(call) -> bool:
    """The answer's closing blocks are there: its feedback buttons (a placeholder or draft has none)."""
    return any(b.get("type") in {"actions", "context_actions"} for b in call.body.get("blocks") or [])


def timings(slack: FakeSlackAPI, thread_ts: str, sent: float) -> tuple[float, float]:
    """(first text, complete) in ms after `sent` for the answer in `thread_ts`."""
    starts = [c for c in slack.calls("chat.startStream") if c.body.get("thread_ts") == thread_ts]
    if starts:
        stream_ts = slack.ts_of(starts[0])
        calls = [c for c in slack.calls() if c.body.get("ts") == stream_ts or c in starts]
        first = next(c for c in calls if c.method.startswith("chat.") and "Stream" in c.method and _has_text(c))
        done = [c for c in calls if c.method == "chat.stopStream" or (c.method == "chat.update" and _final_blocks(c))]
        return (first.at - sent) * 1000, (done[-1].at - sent) * 1000
    posts = [c for c in slack.calls("chat.postMessage") if c.body.get("thread_ts") == thread_ts]
    post_ts = slack.ts_of(posts[0])
    updates = [c for c in slack.calls("chat.update") if c.body.get("ts") == post_ts]
    finals = [c for c in [posts[0], *updates] if _final_blocks(c)]
    first = posts[0] if _final_blocks(posts[0]) else (updates[0] if updates else finals[-1])
    return (first.at - sent) * 1000, (finals[-1].at - sent) * 1000


def wait_complete(slack: FakeSlackAPI, thread_ts: str, streaming: bool, timeout: float = 60.0) -> None:
    """Until the answer is whole: the stream stopped (and replaced, if it is), or the extractive post."""
    if streaming:
        start = slack.wait_for("chat.startStream", timeout=timeout,
                               where=lambda c: c.body.get("thread_ts") == thread_ts)
        stream_ts = slack.ts_of(start[0])
        slack.wait_for("chat.stopStream", timeout=timeout, where=lambda c: c.body.get("ts") == stream_ts)
        slack.settle(quiet=0.2)  # a chat.update replacing the draft follows at once when there is one
    else:
        slack.wait_for("chat.postMessage", timeout=timeout,
                       where=lambda c: c.body.get("thread_ts") == thread_ts and _final_blocks(c))


def run(name: str, data_dir: Path, mentions: int, fake_llm: FakeOpenAI) -> dict:
    streaming, llm = name.endswith("-stream"), name.startswith("llm")
    overrides: dict = {"slack_streaming": streaming, "log_level": "WARNING"}
    if llm:
        overrides.update(llm_provider="openai", llm_model="fake-model", llm_api_key="sk-bench",
                         llm_base_url=fake_llm.url, llm_max_retries=0, llm_timeout_s=30.0)
    with FakeSlackAPI() as slack:
        settings = bot_settings(data_dir, slack, **overrides)
        with serve_subprocess(settings) as (url, _process):
            firsts, completes = [], []
            for i in range(mentions + 2):  # two warm-up mentions, not measured
                event = mention_event(f"<@{BOT_USER_ID}> {QUESTIONS[i % len(QUESTIONS)]}")
                body = event_payload(event).encode()
                sent = time.perf_counter()
                response = http_request(f"{url}/slack/events", body,
                                        {"Content-Type": "application/json", **sign(body, SIGNING_SECRET)}, "POST")
                assert response.status == 200, response.body[:200]
                if streaming:
                    wait_complete(slack, event["ts"], True)
                elif llm:
                    post = slack.wait_for("chat.postMessage", timeout=60,
                                          where=lambda c, ts=event["ts"]: c.body.get("thread_ts") == ts)[0]
                    post_ts = slack.ts_of(post)
                    slack.wait_for("chat.update", timeout=60,
                                   where=lambda c, ts=post_ts: c.body.get("ts") == ts and _final_blocks(c))
                else:
                    wait_complete(slack, event["ts"], False)
                if i >= 2:
                    first, complete = timings(slack, event["ts"], sent)
                    firsts.append(first)
                    completes.append(complete)
    return {"run": name, "first": firsts, "complete": completes}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mentions", type=int, default=30)
    parser.add_argument("--runs", default=",".join(RUNS))
    args = parser.parse_args()
    fake_llm = FakeOpenAI().start()
    fake_llm.respond(lambda recorded: Reply(WRITTEN, chunk_chars=20, chunk_delay_s=0.05))
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="stream-bench-") as scratch:
            data_dir = prepared_data_dir(Settings.from_env().data_dir.resolve(), Path(scratch))
            for name in args.runs.split(","):
                print(f"{name}: {args.mentions} mentions…", flush=True)
                results.append(run(name, data_dir, args.mentions, fake_llm))
    finally:
        fake_llm.stop()
    print(f"\nmachine: {os.cpu_count()} cores, load average {' / '.join(f'{x:.1f}' for x in os.getloadavg())}")
    for r in results:
        first, complete = r["first"], r["complete"]
        print(f"{r['run']:<18} first text p50 {percentile(first, 50):7.0f} ms  p95 {percentile(first, 95):7.0f} ms"
              f" | complete p50 {percentile(complete, 50):7.0f} ms  p95 {percentile(complete, 95):7.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
