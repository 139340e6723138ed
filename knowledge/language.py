"""Telling Chinese from English text (the two languages the knowledge base has today)."""
from __future__ import annotations

import re

CJK = re.compile(r"[\u3400-\u9fff]")


def language_of(text: str) -> str:
    """'zh' when a fair share of the letters are Chinese, else 'en'."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return "en"
    return "zh" if sum(1 for c in letters if CJK.match(c)) / len(letters) >= 0.2 else "en"
