"""LLM answers: the retrieved passages (and the thread so far) to a chat model, its answer checked.

The extractive answer (answer.py) is always computed first. The model's answer is checked
sentence by sentence (retrieval/support.py): a sentence stays only when a passage it cites
supports it, and the markers are renumbered to the passages actually cited, in order of use.
When too little is left (or nothing but markers), on a provider error or past the deadline,
the extractive answer is served; a reply saying the passages don't answer is served as a
decline (or, beside supported sentences, a partial answer). The answer's `llm` says what
happened (`ask --json`), and one WARNING line says why whenever sentences were dropped.

Cost is bounded here, not left to the server: LLM_TIMEOUT_S is the whole wait (the reply
is read on a worker thread and abandoned at the deadline), and the reply is cut after
LLM_MAX_TOKENS streamed tokens even when a server ignores the cap it was sent.
The prompts and the tuned support thresholds live in prompts/llm_answer.yaml.
"""
from __future__ import annotations

import html
import logging
import queue
import threading
import time
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

import numpy as np
import yaml
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from retrieval.answer import Answer, Citation
from retrieval.citation_check import MARKER, strip_thinking
from retrieval.llm import chat_model, model_name
from retrieval.support import (
    CLAIM,
    DECLINE,
    EMPTY,
    LEAD_IN,
    Evidence,
    Sentence,
    SupportChecker,
    Verdict,
    complete,
    joined,
    rewrite_markers,
    split_sentences,
)
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


@dataclass
class LLMAnswer(Answer):
    """An `Answer` that says what became of the model's reply: `llm` = {"used", "reason",
    "dropped_sentences"} (a subclass, so the extractive answer's contract stays as it is)."""

    llm: dict = field(default_factory=dict)


def with_llm(base: Answer, used: bool, reason: str = "", dropped: int = 0, grounds: Sequence[str] = (),
             **changes) -> LLMAnswer:
    """`base` with what became of the LLM answer; `grounds`: the document sentence that best supports
    each sentence served, as written (what the eval's key points are matched in, as a quote's original)."""
    values = {f.name: getattr(base, f.name) for f in fields(Answer)}
    llm = {"used": used, "reason": reason, "dropped_sentences": dropped, **({"grounds": list(grounds)} if used else {})}
    return LLMAnswer(**{**values, **changes}, llm=llm)


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


class DeadlinePassed(TimeoutError):
    """No reply (or no end of it) within LLM_TIMEOUT_S."""


@dataclass
class _Written:
    """The checked answer so far, built append-only from verdicts in the model's order."""

    text: str = ""
    number: dict[int, int] = field(default_factory=dict)  # prompt passage number -> number shown
    claims: int = 0
    kept: int = 0
    declines: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> sentences
    pending: Sentence | None = None  # a lead-in, shown once a claim after it is
    last_line: int = -1
    grounds: list[str] = field(default_factory=list)  # the supporting document sentence of each claim kept

    def add(self, verdict: Verdict) -> None:
        if verdict.kind == EMPTY:
            return
        if verdict.kind == LEAD_IN:
            self.pending = verdict.sentence
            return
        self.claims += verdict.kind == CLAIM
        if not verdict.keep:
            self.dropped[verdict.reason] = self.dropped.get(verdict.reason, 0) + 1
            return
        if self.pending is not None and verdict.kind == CLAIM:
            self._show(self.pending, self.pending.raw)
        self.pending = None
        self.kept += verdict.kind == CLAIM
        self.declines += verdict.kind == DECLINE
        if verdict.grounds:
            self.grounds.append(verdict.grounds)
        for n in verdict.passages:
            self.number.setdefault(n, len(self.number) + 1)
        self._show(verdict.sentence, rewrite_markers(verdict.sentence.raw, verdict.passages, self.number))

    def _show(self, sentence: Sentence, shown: str) -> None:
        new_line = sentence.line != self.last_line
        self.text = joined(self.text, (sentence.bullet if new_line else "") + shown, new_line and bool(self.text))
        self.last_line = sentence.line

    @property
    def dropped_count(self) -> int:
        return sum(self.dropped.values())

    def why_dropped(self) -> str:
        return ", ".join(f"{count} {reason}" for reason, count in sorted(self.dropped.items()))


