"""Checking a model's answer sentence by sentence: is each claim supported by a passage it cites?

A valid `[n]` only says the number is in range: a small model cites [1] after a fact it
invented, labels a copied sentence with the wrong number, or numbers a list [1] [2] [3].
So the answer is split into sentences, and each claim sentence is kept only when

- it cites at least one given passage (list numbering at line starts is not a citation),
- the embedder finds it close enough to some sentence of a cited passage (or to that
  sentence's reviewed rendering, so an English sentence rendering a Chinese one is
  measured English to English),
- no passage it does *not* cite matches it clearly better (a right sentence, wrong number),
- every figure in it (2.0, 175, 1.5) appears in a cited passage.

A sentence saying the passages don't answer is a decline, kept without a citation; a short
lead-in ending in a colon is kept when a claim after it is. The thresholds, the decline
phrases and the figures that justified them live in prompts/llm_answer.yaml (`support`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from knowledge.language import language_of
from retrieval.citation_check import MARKER, marker_numbers, strip_thinking
from retrieval.similarity import as_float64, exact

if TYPE_CHECKING:
    from retrieval.answer import Citation

CLAIM, DECLINE, LEAD_IN, EMPTY = "claim", "decline", "lead_in", "empty"
# A sentence ends at 。！？!? or at a full stop followed by space, a marker or the end (not "2.0"),
# and takes the markers written right after its end ("It is cheap. [1]").
ONE_MARKER = r"[ \t]*[\[【]\s*\d+(?:\s*[,，、;；\-–]\s*\d+)*\s*[\]】]"
SENTENCE_END = re.compile(rf"(?:[。！？!?]+|\.(?=\s|$|[\[【]))(?:{ONE_MARKER})*")
LEADING_MARKERS = re.compile(rf"^(?:{ONE_MARKER})+[ \t]*")
ABBREVIATION = re.compile(r"\b(?:vs|e\.g|i\.e|etc|cf|approx|incl|no|Mr|Ms|Dr)\.$", re.IGNORECASE)  # no end
BULLET = re.compile(r"^\s*(?:[-*+•]\s+|\d+[.)、]\s+)")
FIGURE = re.compile(r"\d+(?:[.,]\d+)+|\d{2,}")
TOKEN = re.compile(r"[a-z0-9]+|[\u4e00-\u9fff]")
WORD = re.compile(r"[A-Za-z\u4e00-\u9fff]")
CJK_END = ("。", "！", "？", "；", "：")


@dataclass(frozen=True)
class SupportPolicy:
    """The tuned numbers and phrases of prompts/llm_answer.yaml's `support` section."""

    thresholds: dict[str, float]  # by the claim's language: least cosine with a sentence of a cited passage
    miscite_margin: float  # an uncited passage matching this much better means the number is wrong
    copy_overlap: float  # a sentence sharing this share of character pairs with another passage copies it
    min_kept_share: float  # fewer of the claims left than this: the extractive answer is served
    lead_in_chars: int  # an uncited line ending in a colon up to this long introduces a list
    declines: tuple[re.Pattern[str], ...]

    @classmethod
    def from_prompts(cls, prompts: dict) -> "SupportPolicy":
        s = prompts["support"]
        return cls({k: float(v) for k, v in s["threshold"].items()}, float(s["miscite_margin"]),
                   float(s["copy_overlap"]), float(s["min_kept_share"]), int(s["lead_in_chars"]),
                   tuple(re.compile(p, re.IGNORECASE) for p in s["declines"]))

    def threshold(self, text: str) -> float:
        return self.thresholds.get(language_of(text), max(self.thresholds.values()))


@dataclass(frozen=True)
class Sentence:
    """One sentence of the model's answer, as written (`raw`) and without markers (`text`)."""

    raw: str
    text: str
    cited: tuple[int, ...]  # the passage numbers its markers name, in order (not yet checked)
    line: int  # which line of the answer it is on
    bullet: str  # the list bullet its line starts with ("- "), kept on the first sentence of the line


@dataclass(frozen=True)
class Evidence:
    """A passage's sentences (and their reviewed renderings) with their vectors, for support scores."""

    n: int  # its citation number in the prompt
    texts: tuple[str, ...]
    vectors: np.ndarray  # one normalised row per text (float64)
    originals: tuple[str, ...] = ()  # the document sentence each text is or renders (default: the text)

    def original(self, i: int) -> str:
        return self.originals[i] if self.originals else self.texts[i]


