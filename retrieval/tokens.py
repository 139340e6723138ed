"""Cutting text into words: jieba for Chinese runs, lower-cased words for the rest.

The one home of tokenisation, shared by BM25 (lexical.py), the English-to-Chinese term map
and the passage glosses (crosslingual.py), and the decision report's word overlap.

bm25s's default token pattern and LangChain's `BM25Retriever` treat a whole Chinese
clause as one token, so Chinese is cut with jieba (search mode, which also emits the
sub-words of long compounds) and English words are lower-cased.
"""
from __future__ import annotations

import logging
import re
import threading

from knowledge.language import CJK_RANGE, is_cjk

TOKEN = re.compile(rf"[a-z0-9][a-z0-9+#.\-]*|[{CJK_RANGE}]+")
CHINESE_RUN = re.compile(f"[{CJK_RANGE}]+")
STOPWORDS = frozenset(
    """a an the and or of to in on for with by at from is are was were be been being do does did
    how what which who whom why when where can could should would will shall may might must this that
    these those it its we our us you your i me my they them their he she his her not no yes if than then
    so as about into over under more most less vs versus there here any some all each also just
    的 了 和 与 及 或 是 在 对 为 中 有 也 都 而 并 等 如何 什么 怎么 怎样 哪些 吗 呢 吧 啊
    我们 你们 他们 这 那 这些 那些 一个 一些 可以 以及 其 之 于 被 把 将 让 给 从 到 会 能 要
    就 还 又 很 更 最 其中 进行 通过 问题""".split()
)

_jieba_lock = threading.Lock()
_jieba = None


def _cutter():
    """jieba, initialised once (it loads a dictionary of ~0.5 s on first use)."""
    global _jieba
    with _jieba_lock:
        if _jieba is None:
            import jieba

            jieba.setLogLevel(logging.WARNING)
            jieba.initialize()
            _jieba = jieba
    return _jieba


def is_chinese(token: str) -> bool:
    """A token is Chinese or not as a whole (TOKEN never mixes scripts)."""
    return bool(token) and is_cjk(token[0])


def cut_words(text: str) -> list[str]:
    """jieba's plain segmentation (one reading of the text, for glossing)."""
    return [w for w in _cutter().cut(text) if w.strip()]


def chinese_words(texts: list[str]) -> set[str]:
    """Every Chinese word the texts contain, in both segmentations jieba offers."""
    words: set[str] = set()
    for text in texts:
        for piece in CHINESE_RUN.findall(text):
            words.update(_cutter().cut(piece))
            words.update(_cutter().cut_for_search(piece))
            words.update(piece)  # single characters, the gloss's fallback
    return words


def tokenize(text: str) -> list[str]:
    """Content tokens: jieba words for Chinese runs, lower-cased words for the rest."""
    tokens: list[str] = []
    for match in TOKEN.finditer(text.lower()):
        piece = match.group(0)
        if is_chinese(piece):
            tokens.extend(w for w in _cutter().cut_for_search(piece) if w.strip())
        else:
            tokens.append(piece.strip(".-"))
    return [t for t in tokens if t and t not in STOPWORDS]


def stem(word: str) -> str:
    """A light English stemmer: enough to meet 'advantages' and 'advantage' halfway."""
    word = word.strip("-'")
    for suffix, repl in (("ies", "y"), ("sses", "ss"), ("xes", "x"), ("ches", "ch"), ("shes", "sh")):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            return word[: -len(suffix)] + repl
    if word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 3:
        return word[:-1]
    return word
