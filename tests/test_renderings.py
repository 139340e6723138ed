"""A passage the translation memory renders is also searched as its rendering.

English questions over the Chinese documents are matched against English text, and the
hit is still the Chinese passage with its citation. A passage the memory covers only in
part keeps its word-by-word gloss, which is not ranked.
"""
from __future__ import annotations

import pytest

from knowledge.chunking import Chunk
from knowledge.translations import TranslationMemory
from retrieval.renderings import chunk_rendering
from retrieval.search import Searcher

CHUNK = Chunk(chunk_id="c1", doc_id="d", title="标题", section="优点", ordinal=0, kind="text",
              text="开源可以提高透明度。开源促进技术交流。")


def memory(*pairs: tuple[str, str]) -> TranslationMemory:
    tm = TranslationMemory()
    for source, english in pairs:
        tm.add(source, "en", english)
    return tm


def test_a_fully_rendered_passage_is_its_heading_and_sentences_in_english():
    tm = memory(("优点", "Advantages"), ("开源可以提高透明度。", "Open source raises transparency."),
                ("开源促进技术交流。", "Open source promotes technical exchange."))
    assert chunk_rendering(CHUNK, tm, "zh", 0.8) == \
        "Advantages Open source raises transparency. Open source promotes technical exchange."


def test_a_passage_rendered_only_in_part_has_no_rendering():
    tm = memory(("优点", "Advantages"), ("开源可以提高透明度。", "Open source raises transparency."))
    assert chunk_rendering(CHUNK, tm, "zh", 0.8) is None
    assert chunk_rendering(CHUNK, tm, "zh", 0.5) == "Advantages Open source raises transparency."


@pytest.mark.parametrize("question, needle", [
    ("Will we see more 'open-source core + closed-source applications' setups?", "开源核心+闭源应用"),
    ("Why do closed models iterate more slowly?", "模型迭代速度可能较慢"),
])
def test_the_shipped_corpus_is_searched_in_english_and_cited_in_chinese(kb, question, needle):
    """The passage saying so ranks higher with its English renderings searched than without
    (measured: 8th -> 1st, 6th -> 3rd), and the hit is the Chinese passage itself."""
    index = kb.ensure_index()
    assert index.rendered_mask.sum() >= len(index.chunks) - 2  # code blocks have no rendering
    without = kb.tuning.with_values({"rendering_weight": 0, "rendering_lexical_weight": 0}).search

    def rank(searcher: Searcher) -> int:
        hits = searcher.search(question, k=len(index.chunks), query_vector=kb.search(question).query_vector).hits
        return next(i for i, hit in enumerate(hits, start=1) if needle in hit.chunk.text)

    with_renderings = rank(Searcher(index, kb.tuning.search))
    assert with_renderings <= 5 and with_renderings < rank(Searcher(index, without))
