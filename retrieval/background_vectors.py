"""The background set's vectors, shipped with the bot so a first build need not embed them.

1,404 of the 1,730 texts a fresh build of the shipped corpus embeds are the background set
(prompts/offtopic_background.txt, embedded as passages and as questions): the same for every
install of one model. They are shipped beside it (`offtopic_background.vectors.npz`) with the
model id and the background's hash they belong to; a build uses them only when both match,
so an edited background or another model embeds as before. The embedder is bitwise
deterministic (tests/test_reproducibility.py), so shipped and computed vectors are identical.

Regenerate after editing the background file or changing the default model:
    python -m retrieval.background_vectors
"""
from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retrieval.embeddings import VectorEmbeddings

SHIPPED_FILE_SUFFIX = ".vectors.npz"


@dataclass(frozen=True)
class BackgroundVectors:
    model_id: str
    background_sha256: str
    passages: np.ndarray
    queries: np.ndarray


def read_background(path: Path) -> list[str]:
    """Background sentences: one per line, `#` comments and blank lines ignored."""
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def shipped_file(background_file: Path) -> Path:
    return background_file.with_suffix(SHIPPED_FILE_SUFFIX)


def background_sha(texts: list[str]) -> str:
    """The hash an index and the shipped vectors record of the background text."""
    return hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()


def read_shipped(background_file: Path, model_id: str, background_sha256: str) -> BackgroundVectors | None:
    """The shipped vectors when they belong to this model and this background text, else None."""
    path = shipped_file(background_file)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(bytes(data["meta"]).decode("utf-8"))
            passages, queries = np.asarray(data["passages"], np.float32), np.asarray(data["queries"], np.float32)
            vectors = BackgroundVectors(meta["model_id"], meta["background_sha256"], passages, queries)
    except (OSError, ValueError, KeyError):  # a damaged file costs the saving, never the build
        return None
    if vectors.model_id != model_id or vectors.background_sha256 != background_sha256:
        return None
    return vectors


def write_shipped(background_file: Path, embeddings: VectorEmbeddings, texts: list[str],
                  background_sha256: str) -> Path:
    """Embed the background both ways and write the file a build picks up."""
    meta = json.dumps({"model_id": embeddings.model_id, "background_sha256": background_sha256}).encode("utf-8")
    path = shipped_file(background_file)
    np.savez_compressed(path, meta=np.frombuffer(meta, dtype=np.uint8),
                        passages=embeddings.embed_passages(texts), queries=embeddings.embed_queries(texts))
    return path


def main() -> int:
    from retrieval.embeddings import E5Embeddings
    from strategy_bot.settings import PROMPTS_DIR

    background_file = PROMPTS_DIR / "offtopic_background.txt"
    texts = read_background(background_file)
    path = write_shipped(background_file, E5Embeddings(), texts, background_sha(texts))
    print(f"wrote {path} ({len(texts)} sentences)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
