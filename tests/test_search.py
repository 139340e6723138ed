"""Search, fusion, declining and answers, as executable documentation.

- Hybrid search fuses dense (e5) and lexical (BM25 over jieba words) rankings. BM25 cannot
  match English words to Chinese text, so the lexical side is weighted by its *coverage*: the
  share of the question's words the corpus contains, directly or through the English→Chinese
  term map. An English question it cannot translate gets (almost) pure dense ranking; a Chinese
  one gets the full lexical vote. On the eval sets, hybrid recall is at least dense recall.
- Off-topic questions are declined (`abstained: true`) instead of answered with the nearest
  passage; on-topic ones in either language are answered.
- Answers are extractive: sentences of the cited passages, each followed by its marker `[n]`.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

from conftest import REPO, SHARED_EVAL
from knowledge.sentences import clean_markup, is_quotable, split_sentences
from retrieval.evaluation import evaluate, load_items
from retrieval.search import rrf
from strategy_bot.settings import Settings

STRATEGY_EVAL = REPO / "eval" / "strategy_qa.jsonl"
HOLDOUT_EVAL = REPO / "eval" / "holdout_qa.jsonl"  # written without sight of the system's results

UNTRANSLATABLE_ENGLISH = ["Where can I park my bike at the office?", "What are the zyxwv flurbs of the quoggle?"]
CHINESE_ON_TOPIC = ["闭源模式有什么缺点？", "开源模式如何降低成本？", "如何平衡透明度与知识产权保护？"]
ENGLISH_ON_TOPIC = ["What are the advantages of a closed-source model?",
                    "Does open-sourcing a model put our intellectual property at risk?",
                    "How should we handle data privacy if we open-source the model?"]
OFF_TOPIC = ["How do I bake sourdough bread?", "how do I reset my VPN password?",
             "What's a good recipe for lasagna?", "Where can I park my bike at the office?",
             "How do I change a flat tyre?", "怎么做酸面包？", "我的电脑连不上打印机怎么办？",
             "这个月的工资什么时候发？"]


def eval_items():
    items = load_items(STRATEGY_EVAL)
    return items + (load_items(SHARED_EVAL) if SHARED_EVAL.is_file() else [])


def positions(result) -> list[int]:
    return [hit.position for hit in result.hits]


# --- hybrid fusion --------------------------------------------------------------------------------


@pytest.mark.parametrize("question", UNTRANSLATABLE_ENGLISH)
def test_lexical_side_has_no_say_for_english_it_cannot_translate(kb, question):
    result = kb.search(question, k=10)
    assert result.coverage <= 0.1
    assert positions(result) == positions(kb.search(question, k=10, mode="dense"))
    assert kb.search(question, k=10, mode="lexical").hits == []  # zero-score lexical hits are dropped


@pytest.mark.parametrize("question", CHINESE_ON_TOPIC)
def test_lexical_side_has_full_weight_for_chinese(kb, question):
    result = kb.search(question, k=10)
    assert result.coverage >= 0.8
    lexical = kb.search(question, k=10, mode="lexical")
    assert lexical.hits and all(hit.lexical > 0 for hit in lexical.hits)
    assert positions(result) != positions(kb.search(question, k=10, mode="dense"))  # BM25 moved something


def test_english_domain_words_are_translated_for_the_lexical_side(kb):
    """'closed-source' and 'advantages' reach 闭源 / 优点 through the term map."""
    result = kb.search("What are the advantages of a closed-source model?", k=5, mode="lexical")
    assert result.coverage >= 0.5 and result.hits
    assert any("闭源" in hit.chunk.text for hit in result.hits)


def test_words_for_weighing_options_reach_the_documents_pros_and_cons(kb):
    """CC-CEDICT has no "upside" or "downside"; the glossary maps them to 优点 / 缺点."""
    prepared = kb.ensure_index().lexical.prepare("What are the downsides and upsides of closed source?")
    assert {"缺点", "优点", "闭源"} <= set(prepared.translated)


def test_rrf_weights_follow_rank_not_scale():
    weights = rrf(np.array([0.2, 9.0, 0.5]))
    assert list(np.argsort(-weights)) == [1, 2, 0]
    assert np.allclose(rrf(np.array([1.0, 2.0, 3.0])), rrf(np.array([10.0, 20.0, 300.0])))


def test_hybrid_recall_is_at_least_dense_recall_on_the_eval_sets(kb):
    items = eval_items()
    figures = {mode: evaluate(kb, items, mode=mode, with_answers=False) for mode in ("dense", "lexical", "hybrid")}
    for mode, report in figures.items():
        print(f"\n{mode:8} recall@5 {report.recall_at_5:.3f}  MRR {report.mrr:.3f}  ({report.answerable} questions)")
    assert figures["hybrid"].recall_at_5 >= figures["dense"].recall_at_5
    assert figures["hybrid"].recall_at_5 >= figures["lexical"].recall_at_5


# --- declining -------------------------------------------------------------------------------------


@pytest.mark.parametrize("question", OFF_TOPIC)
def test_off_topic_questions_are_declined(kb, question):
    answer = kb.ask(question)
    assert answer.abstained, f"answered instead of declining: {answer.answer[:120]}"
    assert answer.citations == [] and answer.closest  # nothing cited; the closest sections are offered
    assert answer.answer.startswith(("The documents in the knowledge base don't cover this question.",
                                     "知识库中的文档没有涉及这个问题。"))


@pytest.mark.parametrize("question, name", [
    ("What's the practical difference between the Apache 2.0 and MIT licenses?", "MIT"),
    ("GPL 协议的代码能不能用在闭源商业产品里？", "GPL"),
    ("《生成式人工智能服务管理暂行办法》对模型备案有什么要求？", "生成式人工智能服务管理暂行办法"),
])
def test_a_question_about_something_the_documents_never_name_is_declined_and_says_so(kb, question, name):
    """Passages on licences in general (开源协议) score close to "Apache 2.0 vs MIT"; the
    question is about MIT, which no document mentions, so it must clear a higher margin. Close
    to the documents, it may be answered in part, but the first line says MIT is not covered."""
    answer = kb.ask(question)
    assert answer.coverage in ("declined", "partial")
    assert name in answer.answer.split("\n")[0]


def test_a_chinese_company_or_model_name_the_documents_never_mention_counts_as_unknown(kb):
    """jieba cannot tell 通义千问 from other words: listed names (prompts/chinese_names.yaml) can."""
    answer = kb.ask("阿里通义千问当初为什么决定开源？")
    assert answer.coverage in ("declined", "partial") and "通义千问" in answer.answer.split("\n")[0]
    assert kb.ask("谷歌的BERT是开源的吗？").coverage == "answered"  # 谷歌 and BERT are in the documents


@pytest.mark.parametrize("question", [
    "our CFO keeps asking whether closed source is cheaper to run long term. what do the docs say?",
    "which real world use cases does the 2nd article walk through?",
])
def test_who_asks_and_which_article_are_not_things_asked_about(kb, question):
    """A role ("our CFO") or an ordinal ("the 2nd article") is not a name the documents must mention."""
    assert kb.ask(question).coverage == "answered"


def test_a_question_naming_what_the_documents_never_mention_but_close_to_them_is_answered_in_part(
        built_data_dir, e5, kb):
    """Between declining and answering: the margin clears the plain bar but not the one for
    unknown names. The zone is widened here so that the test does not hang on one measured margin."""
    from retrieval.service import KnowledgeBase

    question = "We're expanding into SEA and the EU. Does open source help build an ecosystem across regions?"
    assert kb.ask(question).coverage == "answered"  # clears even the bar for unknown names
    wide = kb.tuning.with_values({"unknown_name_margin": 0.5, "unknown_name_partial_margin": -0.5})
    answer = KnowledgeBase(Settings(data_dir=built_data_dir), e5, tuning=wide).ask(question)
    assert answer.coverage == "partial" and not answer.abstained and answer.quotes
    assert answer.answer.startswith("The documents don't give anything on SEA, EU; the closest they say is")


def test_names_the_documents_do_mention_raise_no_bar(kb):
    for question in ("How did Google handle BERT — fully open or something in between?",
                     "Facebook的FAIR模型是怎么选的？"):
        answer = kb.ask(question)
        assert not answer.abstained, question


@pytest.mark.parametrize("question", ENGLISH_ON_TOPIC + CHINESE_ON_TOPIC)
def test_on_topic_questions_are_answered(kb, question):
    answer = kb.ask(question)
    assert not answer.abstained
    assert answer.citations


def test_the_decline_is_in_the_language_of_the_question(kb):
    assert kb.ask("怎么做酸面包？").answer == "知识库中的文档没有涉及这个问题。"
    assert kb.ask("How do I bake sourdough bread?").answer.startswith("The documents")


# --- answers -----------------------------------------------------------------------------------------


def test_answers_are_sentences_of_the_cited_passages(kb):
    answer = kb.ask("How can we keep transparency while protecting intellectual property?")
    cited = {c.n: c for c in answer.citations}
    body = [line for line in answer.answer.splitlines() if re.search(r"\[\d+\]$", line)]
    assert body and len(body) == len(answer.quotes), answer.answer
    for line, quote in zip(body, answer.quotes):
        # shown as its rendering, tied to a sentence of the passage or a whole item of one of its lists
        assert re.fullmatch(rf"(?:• )?{re.escape(quote.text)} \[{quote.n}\]", line), line
        passage = cited[quote.n].text
        assert quote.source in split_sentences(passage) + [clean_markup(row) for row in passage.splitlines()], line
    assert [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))
    assert answer.citations[0].title.startswith("开源还是闭源")
    assert "平衡透明度与知识产权" in answer.citations[0].section + answer.citations[0].text


def test_quotes_give_each_passage_a_quotable_sentence_of_its_own(kb):
    """What the decision report quotes: one sentence per hit, from that passage, in search order."""
    query = "开源与闭源相结合 开放模型部分功能，专有商业应用"
    passages = kb.quotes(query, 5)
    assert [p.hit.chunk.chunk_id for p in passages] == [h.chunk.chunk_id for h in kb.search(query, 5).hits]
    for passage in passages:
        assert passage.best is not None and is_quotable(passage.best.text)
        assert plain(passage.best.text) in plain(passage.hit.chunk.text)
    assert "开放模型部分功能，专有商业应用" in passages[0].best.text
    weighted = kb.quotes(query, 5, overlap_weight=1.0)  # a sentence using the query's words gains
    assert all(w.best.similarity > p.best.similarity for w, p in zip(weighted, passages))


def plain(text: str) -> str:
    """Text without Markdown emphasis and whitespace (sentences are stored without markup)."""
    return re.sub(r"\s+", "", text.replace("**", "").replace("__", ""))


def test_same_question_same_answer(kb):
    question = "开源对用户体验有啥好处？"
    first, second = kb.ask(question).to_dict(), kb.ask(question).to_dict()
    first.pop("timings_ms"), second.pop("timings_ms")
    assert first == second


def test_an_english_question_over_chinese_documents_says_the_quotes_are_translated(kb):
    answer = kb.ask("What are the advantages of a closed-source model?")
    assert answer.answer.startswith("From the documents (translated; the originals are under Sources)")
    assert answer.language == "en"


def test_a_follow_up_uses_the_thread_history(kb):
    """'What about its downsides?' means nothing alone; after a question about closed source it does."""
    alone = kb.ask("What about its downsides?")
    follow_up = kb.ask("What about its downsides?", history=["What are the advantages of a closed-source model?"])
    assert [c.chunk_id for c in follow_up.citations] != [c.chunk_id for c in alone.citations]
    assert any("闭源" in c.text for c in follow_up.citations[:3])


# --- retrieval quality on the shipped and shared eval sets -------------------------------------------


def test_eval_quality(kb):
    """Retrieval quality stays well clear of a regression: floors three questions below what
    was measured (our set 48/52 in the top five, MRR 0.81; hold-out 42/45, 0.74; the public
    sample 10/10, 0.95), so a near-tie that moves on another machine cannot fail the suite,
    while losing a handful of questions does. The issue's bar itself (recall@5 >= 0.90,
    MRR >= 0.70) is reported by `strategy-bot eval` and benchmarks/run_benchmarks.py."""
    reports = {path.name: evaluate(kb, load_items(path)) for path in (STRATEGY_EVAL, HOLDOUT_EVAL)}
    if SHARED_EVAL.is_file():
        reports[SHARED_EVAL.name] = evaluate(kb, load_items(SHARED_EVAL))
    for name, report in reports.items():
        print(f"\n{name}: recall@5 {report.recall_at_5:.3f}  MRR {report.mrr:.3f}  "
              f"off-topic declined {report.declined}/{report.unanswerable}  "
              f"answerable declined {len(report.wrongly_declined)}  misses {report.misses}  "
              f"wrongly answered {report.wrongly_answered}")
    measured_hits = {STRATEGY_EVAL.name: 48, HOLDOUT_EVAL.name: 42, SHARED_EVAL.name: 10}
    mrr_floors = {STRATEGY_EVAL.name: 0.70, HOLDOUT_EVAL.name: 0.64, SHARED_EVAL.name: 0.75}
    for name, report in reports.items():
        assert report.hits >= measured_hits[name] - 3, name
        assert report.mrr >= mrr_floors[name], name
        assert len(report.wrongly_declined) <= 2, name
        # an off-topic question is declined, or answered as partial saying what the documents lack
        assert report.declined + report.unanswerable_partial >= report.unanswerable - 2, name
    for name in (STRATEGY_EVAL.name, SHARED_EVAL.name):
        if name in reports:
            report = reports[name]
            assert report.unanswerable >= 1 and report.declined + report.unanswerable_partial >= report.unanswerable - 1
