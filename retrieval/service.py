"""`KnowledgeBase`: the one object the front ends (CLI, Slack) talk to.

It owns the embedding model and the loaded index, builds the index on first use,
swaps in a re-built index without interrupting questions (the old one answers until
the new one is loaded), and turns a question into an `Answer`.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from knowledge.language import language_of
from knowledge.parsers import ParseLimits
from knowledge.translations import TranslationMemory
from knowledge.upload_registry import UploadRegistry
from retrieval.abstain import DeclinePolicy, answers_in_part, should_decline, unknown_names
from retrieval.answer import Answer, QuotedPassage, compose, quotable_sentences
from retrieval.build_registry import BuildRegistry
from retrieval.crosslingual import CodeMixer
from retrieval.embeddings import VectorEmbeddings, make_embeddings
from retrieval.index_store import (
    BuildSummary,
    DocumentEntry,
    IndexBusy,
    IndexCorrupt,
    IndexError_,
    IndexStore,
    KnowledgeIndex,
    Progress,
)
from retrieval.intent import Intent, IntentModel, load_intents
from retrieval.intent_rank import promote_fitting
from retrieval.search import Searcher, SearchResult
from retrieval.shared_index import SharedIndexStore
from retrieval.similarity import normalise
from retrieval.tokens import tokenize
from retrieval.topic import topic_mentions
from retrieval.translation import SentenceTranslator, cache_folder, translate_new_units
from strategy_bot.database import engine_for, is_shared
from strategy_bot.settings import PROMPTS_DIR, Settings
from strategy_bot.tuning import Tuning, load_tuning

if TYPE_CHECKING:
    from retrieval.answer import Citation
    from retrieval.support import Evidence, SupportChecker
    from retrieval.synthesis import Draft, Synthesiser

log = logging.getLogger(__name__)

BACKGROUND_FILE = PROMPTS_DIR / "offtopic_background.txt"
GLOSSARY_FILE = PROMPTS_DIR / "glossary_en_zh.yaml"
REFRESH_CHECK_S = 5.0  # how often questions look for an index re-built by another process
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
SHOWN_BYTES = 8


class QuestionError(ValueError):
    """The question cannot be asked as it is; the message says why."""


def validate_question(question: str, max_chars: int) -> str:
    text = (question or "").strip()
    if not text:
        raise QuestionError("the question is empty: ask something about the documents")
    if len(text) > max_chars:
        raise QuestionError(f"the question is too long ({len(text):,} characters; the limit is {max_chars:,})")
    problem = undecodable(text)
    if problem:
        raise QuestionError(problem)
    return text


def undecodable(text: str) -> str | None:
    """Why `text` is not text an embedder can take, or None.

    Python decodes the command line (and stdin, see bot.cli) with `surrogateescape`: each
    byte that is not UTF-8, such as GBK-encoded Chinese from a Windows file, becomes a lone
    surrogate (U+DC80-U+DCFF), and JSON can carry one as `\\ud800`. No UTF-8 encoder takes
    those, so the embedder used to crash on them. Refuse the question instead, naming the bytes.
    """
    first = LONE_SURROGATE.search(text)
    if first is None:
        return None
    bad = LONE_SURROGATE.findall(text)
    raw = [ord(c) - 0xDC00 for c in bad if 0xDC80 <= ord(c) <= 0xDCFF]
    shown = " ".join(f"0x{b:02X}" for b in raw[:SHOWN_BYTES]) + (" …" if len(raw) > SHOWN_BYTES else "")
    what = f"{len(raw)} undecodable bytes ({shown})" if raw else f"{len(bad)} lone surrogate characters"
    return (f"the question is not valid UTF-8 text: {what}, from character {first.start() + 1}; "
            "send it as UTF-8 (text from a GBK-encoded file, say, must be converted first)")


@dataclass
class IndexStatus:
    documents: int
    chunks: int
    model_id: str
    built_at: float
    built_by: str


class KnowledgeBase:
    """Thread-safe: many questions at once, one re-index at a time."""

    def __init__(self, settings: Settings, embeddings: VectorEmbeddings | None = None,
                 tuning: Tuning | None = None, database: Engine | None = None) -> None:
        """`tuning`: the tuned numbers (default: TUNING_FILE with the settings' overrides); a bad
        tuning file raises TuningError here, at start-up, naming the entry. `database`: the state
        engine when the caller has one (serve); with DATABASE_URL on PostgreSQL, builds and uploads
        are shared through it (retrieval/shared_index.py), else the index lives in DATA_DIR alone."""
        self.settings = settings
        self._database = database
        self._registries: tuple[BuildRegistry, UploadRegistry] | None = None
        self.tuning = tuning or load_tuning(settings)
        self._embeddings = embeddings
        self._index: KnowledgeIndex | None = None
        self._searcher: Searcher | None = None
        self._translations = TranslationMemory()
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._checked_at = time.monotonic()
        self._synthesiser: "Synthesiser | None" = None  # built on first LLM answer (LLM_PROVIDER)
        self._llm_lock = threading.Lock()
        self._mixer: CodeMixer | None = None  # glossary terms for English questions (crosslingual.py)

    @property
    def embeddings(self) -> VectorEmbeddings:
        if self._embeddings is None:
            self._embeddings = make_embeddings(self.settings)
        return self._embeddings

    @property
    def store(self) -> IndexStore:
        args = (self.settings.data_dir, self.embeddings, BACKGROUND_FILE)
        options = dict(glossary_file=GLOSSARY_FILE, thesaurus=self.settings.chinese_thesaurus,
                       parse_limits=ParseLimits.from_settings(self.settings), tuning=self.tuning.index,
                       translation_folders=[cache_folder(self.settings.data_dir)])
        shared = self.shared
        if shared is None:
            return IndexStore(*args, **options)
        builds, uploads = shared
        return SharedIndexStore(*args, **options, registry=builds,
                                before_build=lambda: uploads.sync(self.settings.upload_dir))

    @property
    def shared(self) -> tuple[BuildRegistry, UploadRegistry] | None:
        """The registries of builds and uploads every replica shares, with DATABASE_URL on PostgreSQL;
        None on the embedded default (one DATA_DIR, as ever)."""
        if self._registries is None and is_shared(self.settings):
            database = self._database if self._database is not None else engine_for(self.settings)
            self._database = database
            self._registries = (BuildRegistry(database), UploadRegistry(database))
        return self._registries

    @property
    def uploads(self) -> UploadRegistry | None:
        """Where an upload is recorded for every replica (None: the upload folder is all there is)."""
        return self.shared[1] if self.shared else None

    @property
    def loaded_build(self) -> str | None:
        """The build being served (its folder's name), without loading one: /healthz reports it."""
        index = self._index
        return index.path.name if index is not None else None

    def published_build(self) -> str | None:
        """The build every replica should serve (shared database only; None otherwise or unreadable)."""
        shared = self.shared
        if shared is None:
            return None
        try:
            return shared[0].current()
        except SQLAlchemyError:
            return None

    def index_exists(self) -> bool:
        return self.store.exists()

    @property
    def is_loaded(self) -> bool:
        """Whether an index is in memory (whoever loaded it: start-up or a later question)."""
        return self._index is not None

    def ensure_index(self, progress: Progress | None = None) -> KnowledgeIndex:
        """The loaded index; built from the knowledge folder if there is none yet."""
        with self._lock:
            if self._index is None:
                store = self.store
                if isinstance(store, SharedIndexStore):
                    self._join_shared(store)
                if not store.exists():
                    store.build(self.settings.knowledge_dirs, built_by="first use", progress=progress)
                elif self._is_outdated(store):
                    self._upgrade(store, progress)
                self._set_index(store.load())
            assert self._index is not None
            return self._index

    def _join_shared(self, store: SharedIndexStore) -> None:
        """At first load on a shared database: take the published build, or publish ours if there is none."""
        try:
            store.follow()
        except IndexCorrupt as exc:
            log.warning("the published index build cannot be used (%s); serving this replica's own", exc)
        try:
            store.adopt()
        except IndexBusy:  # another replica is building: its build arrives through `refresh`
            pass

    def _is_outdated(self, store: IndexStore) -> bool:
        """An older format, by the same model (a damaged index or another model: `load` says so)."""
        try:
            meta = store.read_meta()
        except (IndexError_, OSError, ValueError, KeyError, TypeError):
            return False
        return meta.is_outdated and meta.model_id == self.embeddings.model_id

    def _upgrade(self, store: IndexStore, progress: Progress | None) -> None:
        """Rebuild an index of an older format (incremental: unchanged vectors are reused).

        If another process is building right now, the old index serves until its build lands.
        """
        log.info("the index in %s is of an older format: rebuilding it", self.settings.data_dir)
        try:
            store.build(self.settings.knowledge_dirs, built_by="format upgrade", progress=progress)
        except IndexBusy:
            log.info("another process is building the index; using the current one meanwhile")

    def _set_index(self, index: KnowledgeIndex) -> None:
        # The translation memories are re-read with every index, so an edited file counts from
        # the next re-index on (a few hundred lines: milliseconds).
        translations = TranslationMemory.from_folders([*self.settings.knowledge_dirs,
                                                      cache_folder(self.settings.data_dir)])
        self._index, self._searcher = index, Searcher(index, self.tuning.search)
        self._translations = translations

    def reindex(self, *, rebuild: bool = False, built_by: str = "cli",
                progress: Progress | None = None) -> BuildSummary:
        """Build a new index aside and swap it in; questions keep using the old one meanwhile."""
        store = self.store
        summary = store.build(self.settings.knowledge_dirs, rebuild=rebuild, built_by=built_by,
                              progress=progress)
        new_index = store.load()
        summary.translated = self._translate_new_sentences(new_index)
        if summary.translated:  # the new renderings become search views: an incremental build embeds only them
            store.build(self.settings.knowledge_dirs, built_by=built_by, progress=progress)
            new_index = store.load()
        with self._lock:
            self._set_index(new_index)
        return summary

    def _translate_new_sentences(self, index: KnowledgeIndex) -> int:
        """With an LLM provider, render the new documents' sentences once (retrieval/translation.py)."""
        settings = self.settings
        if settings.llm_provider == "none" or not settings.translate_at_index:
            return 0
        from retrieval.llm import chat_model, model_name

        model_id = f"{settings.llm_provider}:{model_name(settings)}"
        memory = TranslationMemory.from_folders([*settings.knowledge_dirs, cache_folder(settings.data_dir)])
        run = translate_new_units(index.chunks, memory, settings.data_dir,
                                  SentenceTranslator(chat_model(settings), model_id), model_id,
                                  settings.translate_max_units)
        return run.translated

    def status(self) -> IndexStatus:
        """The index being served; IndexMissing, IndexCorrupt... (with the reason) when there is none to serve."""
        meta = self._served_index().meta
        return IndexStatus(len(meta.documents), meta.chunk_count, meta.model_id, meta.built_at, meta.built_by)

    def documents(self) -> list[DocumentEntry]:
        """The documents of the index being served (id, title, file, chunks)."""
        return list(self._served_index().meta.documents)

    def _served_index(self) -> KnowledgeIndex:
        """The loaded index, loading it if need be, but never building one: asking what is
        indexed must answer at once, not start a first build (IndexMissing instead)."""
        if self._index is None:
            self.store.read_meta()
        return self.ensure_index()

    def _current_searcher(self) -> Searcher:
        """The searcher of the index being served, taken once per question.

        A question must search and compose from the same index: positions from a
        newly swapped-in index would point at the wrong sentences of the old one.
        """
        self.ensure_index()
        if time.monotonic() - self._checked_at >= REFRESH_CHECK_S:
            self.refresh()
        with self._lock:
            assert self._searcher is not None
            return self._searcher

    def refresh(self, *, wait: bool = False) -> bool:
        """Load the index another process swapped in (`strategy-bot index` beside a running bot),
        or, on a shared database, the build another replica published (materialised here first).

        One `readlink` tells (plus one pointer read when shared); questions check at most every
        REFRESH_CHECK_S seconds, and a shared replica's listener (`BuildFollower`) when told. True
        when a newer index was loaded. A damaged new index is not fatal: the old one stays.
        `wait`: queue behind a refresh already running (the listener must not lose a notification
        to a question's check that read the pointer a moment too early).
        """
        self._checked_at = time.monotonic()
        if not self._refresh_lock.acquire(blocking=wait):
            return False
        try:
            store = self.store
            if isinstance(store, SharedIndexStore):
                store.follow()
            if self._index is None:  # shared: the start-up load may have met a build running elsewhere
                return self._load_if_present(store) if isinstance(store, SharedIndexStore) else False
            if store.current_link.resolve() == self._index.path or not store.exists():
                return False
            new_index = store.load()
        except (IndexError_, OSError, ValueError, KeyError, SQLAlchemyError) as exc:
            log.warning("kept serving build %s: the new one could not be loaded (%s)", self.loaded_build,
                        str(exc)[:300] or type(exc).__name__)
            return False
        finally:
            self._refresh_lock.release()
        with self._lock:
            if store.current_link.resolve() != new_index.path:  # swapped again meanwhile: next check
                return False
            self._set_index(new_index)
        log.info("now serving index build %s", new_index.path.name)
        return True

    def _load_if_present(self, store: IndexStore) -> bool:
        """First load, once a build is here (the start-up load may have found another replica building)."""
        if not store.exists() or not self._lock.acquire(blocking=False):
            return False
        try:
            if self._index is None:
                self._set_index(store.load())
                log.info("now serving index build %s", self.loaded_build)
                return True
            return False
        finally:
            self._lock.release()

    def search(self, query: str, k: int | None = None, mode: str = "hybrid",
               history: Sequence[str] = (), searcher: Searcher | None = None) -> SearchResult:
        searcher = searcher or self._current_searcher()
        vector = self._query_vector(query, history, searcher.index.language)
        lexical_query = " ".join([*history[-1:], query])
        return searcher.search(lexical_query, k or self.settings.top_k, mode=mode, query_vector=vector)

    def quotes(self, query: str, k: int | None = None, *, overlap_weight: float = 0.0) -> list[QuotedPassage]:
        """The top `k` passages for `query`, each with its quotable sentence closest to the query.

        What a citation of a reason quotes (decision/report.py). Search and sentences come from
        the same index, even if a re-index swaps in another one meanwhile. `overlap_weight`:
        see `quotable_sentences`.
        """
        searcher = self._current_searcher()
        result = self.search(query, k, searcher=searcher)
        sentences = quotable_sentences(searcher.index, result, len(result.hits),
                                       query_words=frozenset(tokenize(query)), overlap_weight=overlap_weight)
        return [QuotedPassage(hit, max(found, key=lambda s: s.similarity, default=None))
                for hit, found in zip(result.hits, sentences)]

    @property
    def index_id(self) -> str:
        """Which build is being served (its folder): it changes when a re-index is swapped in."""
        return str(self.ensure_index().path)

    @property
    def mixer(self) -> CodeMixer:
        if self._mixer is None:
            self._mixer = CodeMixer.from_file(GLOSSARY_FILE)
        return self._mixer

    def _embeddable(self, text: str, corpus_language: str) -> str:
        """A question in another language than the documents is embedded with its domain
        terms in the documents' words (see CodeMixer)."""
        return self.mixer.mix(text) if language_of(text) != corpus_language else text

    def _query_vector(self, query: str, history: Sequence[str], corpus_language: str) -> np.ndarray:
        vector = self.embeddings.embed_query_vector(self._embeddable(query, corpus_language))
        if history:
            previous = self.embeddings.embed_query_vector(self._embeddable(history[-1], corpus_language))
            vector = normalise(vector.astype(np.float64)
                               + self.tuning.search.history_weight * previous.astype(np.float64))
        return vector

    def ask(self, question: str, history: Sequence[str] = (), mode: str = "hybrid", *,
            transcript: Sequence[tuple[str, str]] = ()) -> Answer:
        """Answer a question from the documents, or decline when they don't cover it.

        `transcript` holds the thread's earlier (question, answer) pairs: the LLM answer
        (LLM_PROVIDER) reads them to understand a follow-up; without `history`, their
        questions also steer retrieval. Raises LLMUnavailable when the provider is misconfigured.
        """
        answer = self._extractive(question, history, mode, transcript)
        if not self._wants_llm(answer):
            return self._without_llm(answer)
        return self.synthesiser().answer(answer, transcript)

    def stream_answer(self, question: str, history: Sequence[str] = (), mode: str = "hybrid", *,
                      transcript: Sequence[tuple[str, str]] = ()) -> "Iterator[Draft]":
        """`ask`, as drafts of the text while the model writes; the last draft carries the `Answer`.

        Without an LLM there is one draft, the final one. Errors of `ask` (QuestionError,
        LLMUnavailable) are raised when the first draft is asked for.
        """
        from retrieval.synthesis import Draft

        answer = self._extractive(question, history, mode, transcript)
        if not self._wants_llm(answer):
            answer = self._without_llm(answer)
            yield Draft(answer.answer, answer)
            return
        yield from self.synthesiser().stream(answer, transcript)

    def synthesiser(self) -> "Synthesiser":
        """The LLM answer writer, built once; raises LLMUnavailable with the fix (e.g. the extra to install)."""
        with self._llm_lock:
            if self._synthesiser is None:
                from retrieval.synthesis import Synthesiser

                self._synthesiser = Synthesiser(self.settings, self.support_checker())
            return self._synthesiser

    def support_checker(self) -> "SupportChecker":
        """What checks an LLM answer's sentences: this base's embedder and its index's sentence vectors."""
        from retrieval.support import SupportChecker, SupportPolicy
        from retrieval.synthesis import load_prompts

        return SupportChecker(SupportPolicy.from_prompts(load_prompts()), self.embeddings.embed_queries,
                              self.passage_evidence)

    def passage_evidence(self, citations: "Sequence[Citation]") -> "list[Evidence]":
        """Each cited passage's sentences and their reviewed renderings, with the vectors the index
        stored for them (no embedding); a passage a re-index has since replaced is embedded afresh."""
        from knowledge.sentences import split_sentences
        from retrieval.support import evidence_of

        index = self.ensure_index()
        positions = {chunk.chunk_id: i for i, chunk in enumerate(index.chunks)}
        found = []
        for citation in citations:
            position = positions.get(citation.chunk_id)
            if position is None:
                texts = split_sentences(citation.text) or [citation.text]
                found.append(evidence_of(citation.n, texts, self.embeddings.embed_passages(texts)))
                continue
            rows = index.sentences_of(position)
            views = [index.sentence_view_of[r] for r in rows if r in index.sentence_view_of]
            sentence_views = index.sentence_views or []
            texts = [index.sentences[r]["text"] for r in rows] + [sentence_views[j]["text"] for j in views]
            originals = [index.sentences[r]["text"] for r in rows] + \
                [index.sentences[sentence_views[j]["sentence"]]["text"] for j in views]
            vectors = np.vstack([index.sentence_vectors[rows], index.sentence_view_vectors[views]]) \
                if rows else np.zeros((0, self.embeddings.dimension), np.float32)
            found.append(evidence_of(citation.n, texts, vectors, originals))
        return found

    def _without_llm(self, answer: Answer) -> Answer:
        """With LLM_PROVIDER set, an answer the model was not asked for says why (`llm`)."""
        if self.settings.llm_provider == "none":
            return answer
        from retrieval.synthesis import with_llm

        why = "the documents don't cover the question" if answer.abstained else "no passage to give the model"
        return with_llm(answer, False, why)

    def check_llm(self) -> None:
        """Fail early (at start-up) when LLM_PROVIDER is set but cannot be used."""
        if self.settings.llm_provider != "none":
            self.synthesiser()

    def _wants_llm(self, answer: Answer) -> bool:
        return self.settings.llm_provider != "none" and not answer.abstained and bool(answer.citations)

    @property
    def intents(self) -> IntentModel:
        return load_intents()

    @property
    def decline_policy(self) -> DeclinePolicy:
        d = self.tuning.decline
        return DeclinePolicy(d.same_language_margin, d.cross_lingual_margin, d.unknown_name_margin,
                             d.unknown_name_partial_margin, d.heading_relief)

    def _search_for(self, query: str, intent: Intent, mode: str, history: Sequence[str],
                    searcher: Searcher) -> SearchResult:
        """The search, with the passage whose list the question asks for moved up (retrieval/intent_rank.py);
        not for a question about the sample code, which code lines answer, not a labelled list."""
        tuning = self.tuning.search
        keep = self.settings.top_k
        intent = self.intents.strongly_asked(intent, query)
        if not intent.kinds or self.intents.asks_about_code(query):
            return self.search(query, k=keep, mode=mode, history=history, searcher=searcher)
        result = self.search(query, k=max(keep, tuning.intent_depth), mode=mode, history=history, searcher=searcher)
        # a kind only headings name (steps, challenges): the heading says the passage is exactly that
        place = tuning.heading_promote_to if intent.kinds & self.intents.heading_kinds else tuning.intent_promote_to
        return promote_fitting(result, intent, self.intents, depth=tuning.intent_depth,
                               promote_to=place, keep=keep)

    def _extractive(self, question: str, history: Sequence[str], mode: str,
                    transcript: Sequence[tuple[str, str]]) -> Answer:
        text = validate_question(question, self.settings.max_question_chars)
        started = time.perf_counter()
        searcher = self._current_searcher()
        index = searcher.index
        loaded = time.perf_counter()
        history = [h for h in (history or [q for q, _ in transcript]) if h.strip()][-2:]
        if history and not self.intents.is_follow_up(text):
            history = []  # an independent question is searched on its own
        standalone = self.intents.standalone(text, history[-1]) if history else None
        intent = self.intents.of(text, previous=history[-1] if history else None)
        topic_of = standalone or " ".join([*history[-1:], text])
        result = self._search_for(standalone or text, intent, mode, [] if standalone else history, searcher)
        searched = time.perf_counter()
        cross_lingual = language_of(text) != index.language
        unknown = unknown_names(text, index.lexical.mentions)
        mentions = topic_mentions(topic_of, self._translations)
        heading_named = bool(result.hits and mentions and mentions(result.hits[0].chunk.heading))
        declined = should_decline(result, self.decline_policy, cross_lingual=cross_lingual, unknown=unknown,
                                  heading_named=heading_named)
        unmentioned: list[str] = []  # named in the question, never in the documents: said first in a partial answer
        if declined and unknown and answers_in_part(result, self.decline_policy, cross_lingual=cross_lingual):
            declined, unmentioned = False, unknown
        answer = compose(text, index, result, declined=declined, sentences=self.settings.answer_sentences,
                         unknown_names=unknown, unmentioned=unmentioned, translations=self._translations,
                         intent=intent, tuning=self.tuning.answer,
                         topic_of=topic_of)
        done = time.perf_counter()
        answer.timings_ms = {"load": (loaded - started) * 1000, "search": (searched - loaded) * 1000,
                             "compose": (done - searched) * 1000, "total": (done - started) * 1000}
        return answer
