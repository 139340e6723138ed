"""LLM answers: the retrieved passages (and the thread so far) to a chat model, its answer checked.

The extractive answer (answer.py) is always computed first. The model's answer replaces it
only when it cites at least one of the passages it was given (markers naming no given
passage are removed first); a provider error, a timeout or an answer without a valid
citation leaves the extractive answer in place and says why in the log, never to the user.
The prompts live in prompts/llm_answer.yaml.
"""
from __future__ import annotations

import html
import logging
import time
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

import yaml
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from retrieval.answer import Answer, Citation
from retrieval.citation_check import MARKER, check_citations, strip_thinking
from retrieval.llm import chat_model, model_name
from strategy_bot.settings import PROMPTS_DIR, Settings

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

log = logging.getLogger(__name__)
PROMPTS_FILE = PROMPTS_DIR / "llm_answer.yaml"
Transcript = Sequence[tuple[str, str]]  # a thread's earlier (question, answer) pairs, oldest first


@dataclass(frozen=True)
class Draft:
    """One step of a streamed answer: the text so far, and on the last step the checked `Answer`."""

    text: str
    answer: Answer | None = None

    @property
    def final(self) -> bool:
        return self.answer is not None


@lru_cache(maxsize=4)
def load_prompts(path: Path = PROMPTS_FILE) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _data(text: str) -> str:
    """Data for a tagged section: with < > & escaped, no document can close its section."""
    return html.escape(text, quote=False)


def format_passages(citations: Sequence[Citation], prompts: dict) -> str:
    return "\n\n".join(
        prompts["passage"].format(n=c.n, title=html.escape(c.title), section=html.escape(c.section),
                                  text=_data(c.text.strip()))
        for c in citations)


def format_conversation(transcript: Transcript, prompts: dict, turns: int, chars: int) -> str:
    """The last `turns` question/answer pairs, each answer cut to share `chars` fairly.

    Old answers lose their [n] markers: those numbered other passages, and left in they
    would invite the model to cite numbers that mean something else now.
    """
    recent = [(q, a) for q, a in transcript if q.strip()][-turns:] if turns > 0 else []
    if not recent:
        return prompts["no_conversation"]
    budget = max(200, chars // len(recent))
    blocks = []
    for question, answer in recent:
        answer = MARKER.sub("", answer or "").strip()
        question, answer = _cut(question, budget // 2), _cut(answer, budget - min(len(question), budget // 2))
        blocks.append(prompts["turn"].format(question=_data(question), answer=_data(answer)))
    return "\n".join(blocks)


def _cut(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: max(0, limit - 1)].rstrip() + "…"


def build_messages(question: str, language: str, citations: Sequence[Citation], transcript: Transcript,
                   settings: Settings, prompts: dict | None = None) -> list[BaseMessage]:
    """The system rules, then one user message holding every piece of outside text as tagged data."""
    prompts = prompts or load_prompts()
    user = prompts["user"].format(
        passages=format_passages(citations, prompts),
        conversation=format_conversation(transcript, prompts, settings.llm_history_turns,
                                         settings.llm_history_chars),
        question=_data(question), language=prompts["languages"].get(language, language))
    return [SystemMessage(content=prompts["system"]), HumanMessage(content=user)]


def text_of(message: BaseMessage) -> str:
    """The text of a reply (or streamed chunk); some providers send a list of content blocks."""
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(block if isinstance(block, str) else str(block.get("text", ""))
                   for block in content if isinstance(block, str) or block.get("type") == "text")


class Synthesiser:
    """Writes answers with the configured chat model; thread-safe (the LangChain models are)."""

    def __init__(self, settings: Settings, model: "BaseChatModel | None" = None) -> None:
        self.settings = settings
        self.model = model if model is not None else chat_model(settings)
        self.label = f"{settings.llm_provider}:{model_name(settings)}"

    def messages(self, extractive: Answer, transcript: Transcript) -> list[BaseMessage]:
        return build_messages(extractive.question, extractive.language, extractive.citations, transcript,
                              self.settings)

    def answer(self, extractive: Answer, transcript: Transcript = ()) -> Answer:
        """The model's answer when it holds up, else `extractive` unchanged."""
        started = time.perf_counter()
        try:
            reply = self.model.invoke(self.messages(extractive, transcript))
        except Exception as exc:  # noqa: BLE001 - each provider has its own errors; none may cost the answer
            return self._fallback(extractive, _describe(exc), started)
        return self._finish(extractive, text_of(reply), started)

    def stream(self, extractive: Answer, transcript: Transcript = ()) -> Iterator[Draft]:
        """Drafts of the text as the model writes (markers already checked), then the final answer."""
        started = time.perf_counter()
        parts: list[str] = []
        shown = ""
        try:
            for chunk in self.model.stream(self.messages(extractive, transcript)):
                parts.append(text_of(chunk))
                text = check_citations("".join(parts), len(extractive.citations)).text
                if text and text != shown:
                    shown = text
                    yield Draft(text)
        except Exception as exc:  # noqa: BLE001 - as in answer()
            final = self._fallback(extractive, _describe(exc), started)
        else:
            final = self._finish(extractive, "".join(parts), started)
        yield Draft(final.answer, final)

    def _finish(self, extractive: Answer, text: str, started: float) -> Answer:
        checked = check_citations(text, len(extractive.citations))
        if not checked.cited:
            reason = "the answer cites none of the passages" if strip_thinking(text).strip() else "empty answer"
            return self._fallback(extractive, reason, started)
        if checked.removed:
            log.info("%s: removed citation markers naming no given passage: %s", self.label,
                     ", ".join(checked.removed))
        # the model's own sentences quote nothing verbatim: no `quotes`, and every source may be cited
        return replace(extractive, answer=checked.text, generated_by=self.label, quotes=[],
                       timings_ms=_timed(extractive, started))

    def _fallback(self, extractive: Answer, reason: str, started: float) -> Answer:
        log.warning("LLM answer not used (%s: %s); serving the extractive answer", self.label,
                    self._redact(reason))
        return replace(extractive, timings_ms=_timed(extractive, started))

    def _redact(self, text: str) -> str:
        key = self.settings.llm_api_key
        return text.replace(key, "***") if key else text


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc)[:300]}"


def _timed(extractive: Answer, started: float) -> dict[str, float]:
    spent = (time.perf_counter() - started) * 1000
    timings = dict(extractive.timings_ms)
    timings["generate"] = spent
    timings["total"] = timings.get("total", 0.0) + spent
    return timings
