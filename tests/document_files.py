"""Small real PDF, DOCX and HTML files made in the test, for the parsers and the upload path."""
from __future__ import annotations

import io
import itertools
import zipfile
import zlib
from typing import Iterable, Iterator


def make_pdf(*paragraphs: str) -> bytes:
    """A real PDF (fpdf2, Latin text) with one paragraph per argument."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    for paragraph in paragraphs:
        pdf.multi_cell(0, 7, paragraph)
        pdf.ln(4)
    return bytes(pdf.output())


def make_docx(title: str, sections: dict[str, str], table: list[list[str]] | None = None) -> bytes:
    """A real Word file: a Title, Heading 1 sections with one paragraph each, and an optional table."""
    import docx

    document = docx.Document()
    document.add_heading(title, 0)
    for heading, text in sections.items():
        document.add_heading(heading, 1)
        document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def make_html(title: str, sections: dict[str, str]) -> bytes:
    body = "".join(f"<h2>{heading}</h2><p>{text}</p>" for heading, text in sections.items())
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
            f"<style>p {{ color: red }}</style></head>"
            f"<body><nav>Home | About</nav>{body}<script>var secret = 'do not index';</script></body></html>"
            ).encode("utf-8")


def docx_with_body(body: Iterable[bytes], *, extra_parts: dict[str, Iterable[bytes]] | None = None) -> bytes:
    """A Word file whose `word/document.xml` body is `body`, streamed into the zip piece by piece,
    so a test can make a decompression bomb (hundreds of MB of XML) in a few hundred KB of memory.
    `extra_parts` adds more parts the same way (they need not be referenced)."""
    base = zipfile.ZipFile(io.BytesIO(make_docx("Bomb", {"Section": "text"})))
    document = base.read("word/document.xml").decode("utf-8")
    head, tail = document.split("<w:body>")[0] + "<w:body>", "</w:body></w:document>"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in base.infolist():
            if info.filename != "word/document.xml":
                archive.writestr(info, base.read(info.filename))
        parts = {"word/document.xml": itertools.chain([head.encode()], body, [tail.encode()]),
                 **(extra_parts or {})}
        for name, pieces in parts.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w", force_zip64=True) as part:
                for piece in pieces:
                    part.write(piece)
    return out.getvalue()


def repeated(piece: bytes, total_bytes: int) -> Iterator[bytes]:
    """`piece` repeated until about `total_bytes`, yielded in 1 MB slices."""
    block = piece * max(1, (1 << 20) // len(piece))
    for _ in range(max(1, total_bytes // len(block))):
        yield block


def pdf_with_pages(pages: list[Iterable[bytes]]) -> bytes:
    """A PDF whose pages' content streams are the given byte pieces, Flate-compressed as they come
    (a stream of hundreds of MB costs a few hundred KB here). Helvetica is the page font."""
    objects: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>", b"",
                            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    kids = []
    for content in pages:
        squeeze = zlib.compressobj(9)
        data = b"".join(squeeze.compress(piece) for piece in content) + squeeze.flush()
        objects.append(b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(data), data))
        content_ref = len(objects)
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
                       b"/Resources << /Font << /F1 3 0 R >> >> >>" % content_ref)
        kids.append(b"%d 0 R" % len(objects))
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(kids), len(kids))
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.write(b"".join(b"%010d 00000 n \n" % offset for offset in offsets))
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def text_operators(text: str) -> bytes:
    """A content stream showing `text` (ASCII) on a page."""
    return b"BT /F1 12 Tf 72 712 Td (%s) Tj ET\n" % text.encode("ascii")
