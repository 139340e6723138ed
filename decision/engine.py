"""Score answers against the decision model and explain the result.

A recommendation alone is not persuasive; this module also says *why* (the answers that pushed
hardest towards the winner over the runner-up) and *how robust* it is (the smallest change of
answers that would flip it). Everything here is pure and deterministic: the same answers always
give the same Decision, so Slack messages, CLI output and tests agree.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import combinations, product
from typing import Any, Iterator, Mapping

from .model import DecisionModel, Question

TOP_FACTORS = 3
MAX_FLIP_CHANGES = 2


@dataclass(frozen=True)
class Factor:
    """One chosen answer and how much it favoured the recommendation over the runner-up."""

    question_key: str
    question_text: str
    option_value: str
    label: str
    rationale: str
    query: str
    contribution: float


@dataclass(frozen=True)
class Change:
    """One answer changed in a what-if scenario."""

    question_key: str
    question_topic: str
    from_value: str | None
    to_value: str
    to_label: str
    to_label_zh: str


@dataclass(frozen=True)
class Flip:
    """The smallest set of answer changes that changes the recommendation."""

    changes: tuple[Change, ...]
    recommendation: str
    label: str
    sentence: str
    sentence_zh: str


@dataclass(frozen=True)
class Decision:
    """The outcome of evaluate(): scores, winner, reasons and the nearest flip."""

    recommendation: str
    label: str
    label_zh: str
    scores: Mapping[str, float]
    runner_up: str
    margin: float
    top_factors: tuple[Factor, ...]
    flip: Flip | None
    next_steps: tuple[str, ...]
    answers: Mapping[str, str]
    missing: tuple[str, ...]

    @property
    def partial(self) -> bool:
        return bool(self.missing)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (for the CLI's --json and logging)."""
        return asdict(self)


class AnswerError(ValueError):
    """Answers that do not fit the decision model (unknown key/value, missing, unparsable)."""


# --------------------------------------------------------------------------- public API


def parse_answers(text: str, model: DecisionModel | None = None) -> dict[str, str]:
    """Parse "key=value,key2=value2" (CLI syntax); with a model, also check keys and values."""
    answers: dict[str, str] = {}
    for position, item in enumerate(text.split(","), start=1):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep:
            raise AnswerError(f"answer #{position} '{item}' is not in key=value form")
        if not key or not value:
            raise AnswerError(f"answer #{position} '{item}' needs both a question key and a value")
        if key in answers:
            raise AnswerError(f"question '{key}' is answered twice")
        answers[key] = value
    if model is not None:
        validate_answers(model, answers, require_complete=False)
    return answers


def validate_answers(model: DecisionModel, answers: Mapping[str, str], require_complete: bool = True) -> None:
    """Raise AnswerError for unknown questions/options, or missing answers when complete is required."""
    for key, value in answers.items():
        try:
            model.question(key).option(value)
        except ValueError as exc:
            raise AnswerError(str(exc)) from None
    missing = [k for k in model.question_keys if k not in answers]
    if require_complete and missing:
        raise AnswerError(f"missing answers for: {', '.join(missing)}")


def evaluate(model: DecisionModel, answers: Mapping[str, str], require_complete: bool = True) -> Decision:
    """Score the answers, pick the winner and explain it; partial answers need require_complete=False."""
    validate_answers(model, answers, require_complete)
    chosen = {k: answers[k] for k in model.question_keys if k in answers}  # model order
    scores = score(model, chosen)
    ranking = rank(model, scores)
    winner, runner_up = ranking[0], ranking[1]
    rec = model.recommendation(winner)
    return Decision(
        recommendation=winner,
        label=rec.label,
        label_zh=rec.label_zh,
        scores=scores,
        runner_up=runner_up,
        margin=_clean(scores[winner] - scores[runner_up]),
        top_factors=top_factors(model, chosen, winner, runner_up),
        flip=find_flip(model, chosen, winner),
        next_steps=rec.next_steps,
        answers=chosen,
        missing=tuple(k for k in model.question_keys if k not in chosen),
    )


# --------------------------------------------------------------------------- scoring


