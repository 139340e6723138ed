"""Answers in the asker's language, offline, still verifiable.

An English question over the Chinese articles is answered with the reviewed English
renderings of the quoted sentences (knowledge/corpus/translations.en.jsonl); each shown
sentence keeps its original in `quotes`, and the citations are attached by our code.
Without a rendering, the original is quoted and the lead says no translation is available yet.
"""
from __future__ import annotations

import json
import logging

from knowledge.language import language_of
from knowledge.translations import TranslationMemory
from retrieval.answer import compose


def write_memory(folder, rows, language="en") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows]
    (folder / f"translations.{language}.jsonl").write_text("\n".join(lines), encoding="utf-8")


def test_a_rendering_is_found_by_its_source_whatever_the_markup_and_spacing(tmp_path):
    row = {"source": "高可达性：任何人都可以免费使用。", "en": "High accessibility: anyone may use it."}
    write_memory(tmp_path, [row])
    memory = TranslationMemory.from_folders([tmp_path])
    assert memory.render("- **高可达性**：任何人都可以 免费使用。", "en") == "High accessibility: anyone may use it."
    assert memory.render("高可达性：任何人都可以免费使用。", "fr") is None
    assert memory.render("另一个句子。", "en") is None


def test_a_malformed_line_costs_one_rendering_and_one_warning(tmp_path, caplog):
    write_memory(tmp_path, ['{"source": "甲。", "en": "A."}', "{not json", '{"source": "乙。"}',
                            '{"source": "丙。", "en": "C."}'])
    with caplog.at_level(logging.WARNING, logger="knowledge.translations"):
        memory = TranslationMemory.from_folders([tmp_path, tmp_path / "missing"])
    assert len(memory) == 2 and memory.render("丙。", "en") == "C."
    assert len(caplog.records) == 2 and "line 2 of translations.en.jsonl" in caplog.records[0].getMessage()


def test_an_english_question_gets_english_quotes_tied_to_their_originals(kb):
    answer = kb.ask("What are the advantages of a closed-source model?")
    assert not answer.abstained and answer.quotes
    assert language_of(answer.answer) == "en"
    cited = {c.n: c.text for c in answer.citations}
    for quote in answer.quotes:
        assert quote.language == "en" and language_of(quote.text) == "en"
        assert language_of(quote.source) == "zh" and quote.source in cited[quote.n].replace("**", "")
        assert f"{quote.text} [{quote.n}]" in answer.answer
    assert answer.to_dict()["quotes"][0].keys() == {"n", "text", "source", "language"}


def test_a_chinese_question_is_quoted_as_written(kb):
    answer = kb.ask("闭源模式有什么优点？")
    assert answer.quotes and all(q.text == q.source and q.language == "zh" for q in answer.quotes)
    assert "译文" not in answer.answer


def test_without_a_rendering_the_original_is_quoted_and_the_lead_says_so(kb):
    question = "What are the advantages of a closed-source model?"
    result = kb.search(question)
    answer = compose(question, kb.ensure_index(), result, declined=False, sentences=3, translations=None)
    assert answer.answer.startswith("No English translation of some of these passages is available yet")
    assert all(q.text == q.source and q.language == "zh" for q in answer.quotes)
