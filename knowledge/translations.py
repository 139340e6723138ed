"""Reviewed renderings of document sentences in other languages (translation memories).

An English reader of a Chinese document needs the quote in English, and still needs to
check it against the original: so a rendering is looked up by its exact source sentence,
never generated at question time, and the answer keeps both (retrieval/answer.py, `Quote`).
A knowledge folder holds one file per target language, `translations.<lang>.jsonl`, one
`{"source", "<lang>", "kind", "doc"}` object a line (knowledge/tm_units.py lists the units
a file must cover). The files are plain data a maintainer can read and correct.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from knowledge.sentences import clean_markup

log = logging.getLogger(__name__)

FILE_PATTERN = "translations.*.jsonl"
SPACE = re.compile(r"\s+")


def lookup_key(text: str) -> str:
    """The form both sides are compared in: no Markdown emphasis, list marker or spacing."""
    return SPACE.sub("", clean_markup(text))


@dataclass
class TranslationMemory:
    """{target language: {source key: rendering}} over every knowledge folder."""

    renderings: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def from_folders(cls, folders: Iterable[Path]) -> "TranslationMemory":
        memory = cls()
        for folder in folders:
            for path in sorted(Path(folder).glob(FILE_PATTERN)) if Path(folder).is_dir() else []:
                memory.add_file(path)
        return memory

    def add_file(self, path: Path) -> None:
        """Read one file; a malformed line is skipped with one warning naming file and line,
        so one bad edit costs one sentence's rendering, not every answer."""
        language = path.name.split(".")[1]
        table = self.renderings.setdefault(language, {})
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                source, text = str(row["source"]), str(row[language]).strip()
            except (json.JSONDecodeError, KeyError, TypeError):
                log.warning("skipped line %d of %s: not a translation record", number, path.name)
                continue
            if text:
                table[lookup_key(source)] = text

    def add(self, source: str, language: str, rendering: str) -> None:
        self.renderings.setdefault(language, {})[lookup_key(source)] = rendering

    def render(self, source: str, language: str) -> str | None:
        """The reviewed rendering of `source` in `language`, or None when there is none."""
        return self.renderings.get(language, {}).get(lookup_key(source))

    def __len__(self) -> int:
        return sum(len(table) for table in self.renderings.values())
