"""Turning file bytes into text, one parser per file type.

The registry is the one place new formats are added: each parser takes the raw
bytes and returns `(text, is_markdown)`, or raises `ParseError` with a reason.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

Parser = Callable[[bytes], tuple[str, bool]]


class ParseError(ValueError):
    """The file could not be turned into text; the message says why."""


def decode_text(raw: bytes) -> str:
    """Strict UTF-8 (with or without BOM): mis-decoded text would index as garbage."""
    if b"\x00" in raw:
        raise ParseError("binary content (NUL bytes), not a text file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParseError(f"not valid UTF-8 text (byte {exc.start})") from None


def parse_markdown(raw: bytes) -> tuple[str, bool]:
    return decode_text(raw), True


def parse_plain_text(raw: bytes) -> tuple[str, bool]:
    # .txt files in practice are often Markdown (the shipped articles are); headings are
    # only recognised where a line really looks like one, so treating them alike is safe.
    return decode_text(raw), True


PARSERS: dict[str, Parser] = {
    ".md": parse_markdown,
    ".markdown": parse_markdown,
    ".txt": parse_plain_text,
}


def parse_file(path: Path, raw: bytes) -> tuple[str, bool]:
    parser = PARSERS.get(path.suffix.lower())
    if parser is None:
        raise ParseError(f"unsupported file type {path.suffix or '(none)'}")
    return parser(raw)
