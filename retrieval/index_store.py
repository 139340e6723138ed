"""The on-disk index: build aside, swap in atomically, load without unpickling.

Layout under `DATA_DIR`:

    index -> indexes/<build-id>     a symlink, replaced atomically by os.replace
    indexes/<build-id>/
        meta.json                   model id, documents (hash, title, chunk count), when, by whom
        vectors.faiss, docstore.json    chunk vectors and chunk records (FaissVectorStore)
        sentences.npy, sentences.json   sentence vectors for extractive answers
        background.npy, background.json  off-topic background sentences and vectors, for declining
        background_queries.npy      the same sentences embedded as questions
        gloss.npy, gloss.json       each chunk in the other language: its reviewed rendering from the
                                    translation memory (renderings.py), else a word-by-word gloss
                                    (crosslingual.py); rendered.json says which
        sentence_views.npy, sentence_views.json   the sentences' renderings, where the memory has one
        term_map.json               English words -> the corpus's Chinese words (crosslingual.py)
        synonym_map.json            Chinese words the corpus lacks -> its synonyms of them (thesaurus.py)
    reindex.lock                    held while a build runs (one at a time)

A build that crashes leaves only an orphan `indexes/<build-id>` folder; the symlink
still points at the old, complete index, which keeps serving, and the next build
removes the orphan first. Vectors of chunks and sentences whose text did not change
are copied from the current index instead of being embedded again (and an unchanged
chunk keeps its English gloss), so an unchanged document is never re-embedded and a
no-change re-index is cheap (about a second for the shipped corpus). A build that finds no readable document at all is
refused: swapping in an empty index would silence the bot.

meta.json records the size and sha256 of every other file of its build, and a build is
only read through `BuildFiles`, which checks them: a truncated or overwritten file is
reported by name ("vectors.faiss ... size/checksum mismatch") instead of surfacing as
FAISS's C++ error, or not at all (a changed byte of an .npy is still a valid array).
An ordinary re-index repairs a damaged build: it reuses every file whose checksum holds,
takes what the damaged files held from the older build kept beside it when it can, and
embeds only the rest. This module is the only one that reads a build's files; the
vector cache is handed what is reusable (`VectorCache.remember`).

With DATABASE_URL on PostgreSQL, `retrieval/shared_index.py` runs the same builds under the
database's advisory lock and publishes each one for every replica (through the two hooks
`_prepare_build` and `_publish`); the files and their layout here stay exactly as described.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import faiss
import numpy as np
from langchain_core.documents import Document

from knowledge.chunking import Chunk, Chunker
from knowledge.documents import LoadReport, SourceDocument, candidate_files, load_folders
from knowledge.language import language_of
from knowledge.parsers import ParseLimits, supported_suffixes
from knowledge.sentences import Sentence, sentences_in_context
from knowledge.translations import TranslationMemory
from retrieval.background_vectors import background_sha, read_background, read_shipped
from retrieval.corpus_vectors import offer_shipped
from retrieval.crosslingual import build_term_map
from retrieval.embeddings import VectorEmbeddings
from retrieval.lexical import LexicalIndex, view_tokens
from retrieval.renderings import chunk_renderings, other_language
from retrieval.similarity import as_float64, exact, pairwise
from retrieval.thesaurus import build_synonym_map
from retrieval.vector_cache import Progress, VectorCache, glosses_for
from retrieval.vector_store import DOCSTORE_FILE, VECTORS_FILE, FaissVectorStore, read_documents, read_vectors
from strategy_bot.tuning import IndexTuning, default_tuning

# What an index holds. 2: sentence views under their list labels, and synonym_map.json.
# 3: the other-language view is the translation memory's rendering where it has one (rendered.json).
# An index of an older format still loads, but KnowledgeBase rebuilds it on first use.
FORMAT_VERSION = 3
RENDERED_FILE = "rendered.json"
SENTENCE_VIEWS = "sentence_views"
META_FILE = "meta.json"
TERM_MAP_FILE = "term_map.json"
SYNONYM_MAP_FILE = "synonym_map.json"
KEEP_OLD_BUILDS = 1
REPAIR_HINT = "an admin can repair it with an ordinary re-index: `/strategy-reindex` in Slack, or `strategy-bot index`"
# What a file holds can be read but wrong in so many ways (C++ errors from FAISS, numpy's
# ValueError, a JSON record without a key...): any of these while reading a build means
# the build is damaged, and is reported as such, never with the library's own message.
READ_ERRORS = (OSError, ValueError, KeyError, TypeError, RuntimeError, IndexError, AttributeError)

log = logging.getLogger(__name__)


class IndexError_(RuntimeError):
    """Base for index problems whose message tells the user what to do."""


class IndexMissing(IndexError_):
    pass


class IndexModelMismatch(IndexError_):
    pass


class IndexBusy(IndexError_):
    pass


class IndexCorrupt(IndexError_, ValueError):
    """A file of the index is not what was written, or cannot be read as what it should be (never unpickled).

    `files` names the damaged files; the message says so in words and how to repair it.
    """

    def __init__(self, message: str, files: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.files = list(files)


def damaged_index(files: Sequence[str], how: str = "size/checksum mismatch") -> IndexCorrupt:
    """'the index is damaged (vectors.faiss: size/checksum mismatch); an ordinary re-index repairs it: ...'"""
    return IndexCorrupt(f"the index is damaged ({', '.join(files)}: {how}); {REPAIR_HINT}", files)


class IndexUnwritable(IndexError_):
    """The data folder cannot be written, so no index can be built there."""


class NoDocuments(IndexError_):
    """Nothing in the knowledge folders could be read; the current index is left alone."""


@dataclass
class DocumentEntry:
    doc_id: str
    title: str
    path: str
    sha256: str
    chunks: int


@dataclass
class IndexMeta:
    model_id: str
    dimension: int
    built_at: float
    built_by: str
    documents: list[DocumentEntry]
    chunk_count: int
    background_sha256: str
    format_version: int = FORMAT_VERSION
    # every other file of the build: name -> {"size": bytes, "sha256": hex}; empty in builds
    # written before checksums existed (those are read unchecked until the next re-index)
    files: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict) -> "IndexMeta":
        docs = [DocumentEntry(**d) for d in data.get("documents", [])]
        # indexes written before the field existed are format 1
        return cls(**{**data, "documents": docs, "format_version": int(data.get("format_version", 1))})

    @property
    def is_outdated(self) -> bool:
        """Built by an older version of strategy-bot, without what search now expects."""
        return self.format_version < FORMAT_VERSION


@dataclass
class BuildSummary:
    """What a (re-)index did, for the CLI and the Slack reply alike."""

    documents: int
    chunks: int
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    embedded: int = 0
    reused: int = 0
    seconds: float = 0.0
    build_id: str = ""
    translated: int = 0  # new sentences rendered by the LLM provider (retrieval/translation.py)
    repaired: list[str] = field(default_factory=list)  # damaged files of the served build this one replaced

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class KnowledgeIndex:
    """A loaded index: everything a query needs, in memory."""

    meta: IndexMeta
    store: FaissVectorStore
    chunks: list[Chunk]
    lexical: LexicalIndex
    sentence_vectors: np.ndarray
    sentences: list[dict]  # {"chunk": position, "text": str}
    background: np.ndarray
    path: Path
    gloss_vectors: np.ndarray | None = None  # the chunks in the other language (same order; see gloss.json)
    background_queries: np.ndarray | None = None  # the background sentences embedded as questions
    view_texts: list[str] | None = None  # what gloss_vectors embed: a rendering or a gloss per chunk
    rendered: list[bool] | None = None  # which of them are reviewed renderings (only those rank)
    sentence_view_vectors: np.ndarray | None = None  # renderings of sentences (see sentence_views)
    sentence_views: list[dict] | None = None  # {"sentence": position in `sentences`, "text": rendering}

    @property
    def chunk_vectors(self) -> np.ndarray:
        return self._chunk_vectors

    def sentences_of(self, position: int) -> list[int]:
        return self._by_chunk.get(position, [])

    def __post_init__(self) -> None:
        total = self.store.index.ntotal
        dim = self.store.embedding_model.dimension
        self._chunk_vectors = self.store.index.reconstruct_n(0, total) if total else np.zeros((0, dim), np.float32)
        self.sentence_owner = np.array([s["chunk"] for s in self.sentences], dtype=np.int64)
        self.language = corpus_language(self.chunks)
        self.chunk_baseline = similarity_baseline(self._chunk_vectors, self.background_queries)
        self.sentence_baseline = similarity_baseline(self.sentence_vectors, self.background_queries)
        self.rendered_mask = np.array(self.rendered if self.rendered is not None else [False] * len(self.chunks),
                                      dtype=bool)
        views = self.view_texts if self.view_texts is not None else [""] * len(self.chunks)
        # BM25 in the other language, over every passage, or the rendered ones alone would get its
        # vote: the renderings, passages written in that language (an English document among
        # Chinese ones) as they are, and a passage not rendered yet by its word-by-word gloss
        other = "en" if self.language == "zh" else "zh"
        texts = [c.embedding_text() if not r and language_of(c.text) == other else v
                 for v, r, c in zip(views, self.rendered_mask, self.chunks)]
        self.view_lexical = LexicalIndex(texts, tokenizer=view_tokens)
        self.view_baseline = similarity_baseline(self.gloss_vectors, self.background_queries) \
            if self.gloss_vectors is not None else None
        rows = self.sentence_views or []
        self.sentence_view_of = {r["sentence"]: j for j, r in enumerate(rows)}  # sentence row -> its rendering
        self.sentence_view_owner = np.array([self.sentence_owner[r["sentence"]] for r in rows], dtype=np.int64)
        if self.sentence_view_vectors is None:
            self.sentence_view_vectors = np.zeros((0, self.store.embedding_model.dimension), np.float32)
        self.sentence_view_baseline = similarity_baseline(self.sentence_view_vectors, self.background_queries)
        self._by_chunk: dict[int, list[int]] = {}
        for i, sentence in enumerate(self.sentences):
            self._by_chunk.setdefault(sentence["chunk"], []).append(i)


def chunk_to_document(chunk: Chunk) -> Document:
    meta = {k: getattr(chunk, k) for k in ("chunk_id", "doc_id", "title", "section", "ordinal", "kind")}
    return Document(page_content=chunk.text, metadata=meta, id=chunk.chunk_id)


def document_to_chunk(doc: Document) -> Chunk:
    m = doc.metadata
    return Chunk(chunk_id=m["chunk_id"], doc_id=m["doc_id"], title=m["title"], section=m["section"],
                 text=doc.page_content, ordinal=int(m["ordinal"]), kind=m.get("kind", "text"))


class IndexStore:
    """Builds, swaps and loads the index under one data directory."""

    def __init__(self, data_dir: Path, embeddings: VectorEmbeddings, background_file: Path,
                 chunker: Chunker | None = None, glossary_file: Path | None = None,
                 thesaurus: bool = True, parse_limits: ParseLimits | None = None,
                 tuning: IndexTuning | None = None, translation_folders: Sequence[Path] = ()) -> None:
        # where translation memories lie besides the knowledge folders (the index-time cache)
        self.translation_folders = [Path(f) for f in translation_folders]
        self.parse_limits = parse_limits  # what reading one document may cost (knowledge/parsers.py)
        self.glossary_file = glossary_file
        self.thesaurus = thesaurus  # Chinese synonyms for question words (thesaurus.py); off: none
        self.data_dir = Path(data_dir)
        self.embeddings = embeddings
        self.background_file = background_file
        self.tuning = tuning or default_tuning().index  # chunk sizes and term-map limits (prompts/ranking.yaml)
        self.chunker = chunker or Chunker(self.tuning.chunk_size, self.tuning.chunk_overlap)

    @property
    def current_link(self) -> Path:
        return self.data_dir / "index"

    @property
    def builds_dir(self) -> Path:
        return self.data_dir / "indexes"

    def exists(self) -> bool:
        return (self.current_link / META_FILE).is_file()

    def read_meta(self) -> IndexMeta:
        path = self.current_link / META_FILE
        if not path.is_file():
            raise IndexMissing(f"no index in {self.data_dir}: run `strategy-bot index`")
        return read_meta_file(path)

    def load(self) -> KnowledgeIndex:
        """Load the current index; refuses one built by a different embedding model, or a damaged one."""
        meta = self.read_meta()
        if meta.model_id != self.embeddings.model_id:
            raise IndexModelMismatch(
                f"the index in {self.data_dir} was built with {meta.model_id!r} but the settings ask for "
                f"{self.embeddings.model_id!r}; run `strategy-bot index --rebuild` (or change "
                "EMBEDDING_BACKEND / EMBEDDING_MODEL back)"
            )
        files = BuildFiles(self.current_link.resolve(), meta)
        damaged = files.damaged()
        if damaged:
            raise damaged_index(damaged)
        try:
            return self._load_folder(files)
        except IndexCorrupt:
            raise
        except READ_ERRORS as exc:  # each file read fine, but they do not fit together
            log.warning("the files of the index in %s disagree: %s", files.folder, exc)
            raise IndexCorrupt(f"the index is damaged: its files disagree with each other; {REPAIR_HINT}") from exc

    def _load_folder(self, files: BuildFiles) -> KnowledgeIndex:
        store = FaissVectorStore.from_parts(self.embeddings, files.vectors(), files.documents())
        chunks = [document_to_chunk(d) for d in store.documents]
        # absent from indexes built before it existed
        synonym_map = files.json(SYNONYM_MAP_FILE) if files.has(SYNONYM_MAP_FILE) else {}
        return KnowledgeIndex(
            meta=files.meta, store=store, chunks=chunks,
            lexical=LexicalIndex([c.embedding_text() for c in chunks], files.json(TERM_MAP_FILE), synonym_map),
            sentence_vectors=files.array("sentences.npy"),
            sentences=files.json("sentences.json"),
            background=files.array("background.npy"),
            path=files.folder,
            gloss_vectors=files.array("gloss.npy"),
            background_queries=files.array("background_queries.npy"),
            view_texts=files.json("gloss.json"),
            rendered=files.json(RENDERED_FILE) if files.has(RENDERED_FILE) else None,
            sentence_view_vectors=files.array(f"{SENTENCE_VIEWS}.npy") if files.has(f"{SENTENCE_VIEWS}.npy") else None,
            sentence_views=files.json(f"{SENTENCE_VIEWS}.json") if files.has(f"{SENTENCE_VIEWS}.json") else None,
        )

    @contextmanager
    def _build_lock(self) -> Iterator[None]:
        """One build at a time, across processes; the OS drops the lock if we die."""
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            handle = open(self.data_dir / "reindex.lock", "a+")
        except OSError as exc:
            raise IndexUnwritable(f"cannot build the index: DATA_DIR {os.path.abspath(self.data_dir)} is not writable "
                                  f"({exc.strerror or type(exc).__name__}); set DATA_DIR to a writable folder "
                                  "or fix its permissions") from None
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EACCES):
                    raise IndexBusy("a re-index is already running; try again when it has finished") from None
                raise
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def build(self, knowledge_dirs: Path | Sequence[Path], *, rebuild: bool = False, built_by: str = "cli",
              progress: Progress | None = None) -> BuildSummary:
        """Build a new index from the folder(s) and swap it in; see the module docstring."""
        started = time.perf_counter()
        folders = [Path(knowledge_dirs)] if isinstance(knowledge_dirs, (str, Path)) else \
            [Path(f) for f in knowledge_dirs]
        with self._build_lock():
            self._remove_unfinished()
            self._prepare_build()
            report = load_folders(folders, self.parse_limits)
            if not report.documents:
                raise NoDocuments(_no_documents_message(folders, report, index_kept=self.exists()))
            previous, cache, damaged = (None, VectorCache(), []) if rebuild else self._reusable()
            offer_shipped(cache, folders, self.embeddings.model_id)  # the shipped documents' vectors
            summary = self._summarise(report, previous)
            summary.repaired = damaged
            build_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
            folder = self.builds_dir / build_id
            folder.mkdir(parents=True)
            try:
                memory = TranslationMemory.from_folders([*folders, *self.translation_folders])
                self._write_build(folder, report.documents, cache, summary, built_by, progress, memory)
                self._publish(folder)
                self._swap(folder)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
            self._prune(keep=folder)
        summary.build_id = build_id
        summary.seconds = time.perf_counter() - started
        return summary

    def _prepare_build(self) -> None:
        """Hook run under the build lock before the documents are read (retrieval/shared_index.py
        brings in the published build and every upload there); nothing to do on one disk."""

    def _publish(self, folder: Path) -> None:
        """Hook run on a finished build before it is swapped in (shared_index.py stores it for every
        replica; a failure there removes the build and keeps the old one); nothing to do on one disk."""

    def _remove_unfinished(self) -> None:
        """Delete what killed builds left: folders without meta.json and stray temporary links.

        Only called under the build lock, so no live build can own them.
        """
        current = self.current_link.resolve() if self.current_link.exists() else None
        if self.builds_dir.is_dir():
            for path in self.builds_dir.iterdir():
                if path.is_dir() and path != current and not (path / META_FILE).is_file():
                    shutil.rmtree(path, ignore_errors=True)
        for link in self.data_dir.glob(".index-*"):
            if link.is_symlink():
                link.unlink(missing_ok=True)

    def _reusable(self) -> tuple[IndexMeta | None, VectorCache, list[str]]:
        """What a new build can take from earlier ones.

        The served build's meta (to tell added / changed / unchanged documents apart), a cache
        of every vector and gloss held by an intact file, and the served build's damaged files.
        Only when part of the served build is damaged are the older finished builds kept
        under indexes/ read too, for what it lost. Builds of another model are never reused.
        """
        cache = VectorCache()
        served = self.current_link.resolve() if self.current_link.exists() else None
        previous: IndexMeta | None = None
        damaged: list[str] = []
        for folder in self._finished_builds(served):
            try:
                meta = read_meta_file(folder / META_FILE)
            except IndexCorrupt as exc:
                damaged = exc.files if folder == served else damaged
                continue
            if meta.model_id != self.embeddings.model_id:
                continue
            lost = offer_reusable(BuildFiles(folder, meta), cache)
            previous = previous or meta  # the served build's, or the newest readable one's if its meta.json is lost
            if folder == served:
                damaged = lost
            if lost:
                log.warning("re-index: %s of build %s cannot be reused: %s", ", ".join(lost), folder.name,
                            "looking in older builds" if folder == served else "embedding what they held")
            else:
                break
        return previous, cache, damaged

    def _finished_builds(self, served: Path | None) -> list[Path]:
        """The served build first, then the other finished builds, newest first."""
        builds = [served] if served is not None and (served / META_FILE).is_file() else []
        if self.builds_dir.is_dir():
            others = [p for p in self.builds_dir.iterdir() if p.is_dir() and p != served and (p / META_FILE).is_file()]
            builds += sorted(others, key=lambda p: p.name, reverse=True)
        return builds

    def _summarise(self, report: LoadReport, old: IndexMeta | None) -> BuildSummary:
        old_docs = {d.doc_id: d for d in (old.documents if old else [])}
        summary = BuildSummary(documents=len(report.documents), chunks=0)
        for doc in report.documents:
            before = old_docs.get(doc.doc_id)
            if before is None:
                summary.added.append(doc.doc_id)
            elif before.sha256 != doc.sha256 or before.title != doc.title:
                summary.changed.append(doc.doc_id)
            else:
                summary.unchanged.append(doc.doc_id)
        current = {d.doc_id for d in report.documents}
        summary.removed = sorted(set(old_docs) - current)
        summary.skipped = [(s.path.name, s.reason) for s in report.skipped]
        return summary

    def _write_build(self, folder: Path, documents: list[SourceDocument], cache: VectorCache,
                     summary: BuildSummary, built_by: str, progress: Progress | None,
                     memory: TranslationMemory) -> None:
        chunks_by_doc = {doc.doc_id: self.chunker.chunk(doc) for doc in documents}
        chunks = [c for doc in documents for c in chunks_by_doc[doc.doc_id]]
        summary.chunks = len(chunks)
        sentences = [(i, s) for i, c in enumerate(chunks) if c.kind == "text" for s in sentences_in_context(c.text)]
        sentence_rows = [{"chunk": i, "text": s.text, "context": list(s.context)} for i, s in sentences]
        background = read_background(self.background_file)
        shipped = read_shipped(self.background_file, self.embeddings.model_id, background_sha(background))
        if shipped is not None:  # a first build need not embed the background (retrieval/background_vectors.py)
            cache.remember(background, shipped.passages)
            cache.remember(background, shipped.queries, as_query=True)

        chunk_texts = [c.embedding_text() for c in chunks]
        vocabulary = LexicalIndex(chunk_texts).vocabulary
        gloss_texts, rendered = self._other_language_views(chunks, chunk_texts, cache, memory)
        chunk_vectors = cache.embed(self.embeddings, chunk_texts, "chunks", progress)
        gloss_vectors = cache.embed(self.embeddings, gloss_texts, "glosses", progress)
        sentence_vectors = cache.embed(self.embeddings, [s.embedding_text() for _, s in sentences], "sentences",
                                       progress)
        target = other_language(corpus_language(chunks))
        sentence_views = [{"sentence": i, "text": rendering} for i, (_, s) in enumerate(sentences)
                          if (rendering := memory.render(s.text, target))]
        sentence_view_vectors = cache.embed(self.embeddings, [r["text"] for r in sentence_views],
                                            "sentence renderings", progress)
        background_vectors = cache.embed(self.embeddings, background, "background", progress)
        background_queries = cache.embed(self.embeddings, background, "background", progress, as_query=True)
        summary.embedded, summary.reused = cache.embedded, cache.reused

        store = FaissVectorStore(self.embeddings)
        store.add_vectors(chunk_vectors, [chunk_to_document(c) for c in chunks])
        store.save(folder)
        arrays = {"sentences": sentence_vectors, "background": background_vectors,
                  "background_queries": background_queries, "gloss": gloss_vectors,
                  SENTENCE_VIEWS: sentence_view_vectors}
        for name, array in arrays.items():
            np.save(folder / f"{name}.npy", array, allow_pickle=False)
        texts = {"sentences": sentence_rows, "background": background, "gloss": gloss_texts,
                 RENDERED_FILE.removesuffix(".json"): rendered, SENTENCE_VIEWS: sentence_views,
                 TERM_MAP_FILE.removesuffix(".json"): build_term_map(set(vocabulary), self.glossary_file, self.tuning),
                 SYNONYM_MAP_FILE.removesuffix(".json"): build_synonym_map(vocabulary) if self.thesaurus else {}}
        for name, value in texts.items():
            (folder / f"{name}.json").write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")
        meta = IndexMeta(
            model_id=self.embeddings.model_id, dimension=self.embeddings.dimension, built_at=time.time(),
            built_by=built_by,
            documents=[DocumentEntry(d.doc_id, d.title, d.path.name, d.sha256, len(chunks_by_doc[d.doc_id]))
                       for d in documents],
            chunk_count=len(chunks), background_sha256=background_sha(background),
            files={p.name: fingerprint(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name != META_FILE},
        )
        # meta.json last: a folder without it is an unfinished build and is never loaded.
        _write_json_durably(folder / META_FILE, asdict(meta))

    def _other_language_views(self, chunks: list[Chunk], chunk_texts: list[str], cache: VectorCache,
                              memory: TranslationMemory) -> tuple[list[str], list[bool]]:
        """Each chunk's rendering where the translation memory covers it, else its gloss (only
        those chunks are glossed: a gloss costs more to embed than its chunk)."""
        renderings = chunk_renderings(chunks, memory, corpus_language(chunks), self.tuning.rendering_min_share)
        missing = [i for i, r in enumerate(renderings) if r is None]
        glosses = iter(glosses_for([chunk_texts[i] for i in missing], cache, self.tuning.max_gloss_words))
        views = [r if r is not None else next(glosses) for r in renderings]
        return views, [r is not None for r in renderings]

    def _swap(self, folder: Path) -> None:
        temp_link = self.data_dir / f".index-{uuid.uuid4().hex[:8]}"
        os.symlink(os.path.relpath(folder, self.data_dir), temp_link)
        if self.current_link.exists() and not self.current_link.is_symlink():
            shutil.rmtree(self.current_link)  # an index folder from an older layout
        os.replace(temp_link, self.current_link)
        _fsync_dir(self.data_dir)

    def _prune(self, keep: Path) -> None:
        """Remove older builds (and crashed, unfinished ones), keeping the newest few."""
        if not self.builds_dir.is_dir():
            return
        builds = sorted((p for p in self.builds_dir.iterdir() if p.is_dir() and p != keep),
                        key=lambda p: p.name, reverse=True)
        finished = [p for p in builds if (p / META_FILE).is_file()]
        for path in [p for p in builds if p not in finished[:KEEP_OLD_BUILDS]]:
            shutil.rmtree(path, ignore_errors=True)


def _no_documents_message(folders: list[Path], report: LoadReport, *, index_kept: bool) -> str:
    """What is wrong with the knowledge folder(s), and what happens now.

    With no index yet there is nothing to keep: saying "the current index is kept" would
    send the reader looking for an index that does not exist.
    """
    reasons = "; ".join(f"{s.path.name}: {s.reason}" for s in report.skipped[:5])
    problems = "; ".join(_folder_problem(folder, reasons) for folder in folders)
    if index_kept:
        return f"no readable document: {problems}; the current index is kept"
    return (f"there is no index yet, and nothing to build it from: {problems}; put documents "
            f"({', '.join(supported_suffixes())}) there, or set KNOWLEDGE_DIR to the folder that holds them")


def _folder_problem(folder: Path, reasons: str) -> str:
    if not folder.exists():
        return f"the knowledge folder {folder} does not exist"
    if not folder.is_dir():
        return f"the knowledge folder {folder} is not a folder"
    if not candidate_files(folder):
        return f"the knowledge folder {folder} is empty"
    return f"no file in {folder} could be read" + (f" ({reasons})" if reasons else "")


def similarity_baseline(vectors: np.ndarray, background_queries: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Each vector's mean and spread of similarity to everyday questions.

    A few generic passages sit close to every question ("hubs") and crowd the top five,
    and raw e5 cosines of different passages are not on one scale. Search turns a
    cosine into a z-score against this baseline: how unusually close the question is
    to this passage, compared with how close everyday questions get to it.
    """
    if background_queries is None or not len(background_queries) or not len(vectors):
        return np.zeros(len(vectors)), np.ones(len(vectors))
    # float64 and rounded, so the baseline is the same on every CPU (see similarity.py)
    similarities = pairwise(as_float64(vectors), as_float64(background_queries))
    return exact(similarities.mean(axis=1)), exact(np.maximum(similarities.std(axis=1), 1e-3))


