"""The answer message: the answer, its sources with quoted snippets, and feedback buttons.

Layout (Block Kit):
    section   the answer (or the "not covered" notice), split if longer than one block allows
    section   *Sources*  (or "The closest sections are:" when the bot declined)
    section   *[n] Title › section*  + a quoted snippet, one block per source
    context_actions   Slack's native 👍 / 👎 (a feedback_buttons element), whose values name the answer they rate

Slack refuses a message with a section over 3,000 characters or over 50 blocks, so
every piece is escaped first and then trimmed to fit: a huge passage makes a shorter
quote, never a failed post.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from slack_sdk.models.blocks import ContextActionsBlock, FeedbackButtonObject, FeedbackButtonsElement, PlainTextObject

from bot.blocks.text import MAX_BLOCKS, SECTION_TEXT_LIMIT, escape, one_line, section, slack_texts, trim
from retrieval.answer import Answer, Citation, load_templates

FEEDBACK_BLOCK_ID = "answer_feedback"
FEEDBACK_ACTION_PREFIX = "answer_feedback_"  # answer_feedback_up / _down: the classic buttons of older answers
FEEDBACK_ACTION_ID = "answer_feedback"  # the feedback_buttons element: which vote is in its value


@dataclass(frozen=True)
class Message:
    """What chat.postMessage / chat.update take: the notification text and the blocks."""

    text: str
    blocks: list[dict]


def answer_message(answer: Answer, answer_id: int) -> Message:
    """The full reply to a question; `answer_id` is what the feedback buttons report back."""
    limits = slack_texts()["limits"]
    body = answer_sections(answer.answer, limits)
    listed = answer.closest if answer.abstained else answer.citations
    tail = [feedback_actions(answer_id)]
    used = {quote.n for quote in answer.quotes}
    further = [c for c in listed if used and c.n not in used]  # passages the answer does not quote
    room = MAX_BLOCKS - len(body) - len(tail) - 1 - (1 if further else 0)
    originals = translated_originals(answer)
    shown = listed[: max(room, 0)]
    sources = [source_block(c, limits, originals.get(c.n)) for c in shown if c not in further]
    see_also = [source_block(c, limits) for c in shown if c in further]
    heading = [section(f"*{escape(sources_heading(answer))}*")] if sources else []
    see_also_heading = [section(f"*{escape(template_for(answer, 'see_also'))}*")] if see_also else []
    return Message(text=notification_text(answer.answer, limits["notification_chars"]),
                   blocks=[*body, *heading, *sources, *see_also_heading, *see_also, *tail])


def draft_message(text: str) -> Message:
    """An answer still being written (LLM streaming): its text so far, cut to Slack's limits."""
    limits = slack_texts()["limits"]
    return Message(text=notification_text(text, limits["notification_chars"]),
                   blocks=answer_sections(f"{text} {ELLIPSIS_ONLY}", limits))


def sources_heading(answer: Answer) -> str:
    return template_for(answer, "closest_intro" if answer.abstained else "sources_heading")


def template_for(answer: Answer, key: str) -> str:
    """An answer template in the answer's language (English when it has none in that language)."""
    texts = load_templates()[key]
    return texts.get(answer.language, texts["en"])


def answer_sections(text: str, limits: dict) -> list[dict]:
    """The answer's lines, escaped and cut, packed into as few sections as Slack allows."""
    lines = [trim(escape(piece), limits["answer_line_chars"]) for line in text.splitlines() if line.strip()
             for piece in sentence_pieces(line, limits["answer_line_chars"])]
    chunks: list[str] = []
    for line in lines or [ELLIPSIS_ONLY]:
        if chunks and len(chunks[-1]) + 1 + len(line) <= SECTION_TEXT_LIMIT:
            chunks[-1] += "\n" + line
        else:
            chunks.append(trim(line, SECTION_TEXT_LIMIT))
    return [section(chunk) for chunk in chunks[: limits["answer_sections"]]]


ELLIPSIS_ONLY = "…"
# A sentence with its closing punctuation and the [n] markers that follow it.
SENTENCE = re.compile(r"[^.!?。！？]+(?:[.!?。！？]+(?:\s*\[\d+\])*\s*|$)|[.!?。！？]+\s*")


def sentence_pieces(line: str, limit: int) -> list[str]:
    """A line over `limit` (an LLM answer's paragraph) split between sentences: only a sentence
    that alone is too long gets cut, not the rest of the paragraph with its citations."""
    if len(line) <= limit:
        return [line]
    pieces = [""]
    for sentence in SENTENCE.findall(line):
        if pieces[-1] and len(pieces[-1]) + len(sentence) > limit:
            pieces.append("")
        pieces[-1] += sentence
    return [piece.strip() for piece in pieces if piece.strip()]


def translated_originals(answer: Answer) -> dict[int, str]:
    """For each citation whose sentences the answer shows in translation, those sentences as
    written: the reader checks a translated quote against its original one line below it."""
    originals: dict[int, list[str]] = {}
    for quote in answer.quotes:
        if quote.text != quote.source:
            originals.setdefault(quote.n, []).append(quote.source)
    return {n: " … ".join(sources) for n, sources in originals.items()}


def source_block(citation: Citation, limits: dict, original: str | None = None) -> dict:
    """`*[n] Title › section*` and a one-line quote: the original of what the answer translated
    from this passage, else the passage's opening; within one section's limit."""
    line = load_templates()["citation_line"].format(
        n=citation.n,
        title=trim(escape(one_line(citation.title)), limits["heading_chars"]),
        section=trim(escape(one_line(citation.section)), limits["heading_chars"]),
    )
    head = f"*{line}*"
    room = SECTION_TEXT_LIMIT - len(head) - 2
    quote = trim(escape(one_line(original or citation.text)), min(limits["quote_chars"], room))
    return section(f"{head}\n>{quote}" if quote else head)


def feedback_actions(answer_id: int) -> dict:
    """Slack's native feedback buttons (a context_actions block), built with slack_sdk's models so
    the limits (75-character labels, 2,000-character values) are checked here, not by a refused post."""
    texts = slack_texts()
    labels, spoken = texts["feedback_buttons"], texts["feedback_accessibility"]

    def button(vote: str) -> FeedbackButtonObject:
        return FeedbackButtonObject(text=PlainTextObject(text=labels[vote], emoji=True),
                                    accessibility_label=spoken[vote],
                                    value=json.dumps({"answer_id": answer_id, "vote": vote}))

    element = FeedbackButtonsElement(action_id=FEEDBACK_ACTION_ID, positive_button=button("up"),
                                     negative_button=button("down"))
    return ContextActionsBlock(block_id=FEEDBACK_BLOCK_ID, elements=[element]).to_dict()


def notification_text(answer_text: str, limit: int) -> str:
    """The plain fallback Slack shows in notifications and to screen readers."""
    first = next((line for line in answer_text.splitlines() if line.strip()), "")
    return trim(escape(first), limit) or ELLIPSIS_ONLY


def simple_message(text: str) -> Message:
    """A one-section message from text that is already safe mrkdwn (our own templates)."""
    return Message(text=text, blocks=[section(trim(text, SECTION_TEXT_LIMIT))])


def parse_feedback_value(value: str) -> tuple[int, str]:
    """(answer_id, vote) from a feedback button's value; ValueError when it is not ours."""
    data = json.loads(value)
    answer_id, vote = int(data["answer_id"]), str(data["vote"])
    if vote not in ("up", "down"):
        raise ValueError(f"unknown vote {vote!r}")
    return answer_id, vote
