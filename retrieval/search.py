"""Hybrid search: several dense views of each chunk, fused with BM25.

Dense score of a chunk, for a question q (all cosines of normalised e5 vectors):

    z(chunk, q) + max over its sentences z(sentence, q)

- z(x, q): the cosine of q and x as a z-score against x's similarity to everyday
  questions (index_store.similarity_baseline). Generic passages that sit close to
  every question stop crowding the top five, and passages become comparable.
- The best sentence rewards one precise match inside a long passage (a code-only
  chunk counts its chunk score twice).
- An English question's words mapped to the corpus's Chinese words (crosslingual.py)
  can be embedded too, and that pseudo-question's dense score added with a small
  weight (`translated_query_weight`; 0 since the renderings view made it redundant).
- A question in the other language than the documents is also matched against each
  passage's reviewed rendering (renderings.py), densely and with BM25 (English words
  stemmed), with the tuned weights; a passage without a rendering counts its own dense
  score there instead. A word-by-word gloss, where there is no rendering, is not ranked
  (it lowered recall in the benchmark) but counts for declining: see abstain.py.

Lexical: plain reciprocal-rank fusion lowered recall for English questions here,
because BM25 cannot match English words to Chinese text and its ranking is noise.
So English words are first mapped to the corpus's Chinese words (crosslingual.py),
and the lexical side's weight is the share of the query the corpus covers.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from knowledge.chunking import Chunk
from knowledge.language import language_of
from retrieval.index_store import KnowledgeIndex
from retrieval.lexical import view_tokens
from retrieval.similarity import as_float64, cosines, exact, rank
from strategy_bot.tuning import SearchTuning, default_tuning

MODES = ("hybrid", "dense", "lexical")


@dataclass(frozen=True)
class Hit:
    position: int
    chunk: Chunk
    score: float  # fused score (mode-dependent scale); rank order is what matters
    dense: float  # cosine similarity of question and chunk
    lexical: float  # BM25 score (0 when BM25 did not match)


@dataclass(frozen=True)
class SearchResult:
    hits: list[Hit]
    query_vector: np.ndarray
    best_dense: float  # best cosine of the question with a chunk, its gloss or a sentence
    best_background: float  # best cosine against the off-topic background set
    coverage: float  # share of query words the corpus contains (directly or translated)


def rrf(scores: np.ndarray, k: int | None = None) -> np.ndarray:
    """Reciprocal-rank weights of every position (1 / (k + rank)); k: the tuned `rrf_k`."""
    k = default_tuning().search.rrf_k if k is None else k
    ranks = np.empty(len(scores))
    ranks[rank(scores)] = np.arange(len(scores))
    return 1.0 / (k + ranks + 1)


def zscores(similarities: np.ndarray, baseline: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    mean, spread = baseline
    return exact((similarities - mean) / spread)


def best_per_chunk(index: KnowledgeIndex, sentence_scores: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Each chunk's best sentence score (`fallback` for chunks without prose sentences)."""
    best = np.full(len(index.chunks), -np.inf, dtype=np.float64)
    if len(index.sentences):
        np.maximum.at(best, index.sentence_owner, sentence_scores)
    return np.where(np.isfinite(best), best, fallback)


