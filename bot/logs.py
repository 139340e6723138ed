"""Logging set-up for every command: one record is one line, whatever the values logged.

Log lines carry values people control (questions, file names, document titles, request
fields): a raw newline in one would start a line that looks like our own record
("… ERROR bot.listeners.reindex: re-index by UADMIN001"), and a multi-megabyte value
would make a multi-megabyte line. So the formatter, not each call site, makes every
record safe: control characters (and Unicode line/paragraph separators) in the final
message, arguments included, are written as escapes (`\\n`, `\\x1b`, `\\u2028`); the
message is cut to MAX_MESSAGE_CHARS; and the lines of a traceback or stack (which are
multi-line by nature) each start with CONTINUATION, so a new record is always a line that
does not start with it. stdlib `logging` has no option for this; a Formatter subclass is
its intended extension point.
"""
from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MAX_MESSAGE_CHARS = 4000
CONTINUATION = "  | "
# C0 controls except tab, DEL, C1 controls, and the Unicode line and paragraph separators.
_UNSAFE = [*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F, *range(0x80, 0xA0), 0x2028, 0x2029]
_ESCAPES = {code: ascii(chr(code))[1:-1] for code in _UNSAFE}
_BLOCK_ESCAPES = {code: escaped for code, escaped in _ESCAPES.items() if code != 0x0A}  # tracebacks keep lines


def one_line(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """`text` with every character that could end a log line escaped, cut to `limit` characters."""
    if len(text) > limit:
        text = f"{text[:limit]}… [{len(text) - limit} more characters]"
    return text.translate(_ESCAPES)


class OneLineFormatter(logging.Formatter):
    """A Formatter whose records cannot forge or flood lines (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        record.message = one_line(record.getMessage())
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        text = self.formatMessage(record)
        # Formatted here rather than taken from `record.exc_text`: another handler's formatter may
        # have cached a traceback without the continuation marks.
        if record.exc_info:
            text += "\n" + _continued(self.formatException(record.exc_info))
        elif record.exc_text:
            text += "\n" + _continued(record.exc_text)
        if record.stack_info:
            text += "\n" + _continued(self.formatStack(record.stack_info))
        return text


def _continued(block: str) -> str:
    """Each line of a multi-line block (a traceback) marked as the continuation of its record."""
    lines = block.translate(_BLOCK_ESCAPES).split("\n")
    return "\n".join(CONTINUATION + line for line in lines)


def configure_logging(level: int | str = logging.WARNING) -> None:
    """Root logging to stderr through `OneLineFormatter`: what `strategy-bot` does before any command."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineFormatter(FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
