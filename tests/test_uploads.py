"""Storing a sent document safely: names, no overwriting, no broken files, where uploads go."""
from __future__ import annotations

import pytest

from document_files import make_pdf
from knowledge.uploads import UploadRejected, check_upload, safe_file_name, store_upload
from strategy_bot.settings import DEFAULT_KNOWLEDGE_DIR, Settings

MB = 1_048_576


@pytest.mark.parametrize("sent, stored", [
    ("../../etc/cron.d/evil.md", "evil.md"),
    ("..\\..\\windows\\x.MD", "x.md"),
    (".hidden.md", "hidden.md"),
    ("  我的 文档?.md ", "我的-文档.md"),
    ("a\x00b\n.txt", "ab.txt"),
    ("..", "document"),
])
def test_safe_file_name_strips_folders_hidden_dots_and_control_characters(sent, stored):
    assert safe_file_name(sent) == stored


def test_safe_file_name_is_bounded():
    assert len(safe_file_name("x" * 500 + ".pdf")) <= 84


def test_traversal_names_are_stored_inside_the_folder(tmp_path):
    folder = tmp_path / "knowledge"
    stored = store_upload(folder, "../../outside.md", b"# Outside\n\ntext")
    assert stored.path.parent == folder and stored.path.name == "outside.md"
    assert not (tmp_path / "outside.md").exists()


def test_a_different_document_is_never_overwritten(tmp_path):
    first = store_upload(tmp_path, "plan.md", b"# Plan\n\nversion one")
    second = store_upload(tmp_path, "plan.md", b"# Plan\n\nversion two")
    assert (first.path.name, second.path.name) == ("plan.md", "plan-2.md")
    assert first.path.read_bytes() == b"# Plan\n\nversion one"
    assert second.created and second.doc_id == "plan-2"


def test_the_same_file_sent_again_is_recognised_not_duplicated(tmp_path):
    store_upload(tmp_path, "plan.md", b"# Plan\n\nv1")
    store_upload(tmp_path, "plan.md", b"# Plan\n\nv2")
    again = store_upload(tmp_path, "plan.md", b"# Plan\n\nv2")
    assert again.created is False and again.path.name == "plan-2.md"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan-2.md", "plan.md"]


def test_a_document_id_taken_in_another_indexed_folder_gets_a_new_name(tmp_path):
    corpus, uploads = tmp_path / "corpus", tmp_path / "uploads"
    corpus.mkdir()
    (corpus / "Plan.txt").write_text("# Plan\n\ncorpus", encoding="utf-8")
    stored = store_upload(uploads, "plan.pdf", make_pdf("An uploaded plan."), knowledge_dirs=[corpus, uploads])
    assert stored.path.name == "plan-2.pdf" and stored.doc_id == "plan-2"


@pytest.mark.parametrize("name, data, reason", [
    ("tool.exe", b"MZ", "not a supported type"),
    ("empty.md", b"", "empty"),
    ("fake.pdf", b"hello", "could not be read"),
    ("latin.txt", "é".encode("latin-1"), "could not be read"),
])
def test_unreadable_uploads_are_refused_and_nothing_is_written(tmp_path, name, data, reason):
    with pytest.raises(UploadRejected, match=reason):
        store_upload(tmp_path, name, data)
    assert list(tmp_path.iterdir()) == []


def test_size_and_type_are_checked_before_downloading():
    check_upload("a.pdf", 5 * MB, max_bytes=20 * MB)
    with pytest.raises(UploadRejected, match=r"21\.0 MB, over the 20\.0 MB limit"):
        check_upload("a.pdf", 21 * MB, max_bytes=20 * MB)
    with pytest.raises(UploadRejected, match=".xlsx is not a supported type"):
        check_upload("a.xlsx", 10, max_bytes=20 * MB)


def test_uploads_go_beside_the_packaged_corpus_but_into_a_chosen_knowledge_dir(tmp_path):
    default = Settings(data_dir=tmp_path / "data")
    assert default.knowledge_dir == DEFAULT_KNOWLEDGE_DIR
    assert default.upload_dir == tmp_path / "data" / "knowledge"
    assert default.knowledge_dirs == (DEFAULT_KNOWLEDGE_DIR, tmp_path / "data" / "knowledge")
    chosen = Settings(data_dir=tmp_path / "data", knowledge_dir=tmp_path / "docs")
    assert chosen.upload_dir == tmp_path / "docs"
    assert chosen.knowledge_dirs == (tmp_path / "docs",)
