"""Sentences: what answers quote, and what search matches one by one.

A list item of a strategy document means little out of its list: "任何人都可以免费使用和分发"
is an *advantage* of *open source* only because it sits under "开源模式 › 优点". Search
embeds each sentence under the labels of the lists around it; answers quote the
sentence alone.
"""
from __future__ import annotations

from knowledge.sentences import Sentence, is_quotable, sentences_in_context, split_sentences

PROS_AND_CONS = """\
开源与闭源的利弊如下：

- **开源模式**：

  **优点**：
  1. **高可达性**：任何人都可以免费使用和分发，有助于快速推广。
  2. **激励创新**：社区聚集了大量人才。可快速响应新需求。

  **缺点**：
  1. **成本控制**：开源模型开发和维护成本高。

- **闭源模式**：

  **优点**：
  1. **数据隐私**：可以更好地控制数据的收集和使用。

总之，两者各有利弊，需要权衡取舍。
"""

STEPS = """\
**Open source**:

1. **Release**: publish the weights and the code.
2. **Maintain**: accept fixes from the community.

**Closed source**:

1. **Deploy**: serve the model from the company's own network.
"""


def by_text(text: str) -> dict[str, Sentence]:
    return {s.text: s for s in sentences_in_context(text)}


def test_list_items_carry_the_labels_of_their_lists():
    sentences = by_text(PROS_AND_CONS)
    assert sentences["高可达性：任何人都可以免费使用和分发，有助于快速推广。"].context == ("开源模式", "优点")
    assert sentences["成本控制：开源模型开发和维护成本高。"].context == ("开源模式", "缺点")
    assert sentences["数据隐私：可以更好地控制数据的收集和使用。"].context == ("闭源模式", "优点")


def test_a_label_at_the_same_indent_replaces_the_previous_one():
    """"缺点" ends "优点"; "闭源模式" ends "开源模式" and everything under it."""
    contexts = [s.context for s in sentences_in_context(PROS_AND_CONS)]
    assert ("开源模式", "优点", "缺点") not in contexts
    assert not any("开源模式" in c and "闭源模式" in c for c in contexts)


def test_a_plain_paragraph_ends_the_labels_before_it():
    assert by_text(PROS_AND_CONS)["总之，两者各有利弊，需要权衡取舍。"].context == ()


def test_a_later_sentence_of_an_item_keeps_the_items_own_lead():
    later = by_text(PROS_AND_CONS)["可快速响应新需求。"]
    assert later.context == ("开源模式", "优点", "激励创新")


def test_labels_at_the_left_margin_head_the_numbered_list_below_them():
    sentences = by_text(STEPS)
    assert sentences["Release: publish the weights and the code."].context == ("Open source",)
    assert sentences["Deploy: serve the model from the company's own network."].context == ("Closed source",)


def test_search_embeds_the_labels_and_answers_quote_the_sentence_alone():
    sentence = by_text(PROS_AND_CONS)["成本控制：开源模型开发和维护成本高。"]
    assert sentence.embedding_text() == "开源模式 › 缺点：成本控制：开源模型开发和维护成本高。"
    assert "开源模式" not in split_sentences(PROS_AND_CONS)[3]
    assert Sentence("无标签的句子。").embedding_text() == "无标签的句子。"


def test_long_lines_ending_in_a_colon_are_lead_in_sentences_not_labels():
    text = "下面从知识产权、数据隐私、成本控制与生态系统几个方面详细比较开源与闭源的利弊：\n\n1. 第一点内容足够长。\n"
    sentences = sentences_in_context(text)
    assert sentences[0].text.endswith("利弊：") and not is_quotable(sentences[0].text)
    assert sentences[1].context == ()


def test_labels_inside_code_fences_are_ignored():
    text = "```python\n# 闭源模式：\nmodel.train()\n```\n\n普通的一句话就在这里。\n"
    assert [(s.text, s.context) for s in sentences_in_context(text)] == [("普通的一句话就在这里。", ())]
