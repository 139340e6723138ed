"""The tuned numbers of ranking, declining and answer selection, loaded from one data file.

Weights that people tune are data, not constants in code: `prompts/ranking.yaml` holds every
one, each with the figure that justified it. This module reads that file once into typed,
frozen dataclasses and checks it: a missing, unknown or out-of-range entry stops start-up with
a message naming it (`TuningError`). `with_values` gives a copy with some numbers changed, so
`strategy-bot eval --set lexical_weight=0.4` (and the benchmarks, through TUNING_FILE) can sweep
a value without editing code.

The sections follow who reads them: `search` (retrieval/search.py, service.py, lexical.py),
`answer` (retrieval/answer.py), `decline` (retrieval/abstain.py), `quotes` (the decision
report's citations) and `index` (numbers used when the index is built: they take effect at the
next `strategy-bot index`, for every passage with `--rebuild`).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import yaml

from strategy_bot.settings import PROMPTS_DIR, Settings

DEFAULT_TUNING_FILE = PROMPTS_DIR / "ranking.yaml"


class TuningError(ValueError):
    """The tuning file (or a --set value) has an entry we cannot use; the message names it."""


def bounded(low: float, high: float) -> Any:
    """A required field whose value must lie in [low, high]."""
    return field(metadata={"low": low, "high": high})


@dataclass(frozen=True)
class SearchTuning:
    rrf_k: int = bounded(1, 10_000)
    lexical_weight: float = bounded(0.0, 10.0)
    translated_query_weight: float = bounded(0.0, 10.0)
    history_weight: float = bounded(0.0, 10.0)
    max_synonyms: int = bounded(0, 50)
    rendering_weight: float = bounded(0.0, 10.0)
    rendering_lexical_weight: float = bounded(0.0, 10.0)
    intent_depth: int = bounded(1, 50)
    intent_promote_to: int = bounded(0, 20)
    heading_promote_to: int = bounded(0, 20)


@dataclass(frozen=True)
class AnswerTuning:
    passages: int = bounded(1, 20)
    sentence_slack: float = bounded(0.0, 2.0)
    passage_rank_penalty: float = bounded(0.0, 1.0)
    list_slack: float = bounded(0.0, 2.0)
    labelled_list_slack: float = bounded(0.0, 2.0)
    anchor_tie: float = bounded(0.0, 1.0)
    topic_bonus: float = bounded(0.0, 1.0)
    intent_bonus: float = bounded(0.0, 1.0)
    opposite_penalty: float = bounded(0.0, 2.0)
    subject_penalty: float = bounded(0.0, 2.0)
    definition_penalty: float = bounded(0.0, 2.0)
    max_list_items: int = bounded(2, 20)
    cohesive_list_share: float = bounded(0.0, 2.0)


@dataclass(frozen=True)
class DeclineTuning:
    same_language_margin: float = bounded(-2.0, 2.0)
    cross_lingual_margin: float = bounded(-2.0, 2.0)
    unknown_name_margin: float = bounded(-2.0, 2.0)
    unknown_name_partial_margin: float = bounded(-2.0, 2.0)
    heading_relief: float = bounded(0.0, 1.0)


@dataclass(frozen=True)
class QuoteTuning:
    candidates: int = bounded(1, 20)
    reuse_slack: float = bounded(0.0, 2.0)
    overlap_weight: float = bounded(0.0, 10.0)


@dataclass(frozen=True)
class IndexTuning:
    chunk_size: int = bounded(100, 10_000)
    chunk_overlap: int = bounded(0, 5_000)
    max_translations: int = bounded(1, 50)
    max_gloss_words: int = bounded(1, 50)
    rendering_min_share: float = bounded(0.0, 1.0)

    def __post_init__(self) -> None:
        if self.chunk_overlap >= self.chunk_size:
            raise TuningError(f"index.chunk_overlap ({self.chunk_overlap}) must be below index.chunk_size "
                              f"({self.chunk_size})")


SECTIONS: dict[str, type] = {"search": SearchTuning, "answer": AnswerTuning, "decline": DeclineTuning,
                             "quotes": QuoteTuning, "index": IndexTuning}


@dataclass(frozen=True)
class Tuning:
    """Every tuned number, by section; `why` keeps each one's justification ("section.name" -> text)."""

    search: SearchTuning
    answer: AnswerTuning
    decline: DeclineTuning
    quotes: QuoteTuning
    index: IndexTuning
    why: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def load(cls, path: Path = DEFAULT_TUNING_FILE) -> "Tuning":
        """Read and check a tuning file; TuningError names the file and the bad entry."""
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise TuningError(f"cannot read the tuning file {path}: {exc}") from None
        try:
            return cls.from_data(data)
        except TuningError as exc:
            raise TuningError(f"{path}: {exc}") from None

    @classmethod
    def from_data(cls, data: Any) -> "Tuning":
        if not isinstance(data, dict):
            raise TuningError("expected a mapping of sections (search, answer, decline, quotes, index)")
        unknown = sorted(set(data) - set(SECTIONS))
        if unknown:
            raise TuningError(f"unknown section {unknown[0]!r} (known: {', '.join(SECTIONS)})")
        sections: dict[str, Any] = {}
        why: dict[str, str] = {}
        for section, kind in SECTIONS.items():
            entries = data.get(section)
            if not isinstance(entries, dict):
                raise TuningError(f"section {section!r} is missing or not a mapping")
            sections[section] = kind(**_section_values(section, kind, entries, why))
        return cls(**sections, why=why)

    def names(self) -> list[str]:
        """Every number's name, as `--set` takes it (the names are unique across sections)."""
        return [f.name for kind in SECTIONS.values() for f in fields(kind)]

    def value(self, name: str) -> float:
        section, key = self._locate(name)
        return getattr(getattr(self, section), key)

    def section_of(self, name: str) -> str:
        """The section a number belongs to ("index": used only when the index is built)."""
        return self._locate(name)[0]

    def with_values(self, changes: Mapping[str, object]) -> "Tuning":
        """A copy with some numbers changed: {"lexical_weight": 0.4} or {"search.lexical_weight": "0.4"}.

        Values are checked like the file's (type and range); TuningError names a bad one.
        """
        updated: dict[str, dict[str, Any]] = {}
        for name, raw in changes.items():
            section, key = self._locate(name)
            kind = SECTIONS[section]
            spec = next(f for f in fields(kind) if f.name == key)
            updated.setdefault(section, {})[key] = _number(f"{section}.{key}", raw, spec)
        return replace(self, **{section: replace(getattr(self, section), **values)
                                for section, values in updated.items()})

    def _locate(self, name: str) -> tuple[str, str]:
        section, _, key = name.rpartition(".")
        for candidate, kind in SECTIONS.items():
            if (not section or section == candidate) and key in {f.name for f in fields(kind)}:
                return candidate, key
        raise TuningError(f"unknown tuning value {name!r} (known: {', '.join(self.names())})")


