"""Reading the vectors shipped beside the documents (written by retrieval/ship_vectors.py).

A fresh build of the shipped corpus would embed its passages, their sentences and the English
renderings of both: about 570 texts, 45 s or more on a quiet 2-core machine, the same for
every install of one model. They ship in the knowledge folder (`corpus.vectors.npz`), each
found by the sha256 of the exact text it embeds and used only for the model that computed it:
an edited sentence, a new document or another model is embedded as before, and nothing stale
can be used. The embedder is bitwise deterministic (tests/test_reproducibility.py), so shipped
and computed vectors are identical. Kept apart from the writer, which needs the index store
that calls this reader.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import numpy as np

from knowledge.documents import SHIPPED_VECTORS as SHIPPED_VECTORS_FILE
from retrieval.vector_cache import VectorCache


def offer_shipped(cache: VectorCache, folders: Iterable[Path], model_id: str) -> int:
    """Offer `cache` the vectors shipped with the documents (retrieval/ship_vectors.py) of every
    knowledge folder that has them for this model; how many. A damaged or foreign file costs the
    saving, never the build."""
    offered = 0
    for folder in folders:
        path = Path(folder) / SHIPPED_VECTORS_FILE
        if not path.is_file():
            continue
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(bytes(data["meta"]).decode("utf-8"))
                shas, vectors = [str(s) for s in data["shas"]], np.asarray(data["vectors"], np.float32)
        except (OSError, ValueError, KeyError):
            continue
        if meta.get("model_id") == model_id and len(shas) == len(vectors):
            cache.remember_hashed(shas, vectors)
            offered += len(shas)
    return offered
