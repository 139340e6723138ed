"""The decision model as validated, immutable data.

The questions, weights and advice live in ``prompts/decision_model.yaml`` so that they can be
reviewed and tuned without touching code. This module only loads that file and refuses anything
malformed, with an error naming the exact entry, because a silently wrong weight would produce a
confident but wrong recommendation.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

DEFAULT_MODEL_PATH = Path(__file__).resolve().parent.parent / "prompts" / "decision_model.yaml"
WEIGHT_LIMIT = 3
_SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")


class DecisionModelError(ValueError):
    """The decision model file is missing, unreadable or malformed."""


@dataclass(frozen=True)
class Option:
    """One possible answer to a question and how it pushes each recommendation."""

    value: str
    label: str
    label_zh: str
    weights: Mapping[str, float]
    rationale: str
    query: str


@dataclass(frozen=True)
class Question:
    """One factor of the decision, asked as a multiple-choice question."""

    key: str
    text: str
    text_zh: str
    options: tuple[Option, ...]
    help: str = ""
    topic: str = ""
    topic_zh: str = ""

    def option(self, value: str) -> Option:
        """Return the option with this value; ValueError lists the valid values."""
        for opt in self.options:
            if opt.value == value:
                return opt
        valid = ", ".join(o.value for o in self.options)
        raise ValueError(f"question '{self.key}' has no option '{value}'; choose one of: {valid}")

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(o.value for o in self.options)


@dataclass(frozen=True)
class Recommendation:
    """One possible outcome (open / closed / hybrid) with concrete next steps."""

    key: str
    label: str
    label_zh: str
    next_steps: tuple[str, ...]
    summary: str = ""


@dataclass(frozen=True)
class DecisionModel:
    """The whole questionnaire: recommendations, questions in asking order, tie-break order."""

    version: str
    recommendations: tuple[Recommendation, ...]
    questions: tuple[Question, ...]
    tie_break: tuple[str, ...]

    @property
    def recommendation_keys(self) -> tuple[str, ...]:
        return tuple(r.key for r in self.recommendations)

    @property
    def question_keys(self) -> tuple[str, ...]:
        return tuple(q.key for q in self.questions)

    def question(self, key: str) -> Question:
        """Return the question with this key; ValueError lists the valid keys."""
        for q in self.questions:
            if q.key == key:
                return q
        raise ValueError(f"unknown question '{key}'; expected one of: {', '.join(self.question_keys)}")

    def recommendation(self, key: str) -> Recommendation:
        for r in self.recommendations:
            if r.key == key:
                return r
        raise ValueError(f"unknown recommendation '{key}'; expected one of: {', '.join(self.recommendation_keys)}")


# --------------------------------------------------------------------------- loading


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys, which plain YAML silently overwrites."""


def _construct_unique_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise DecisionModelError(f"duplicate key '{key}' at line {key_node.start_mark.line + 1}")
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def load_decision_model(path: Path | None = None) -> DecisionModel:
    """Load and validate the decision model; raise DecisionModelError naming the bad entry."""
    path = Path(path) if path is not None else DEFAULT_MODEL_PATH
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DecisionModelError(f"decision model file not found: {path}") from None
    except OSError as exc:
        raise DecisionModelError(f"cannot read decision model {path}: {exc}") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - safe loader subclass
    except DecisionModelError as exc:
        raise DecisionModelError(f"{exc} (in {path})") from None
    except yaml.YAMLError as exc:
        raise DecisionModelError(f"invalid YAML in {path}: {exc}") from None
    try:
        return parse_decision_model(data)
    except DecisionModelError as exc:
        raise DecisionModelError(f"{exc} (in {path})") from None


def parse_decision_model(data: Any) -> DecisionModel:
    """Validate already-parsed YAML data and build the model (separate from I/O for reuse)."""
    top = _mapping(data, "decision model")
    _require(top, ("version", "options", "questions", "tie_break"), "decision model")
    recommendations = _parse_recommendations(top["options"])
    rec_keys = tuple(r.key for r in recommendations)
    questions = _parse_questions(top["questions"], rec_keys)
    tie_break = _parse_tie_break(top["tie_break"], rec_keys)
    return DecisionModel(str(top["version"]), recommendations, questions, tie_break)


def _parse_recommendations(raw: Any) -> tuple[Recommendation, ...]:
    recs = _mapping(raw, "options")
    if len(recs) < 2:
        raise DecisionModelError("options: need at least two recommendations")
    result = []
    for key, entry in recs.items():
        where = f"recommendation '{key}'"
        _snake(key, where)
        body = _mapping(entry, where)
        _require(body, ("label", "label_zh", "next_steps"), where)
        steps = body["next_steps"]
        if not isinstance(steps, list) or not steps:
            raise DecisionModelError(f"{where}: next_steps must be a non-empty list")
        result.append(
            Recommendation(
                key=key,
                label=_text(body, "label", where),
                label_zh=_text(body, "label_zh", where),
                next_steps=tuple(_string(s, f"{where} next_steps[{i}]") for i, s in enumerate(steps)),
                summary=_text(body, "summary", where, required=False),
            )
        )
    return tuple(result)