@dataclass(frozen=True)
class Verdict:
    sentence: Sentence
    kind: str  # CLAIM, DECLINE, LEAD_IN or EMPTY
    keep: bool
    passages: tuple[int, ...] = ()  # the cited passages that support it, in the order cited
    reason: str = ""  # why it was dropped: uncited, unsupported, miscited, figure
    support: float = 0.0
    grounds: str = ""  # the document sentence that supports it best, as written (a kept claim)


def split_sentences(text: str) -> list[Sentence]:
    """The answer's sentences. Leading `[1]`, `[2]`… on consecutive lines numbered in sequence
    are list numbering and dropped; other leading markers cite the sentence they open."""
    lines = [line for line in strip_thinking(text).splitlines()]
    numbering = _is_numbering(lines)
    sentences: list[Sentence] = []
    for number, line in enumerate(lines):
        bullet_match = BULLET.match(line)
        bullet = bullet_match.group(0).strip() + " " if bullet_match else ""
        body = line[bullet_match.end():] if bullet_match else line
        if numbering:
            body = LEADING_MARKERS.sub("", body, count=1)
        start = 0
        ends = [m.end() for m in SENTENCE_END.finditer(body) if not ABBREVIATION.search(body, 0, m.end())]
        for end in ends + [len(body)]:
            raw = body[start:end].strip()
            start = max(start, end)
            if raw:
                sentences.append(_sentence(raw, number, bullet if not _on_line(sentences, number) else ""))
    return sentences


def complete(sentences: list[Sentence], ended: bool) -> list[Sentence]:
    """The sentences of a reply that are finished: all when it ended, else all but a last one
    that does not close with its full stop yet (a reply cut at the cap or the deadline)."""
    if ended or not sentences:
        return sentences
    last = sentences[-1]
    closed = SENTENCE_END.search(last.raw)
    return sentences if closed and closed.end() == len(last.raw) else sentences[:-1]


def _on_line(sentences: list[Sentence], line: int) -> bool:
    return bool(sentences) and sentences[-1].line == line


def _sentence(raw: str, line: int, bullet: str) -> Sentence:
    cited = [n for m in MARKER.finditer(raw) for n in marker_numbers(m.group("body"))]
    text = " ".join(MARKER.sub("", raw).split())
    return Sentence(raw=raw, text=text, cited=tuple(dict.fromkeys(cited)), line=line, bullet=bullet)


def _is_numbering(lines: Sequence[str]) -> bool:
    """Whether lines open with [1], [2], [3]… in sequence (a numbered list, not citations)."""
    firsts = []
    for line in lines:
        match = LEADING_MARKERS.match(line) if line.strip() else None
        if line.strip() and match:
            numbers = marker_numbers(MARKER.search(match.group(0)).group("body"))
            firsts.append(numbers[0] if numbers else 0)
    return len(firsts) >= 2 and firsts == list(range(1, len(firsts) + 1))


