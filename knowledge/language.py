"""Telling Chinese from English text (the two languages the knowledge base has today)."""
from __future__ import annotations

import re

# Chinese characters: CJK Unified Ideographs and Extension A. Every pattern that looks for
# Chinese text builds on this one range (tokens, sentence and chunk rules, declining).
CJK_FIRST, CJK_LAST = "\u3400", "\u9fff"
CJK_RANGE = f"{CJK_FIRST}-{CJK_LAST}"  # for a regex character class
CJK = re.compile(f"[{CJK_RANGE}]")


def is_cjk(char: str) -> bool:
    """Whether one character is Chinese (a token's first character tells its kind)."""
    return CJK_FIRST <= char <= CJK_LAST


def language_of(text: str) -> str:
    """'zh' when a fair share of the letters are Chinese, else 'en'."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return "en"
    return "zh" if sum(1 for c in letters if CJK.match(c)) / len(letters) >= 0.2 else "en"
