"""The modal a 👎 opens: why the answer was not helpful (a choice and, optionally, a few words).

Built with slack_sdk's view and block models, so Slack's limits (a 24-character title, 3,000
characters of private_metadata, the input's max_length) fail here rather than in views.open.
`private_metadata` carries the reference of the rated answer; it comes back with the submission
and is checked there (bot/listeners/feedback.py) like any other input from the network.
"""
from __future__ import annotations

import json

from slack_sdk.models.blocks import (
    InputBlock,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    RadioButtonsElement,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.blocks.text import slack_texts
from bot.state.feedback import REASON_TEXT_CHARS, REASONS

REASON_CALLBACK_ID = "feedback_reason"
REASON_BLOCK, REASON_ACTION = "reason", "reason_choice"
DETAILS_BLOCK, DETAILS_ACTION = "details", "reason_text"
METADATA_CHARS = 3000  # Slack: private_metadata


def reason_modal(answer_id: int, channel: str, message_ts: str) -> dict:
    """The modal for a 👎 on answer `answer_id` (posted as `message_ts` in `channel`)."""
    t = slack_texts()["feedback_reason"]
    options = [Option(value=key, text=PlainTextObject(text=t["reasons"][key])) for key in REASONS]
    view = View(
        type="modal", callback_id=REASON_CALLBACK_ID,
        title=PlainTextObject(text=t["title"]), submit=PlainTextObject(text=t["submit"]),
        close=PlainTextObject(text=t["close"]),
        private_metadata=json.dumps({"answer_id": answer_id, "channel": channel, "message_ts": message_ts}),
        blocks=[
            SectionBlock(text=PlainTextObject(text=t["intro"])),
            InputBlock(block_id=REASON_BLOCK, label=PlainTextObject(text=t["choice_label"]),
                       element=RadioButtonsElement(action_id=REASON_ACTION, options=options)),
            InputBlock(block_id=DETAILS_BLOCK, label=PlainTextObject(text=t["text_label"]), optional=True,
                       element=PlainTextInputElement(action_id=DETAILS_ACTION, multiline=True,
                                                     max_length=REASON_TEXT_CHARS,
                                                     placeholder=PlainTextObject(text=t["text_placeholder"]))),
        ],
    )
    return view.to_dict()


def parse_reference(private_metadata: str) -> tuple[int, str, str]:
    """(answer_id, channel, message_ts) from a submitted modal; ValueError when it is not ours."""
    if len(private_metadata or "") > METADATA_CHARS:
        raise ValueError("private_metadata too long")
    data = json.loads(private_metadata)
    if not isinstance(data, dict):
        raise ValueError("private_metadata is not an object")
    answer_id, channel, message_ts = data["answer_id"], data["channel"], data["message_ts"]
    if not isinstance(answer_id, int) or isinstance(answer_id, bool) or answer_id <= 0:
        raise ValueError("answer_id is not a positive integer")
    if not (isinstance(channel, str) and isinstance(message_ts, str)):
        raise ValueError("channel and message_ts must be strings")
    return answer_id, channel[:40], message_ts[:40]


def submitted_reason(view: dict) -> tuple[str, str]:
    """(reason, text) from a submitted modal's state; ValueError for a reason that is not one of ours."""
    values = ((view or {}).get("state") or {}).get("values") or {}
    chosen = ((values.get(REASON_BLOCK) or {}).get(REASON_ACTION) or {}).get("selected_option") or {}
    reason = chosen.get("value")
    if reason not in REASONS:
        raise ValueError("no known reason chosen")
    text = ((values.get(DETAILS_BLOCK) or {}).get(DETAILS_ACTION) or {}).get("value") or ""
    return reason, str(text)[:REASON_TEXT_CHARS * 2]
