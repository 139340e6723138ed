"""Faults on the command line, run as a user runs them (a real subprocess): one clear line, and no lost work.

- Text that is not UTF-8 (GBK-encoded Chinese from a Windows file, junk bytes), on the command line
  or stdin, is refused per question with the bytes named: `ask` exits 2; `ask --json -` prints an
  error object for that line (with its number) and `chat` an error, and both answer every later line.
- A DATA_DIR that cannot be written stops `index`, `serve` (and a first `ask`, which would build the
  index there) with exit status 1 and one line naming the folder and the fix, not a traceback.
- With no index yet and an empty or missing KNOWLEDGE_DIR, the message says so; it does not claim
  that "the current index is kept".
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cli_helpers import run_cli, run_cli_bytes

GBK_QUESTION = "开源模式的优点".encode("gbk")  # what a Windows editor saves as "ANSI" in a Chinese locale
JUNK = b"\xff\xfe\x80junk\xc3"
GOOD = ["What are the advantages of a closed-source model?", "闭源模式有什么缺点？"]


def assert_refused_as_not_utf8(message: str) -> None:
    assert "not valid UTF-8" in message and "undecodable bytes" in message, message
    assert "Traceback" not in message and "surrogates not allowed" not in message, message


# --- text that is not UTF-8 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [GBK_QUESTION, JUNK], ids=["gbk", "junk"])
def test_ask_refuses_a_question_that_is_not_utf8_with_exit_2_naming_the_bytes(fresh_data_dir, raw):
    done = run_cli_bytes("ask", "--json", os.fsdecode(raw), cwd=fresh_data_dir.parent, data_dir=fresh_data_dir)
    assert done.returncode == 2, done.stderr
    assert_refused_as_not_utf8(done.stderr)
    assert f"0x{raw[0]:02X}" in done.stderr


def test_ask_json_stdin_answers_every_line_and_reports_undecodable_ones_by_number(fresh_data_dir):
    stdin = b"\n".join([GOOD[0].encode(), GBK_QUESTION, JUNK, GOOD[1].encode("utf-8")]) + b"\n"
    done = run_cli_bytes("ask", "--json", "-", cwd=fresh_data_dir.parent, stdin=stdin, data_dir=fresh_data_dir)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [row.get("question") for row in rows[::3]] == GOOD  # lines 1 and 4 answered
    assert all(row["citations"] for row in rows[::3])
    for row, number in ((rows[1], 2), (rows[2], 3)):
        assert row["line"] == number and "answer" not in row
        assert_refused_as_not_utf8(row["error"])
        assert "\ufffd" in row["question"]  # the line as far as it could be read, to find it again
    assert "Traceback" not in done.stderr


def test_chat_reports_undecodable_lines_and_answers_the_rest(fresh_data_dir):
    stdin = b"\n".join([GBK_QUESTION, GOOD[0].encode(), JUNK, GOOD[1].encode("utf-8")]) + b"\n"
    done = run_cli_bytes("chat", cwd=fresh_data_dir.parent, stdin=stdin, data_dir=fresh_data_dir)
    assert done.returncode == 0, done.stderr
    assert "Sources" in done.stdout and "来源" in done.stdout, done.stdout  # both good lines answered, with sources
    assert done.stderr.count("not valid UTF-8") == 2
    assert_refused_as_not_utf8(done.stderr)


# --- DATA_DIR that cannot be written ------------------------------------------------------------------------


@pytest.fixture
def unwritable_data_dir(tmp_path) -> Path:
    """A DATA_DIR that cannot be created, whoever runs the test.

    Permission bits would not do: the tests may run as root, which ignores them, and neither a
    read-only bind mount nor `chattr +i` is available to an unprivileged container. A path whose
    parent is a regular file fails for everyone (ENOTDIR), as a folder without write permission
    does for the bot's usual non-root user.
    """
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where DATA_DIR's parent should be", encoding="utf-8")
    return blocker / "data"


def assert_one_line_naming(done, data_dir: Path) -> None:
    assert done.returncode == 1, (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert str(data_dir) in lines[0] and "not writable" in lines[0]
    assert "set DATA_DIR to a writable folder or fix its permissions" in lines[0]


@pytest.mark.parametrize("command", [["index"], ["serve"], ["ask", "What does open-sourcing cost?"]])
def test_an_unwritable_data_dir_stops_the_command_with_one_line_naming_it(unwritable_data_dir, command):
    slack = {"slack_bot_token": "xoxb-test", "slack_signing_secret": "secret", "port": 0, "host": "127.0.0.1"}
    done = run_cli(*command, cwd=unwritable_data_dir.parent.parent, data_dir=unwritable_data_dir,
                   **(slack if command == ["serve"] else {}))
    assert_one_line_naming(done, unwritable_data_dir)


# --- no index, and nothing to build it from ------------------------------------------------------------------


@pytest.mark.parametrize("state", ["empty", "missing"])
def test_with_no_index_and_no_documents_the_message_says_so(tmp_path, state):
    knowledge = tmp_path / "knowledge"
    if state == "empty":
        knowledge.mkdir()
    done = run_cli("ask", "What does open-sourcing cost?", cwd=tmp_path, data_dir=tmp_path / "data",
                   knowledge_dir=knowledge)
    assert done.returncode == 1, done.stderr
    message = done.stderr.strip()
    assert "there is no index yet" in message and str(knowledge) in message
    assert ("is empty" if state == "empty" else "does not exist") in message
    assert "KNOWLEDGE_DIR" in message and "index is kept" not in message and "Traceback" not in message
