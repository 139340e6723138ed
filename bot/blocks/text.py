"""Making arbitrary text safe for Slack mrkdwn, and short enough for Slack's limits.

Document passages and user questions may contain `<!channel>`, `<!here>`, `<@U123>`
or stray `&<>`: sent as they are, Slack would ping people or mangle the message.
Slack's own rule is to escape exactly `&`, `<` and `>`; we also break the bare
`@here`/`@channel`/`@everyone` words with an invisible word joiner so no client
or `link_names` setting can turn them into broadcasts.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import yaml

from strategy_bot.settings import PROMPTS_DIR

SECTION_TEXT_LIMIT = 3000  # Slack: section block text
MAX_BLOCKS = 50  # Slack: blocks per message
ELLIPSIS = "…"
WORD_JOINER = "\u2060"
BARE_BROADCAST = re.compile(r"@(here|channel|everyone)\b", re.IGNORECASE)
HEADING_LINE = re.compile(r"^\s{0,3}#{1,6}\s")
SLACK_LINK = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")


@lru_cache(maxsize=2)
def slack_texts(path: Path = PROMPTS_DIR / "slack.yaml") -> dict:
    """The Slack front end's texts and display limits (prompts/slack.yaml)."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def section(text: str) -> dict:
    """A mrkdwn section block; `text` must already be escaped and within SECTION_TEXT_LIMIT."""
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def escape(text: str) -> str:
    """Text that Slack shows literally: no mentions, no broadcasts, no broken markup."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return BARE_BROADCAST.sub(lambda m: f"@{WORD_JOINER}{m.group(1)}", text)


def trim(escaped: str, limit: int) -> str:
    """Cut escaped text to at most `limit` characters, ending with "…", never inside an `&amp;` entity."""
    if len(escaped) <= limit:
        return escaped
    cut = escaped[: max(limit - len(ELLIPSIS), 0)]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut.rstrip() + ELLIPSIS


def one_line(text: str) -> str:
    """Whitespace collapsed and Markdown heading lines dropped: fit for a one-line quote."""
    lines = [line for line in text.splitlines() if not HEADING_LINE.match(line)]
    return " ".join(" ".join(lines).split())


def plain_question(text: str, bot_user_id: str | None = None) -> str:
    """A Slack message's text as the user meant it: the bot's mention removed, links and
    other mentions shown by their label, entities decoded."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>", " ", text)

    def label(match: re.Match) -> str:
        target, shown = match.group(1), match.group(2)
        if shown:
            return shown
        return "" if target.startswith(("@", "!")) else target.lstrip("#")

    text = SLACK_LINK.sub(label, text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return " ".join(text.split())


def is_strategy_check_request(question: str) -> bool:
    """Whether a message asks to run the guided decision ("Run a strategy check", "运行策略检查"; the
    phrases are prompts/slack.yaml `assistant.strategy_check_requests`), not a question to answer."""
    wanted = slack_texts()["assistant"]["strategy_check_requests"]
    return question.strip().rstrip(".!。！").strip().lower() in {w.lower() for w in wanted}


def is_top_level_strategy_check(event: dict, bot_user_id: str | None) -> bool:
    """A message outside any thread asking to run the strategy check: bot/listeners/assistant.py starts
    the dialogue for it in a direct message, and bot/listeners/answers.py leaves it alone."""
    return "thread_ts" not in event and is_strategy_check_request(plain_question(event.get("text") or "", bot_user_id))