def corpus_language(chunks: list[Chunk]) -> str:
    """'zh' or 'en': the language most of the indexed text is in (by characters)."""
    counts = {"zh": 0, "en": 0}
    for chunk in chunks:
        counts[language_of(chunk.text)] += len(chunk.text)
    return max(counts, key=lambda lang: (counts[lang], lang == "en"))


def _write_json_durably(path: Path, data: dict) -> None:
    temp = path.with_suffix(".tmp")
    with open(temp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, ensure_ascii=False, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fingerprint(path: Path) -> dict:
    """Size and sha256 of a file, as meta.json records them (a few ms for the shipped corpus's build)."""
    with open(path, "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    return {"size": path.stat().st_size, "sha256": digest}


def read_meta_file(path: Path) -> IndexMeta:
    """A build's meta.json; IndexCorrupt when it is not the JSON a build writes."""
    try:
        return IndexMeta.from_json(json.loads(path.read_text(encoding="utf-8")))
    except READ_ERRORS as exc:
        log.warning("cannot read %s: %s", path, exc)
        raise damaged_index([META_FILE], "cannot be read") from exc


class BuildFiles:
    """The files of one finished build, each read under its own name and checked first.

    The only way this package reads a build (loading it, or reusing its vectors). A file is
    checked against the size and sha256 meta.json recorded for it before it is parsed, and
    anything that goes wrong while parsing becomes an `IndexCorrupt` naming the file, with
    the library's own message (FAISS's is C++) kept for the log. A build written before
    checksums existed is read unchecked.
    """

    def __init__(self, folder: Path, meta: IndexMeta) -> None:
        self.folder = folder
        self.meta = meta
        self._verified: dict[str, bool] = {}

    def has(self, name: str) -> bool:
        return name in self.meta.files or (self.folder / name).is_file()

    def damaged(self) -> list[str]:
        """Every recorded file whose size or checksum is not what the build wrote (or that is gone)."""
        return [name for name in self.meta.files if not self._intact(name)]

    def _intact(self, name: str) -> bool:
        if name not in self._verified:
            expected, path = self.meta.files.get(name), self.folder / name
            try:
                self._verified[name] = expected is None or (
                    path.stat().st_size == expected["size"] and fingerprint(path)["sha256"] == expected["sha256"])
            except (OSError, KeyError, TypeError):  # gone, or a malformed record in meta.json
                self._verified[name] = False
        return self._verified[name]

    def _read(self, name: str, parse: Callable[[Path], Any]) -> Any:
        if not self._intact(name):
            raise damaged_index([name])
        try:
            return parse(self.folder / name)
        except READ_ERRORS as exc:
            log.warning("cannot read %s: %s", self.folder / name, exc)
            raise damaged_index([name], "cannot be read") from exc

    def json(self, name: str) -> Any:
        return self._read(name, lambda path: json.loads(path.read_text(encoding="utf-8")))

    def array(self, name: str) -> np.ndarray:
        return self._read(name, lambda path: np.load(path, allow_pickle=False))

    def vectors(self) -> faiss.Index:
        return self._read(VECTORS_FILE, read_vectors)

    def documents(self) -> list[Document]:
        return self._read(DOCSTORE_FILE, read_documents)


def offer_reusable(files: BuildFiles, cache: VectorCache) -> list[str]:
    """Offer `cache` every vector and gloss of the build held by intact files; the names of the others.

    Each group of files is offered whole or not at all (vectors mean nothing without the
    texts they embed), so one damaged file costs only what it held.
    """
    lost = set(files.damaged())
    try:
        chunk_texts = [document_to_chunk(d).embedding_text() for d in files.documents()]
    except IndexCorrupt as exc:
        lost.update(exc.files)
        chunk_texts = None

    def sentence_texts() -> list[str]:
        return [Sentence(r["text"], tuple(r.get("context", ()))).embedding_text() for r in files.json("sentences.json")]

    offers: list[tuple[tuple[str, ...], Callable[[], None]]] = [
        (("sentences.json", "sentences.npy"), lambda: cache.remember(sentence_texts(), files.array("sentences.npy"))),
        (("gloss.json", "gloss.npy"), lambda: cache.remember(files.json("gloss.json"), files.array("gloss.npy"))),
        ((f"{SENTENCE_VIEWS}.json", f"{SENTENCE_VIEWS}.npy"),
         lambda: cache.remember([r["text"] for r in files.json(f"{SENTENCE_VIEWS}.json")],
                                files.array(f"{SENTENCE_VIEWS}.npy"))),
        (("background.json", "background.npy"),
         lambda: cache.remember(files.json("background.json"), files.array("background.npy"))),
        (("background.json", "background_queries.npy"),
         lambda: cache.remember(files.json("background.json"), files.array("background_queries.npy"), as_query=True)),
    ]
    if chunk_texts is not None:
        offers += [((VECTORS_FILE,), lambda: cache.remember(chunk_texts, _all_vectors(files.vectors()))),
                   (("gloss.json",), lambda: cache.remember_glosses(chunk_texts, files.json("gloss.json")))]
    for names, offer in offers:
        if not lost.isdisjoint(names) or not all(files.has(name) for name in names):
            continue  # damaged, or a file builds of an older format did not have
        try:
            offer()
        except IndexCorrupt as exc:
            lost.update(exc.files)
        except ValueError as exc:  # texts and vectors of different lengths: the group is unusable
            log.warning("cannot reuse %s of %s: %s", " + ".join(names), files.folder, exc)
            lost.update(names)
    return sorted(lost)


def _all_vectors(index: faiss.Index) -> np.ndarray:
    return index.reconstruct_n(0, index.ntotal) if index.ntotal else np.zeros((0, index.d), np.float32)
