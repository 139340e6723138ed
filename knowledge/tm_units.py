"""The units of a document that a translation memory (TM) must render.

An answer quotes sentences of the Chinese documents under their section and title;
English readers need each of those in English, offline, and still verifiable. So the
TM (`corpus/translations.en.jsonl`) holds one rendering per *source text*, tied one for
one to it, and the source texts are enumerated here with the project's own splitter
and chunker: whatever the bot can quote or show (a sentence, a list label, a heading, a
title) is a unit, as is every prose line (list items, FAQ question lines, lead-ins,
table rows) even where the sentence splitter keeps or drops it whole. Enumerating with
the same code the index uses keeps the TM honest when a document or the splitter
changes: `python -m knowledge.tm_units TM.jsonl` lists what still lacks a rendering.
"""
from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from knowledge.chunking import FENCE, HEADING, SECTION_SEPARATOR, Chunk, Chunker
from knowledge.documents import SourceDocument
from knowledge.sentences import clean_markup, sentences_in_context

CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
# When one text is several kinds (a one-sentence line is also a sentence), it is
# recorded under the kind that says most about where the bot shows it.
KIND_PRIORITY = ("title", "heading", "label", "sentence", "line")
TM_KEYS = ("source", "en", "kind", "doc")
TM_FILE = "translations.en.jsonl"  # in the knowledge folder, beside titles.yaml


@dataclass(frozen=True)
class Unit:
    """One source text to render, where it first occurs, and what it is."""

    source: str
    kind: str  # "title" | "heading" | "label" | "sentence" | "line"
    doc_id: str


def translation_units(documents: Sequence[SourceDocument]) -> list[Unit]:
    """Every distinct unit of the documents, in document order (first occurrence)."""
    chunker = Chunker()
    found: dict[str, Unit] = {}
    for doc in documents:
        candidates = [(doc.title, "title")]
        for chunk in chunker.chunk(doc):
            if chunk.kind == "text":
                candidates.extend(_chunk_units(chunk.section, chunk.text))
        for source, kind in candidates:
            _record(found, Unit(source, kind, doc.doc_id))
    return list(found.values())


def units_of_chunks(chunks: Iterable[Chunk], keep: Callable[[str], bool] | None = None) -> list[Unit]:
    """The same units, from an index's chunks (what a re-index just built), for index-time
    translation; `keep` picks the texts to render (default: those with Chinese in them)."""
    found: dict[str, Unit] = {}
    titles: set[str] = set()
    for chunk in chunks:
        if chunk.title not in titles:
            titles.add(chunk.title)
            _record(found, Unit(chunk.title, "title", chunk.doc_id), keep)
        if chunk.kind == "text":
            for source, kind in _chunk_units(chunk.section, chunk.text):
                _record(found, Unit(source, kind, chunk.doc_id), keep)
    return list(found.values())


def _record(found: dict[str, Unit], unit: Unit, keep: Callable[[str], bool] | None = None) -> None:
    """Keep the first occurrence's place and document, and the highest-priority kind."""
    if not unit.source or not (keep(unit.source) if keep else CJK.search(unit.source)):
        return
    known = found.get(unit.source)
    if known is None:
        found[unit.source] = unit
    elif KIND_PRIORITY.index(unit.kind) < KIND_PRIORITY.index(known.kind):
        found[unit.source] = Unit(known.source, unit.kind, known.doc_id)


def _chunk_units(section: str, text: str) -> Iterator[tuple[str, str]]:
    """A chunk's headings, then each line's labels and sentences followed by the line."""
    for heading in section.split(SECTION_SEPARATOR) if section else ():
        yield heading, "heading"
    pending = list(sentences_in_context(text))
    for line in _prose_lines(text):
        cleaned = clean_markup(line)
        while pending and pending[0].text in cleaned:
            sentence = pending.pop(0)
            yield from ((label, "label") for label in sentence.context)
            yield sentence.text, "sentence"
        heading = HEADING.match(line)
        yield (heading.group(2), "heading") if heading else (cleaned, "line")
    for sentence in pending:  # not found in a line (should not happen): still a unit
        yield from ((label, "label") for label in sentence.context)
        yield sentence.text, "sentence"


def _prose_lines(text: str) -> Iterator[str]:
    """Non-empty lines outside code fences."""
    in_fence = False
    for line in text.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if not in_fence and line.strip():
            yield line


def read_tm(path: Path) -> list[dict[str, str]]:
    """The TM's entries, one JSON object per non-empty line."""
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def missing_units(units: Iterable[Unit], entries: Iterable[dict[str, str]]) -> list[Unit]:
    """Units with no entry in the TM."""
    rendered = {entry.get("source") for entry in entries}
    return [unit for unit in units if unit.source not in rendered]


def main(argv: Sequence[str]) -> int:
    """Print the shipped corpus's units a TM lacks, as TM lines with an empty "en" to fill in.

    Exit status 1 if any unit lacks a rendering, so a maintainer (or CI) sees it at once.
    """
    from knowledge.documents import load_folders
    from strategy_bot.settings import DEFAULT_KNOWLEDGE_DIR

    if len(argv) > 1:
        print("usage: python -m knowledge.tm_units [TM.jsonl]", file=sys.stderr)
        return 2
    path = Path(argv[0]) if argv else DEFAULT_KNOWLEDGE_DIR / TM_FILE
    entries = read_tm(path) if path.exists() else []
    units = translation_units(load_folders([DEFAULT_KNOWLEDGE_DIR]).documents)
    missing = missing_units(units, entries)
    for unit in missing:
        print(json.dumps({"source": unit.source, "en": "", "kind": unit.kind, "doc": unit.doc_id},
                         ensure_ascii=False))
    print(f"{len(missing)} of {len(units)} units lack a rendering", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
