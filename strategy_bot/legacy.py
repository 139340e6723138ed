"""Copy the state of an earlier install (one SQLite file per store under DATA_DIR) into the new schema.

Earlier versions kept `slack_conversations.sqlite3`, `slack_feedback.sqlite3` and `dialogues.sqlite3`
under DATA_DIR. On the first upgrade that finds them, their rows are copied in, in the upgrade's
transaction, and the copy is recorded in `legacy_imports` so it never happens twice. The old files
are left where they are (a backup; delete them once satisfied). Delivery records are not copied:
they only matter for a day, to recognise Slack's retries.

A file is copied only into an empty table: answer ids are what feedback points to, and merging
them into a table that already has answers (from another replica) would mix up the two.
"""
from __future__ import annotations

import json
import logging
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import Connection, Table, func, insert, select, text

from strategy_bot.schema import answers, dialogues, feedback, legacy_imports

log = logging.getLogger(__name__)


class LegacyImportError(RuntimeError):
    """An old store cannot be read; the message names the file and what to do."""


def _answer(row: tuple) -> dict[str, Any]:
    keys = ("id", "channel", "thread_ts", "question_ts", "user_id", "question", "answer", "abstained",
            "citations", "reply_ts", "created_at")
    values = dict(zip(keys, row))
    values["abstained"] = None if values["abstained"] is None else bool(values["abstained"])
    return values


def _feedback(row: tuple) -> dict[str, Any]:
    keys = ("answer_id", "user_id", "vote", "channel", "message_ts", "question", "citations", "created_at",
            "updated_at")
    return dict(zip(keys, row))


def _dialogue(row: tuple) -> dict[str, Any]:
    keys = ("channel_id", "thread_ts", "user_id", "step", "answers", "context", "status", "created_at",
            "updated_at", "message_ts")
    values = dict(zip(keys, row))
    json.loads(values["answers"]), json.loads(values["message_ts"])  # a damaged row stops the copy, named below
    return {**values, "version": 1}


# (file under DATA_DIR, its query, the table it goes to, row -> values)
SOURCES: tuple[tuple[str, str, Table, Callable[[tuple], dict[str, Any]]], ...] = (
    ("slack_conversations.sqlite3", "SELECT id, channel, thread_ts, question_ts, user_id, question, answer, "
     "abstained, citations, reply_ts, created_at FROM answers ORDER BY id", answers, _answer),
    ("slack_feedback.sqlite3", "SELECT answer_id, user_id, vote, channel, message_ts, question, citations, "
     "created_at, updated_at FROM feedback", feedback, _feedback),
    ("dialogues.sqlite3", "SELECT channel_id, thread_ts, user_id, step, answers, context, status, created_at, "
     "updated_at, message_ts FROM dialogues", dialogues, _dialogue),
)


def import_legacy(connection: Connection, data_dir: Path) -> dict[str, int]:
    """Copy each earlier store found in `data_dir` not yet imported; returns rows copied per file."""
    copied: dict[str, int] = {}
    done = set(connection.execute(select(legacy_imports.c.source)).scalars())
    for name, query, table, convert in SOURCES:
        path = Path(data_dir) / name
        if name in done or not path.is_file():
            continue
        if connection.execute(select(func.count()).select_from(table)).scalar():
            log.warning("not importing %s: the %s table already has rows", path, table.name)
            continue
        rows = [convert(row) for row in _read(path, query)]
        if rows:
            connection.execute(insert(table), rows)
        if table is answers and rows and connection.dialect.name == "postgresql":
            # explicit ids do not move PostgreSQL's sequence: the next answer must come after them
            connection.execute(text("SELECT setval(pg_get_serial_sequence('answers', 'id'), "
                                    "(SELECT max(id) FROM answers))"))
        connection.execute(insert(legacy_imports).values(source=name, rows=len(rows), imported_at=time.time()))
        log.info("imported %d rows of %s (the file is kept; delete it once satisfied)", len(rows), path)
        copied[name] = len(rows)
    return copied


def _read(path: Path, query: str) -> list[tuple]:
    """The rows of an old store. sqlite3 directly: these files have one fixed layout and are read once."""
    with closing(sqlite3.connect(str(path))) as old:
        try:
            return old.execute(query).fetchall()
        except sqlite3.DatabaseError as exc:  # not a store of ours, or damaged: say which file
            raise LegacyImportError(f"cannot import {path}: {exc}; move it out of DATA_DIR to start without it") \
                from None
