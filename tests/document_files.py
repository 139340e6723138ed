"""Small real PDF, DOCX and HTML files made in the test, for the parsers and the upload path."""
from __future__ import annotations

import io


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
