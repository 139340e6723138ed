"""Two replicas on one PostgreSQL: time from "re-index done" on A to "B serves it".

Two real `strategy-bot serve` processes (HTTP mode, each with its own copy of DATA_DIR) share a
fresh schema on the PostgreSQL server of DATABASE_URL (default: the local test server). Each run
sends a signed `/strategy-reindex` to A; "done" is when A's summary note reaches the fake Slack
(A publishes the build, then loads it itself, then sends that note), "served" is when B's
`/healthz` first names the published build (polled every 20 ms; B loads a build before /healthz
names it). Since B loads while A does, the second figure is the stricter one: from A's log line
"published index build X" (the commit) to B's "now serving index build X" (loaded and swapped in),
both processes' own clocks on one machine. No document
changes between runs, so each build is quick and the figure is the distribution alone.

    .venv/bin/python benchmarks/replica_bench.py [--runs 7]

DATA_DIR (default ./data) must hold an index, or one is built first.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]
from bench_stats import percentile  # noqa: E402
from databases import postgres_schema  # noqa: E402
from replicas import health, request_reindex, two_replicas, wait_note, wait_until  # noqa: E402
from retrieval.build_registry import BuildRegistry  # noqa: E402
from retrieval.service import KnowledgeBase  # noqa: E402
from slack_harness import FakeSlackAPI  # noqa: E402
from strategy_bot import migrate  # noqa: E402
from strategy_bot.database import open_engine  # noqa: E402
from strategy_bot.settings import Settings  # noqa: E402


def logged_at(log: Path, phrase: str) -> float | None:
    """Epoch seconds of the first log line containing `phrase` (the log's own millisecond clock)."""
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if phrase in line:
            return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
    return None


def publish_to_served(root: Path, builds: list[str]) -> list[float]:
    """Per build: from A's "published index build X" log line to B's "now serving index build X"."""
    delays = []
    for build in builds:
        published = logged_at(root / "a.log", f"published index build {build}")
        served = logged_at(root / "b.log", f"now serving index build {build}")
        if published is not None and served is not None:
            delays.append(served - published)
    return delays


def measure(runs: int, data_dir: Path) -> tuple[list[float], list[float]]:
    KnowledgeBase(Settings(data_dir=data_dir)).ensure_index()  # the index both replicas start from
    with tempfile.TemporaryDirectory() as tmp, postgres_schema() as url, FakeSlackAPI() as slack:
        engine = open_engine(url)
        migrate.upgrade(engine)
        dirs = (Path(tmp) / "a", Path(tmp) / "b")
        for folder in dirs:
            shutil.copytree(data_dir, folder, symlinks=True, ignore=shutil.ignore_patterns("*.sqlite3*"))
        delays, builds = [], []
        try:
            with two_replicas(dirs, slack, url) as (a, b):
                for run in range(runs):
                    done = wait_note(slack, request_reindex(a, slack), "re-indexed", timeout=300)
                    published = BuildRegistry(engine).current()
                    served = wait_until(lambda build=published: health(b)["build"] == build, 60,
                                        what="B serving A's build")
                    delays.append(served - done.at)
                    builds.append(published)
                    print(f"run {run + 1}: B served {published} {1000 * delays[-1]:.0f} ms after A's re-index "
                          "was done", flush=True)
            return delays, publish_to_served(Path(tmp), builds)  # the replicas have stopped: logs complete
        finally:
            engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--data-dir", type=Path, default=Settings.from_env().data_dir)
    args = parser.parse_args()
    try:
        delays, from_publish = measure(args.runs, args.data_dir)
    except BaseException as exc:  # pytest.skip's exception when no server answers: say it in one line
        if type(exc).__name__ == "Skipped":
            sys.exit(f"replica benchmark: {exc}")
        raise
    for label, values in (("re-index done on A (summary note sent) -> B's /healthz names it", delays),
                          ("build published by A (commit) -> B serving it (logs)", from_publish)):
        ms = [1000 * d for d in values]
        if ms:
            print(f"{label}: p50 {percentile(ms, 50):.0f} ms, min {min(ms):.0f} ms, max {max(ms):.0f} ms "
                  f"over {len(ms)} runs")


if __name__ == "__main__":
    main()
