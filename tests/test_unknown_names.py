"""Names a question asks about that the documents never mention.

"What's the difference between the Apache 2.0 and MIT licences?" scores close to the
passages on 开源协议, but the documents say nothing of MIT: such a question has to clear a
higher margin before it is answered (ABSTAIN_UNKNOWN_NAME_MARGIN), and a decline says
which name the documents lack.
"""
from __future__ import annotations

import pytest

from retrieval.abstain import DeclinePolicy, should_decline, unknown_names
from retrieval.lexical import LexicalIndex
from retrieval.search import SearchResult

CORPUS = LexicalIndex([
    "开源模式需要遵守开源协议。Google 发布了 BERT 和 GPT-3 的论文。",
    "计算资源：Google Colab 提供免费的 GPU。推荐阅读《深度学习理论与实践》。",
])


def names(question: str) -> list[str]:
    return unknown_names(question, CORPUS.mentions)


@pytest.mark.parametrize("question, expected", [
    ("What's the difference between the Apache 2.0 and MIT licenses?", ["Apache", "MIT"]),
    ("How do I configure a Kubernetes ingress?", ["Kubernetes"]),
    ("微调一个70B的模型大概需要多少张A100？", ["70B", "A100"]),
    ("Llama 3 的上下文窗口有多长？", ["Llama"]),  # a Chinese question has no capitalised first word
    ("《生成式人工智能服务管理暂行办法》对模型备案有什么要求？", ["生成式人工智能服务管理暂行办法"]),
])
def test_names_the_documents_lack_are_found(question, expected):
    assert names(question) == expected


@pytest.mark.parametrize("question", [
    "How did Google handle BERT?",             # both in the documents
    "Are GPT-style models covered?",           # "GPT-3" is in the documents; "-style" is no name
    "Where can we get GPUs for free?",         # a plural of GPU
    "What does the article say about google colab?",
    "Who won the world cup in 2018?",          # a plain number is no name
    "Should we open-source our model?",        # a sentence's first word is capitalised, not a name
    "有什么推荐的书，比如《深度学习理论与实践》？",  # a title the documents quote
])
def test_known_names_and_ordinary_words_are_not_flagged(question):
    assert names(question) == []


def result(best_dense: float, best_background: float) -> SearchResult:
    import numpy as np

    return SearchResult(hits=[object()], query_vector=np.zeros(1), best_dense=best_dense,  # type: ignore[list-item]
                        best_background=best_background, coverage=1.0)


def test_an_unknown_name_raises_the_margin_a_question_must_clear():
    policy = DeclinePolicy(same_language_margin=0.0, cross_lingual_margin=-0.03, unknown_name_margin=0.05)
    close_call = result(best_dense=0.82, best_background=0.80)  # documents ahead by 0.02
    assert not should_decline(close_call, policy, cross_lingual=False)
    assert should_decline(close_call, policy, cross_lingual=False, unknown=["MIT"])
    clear_win = result(best_dense=0.90, best_background=0.80)
    assert not should_decline(clear_win, policy, cross_lingual=False, unknown=["MIT"])


def test_a_heading_naming_the_topic_lowers_the_margin_but_not_for_an_unknown_name():
    policy = DeclinePolicy(same_language_margin=0.0, cross_lingual_margin=-0.03, unknown_name_margin=0.05,
                           heading_relief=0.015)
    just_below = result(best_dense=0.881, best_background=0.889)  # "有什么入门学习资料可以看？": -0.008
    assert should_decline(just_below, policy, cross_lingual=False)
    assert not should_decline(just_below, policy, cross_lingual=False, heading_named=True)
    assert should_decline(just_below, policy, cross_lingual=False, unknown=["MIT"], heading_named=True)
    far_below = result(best_dense=0.86, best_background=0.89)
    assert should_decline(far_below, policy, cross_lingual=False, heading_named=True)
