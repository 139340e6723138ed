"""Reading a document costs a bounded amount: bombs and giants are refused before they are unpacked.

The bombs are made here, at run time, streamed into their zip or PDF (nothing big is committed,
and none is held whole in memory).
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from document_files import docx_with_body, make_docx, pdf_with_pages, repeated, text_operators
from knowledge.documents import load_folders
from knowledge.parsers import MB, ParseError, ParseLimits, parse_file
from strategy_bot.settings import Settings

PARAGRAPH = b"<w:p><w:r><w:t>The ocelot clause lets partners host the weights.</w:t></w:r></w:p>"


def refused(name: str, raw: bytes, limits: ParseLimits | None = None, within_s: float = 10.0) -> str:
    """The reason `parse_file` refuses the file, after checking it did so without unpacking it all."""
    started = time.monotonic()
    with pytest.raises(ParseError) as caught:
        parse_file(Path(name), raw, limits)
    assert time.monotonic() - started < within_s
    return str(caught.value)


def test_a_docx_part_declaring_more_than_the_limit_is_refused_before_it_is_inflated():
    bomb = docx_with_body([PARAGRAPH, *repeated(b" ", 40 * MB)])  # 40 MB of XML in a ~40 KB file
    assert len(bomb) < 200_000
    assert "unpacks to over 16 MB" in refused("bomb.docx", bomb)


def test_a_docx_of_empty_paragraphs_is_refused_by_its_compression_ratio():
    bomb = docx_with_body([PARAGRAPH, *repeated(b"<w:p></w:p>", 12 * MB)])  # under the size limit
    reason = refused("empty.docx", bomb)
    assert "word/document.xml" in reason and "decompression bomb" in reason


def test_any_part_counts_even_one_the_document_never_references():
    bomb = docx_with_body([PARAGRAPH], extra_parts={"word/media/filler.bin": repeated(b"\0", 64 * MB)})
    assert "decompression bomb" in refused("media.docx", bomb)


def test_a_pdf_stream_over_the_limit_is_refused():
    bomb = pdf_with_pages([[text_operators("Hello."), *repeated(b" ", 20 * MB)]])  # pypdf alone allows 75 MB
    assert "unpacks to over 16 MB" in refused("bomb.pdf", bomb)


def test_pdf_pages_count_together_against_the_limit():
    pages = [[text_operators(f"Page {n}."), *repeated(b" ", 6 * MB)] for n in range(4)]  # 4 × 6 MB: each fits
    assert "page content unpacks to over 16 MB" in refused("pages.pdf", pdf_with_pages(pages))


def test_html_with_too_many_tags_is_refused_before_parsing():
    page = b"<html><body><p>Ocelot.</p>" + b"<br>" * 120_000 + b"</body></html>"  # 480 KB, a minute of parsing
    assert "over 100,000 tags" in refused("tags.html", page, within_s=2.0)


def test_the_limits_are_the_settings():
    limits = ParseLimits.from_settings(Settings.from_env({"MAX_DOCUMENT_CHARS": "2000",
                                                          "MAX_DOCUMENT_EXPANDED_MB": "1"}, dotenv=False))
    assert limits == ParseLimits(max_chars=2000, max_expanded_bytes=MB)
    assert Settings().max_document_chars == 500_000 and Settings().max_document_expanded_mb == 16
    html = b"<html><body>" + b"<p>word</p>" * 200_000 + b"</body></html>"
    assert "is over 1 MB" in refused("big.html", html, limits)
    pdf = pdf_with_pages([[text_operators("Hi."), *repeated(b" ", 2 * MB)]])
    assert "over 1 MB" in refused("big.pdf", pdf, limits)


@pytest.mark.parametrize("name, raw", [
    ("long.md", ("开源模型的成本。" * 300).encode()),
    ("long.txt", b"word " * 500),
    ("long.html", b"<html><body><p>" + b"word " * 500 + b"</p></body></html>"),
    ("long.docx", make_docx("Long", {f"Part {n}": "word " * 100 for n in range(6)})),
    ("long.pdf", pdf_with_pages([[text_operators("word " * 90)] for _ in range(6)])),
])
def test_text_over_the_character_limit_is_refused_not_cut(name, raw):
    assert "over 2,000 characters of text (MAX_DOCUMENT_CHARS)" in refused(name, raw, ParseLimits(max_chars=2000))
    text, _ = parse_file(Path(name), raw, ParseLimits(max_chars=100_000))
    assert len(text) > 2000


def test_the_default_character_limit_applies_without_settings():
    assert "over 500,000 characters" in refused("huge.md", b"# Huge\n\n" + b"word " * 120_000)


def test_a_bomb_in_the_knowledge_folder_is_skipped_with_its_reason_and_the_rest_loads(tmp_path):
    (tmp_path / "plan.md").write_text("# Plan\n\nThe plan.", encoding="utf-8")
    (tmp_path / "bomb.docx").write_bytes(docx_with_body([PARAGRAPH, *repeated(b"<w:p></w:p>", 12 * MB)]))
    report = load_folders([tmp_path], ParseLimits())
    assert [d.doc_id for d in report.documents] == ["plan"]
    assert [(s.path.name, "decompression bomb" in s.reason) for s in report.skipped] == [("bomb.docx", True)]
