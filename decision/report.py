"""A Decision turned into a cited result: reasons grounded in knowledge-base passages.

The engine says *which* answers weighed most; a reason is only persuasive when the documents
back it, so each of the top factors is paired with the passage its retrieval query finds, and
the result quotes that passage. Everything the CLI prints, the JSON export and the Slack result
message are built from one `StrategyReport`, so they always agree. Texts live in
``prompts/decision_report.yaml``, the numbers that choose the quotes in ``prompts/ranking.yaml``
(`kb.tuning.quotes`). No Slack here.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Sequence

import yaml

from .engine import Decision, Factor, rank
from .model import DecisionModel

if TYPE_CHECKING:
    from retrieval.answer import QuotedPassage
    from strategy_bot.tuning import Tuning

TEMPLATES_PATH = Path(__file__).resolve().parent.parent / "prompts" / "decision_report.yaml"


class KnowledgeSearch(Protocol):
    """What the report needs of `retrieval.service.KnowledgeBase` (kept narrow for clarity)."""

    def quotes(self, query: str, k: int | None = None, *, overlap_weight: float = 0.0) -> list[QuotedPassage]: ...

    @property
    def index_id(self) -> str: ...

    @property
    def tuning(self) -> Tuning: ...


@dataclass(frozen=True)
class ReportCitation:
    """A knowledge-base passage a reason rests on, with the sentence quoted from it."""

    n: int
    doc_id: str
    title: str
    section: str
    quote: str
    chunk_id: str
    score: float  # cosine similarity of the quoted sentence with the reason's query


@dataclass(frozen=True)
class Reason:
    """One answer that weighed towards the recommendation, explained and cited."""

    question_key: str
    topic: str
    answer: str
    rationale: str
    contribution: float
    citation: int | None
    sentence: str  # the rendered line, ending in "[n]" when cited


@dataclass(frozen=True)
class StrategyReport:
    """Everything a strategy-check result shows, in display order."""

    recommendation: str
    label: str
    headline: str
    scores: tuple[tuple[str, str, float], ...]  # (key, label, score), best first
    reasons: tuple[Reason, ...]
    citations: tuple[ReportCitation, ...]
    flip: str | None
    flip_recommendation: str | None
    next_steps: tuple[str, ...]
    answers: tuple[tuple[str, str], ...]  # (question text, chosen label), in asking order
    context: str = ""
    missing: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract of `strategy-bot check --json`."""
        return {
            "recommendation": self.recommendation,
            "label": self.label,
            "headline": self.headline,
            "scores": {key: score for key, _, score in self.scores},
            "reasons": [asdict(r) for r in self.reasons],
            "citations": [asdict(c) for c in self.citations],
            "flip": {"sentence": self.flip, "recommendation": self.flip_recommendation} if self.flip else None,
            "next_steps": list(self.next_steps),
            "answers": [{"question": q, "answer": a} for q, a in self.answers],
            "context": self.context,
            "missing": list(self.missing),
        }

    def to_markdown(self) -> str:
        """The whole result as a Markdown document whose first line is the headline."""
        return render_markdown(self)


@lru_cache(maxsize=4)
def load_templates(path: Path = TEMPLATES_PATH) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def format_score(value: float) -> str:
    """Scores are sums of small weights: show 7 rather than 7.0, keep real fractions."""
    return f"{value:g}"


# --------------------------------------------------------------------------- building


def build_report(
    model: DecisionModel, decision: Decision, kb: KnowledgeSearch, context: str = ""
) -> StrategyReport:
    """Cite the top factors from the knowledge base and assemble the result."""
    t = load_templates()
    reasons, citations = _cite_factors(model, decision.top_factors, kb, t)
    ordered = rank(model, decision.scores)
    scores = tuple((key, model.recommendation(key).label, decision.scores[key]) for key in ordered)
    answers = tuple(
        (model.question(k).text, model.question(k).option(v).label) for k, v in decision.answers.items()
    )
    return StrategyReport(
        recommendation=decision.recommendation,
        label=decision.label,
        headline=t["headline"].format(label=decision.label),
        scores=scores,
        reasons=reasons,
        citations=citations,
        flip=decision.flip.sentence if decision.flip else None,
        flip_recommendation=decision.flip.recommendation if decision.flip else None,
        next_steps=tuple(decision.next_steps),
        answers=answers,
        context=" ".join(context.split()),
        missing=tuple(decision.missing),
    )


def _cite_factors(
    model: DecisionModel, factors: Sequence[Factor], kb: KnowledgeSearch, t: dict[str, Any]
) -> tuple[tuple[Reason, ...], tuple[ReportCitation, ...]]:
    """One reason per factor; a passage already cited is reused only when nothing as good is left."""
    tuned = kb.tuning.quotes
    citations: list[ReportCitation] = []
    by_chunk: dict[str, int] = {}
    reasons: list[Reason] = []
    for factor in factors:
        passages = cached_quotes(kb, kb.index_id, factor.query, tuned.candidates, tuned.overlap_weight)
        candidates = _candidates(passages, int(t["quote_chars"]))
        picked = _pick(candidates, by_chunk, tuned.reuse_slack)
        n = None
        if picked is not None:
            n = by_chunk.get(picked.hit.chunk.chunk_id)
            if n is None:
                n = len(citations) + 1
                chunk = picked.hit.chunk
                citations.append(ReportCitation(n, chunk.doc_id, chunk.title, chunk.section, picked.quote,
                                                chunk.chunk_id, round(picked.similarity, 4)))
                by_chunk[chunk.chunk_id] = n
        reasons.append(_reason(model, factor, n, t))
    return tuple(reasons), tuple(citations)


