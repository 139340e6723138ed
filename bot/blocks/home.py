"""The App Home view: what the bot knows, how to ask, your recent questions; and, for admins, the
re-index button and what needs attention (declined questions, 👎 answers with reasons, cited documents).

Pure: `HomeData` in, a `views.publish` view out (validated by slack_sdk's View model, so Slack's
limits — 100 blocks, 3,000-character sections — fail here, not in Slack). Whether someone is an
admin is decided by the caller (bot/home.py) on the server; this module only lays out what it is given.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml
from slack_sdk.models.views import View

from bot.blocks.reindex import slack_date, who
from bot.blocks.text import SECTION_TEXT_LIMIT, escape, one_line, section, trim
from bot.state.conversations import Turn
from bot.state.feedback import Disliked
from strategy_bot.settings import PROMPTS_DIR

REINDEX_ACTION = "home_reindex"
HOME_BLOCK_LIMIT = 100  # Slack: blocks in a home view


@lru_cache(maxsize=2)
def home_texts(path: Path = PROMPTS_DIR / "home.yaml") -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class AdminData:
    declined: list[tuple[str, int]] = field(default_factory=list)
    disliked: list[Disliked] = field(default_factory=list)
    cited: list[tuple[str, str, int]] = field(default_factory=list)
    max_upload_mb: int = 0


@dataclass(frozen=True)
class HomeData:
    """What one user's home shows; `admin` is None for everyone who is not an admin."""

    status: object | None  # retrieval.service.IndexStatus, or None when there is no index
    problem: str | None
    recent: list[Turn]
    admin: AdminData | None = None


def home_view(data: HomeData) -> dict:
    t = home_texts()
    blocks: list[dict] = [{"type": "header", "text": {"type": "plain_text", "text": t["header"]}},
                          section(_knows(data, t)),
                          section(f"*{t['how_to_ask_heading']}*\n{t['how_to_ask']}"),
                          _lines(t["recent_heading"], [_recent(turn, t) for turn in data.recent], t["recent_none"])]
    if data.admin is not None:
        blocks += _admin_blocks(data.admin, t)
    return View(type="home", blocks=blocks[:HOME_BLOCK_LIMIT]).to_dict()


def _knows(data: HomeData, t: dict) -> str:
    if data.problem:
        return t["knows_problem"].format(reason=escape(trim(data.problem, 500)))
    status = data.status
    if status is None:
        return t["knows_missing"]
    return t["knows"].format(documents=status.documents, chunks=status.chunks,
                             built_at=slack_date(status.built_at), built_by=who(status.built_by))


def _question(text: str, t: dict) -> str:
    return trim(escape(one_line(text)), t["bounds"]["question_chars"])


def _recent(turn: Turn, t: dict) -> str:
    declined = t["recent_declined"] if turn.abstained else ""
    return t["recent_line"].format(question=_question(turn.question, t), declined=declined)


def _lines(heading: str, lines: list[str], empty: str) -> dict:
    """A heading and its lines in one section, cut to Slack's section limit."""
    return section(trim(f"*{heading}*\n" + ("\n".join(lines) if lines else empty), SECTION_TEXT_LIMIT))


def _admin_blocks(admin: AdminData, t: dict) -> list[dict]:
    days = t["bounds"]["window_days"]
    confirm = t["reindex_confirm"]
    button = {"type": "button", "action_id": REINDEX_ACTION, "style": "primary", "value": "reindex",
              "text": {"type": "plain_text", "text": t["reindex_button"]},
              "confirm": {"title": {"type": "plain_text", "text": confirm["title"]},
                          "text": {"type": "plain_text", "text": confirm["text"]},
                          "confirm": {"type": "plain_text", "text": confirm["confirm"]},
                          "deny": {"type": "plain_text", "text": confirm["deny"]}}}
    declined = [t["declined_line"].format(question=_question(q, t), times=n) for q, n in admin.declined]
    disliked = [line for item in admin.disliked for line in _disliked(item, t)]
    cited = [t["cited_line"].format(title=escape(trim(one_line(title), 150)), answers=n) for _, title, n in admin.cited]
    return [{"type": "divider"},
            {"type": "header", "text": {"type": "plain_text", "text": t["admin_heading"]}},
            section(t["admin_guidance"].format(max_mb=admin.max_upload_mb)),
            {"type": "actions", "block_id": "home_admin", "elements": [button]},
            _lines(t["declined_heading"].format(days=days), declined, t["none_yet"]),
            _lines(t["disliked_heading"].format(days=days), disliked, t["none_yet"]),
            _lines(t["cited_heading"].format(days=days), cited, t["none_yet"])]


def _disliked(item: Disliked, t: dict) -> list[str]:
    labels = t["reason_labels"]
    reasons = ", ".join(f"{labels.get(key, key)} ×{n}" for key, n in item.reasons)
    head = t["disliked_line"].format(question=_question(item.question, t), downs=item.downs,
                                     reasons=f" ({reasons})" if reasons else "")
    limit = t["bounds"]["comment_chars"]
    return [head, *(t["disliked_comment"].format(comment=trim(escape(one_line(c)), limit)) for c in item.comments)]
