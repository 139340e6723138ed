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
from knowledge.translations import TranslationMemory
from retrieval.index_store import KnowledgeIndex
from retrieval.search import Hit, SearchResult
from retrieval.similarity import as_float64, cosines
from strategy_bot.settings import PROMPTS_DIR

PASSAGES_FOR_SENTENCES = 3
SENTENCE_SLACK = 0.06  # sentences this close to the best one may join the answer


@dataclass(frozen=True)
class Citation:
    n: int
    doc_id: str
    title: str
    section: str
    text: str
    score: float
    chunk_id: str


@dataclass(frozen=True)
class Quote:
    """A sentence the answer shows, tied to the original it renders (the JSON's `quotes`)."""

    n: int  # citation number of the passage it comes from
    text: str  # as shown to the asker
    source: str  # the original sentence, verbatim
    language: str  # the language `text` is in


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
    quotes: list[Quote] = field(default_factory=list)  # the document sentences shown, with their originals

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


def pick_sentences(index: KnowledgeIndex, result: SearchResult, limit: int) -> list[tuple[int, str]]:
    """(citation number, sentence) pairs: the best-matching sentences of the top passages."""
    candidates: list[tuple[float, int, int, str]] = []
    for n, hit in enumerate(result.hits[:PASSAGES_FOR_SENTENCES], start=1):
        rows = index.sentences_of(hit.position)
        if not rows:
            continue
        scores = cosines(as_float64(index.sentence_vectors[rows]), result.query_vector)
        for row, score in zip(rows, scores):
            if not is_quotable(index.sentences[row]["text"]):
                continue
            # A small bonus for the passage's rank keeps the answer anchored on the best hit.
            candidates.append((float(score) - 0.01 * (n - 1), n, row, index.sentences[row]["text"]))
    if not candidates:
        return []
    candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
    best = candidates[0][0]
    chosen, seen = [], set()
    for score, n, row, text in candidates:
        if len(chosen) >= limit or score < best - SENTENCE_SLACK:
            break
        if text not in seen:
            seen.add(text)
            chosen.append((n, row, text))
    chosen.sort(key=lambda c: (c[0], c[1]))
    return [(n, text) for n, _, text in chosen]


def render_quotes(picked: list[tuple[int, str]], result: SearchResult, language: str,
                  translations: TranslationMemory | None) -> list[Quote]:
    """Each picked sentence in the asker's language when a reviewed rendering exists; else as written."""
    quotes = []
    for n, source in picked:
        passage_language = language_of(result.hits[n - 1].chunk.text)
        rendering = translations.render(source, language) if translations and passage_language != language else None
        quotes.append(Quote(n=n, text=rendering or source, source=source,
                            language=language if rendering else passage_language))
    return quotes


def lead_line(templates: dict, language: str, quotes: list[Quote]) -> str:
    """Says when the quotes are translations, and when some could not be."""
    foreign = [q for q in quotes if q.language != language]
    translated = [q for q in quotes if q.text != q.source]
    if foreign:
        return templates["lead_untranslated"][language]
    return templates["lead_translated" if translated else "lead"][language]


def compose(question: str, index: KnowledgeIndex, result: SearchResult, *, declined: bool,
            sentences: int, unknown_names: Sequence[str] = (),
            translations: TranslationMemory | None = None) -> Answer:
    """Build the answer (or the decline) from a search result.

    A decline names what the documents never mention, when the question named it:
    "they never mention MIT" tells the asker more than "not covered". Quotes from documents
    in another language are shown in the asker's language from the translation memory,
    each keeping its original (`Answer.quotes`); our code, not a model, attaches citations.
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
    picked = pick_sentences(index, result, sentences)
    if not picked:  # only code or headings matched: quote the top passage's opening
        top = result.hits[0].chunk.text.strip().splitlines()[0][:300]
        picked = [(1, top)]
    quotes = render_quotes(picked, result, language, translations)
    lead = lead_line(templates, language, quotes)
    body = "\n".join(f"{quote.text} [{quote.n}]" for quote in quotes)
    return Answer(question=question, answer=f"{lead}\n{body}".strip(), abstained=False,
                  citations=citations, language=language, quotes=quotes)


def format_citation(citation: Citation) -> str:
    return load_templates()["citation_line"].format(n=citation.n, title=citation.title, section=citation.section)
