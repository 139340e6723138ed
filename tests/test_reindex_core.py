"""Incremental re-indexing with the real model: what is embedded, what is reported, what is refused.

Each test starts from a copy of the session's built index (`fresh_data_dir`) and a
copy of the corpus (`knowledge_copy`), so only the documents a test adds or edits
cost embeddings. The model is the real e5, wrapped to record each text it embeds.
"""
from __future__ import annotations

import fcntl
import json
import os
import threading

import numpy as np
import pytest

from document_files import make_html
from retrieval.embeddings import VectorEmbeddings
from retrieval.index_store import META_FILE, IndexBusy, KnowledgeIndex, NoDocuments
from retrieval.service import KnowledgeBase
from strategy_bot.settings import Settings

CORPUS_IDS = ["open-vs-closed-concepts", "open-vs-closed-ip-privacy-cost"]
ZEBRA = """# Zebra licensing memo

## The zebra clause

The zebra clause lets licensed partners fine-tune the model weights for internal use only.
斑马条款允许合作伙伴在内部微调模型权重。

## Fees

Partners pay a flat zebra fee of 40,000 euros per year.
"""
ZEBRA_EDITED = ZEBRA.replace("40,000 euros", "55,000 euros")


class CountingEmbeddings(VectorEmbeddings):
    """The real e5 model, recording every text it is asked to embed."""

    def __init__(self, inner: VectorEmbeddings) -> None:
        self.inner = inner
        self.model_id, self.dimension = inner.model_id, inner.dimension
        self.passages: list[str] = []
        self.queries: list[str] = []

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        self.passages.extend(texts)
        return self.inner.embed_passages(texts)

    def embed_query_vector(self, text: str) -> np.ndarray:
        self.queries.append(text)
        return self.inner.embed_query_vector(text)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        self.queries.extend(texts)
        return self.inner.embed_queries(texts)

    def reset(self) -> None:
        self.passages.clear()
        self.queries.clear()


@pytest.fixture
def counting(e5) -> CountingEmbeddings:
    return CountingEmbeddings(e5)


@pytest.fixture
def kb(fresh_data_dir, knowledge_copy, counting) -> KnowledgeBase:
    return KnowledgeBase(Settings(data_dir=fresh_data_dir, knowledge_dir=knowledge_copy), counting)


def texts_of(index: KnowledgeIndex, doc_id: str) -> set[str]:
    """Every text the index embedded for one document: chunks, their glosses, their sentences."""
    positions = {i for i, chunk in enumerate(index.chunks) if chunk.doc_id == doc_id}
    glosses = json.loads((index.path / "gloss.json").read_text(encoding="utf-8"))
    return ({index.chunks[i].embedding_text() for i in positions} | {glosses[i] for i in positions}
            | {row["text"] for row in index.sentences if row["chunk"] in positions})


def cited(answer) -> set[str]:
    return {c.doc_id for c in answer.citations}


def test_an_added_document_is_the_only_one_embedded_and_becomes_answerable(kb, knowledge_copy, counting):
    (knowledge_copy / "zebra-licensing.md").write_text(ZEBRA, encoding="utf-8")
    summary = kb.reindex(built_by="test")
    assert (summary.added, summary.changed, summary.removed) == (["zebra-licensing"], [], [])
    assert sorted(summary.unchanged) == CORPUS_IDS
    index = kb.ensure_index()
    assert counting.passages and set(counting.passages) <= texts_of(index, "zebra-licensing")
    assert counting.queries == []  # the background questions were reused too
    assert summary.embedded == len(counting.passages) and summary.reused > 1000
    assert "zebra-licensing" in cited(kb.ask("What does the zebra clause let partners do?"))
    assert cited(kb.ask("What are the advantages of a closed-source model?")) & set(CORPUS_IDS)


def test_a_changed_document_is_re_embedded_alone_and_a_removed_one_leaves_the_index(kb, knowledge_copy,
                                                                                      counting):
    zebra = knowledge_copy / "zebra-licensing.md"
    zebra.write_text(ZEBRA, encoding="utf-8")
    kb.reindex(built_by="test")
    counting.reset()
    zebra.write_text(ZEBRA_EDITED, encoding="utf-8")
    (knowledge_copy / "open-vs-closed-concepts.md").unlink()
    summary = kb.reindex(built_by="test")
    assert (summary.added, summary.changed, summary.removed) == ([], ["zebra-licensing"], ["open-vs-closed-concepts"])
    assert summary.unchanged == ["open-vs-closed-ip-privacy-cost"]
    index = kb.ensure_index()
    assert counting.passages and set(counting.passages) <= texts_of(index, "zebra-licensing")
    assert not any("40,000" in text for text in counting.passages) and any("55,000" in t for t in counting.passages)
    assert "open-vs-closed-concepts" not in {c.doc_id for c in index.chunks}
    assert [d.doc_id for d in kb.documents()] == ["open-vs-closed-ip-privacy-cost", "zebra-licensing"]


