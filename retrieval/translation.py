"""Translating new document sentences at index time, once, with the configured LLM provider.

The shipped articles come with reviewed renderings (knowledge/corpus/translations.en.jsonl);
a document an admin adds later has none. When an LLM provider is configured, a re-index
renders each new sentence, heading and title one at a time and appends it to a cache in
DATA_DIR (`translations/translations.<lang>.jsonl`, the same format as the reviewed files,
with `by` naming the model). A sentence is never translated twice: any later re-index finds
it in the cache by its text, and questions never wait for a model. With no provider, nothing
is translated and answers quote the original, saying no translation is available yet.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

import yaml

from knowledge.chunking import Chunk
from knowledge.language import language_of
from knowledge.tm_units import Unit, units_of_chunks
from knowledge.translations import TranslationMemory
from strategy_bot.settings import PROMPTS_DIR

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

log = logging.getLogger(__name__)

CACHE_FOLDER = "translations"  # under DATA_DIR
CJK = re.compile(r"[\u3400-\u9fff]")
WRAPPING = re.compile(r'^(?:translation\s*:\s*)?["“「]?(.*?)["”」]?$', re.IGNORECASE | re.DOTALL)


@dataclass
class TranslationRun:
    """What one re-index translated, for its summary."""

    translated: int = 0
    failed: int = 0
    left_for_later: int = 0  # over the per-build cap: the next re-index goes on


@lru_cache(maxsize=2)
def _prompts(path: Path = PROMPTS_DIR / "translation.yaml") -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


class SentenceTranslator:
    """One sentence in, its rendering out (or None when the reply is not a plausible translation)."""

    def __init__(self, model: "BaseChatModel", model_id: str) -> None:
        self.model, self.model_id = model, model_id

    def __call__(self, text: str, source: str, target: str) -> str | None:
        prompts = _prompts()
        names = prompts["languages"]
        messages = [("system", prompts["system"].format(source=names[source], target=names[target])),
                    ("human", prompts["user"].format(text=text))]
        try:
            reply = self.model.invoke(messages)
        except Exception as exc:  # any provider error costs this sentence, not the re-index
            log.warning("translation of one sentence failed: %s", type(exc).__name__)
            return None
        return plausible(str(reply.content), text, target, prompts["max_length_ratio"])


def plausible(reply: str, source: str, target: str, max_ratio: float) -> str | None:
    """The reply without wrapping quotes or a "Translation:" prefix, if it can be a translation."""
    text = WRAPPING.match(" ".join(reply.split())).group(1).strip()
    if not text or len(text) > max_ratio * len(source) + 80:
        return None
    if target == "en" and CJK.search(text):
        return None
    if target == "zh" and not CJK.search(text):
        return None
    return text


def cache_folder(data_dir: Path) -> Path:
    return Path(data_dir) / CACHE_FOLDER


def worth_translating(language: str) -> Callable[[str], bool]:
    """Texts worth translating out of the corpus's language: in a Chinese corpus whatever has
    Chinese in it (formulas, names and English asides are left as they are); in an English
    one, prose of three words or more."""
    if language == "zh":
        return lambda text: bool(CJK.search(text))
    return lambda text: language_of(text) == "en" and len(re.findall(r"[A-Za-z]+", text)) >= 3


def translate_new_units(chunks: Iterable[Chunk], memory: TranslationMemory, data_dir: Path,
                        translate: Callable[[str, str, str], str | None], model_id: str,
                        limit: int) -> TranslationRun:
    """Render every unit of the chunks that no translation memory or cache has yet, at most `limit`."""
    run = TranslationRun()
    folder = cache_folder(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    chunks = list(chunks)
    source = language_of("".join(chunk.text for chunk in chunks))
    target = "en" if source == "zh" else "zh"  # the other of the two languages the bot answers in
    units = [u for u in units_of_chunks(chunks, keep=worth_translating(source))
             if memory.render(u.source, target) is None]
    run.left_for_later = max(0, len(units) - limit)
    for unit in units[:limit]:
        rendering = translate(unit.source, source, target)
        if rendering is None:
            run.failed += 1
            continue
        _append(folder / f"translations.{target}.jsonl", unit, target, rendering, model_id)
        memory.add(unit.source, target, rendering)
        run.translated += 1
    if run.failed or run.left_for_later:
        log.warning("index-time translation: %d rendered, %d failed, %d left for the next re-index",
                    run.translated, run.failed, run.left_for_later)
    return run


def _append(path: Path, unit: Unit, language: str, rendering: str, model_id: str) -> None:
    """One line per rendering, flushed at once: a crash mid-run keeps what was already paid for."""
    row = {"source": unit.source, language: rendering, "kind": unit.kind, "doc": unit.doc_id,
           "sha": hashlib.sha256(unit.source.encode("utf-8")).hexdigest()[:16], "by": model_id}
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(row, ensure_ascii=False) + "\n")
