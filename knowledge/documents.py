"""Reading the knowledge folder into `SourceDocument`s.

A knowledge folder is whatever an admin drops in it, so a broken file must never
stop the others from loading: every failure becomes a `SkippedFile` with a reason
that names the file, and loading carries on.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import yaml

from knowledge.parsers import PARSERS, ParseError, ParseLimits, parse_file

TITLES_FILE = "titles.yaml"
# A folder's translation memory (`translations.en.jsonl`, see knowledge/tm_units.py) is
# data about its documents, like titles.yaml: neither a document nor a file to report.
TRANSLATION_MEMORY = re.compile(r"^translations\.[A-Za-z-]+\.jsonl$")
SHIPPED_VECTORS = "corpus.vectors.npz"  # the documents' vectors, shipped beside them (retrieval/corpus_vectors.py)


@dataclass(frozen=True)
class SourceDocument:
    """One document of the knowledge base, as text, with a stable id and a title."""

    doc_id: str
    title: str
    path: Path
    text: str
    sha256: str
    markdown: bool = True


@dataclass(frozen=True)
class SkippedFile:
    path: Path
    reason: str


@dataclass
class LoadReport:
    documents: list[SourceDocument] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)


def doc_id_for(path: Path) -> str:
    """A stable id from the file name, so re-indexing an edited file keeps its id."""
    stem = path.stem.lower()
    # Narrower than language.CJK_RANGE (no Extension A) on purpose: ids must not change under existing indexes.
    slug = re.sub(r"[^0-9a-z\u4e00-\u9fff]+", "-", stem).strip("-")
    return slug or hashlib.sha256(path.name.encode()).hexdigest()[:12]


def load_titles(folder: Path) -> dict[str, str]:
    """Titles from `titles.yaml`; a broken titles file is ignored, not fatal."""
    path = folder / TITLES_FILE
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    titles: dict[str, str] = {}
    if isinstance(data, dict):
        for name, entry in data.items():
            if isinstance(entry, dict) and isinstance(entry.get("title"), str):
                titles[str(name)] = entry["title"].strip()
    return titles


def first_heading(text: str) -> str | None:
    for line in text.splitlines():
        match = re.match(r"^#\s+(.+?)\s*#*\s*$", line)
        if match:
            return match.group(1).strip()
    return None


def is_folder_metadata(name: str) -> bool:
    """titles.yaml, translation memories and shipped vectors describe the folder's documents; they
    are not documents."""
    return name in (TITLES_FILE, SHIPPED_VECTORS) or bool(TRANSLATION_MEMORY.match(name))


def candidate_files(folder: Path) -> list[Path]:
    """Files in the folder we would try to load (hidden files and folder metadata excluded)."""
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        and not is_folder_metadata(p.name)
    )


def load_document(path: Path, titles: dict[str, str] | None = None,
                  limits: ParseLimits | None = None) -> SourceDocument:
    """Load one file; raises `ParseError` with a reason a person can act on."""
    raw = path.read_bytes()
    text, markdown = parse_file(path, raw, limits)
    if not text.strip():
        raise ParseError("the file has no text")
    title = (titles or {}).get(path.name) or first_heading(text) or path.stem
    return SourceDocument(
        doc_id=doc_id_for(path),
        title=title,
        path=path,
        text=text,
        sha256=hashlib.sha256(raw).hexdigest(),
        markdown=markdown,
    )


def load_folder(folder: Path, limits: ParseLimits | None = None) -> LoadReport:
    """Load every supported file; unsupported or broken ones are reported and skipped."""
    return load_folders([folder], limits)


def load_folders(folders: Sequence[Path], limits: ParseLimits | None = None) -> LoadReport:
    """Load several folders as one knowledge base (the shipped corpus plus uploads, say).

    Document ids must be unique across all of them: a later file whose id is taken is
    skipped with a reason rather than silently replacing the earlier one.
    """
    report = LoadReport()
    seen_ids: dict[str, Path] = {}
    for folder in folders:
        titles = load_titles(folder)
        for path in candidate_files(folder):
            if path.suffix.lower() not in PARSERS:
                report.skipped.append(SkippedFile(path, f"unsupported file type {path.suffix or '(none)'}"))
                continue
            try:
                doc = load_document(path, titles, limits)
            except (ParseError, OSError) as exc:
                report.skipped.append(SkippedFile(path, str(exc)))
                continue
            if doc.doc_id in seen_ids:
                report.skipped.append(
                    SkippedFile(path, f"document id {doc.doc_id!r} already used by {seen_ids[doc.doc_id].name}")
                )
                continue
            seen_ids[doc.doc_id] = path
            report.documents.append(doc)
    return report
