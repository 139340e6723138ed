"""A re-index killed part-way (SIGKILL, a separate `strategy-bot index` process) loses nothing.

The knowledge folder gets a few dozen new documents so the build has real embedding
work to do; the process is killed as soon as it reports its first embedding batch,
which is deterministic: it cannot finish before it has printed that line, and after
it there are still many batches to go. The next `strategy-bot index` then completes
and prints its summary.
"""
from __future__ import annotations

import queue
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

from cli_helpers import run_cli, start_cli
from retrieval.index_store import META_FILE
from retrieval.service import KnowledgeBase
from strategy_bot.settings import Settings

NEW_DOCUMENTS = 24
START_TIMEOUT_S = 180


def add_documents(folder: Path, count: int) -> list[str]:
    ids = []
    for i in range(count):
        doc_id = f"falcon-programme-{i:02d}"
        (folder / f"{doc_id}.md").write_text(
            f"# Falcon programme {i}\n\nThe falcon programme number {i} licenses the model weights to partner "
            f"{i} for {i + 2} years. Partner {i} may fine-tune but not redistribute the weights.\n",
            encoding="utf-8")
        ids.append(doc_id)
    return ids


def wait_for_line(process: subprocess.Popen, prefix: str, timeout: float) -> str:
    """The first stderr line starting with `prefix`; fails if the process ends or time runs out first."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line.decode("utf-8", "replace")) for line in process.stderr],
                     daemon=True).start()
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            assert process.poll() is None, f"the index process ended early: {''.join(seen)}"
            continue
        seen.append(line)
        if line.startswith(prefix):
            return line
    raise AssertionError(f"no {prefix!r} line within {timeout} s: {''.join(seen)}")


def test_a_killed_re_index_leaves_the_old_index_serving_and_the_next_one_succeeds(
        fresh_data_dir, knowledge_copy, tmp_path, e5):
    old_build = (fresh_data_dir / "index").resolve()
    add_documents(knowledge_copy, NEW_DOCUMENTS)

    process = start_cli("index", cwd=tmp_path, data_dir=fresh_data_dir, knowledge_dir=knowledge_copy)
    try:
        line = wait_for_line(process, "embedding chunks:", START_TIMEOUT_S)
        process.send_signal(signal.SIGKILL)
        assert process.wait(30) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
    embedded, total = map(int, line.split(":")[1].split("/"))
    assert embedded < total, "killed too late to prove anything"

    # The old index is still the one served, and a half-written build sits beside it.
    assert (fresh_data_dir / "index").resolve() == old_build
    orphans = [p for p in (fresh_data_dir / "indexes").iterdir() if not (p / META_FILE).is_file()]
    assert len(orphans) == 1

    settings = Settings(data_dir=fresh_data_dir, knowledge_dir=knowledge_copy)
    kb = KnowledgeBase(settings, e5)
    answer = kb.ask("What are the advantages of a closed-source model?")
    assert not answer.abstained and answer.citations
    assert kb.status().documents == 2

    done = run_cli("index", cwd=tmp_path, data_dir=fresh_data_dir, knowledge_dir=knowledge_copy)
    assert done.returncode == 0, done.stderr
    assert re.search(rf"Indexed {2 + NEW_DOCUMENTS} documents, \d+ chunks in [\d.]+ s: added {NEW_DOCUMENTS}, "
                     r"changed 0, removed 0, unchanged 2", done.stdout), done.stdout
    assert "added: falcon-programme-00" in done.stdout
    assert not orphans[0].exists() and (fresh_data_dir / "index").resolve() != old_build
    # A running process (the bot) picks up the index the command swapped in, without a restart.
    assert kb.refresh() and kb.status().documents == 2 + NEW_DOCUMENTS
    assert "falcon-programme-07" in {c.doc_id for c in kb.ask("How long does falcon programme 7 last?").citations}