def _section_values(section: str, kind: type, entries: dict, why: dict[str, str]) -> dict[str, Any]:
    expected = {f.name: f for f in fields(kind)}
    unknown = sorted(set(entries) - set(expected))
    if unknown:
        raise TuningError(f"unknown entry {section}.{unknown[0]} (known: {', '.join(expected)})")
    values = {}
    for name, spec in expected.items():
        where = f"{section}.{name}"
        entry = entries.get(name)
        if not isinstance(entry, dict) or "value" not in entry:
            raise TuningError(f"{where} is missing or has no `value`")
        reason = entry.get("why")
        if not isinstance(reason, str) or not reason.strip():
            raise TuningError(f"{where} has no `why`: give the figure that justified the value")
        extra = sorted(set(entry) - {"value", "why"})
        if extra:
            raise TuningError(f"{where} has an unknown key {extra[0]!r} (only `value` and `why`)")
        values[name] = _number(where, entry["value"], spec)
        why[where] = " ".join(reason.split())
    return values


def _number(where: str, raw: object, spec: Any) -> int | float:
    """`raw` as the field's type (an int field takes whole numbers only), within its bounds."""
    if isinstance(raw, str):
        try:
            raw = float(raw)
        except ValueError:
            raise TuningError(f"{where} must be a number, not {raw!r}") from None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise TuningError(f"{where} must be a number, not {raw!r}")
    if spec.type in ("int", int):
        if isinstance(raw, float) and not raw.is_integer():
            raise TuningError(f"{where} must be a whole number, not {raw!r}")
        value: int | float = int(raw)
    else:
        value = float(raw)
    low, high = spec.metadata["low"], spec.metadata["high"]
    if not low <= value <= high:
        raise TuningError(f"{where} must be between {low:g} and {high:g}, not {value:g}")
    return value


@lru_cache(maxsize=1)
def default_tuning() -> Tuning:
    """The shipped `prompts/ranking.yaml`, read once: for code built without a Tuning (tests, Chunker())."""
    return Tuning.load(DEFAULT_TUNING_FILE)


def setting_overrides(settings: Settings) -> dict[str, float]:
    """The tuned numbers the settings override (ABSTAIN_MARGIN and the like), when set."""
    return {f.metadata["tuned"]: getattr(settings, f.name) for f in fields(Settings)
            if f.metadata.get("tuned") and getattr(settings, f.name) is not None}


def load_tuning(settings: Settings) -> Tuning:
    """TUNING_FILE, with the settings' overrides applied: what a KnowledgeBase ranks and declines with."""
    return Tuning.load(settings.tuning_file).with_values(setting_overrides(settings))
