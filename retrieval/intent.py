"""What a question asks for (advantages, drawbacks, steps, examples, a definition) and about which model.

Search finds the right passage; the answer must then quote the right part of it. "What are
the risks of open-sourcing?" must not open with the definition of open source, nor offer a
closed-source drawback as an advantage. The documents label their lists ("闭源模式 › 优点"),
so a question's intent and subject are matched against those labels. The words are data
(prompts/answer_intents.yaml), in English and Chinese.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from strategy_bot.settings import PROMPTS_DIR
from strategy_bot.tuning import AnswerTuning, default_tuning

INTENTS_FILE = PROMPTS_DIR / "answer_intents.yaml"


@dataclass(frozen=True)
class Intent:
    kinds: frozenset[str]  # what the question asks for ({"advantages"}; empty: anything relevant)
    subjects: frozenset[str]  # which model it is about ({"closed"}; empty: not said)


def _matcher(words: list[str]) -> re.Pattern[str]:
    """English words and phrases on word boundaries (any case); Chinese ones as substrings."""
    parts = [rf"(?<![a-z]){re.escape(w.lower())}(?![a-z])" if w.isascii() else re.escape(w) for w in words]
    return re.compile("|".join(parts) or r"(?!x)x")


class IntentModel:
    """The intent words of prompts/answer_intents.yaml, compiled once."""

    def __init__(self, data: dict) -> None:
        intents = data["intents"]
        self._asks = {kind: _matcher(entry["en"] + entry["zh"]) for kind, entry in intents.items()}
        self._labels = {kind: _matcher(entry["labels"]) for kind, entry in intents.items() if entry["labels"]}
        self._strong = {kind: _matcher(entry["strong"]["en"] + entry["strong"]["zh"])
                        for kind, entry in intents.items() if "strong" in entry}
        self._subjects = {name: _matcher(entry["en"] + entry["zh"]) for name, entry in data["subjects"].items()}
        self.opposites: dict[str, str] = dict(data["opposites"])
        # words that hold an intent word but mean something else ("流程图" is a flowchart, not steps)
        self._false_friends = _matcher(data.get("false_friends", []))
        self._filler = _matcher(data["filler"]["en"] + data["filler"]["zh"])
        self.heading_kinds = frozenset(kind for kind, entry in intents.items() if entry.get("heading_lists"))
        self._definition = _matcher(data["definition_markers"])
        self._glossary = _matcher(data["glossary_leads"])
        self._code = _matcher(data["code_questions"]["en"] + data["code_questions"]["zh"])
        self._specifics = [(_matcher(entry["asks"]["en"] + entry["asks"]["zh"]), re.compile(entry["evidence"]),
                             entry["what"], bool(entry.get("a_list_answers"))) for entry in data["specifics"].values()]
        follow = data["follow_up"]
        self._refers_back = re.compile("|".join(follow["strong"]["en"] + follow["strong"]["zh"]))
        self._weak = re.compile("|".join(follow["weak"]["en"] + follow["weak"]["zh"]))
        self._short_words, self._short_chars = int(follow["short_words"]), int(follow["short_chars"])

    def of(self, question: str, previous: str | None = None) -> Intent:
        """The question's intent; "definition" only when it asks for nothing more specific.
        A follow-up keeps what its thread's previous question asked for or was about, unless
        it says so itself ("What about open source?" after "advantages of closed source?")."""
        text = self._false_friends.sub(" ", question.lower().strip())
        kinds = {kind for kind, pattern in self._asks.items() if kind != "definition" and pattern.search(text)}
        if not kinds and self._asks["definition"].search(text):
            kinds = {"definition"}
        own = Intent(frozenset(kinds), self.subjects_in(text))
        if previous is None:
            return own
        before = self.of(previous)
        return Intent(own.kinds or before.kinds, own.subjects or before.subjects)

    def topic_terms(self, question: str) -> list[str]:
        """What the question names besides what it asks for, which model and filler: English words,
        and runs of Chinese characters ("NLP", "领域"; "因素"), for checking a passage is about them."""
        text = self._false_friends.sub(" ", question.lower())
        for pattern in [*self._asks.values(), *self._subjects.values(), self._filler]:
            text = pattern.sub(" ", text)
        return re.findall(r"[a-z0-9][a-z0-9-]+|[\u3400-\u9fff]{2,}", text)

    def asks_only_kind(self, question: str) -> bool:
        """Whether the question says nothing but what it asks for and about which model ("What's the
        upside of going open source?", "开源有哪些缺点？"): the documents' list labelled so answers it.
        One that names a topic too ("闭源对用户体验有没有好处？", "…for financial news monitoring")
        is answered from the passage on that topic, which is rarely labelled."""
        return not self.topic_terms(question)

    def strongly_asked(self, intent: Intent, question: str) -> Intent:
        """`intent` without the kinds the question asks for only weakly ("怎么" for steps): enough
        to choose among a passage's sentences, not to move a passage up the ranking."""
        text = question.lower()
        kinds = {k for k in intent.kinds if k not in self._strong or self._strong[k].search(text)}
        return Intent(frozenset(kinds), intent.subjects)

    def standalone(self, question: str, previous: str) -> str | None:
        """A follow-up that only changes the model ("What about open source?", "那闭源呢？"),
        rewritten as its thread's previous question about that model, so it is searched like a
        question of its own; None when it is not that kind of follow-up."""
        own = self.of(question)
        before = self.subjects_in(previous)
        if own.kinds or len(own.subjects) != 1 or not before or own.subjects == before:
            return None
        new = self._subjects[next(iter(own.subjects))].search(question.lower())
        old = [self._subjects[name].search(previous.lower()) for name in before]
        if new is None or len(old) != 1 or old[0] is None:
            return None
        start, end = old[0].span()
        return previous[:start] + question[new.start():new.end()] + previous[end:]

    def not_given(self, question: str, quoted: str, language: str, is_list: bool = False) -> str | None:
        """What the question asks for that the quoted text does not give ("that figure",
        "which licence to use"), in the asker's language; None when nothing specific is missing."""
        for asks, evidence, what, list_answers in self._specifics:
            if asks.search(question.lower()) and not evidence.search(quoted) and not (is_list and list_answers):
                return what.get(language, what["en"])
        return None

    def is_follow_up(self, question: str) -> bool:
        """Whether a question refers back to its thread rather than standing alone."""
        text = question.lower().strip()
        if self._refers_back.search(text):
            return True
        if self.subjects_in(text):
            return False
        if self._weak.search(text):
            return True
        words = re.findall(r"[a-z0-9'-]+", text)
        chinese = re.findall(r"[\u3400-\u9fff]", text)
        return len(chinese) <= self._short_chars if chinese else len(words) <= self._short_words

    def subjects_in(self, text: str) -> frozenset[str]:
        return frozenset(name for name, pattern in self._subjects.items() if pattern.search(text.lower()))

    def kinds_labelled(self, labels: str) -> frozenset[str]:
        labels = self._false_friends.sub(" ", labels)
        return frozenset(kind for kind, pattern in self._labels.items() if pattern.search(labels))

    def list_answers(self, labels: str, intent: Intent) -> bool:
        """Whether a list with these labels (its own, its lead-in and its passage's heading:
        "3.2 算法步骤详解" heads steps) is labelled with the kind asked for, about the model asked
        about (or about no particular model when the question names none or both)."""
        if not intent.kinds & self.kinds_labelled(labels):
            return False
        subjects = self.subjects_in(labels)
        return not intent.subjects or not subjects or subjects <= intent.subjects

    def asks_about_code(self, question: str) -> bool:
        """Whether the question is about the sample code or the environment set-up (code lines answer it)."""
        return bool(self._code.search(question.lower()))

    def is_definition(self, sentence: str) -> bool:
        return bool(self._definition.search(sentence))

    def introduces_glossary(self, lead: str) -> bool:
        """Whether a list's lead-in says it lists terms or concepts."""
        return bool(self._glossary.search(lead.lower()))

    def adjustment(self, intent: Intent, labels: str, sentence: str, weights: AnswerTuning | None = None) -> float:
        """How much better (or worse) a sentence fits the question than its similarity says,
        from the labels of the list it sits in and whether it is a definition (the weights:
        prompts/ranking.yaml `answer`)."""
        w, score = weights or default_tuning().answer, 0.0
        kinds = self.kinds_labelled(labels)
        if intent.kinds & kinds:
            score += w.intent_bonus
        if any(self.opposites.get(k) in kinds and k not in kinds for k in intent.kinds):
            score -= w.opposite_penalty
        subjects = self.subjects_in(labels)
        if intent.subjects and subjects and not intent.subjects & subjects:
            score -= w.subject_penalty
        if "definition" not in intent.kinds and self.is_definition(sentence):
            score -= w.definition_penalty
        return score


@lru_cache(maxsize=4)
def load_intents(path: Path = INTENTS_FILE) -> IntentModel:
    return IntentModel(yaml.safe_load(path.read_text(encoding="utf-8")))