class Searcher:
    """Searches one loaded `KnowledgeIndex` with the tuned weights (prompts/ranking.yaml `search`)."""

    def __init__(self, index: KnowledgeIndex, tuning: SearchTuning | None = None) -> None:
        self.index = index
        self.tuning = tuning or default_tuning().search
        # float64 copies, so scores are the same on every CPU (see similarity.py)
        self._chunks = as_float64(index.chunk_vectors)
        self._sentences = as_float64(index.sentence_vectors) if len(index.sentences) else np.zeros((0, 0))
        self._background = as_float64(index.background)
        self._glosses = as_float64(index.gloss_vectors) if index.gloss_vectors is not None else None
        self._sentence_views = as_float64(index.sentence_view_vectors)

    def cosines(self, vector: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cosines of the question with every chunk and every sentence (computed once per vector)."""
        return cosines(self._chunks, vector), cosines(self._sentences, vector)

    def dense_score(self, chunk: np.ndarray, sentences: np.ndarray) -> np.ndarray:
        """z(chunk) + its best z(sentence), from the raw cosines."""
        index = self.index
        chunk_z = zscores(chunk, index.chunk_baseline)
        sentence_z = zscores(sentences, index.sentence_baseline) if len(sentences) else sentences
        return chunk_z + best_per_chunk(index, sentence_z, chunk_z)

    def search(self, query: str, k: int = 5, mode: str = "hybrid",
               query_vector: np.ndarray | None = None) -> SearchResult:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        index = self.index
        vector = query_vector if query_vector is not None else index.store.embedding_model.embed_query_vector(query)
        if not index.chunks:
            return SearchResult([], vector, -1.0, -1.0, 0.0)
        chunk, sentences = self.cosines(vector)
        dense = self.dense_score(chunk, sentences)
        prepared = index.lexical.prepare(query, self.tuning.max_synonyms)
        coverage = prepared.coverage
        if prepared.translated and self.tuning.translated_query_weight:  # 0: not even embedded
            # An English question also asks, in the corpus's own words, through its translation.
            pseudo = index.store.embedding_model.embed_query_vector(" ".join(prepared.translated))
            dense = dense + self.tuning.translated_query_weight * self.dense_score(*self.cosines(pseudo))
        lexical = index.lexical.scores(prepared.tokens)
        view_dense, view_lexical = self._rendering_scores(query, vector, dense)
        dense = dense + self.tuning.rendering_weight * view_dense
        if mode == "dense":
            fused = dense
        elif mode == "lexical":
            fused = np.where(lexical > 0, lexical, -np.inf)
        else:
            rrf_k = self.tuning.rrf_k
            fused = (rrf(dense, rrf_k)
                     + self.tuning.lexical_weight * coverage * np.where(lexical > 0, rrf(lexical, rrf_k), 0.0)
                     + self.tuning.rendering_lexical_weight * np.where(view_lexical > 0, rrf(view_lexical, rrf_k), 0.0))
        order = [int(p) for p in rank(fused)[:k] if np.isfinite(fused[p])]
        hits = [Hit(p, index.chunks[p], float(fused[p]), float(chunk[p]), float(lexical[p])) for p in order]
        background = float(np.max(cosines(self._background, vector))) if len(index.background) else -1.0
        gloss = cosines(self._glosses, vector) if self._glosses is not None else chunk
        best = float(max(chunk.max(), gloss.max(), sentences.max() if len(sentences) else -1.0))
        return SearchResult(hits=hits, query_vector=vector, best_dense=best,
                            best_background=background, coverage=coverage)

    def _rendering_scores(self, query: str, vector: np.ndarray, own: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The question against the passages' renderings, as `dense_score` does against the
        originals (z(passage) + its best z(sentence)), and BM25; a passage without a rendering
        counts its `own` dense score. Zeros for a question in the documents' language."""
        index = self.index
        zeros = np.zeros(len(index.chunks))
        if self._glosses is None or not index.rendered_mask.any() or language_of(query) == index.language:
            return zeros, zeros
        view_z = zscores(cosines(self._glosses, vector), index.view_baseline)
        best = np.full(len(index.chunks), -np.inf)
        if len(self._sentence_views):
            sentence_z = zscores(cosines(self._sentence_views, vector), index.sentence_view_baseline)
            np.maximum.at(best, index.sentence_view_owner, sentence_z)
        view = view_z + np.where(np.isfinite(best), best, view_z)
        dense = np.where(index.rendered_mask, view, own)
        return dense, index.view_lexical.scores(view_tokens(query)).astype(np.float64)
