"""Block Kit for /strategy-check: question messages, their answered states, and the result.

Pure functions (core objects in, blocks out), so the listener stays a thin adapter. Every
interactive element carries the dialogue's thread ts and the question it belongs to in its
value: a click can be resolved from the payload and SQLite alone, even after a bot restart.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from slack_sdk.models.blocks import TableBlock

from bot.blocks.text import escape, section, trim
from decision.dialogue_store import Dialogue
from decision.model import DecisionModel, Question
from decision.report import StrategyReport, format_score, source_line, suggested_step, tie_note
from decision.report import load_templates as report_templates

TEXTS_PATH = Path(__file__).resolve().parent.parent.parent / "prompts" / "strategy_check_slack.yaml"

ACTION_PREFIX = "strategy_check"
ANSWER = f"{ACTION_PREFIX}:answer"  # buttons: ANSWER:<option index>; the select: ANSWER:select
BACK = f"{ACTION_PREFIX}:back"
RESTART = f"{ACTION_PREFIX}:restart"
CANCEL = f"{ACTION_PREFIX}:cancel"
EXPORT = f"{ACTION_PREFIX}:export"
CANVAS = f"{ACTION_PREFIX}:canvas"
RESULT_KEY = "__result__"  # Dialogue.message_ts key of the result message
CELL_LIMIT = 2000  # Slack: characters of a table cell
SECTION_LIMIT = 2900  # Slack rejects section text over 3000 characters
TEXT_LIMIT = 40000  # Slack rejects a message text over 40,000 characters
FALLBACK_LIMIT = 3000  # the result's plain `text` is only the notification fallback: the blocks carry it all


@dataclass(frozen=True)
class ActionValue:
    """What a button or select option says about itself: its dialogue thread, question and choice."""

    thread_ts: str
    question: str
    value: str = ""

    def encode(self) -> str:
        return json.dumps({"t": self.thread_ts, "q": self.question, "v": self.value}, separators=(",", ":"))

    @classmethod
    def decode(cls, raw: str | None) -> "ActionValue | None":
        """None for anything we did not write (a forged or truncated value is simply ignored)."""
        try:
            data = json.loads(raw or "")
            return cls(str(data["t"]), str(data["q"]), str(data.get("v", "")))
        except (ValueError, KeyError, TypeError):
            return None


@lru_cache(maxsize=4)
def texts(path: Path = TEXTS_PATH) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _section(text: str) -> dict[str, Any]:
    if len(text) > SECTION_LIMIT:
        text = text[: SECTION_LIMIT - 1] + "…"
    return section(text)


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:SECTION_LIMIT]}]}


def _button(label: str, action_id: str, value: ActionValue, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {"type": "button", "text": {"type": "plain_text", "text": label[:75]},
                              "action_id": action_id, "value": value.encode()}
    if style:
        button["style"] = style
    return button


def progress(model: DecisionModel, question: Question) -> str:
    number = model.question_keys.index(question.key) + 1
    return texts()["progress"].format(number=number, total=len(model.questions))


# --------------------------------------------------------------------------- messages


def started_message(user_id: str, context: str) -> tuple[str, list[dict[str, Any]]]:
    """The top-level message that anchors the dialogue's thread."""
    t = texts()
    text = t["started"].format(user=user_id)
    blocks = [_section(text)]
    if context:
        blocks.append(_context(t["started_context"].format(context=escape(context))))
    return text, blocks


def question_message(model: DecisionModel, dialogue: Dialogue, question: Question) -> tuple[str, list[dict[str, Any]]]:
    """One question with its choices (buttons, or a select when there are many) and navigation."""
    t = texts()
    head = t["question"].format(progress=progress(model, question), text=escape(question.text))
    blocks: list[dict[str, Any]] = [_section(head)]
    notes = [escape(question.help)] if question.help else []
    current = dialogue.answers.get(question.key)
    if current:
        notes.append(t["current_answer"].format(answer=escape(question.option(current).label)))
    if notes:
        blocks.append(_context("\n".join(notes)))
    blocks.append({"type": "actions", "block_id": "choices", "elements": _choices(dialogue, question)})
    blocks.append({"type": "actions", "block_id": "navigation", "elements": _navigation(model, dialogue, question)})
    return f"{progress(model, question)}: {escape(question.text)}", blocks


def _choices(dialogue: Dialogue, question: Question) -> list[dict[str, Any]]:
    t = texts()
    values = [ActionValue(dialogue.thread_ts, question.key, o.value) for o in question.options]
    if len(question.options) <= int(t["max_buttons"]):
        return [_button(o.label, f"{ANSWER}:{i}", v) for i, (o, v) in enumerate(zip(question.options, values))]
    options = [{"text": {"type": "plain_text", "text": o.label[:75]}, "value": v.encode()}
               for o, v in zip(question.options, values)]
    select: dict[str, Any] = {"type": "static_select", "action_id": f"{ANSWER}:select", "options": options,
                              "placeholder": {"type": "plain_text", "text": t["select_placeholder"]}}
    current = dialogue.answers.get(question.key)
    if current in question.values:
        select["initial_option"] = options[question.values.index(current)]
    return [select]


def _navigation(model: DecisionModel, dialogue: Dialogue, question: Question) -> list[dict[str, Any]]:
    b = texts()["buttons"]
    value = ActionValue(dialogue.thread_ts, question.key)
    buttons = []
    if model.question_keys.index(question.key) > 0:
        buttons.append(_button(b["back"], BACK, value))
    buttons.append(_button(b["restart"], RESTART, value))
    buttons.append(_button(b["cancel"], CANCEL, value, style="danger"))
    return buttons


