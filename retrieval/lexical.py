"""BM25 over properly tokenised Chinese and English (tokens.py).

The index is rebuilt from chunk texts at load time (milliseconds for a few hundred
chunks), so nothing of it is persisted and nothing needs unpickling.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Callable

import bm25s
import numpy as np

from retrieval.crosslingual import translate
from retrieval.tokens import STOPWORDS, is_chinese, stem, tokenize
from strategy_bot.tuning import default_tuning

logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every index build at DEBUG


def view_tokens(text: str) -> list[str]:
    """Tokens with English words stemmed: how the renderings view (renderings.py) is matched,
    so "advantages" in a question meets "advantage" in a rendering."""
    return [stem(t) if t.isascii() else t for t in tokenize(text)]


@dataclass(frozen=True)
class LexicalQuery:
    tokens: list[str]  # what BM25 scores: the query's own tokens plus translations
    coverage: float  # share of the query's words the corpus has (directly or translated)
    translated: list[str]  # corpus words that English query words were mapped to


class LexicalIndex:
    """BM25 scores for a fixed list of texts; positions match the vector store's."""

    def __init__(self, texts: list[str], term_map: dict[str, list[str]] | None = None,
                 synonym_map: dict[str, list[str]] | None = None,
                 tokenizer: Callable[[str], list[str]] = tokenize) -> None:
        self._size = len(texts)
        self.term_map = term_map or {}
        self.synonym_map = synonym_map or {}  # Chinese words the corpus lacks -> its synonyms (thesaurus.py)
        self._text = "\n".join(texts).lower()  # for names the tokens cannot show ("《…》" titles)
        self._bm25 = bm25s.BM25()
        corpus = [tokenizer(t) or ["\x00empty"] for t in texts]
        if corpus:
            self._bm25.index(corpus, show_progress=False)
        self.vocabulary = frozenset(token for doc in corpus for token in doc)
        # "gpt-3" is one token; a question's "GPT" is still mentioned
        self._latin_parts = frozenset(part for token in self.vocabulary if token.isascii()
                                      for part in re.split(r"[-.]", token) if part)

    def prepare(self, query: str, max_synonyms: int | None = None) -> "LexicalQuery":
        """Query tokens (English words also as the corpus's Chinese words) and coverage.

        A Chinese word the corpus lacks also asks for up to `max_synonyms` of its synonyms the
        corpus has (thesaurus.py; None: the number tuned in prompts/ranking.yaml).
        Coverage is the share of the query's content words that the corpus contains,
        directly or through the term map. An English question over Chinese documents
        without a translation matches almost nothing; its BM25 ranking is noise, and
        this number lets the fusion discount it.
        """
        if max_synonyms is None:
            max_synonyms = default_tuning().search.max_synonyms
        tokens = tokenize(query)
        translated, matched, english_words = translate(query, self.term_map, STOPWORDS)
        chinese = [t for t in tokens if is_chinese(t)]
        others = [t for t in tokens if not is_chinese(t)]
        direct = sum(1 for t in chinese if t in self.vocabulary)
        direct_other = sum(1 for t in others if t in self.vocabulary)
        total = len(chinese) + max(english_words, len(others))
        covered = direct + max(matched, direct_other)
        coverage = covered / total if total else 0.0
        translated = list(dict.fromkeys(t for t in translated if t in self.vocabulary))
        synonyms = [s for t in chinese if t not in self.vocabulary
                    for s in self.synonym_map.get(t, [])[:max_synonyms] if s in self.vocabulary]
        return LexicalQuery(tokens + translated + synonyms, min(coverage, 1.0), translated)

    def mentions(self, word: str) -> bool:
        """Whether the corpus has this English word or name (or a plural of it), in any case,
        or a Chinese word it translates to ("Google" -> 谷歌)."""
        lower = word.lower()
        if not lower.isascii():  # a Chinese title: is it in some passage, as written?
            return lower in self._text
        if lower in self.vocabulary or lower.rstrip("s") in self._latin_parts or lower in self._latin_parts:
            return True
        return stem(lower) in self.term_map

    def scores(self, query_tokens: list[str]) -> np.ndarray:
        if not self._size or not query_tokens:
            return np.zeros(self._size, dtype=np.float32)
        return np.asarray(self._bm25.get_scores(query_tokens), dtype=np.float32)

    def search(self, query_tokens: list[str], k: int) -> list[tuple[int, float]]:
        """(position, BM25 score) pairs, best first; zero-score hits are dropped."""
        scores = self.scores(query_tokens)
        order = np.argsort(-scores, kind="stable")[:k]
        return [(int(p), float(scores[p])) for p in order if scores[p] > 0]
