"""Re-index speed: a full re-index (`--rebuild`) versus a no-change re-index of the shipped corpus.

The no-change re-index reads the folder, finds every document unchanged and copies
every vector from the current index, so it should be at least 10x faster than the
full one (which embeds every chunk, gloss, sentence and background line). Both go
through `KnowledgeBase.reindex`, the code path of `strategy-bot index` and of
`/strategy-reindex`, into a throw-away DATA_DIR.

    .venv/bin/python benchmarks/reindex_bench.py [--repeat 3] [--knowledge-dir DIR]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from retrieval.service import KnowledgeBase  # noqa: E402
from strategy_bot.settings import DEFAULT_KNOWLEDGE_DIR, Settings  # noqa: E402

TARGET_RATIO = 10.0


def timed_reindex(kb: KnowledgeBase, rebuild: bool):
    started = time.perf_counter()
    summary = kb.reindex(rebuild=rebuild, built_by="benchmark")
    return time.perf_counter() - started, summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="no-change runs (the median is reported)")
    parser.add_argument("--knowledge-dir", type=Path, default=DEFAULT_KNOWLEDGE_DIR)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="reindex-bench-") as tmp:
        kb = KnowledgeBase(Settings(data_dir=Path(tmp) / "data", knowledge_dir=args.knowledge_dir))
        kb.embeddings  # noqa: B018  (load the model first: its start-up is not re-indexing time)
        full_s, full = timed_reindex(kb, rebuild=True)
        print(f"full re-index (--rebuild): {full_s:7.2f} s   {full.documents} documents, {full.chunks} chunks, "
              f"{full.embedded} texts embedded, {full.reused} reused")
        runs = [timed_reindex(kb, rebuild=False) for _ in range(max(args.repeat, 1))]
        none_s = statistics.median(seconds for seconds, _ in runs)
        last = runs[-1][1]
        print(f"no-change re-index:        {none_s:7.2f} s   (median of {len(runs)}: "
              f"{', '.join(f'{s:.2f}' for s, _ in runs)} s)   {last.embedded} texts embedded, "
              f"{last.reused} reused, {len(last.unchanged)} documents unchanged")
    ratio = full_s / none_s
    verdict = "meets" if ratio >= TARGET_RATIO else "MISSES"
    print(f"ratio: {ratio:.1f}x faster ({verdict} the {TARGET_RATIO:.0f}x target)")
    return 0 if ratio >= TARGET_RATIO else 1


if __name__ == "__main__":
    raise SystemExit(main())