def _parse_questions(raw: Any, rec_keys: tuple[str, ...]) -> tuple[Question, ...]:
    if not isinstance(raw, list) or not raw:
        raise DecisionModelError("questions must be a non-empty list")
    questions: list[Question] = []
    for index, entry in enumerate(raw):
        question = _parse_question(entry, index, rec_keys)
        if any(q.key == question.key for q in questions):
            raise DecisionModelError(f"duplicate question key '{question.key}'")
        questions.append(question)
    return tuple(questions)


def _parse_question(entry: Any, index: int, rec_keys: tuple[str, ...]) -> Question:
    body = _mapping(entry, f"question #{index + 1}")
    key = body.get("key")
    where = f"question '{key}'" if isinstance(key, str) and key else f"question #{index + 1}"
    _require(body, ("key", "text", "text_zh", "options"), where)
    _snake(key, where)
    raw_options = body["options"]
    if not isinstance(raw_options, list) or not raw_options:
        raise DecisionModelError(f"{where}: options must be a non-empty list")
    options: list[Option] = []
    for opt_index, raw_opt in enumerate(raw_options):
        option = _parse_option(raw_opt, where, opt_index, rec_keys)
        if any(o.value == option.value for o in options):
            raise DecisionModelError(f"{where}: duplicate option value '{option.value}'")
        options.append(option)
    return Question(
        key=key,
        text=_text(body, "text", where),
        text_zh=_text(body, "text_zh", where),
        options=tuple(options),
        help=_text(body, "help", where, required=False),
        topic=_text(body, "topic", where, required=False) or key.replace("_", " "),
        topic_zh=_text(body, "topic_zh", where, required=False) or _text(body, "text_zh", where),
    )


def _parse_option(raw: Any, q_where: str, index: int, rec_keys: tuple[str, ...]) -> Option:
    body = _mapping(raw, f"{q_where} option #{index + 1}")
    value = body.get("value")
    where = f"{q_where} option '{value}'" if isinstance(value, str) and value else f"{q_where} option #{index + 1}"
    _require(body, ("value", "label", "label_zh", "weights", "rationale", "query"), where)
    _snake(value, where)
    return Option(
        value=value,
        label=_text(body, "label", where),
        label_zh=_text(body, "label_zh", where),
        weights=_parse_weights(body["weights"], where, rec_keys),
        rationale=_text(body, "rationale", where),
        query=_text(body, "query", where),
    )


def _parse_weights(raw: Any, where: str, rec_keys: tuple[str, ...]) -> dict[str, float]:
    weights = _mapping(raw, f"{where}: weights")
    for key in weights:
        if key not in rec_keys:
            raise DecisionModelError(
                f"{where}: weights has unknown recommendation '{key}' (expected {', '.join(rec_keys)})"
            )
    result: dict[str, float] = {}
    for key in rec_keys:
        if key not in weights:
            raise DecisionModelError(f"{where}: weights missing '{key}'")
        w = weights[key]
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w):
            raise DecisionModelError(f"{where}: weight '{key}' must be a number, got {w!r}")
        if abs(w) > WEIGHT_LIMIT:
            raise DecisionModelError(f"{where}: weight '{key}' = {w} is outside -{WEIGHT_LIMIT}..{WEIGHT_LIMIT}")
        result[key] = w
    return result


def _parse_tie_break(raw: Any, rec_keys: tuple[str, ...]) -> tuple[str, ...]:
    if not isinstance(raw, list) or sorted(map(str, raw)) != sorted(rec_keys) or len(raw) != len(rec_keys):
        raise DecisionModelError(
            f"tie_break must list each recommendation exactly once ({', '.join(rec_keys)}), got {raw!r}")
    return tuple(raw)


# --------------------------------------------------------------------------- small validators


def _mapping(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise DecisionModelError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def _require(body: dict, keys: tuple[str, ...], where: str) -> None:
    missing = [k for k in keys if k not in body]
    if missing:
        names = ", ".join(repr(m) for m in missing)
        raise DecisionModelError(f"{where}: missing key{'s' if len(missing) > 1 else ''} {names}")


def _snake(value: Any, where: str) -> None:
    if not isinstance(value, str) or not _SNAKE.match(value):
        raise DecisionModelError(f"{where}: {value!r} is not a snake_case identifier")


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DecisionModelError(f"{where}: expected non-empty text, got {value!r}")
    return value.strip()


def _text(body: dict, key: str, where: str, required: bool = True) -> str:
    if key not in body and not required:
        return ""
    return _string(body.get(key), f"{where}: {key}")
