"""Loading the knowledge folder, as executable documentation.

The shipped corpus is the two seed articles, verbatim, each with its own title (both open with
the same H1, so `knowledge/corpus/titles.yaml` names them) and an id taken from its file name, so
editing an article keeps its id. Whatever else an admin drops in the folder — a binary file,
text that is not UTF-8, a format we do not read — is reported with a reason and skipped; the
other documents still load.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.documents import doc_id_for, load_folder
from strategy_bot.settings import DEFAULT_KNOWLEDGE_DIR

SEEDS = Path(__file__).resolve().parent.parent.parent / "shared" / "seeds"
SHIPPED_IDS = ["open-vs-closed-concepts", "open-vs-closed-ip-privacy-cost"]


def test_the_shipped_corpus_has_two_documents_with_distinct_titles():
    report = load_folder(DEFAULT_KNOWLEDGE_DIR)
    assert report.skipped == []
    assert [d.doc_id for d in report.documents] == SHIPPED_IDS
    titles = [d.title for d in report.documents]
    assert titles == ["开源还是闭源（一）：概念、优缺点与整体架构",
                      "开源还是闭源（二）：知识产权、数据隐私、成本与应用"]
    # both articles open with the same H1: the titles must not come from it
    first_lines = {d.text.split("# ", 1)[1].splitlines()[0] for d in report.documents}
    assert len(first_lines) == 1 and first_lines.isdisjoint(titles)


def test_document_ids_are_stable_across_loads_and_edits(knowledge_copy):
    before = {d.doc_id: d.sha256 for d in load_folder(knowledge_copy).documents}
    path = knowledge_copy / "open-vs-closed-concepts.md"
    path.write_text(path.read_text(encoding="utf-8") + "\n补充的一段。\n", encoding="utf-8")
    after = {d.doc_id: d.sha256 for d in load_folder(knowledge_copy).documents}
    assert list(after) == list(before) == SHIPPED_IDS
    assert after["open-vs-closed-concepts"] != before["open-vs-closed-concepts"]  # content hash moved, id did not
    assert doc_id_for(Path("Some Report (final).md")) == doc_id_for(Path("elsewhere/some-report-final-.txt"))


@pytest.mark.skipif(not SEEDS.is_dir(), reason="../shared/seeds is not beside the repo")
def test_the_shipped_articles_are_the_seed_texts_verbatim():
    seeds = sorted(p.read_bytes() for p in SEEDS.iterdir() if p.is_file())
    shipped = sorted(p.read_bytes() for p in DEFAULT_KNOWLEDGE_DIR.glob("*.md"))
    assert shipped == seeds


def test_a_document_without_a_titles_entry_uses_its_first_heading(tmp_path):
    (tmp_path / "notes.md").write_text("Intro line\n\n# Pricing notes\n\nText.\n", encoding="utf-8")
    (tmp_path / "plain.txt").write_text("No heading here.\n", encoding="utf-8")
    titles = {d.doc_id: d.title for d in load_folder(tmp_path).documents}
    assert titles == {"notes": "Pricing notes", "plain": "plain"}


def test_broken_files_are_reported_and_skipped_and_the_rest_load(knowledge_copy):
    (knowledge_copy / "diagram.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (knowledge_copy / "legacy.txt").write_bytes("旧文档，GBK 编码".encode("gbk"))
    (knowledge_copy / "empty.md").write_text("   \n\n", encoding="utf-8")
    (knowledge_copy / "slides.pptx").write_bytes(b"PK\x03\x04 not really")
    (knowledge_copy / ".hidden.md").write_text("# editor swap file\n", encoding="utf-8")
    report = load_folder(knowledge_copy)
    assert [d.doc_id for d in report.documents] == SHIPPED_IDS
    reasons = {s.path.name: s.reason for s in report.skipped}
    assert set(reasons) == {"diagram.md", "legacy.txt", "empty.md", "slides.pptx"}
    assert "binary" in reasons["diagram.md"]
    assert "UTF-8" in reasons["legacy.txt"]
    assert "no text" in reasons["empty.md"]
    assert "unsupported file type .pptx" in reasons["slides.pptx"]


def test_a_second_file_with_the_same_id_is_skipped_with_the_reason(tmp_path):
    (tmp_path / "pricing.md").write_text("# Pricing\n\nA.\n", encoding="utf-8")
    (tmp_path / "Pricing.txt").write_text("# Pricing again\n\nB.\n", encoding="utf-8")
    report = load_folder(tmp_path)
    assert len(report.documents) == 1
    (skipped,) = report.skipped
    assert "already used" in skipped.reason


def test_a_broken_titles_file_is_ignored(knowledge_copy):
    (knowledge_copy / "titles.yaml").write_text("this: is: not: yaml: [", encoding="utf-8")
    report = load_folder(knowledge_copy)
    assert [d.doc_id for d in report.documents] == SHIPPED_IDS
    assert {d.title for d in report.documents} == {"开源还是闭源:大模型商业化的抉择"}  # falls back to the H1


def test_a_utf8_bom_is_accepted(tmp_path):
    (tmp_path / "bom.md").write_bytes("\ufeff# 带BOM的文档\n\n正文。\n".encode("utf-8"))
    (doc,) = load_folder(tmp_path).documents
    assert doc.title == "带BOM的文档" and not doc.text.startswith("\ufeff")


def test_a_missing_folder_loads_nothing_without_crashing(tmp_path):
    report = load_folder(tmp_path / "does-not-exist")
    assert report.documents == [] and report.skipped == []