def test_a_no_change_re_index_embeds_nothing(kb, counting):
    summary = kb.reindex(built_by="test")
    assert summary.embedded == 0 and counting.passages == [] and counting.queries == []
    assert sorted(summary.unchanged) == CORPUS_IDS and not (summary.added or summary.changed or summary.removed)
    assert summary.chunks == kb.status().chunks > 0 and kb.status().built_by == "test"


def test_a_broken_file_is_skipped_by_name_and_the_rest_is_indexed(kb, knowledge_copy):
    (knowledge_copy / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R")
    (knowledge_copy / "notes.docx").write_bytes(b"this is not a zip archive")
    (knowledge_copy / "okapi.html").write_bytes(make_html("Okapi pricing", {
        "Okapi tier": "The okapi tier gives researchers free access to the model weights."}))
    summary = kb.reindex(built_by="test")
    skipped = dict(summary.skipped)
    assert set(skipped) == {"broken.pdf", "notes.docx"}
    assert "PDF" in skipped["broken.pdf"] and "Word" in skipped["notes.docx"]
    assert summary.added == ["okapi"] and sorted(summary.unchanged) == CORPUS_IDS


def test_an_empty_knowledge_folder_is_refused_and_the_index_kept(kb, knowledge_copy, fresh_data_dir):
    before = os.readlink(fresh_data_dir / "index")
    for path in knowledge_copy.iterdir():
        path.unlink()
    (knowledge_copy / "broken.pdf").write_bytes(b"%PDF-1.7 nothing")
    with pytest.raises(NoDocuments, match="broken.pdf"):
        kb.reindex(built_by="test")
    assert os.readlink(fresh_data_dir / "index") == before
    assert kb.status().documents == 2


def test_a_second_build_while_one_runs_is_refused(kb, fresh_data_dir, knowledge_copy, counting):
    inside, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def slow_progress(stage: str, done: int, total: int) -> None:
        inside.set()
        release.wait(30)

    def first_build() -> None:
        try:
            kb.reindex(built_by="first", progress=slow_progress)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    thread = threading.Thread(target=first_build)
    thread.start()
    try:
        assert inside.wait(60), "the first build never reached its embedding stage"
        other = KnowledgeBase(Settings(data_dir=fresh_data_dir, knowledge_dir=knowledge_copy), counting)
        with pytest.raises(IndexBusy, match="already running"):
            other.reindex(built_by="second")
        assert kb.ask("What does open-sourcing cost over the long term?").citations  # questions still answered
    finally:
        release.set()
        thread.join(60)
    assert not errors and kb.status().built_by == "first"


def test_a_build_lock_held_by_another_process_is_respected(kb, fresh_data_dir):
    # What another process's running build looks like from here: the lock file held with flock.
    with open(fresh_data_dir / "reindex.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        with pytest.raises(IndexBusy):
            kb.reindex(built_by="test")
    assert kb.reindex(built_by="test").embedded == 0


def test_what_killed_builds_left_behind_is_removed_by_the_next_build(kb, fresh_data_dir):
    builds = fresh_data_dir / "indexes"
    orphan = builds / "20000101T000000-deadbeef"
    orphan.mkdir()
    (orphan / "vectors.faiss").write_bytes(b"half written")
    os.symlink("indexes/20000101T000000-deadbeef", fresh_data_dir / ".index-0badc0de")
    first = (fresh_data_dir / "index").resolve()
    kb.reindex(built_by="test")
    second = (fresh_data_dir / "index").resolve()
    kb.reindex(built_by="test")
    third = (fresh_data_dir / "index").resolve()
    assert not orphan.exists() and not os.path.lexists(fresh_data_dir / ".index-0badc0de")
    # The build being served and the one before it stay (a rollback is a symlink away).
    assert sorted(p for p in builds.iterdir()) == sorted([second, third])
    assert not first.exists() and all((p / META_FILE).is_file() for p in builds.iterdir())
