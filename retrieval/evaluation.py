"""Scoring retrieval and declining on a question set (the `public_qa.jsonl` format).

A question is a hit when one of its top-5 citations has a `gold` substring in its
section or its text; MRR uses the rank of the first such citation. Questions marked
`unanswerable` must be declined.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from retrieval.answer import Answer
from retrieval.service import KnowledgeBase


@dataclass(frozen=True)
class EvalItem:
    id: str
    question: str
    lang: str
    gold: tuple[str, ...]
    unanswerable: bool


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
                                  gold=tuple(row.get("gold") or ()), unanswerable=bool(row.get("unanswerable"))))
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


def evaluate(kb: KnowledgeBase, items: list[EvalItem], mode: str = "hybrid", with_answers: bool = True) -> EvalReport:
    report = EvalReport()
    for item in items:
        if with_answers:
            answer: Answer = kb.ask(item.question, mode=mode)
            passages = [(c.section, c.text) for c in answer.citations]
            declined = answer.abstained
        else:
            result = kb.search(item.question, k=5, mode=mode)
            passages = [(h.chunk.section, h.chunk.text) for h in result.hits]
            declined = False
        if item.unanswerable:
            report.unanswerable += 1
            if declined:
                report.declined += 1
            else:
                report.wrongly_answered.append(item.id)
            continue
        report.answerable += 1
        if declined:
            report.wrongly_declined.append(item.id)
            continue
        rank = gold_rank(item.gold, passages)
        if rank is None:
            report.misses.append(item.id)
        else:
            report.hits += 1
            report.reciprocal_ranks += 1.0 / rank
    return report