class Synthesiser:
    """Writes answers with the configured chat model; thread-safe (the LangChain models are)."""

    def __init__(self, settings: Settings, support: SupportChecker, model: "BaseChatModel | None" = None) -> None:
        self.settings = settings
        self.support = support
        self.model = model if model is not None else chat_model(settings)
        self.label = f"{settings.llm_provider}:{model_name(settings)}"

    def messages(self, extractive: Answer, transcript: Transcript) -> list[BaseMessage]:
        return build_messages(extractive.question, extractive.language, extractive.citations, transcript,
                              self.settings)

    def answer(self, extractive: Answer, transcript: Transcript = ()) -> Answer:
        """The checked model answer (whole, trimmed or a decline), else `extractive`; says which in `llm`."""
        *_, last = self.stream(extractive, transcript)
        assert last.answer is not None
        return last.answer

    def stream(self, extractive: Answer, transcript: Transcript = ()) -> Iterator[Draft]:
        """Drafts as the model writes, each the previous one plus sentences that passed the check
        (nothing unchecked is ever shown), then the final answer. The reply is read until the end,
        LLM_MAX_TOKENS streamed tokens or LLM_TIMEOUT_S, whichever comes first."""
        started = time.perf_counter()
        deadline = time.monotonic() + self.settings.llm_timeout_s
        evidence = self.support.evidence(extractive.citations)
        embed = _cached(self.support.embed)
        checker = SupportChecker(self.support.policy, embed, self.support.evidence)
        written, judged, text, cut, shown = _Written(), 0, "", "", ""
        try:
            for text, cut in self._read(self.messages(extractive, transcript), deadline):
                sentences = split_sentences(text)
                finished = complete(sentences, cut == "end") if cut else sentences[:-1]  # the last may grow
                if len(finished) > judged:
                    for verdict in checker.judge(finished[judged:], evidence):
                        written.add(verdict)
                    judged = len(finished)
                    if written.kept and written.text != shown:
                        shown = written.text
                        yield Draft(shown)
        except Exception as exc:  # noqa: BLE001 - each provider has its own errors; none may cost the answer
            if not (isinstance(exc, DeadlinePassed) and text):
                yield self._final(self._fallback(extractive, _describe(exc), started))
                return
            cut = f"cut at the deadline (LLM_TIMEOUT_S={self.settings.llm_timeout_s:g} s)"
        yield self._final(self._finish(extractive, text, started, cut, checker, evidence))

    @staticmethod
    def _final(answer: Answer) -> Draft:
        return Draft(answer.answer, answer)

    def _read(self, messages: list[BaseMessage], deadline: float) -> Iterator[tuple[str, str]]:
        """(text so far, why it was cut or "") after each streamed piece; the last one says the end.

        A worker thread reads the stream, so a server that stops sending cannot hold us past the
        deadline (the HTTP client's timeout is per read, not total); told to stop, the worker
        closes the stream, which ends the request and lets the server stop generating.
        """
        pieces: queue.Queue[tuple[str, object]] = queue.Queue()
        stop = threading.Event()
        threading.Thread(target=self._pump, args=(messages, pieces, stop), daemon=True,
                         name="llm-reply").start()
        cap = self.settings.llm_max_tokens
        chars_per_token = float(load_prompts()["support"]["chars_per_token"])
        parts: list[str] = []
        try:
            while True:
                remaining = deadline - time.monotonic()
                try:
                    kind, value = pieces.get(timeout=max(0.0, remaining))
                except queue.Empty:
                    raise DeadlinePassed(f"no complete answer within LLM_TIMEOUT_S={self.settings.llm_timeout_s:g} s") \
                        from None
                if kind == "error":
                    raise value  # type: ignore[misc]
                if kind == "end":
                    yield "".join(parts), "end"
                    return
                parts.append(str(value))
                text = "".join(parts)
                if max(len(parts), len(text) / chars_per_token) >= cap:
                    yield text, f"cut at LLM_MAX_TOKENS={cap}"
                    return
                yield text, ""
        finally:
            stop.set()

    def _pump(self, messages: list[BaseMessage], pieces: "queue.Queue[tuple[str, object]]",
              stop: threading.Event) -> None:
        stream = self.model.stream(messages)
        try:
            for chunk in stream:
                if stop.is_set():
                    break
                pieces.put(("text", text_of(chunk)))
            else:
                pieces.put(("end", None))
        except Exception as exc:  # noqa: BLE001 - handed to the reader, which decides
            pieces.put(("error", exc))
        finally:
            stream.close()  # type: ignore[attr-defined]  - ends the HTTP request early when abandoned

    def _finish(self, extractive: Answer, text: str, started: float, cut: str, checker: SupportChecker,
                evidence: Sequence[Evidence]) -> Answer:
        """The whole reply judged again (numbering is only certain once every line is in), then served
        whole, trimmed or as a decline, or the extractive answer when too little of it holds."""
        ended, cut = cut == "end", "" if cut == "end" else cut
        written = _Written()
        for verdict in checker.judge(complete(split_sentences(text), ended), evidence):
            written.add(verdict)
        policy = checker.policy
        if not written.kept and not written.declines:
            if not strip_thinking(text).strip():
                reason = "empty answer"
            elif not written.claims:
                reason = "the answer is only citation markers" if MARKER.search(text) else \
                    "the answer cites none of the passages"
            elif set(written.dropped) == {"uncited"}:
                reason = f"the answer cites none of the passages ({written.why_dropped()})"
            else:
                reason = f"no sentence is supported by a passage it cites ({written.why_dropped()})"
            return self._fallback(extractive, "; ".join(filter(None, [reason, cut])), started,
                                  written.dropped_count)
        if written.kept and written.kept < policy.min_kept_share * written.claims:
            reason = f"only {written.kept} of {written.claims} sentences are supported ({written.why_dropped()})"
            return self._fallback(extractive, "; ".join(filter(None, [reason, cut])), started,
                                  written.dropped_count)
        if not written.kept:
            return self._decline(extractive, written, started, cut)
        notes = [note for note in (cut, written.dropped and f"dropped {written.why_dropped()}") if note]
        if notes:
            log.warning("LLM answer trimmed (%s: %s)", self.label, "; ".join(notes))
        order = sorted(written.number, key=written.number.get)  # type: ignore[arg-type]
        by_n = {c.n: c for c in extractive.citations}
        citations = [replace(by_n[old], n=written.number[old]) for old in order]
        # the model's own sentences quote nothing verbatim: no `quotes`
        return with_llm(extractive, True, "; ".join(notes), written.dropped_count, written.grounds,
                        answer=written.text,
                        generated_by=self.label, quotes=[], citations=citations,
                        coverage="partial" if written.declines else "answered",
                        timings_ms=_timed(extractive, started))

    def _decline(self, extractive: Answer, written: _Written, started: float, cut: str) -> Answer:
        """The model said the passages don't answer: a decline, with the passages as the closest."""
        notes = [note for note in (cut, written.dropped and f"dropped {written.why_dropped()}") if note]
        reason = "; ".join(["the model says the passages don't answer", *notes])
        if notes:
            log.warning("LLM answer trimmed (%s: %s)", self.label, reason)
        return with_llm(extractive, True, reason, written.dropped_count, answer=written.text,
                        generated_by=self.label, quotes=[], citations=[], abstained=True,
                        closest=extractive.citations[:3], coverage="declined", timings_ms=_timed(extractive, started))

    def _fallback(self, extractive: Answer, reason: str, started: float, dropped: int = 0) -> Answer:
        reason = self._redact(reason)
        log.warning("LLM answer not used (%s: %s); serving the extractive answer", self.label, reason)
        return with_llm(extractive, False, reason, dropped, timings_ms=_timed(extractive, started))

    def _redact(self, text: str) -> str:
        key = self.settings.llm_api_key
        return text.replace(key, "***") if key else text


def _cached(embed: Callable[[list[str]], np.ndarray]) -> Callable[[list[str]], np.ndarray]:
    """`embed` remembering its vectors for one answer: the final check re-judges what drafts judged."""
    seen: dict[str, np.ndarray] = {}

    def cached(texts: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in seen]
        if missing:
            seen.update(zip(missing, embed(missing)))
        return np.stack([seen[t] for t in texts])

    return cached


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc)[:300]}"


def _timed(extractive: Answer, started: float) -> dict[str, float]:
    spent = (time.perf_counter() - started) * 1000
    timings = dict(extractive.timings_ms)
    timings["generate"] = spent
    timings["total"] = timings.get("total", 0.0) + spent
    return timings
