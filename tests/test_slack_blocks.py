"""Block Kit rendering of answers: layout, escaping, Slack's limits (pure functions, no server)."""
from __future__ import annotations

import json

import pytest

from bot.blocks.answer import FEEDBACK_ACTION_ID, answer_message, parse_feedback_value, simple_message
from bot.blocks.text import MAX_BLOCKS, SECTION_TEXT_LIMIT, escape, plain_question, trim
from retrieval.answer import Answer, Citation


def citation(n: int, text: str = "开源模型可以建立社区。", title: str = "开源与闭源",
             section: str = "成本") -> Citation:
    return Citation(n=n, doc_id="doc", title=title, section=section, text=text, score=0.8, chunk_id=f"c{n}")


def texts_of(blocks: list[dict]) -> list[str]:
    return [b["text"]["text"] for b in blocks if b["type"] == "section"]


def test_answer_then_sources_then_feedback_buttons():
    answer = Answer(question="q", answer="开源降低成本。 [1]\n社区很重要。 [2]", abstained=False,
                    citations=[citation(1), citation(2, section="社区")], language="en")
    message = answer_message(answer, answer_id=42)
    sections = texts_of(message.blocks)
    assert sections[0] == "开源降低成本。 [1]\n社区很重要。 [2]"
    assert sections[1] == "*Sources*"
    assert sections[2] == "*[1] 开源与闭源 › 成本*\n>开源模型可以建立社区。"
    assert sections[3].startswith("*[2] 开源与闭源 › 社区*\n>")
    feedback = message.blocks[-1]  # Slack's native feedback buttons
    assert feedback["type"] == "context_actions"
    [element] = feedback["elements"]
    assert element["type"] == "feedback_buttons" and element["action_id"] == FEEDBACK_ACTION_ID
    assert [parse_feedback_value(element[side]["value"]) for side in ("positive_button", "negative_button")] == [
        (42, "up"), (42, "down")]
    assert message.text == "开源降低成本。 [1]"


def test_declined_answer_says_so_and_lists_closest_sections():
    answer = Answer(question="weather?", answer="The documents in the knowledge base don't cover this question.",
                    abstained=True, citations=[], language="en", closest=[citation(1), citation(2)])
    sections = texts_of(answer_message(answer, 1).blocks)
    assert sections[0] == "The documents in the knowledge base don't cover this question."
    assert sections[1] == "*The closest sections are:*"
    assert [s.split("\n")[0] for s in sections[2:]] == ["*[1] 开源与闭源 › 成本*", "*[2] 开源与闭源 › 成本*"]


def test_passage_text_cannot_ping_or_break_formatting():
    nasty = "Tell <!channel> and <!here|here> and <@U123ABC>: a < b && c > d. Also @channel, @here!"
    answer = Answer(question="q", answer=f"{nasty} [1]", abstained=False,
                    citations=[citation(1, text=nasty, title="<@U999> title", section="<!everyone>")])
    blob = json.dumps(answer_message(answer, 7).blocks, ensure_ascii=False) + answer_message(answer, 7).text
    for forbidden in ("<!channel>", "<!here", "<@U123ABC>", "<@U999>", "<!everyone>", "@channel", "@here"):
        assert forbidden not in blob
    assert "&lt;!channel&gt;" in blob and "&amp;&amp;" in blob and "&lt;@U123ABC&gt;" in blob


def test_escape_is_exactly_slacks_three_entities():
    assert escape("a & b < c > d") == "a &amp; b &lt; c &gt; d"
    assert escape("开源 “quote” *bold*") == "开源 “quote” *bold*"


def test_trim_never_cuts_inside_an_entity():
    text = escape("x" * 8 + "&&&&")
    assert trim(text, 12) == "x" * 8 + "…"  # "&am" would have been cut mid-entity
    assert trim(text, 14) == "x" * 8 + "&amp;…"
    for limit in range(1, len(text)):
        cut = trim(text, limit)
        assert len(cut) <= limit
        tail = cut[cut.rfind("&"):] if "&" in cut else ""
        assert not tail or ";" in tail


def test_huge_passages_and_many_citations_stay_within_slack_limits():
    huge = "<!channel> " + "很长的段落，" * 5000
    citations = [citation(n, text=huge, title="T" * 5000, section="S&" * 3000) for n in range(1, 61)]
    answer = Answer(question="q", answer="\n".join(f"{huge} [{n}]" for n in range(1, 8)), abstained=False,
                    citations=citations)
    message = answer_message(answer, 3)
    assert len(message.blocks) <= MAX_BLOCKS
    assert all(0 < len(t) <= SECTION_TEXT_LIMIT for t in texts_of(message.blocks))
    assert message.blocks[-1]["type"] == "context_actions"  # the feedback buttons survive the cut
    assert len(message.text) <= 300
    assert all("<!channel>" not in t for t in texts_of(message.blocks))


def test_quote_is_one_line_without_markdown_headings():
    answer = Answer(question="q", answer="a [1]", abstained=False,
                    citations=[citation(1, text="## 成本\n\n第一行\n第二行   第三行")])
    source = texts_of(answer_message(answer, 1).blocks)[2]
    assert source.endswith("\n>第一行 第二行 第三行")


def test_simple_message_is_one_section():
    message = simple_message("hello")
    assert message.blocks == [{"type": "section", "text": {"type": "mrkdwn", "text": "hello"}}]


@pytest.mark.parametrize("raw, expected", [
    ("<@UBOT1> what does open source cost?", "what does open source cost?"),
    ("<@UBOT1|bot> 开源的成本？", "开源的成本？"),
    ("compare <#C123|general> and <https://x.io|this page> &amp; <@U777>", "compare general and this page &"),
    ("  <@UBOT1>  ", ""),
])
def test_plain_question_strips_the_mention_and_slack_markup(raw, expected):
    assert plain_question(raw, "UBOT1") == expected


@pytest.mark.parametrize("value", ["", "nope", '{"answer_id": "x", "vote": "up"}', '{"answer_id": 1, "vote": "meh"}',
                                   '{"vote": "up"}', "[1, 2]"])
def test_feedback_values_that_are_not_ours_are_rejected(value):
    with pytest.raises((ValueError, KeyError, TypeError)):
        parse_feedback_value(value)
