"""Re-using what earlier builds already embedded, so a re-index embeds only new text.

Vectors are found by the hash of the exact text embedded (and whether it was embedded
as a passage or as a question), so an unchanged chunk, sentence or background line is
copied, whatever else changed around it.

This module never reads a build's files: `retrieval.index_store` owns them (and their
checksums), reads what is intact and hands it over through `remember` and
`remember_glosses`. That keeps one parser per file and the dependency one-way.
"""
from __future__ import annotations

import hashlib
from typing import Callable, Sequence

import numpy as np

from retrieval.crosslingual import Glosser, build_gloss_map
from retrieval.embeddings import VectorEmbeddings
from retrieval.tokens import STOPWORDS, chinese_words

Progress = Callable[[str, int, int], None]  # (stage, done, total)
QUERY_PREFIX = "query:"


def text_sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class VectorCache:
    """Vectors of texts earlier builds embedded, found by text hash; empty for a `--rebuild`."""

    def __init__(self) -> None:
        self.known: dict[str, np.ndarray] = {}
        self._gloss_of: dict[str, str] = {}  # chunk embedding text hash -> its English gloss
        self.embedded = 0
        self.reused = 0

    def remember(self, texts: Sequence[str], vectors: np.ndarray, *, as_query: bool = False) -> None:
        """Offer vectors for reuse: `vectors[i]` is `texts[i]` embedded (as a question if `as_query`).

        The first offer of a text wins: the index store offers the served build before older ones.
        """
        if len(texts) != len(vectors):
            raise ValueError(f"{len(texts)} texts but {len(vectors)} vectors")
        prefix = QUERY_PREFIX if as_query else ""
        for text, vector in zip(texts, vectors):
            self.known.setdefault(prefix + text_sha(text), vector)

    def remember_hashed(self, shas: Sequence[str], vectors: np.ndarray) -> None:
        """Offer passage vectors known only by their texts' sha256 (retrieval/corpus_vectors.py)."""
        for sha, vector in zip(shas, vectors):
            self.known.setdefault(sha, vector)

    def remember_glosses(self, chunk_texts: Sequence[str], glosses: Sequence[str]) -> None:
        """Offer the English gloss of each chunk (by the chunk's embedding text)."""
        if len(chunk_texts) != len(glosses):
            raise ValueError(f"{len(chunk_texts)} chunks but {len(glosses)} glosses")
        for text, gloss in zip(chunk_texts, glosses):
            self._gloss_of.setdefault(text_sha(text), gloss)

    def gloss_of(self, chunk_text: str) -> str | None:
        return self._gloss_of.get(text_sha(chunk_text))

    def embed(self, embeddings: VectorEmbeddings, texts: list[str], stage: str,
              progress: Progress | None, batch: int = 16, as_query: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), embeddings.dimension), dtype=np.float32)
        prefix = QUERY_PREFIX if as_query else ""
        encode = embeddings.embed_queries if as_query else embeddings.embed_passages
        missing = []
        for i, text in enumerate(texts):
            vector = self.known.get(prefix + text_sha(text))
            if vector is None:
                missing.append(i)
            else:
                out[i] = vector
        self.reused += len(texts) - len(missing)
        for start in range(0, len(missing), batch):
            part = missing[start : start + batch]
            out[part] = encode([texts[i] for i in part])
            self.embedded += len(part)
            if progress:
                progress(stage, min(start + batch, len(missing)), len(missing))
        if progress and not missing:
            progress(stage, 0, 0)
        return out


def glosses_for(chunk_texts: list[str], cache: VectorCache, max_gloss_words: int) -> list[str]:
    """English glosses of the chunks; a chunk an earlier build has keeps its gloss.

    A chunk's gloss depends only on its own words, so it is taken from the earlier build
    as it is; when no chunk is new, the dictionary is not even read. Keying glosses by
    chunk also guarantees that an unchanged document keeps exactly its vectors, whatever
    the rest of the corpus does (a `--rebuild` recomputes them all).
    """
    previous = [cache.gloss_of(text) for text in chunk_texts]
    if all(gloss is not None for gloss in previous):
        return [gloss for gloss in previous if gloss is not None]
    glosser = Glosser(build_gloss_map(chinese_words(chunk_texts), max_gloss_words), STOPWORDS)
    return [gloss if gloss is not None else glosser.gloss(text) for gloss, text in zip(previous, chunk_texts)]
