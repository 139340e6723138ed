"""Print the fused search scores of questions read from stdin, as JSON (run in a subprocess).

tests/test_reproducibility.py runs this under another BLAS kernel and thread count than the
test process, the way another machine would, and compares the numbers exactly.
Usage: python tests/search_scores.py DATA_DIR < questions.txt
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from strategy_bot.settings import Settings  # noqa: E402


def main(data_dir: str) -> None:
    Settings().apply_thread_limits()
    from retrieval.service import KnowledgeBase

    kb = KnowledgeBase(Settings(data_dir=Path(data_dir)))
    kb.ensure_index()
    scores = {}
    for question in sys.stdin.read().splitlines():
        result = kb.search(question, k=10)
        scores[question] = {"hits": [[h.position, h.score] for h in result.hits],
                            "best_dense": result.best_dense, "best_background": result.best_background}
    json.dump(scores, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main(sys.argv[1])
