"""Scoring retrieval, declining and the answers themselves on a question set (`public_qa.jsonl` format).

A question is a hit when one of its top-5 citations has a `gold` substring in its
section or its text; MRR uses the rank of the first such citation. Questions marked
`unanswerable` must be declined.

A retrieval hit is not an answer, so the reader's side is measured too. A question's
`points` are the key points a complete answer conveys, each a list of alternative verbatim
substrings of the documents; a point is covered when one alternative appears in what the
answer shows or in the original of a sentence it shows in translation.
Also reported: the share of English questions answered in English, and answer length.
A question with `follows: <id>` is asked as a follow-up of that question (its thread history).
"""
from __future__ import annotations

import json
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from knowledge.language import language_of
from retrieval.answer import Answer
from retrieval.service import KnowledgeBase

MARKUP = re.compile(r"\*\*|__|\s+")


@dataclass(frozen=True)
class EvalItem:
    id: str
    question: str
    lang: str
    gold: tuple[str, ...]
    unanswerable: bool
    points: tuple[tuple[str, ...], ...] = ()
    follows: str = ""  # id of the question this one follows up in a thread


@dataclass
class EvalReport:
    answerable: int = 0
    hits: int = 0
    reciprocal_ranks: float = 0.0
    wrongly_declined: list[str] = field(default_factory=list)
    unanswerable: int = 0
    declined: int = 0
    wrongly_answered: list[str] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)
    points_total: int = 0
    points_covered: int = 0
    keypoint_recalls: list[float] = field(default_factory=list)  # one per answered question with points
    english_answers: int = 0  # English questions answered (not declined) in English
    english_answered: int = 0
    answer_chars: list[int] = field(default_factory=list)
    incomplete: dict[str, list[int]] = field(default_factory=dict)  # id -> 1-based points missed
    points_by_question: dict[str, tuple[int, int]] = field(default_factory=dict)  # id -> (covered, total)
    partial: list[str] = field(default_factory=list)  # answerable questions answered as "partial"
    unanswerable_partial: int = 0  # unanswerable questions answered as "partial" (said what is missing)

    @property
    def keypoint_recall(self) -> float:
        """Mean over questions of the share of their key points the answer covers."""
        return statistics.fmean(self.keypoint_recalls) if self.keypoint_recalls else 0.0

    @property
    def english_in_english(self) -> float:
        return self.english_answers / self.english_answered if self.english_answered else 0.0

    @property
    def recall_at_5(self) -> float:
        return self.hits / self.answerable if self.answerable else 0.0

    @property
    def mrr(self) -> float:
        return self.reciprocal_ranks / self.answerable if self.answerable else 0.0

    def to_dict(self) -> dict:
        return {
            "answerable": self.answerable, "recall_at_5": round(self.recall_at_5, 4), "mrr": round(self.mrr, 4),
            "answerable_declined": len(self.wrongly_declined), "unanswerable": self.unanswerable,
            "unanswerable_declined": self.declined, "misses": self.misses,
            "wrongly_declined": self.wrongly_declined, "wrongly_answered": self.wrongly_answered,
            "keypoint_recall": round(self.keypoint_recall, 4), "questions_with_points": len(self.keypoint_recalls),
            "points_covered": self.points_covered, "points_total": self.points_total,
            "english_answered_in_english": round(self.english_in_english, 4),
            "answer_chars_median": int(statistics.median(self.answer_chars)) if self.answer_chars else 0,
            "answer_chars_max": max(self.answer_chars, default=0), "incomplete": self.incomplete,
            "answerable_partial": self.partial, "unanswerable_partial": self.unanswerable_partial,
        }


class EvalFileError(ValueError):
    pass


def load_items(path: Path) -> list[EvalItem]:
    items = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            items.append(EvalItem(id=str(row.get("id", number)), question=row["q"], lang=row.get("lang", ""),
                                  gold=tuple(row.get("gold") or ()), unanswerable=bool(row.get("unanswerable")),
                                  points=tuple(tuple(alternatives) for alternatives in row.get("points") or ()),
                                  follows=str(row.get("follows") or "")))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise EvalFileError(f"{path}:{number}: not a question record ({exc})") from None
    return items


def gold_rank(gold: Iterable[str], sections_and_texts: list[tuple[str, str]], k: int = 5) -> int | None:
    """1-based rank of the first of the top k passages that contains a gold substring."""
    gold = list(gold)
    for rank, (section, text) in enumerate(sections_and_texts[:k], start=1):
        if any(g in section or g in text for g in gold):
            return rank
    return None


def normalised(text: str) -> str:
    """Text without Markdown emphasis or white space, for substring matching of key points."""
    return MARKUP.sub("", text)


def covered_points(points: Sequence[Sequence[str]], shown: str) -> list[bool]:
    """For each key point, whether one of its alternatives is in the shown text."""
    haystack = normalised(shown)
    return [any(normalised(alt) in haystack for alt in alternatives) for alternatives in points]


def _score_answer(report: EvalReport, item: EvalItem, answer: Answer) -> None:
    shown = "\n".join([answer.answer, *(quote.source for quote in answer.quotes)])
    report.answer_chars.append(len(answer.answer))
    if item.lang == "en" or language_of(item.question) == "en":
        report.english_answered += 1
        report.english_answers += language_of(answer.answer) == "en"
    if item.points:
        covered = covered_points(item.points, shown)
        report.points_total += len(covered)
        report.points_covered += sum(covered)
        report.keypoint_recalls.append(sum(covered) / len(covered))
        report.points_by_question[item.id] = (sum(covered), len(covered))
        missed = [i for i, ok in enumerate(covered, start=1) if not ok]
        if missed:
            report.incomplete[item.id] = missed


def evaluate(kb: KnowledgeBase, items: list[EvalItem], mode: str = "hybrid", with_answers: bool = True) -> EvalReport:
    report = EvalReport()
    questions = {item.id: item.question for item in items}
    for item in items:
        history = [questions[item.follows]] if item.follows in questions else []
        answer: Answer | None = None
        if with_answers:
            answer = kb.ask(item.question, history=history, mode=mode)
            # retrieval is scored in search order; the answer numbers its sources in order of use
            passages = [(c.section, c.text) for c in sorted(answer.citations, key=lambda c: c.rank or c.n)]
            declined = answer.abstained
        else:
            result = kb.search(item.question, k=5, mode=mode, history=history)
            passages = [(h.chunk.section, h.chunk.text) for h in result.hits]
            declined = False
        if item.unanswerable:
            report.unanswerable += 1
            if declined:
                report.declined += 1
            elif answer is not None and answer.coverage == "partial":
                report.unanswerable_partial += 1
            else:
                report.wrongly_answered.append(item.id)
            continue
        report.answerable += 1
        if declined:
            report.wrongly_declined.append(item.id)
            if item.points:
                report.keypoint_recalls.append(0.0)
                report.points_total += len(item.points)
                report.points_by_question[item.id] = (0, len(item.points))
            continue
        if answer is not None:
            _score_answer(report, item, answer)
            if answer.coverage == "partial":
                report.partial.append(item.id)
        rank = gold_rank(item.gold, passages)
        if rank is None:
            report.misses.append(item.id)
        else:
            report.hits += 1
            report.reciprocal_ranks += 1.0 / rank
    return report
