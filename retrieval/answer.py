"""Extractive answers: the most relevant sentences of the top passages, each cited.

Extractive is the default because it cannot say anything the documents do not:
every sentence of the answer is a sentence of a cited passage. Same input, same
output (ties are broken by position, never by chance).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import yaml

from knowledge.language import language_of
from knowledge.sentences import is_quotable
from retrieval.index_store import KnowledgeIndex
from retrieval.search import Hit, SearchResult
from retrieval.tokens import tokenize
from strategy_bot.settings import PROMPTS_DIR
from strategy_bot.tuning import AnswerTuning, default_tuning


@dataclass(frozen=True)
class Citation:
    n: int
    doc_id: str
    title: str
    section: str
    text: str
    score: float
    chunk_id: str


@dataclass
class Answer:
    """The JSON contract of `strategy-bot ask --json` and what the Slack bot renders."""

    question: str
    answer: str
    abstained: bool
    citations: list[Citation]
    timings_ms: dict[str, float] = field(default_factory=dict)
    language: str = "en"
    closest: list[Citation] = field(default_factory=list)  # shown when declining
    generated_by: str = "extractive"  # or "<provider>:<model>" when an LLM wrote it (see synthesis.py)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["timings_ms"] = {k: round(v, 2) for k, v in self.timings_ms.items()}
        return data


@lru_cache(maxsize=4)
def load_templates(path: Path = PROMPTS_DIR / "answers.yaml") -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def citation_for(n: int, hit: Hit) -> Citation:
    return Citation(n=n, doc_id=hit.chunk.doc_id, title=hit.chunk.title, section=hit.chunk.section,
                    text=hit.chunk.text, score=round(hit.dense, 4), chunk_id=hit.chunk.chunk_id)


@dataclass(frozen=True)
class Quotable:
    """A sentence of a retrieved passage that may be quoted, and how close it is to the question."""

    rank: int  # its passage's place in the search result (0: the best hit)
    row: int  # its place in the index's sentences (document order)
    text: str
    similarity: float  # cosine with the question, plus the word-overlap bonus when one is asked for


@dataclass(frozen=True)
class QuotedPassage:
    """A hit and its quotable sentence closest to the query (None: it has none, e.g. a code block)."""

    hit: Hit
    best: Quotable | None


def quotable_sentences(index: KnowledgeIndex, result: SearchResult, passages: int, *,
                       query_words: frozenset[str] = frozenset(), overlap_weight: float = 0.0) -> list[list[Quotable]]:
    """The quotable sentences of each of the top `passages` hits, scored against the question.

    The one place that reads sentences and their vectors out of the index: the extractive
    answer and the decision report's citations both quote from here. A sentence that uses
    the query's own words gains `overlap_weight` x the share of `query_words` it contains
    (e5 cosines of sentences of one passage sit close together; the words break near ties).
    """
    quoted: list[list[Quotable]] = []
    for rank, hit in enumerate(result.hits[:passages]):
        rows = index.sentences_of(hit.position)
        scores = index.sentence_vectors[rows] @ result.query_vector if rows else []
        sentences = []
        for row, score in zip(rows, scores):
            text = index.sentences[row]["text"]
            if not is_quotable(text):
                continue
            similarity = float(score)
            if query_words and overlap_weight:
                similarity += overlap_weight * (len(query_words & set(tokenize(text))) / len(query_words))
            sentences.append(Quotable(rank, row, text, similarity))
        quoted.append(sentences)
    return quoted


def pick_sentences(index: KnowledgeIndex, result: SearchResult, limit: int,
                   tuning: AnswerTuning | None = None) -> list[tuple[int, str]]:
    """(citation number, sentence) pairs: the best-matching sentences of the top passages.

    `tuning` (prompts/ranking.yaml `answer`): how many passages, how close to the best sentence
    another may be, and how much a lower passage's sentences are held back.
    """
    tuning = tuning or default_tuning().answer
    candidates: list[tuple[float, int, int, str]] = []
    for sentences in quotable_sentences(index, result, tuning.passages):
        for s in sentences:
            # A small bonus for the passage's rank keeps the answer anchored on the best hit.
            candidates.append((s.similarity - tuning.passage_rank_penalty * s.rank, s.rank + 1, s.row, s.text))
    if not candidates:
        return []
    candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
    best = candidates[0][0]
    chosen, seen = [], set()
    for score, n, row, text in candidates:
        if len(chosen) >= limit or score < best - tuning.sentence_slack:
            break
        if text not in seen:
            seen.add(text)
            chosen.append((n, row, text))
    chosen.sort(key=lambda c: (c[0], c[1]))
    return [(n, text) for n, _, text in chosen]


def compose(question: str, index: KnowledgeIndex, result: SearchResult, *, declined: bool,
            sentences: int, unknown_names: Sequence[str] = (), tuning: AnswerTuning | None = None) -> Answer:
    """Build the answer (or the decline) from a search result.

    A decline names what the documents never mention, when the question named it:
    "they never mention MIT" tells the asker more than "not covered".
    """
    templates = load_templates()
    language = language_of(question)
    citations = [citation_for(n, hit) for n, hit in enumerate(result.hits, start=1)]
    if declined:
        text = templates["declined"][language]
        if unknown_names:
            names = templates["name_separator"][language].join(unknown_names)
            text += templates["never_mentioned"][language].format(names=names)
        return Answer(question=question, answer=text, abstained=True,
                      citations=[], language=language, closest=citations[:3])
    picked = pick_sentences(index, result, sentences, tuning)
    if not picked:  # only code or headings matched: quote the top passage's opening
        top = result.hits[0].chunk.text.strip().splitlines()[0][:300]
        picked = [(1, top)]
    passages_zh = any(language_of(h.chunk.text) == "zh" for h in result.hits[:1])
    lead = templates["lead_cross_lingual" if language == "en" and passages_zh else "lead"][language]
    body = "\n".join(f"{text} [{n}]" for n, text in picked)
    return Answer(question=question, answer=f"{lead}\n{body}".strip(), abstained=False,
                  citations=citations, language=language)


def format_citation(citation: Citation) -> str:
    return load_templates()["citation_line"].format(n=citation.n, title=citation.title, section=citation.section)
