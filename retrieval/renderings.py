"""Each passage in the other language, from the translation memory: a search view.

An English question is matched best against English text. e5 matches English to Chinese
worse than English to English, and BM25 cannot match the words at all; the word-by-word
gloss (crosslingual.py) helped to decline but lowered recall when ranked. The reviewed
renderings of a passage's sentences (knowledge/translations.py) are fluent text, so a
passage the memory covers is also searched as its rendering; every hit still resolves to
the original passage and its citation. Passages it does not cover keep their gloss.
"""
from __future__ import annotations

from typing import Sequence

from knowledge.chunking import Chunk
from knowledge.tm_units import units_of_chunks
from knowledge.translations import TranslationMemory
from retrieval.translation import worth_translating


def other_language(language: str) -> str:
    """The language questions come in when they are not in the documents' language."""
    return "en" if language == "zh" else "zh"


def chunk_rendering(chunk: Chunk, memory: TranslationMemory, source_language: str,
                    min_share: float) -> str | None:
    """The passage's heading path and text in the other language, or None when the memory
    renders less than `min_share` of its units (a passage half in Chinese is no English view)."""
    if chunk.kind != "text":
        return None
    target = other_language(source_language)
    units = units_of_chunks([chunk], keep=worth_translating(source_language))
    sentences = [u.source for u in units if u.kind == "sentence"]
    # every passage of a document shares its title; a line already split into sentences is said once
    units = [u for u in units if u.kind != "title"
             and not (u.kind == "line" and any(s in u.source for s in sentences))]
    if not units:
        return None
    rendered = [memory.render(u.source, target) for u in units]
    found = [text for text in rendered if text]
    if len(found) < min_share * len(units):
        return None
    return " ".join(found)


def chunk_renderings(chunks: Sequence[Chunk], memory: TranslationMemory, source_language: str,
                     min_share: float) -> list[str | None]:
    """`chunk_rendering` of every passage, in order."""
    return [chunk_rendering(c, memory, source_language, min_share) for c in chunks]
