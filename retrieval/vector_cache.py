"""Re-using what the current index already embedded, so a re-index embeds only new text.

Vectors are found by the hash of the exact text embedded (and whether it was embedded
as a passage or as a question), so an unchanged chunk, sentence or background line is
copied, whatever else changed around it.
"""
from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Callable

import numpy as np

from knowledge.sentences import Sentence
from retrieval.crosslingual import Glosser, build_gloss_map
from retrieval.embeddings import VectorEmbeddings
from retrieval.tokens import STOPWORDS, chinese_words

if TYPE_CHECKING:
    from retrieval.index_store import KnowledgeIndex

Progress = Callable[[str, int, int], None]  # (stage, done, total)


def text_sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class VectorCache:
    """Vectors of texts the current index already embedded, found by text hash."""

    def __init__(self, previous: "KnowledgeIndex | None") -> None:
        self.known: dict[str, np.ndarray] = {}
        self.gloss_of: dict[str, str] = {}  # chunk embedding text hash -> its gloss in the current index
        self.embedded = 0
        self.reused = 0
        if previous is None:
            return
        for i, chunk in enumerate(previous.chunks):
            self.known[text_sha(chunk.embedding_text())] = previous.store.index.reconstruct(i)
        gloss_file = previous.path / "gloss.json"
        if gloss_file.is_file():
            glosses = json.loads(gloss_file.read_text(encoding="utf-8"))
            if len(glosses) == len(previous.chunks):
                for chunk, gloss in zip(previous.chunks, glosses):
                    self.gloss_of[text_sha(chunk.embedding_text())] = gloss
        for row, vector in zip(previous.sentences, previous.sentence_vectors):
            embedded = Sentence(row["text"], tuple(row.get("context", ()))).embedding_text()
            self.known[text_sha(embedded)] = vector
        folder = previous.path
        for name, prefix in (("background", ""), ("background_queries", "query:"), ("gloss", "")):
            texts_file = folder / f"{name.split('_')[0]}.json"
            if not (folder / f"{name}.npy").is_file() or not texts_file.is_file():
                continue
            texts = json.loads(texts_file.read_text(encoding="utf-8"))
            for text, vector in zip(texts, np.load(folder / f"{name}.npy", allow_pickle=False)):
                self.known[prefix + text_sha(text)] = vector

    def embed(self, embeddings: VectorEmbeddings, texts: list[str], stage: str,
              progress: Progress | None, batch: int = 16, as_query: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), embeddings.dimension), dtype=np.float32)
        prefix = "query:" if as_query else ""
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




def glosses_for(chunk_texts: list[str], cache: "VectorCache", max_gloss_words: int) -> list[str]:
    """English glosses of the chunks; a chunk the current index has keeps its gloss.

    A chunk's gloss depends only on its own words, so it is taken from the current
    index as it is; when no chunk is new, the dictionary is not even read. Keying
    glosses by chunk also guarantees that an unchanged document keeps exactly its
    vectors, whatever the rest of the corpus does (a `--rebuild` recomputes them all).
    """
    previous = [cache.gloss_of.get(text_sha(text)) for text in chunk_texts]
    if all(gloss is not None for gloss in previous):
        return [gloss for gloss in previous if gloss is not None]
    glosser = Glosser(build_gloss_map(chinese_words(chunk_texts), max_gloss_words), STOPWORDS)
    return [gloss if gloss is not None else glosser.gloss(text) for gloss, text in zip(previous, chunk_texts)]
