"""PDF, DOCX and HTML parsing, and what the loader does with broken files (no index, no model)."""
from __future__ import annotations

from pathlib import Path

import pytest

from document_files import make_docx, make_html, make_pdf
from knowledge.chunking import Chunker
from knowledge.documents import load_document, load_folders
from knowledge.parsers import ParseError, parse_file


def test_pdf_text_is_extracted_page_text():
    raw = make_pdf("Zebra licensing memo.", "The zebra clause lets partners fine-tune the model.")
    text, markdown = parse_file(Path("memo.pdf"), raw)
    assert "Zebra licensing memo." in text
    assert "zebra clause lets partners fine-tune" in " ".join(text.split())
    assert markdown is False


def test_a_pdf_line_starting_with_hash_is_not_made_a_heading():
    text, _ = parse_file(Path("memo.pdf"), make_pdf("# 1 ranked option", "More text."))
    assert not any(line.startswith("# ") for line in text.splitlines())


def test_docx_headings_become_markdown_headings_and_tables_are_kept():
    raw = make_docx("Quokka plan", {"Pricing": "The quokka tier costs nothing.", "Support": "Email only."},
                    table=[["tier", "price"], ["quokka", "free"]])
    text, markdown = parse_file(Path("plan.docx"), raw)
    lines = text.splitlines()
    assert "# Quokka plan" in lines and "# Pricing" in lines and "# Support" in lines
    assert "quokka | free" in lines
    assert markdown is True


def test_docx_sections_survive_chunking(tmp_path):
    path = tmp_path / "plan.docx"
    path.write_bytes(make_docx("Quokka plan", {"Pricing": "The quokka tier costs nothing.",
                                               "Support": "Support is by email only."}))
    doc = load_document(path)
    assert doc.title == "Quokka plan"
    sections = {c.section for c in Chunker(chunk_size=40, chunk_overlap=0).chunk(doc)}
    assert {"Pricing", "Support"} <= sections


def test_html_keeps_headings_drops_scripts_styles_and_navigation():
    raw = make_html("Ocelot guide", {"Licensing": "Ocelot weights are licensed per seat.",
                                     "Privacy": "Prompts stay on the customer's servers."})
    text, markdown = parse_file(Path("guide.html"), raw)
    assert text.splitlines()[0] == "# Ocelot guide"
    assert "## Licensing" in text.splitlines() and "## Privacy" in text.splitlines()
    assert "do not index" not in text and "color: red" not in text and "Home | About" not in text
    assert markdown is True


def test_html_charset_from_meta_is_honoured():
    raw = "<html><head><meta charset='gbk'><title>开源</title></head><body><p>开源模型的成本</p></body></html>"
    text, _ = parse_file(Path("zh.htm"), raw.encode("gbk"))
    assert "开源模型的成本" in text


@pytest.mark.parametrize("name, raw, reason", [
    ("broken.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog", "PDF"),
    ("fake.pdf", b"just text", "not a PDF"),
    ("broken.docx", b"PK\x03\x04 not really a zip", "Word"),
    ("binary.html", b"\x00\x01\x02", "binary"),
    ("latin1.md", "café".encode("latin-1"), "UTF-8"),
    ("sheet.xlsx", b"PK", "unsupported file type .xlsx"),
])
def test_broken_files_raise_parse_error_with_a_reason(name, raw, reason):
    with pytest.raises(ParseError, match=reason):
        parse_file(Path(name), raw)


def test_scanned_pdf_without_text_is_refused_with_a_reason():
    with pytest.raises(ParseError, match="no extractable text"):
        parse_file(Path("scan.pdf"), make_pdf(""))


def test_folder_loading_skips_broken_files_by_name_and_keeps_the_rest(tmp_path):
    (tmp_path / "good.md").write_text("# Good\n\nFine text.", encoding="utf-8")
    (tmp_path / "guide.html").write_bytes(make_html("Guide", {"One": "Some text."}))
    (tmp_path / "memo.pdf").write_bytes(make_pdf("A memo with text."))
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.7 truncated")
    (tmp_path / "broken.docx").write_bytes(b"not a zip")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    report = load_folders([tmp_path])
    assert sorted(d.doc_id for d in report.documents) == ["good", "guide", "memo"]
    skipped = {s.path.name: s.reason for s in report.skipped}
    assert set(skipped) == {"broken.pdf", "broken.docx", "image.png"}
    assert "unsupported" in skipped["image.png"]


def test_several_folders_load_as_one_and_a_clashing_id_is_skipped(tmp_path):
    first, second = tmp_path / "corpus", tmp_path / "uploads"
    first.mkdir(), second.mkdir()
    (first / "plan.md").write_text("# Plan\n\nOne.", encoding="utf-8")
    (second / "Plan.txt").write_text("# Other plan\n\nTwo.", encoding="utf-8")
    (second / "extra.md").write_text("# Extra\n\nThree.", encoding="utf-8")
    report = load_folders([first, second])
    assert [d.doc_id for d in report.documents] == ["plan", "extra"]
    assert [s.path.name for s in report.skipped] == ["Plan.txt"]
    assert "already used by plan.md" in report.skipped[0].reason
