"""Sentence splitting for Chinese and English text.

Sentences serve twice: their vectors let search reward one precise match inside a
long passage, and the best of them make the extractive answer. An FAQ's question
line ("Q3: 如何…？") or a list's lead-in ("…以下几个方面：") is good evidence for
search but says nothing as a quote, so `is_quotable` keeps those out of answers.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

SENTENCE_END = re.compile(r"(?<=[。！？；!?])|(?<=[.;])\s+(?=[A-Z\"'(])")
LIST_MARKER = re.compile(r"^\s*(?:[-*+]\s+|\d+[.)、]\s*)")
HEADING_LINE = re.compile(r"^\s*#{1,6}\s")
FAQ_QUESTION = re.compile(r"^\s*\**\s*Q\d+\s*[:：]")
ANSWER_LABEL = re.compile(r"^\s*A\s*[:：]\s*")
LEAD_IN_END = ("：", ":")  # "以下几个方面：" introduces a list; it says nothing by itself
MIN_CHARS = 8
MAX_LABEL_CHARS = 24  # longer lines ending in a colon are lead-in sentences, not labels
ITEM_LEAD = re.compile(r"^([^：:。！？!?]{2,24})[：:]")  # "高可达性：任何人…" -> "高可达性"


def clean_markup(text: str) -> str:
    """Drop Markdown emphasis and list markers, which read as noise in a quote."""
    text = LIST_MARKER.sub("", text)
    return text.replace("**", "").replace("__", "").strip()


@dataclass(frozen=True)
class Sentence:
    text: str
    context: tuple[str, ...] = ()  # the labels of the lists it sits in ("开源模式", "优点")

    def embedding_text(self) -> str:
        """What search embeds: the sentence under its labels, so that "任何人都可以免费使用"
        inside "开源模式 › 优点" can be found by "upsides of open source"."""
        return f"{' › '.join(self.context)}：{self.text}" if self.context else self.text


def split_sentences(text: str) -> list[str]:
    """Sentences of prose, skipping headings, code fences and very short fragments."""
    return [s.text for s in sentences_in_context(text)]


def sentences_in_context(text: str) -> list[Sentence]:
    """Sentences of prose, each with the labels of the lists around it.

    A label is a short line ending in a colon ("**优点**：", "- **Closed source**:"):
    it heads the lines after it until a label at the same or a shallower indent, or
    a plain paragraph at its indent, ends it. A list item's own lead ("**高可达性**：…")
    labels the item's later sentences. Why: list items of strategy documents lose
    their meaning out of their list, and sentence views are searched on their own.
    """
    sentences: list[Sentence] = []
    labels: list[tuple[int, str]] = []  # (indent, label), outermost first
    in_fence = False
    for line in text.splitlines():
        if line.strip().startswith(("```", "~~~")):
            in_fence = not in_fence
            continue
        if in_fence or HEADING_LINE.match(line) or not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        label = list_label(line)
        if label is not None or not LIST_MARKER.match(line):
            labels = [(i, t) for i, t in labels if i < indent]
        if label is not None:
            labels.append((indent, label))
            continue
        context = tuple(t for _, t in labels)
        item_lead = ITEM_LEAD.match(clean_markup(line))
        for n, part in enumerate(SENTENCE_END.split(ANSWER_LABEL.sub("", line))):
            part = clean_markup(part or "")
            if len(part) >= MIN_CHARS and not part.startswith(("$$", "|")):
                lead = (item_lead.group(1),) if item_lead and n > 0 else ()
                sentences.append(Sentence(part, context + lead))
    return sentences


def list_label(line: str) -> str | None:
    """The label a line introduces ("优点" for "  **优点**："), or None for other lines."""
    text = clean_markup(line)
    if text.endswith(LEAD_IN_END) and len(text) <= MAX_LABEL_CHARS:
        return text.rstrip("：: ").strip() or None
    return None


def is_quotable(sentence: str) -> bool:
    """Whether a sentence can stand alone in an answer (not a question line or a lead-in)."""
    return not FAQ_QUESTION.match(sentence) and not sentence.endswith(LEAD_IN_END)
