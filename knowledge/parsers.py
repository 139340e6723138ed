"""Turning file bytes into text, one parser per file type.

The registry is the one place new formats are added: each parser takes the raw
bytes and returns `(text, is_markdown)`, or raises `ParseError` with a reason.
PDF, DOCX and HTML are read by well-kept libraries (pypdf, python-docx,
BeautifulSoup + markdownify); headings become Markdown headings wherever the
format has them, so the chunker keeps sections together.
"""
from __future__ import annotations

import io
import re
import zipfile
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


def parse_pdf(raw: bytes) -> tuple[str, bool]:
    """Text of every page; PDFs carry no headings pypdf can see, so it is plain text."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    if b"%PDF-" not in raw[:1024]:
        raise ParseError("not a PDF file (no %PDF header)")
    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ParseError("the PDF is password-protected")
        pages = [page.extract_text() or "" for page in reader.pages]
    except PdfReadError as exc:
        raise ParseError(f"damaged PDF ({exc})") from None
    text = "\n\n".join(_escape_hash_lines(page.strip()) for page in pages if page.strip())
    if not text.strip():
        raise ParseError("the PDF has no extractable text (a scanned PDF needs OCR first)")
    return text, False


def parse_docx(raw: bytes) -> tuple[str, bool]:
    """Paragraphs and tables in document order; Word's Heading/Title styles become `#` headings."""
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table

    try:
        document = docx.Document(io.BytesIO(raw))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError) as exc:
        raise ParseError(f"not a readable Word (.docx) file ({exc or type(exc).__name__})") from None
    blocks: list[str] = []
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            blocks.extend(_docx_table_rows(item))
        elif item.text.strip():
            blocks.append(_docx_paragraph(item.text.strip(), item.style.name if item.style else ""))
    return "\n\n".join(blocks), True


def _docx_paragraph(text: str, style: str) -> str:
    if style == "Title":
        return f"# {text}"
    match = re.fullmatch(r"Heading (\d)", style)
    if match:
        return f"{'#' * min(int(match.group(1)), 6)} {text}"
    if style.startswith("List"):
        return f"- {text}"
    return _escape_hash_lines(text)


def _docx_table_rows(table) -> list[str]:
    rows = []
    for row in table.rows:
        cells = [" ".join(cell.text.split()) for cell in row.cells]
        if any(cells):
            rows.append(" | ".join(cells))
    return ["\n".join(rows)] if rows else []


HTML_DROPPED_TAGS = ("script", "style", "noscript", "template", "svg", "iframe", "head", "nav", "footer")


def parse_html(raw: bytes) -> tuple[str, bool]:
    """HTML to Markdown (markdownify over BeautifulSoup); `<title>` is the H1 when the page has none."""
    from bs4 import BeautifulSoup
    from markdownify import MarkdownConverter

    if b"\x00" in raw:
        raise ParseError("binary content (NUL bytes), not an HTML file")
    soup = BeautifulSoup(raw, "html.parser")  # decodes by <meta charset> / BOM, else guesses
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(HTML_DROPPED_TAGS):
        tag.decompose()
    converter = MarkdownConverter(heading_style="ATX", escape_underscores=False, escape_asterisks=False,
                                  bullets="-")
    text = re.sub(r"\n{3,}", "\n\n", converter.convert_soup(soup)).strip()
    if title and not re.search(r"^# ", text, re.MULTILINE):
        text = f"# {title}\n\n{text}"
    return text, True


def _escape_hash_lines(text: str) -> str:
    """A line of extracted text that starts with `#` is not a heading: keep the chunker from thinking so."""
    return re.sub(r"^(\s*)#", r"\1\\#", text, flags=re.MULTILINE)


PARSERS: dict[str, Parser] = {
    ".md": parse_markdown,
    ".markdown": parse_markdown,
    ".txt": parse_plain_text,
    ".pdf": parse_pdf,
    ".docx": parse_docx,
    ".html": parse_html,
    ".htm": parse_html,
}


def supported_suffixes() -> list[str]:
    return sorted(PARSERS)


def parse_file(path: Path, raw: bytes) -> tuple[str, bool]:
    """Text of one file; any failure, even deep inside a third-party parser, becomes a `ParseError`."""
    parser = PARSERS.get(path.suffix.lower())
    if parser is None:
        raise ParseError(f"unsupported file type {path.suffix or '(none)'} "
                         f"(supported: {', '.join(supported_suffixes())})")
    try:
        return parser(raw)
    except ParseError:
        raise
    except Exception as exc:  # noqa: BLE001 - a malformed file can make a parser raise anything
        raise ParseError(f"could not read the file ({type(exc).__name__}: {exc})") from None