def answered_message(model: DecisionModel, question: Question, value: str) -> tuple[str, list[dict[str, Any]]]:
    """A question message after its answer: the choice shown, no buttons left to click."""
    label = question.option(value).label
    text = texts()["answered"].format(progress=progress(model, question), text=escape(question.text),
                                      answer=escape(label))
    return f"{progress(model, question)}: {escape(question.text)} → {escape(label)}", [_section(text)]


def went_back_message(model: DecisionModel, question: Question) -> tuple[str, list[dict[str, Any]]]:
    text = texts()["went_back"].format(progress=progress(model, question), text=escape(question.text))
    return text, [_section(text)]


def notice_message(text: str) -> tuple[str, list[dict[str, Any]]]:
    """A closed message (started over, expired): just the note, nothing to click."""
    return text, [_section(text)]


def cancelled_message(dialogue: Dialogue, question_key: str, user_id: str) -> tuple[str, list[dict[str, Any]]]:
    """Cancelled in place, with a Start over button so a mis-click is not final."""
    t = texts()
    text = t["cancelled"].format(user=user_id)
    value = ActionValue(dialogue.thread_ts, question_key)
    return text, [_section(text), {"type": "actions", "block_id": "navigation",
                                   "elements": [_button(t["buttons"]["restart"], RESTART, value)]}]


# --------------------------------------------------------------------------- the result


def result_message(report: StrategyReport, dialogue: Dialogue) -> tuple[str, list[dict[str, Any]]]:
    """The recommendation, a table of the scores, cited reasons, the flip as a callout, next steps marked
    as suggestions, sources, and the canvas / export / navigation buttons."""
    r = report_templates()
    h = r["headings"]
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": report.headline}}]
    if report.context:
        blocks.append(_context(escape(r["context_line"].format(context=report.context))))
    scores_head = f"*{h['scores']}*" + (f"\n_{escape(tie_note(report))}_" if tie_note(report) else "")
    blocks += [_section(scores_head), scores_table(report)]
    reasons = [f"{i}. {escape(reason.sentence)}" for i, reason in enumerate(report.reasons, 1)] or [r["no_reasons"]]
    blocks.append(_section(f"*{h['reasons']}*\n" + "\n".join(reasons)))
    blocks.append(flip_block(report))
    steps = "\n".join(f"• {escape(suggested_step(s))}" for s in report.next_steps)
    blocks.append(_section(f"*{h['next_steps']}* _{r['next_steps_note']}_\n{steps}"))
    if report.citations:
        blocks.append(_section(f"*{h['sources']}*\n" + "\n".join(_source(c) for c in report.citations)))
    value = ActionValue(dialogue.thread_ts, RESULT_KEY)
    b = texts()["buttons"]
    blocks.append({"type": "actions", "block_id": "result", "elements": [
        _button(b["canvas"], CANVAS, value, style="primary"), _button(b["export"], EXPORT, value),
        _button(b["back"], BACK, value), _button(b["restart"], RESTART, value)]})
    # The fallback `text` is rendered by Slack too (notifications, some clients): escaped like the blocks.
    return trim(escape(report.to_markdown()), FALLBACK_LIMIT), blocks


def scores_table(report: StrategyReport) -> dict[str, Any]:
    """The scores per option as a Slack table block (slack_sdk's TableBlock checks it has rows).

    raw_text cells are shown verbatim (no mrkdwn), so option labels need no escaping here."""
    r = report_templates()
    t = texts()["table"]

    def cell(text: str) -> dict[str, str]:
        return {"type": "raw_text", "text": trim(text, CELL_LIMIT)}

    rows = [[cell(t["option"]), cell(t["score"]), cell("")]]
    rows += [[cell(label), cell(format_score(score)), cell(r["recommended_mark"].strip() if key == report.recommendation
                                                           else "")]
             for key, label, score in report.scores]
    return TableBlock(block_id="scores", rows=rows,
                      column_settings=[{"is_wrapped": True}, {"align": "right"}, None]).to_dict()


def flip_block(report: StrategyReport) -> dict[str, Any]:
    """What would change the answer, as a callout: a section with a warning sign whose text is a quote
    (Slack draws a bar beside it), so it stands apart from the reasons; plain when nothing would.

    Why not Slack's `alert` block (slack_sdk has AlertBlock): it is documented for modals only, with
    200 characters of text (slackapi/java-slack-sdk#1610); a message carrying one risks being refused
    whole, and the result is the one message that must always post."""
    r = report_templates()
    heading = r["headings"]["flip"]
    if not report.flip:
        return _section(f"*{heading}*\n{escape(r['no_flip'])}")
    return _section(texts()["flip_callout"].format(heading=heading, flip=escape(report.flip)))


def _source(citation) -> str:
    limit = int(texts()["quote_chars"])
    quote = citation.quote if len(citation.quote) <= limit else citation.quote[: limit - 1] + "…"
    return f"{escape(source_line(citation))}\n>{escape(quote)}"


def canvas_title(report: StrategyReport) -> str:
    """A canvas's title: the headline (plain text: canvases show titles verbatim)."""
    return report.headline[:120]


def canvas_saved_text(url: str | None, user: str) -> str:
    t = texts()
    return (t["canvas_saved_link"].format(url=url, user=user) if url else t["canvas_saved"].format(user=user))


def export_text(report: StrategyReport) -> str:
    """The Markdown export as a code block (fences inside the document are defused).

    Escaped like everything we post: Slack parses `<!channel>`, `<@U…>` and links even
    inside a code block, and shows `&lt;` there as `<`, so the copy reads the same.
    """
    body = trim(escape(report.to_markdown().replace("```", "'''")), TEXT_LIMIT - 200)
    return f"{texts()['export_intro']}\n```\n{body.rstrip()}\n```"