def score(model: DecisionModel, answers: Mapping[str, str]) -> dict[str, float]:
    """Sum the weights of the chosen options per recommendation (answers assumed valid)."""
    totals = {key: 0.0 for key in model.recommendation_keys}
    for key, value in answers.items():
        weights = model.question(key).option(value).weights
        for rec in totals:
            totals[rec] += weights[rec]
    return {rec: _clean(total) for rec, total in totals.items()}


def rank(model: DecisionModel, scores: Mapping[str, float]) -> tuple[str, ...]:
    """Order recommendations best first; equal scores follow model.tie_break for determinism."""
    return tuple(sorted(model.tie_break, key=lambda rec: (-scores[rec], model.tie_break.index(rec))))


def winner_of(model: DecisionModel, answers: Mapping[str, str]) -> str:
    return rank(model, score(model, answers))[0]


def _clean(x: float) -> float:
    """Round away float noise (0.1+0.2) so equal scores really tie and output is stable."""
    return round(float(x), 6) + 0.0


# --------------------------------------------------------------------------- explanation


def top_factors(model: DecisionModel, answers: Mapping[str, str], winner: str, runner_up: str) -> tuple[Factor, ...]:
    """The answers that most favoured the winner over the runner-up (positive contributions only)."""
    factors = []
    for index, (key, value) in enumerate(answers.items()):
        question = model.question(key)
        option = question.option(value)
        contribution = _clean(option.weights[winner] - option.weights[runner_up])
        if contribution > 0:
            factor = Factor(key, question.text, value, option.label, option.rationale, option.query, contribution)
            factors.append((-contribution, index, factor))
    factors.sort(key=lambda item: item[:2])
    return tuple(f for _, _, f in factors[:TOP_FACTORS])


def find_flip(model: DecisionModel, answers: Mapping[str, str], winner: str) -> Flip | None:
    """Smallest change of the given answers that changes the winner: singles first, then pairs.

    Among flips of the same size the most decisive one (largest new margin) is reported, then the
    first in question/option order, so the suggestion is both meaningful and deterministic.
    """
    keys = list(answers)
    for size in range(1, MAX_FLIP_CHANGES + 1):
        best: tuple[tuple[float, int], dict[str, str], str] | None = None
        for order, (changed, new_answers) in enumerate(_variants(model, answers, keys, size)):
            new_scores = score(model, new_answers)
            ranking = rank(model, new_scores)
            if ranking[0] == winner:
                continue
            sort_key = (-(new_scores[ranking[0]] - new_scores[ranking[1]]), order)
            if best is None or sort_key < best[0]:
                best = (sort_key, changed, ranking[0])
        if best is not None:
            return _describe_flip(model, answers, best[1], best[2])
    return None


def _variants(
    model: DecisionModel, answers: Mapping[str, str], keys: list[str], size: int
) -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    """Yield (changed answers, full new answers) for every way to change exactly `size` answers."""
    for subset in combinations(keys, size):
        alternatives = [[v for v in model.question(k).values if v != answers[k]] for k in subset]
        for values in product(*alternatives):
            changed = dict(zip(subset, values))
            yield changed, {**answers, **changed}


def _describe_flip(model: DecisionModel, answers: Mapping[str, str], changed: Mapping[str, str], new_rec: str) -> Flip:
    changes = tuple(_change(model.question(k), answers.get(k), v) for k, v in changed.items())
    rec = model.recommendation(new_rec)
    en = " and ".join(f"your {c.question_topic} were '{c.to_label}'" for c in changes)
    zh = "，且".join(
        f"{model.question(c.question_key).topic_zh}为“{c.to_label_zh}”" for c in changes
    )
    return Flip(
        changes=changes,
        recommendation=new_rec,
        label=rec.label,
        sentence=f"If {en}, the recommendation would become {rec.label}.",
        sentence_zh=f"如果{zh}，建议将变为{rec.label_zh}。",
    )


def _change(question: Question, old: str | None, new: str) -> Change:
    option = question.option(new)
    return Change(question.key, question.topic, old, new, option.label, option.label_zh)
