"""Declining questions the documents don't cover.

Raw cosine scores from e5 do not separate on- and off-topic questions here (both
tops sit around 0.75-0.85). What does: compare the best knowledge-base score with
the best score against a broad background set of everyday, workplace and
technology sentences (`prompts/offtopic_background.txt`). A question closer to
"how do I reset my VPN password" than to any passage is not one the documents answer.

The knowledge-base score is the best of three views: chunks, their sentences, and
their English glosses. A question in another language than the documents still
scores lower against them than against same-language background sentences, so
cross-lingual questions get their own (lower) margin.

A question that names something the documents never mention ("Apache 2.0 vs MIT",
"Kubernetes", "A100") asks about that thing; passages on neighbouring topics
(开源协议) score close to it all the same. Such a question must clear a higher margin; one
that clears most of it is answered as partial, saying first what the documents never mention.
Ordinals ("the 2nd article") and everyday abbreviations ("our CFO", "for the PPT") are not
names of things asked about.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import yaml

from knowledge.language import CJK
from retrieval.search import SearchResult
from strategy_bot.settings import PROMPTS_DIR

LATIN_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+#\-]*[A-Za-z0-9+#]|[A-Za-z0-9]")
SENTENCE_START = re.compile(r"(?:^|[.?!。？！]\s*)[\"'“‘(]*")  # ends where a sentence's first word begins
TITLE = re.compile(r"《([^《》]{1,60})》")  # a Chinese title: a book, a law, a course
ORDINAL = re.compile(r"\d+(?:st|nd|rd|th)", re.IGNORECASE)
ABBREVIATIONS_FILE = PROMPTS_DIR / "everyday_abbreviations.yaml"
CHINESE_NAMES_FILE = PROMPTS_DIR / "chinese_names.yaml"


@lru_cache(maxsize=1)
def everyday_abbreviations() -> frozenset[str]:
    """Roles, formats and chat shorthand (prompts/everyday_abbreviations.yaml): capitals that
    say who asks or what for, not a thing the documents would have to mention."""
    data = yaml.safe_load(ABBREVIATIONS_FILE.read_text(encoding="utf-8"))
    return frozenset(str(word).upper() for group in data.values() for word in group)


@dataclass(frozen=True)
class DeclinePolicy:
    same_language_margin: float
    cross_lingual_margin: float
    unknown_name_margin: float  # added to the margin when the question names what the documents never do
    unknown_name_partial_margin: float = 0.0  # from here up to unknown_name_margin: a partial answer
    heading_relief: float = 0.0  # taken off the margin when the best passage's heading names the question's topic


def margin(result: SearchResult) -> float:
    """How much closer the question is to the documents than to everyday topics."""
    return result.best_dense - result.best_background


def base_margin(policy: DeclinePolicy, cross_lingual: bool) -> float:
    """The margin a question must clear before any unknown name raises it."""
    return policy.cross_lingual_margin if cross_lingual else policy.same_language_margin


def should_decline(result: SearchResult, policy: DeclinePolicy, *, cross_lingual: bool,
                   unknown: list[str] | tuple[str, ...] = (), heading_named: bool = False) -> bool:
    """True when the background set explains the question about as well as the documents.

    `heading_named`: the best passage's own heading names what the question is about ("有什么入门
    学习资料可以看？" and "7.1 学习资源推荐"): a section on exactly that is evidence the documents
    cover it, which a short everyday-sounding question's margin alone does not show."""
    if not result.hits:
        return True
    required = base_margin(policy, cross_lingual)
    if unknown:
        required += policy.unknown_name_margin
    elif heading_named:
        required -= policy.heading_relief
    return margin(result) < required


@lru_cache(maxsize=1)
def chinese_names() -> tuple[str, ...]:
    """Chinese company and model names (prompts/chinese_names.yaml), longest first, so that
    "阿里巴巴" is found before "阿里"."""
    data = yaml.safe_load(CHINESE_NAMES_FILE.read_text(encoding="utf-8"))
    return tuple(sorted({str(n) for group in data.values() for n in group}, key=len, reverse=True))


def answers_in_part(result: SearchResult, policy: DeclinePolicy, *, cross_lingual: bool) -> bool:
    """For a question naming what the documents never mention, that `should_decline` declined:
    whether it is close enough to the documents for "they don't mention X; the closest they say
    is …" (a partial answer) rather than a bare decline."""
    required = base_margin(policy, cross_lingual) + policy.unknown_name_partial_margin
    return bool(result.hits) and margin(result) >= required


def is_name(token: str, at_sentence_start: bool, in_chinese: bool) -> bool:
    """A product, company, standard or model name: "MIT", "Kubernetes", "A100", "GPT-4".

    Capitals are the cue, except for an English sentence's first word ("What", "Should");
    a Chinese question has no such first word. Plain numbers ("2018") and "I" are not names.
    """
    if len(token) < 2 or not any(c.isalpha() for c in token) or ORDINAL.fullmatch(token):  # "I", "2018", "2nd"
        return False
    if token.upper() in everyday_abbreviations():  # "our CFO asks…", "for the PPT": not what is asked about
        return False
    if any(c.isdigit() for c in token) or (token.isupper() and len(token) > 1):
        return True
    return token[0].isupper() and (in_chinese or not at_sentence_start)


def unknown_names(question: str, mentions: Callable[[str], bool]) -> list[str]:
    """Names in the question that the documents never mention (`mentions` asks the corpus).

    Latin-script names are found by their capitals or digits; Chinese names when quoted as
    titles (《生成式人工智能服务管理暂行办法》) or listed in prompts/chinese_names.yaml (通义千问):
    jieba cannot tell a product name from other words.
    """
    in_chinese = bool(CJK.search(question))
    names = [title for title in TITLE.findall(question) if not mentions(title)]
    question = TITLE.sub(" ", question)
    for name in chinese_names():  # a listed Chinese name, unless part of a longer one already found
        if name in question and not mentions(name) and not any(name in found for found in names):
            names.append(name)
    first_words = {m.end() for m in SENTENCE_START.finditer(question)}  # one pass, not one per word
    for match in LATIN_TOKEN.finditer(question):
        start = match.start() in first_words
        parts = [p for p in re.split(r"-", match.group(0)) if p]
        candidates = [p for i, p in enumerate(parts) if is_name(p, start and i == 0, in_chinese)]
        names.extend(p for p in candidates if not mentions(p) and p not in names)
    return names
