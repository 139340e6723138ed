"""Sentence splitting for Chinese and English text.

Sentences serve twice: their vectors let search reward one precise match inside a
long passage, and the best of them make the extractive answer. An FAQ's question
line ("Q3: 如何…？") or a list's lead-in ("…以下几个方面：") is good evidence for
search but says nothing as a quote, so `is_quotable` keeps those out of answers.
"""
from __future__ import annotations

import re

SENTENCE_END = re.compile(r"(?<=[。！？；!?])|(?<=[.;])\s+(?=[A-Z\"'(])")
LIST_MARKER = re.compile(r"^\s*(?:[-*+]\s+|\d+[.)、]\s*)")
HEADING_LINE = re.compile(r"^\s*#{1,6}\s")
FAQ_QUESTION = re.compile(r"^\s*\**\s*Q\d+\s*[:：]")
ANSWER_LABEL = re.compile(r"^\s*A\s*[:：]\s*")
LEAD_IN_END = ("：", ":")  # "以下几个方面：" introduces a list; it says nothing by itself
MIN_CHARS = 8


def clean_markup(text: str) -> str:
    """Drop Markdown emphasis and list markers, which read as noise in a quote."""
    text = LIST_MARKER.sub("", text)
    return text.replace("**", "").replace("__", "").strip()


def split_sentences(text: str) -> list[str]:
    """Sentences of prose, skipping headings, code fences and very short fragments."""
    sentences: list[str] = []
    in_fence = False
    for line in text.splitlines():
        if line.strip().startswith(("```", "~~~")):
            in_fence = not in_fence
            continue
        if in_fence or HEADING_LINE.match(line) or not line.strip():
            continue
        for part in SENTENCE_END.split(ANSWER_LABEL.sub("", line)):
            part = clean_markup(part or "")
            if len(part) >= MIN_CHARS and not part.startswith(("$$", "|")):
                sentences.append(part)
    return sentences


def is_quotable(sentence: str) -> bool:
    """Whether a sentence can stand alone in an answer (not a question line or a lead-in)."""
    return not FAQ_QUESTION.match(sentence) and not sentence.endswith(LEAD_IN_END)
