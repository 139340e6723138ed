"""Slack endpoint benchmark: signed mentions against `strategy-bot serve` (HTTP mode) and a fake Web API.

The bot runs as a real `strategy-bot serve` child process (its own interpreter, as in
production); this process plays Slack: it signs and POSTs `app_mention` events and runs
the fake Web API that receives the answers. Both clocks are this process's, so
"mention → answer" is from the moment the POST starts to the moment `chat.postMessage`
reaches the fake Slack.

Phases:
  burst       20 mentions sent at once (20 client threads released together)
  sequential  200 mentions in a row, each sent once the previous one is answered
  flood       200 mentions back to back without waiting for answers (acks under load;
              answers queue behind the workers, so their latency here measures the queue)

Targets (issue 3): ack p99 < 100 ms; mention→answer p95 < 500 ms (burst + sequential);
every mention answered exactly once.

    .venv/bin/python benchmarks/slack_bench.py [--burst 20] [--sequential 200] [--flood 200]

DATA_DIR (default ./data) must hold an index, or one is built first (`strategy-bot index`).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]
from bench_stats import percentile  # noqa: E402
from slack_harness import (  # noqa: E402
    BOT_USER_ID,
    SIGNING_SECRET,
    FakeSlackAPI,
    bot_settings,
    event_payload,
    http_request,
    mention_event,
    sign,
)
from strategy_bot.settings import Settings  # noqa: E402

QUESTIONS = [
    "What are the long-term costs of open-sourcing a model?",
    "How does open source affect data privacy?",
    "Why would a company keep its model closed source?",
    "What is a hybrid open core strategy?",
    "开源模式如何保护知识产权？",
    "闭源模式的商业优势是什么？",
    "How does community contribution help an open model?",
    "What are the risks of releasing model weights?",
]
ACK_P99_TARGET_MS = 100.0
# Settings the bot under test takes from this process's environment (the rest: test values).
TUNABLES = ("embedding_backend", "embedding_model", "embedding_threads", "top_k", "answer_sentences",
            "http_threads", "slack_workers")
ANSWER_P95_TARGET_MS = 500.0




class Driver:
    """Sends signed mentions and matches each to the answer the fake Slack receives."""

    def __init__(self, slack: FakeSlackAPI, events_url: str) -> None:
        self.slack, self.events_url = slack, events_url
        self.sent: dict[str, float] = {}  # mention ts -> when the POST started
        self.acks: list[float] = []
        self.lock = threading.Lock()
        self.counter = 0

    def mention(self) -> str:
        with self.lock:
            self.counter += 1
            question = QUESTIONS[self.counter % len(QUESTIONS)]
        event = mention_event(f"<@{BOT_USER_ID}> {question}")
        body = event_payload(event).encode()
        headers = {"Content-Type": "application/json", **sign(body, SIGNING_SECRET)}
        started = time.perf_counter()
        with self.lock:
            self.sent[event["ts"]] = started
        response = http_request(self.events_url, body, headers, "POST", timeout=30)
        if response.status != 200:
            raise RuntimeError(f"mention refused: {response.status} {response.body[:200]}")
        with self.lock:
            self.acks.append(response.elapsed_ms)
        return event["ts"]

    def wait_answered(self, thread_ts: str, timeout: float = 60.0) -> None:
        self.slack.wait_for("chat.postMessage", timeout=timeout, where=lambda c: c.body.get("thread_ts") == thread_ts)

    def answer_latencies(self, thread_ids: list[str]) -> list[float]:
        first: dict[str, float] = {}
        for call in self.slack.calls("chat.postMessage"):
            ts = call.body.get("thread_ts")
            if ts in self.sent and ts not in first:
                first[ts] = (call.at - self.sent[ts]) * 1000
        return [first[ts] for ts in thread_ids]

    def answers_per_mention(self, thread_ids: list[str]) -> dict[str, int]:
        counts = dict.fromkeys(thread_ids, 0)
        for call in self.slack.calls("chat.postMessage"):
            if call.body.get("thread_ts") in counts:
                counts[call.body["thread_ts"]] += 1
        return counts


def run_phase(driver: Driver, name: str, count: int, mode: str) -> dict:
    driver.acks = []
    threads_ts: list[str] = []
    started = time.perf_counter()
    if mode == "burst":
        gate = threading.Barrier(count)
        results: list[str] = []

        def one() -> None:
            gate.wait()
            results.append(driver.mention())

        workers = [threading.Thread(target=one) for _ in range(count)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        threads_ts = results
    else:
        for _ in range(count):
            ts = driver.mention()
            threads_ts.append(ts)
            if mode == "sequential":
                driver.wait_answered(ts)
    for ts in threads_ts:
        driver.wait_answered(ts, timeout=300)
    elapsed = time.perf_counter() - started
    driver.slack.settle(quiet=1.0, timeout=30)  # late duplicates would show up here
    answers = driver.answer_latencies(threads_ts)
    counts = driver.answers_per_mention(threads_ts)
    return {"phase": name, "mentions": count, "acks": list(driver.acks), "answers": answers,
            "exactly_once": all(n == 1 for n in counts.values()),
            "not_once": {ts: n for ts, n in counts.items() if n != 1}, "seconds": elapsed}


def report(result: dict) -> None:
    acks, answers = result["acks"], result["answers"]
    print(f"{result['phase']:<11} {result['mentions']:>4} mentions in {result['seconds']:6.2f} s | "
          f"ack p50 {percentile(acks, 50):6.1f} ms  p99 {percentile(acks, 99):6.1f} ms | "
          f"answer p50 {percentile(answers, 50):7.1f} ms  p95 {percentile(answers, 95):7.1f} ms | "
          f"answered exactly once: {'yes' if result['exactly_once'] else 'NO ' + str(result['not_once'])}")


def prepared_data_dir(source: Path, scratch: Path) -> Path:
    """A private DATA_DIR holding a copy of the index (the bot's SQLite stores go there, not in DATA_DIR)."""
    from retrieval.service import KnowledgeBase

    kb = KnowledgeBase(Settings.from_env().with_(data_dir=source))
    if not kb.index_exists():
        print(f"no index in {source}: building it (strategy-bot index)…", flush=True)
        kb.reindex(built_by="benchmark")
    target = scratch / "data"
    shutil.copytree(source, target, symlinks=True,
                    ignore=shutil.ignore_patterns("*.sqlite3", "*.sqlite3-*"))
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--burst", type=int, default=20)
    parser.add_argument("--sequential", type=int, default=200)
    parser.add_argument("--flood", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=5, help="mentions answered before measuring")
    args = parser.parse_args()
    from slack_harness import serve_subprocess

    configured = Settings.from_env()
    source = configured.data_dir.resolve()
    load_before = _load()
    with tempfile.TemporaryDirectory(prefix="slack-bench-") as scratch, FakeSlackAPI() as slack:
        data_dir = prepared_data_dir(source, Path(scratch))
        tuned = {name: getattr(configured, name) for name in TUNABLES}  # as configured (env / .env)
        settings = bot_settings(data_dir, slack, log_level="WARNING", **tuned)
        print(f"starting `strategy-bot serve` (HTTP mode, {settings.http_threads} HTTP threads, "
              f"{settings.slack_workers} answer workers, {settings.embedding_threads} embedding thread(s))…",
              flush=True)
        loading = time.perf_counter()
        with serve_subprocess(settings) as (url, _process):
            print(f"healthy after {time.perf_counter() - loading:.1f} s (model and index loaded)\n", flush=True)
            driver = Driver(slack, f"{url}/slack/events")
            for _ in range(args.warmup):
                driver.wait_answered(driver.mention())
            results = [run_phase(driver, "burst", args.burst, "burst"),
                       run_phase(driver, "sequential", args.sequential, "sequential"),
                       run_phase(driver, "flood", args.flood, "flood")]
    print(f"machine: {os.cpu_count()} cores, load average (1/5/15 min) before {load_before}, after {_load()}\n")
    for result in results:
        report(result)
    acks = [a for r in results for a in r["acks"]]
    answers = [a for r in results[:2] for a in r["answers"]]
    ack_p99, answer_p95 = percentile(acks, 99), percentile(answers, 95)
    once = all(r["exactly_once"] for r in results)
    print()
    print(f"ack latency, all {len(acks)} mentions: p50 {percentile(acks, 50):.1f} ms, p99 {ack_p99:.1f} ms "
          f"(target < {ACK_P99_TARGET_MS:.0f} ms: {'met' if ack_p99 < ACK_P99_TARGET_MS else 'MISSED'})")
    print(f"mention → answer, burst + sequential ({len(answers)}): p50 {percentile(answers, 50):.1f} ms, "
          f"p95 {answer_p95:.1f} ms (target < {ANSWER_P95_TARGET_MS:.0f} ms: "
          f"{'met' if answer_p95 < ANSWER_P95_TARGET_MS else 'MISSED'})")
    print(f"every mention answered exactly once: {'yes' if once else 'NO'}")
    return 0 if once else 1


def _load() -> str:
    """The load averages: other work on the machine inflates every latency measured here."""
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
