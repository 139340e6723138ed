"""Every log record is one line: what people type, name or upload cannot forge or flood the log."""
from __future__ import annotations

import io
import logging
import re
import subprocess
import sys

from bot.logs import CONTINUATION, MAX_MESSAGE_CHARS, OneLineFormatter
from slack_harness import REPO

FORGED = "2030-01-01 00:00:00,000 ERROR bot.listeners.reindex: re-index by UADMIN001"
RECORD_START = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ")


def logged(*args, exc: BaseException | None = None) -> str:
    """What one `log.warning(*args)` writes through the formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger(f"test-logs-{id(stream)}")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        if exc is None:
            logger.warning(*args)
        else:
            try:
                raise exc
            except BaseException:
                logger.exception(*args)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_a_newline_in_a_logged_value_cannot_start_a_forged_line():
    out = logged("stored %s as %s", f"notes.md\n{FORGED}", "x\r\u2028y\x1b[31m")
    assert out.count("\n") == 1 and not any(line.startswith(FORGED[:20]) for line in out.splitlines())
    assert "notes.md\\n2030-01-01" in out and "x\\r\\u2028y\\x1b[31m" in out


def test_a_huge_value_is_cut_to_a_bounded_line():
    out = logged("question: %s", "x" * 5_000_000)
    assert len(out) < MAX_MESSAGE_CHARS + 200 and "more characters]" in out


def test_a_traceback_stays_readable_but_every_line_of_it_is_marked_as_a_continuation():
    out = logged("answering failed", exc=ValueError(f"bad question\n{FORGED}"))
    first, *rest = out.rstrip("\n").split("\n")
    assert RECORD_START.match(first) and rest
    assert all(line.startswith(CONTINUATION) for line in rest)
    assert any("Traceback (most recent call last):" in line for line in rest)
    assert any(line == CONTINUATION + FORGED for line in rest)  # the message's own newline, marked too


def test_the_command_line_logs_through_the_one_line_formatter():
    value = "hi\n" + FORGED
    code = ("import logging, bot.cli, sys; sys.argv = ['strategy-bot', '--version']\n"
            "from bot.logs import configure_logging, OneLineFormatter\n"
            "try:\n    bot.cli.main()\nexcept SystemExit:\n    pass\n"
            "handlers = logging.getLogger().handlers\n"
            "assert handlers and all(isinstance(h.formatter, OneLineFormatter) for h in handlers), handlers\n"
            f"logging.getLogger('x').warning('user said %s', {value!r})\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=str(REPO), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and RECORD_START.match(lines[0]) and "hi\\n2030" in lines[0]
