"""Block Kit for the admin side: re-index summaries, index status, the document list, upload results.

Pure functions: core results in (`BuildSummary`, `IndexStatus`, `DocumentEntry`), messages
out. Texts come from prompts/reindex_slack.yaml; anything a user or a file supplied
(names, titles, reasons) is escaped so it cannot ping anyone or break the markup.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import yaml

from bot.blocks.answer import Message
from bot.blocks.text import MAX_BLOCKS, SECTION_TEXT_LIMIT, escape, section, trim
from strategy_bot.settings import PROMPTS_DIR

MAX_NAMES_SHOWN = 20
SLACK_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")


@lru_cache(maxsize=2)
def reindex_texts(path: Path = PROMPTS_DIR / "reindex_slack.yaml") -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class UploadOutcome:
    """One shared file: stored (with its title and chunk count once indexed) or refused with a reason."""

    name: str
    stored_as: str | None = None
    title: str = ""
    chunks: int = 0
    created: bool = True
    reason: str | None = None


def text_message(key: str, **values: object) -> Message:
    """A one-section message from a template; `values` must already be escaped where user-supplied."""
    return sections_message([reindex_texts()[key].format(**values)])


def sections_message(parts: Sequence[str]) -> Message:
    """Paragraphs packed into as few section blocks as Slack's 3,000-character limit allows."""
    blocks: list[dict] = []
    current = ""
    for part in parts:
        part = trim(part, SECTION_TEXT_LIMIT)
        if current and len(current) + 1 + len(part) > SECTION_TEXT_LIMIT:
            blocks.append(section(current))
            current = part
        else:
            current = f"{current}\n{part}" if current else part
    if current:
        blocks.append(section(current))
    blocks = blocks[:MAX_BLOCKS]
    return Message(text=trim(parts[0] if parts else "", 300), blocks=blocks)


def summary_lines(summary) -> list[str]:
    """The counts line, then who was added/changed/removed, then skipped files with reasons."""
    texts = reindex_texts()
    lines = [texts["summary_counts"].format(
        added=len(summary.added), changed=len(summary.changed), removed=len(summary.removed),
        unchanged=len(summary.unchanged), chunks=summary.chunks, seconds=summary.seconds)]
    for label, ids in (("Added", summary.added), ("Changed", summary.changed), ("Removed", summary.removed)):
        if ids:
            lines.append(texts["summary_names"].format(label=label, names=_names(ids)))
    if summary.translated:
        lines.append(texts["summary_translated"].format(count=summary.translated))
    if summary.repaired:
        lines.append(texts["summary_repaired"].format(files=", ".join(f"`{escape(f)}`" for f in summary.repaired)))
    if summary.skipped:
        lines.append(texts["summary_skipped"])
        lines.extend(f"• `{escape(name)}`: {escape(reason)}" for name, reason in summary.skipped[:MAX_NAMES_SHOWN])
    return lines


def summary_message(summary) -> Message:
    title = reindex_texts()["summary_title"].format(seconds=summary.seconds)
    return sections_message([title, *summary_lines(summary)])


def status_message(status) -> Message:
    if status is None:
        return text_message("status_missing")
    return text_message("status", documents=status.documents, chunks=status.chunks, model=escape(status.model_id),
                        built_at=slack_date(status.built_at), built_by=who(status.built_by))


def documents_message(documents: Sequence) -> Message:
    texts = reindex_texts()
    lines = [texts["list_heading"].format(count=len(documents))]
    shown = documents[:150]  # keeps the message well inside Slack's limits
    lines += [texts["list_line"].format(title=escape(d.title), file=escape(d.path), chunks=d.chunks) for d in shown]
    if len(documents) > len(shown):
        lines.append(texts["list_more"].format(more=len(documents) - len(shown)))
    return sections_message(lines)


def upload_message(outcomes: Sequence[UploadOutcome], summary=None) -> Message:
    """What happened to each shared file, then the re-index summary when one ran."""
    texts = reindex_texts()
    lines = []
    for item in outcomes:
        if item.reason is not None:
            lines.append(texts["upload_rejected"].format(name=escape(item.name), reason=escape(item.reason)))
        elif item.created:
            lines.append(texts["upload_indexed"].format(title=escape(item.title), file=escape(item.stored_as or ""),
                                                        chunks=item.chunks))
        else:
            lines.append(texts["upload_same"].format(title=escape(item.title), file=escape(item.stored_as or "")))
    if not lines:
        lines.append(texts["upload_none"])
    if summary is not None:
        lines += summary_lines(summary)
    return sections_message(lines)


def slack_date(epoch: float) -> str:
    """A date Slack shows in the reader's own time zone (with a UTC fallback for old clients)."""
    fallback = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch))
    return f"<!date^{int(epoch)}^{{date_short_pretty}} at {{time}}|{fallback}>"


def who(built_by: str) -> str:
    """A Slack user id becomes a mention (shown as the name); anything else ("cli") is shown as text."""
    return f"<@{built_by}>" if SLACK_USER_ID.fullmatch(built_by) else escape(built_by or "unknown")


def _names(ids: Sequence[str]) -> str:
    shown = ", ".join(f"`{escape(i)}`" for i in ids[:MAX_NAMES_SHOWN])
    return shown + (f" and {len(ids) - MAX_NAMES_SHOWN} more" if len(ids) > MAX_NAMES_SHOWN else "")
