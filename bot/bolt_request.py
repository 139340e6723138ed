"""A `BoltRequest` that parses Slack's form bodies correctly (guard against a Bolt 1.30 bug).

Bolt 1.30's `parse_body` decides a form body is an interactive payload when the *text*
"payload" appears anywhere in it, then looks for a `payload=` field; a slash command
such as `/strategy-check payload licensing` has none, so its body parses to `{}` and
Bolt answers 404 "unhandled request". We parse form bodies by their fields instead:
a `payload` field means an interactive payload (JSON inside), anything else is a
slash command's fields. The raw body is untouched, so signature checks still see
exactly what Slack signed. `to_copyable` keeps the class, so copies made for lazy
listeners parse the same way.
"""
from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from slack_bolt.context import BoltContext
from slack_bolt.request import BoltRequest
from slack_bolt.request.internals import build_context


class MalformedBody(ValueError):
    """The body is neither JSON nor a form Slack would send."""


def parse_slack_body(raw: str, content_type: str | None) -> dict[str, Any]:
    """Slack's request body as a dict: JSON (events) or form fields (commands, interactivity)."""
    if not raw:
        return {}
    try:
        if content_type == "application/json" or raw.lstrip().startswith("{"):
            body = json.loads(raw)
        else:
            fields = dict(parse_qsl(raw, keep_blank_values=True))
            body = json.loads(fields["payload"]) if "payload" in fields else fields
    except ValueError as exc:  # json.JSONDecodeError, also for a `payload` field that is not JSON
        raise MalformedBody(f"unreadable request body: {exc}") from None
    except RecursionError:  # `[[[[…` 200,000 deep: json gives up at the interpreter's recursion limit
        raise MalformedBody("the request body is nested too deeply") from None
    if not isinstance(body, dict):
        raise MalformedBody("the request body is not a JSON object")
    return body


class FormSafeBoltRequest(BoltRequest):
    """`BoltRequest` with `parse_slack_body` in place of Bolt's substring test (HTTP mode only)."""

    def __init__(self, *, body: str | dict, query=None, headers=None, context=None, mode: str = "http") -> None:
        if mode == "http" and isinstance(body, str):
            super().__init__(body="", query=query, headers=headers, context=context, mode=mode)
            parsed = parse_slack_body(body, self.content_type)
            self.raw_body = body
            self.body = parsed
            self.context = build_context(BoltContext(context if context else {}), parsed)
        else:
            super().__init__(body=body, query=query, headers=headers, context=context, mode=mode)

    def to_copyable(self) -> "FormSafeBoltRequest":
        body: str | dict = self.raw_body if self.mode == "http" else self.body
        copy = FormSafeBoltRequest(body=body, query=self.query, headers=self.headers,
                                   context=self.context.to_copyable(), mode=self.mode)
        return copy

