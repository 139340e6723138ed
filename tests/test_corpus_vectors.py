"""The shipped documents' vectors ship beside them, so a first build embeds nothing.

A fresh build of the shipped corpus embedded about 570 texts (45 s or more on a quiet 2-core
machine). The shipped file must be current (this model, these texts) and hold what the model
computes, up to the CPU's rounding (tests/vector_checks.py); a text it does not hold, or another
model, is embedded as before.
"""
from __future__ import annotations

import json

import numpy as np

from retrieval.corpus_vectors import SHIPPED_VECTORS_FILE, offer_shipped
from retrieval.service import KnowledgeBase
from retrieval.ship_vectors import index_texts, write
from retrieval.vector_cache import VectorCache, text_sha
from strategy_bot.settings import Settings
from vector_checks import assert_same_vectors


def test_a_first_build_of_the_shipped_corpus_embeds_nothing(tmp_path, e5):
    summary = KnowledgeBase(Settings(data_dir=tmp_path / "data"), e5).reindex()
    assert summary.embedded == 0, "the shipped vectors are stale: python -m retrieval.ship_vectors"


def test_the_shipped_vectors_are_what_the_model_computes(kb, e5):
    texts, _ = index_texts(kb.ensure_index())
    sample = texts[::61]
    cache = VectorCache()
    assert offer_shipped(cache, Settings().knowledge_dirs, e5.model_id) >= len(set(texts))
    shipped = np.stack([cache.known[text_sha(t)] for t in sample])
    assert_same_vectors(shipped, e5.embed_passages(sample))


def test_vectors_of_another_model_or_a_damaged_file_are_not_used(tmp_path, kb, e5):
    folder = tmp_path / "knowledge"
    folder.mkdir()
    write(folder, kb.ensure_index(), "another-model")
    assert offer_shipped(VectorCache(), [folder], e5.model_id) == 0
    with np.load(folder / SHIPPED_VECTORS_FILE) as data:
        assert json.loads(bytes(data["meta"]).decode())["model_id"] == "another-model"
    (folder / SHIPPED_VECTORS_FILE).write_bytes(b"not a zip")
    assert offer_shipped(VectorCache(), [folder], e5.model_id) == 0  # damaged: embed as before
