"""Cutting documents into section-bound chunks that know their heading path.

Why not only LangChain's `MarkdownHeaderTextSplitter`: on these documents we need
three things it lacks — `**Q3: …**` FAQ lines acting as sub-headings, collapsing a
diagram that repeats the same lines hundreds of times, and keeping a fenced code
block in one piece. So sections are found here (fence-aware), and long prose is
split by LangChain's `RecursiveCharacterTextSplitter` with Chinese sentence ends.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from langchain_text_splitters import RecursiveCharacterTextSplitter

from knowledge.documents import SourceDocument
from knowledge.language import CJK_RANGE
from strategy_bot.tuning import default_tuning

SECTION_SEPARATOR = " › "
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
FAQ_HEADING = re.compile(r"^\*\*\s*(Q\d+\s*[:：].+?)\s*\*\*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")
WORDS = re.compile(f"[0-9A-Za-z{CJK_RANGE}]")  # a line with none (a rule, "---") is no content
SENTENCE_SEPARATORS = ["\n\n", "\n", "。", "！", "？", "；", "!", "?", ";", ". ", "，", ",", " ", ""]
MAX_REPEATS_KEPT = 2
MAX_PERIOD = 4


@dataclass(frozen=True)
class Chunk:
    """A retrievable passage: its text, where it sits, and a content-derived id."""

    chunk_id: str
    doc_id: str
    title: str
    section: str
    text: str
    ordinal: int
    kind: str = "text"  # "text" or "code"

    @property
    def heading(self) -> str:
        """The passage's own heading ("3.2 算法步骤详解"): it often says what the passage's lists are."""
        return self.section.rsplit(SECTION_SEPARATOR, 1)[-1]

    def embedding_text(self) -> str:
        """What the embedder sees: the heading path gives short passages their topic."""
        return f"{self.title}{SECTION_SEPARATOR}{self.section}\n{self.text}" if self.section else self.text


@dataclass
class Section:
    path: tuple[str, ...]
    lines: list[str] = field(default_factory=list)


def collapse_repeats(lines: list[str]) -> list[str]:
    """Keep at most two cycles of any block of 1-4 lines repeated back to back.

    A generated diagram can end in hundreds of identical lines; indexed as they are
    they would become dozens of junk chunks that crowd out real passages.
    """
    out: list[str] = []
    i = 0
    while i < len(lines):
        skipped = False
        for period in range(1, MAX_PERIOD + 1):
            block = lines[i : i + period]
            if len(block) < period or not any(line.strip() for line in block):
                continue
            repeats = 1
            while lines[i + repeats * period : i + (repeats + 1) * period] == block:
                repeats += 1
            if repeats > MAX_REPEATS_KEPT + 1:
                out.extend(block * MAX_REPEATS_KEPT)
                i += repeats * period
                skipped = True
                break
        if not skipped:
            out.append(lines[i])
            i += 1
    return out


def split_sections(text: str) -> list[Section]:
    """Sections by Markdown headings (ignoring `#` lines inside code fences)."""
    stack: list[tuple[int, str]] = []
    sections = [Section(path=())]
    in_fence = False
    for line in text.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
        heading = None if in_fence else HEADING.match(line)
        faq = None if in_fence or heading else FAQ_HEADING.match(line)
        if heading:
            level = len(heading.group(1))
            stack = [(lvl, name) for lvl, name in stack if lvl < level] + [(level, heading.group(2))]
            sections.append(Section(path=tuple(name for _, name in stack)))
        elif faq:
            base = [(lvl, name) for lvl, name in stack if lvl < 7]
            stack = base + [(7, faq.group(1))]
            sections.append(Section(path=tuple(name for _, name in stack)))
        sections[-1].lines.append(line)
    return [s for s in sections if any(WORDS.search(line) for line in s.lines[1 if s.path else 0 :])]


def section_label(path: tuple[str, ...]) -> str:
    """The heading path without the document's H1 (the title is shown beside it)."""
    return SECTION_SEPARATOR.join(path[1:] if len(path) > 1 else path)


def split_blocks(lines: list[str]) -> list[tuple[str, str]]:
    """Paragraphs and whole fenced code blocks, as (kind, text)."""
    blocks: list[tuple[str, str]] = []
    current: list[str] = []
    in_fence = False

    def flush(kind: str) -> None:
        if any(line.strip() for line in current):
            blocks.append((kind, "\n".join(current).strip("\n")))
        current.clear()

    for line in lines:
        if FENCE.match(line):
            if not in_fence:
                flush("text")
                in_fence = True
                current.append(line)
                continue
            current.append(line)
            in_fence = False
            flush("code")
            continue
        if not in_fence and not line.strip():
            flush("text")
            continue
        current.append(line)
    flush("code" if in_fence else "text")
    return blocks


class Chunker:
    """Packs a section's paragraphs into chunks of about `chunk_size` characters.

    The sizes default to the tuned ones (prompts/ranking.yaml `index`).
    """

    def __init__(self, chunk_size: int | None = None, chunk_overlap: int | None = None) -> None:
        tuned = default_tuning().index
        chunk_size = tuned.chunk_size if chunk_size is None else chunk_size
        chunk_overlap = tuned.chunk_overlap if chunk_overlap is None else chunk_overlap
        self.chunk_size = chunk_size
        self.splitter = RecursiveCharacterTextSplitter(
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            separators=SENTENCE_SEPARATORS,
            keep_separator="end",
            strip_whitespace=True,
        )

    def _pieces(self, kind: str, text: str) -> list[tuple[str, str]]:
        if len(text) <= self.chunk_size:
            return [(kind, text)]
        if kind == "code":
            return [("code", part) for part in self._split_lines(text)]
        return [("text", part) for part in self.splitter.split_text(text)]

    def _split_lines(self, text: str) -> list[str]:
        parts, current = [], ""
        for line in text.splitlines():
            if current and len(current) + len(line) + 1 > self.chunk_size:
                parts.append(current)
                current = ""
            current = f"{current}\n{line}" if current else line
        return parts + ([current] if current else [])

    def _pack(self, blocks: list[tuple[str, str]]) -> list[tuple[str, str]]:
        packed: list[tuple[str, str]] = []
        for kind, text in (piece for block in blocks for piece in self._pieces(*block)):
            if packed and (len(packed[-1][1]) + len(text) + 2 <= self.chunk_size or is_heading_only(packed[-1][1])):
                prev_kind, prev_text = packed[-1]
                packed[-1] = ("text" if "text" in (prev_kind, kind) else "code", f"{prev_text}\n\n{text}")
            else:
                packed.append((kind, text))
        return packed

    def chunk(self, doc: SourceDocument) -> list[Chunk]:
        chunks: list[Chunk] = []
        for section in split_sections(doc.text):
            label = section_label(section.path)
            for kind, text in self._pack(split_blocks(collapse_repeats(section.lines))):
                chunks.append(make_chunk(doc, label, text, len(chunks), kind))
        return chunks


def is_heading_only(text: str) -> bool:
    """Only headings and rules: it must join the text after it, however long that is."""
    return all(HEADING.match(line) or not WORDS.search(line) for line in text.splitlines())


def make_chunk(doc: SourceDocument, section: str, text: str, ordinal: int, kind: str) -> Chunk:
    digest = hashlib.sha256(f"{doc.doc_id}\x1f{section}\x1f{text}".encode()).hexdigest()[:16]
    return Chunk(chunk_id=digest, doc_id=doc.doc_id, title=doc.title, section=section,
                 text=text, ordinal=ordinal, kind=kind)
