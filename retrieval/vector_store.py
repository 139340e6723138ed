"""A FAISS vector store behind `langchain_core`'s `VectorStore` interface.

Why not `langchain_community.vectorstores.FAISS`: that package was archived in
June 2026, it pickles its docstore (loading a pickle a user could replace runs their
code), and it reports `1 - inner product` as relevance for inner-product indexes
(langchain#14948). Here vectors live in FAISS's own binary format and documents in
JSON; scores are plain cosine similarities (vectors are normalised).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Sequence

import faiss
import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore

from retrieval.embeddings import VectorEmbeddings

VECTORS_FILE = "vectors.faiss"
DOCSTORE_FILE = "docstore.json"


class FaissVectorStore(VectorStore):
    """Exact inner-product search over normalised vectors, with a JSON docstore."""

    def __init__(self, embedding: VectorEmbeddings, index: faiss.Index | None = None,
                 documents: list[Document] | None = None) -> None:
        self._embedding = embedding
        self.index = index if index is not None else faiss.IndexFlatIP(embedding.dimension)
        self.documents: list[Document] = list(documents or [])
        self._positions = {doc.id: i for i, doc in enumerate(self.documents) if doc.id}

    @property
    def embeddings(self) -> Embeddings:
        return self._embedding

    @property
    def embedding_model(self) -> VectorEmbeddings:
        return self._embedding

    def __len__(self) -> int:
        return len(self.documents)

    def add_vectors(self, vectors: np.ndarray, documents: Sequence[Document]) -> list[str]:
        """Add pre-computed vectors (the incremental index re-uses unchanged ones)."""
        if len(vectors) != len(documents):
            raise ValueError("one vector per document")
        if len(documents):
            self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        for doc in documents:
            self._positions[doc.id or str(len(self.documents))] = len(self.documents)
            self.documents.append(doc)
        return [doc.id or "" for doc in documents]

    def add_texts(self, texts: Iterable[str], metadatas: list[dict] | None = None, *,
                  ids: list[str] | None = None, **kwargs: Any) -> list[str]:
        texts = list(texts)
        metadatas = metadatas or [{} for _ in texts]
        ids = ids or [str(len(self.documents) + i) for i in range(len(texts))]
        docs = [Document(page_content=t, metadata=m, id=i) for t, m, i in zip(texts, metadatas, ids)]
        return self.add_vectors(self._embedding.embed_passages(texts), docs)

    def vector(self, doc_id: str) -> np.ndarray | None:
        position = self._positions.get(doc_id)
        return None if position is None else self.index.reconstruct(position)

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        return [self.documents[self._positions[i]] for i in ids if i in self._positions]

    def search_vector(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """(position, cosine) pairs, best first."""
        if not self.documents:
            return []
        scores, positions = self.index.search(np.asarray(vector, dtype=np.float32)[None, :],
                                              min(k, len(self.documents)))
        return [(int(p), float(s)) for p, s in zip(positions[0], scores[0]) if p >= 0]

    def similarity_search_with_score_by_vector(self, embedding: list[float], k: int = 4,
                                               **kwargs: Any) -> list[tuple[Document, float]]:
        return [(self.documents[p], s) for p, s in self.search_vector(np.asarray(embedding), k)]

    def similarity_search_by_vector(self, embedding: list[float], k: int = 4, **kwargs: Any) -> list[Document]:
        return [doc for doc, _ in self.similarity_search_with_score_by_vector(embedding, k)]

    def similarity_search_with_score(self, query: str, k: int = 4, **kwargs: Any) -> list[tuple[Document, float]]:
        vector = self._embedding.embed_query_vector(query)
        return [(self.documents[p], s) for p, s in self.search_vector(vector, k)]

    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        return [doc for doc, _ in self.similarity_search_with_score(query, k)]

    def _select_relevance_score_fn(self):  # cosine in [-1, 1] -> [0, 1]
        return lambda score: (score + 1.0) / 2.0

    @classmethod
    def from_texts(cls, texts: list[str], embedding: Embeddings, metadatas: list[dict] | None = None,
                   *, ids: list[str] | None = None, **kwargs: Any) -> "FaissVectorStore":
        if not isinstance(embedding, VectorEmbeddings):
            raise TypeError("FaissVectorStore needs one of strategy-bot's VectorEmbeddings")
        store = cls(embedding)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    def save(self, folder: Path) -> None:
        faiss.write_index(self.index, str(folder / VECTORS_FILE))
        payload = [{"id": d.id, "text": d.page_content, "metadata": d.metadata} for d in self.documents]
        (folder / DOCSTORE_FILE).write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path, embedding: VectorEmbeddings) -> "FaissVectorStore":
        return cls.from_parts(embedding, read_vectors(folder / VECTORS_FILE), read_documents(folder / DOCSTORE_FILE))

    @classmethod
    def from_parts(cls, embedding: VectorEmbeddings, index: faiss.Index,
                   documents: list[Document]) -> "FaissVectorStore":
        """A store from its two files read apart (the index store reads each under its own name,
        so that a damaged one is named); ValueError when they disagree."""
        if index.ntotal != len(documents) or index.d != embedding.dimension:
            raise ValueError(f"the vectors and documents disagree (vectors {index.ntotal}x{index.d}, "
                             f"documents {len(documents)}, model dimension {embedding.dimension})")
        return cls(embedding, index, documents)


def read_vectors(path: Path) -> faiss.Index:
    """FAISS's own binary format; a damaged file raises RuntimeError with FAISS's C++ message."""
    return faiss.read_index(str(path))


def read_documents(path: Path) -> list[Document]:
    payload = json.loads(path.read_text(encoding="utf-8"))
    return [Document(page_content=d["text"], metadata=d["metadata"], id=d["id"]) for d in payload]