class SupportChecker:
    """Judges sentences against the passages' evidence; `embed` turns claims into vectors
    (the knowledge base's embedder, as questions are embedded, so the scores are those search uses)."""

    def __init__(self, policy: SupportPolicy, embed: Callable[[list[str]], np.ndarray],
                 evidence: "Callable[[Sequence[Citation]], list[Evidence]]") -> None:
        self.policy = policy
        self.embed = embed
        self.evidence = evidence  # the passages' sentences and vectors (the index holds them: no embedding)

    def kind(self, sentence: Sentence) -> str:
        if not WORD.search(sentence.text):
            return EMPTY
        if not sentence.cited and any(p.search(sentence.text) for p in self.policy.declines):
            return DECLINE
        if not sentence.cited and sentence.text.endswith((":", "：")) \
                and len(sentence.text) <= self.policy.lead_in_chars:
            return LEAD_IN
        return CLAIM

    def judge(self, sentences: Sequence[Sentence], evidence: Sequence[Evidence]) -> list[Verdict]:
        """A verdict per sentence; the claims that cite a given passage are embedded in one batch."""
        by_n = {e.n: e for e in evidence}
        kinds = [self.kind(s) for s in sentences]
        claims = [i for i, (s, k) in enumerate(zip(sentences, kinds))
                  if k == CLAIM and any(n in by_n for n in s.cited)]
        vectors = self.embed([sentences[i].text for i in claims]) if claims else np.zeros((0, 1))
        vector_of = dict(zip(claims, vectors))
        verdicts = []
        for i, (sentence, kind) in enumerate(zip(sentences, kinds)):
            if kind != CLAIM:
                verdicts.append(Verdict(sentence, kind, keep=kind in (DECLINE, LEAD_IN)))
            elif i not in vector_of:
                verdicts.append(Verdict(sentence, kind, keep=False, reason="uncited"))
            else:
                verdicts.append(self._claim(sentence, vector_of[i], by_n))
        return verdicts

    def _claim(self, sentence: Sentence, vector: np.ndarray, by_n: dict[int, Evidence]) -> Verdict:
        scores = {n: _best(e, vector) for n, e in by_n.items()}
        cited = [n for n in sentence.cited if n in by_n]
        best_cited = max(scores[n] for n in cited)
        threshold = self.policy.threshold(sentence.text)
        supporting = tuple(n for n in cited if scores[n] >= threshold)
        best_other = max((s for n, s in scores.items() if n not in cited), default=-1.0)
        if not supporting:
            return Verdict(sentence, CLAIM, False, reason="unsupported", support=best_cited)
        if best_other - best_cited > self.policy.miscite_margin or self._copies_other(sentence, cited, by_n):
            return Verdict(sentence, CLAIM, False, reason="miscited", support=best_cited)
        if _unsupported_figure(sentence.text, [by_n[n] for n in supporting]):
            return Verdict(sentence, CLAIM, False, reason="figure", support=best_cited)
        evidence = max((by_n[n] for n in supporting), key=lambda e: _best(e, vector))
        grounds = evidence.original(int(np.argmax(evidence.vectors @ np.asarray(vector, dtype=np.float64))))
        return Verdict(sentence, CLAIM, True, passages=supporting, support=best_cited, grounds=grounds)


    def _copies_other(self, sentence: Sentence, cited: list[int], by_n: dict[int, Evidence]) -> bool:
        """A sentence copied from a passage it does not cite (the embedder scores a copy only a
        little above a sentence on the same topic: the characters tell)."""
        pairs = _pairs(sentence.text)
        overlap = {n: max((_contained(pairs, _pairs(t)) for t in e.texts), default=0.0) for n, e in by_n.items()}
        other = max((o for n, o in overlap.items() if n not in cited), default=0.0)
        return other >= self.policy.copy_overlap and other > max(overlap[n] for n in cited)


def _pairs(text: str) -> set[tuple[str, str]]:
    """Pairs of consecutive words (English) or characters (Chinese): what a copy shares with its original."""
    tokens = TOKEN.findall(text.lower())
    return set(zip(tokens, tokens[1:]))


def _contained(claim: set[tuple[str, str]], source: set[tuple[str, str]]) -> float:
    """The share of the claim's character pairs found in `source` (a copy: close to 1)."""
    return len(claim & source) / len(claim) if claim else 0.0


def _best(evidence: Evidence, vector: np.ndarray) -> float:
    if not len(evidence.vectors):
        return -1.0
    return float(np.max(exact(evidence.vectors @ np.asarray(vector, dtype=np.float64))))


def _unsupported_figure(text: str, evidence: Sequence[Evidence]) -> bool:
    """A figure (2.0, 175, 1,024) the cited passages never write: models invent figures most."""
    haystack = " ".join(t for e in evidence for t in e.texts).replace(",", "")
    return any(figure.replace(",", "") not in haystack for figure in FIGURE.findall(text))


def evidence_of(n: int, texts: Sequence[str], vectors: np.ndarray, originals: Sequence[str] = ()) -> Evidence:
    return Evidence(n=n, texts=tuple(texts), vectors=as_float64(vectors), originals=tuple(originals))


def joined(previous: str, shown: str, new_line: bool) -> str:
    """`previous` followed by a sentence as the answer shows it: on a new line where the model
    started one, else after a space (none after Chinese punctuation)."""
    if not previous:
        return shown
    if new_line:
        return f"{previous}\n{shown}"
    return previous + ("" if previous.endswith(CJK_END) else " ") + shown


def rewrite_markers(raw: str, kept: Sequence[int], number: dict[int, int]) -> str:
    """`raw` with each marker naming only the kept passages, by their new numbers (none left: removed)."""
    def rewrite(match: re.Match[str]) -> str:
        numbers = [number[n] for n in dict.fromkeys(marker_numbers(match.group("body"))) if n in kept]
        return match.group("space") + "".join(f"[{n}]" for n in numbers) if numbers else ""

    return MARKER.sub(rewrite, raw).strip()
