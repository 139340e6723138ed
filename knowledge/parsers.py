"""Turning file bytes into text, one parser per file type, at a bounded cost.

The registry is the one place new formats are added: each parser takes the raw
bytes and the `ParseLimits`, and returns `(text, is_markdown)`, or raises `ParseError`
with a reason. PDF, DOCX and HTML are read by well-kept libraries (pypdf, python-docx,
BeautifulSoup + markdownify); headings become Markdown headings wherever the format
has them, so the chunker keeps sections together.

Files are untrusted (an admin's upload, whatever sits in the knowledge folder), and
compressed formats unpack to far more than their size. Measured here without limits: a
650 KB .docx holding a 600 MB part took 1.2 GB and 8 s before lxml gave up; a 77 KB one
of 20 MB of empty paragraphs was accepted after a minute (440 MB); a 700 KB PDF of ten
70 MB page streams after 223 s (800 MB); 20 MB of HTML tags took 2 GB and 110 s. So
every parser checks what it is about to unpack before unpacking it, stops at the limits
as it goes, and refuses (never truncates) a document over them:

- text: at most `max_chars` characters per document (MAX_DOCUMENT_CHARS);
- unpacking: at most `max_expanded_bytes` (MAX_DOCUMENT_EXPANDED_MB) of .docx XML, of
  decoded PDF page content, or of HTML; a .docx part unpacking more than 100:1;
- structure: at most MAX_DOCX_BLOCKS paragraphs and tables, MAX_PDF_PAGES pages,
  MAX_HTML_TAGS tags (the parsers' cost grows with these, not just with bytes).
"""
from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

MB = 1_048_576
MAX_DOCX_BLOCKS = 100_000  # a 500-page report has about 10,000 paragraphs; python-docx takes ~40 µs each
MAX_PDF_PAGES = 5_000
MAX_HTML_TAGS = 100_000  # "<"s: BeautifulSoup + markdownify take about 50 µs and 1 KB per tag
MAX_ZIP_PARTS = 10_000
# A part this large that unpacks more than MAX_ZIP_RATIO times its compressed size is a bomb,
# not a document (the rule and the 100:1 figure are Apache POI's, ZipSecureFile's default);
# Word's own XML compresses about 10-30:1.
ZIP_RATIO_MIN_BYTES = MB
MAX_ZIP_RATIO = 100
INFLATE_CHUNK = 1 << 16


@dataclass(frozen=True)
class ParseLimits:
    """What reading one document may cost (Settings: MAX_DOCUMENT_CHARS, MAX_DOCUMENT_EXPANDED_MB)."""

    max_chars: int = 500_000
    max_expanded_bytes: int = 16 * MB

    @classmethod
    def from_settings(cls, settings) -> "ParseLimits":
        return cls(max_chars=settings.max_document_chars, max_expanded_bytes=settings.max_document_expanded_mb * MB)

    def check_chars(self, count: int) -> None:
        if count > self.max_chars:
            raise ParseError(f"the document has over {self.max_chars:,} characters of text "
                             f"(MAX_DOCUMENT_CHARS); split it into smaller documents")

    def too_expanded(self, what: str) -> "ParseError":
        return ParseError(f"{what} unpacks to over {self.max_expanded_bytes / MB:g} MB "
                          f"(MAX_DOCUMENT_EXPANDED_MB): refused as a possible decompression bomb")


Parser = Callable[[bytes, ParseLimits], tuple[str, bool]]


class ParseError(ValueError):
    """The file could not be turned into text; the message says why."""


