"""The background set's vectors ship with the bot, so a first build embeds only the documents.

A fresh build of the shipped corpus embedded 1,730 texts, 1,404 of them the background set,
the same for every install of one model. The shipped file must be current (this model, this
background text) and hold what the model computes, up to the CPU's rounding (tests/vector_checks.py);
otherwise a build embeds as before.
"""
from __future__ import annotations

import pytest

from retrieval.background_vectors import background_sha, read_background, read_shipped, write_shipped
from retrieval.service import BACKGROUND_FILE
from vector_checks import assert_same_vectors


def test_the_shipped_vectors_are_current_and_what_the_model_computes(e5):
    texts = read_background(BACKGROUND_FILE)
    shipped = read_shipped(BACKGROUND_FILE, e5.model_id, background_sha(texts))
    assert shipped is not None, "regenerate: python -m retrieval.background_vectors"
    assert shipped.passages.shape == shipped.queries.shape == (len(texts), e5.dimension)
    sample = list(range(0, len(texts), 97))
    assert_same_vectors(shipped.passages[sample], e5.embed_passages([texts[i] for i in sample]))
    assert_same_vectors(shipped.queries[sample], e5.embed_queries([texts[i] for i in sample]))
    other = e5.embed_passages([texts[i + 1] for i in sample])
    with pytest.raises(AssertionError):  # the check tells one text's vector from another's
        assert_same_vectors(shipped.passages[sample], other)


def test_vectors_of_another_model_or_background_are_not_used(tmp_path, e5):
    background = tmp_path / "background.txt"
    background.write_text("# comment\nHow do I bake bread?\nWhere is the office?\n", encoding="utf-8")
    texts = read_background(background)
    write_shipped(background, e5, texts, background_sha(texts))
    assert read_shipped(background, e5.model_id, background_sha(texts)) is not None
    assert read_shipped(background, "another-model", background_sha(texts)) is None
    assert read_shipped(background, e5.model_id, background_sha(texts + ["an edit"])) is None
    (tmp_path / "background.vectors.npz").write_bytes(b"not a zip")
    assert read_shipped(background, e5.model_id, background_sha(texts)) is None  # damaged: embed as before


def test_a_first_build_embeds_only_the_documents(tmp_path, e5):
    from retrieval.service import KnowledgeBase
    from strategy_bot.settings import Settings

    knowledge = tmp_path / "knowledge"
    knowledge.mkdir()
    (knowledge / "note.md").write_text("# 笔记\n\n开源模式强调透明度和社区协作。\n", encoding="utf-8")
    summary = KnowledgeBase(Settings(data_dir=tmp_path / "data", knowledge_dir=knowledge), e5).reindex()
    assert summary.reused == 2 * len(read_background(BACKGROUND_FILE))
    assert 0 < summary.embedded < 10  # the note's chunk, gloss and sentence
