"""A passage the translation memory renders is also searched as its rendering.

English questions over the Chinese documents are matched against English text, and the
hit is still the Chinese passage with its citation. A passage the memory covers only in
part keeps its word-by-word gloss, which is not ranked.
"""
from __future__ import annotations

from knowledge.chunking import Chunk
from knowledge.translations import TranslationMemory
from retrieval.renderings import chunk_rendering

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


def test_the_shipped_corpus_is_searched_in_english_and_cited_in_chinese(kb):
    index = kb.ensure_index()
    assert index.rendered_mask.sum() >= len(index.chunks) - 2  # code blocks have no rendering
    hit = kb.search("Is an 'open-source core + closed-source applications' model mentioned?").hits[0]
    assert "开源核心+闭源应用" in hit.chunk.text  # the Chinese passage, found through its English
