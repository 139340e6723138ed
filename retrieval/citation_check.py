"""Checking a generated answer's `[n]` markers against the passages the model was given.

A model can cite a passage it was not shown (or a year, or a footnote). Every marker is
kept only for the numbers that name a given passage; a marker naming none is removed, so
what reaches the user cites only real passages. Which numbers survived tells the caller
whether the answer is grounded at all.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# [1] [1, 2] [1][3] [1-3] and the full-width 【1】 / 【1，2】 a model writing Chinese may use.
MARKER = re.compile(r"(?P<space>[ \t]*)[\[【]\s*(?P<body>\d+(?:\s*[,，、;；\-–]\s*\d+)*)\s*[\]】]")
SEPARATOR = re.compile(r"\s*[,，、;；]\s*")
RANGE = re.compile(r"(\d+)\s*[\-–]\s*(\d+)")
MAX_RANGE = 20  # "[1-999]" is not a citation of 999 passages
THINKING = re.compile(r"<think>.*?(</think>|$)", re.DOTALL)  # reasoning models' scratchpad, not the answer


@dataclass(frozen=True)
class Checked:
    text: str  # the answer with only valid markers left, written [n][m]
    cited: tuple[int, ...]  # the valid passage numbers, in order of first use
    removed: tuple[str, ...]  # the markers (or parts) that named no given passage


def marker_numbers(body: str) -> list[int]:
    """The passage numbers a marker's body names: "1, 3" -> [1, 3], "2-4" -> [2, 3, 4]."""
    numbers: list[int] = []
    for part in SEPARATOR.split(body):
        span = RANGE.fullmatch(part)
        if span:
            low, high = int(span.group(1)), int(span.group(2))
            numbers.extend(range(low, high + 1) if 0 <= high - low < MAX_RANGE else [low, high])
        elif part.isdigit():
            numbers.append(int(part))
    return numbers


def check_citations(text: str, passages: int) -> Checked:
    """Keep the markers that name passages 1..`passages`; drop the rest."""
    cited: list[int] = []
    removed: list[str] = []

    def rewrite(match: re.Match[str]) -> str:
        numbers = marker_numbers(match.group("body"))
        valid = [n for n in dict.fromkeys(numbers) if 1 <= n <= passages]
        if len(valid) < len(numbers):
            removed.append(match.group(0).strip())
        cited.extend(n for n in valid if n not in cited)
        return match.group("space") + "".join(f"[{n}]" for n in valid) if valid else ""

    cleaned = MARKER.sub(rewrite, strip_thinking(text))
    return Checked(text=cleaned.strip(), cited=tuple(cited), removed=tuple(removed))


def strip_thinking(text: str) -> str:
    """The text without `<think>…</think>` blocks (an unclosed one hides the rest, as while streaming)."""
    return THINKING.sub("", text)