def decode_text(raw: bytes, limits: ParseLimits | None = None) -> str:
    """Strict UTF-8 (with or without BOM): mis-decoded text would index as garbage."""
    limits = limits or ParseLimits()
    if len(raw) > 4 * limits.max_chars + 3:  # UTF-8 takes at most 4 bytes a character (+ a BOM)
        limits.check_chars(len(raw) // 4)
    if b"\x00" in raw:
        raise ParseError("binary content (NUL bytes), not a text file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParseError(f"not valid UTF-8 text (byte {exc.start})") from None
    limits.check_chars(len(text))
    return text


def parse_markdown(raw: bytes, limits: ParseLimits) -> tuple[str, bool]:
    return decode_text(raw, limits), True


def parse_plain_text(raw: bytes, limits: ParseLimits) -> tuple[str, bool]:
    # .txt files in practice are often Markdown (the shipped articles are); headings are
    # only recognised where a line really looks like one, so treating them alike is safe.
    return decode_text(raw, limits), True


def parse_pdf(raw: bytes, limits: ParseLimits) -> tuple[str, bool]:
    """Text of every page; PDFs carry no headings pypdf can see, so it is plain text.

    pypdf's own per-stream limits (75 MB by default) are lowered to ours for the duration,
    and the decoded page content is counted across pages, so ten pages of 70 MB streams
    cost one stream's worth of work before the refusal, not 700 MB.
    """
    from pypdf import PdfReader, apply_configuration
    from pypdf.errors import LimitReachedError, PdfReadError

    if b"%PDF-" not in raw[:1024]:
        raise ParseError("not a PDF file (no %PDF header)")
    cap = limits.max_expanded_bytes
    try:
        with apply_configuration(zlib_maximum_output_length=cap, lzw_maximum_output_length=cap,
                                 run_length_maximum_output_length=cap, brotli_maximum_output_length=cap,
                                 array_based_stream_maximum_output_length=cap, jbig2_maximum_output_length=cap,
                                 image_maximum_buffer_size=cap):
            pages = _pdf_pages(PdfReader(io.BytesIO(raw)), limits)
    except LimitReachedError:
        raise limits.too_expanded("a stream of the PDF") from None
    except PdfReadError as exc:
        raise ParseError(f"damaged PDF ({exc})") from None
    text = "\n\n".join(_escape_hash_lines(page.strip()) for page in pages if page.strip())
    if not text.strip():
        raise ParseError("the PDF has no extractable text (a scanned PDF needs OCR first)")
    return text, False


def _pdf_pages(reader, limits: ParseLimits) -> list[str]:
    """Each page's text, within the page, unpacking and character limits."""
    if reader.is_encrypted and not reader.decrypt(""):
        raise ParseError("the PDF is password-protected")
    if len(reader.pages) > MAX_PDF_PAGES:
        raise ParseError(f"the PDF has {len(reader.pages):,} pages, over the {MAX_PDF_PAGES:,} we read")
    pages, unpacked, chars = [], 0, 0
    for page in reader.pages:
        contents = page.get_contents()
        unpacked += len(contents.get_data()) if contents is not None else 0
        if unpacked > limits.max_expanded_bytes:
            raise limits.too_expanded("the PDF's page content")
        pages.append(page.extract_text() or "")
        chars += len(pages[-1])
        limits.check_chars(chars)
    return pages


def parse_docx(raw: bytes, limits: ParseLimits) -> tuple[str, bool]:
    """Paragraphs and tables in document order; Word's Heading/Title styles become `#` headings."""
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table

    check_zip(raw, limits)
    try:
        document = docx.Document(io.BytesIO(raw))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError) as exc:
        raise ParseError(f"not a readable Word (.docx) file ({exc or type(exc).__name__})") from None
    blocks: list[str] = []
    chars = 0
    for count, item in enumerate(document.iter_inner_content(), 1):
        if count > MAX_DOCX_BLOCKS:
            raise ParseError(f"the document has over {MAX_DOCX_BLOCKS:,} paragraphs and tables")
        if isinstance(item, Table):
            new = _docx_table_rows(item)
        elif item.text.strip():
            new = [_docx_paragraph(item.text.strip(), item.style.name if item.style else "")]
        else:
            continue
        blocks.extend(new)
        chars += sum(len(block) for block in new)
        limits.check_chars(chars)
    return "\n\n".join(blocks), True


def check_zip(raw: bytes, limits: ParseLimits) -> None:
    """Refuse a zip (a .docx) that would unpack to more than the limits allow, before any of it is parsed.

    First the sizes the archive declares (`_check_declared`), then the actual sizes, by
    inflating each part in small pieces and stopping at its declared size: zipfile itself
    never returns more than that (and then fails the CRC), so this checks that the declared
    sizes hold, at a cost bounded by them.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
        _check_declared(archive.infolist(), len(raw), limits)
        for part in archive.infolist():
            _inflate_within(archive, part)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as exc:
        raise ParseError(f"not a readable Word (.docx) file ({exc or type(exc).__name__})") from None


def _check_declared(parts: list[zipfile.ZipInfo], raw_size: int, limits: ParseLimits) -> None:
    """XML parts (what gets parsed) within `max_expanded_bytes`; everything within the file's own
    size plus that (images are stored already compressed); no large part compressed over 100:1."""
    if len(parts) > MAX_ZIP_PARTS:
        raise ParseError(f"the file holds {len(parts):,} parts, over the {MAX_ZIP_PARTS:,} we read")
    markup = sum(p.file_size for p in parts if _is_markup(p.filename))
    if markup > limits.max_expanded_bytes or sum(p.file_size for p in parts) > raw_size + limits.max_expanded_bytes:
        raise limits.too_expanded("the file")
    for part in parts:
        ratio = part.file_size / max(part.compress_size, 1)
        if part.file_size > ZIP_RATIO_MIN_BYTES and ratio > MAX_ZIP_RATIO:
            raise ParseError(f"a part of the file ({part.filename[:80]}) unpacks to {ratio:,.0f} times its size: "
                             f"refused as a possible decompression bomb")


def _is_markup(name: str) -> bool:
    return name.lower().endswith((".xml", ".rels", ".vml"))


def _inflate_within(archive: zipfile.ZipFile, part: zipfile.ZipInfo) -> None:
    """Inflate one part piece by piece (never all at once), refusing it past its declared size."""
    inflated = 0
    with archive.open(part) as stream:
        while piece := stream.read(INFLATE_CHUNK):
            inflated += len(piece)
            if inflated > part.file_size:
                raise ParseError(f"a part of the file ({part.filename[:80]}) is larger than it says")


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


def parse_html(raw: bytes, limits: ParseLimits) -> tuple[str, bool]:
    """HTML to Markdown (markdownify over BeautifulSoup); `<title>` is the H1 when the page has none.

    The size and the number of tags are checked before parsing: BeautifulSoup and
    markdownify cost about 100 bytes of memory per byte of tag soup (20 MB of `<div>`s
    took 2 GB and 110 s).
    """
    from bs4 import BeautifulSoup
    from markdownify import MarkdownConverter

    if b"\x00" in raw:
        raise ParseError("binary content (NUL bytes), not an HTML file")
    if len(raw) > limits.max_expanded_bytes:
        raise ParseError(f"the HTML is over {limits.max_expanded_bytes / MB:g} MB (MAX_DOCUMENT_EXPANDED_MB)")
    if raw.count(b"<") > MAX_HTML_TAGS:
        raise ParseError(f"the HTML has over {MAX_HTML_TAGS:,} tags")
    soup = BeautifulSoup(raw, "html.parser")  # decodes by <meta charset> / BOM, else guesses
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(HTML_DROPPED_TAGS):
        tag.decompose()
    converter = MarkdownConverter(heading_style="ATX", escape_underscores=False, escape_asterisks=False,
                                  bullets="-")
    text = re.sub(r"\n{3,}", "\n\n", converter.convert_soup(soup)).strip()
    if title and not re.search(r"^# ", text, re.MULTILINE):
        text = f"# {title}\n\n{text}"
    limits.check_chars(len(text))
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


def parse_file(path: Path, raw: bytes, limits: ParseLimits | None = None) -> tuple[str, bool]:
    """Text of one file; any failure, even deep inside a third-party parser, becomes a `ParseError`."""
    parser = PARSERS.get(path.suffix.lower())
    if parser is None:
        raise ParseError(f"unsupported file type {path.suffix or '(none)'} "
                         f"(supported: {', '.join(supported_suffixes())})")
    try:
        return parser(raw, limits or ParseLimits())
    except ParseError:
        raise
    except RecursionError:  # a parser walking absurdly nested markup
        raise ParseError("the file is nested too deeply to read") from None
    except Exception as exc:  # noqa: BLE001 - a malformed file can make a parser raise anything
        raise ParseError(f"could not read the file ({type(exc).__name__}: {exc})") from None
