"""Durable intake benchmark: what recording and claiming each Slack event costs, and what one process answers.

Parts:
  claims    the delivery log (bot/state/deliveries.py) on SQLite (a state file) and on PostgreSQL
            (a scratch schema on DATABASE_URL's server, default the local one; skipped when none
            answers), events with a real ~2 KB body: `receive` of a new event (record + claim:
            what runs inside the ack window), of a duplicate, `claim` of a due event (the
            resumer's take-over), `finish`; on 1 thread and on 8 threads at once. p50/p99 in ms.
  replicas  one, then two `strategy-bot serve` sharing one PostgreSQL (own DATA_DIRs), mentions sent
            round-robin: answers/s, exactly once.
  serve     one `strategy-bot serve` (HTTP mode) with the fake Slack Web API: a flood of
            mentions, from the first POST to the last answer posted (answers/s, exactly once);
            then the same number of mentions acknowledged and in flight when the process is
            killed (kill -9), and the time the restarted process takes to answer them all
            (after the lease runs out), exactly once.

    .venv/bin/python benchmarks/delivery_bench.py [--events 2000] [--mentions 100] [--lease 2] [--only claims]

DATA_DIR (default ./data) must hold an index, or one is built first (`strategy-bot index`).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "benchmarks")]
import pytest  # noqa: E402  (the test helpers skip with pytest.skip when no PostgreSQL answers)

from bench_stats import percentile  # noqa: E402
from bot.state.deliveries import DeliveryLog  # noqa: E402
from databases import empty_tables, postgres_schema, sqlite_url  # noqa: E402
from slack_bench import TUNABLES, Driver, prepared_data_dir  # noqa: E402
from slack_harness import BOT_USER_ID, FakeSlackAPI, bot_settings, event_payload, mention_event  # noqa: E402
from strategy_bot import migrate  # noqa: E402
from strategy_bot.database import open_engine  # noqa: E402
from strategy_bot.settings import Settings  # noqa: E402


def timed(call, *args) -> float:
    started = time.perf_counter()
    call(*args)
    return (time.perf_counter() - started) * 1000


def body(i: int) -> dict:
    return json.loads(event_payload(mention_event(f"<@{BOT_USER_ID}> question number {i} about open source?"),
                                    event_id=f"EvB{i:08d}"))


def claim_round(url: str, events: int, threads: int) -> dict[str, list[float]]:
    """Latencies of each operation on an empty log, `threads` threads sharing the work (each its own slice)."""
    lease = 0.2
    engine = open_engine(url)
    log = DeliveryLog(engine, lease_s=lease)
    bodies = [body(i) for i in range(events)]
    times: dict[str, list[float]] = {"receive new": [], "receive duplicate": [], "claim due": [], "finish": []}
    lock = threading.Lock()

    def run(name: str, work) -> None:
        def one(part: list) -> None:
            got = [work(item) for item in part]
            with lock:
                times[name].extend(got)
        parts = [bodies[k::threads] for k in range(threads)]
        workers = [threading.Thread(target=one, args=(part,)) for part in parts]
        for w in workers:
            w.start()
        for w in workers:
            w.join()

    run("receive new", lambda b: timed(log.receive, b["event_id"], b))
    run("receive duplicate", lambda b: timed(log.receive, b["event_id"], b))
    log._stop.set()  # no heartbeat: let every lease run out, as after a crash
    time.sleep(lease + 0.1)
    run("claim due", lambda b: timed(log.claim, b["event_id"]))
    run("finish", lambda b: timed(log.finish, b["event_id"], "answered", "1.2"))
    log.close()
    engine.dispose()
    return times


def empty_database(url: str) -> str:
    """`url` upgraded to the current schema, with no rows (SQLite: a new file; PostgreSQL: tables emptied)."""
    upgraded = open_engine(url)
    migrate.upgrade(upgraded)
    upgraded.dispose()
    if not url.startswith("sqlite"):
        empty_tables(url)
    return url


def report(engine_name: str, threads: int, times: dict[str, list[float]]) -> None:
    for name, values in times.items():
        print(f"claims  {engine_name:<10} {threads} thread(s)  {name:<18} {len(values):>6}  "
              f"p50 {percentile(values, 50):6.2f} ms  p99 {percentile(values, 99):6.2f} ms")


def claims(events: int) -> None:
    with tempfile.TemporaryDirectory(prefix="delivery-bench-") as scratch:
        for threads in (1, 8):
            url = empty_database(sqlite_url(Path(scratch) / f"threads-{threads}"))
            report("SQLite", threads, claim_round(url, events, threads))
    try:
        with postgres_schema() as url:
            for threads in (1, 8):
                report("PostgreSQL", threads, claim_round(empty_database(url), events, threads))
    except pytest.skip.Exception as skipped:
        print(f"claims  PostgreSQL skipped: {skipped.msg}")


def per_thread(slack) -> Counter:
    return Counter(m.get("thread_ts") for m in slack.messages())


def serve(mentions: int, lease: float) -> None:
    from slack_harness import BotServer, serve_subprocess

    configured = Settings.from_env()
    with tempfile.TemporaryDirectory(prefix="delivery-bench-") as scratch, FakeSlackAPI() as slack:
        data_dir = prepared_data_dir(configured.data_dir.resolve(), Path(scratch))
        tuned = {name: getattr(configured, name) for name in TUNABLES}
        settings = bot_settings(data_dir, slack, log_level="WARNING", **tuned)
        env = {"DELIVERY_LEASE_S": str(lease)}
        with serve_subprocess(settings, extra_env=env) as (url, process):
            driver = Driver(slack, f"{url}/slack/events")
            for _ in range(3):
                driver.wait_answered(driver.mention())  # warm
            started = time.perf_counter()
            sent = [driver.mention() for _ in range(mentions)]
            for ts in sent:
                driver.wait_answered(ts, timeout=600)
            elapsed = time.perf_counter() - started
            slack.settle(quiet=lease + 1)
            counts = per_thread(slack)
            once = all(counts[ts] == 1 for ts in sent)
            print(f"serve   flood: {mentions} mentions answered in {elapsed:.2f} s = {mentions / elapsed:.1f} answers/s"
                  f" ({settings.slack_workers} workers); exactly once: {'yes' if once else 'NO'}")

            slack.hold("chat.postMessage")
            crashed = [driver.mention() for _ in range(mentions)]
            slack.wait_for("chat.postMessage", count=settings.slack_workers,
                           where=lambda c: c.body.get("thread_ts") in set(crashed), timeout=60)
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
        slack.release("chat.postMessage")
        posted = sum(per_thread(slack)[ts] for ts in crashed)
        restart = time.perf_counter()
        with serve_subprocess(settings, extra_env=env) as (url, _process):
            healthy = time.perf_counter() - restart
            BotServer(url, None, None)
            deadline = time.monotonic() + 600
            while not all(per_thread(slack)[ts] for ts in crashed) and time.monotonic() < deadline:
                time.sleep(0.05)
            done = time.perf_counter() - restart
            slack.settle(quiet=lease + 1)
            counts = per_thread(slack)
            once = all(counts[ts] == 1 for ts in crashed)
        print(f"serve   kill -9 with {mentions} acknowledged ({posted} posted, unconfirmed): restart healthy in "
              f"{healthy:.1f} s, all answered {done:.1f} s after the restart (lease {lease} s) = "
              f"{(mentions - posted) / max(done - healthy, 1e-9):.1f} resumed answers/s after healthy; "
              f"exactly once: {'yes' if once else 'NO ' + str({t: counts[t] for t in crashed if counts[t] != 1})}")


def replicas(mentions: int, lease: float) -> None:
    """Answers/s of one and of two `serve` replicas sharing one PostgreSQL (each its own DATA_DIR),
    mentions sent round-robin as a load balancer would; each answered exactly once."""
    from slack_harness import serve_subprocess

    configured = Settings.from_env()
    try:
        schema = postgres_schema()
        url = schema.__enter__()
    except pytest.skip.Exception as exc:
        print(f"replicas: skipped ({exc})")
        return
    try:
        empty_database(url)
        for count in (1, 2):
            with tempfile.TemporaryDirectory(prefix="delivery-replicas-") as scratch, FakeSlackAPI() as slack:
                source = configured.data_dir.resolve()
                settings = [bot_settings(prepared_data_dir(source, Path(scratch) / f"r{i}"), slack,
                                         log_level="WARNING", database_url=url,
                                         **{name: getattr(configured, name) for name in TUNABLES})
                            for i in range(count)]
                env = {"DELIVERY_LEASE_S": str(lease)}
                with contextlib.ExitStack() as stack:
                    urls = [stack.enter_context(serve_subprocess(s, extra_env=env))[0] for s in settings]
                    drivers = [Driver(slack, f"{u}/slack/events") for u in urls]
                    for driver in drivers:
                        driver.wait_answered(driver.mention())  # warm
                    started = time.perf_counter()
                    sent = [drivers[i % count].mention() for i in range(mentions)]
                    for ts in sent:
                        drivers[0].wait_answered(ts, timeout=600)
                    elapsed = time.perf_counter() - started
                    slack.settle(quiet=lease + 1)
                    counts = per_thread(slack)
                    once = all(counts[ts] == 1 for ts in sent)
                print(f"replicas {count} on PostgreSQL: {mentions} mentions answered in {elapsed:.2f} s = "
                      f"{mentions / elapsed:.1f} answers/s; exactly once: {'yes' if once else 'NO'}", flush=True)
    finally:
        schema.__exit__(None, None, None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--mentions", type=int, default=100)
    parser.add_argument("--lease", type=float, default=2.0, help="DELIVERY_LEASE_S of the bot under test")
    parser.add_argument("--only", choices=("claims", "serve", "replicas"))
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()}")
    if args.only in (None, "claims"):
        claims(args.events)
    if args.only in (None, "serve"):
        serve(args.mentions, args.lease)
    if args.only in (None, "replicas"):
        replicas(args.mentions, args.lease)
    return 0


if __name__ == "__main__":
    sys.exit(main())
