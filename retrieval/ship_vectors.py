"""Writes the shipped documents' vectors beside them (read by retrieval/corpus_vectors.py).

Regenerate after editing the shipped documents or their translation memory:
    python -m retrieval.ship_vectors
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from knowledge.sentences import Sentence
from retrieval.corpus_vectors import SHIPPED_VECTORS_FILE as FILE_NAME
from retrieval.index_store import KnowledgeIndex
from retrieval.vector_cache import text_sha


def index_texts(index: KnowledgeIndex) -> tuple[list[str], np.ndarray]:
    """Every document-side text a build embedded as a passage, with its vector."""
    texts = [c.embedding_text() for c in index.chunks]
    texts += [Sentence(r["text"], tuple(r.get("context", ()))).embedding_text() for r in index.sentences]
    texts += list(index.view_texts or [])
    texts += [r["text"] for r in index.sentence_views or []]
    parts = [index.chunk_vectors, index.sentence_vectors]
    parts += [index.gloss_vectors] if index.view_texts is not None and index.gloss_vectors is not None else []
    parts += [index.sentence_view_vectors] if index.sentence_views else []
    return texts, np.concatenate(parts).astype(np.float32)


def write(folder: Path, index: KnowledgeIndex, model_id: str) -> Path:
    texts, vectors = index_texts(index)
    unique = {text_sha(t): v for t, v in zip(texts, vectors)}
    meta = json.dumps({"model_id": model_id}).encode("utf-8")
    path = Path(folder) / FILE_NAME
    np.savez_compressed(path, meta=np.frombuffer(meta, dtype=np.uint8), shas=np.array(list(unique), dtype="U64"),
                        vectors=np.stack(list(unique.values())))
    return path


def main() -> int:
    from retrieval.service import KnowledgeBase
    from strategy_bot.settings import Settings

    folder = Settings().knowledge_dirs[0]
    with tempfile.TemporaryDirectory() as data_dir:
        kb = KnowledgeBase(Settings(data_dir=Path(data_dir), knowledge_dir=folder))
        (folder / FILE_NAME).unlink(missing_ok=True)  # computed afresh, not copied from the old file
        kb.reindex(rebuild=True)
        path = write(folder, kb.ensure_index(), kb.embeddings.model_id)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
