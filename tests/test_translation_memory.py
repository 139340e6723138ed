"""The English translation memory (TM) of the shipped corpus, as executable documentation.

English readers see each quoted Chinese sentence, heading and title in English, and must be
able to check it against the original: so `knowledge/corpus/translations.en.jsonl` holds
exactly one rendering for every unit the project's own splitter finds (`knowledge/tm_units.py`),
none for text that is no longer in the documents, and every rendering is real English.
Fast: no index is built.
"""
from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from knowledge.documents import load_folder
from knowledge.tm_units import TM_FILE, TM_KEYS, Unit, missing_units, translation_units
from strategy_bot.settings import DEFAULT_KNOWLEDGE_DIR

TM_PATH = DEFAULT_KNOWLEDGE_DIR / TM_FILE
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]")  # ideographs and CJK punctuation


@pytest.fixture(scope="module")
def units() -> list[Unit]:
    return translation_units(load_folder(DEFAULT_KNOWLEDGE_DIR).documents)


@pytest.fixture(scope="module")
def entries() -> list[dict[str, str]]:
    """The TM, parsed strictly: every line one JSON object (a blank line is an error too)."""
    lines = TM_PATH.read_text(encoding="utf-8").splitlines()
    parsed = []
    for number, line in enumerate(lines, 1):
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError as exc:
            pytest.fail(f"{TM_FILE} line {number} is not JSON: {exc}")
    return parsed


def test_the_tm_is_jsonl_with_exactly_the_documented_keys(entries):
    assert entries, "the TM is empty"
    for entry in entries:
        assert isinstance(entry, dict) and tuple(entry) == TM_KEYS, entry
        assert all(isinstance(value, str) for value in entry.values()), entry


def test_every_unit_of_the_shipped_corpus_has_exactly_one_rendering(units, entries):
    counts = Counter(entry["source"] for entry in entries)
    assert [unit.source for unit in missing_units(units, entries)] == []
    assert [source for source, n in counts.items() if n > 1] == []


def test_no_entry_renders_text_that_is_no_longer_in_the_documents(units, entries):
    current = {unit.source for unit in units}
    assert [entry["source"] for entry in entries if entry["source"] not in current] == []


def test_entries_follow_the_units_in_document_order_with_their_kind_and_document(units, entries):
    assert [(e["source"], e["kind"], e["doc"]) for e in entries] == [(u.source, u.kind, u.doc_id) for u in units]


def test_every_rendering_is_english_text(entries):
    empty = [entry["source"] for entry in entries if not entry["en"].strip()]
    with_cjk = [entry["en"] for entry in entries if CJK.search(entry["en"])]
    assert empty == [] and with_cjk == []


def test_renderings_keep_the_originals_numbers_and_latin_words(entries):
    """GPT-3, BERT, $M = T(D)$, section numbers: a rendering that changes them is not verifiable."""
    lost = [
        (entry["source"], word)
        for entry in entries
        for word in re.findall(r"[A-Za-z0-9]+", entry["source"])
        if word.lower() not in entry["en"].lower()
    ]
    assert lost == []


def test_the_units_cover_titles_headings_labels_sentences_and_whole_lines(units):
    """One example of each kind, from the ip-privacy-cost article."""
    by_source = {unit.source: unit.kind for unit in units}
    assert by_source["开源还是闭源（二）：知识产权、数据隐私、成本与应用"] == "title"
    assert by_source["Q3: 如何在大模型的开源与闭源模式选择中平衡透明度与知识产权保护？"] == "heading"
    assert by_source["优点"] == "label"
    assert by_source["高可达性：任何人都可以免费使用和分发，有助于模型在更广泛场景中的快速应用和推广。"] == "sentence"
    assert by_source["安装PyTorch：根据CUDA版本，从官网获取对应的安装命令。例如："] == "line"
    assert not any("import torch" in source or "A[大语言模型]" in source for source in by_source)  # code fences


def test_the_tm_is_folder_metadata_not_a_document_the_loader_skips():
    report = load_folder(DEFAULT_KNOWLEDGE_DIR)
    assert report.skipped == []
    assert TM_FILE not in {doc.path.name for doc in report.documents}