@lru_cache(maxsize=256)
def cached_quotes(kb: KnowledgeSearch, index_id: str, query: str, k: int,
                  overlap_weight: float) -> tuple[QuotedPassage, ...]:
    """kb.quotes, remembered per index build.

    The factor queries are a fixed set of about thirty sentences, and embedding one long Chinese
    query costs from 0.1 s to a second on a busy CPU, three times per result. The key includes
    the served build (`index_id`), so after a re-index the new passages are searched again.
    """
    return tuple(kb.quotes(query, k, overlap_weight=overlap_weight))


@dataclass(frozen=True)
class Candidate:
    """A retrieved passage and its sentence closest to the reason's query."""

    hit: Any
    similarity: float  # cosine of that sentence with the query (+ the word-overlap bonus)
    quote: str


def _candidates(passages: Sequence[QuotedPassage], limit: int) -> list[Candidate]:
    """The hits with their best sentence, best sentence first (search rank breaks ties).

    Passage-level scores of e5 sit within a few hundredths of each other; the best single
    sentence tells apart the passage that states the reason from ones that merely share its topic.
    """
    found = []
    for rank_, passage in enumerate(passages):
        if passage.best is not None:
            similarity, text = passage.best.similarity, passage.best.text
        else:  # a code-only passage has no prose sentences: quote its opening
            hit = passage.hit
            similarity, text = float(hit.dense), (hit.chunk.text.strip().splitlines() or [""])[0]
        text = " ".join(text.split())
        quote = text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
        found.append((-similarity, rank_, Candidate(passage.hit, similarity, quote)))
    found.sort(key=lambda item: item[:2])
    return [c for _, _, c in found]


def _pick(candidates: Sequence[Candidate], cited: dict[str, int], slack: float) -> Candidate | None:
    """The best candidate, unless it is already cited and a fresh one is nearly as close."""
    if not candidates:
        return None
    best = candidates[0]
    if best.hit.chunk.chunk_id not in cited:
        return best
    for candidate in candidates[1:]:
        if candidate.hit.chunk.chunk_id not in cited and candidate.similarity >= best.similarity - slack:
            return candidate
    return best


def _reason(model: DecisionModel, factor: Factor, n: int | None, t: dict[str, Any]) -> Reason:
    topic = model.question(factor.question_key).topic
    topic = topic[:1].upper() + topic[1:]
    template = t["reason"] if n is not None else t["reason_uncited"]
    sentence = template.format(topic=topic, answer=factor.label, rationale=factor.rationale, n=n)
    return Reason(factor.question_key, topic, factor.label, factor.rationale, factor.contribution, n, sentence)


# --------------------------------------------------------------------------- Markdown


def render_markdown(report: StrategyReport) -> str:
    """Markdown with the headline as line one (plain, so a grep for it always works)."""
    t = load_templates()
    h = t["headings"]
    lines = [report.headline, ""]
    if report.context:
        lines += [t["context_line"].format(context=report.context), ""]
    if report.missing:
        total = len(report.answers) + len(report.missing)
        lines += [t["partial_note"].format(answered=len(report.answers), total=total), ""]
    lines += [f"## {h['scores']}", ""] + score_lines(report) + [""]
    if tie_note(report):
        lines += [tie_note(report), ""]
    lines += [f"## {h['reasons']}", ""]
    lines += [f"{i}. {r.sentence}" for i, r in enumerate(report.reasons, 1)] or [t["no_reasons"]]
    lines += ["", f"## {h['flip']}", "", report.flip or t["no_flip"], ""]
    lines += [f"## {h['next_steps']}", "", f"_{t['next_steps_note']}_", ""]
    lines += [f"- {suggested_step(step)}" for step in report.next_steps] + [""]
    if report.answers:
        lines += [f"## {h['answers']}", ""]
        lines += [f"- {t['answer_line'].format(question=q, answer=a)}" for q, a in report.answers] + [""]
    if report.citations:
        lines += [f"## {h['sources']}", ""]
        for c in report.citations:
            lines += [source_line(c), "", t["quote_line"].format(quote=c.quote), ""]
    return "\n".join(lines).rstrip() + "\n"


CITATION_MARK = re.compile(r"\s*\[\d+\]")


def suggested_step(step: str) -> str:
    """A next step as shown: without anything that looks like a citation ("[2]"). Steps come from the
    decision model, not from a retrieved passage, so none may look as if a document backed it."""
    return CITATION_MARK.sub("", step).strip()


def score_lines(report: StrategyReport) -> list[str]:
    """'- Closed source: 14 (recommended)' lines, best first."""
    t = load_templates()
    lines = []
    for key, label, value in report.scores:
        mark = t["recommended_mark"] if key == report.recommendation else ""
        lines.append(f"- {t['score_line'].format(label=label, score=format_score(value))}{mark}")
    return lines


def tie_note(report: StrategyReport) -> str | None:
    """Say so when the winner only won on the tie-break, so nobody reads more into it."""
    if len(report.scores) < 2 or report.scores[0][2] != report.scores[1][2]:
        return None
    return load_templates()["tie_note"].format(label=report.scores[0][1], other=report.scores[1][1])


def source_line(citation: ReportCitation) -> str:
    return load_templates()["source_line"].format(n=citation.n, title=citation.title, section=citation.section)
