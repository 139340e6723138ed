"""The threads the bot answers in: each question, its answer and citations, its reply message.

Why keep our own record rather than read the thread back with `conversations.replies`:
deciding whether a channel message is a follow-up to the bot happens before the 3-second
ack, for every message in every channel the bot is in, so it must be a local lookup; and
the record is also what feedback clicks point to ("which answer, which citations").
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from bot.state.sqlite import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    thread_ts TEXT NOT NULL,
    question_ts TEXT NOT NULL,
    user_id TEXT NOT NULL,
    question TEXT NOT NULL,
    answer TEXT,
    abstained INTEGER,
    citations TEXT,
    reply_ts TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS answers_thread ON answers(channel, thread_ts, id);
"""


@dataclass(frozen=True)
class Turn:
    """One question asked of the bot in a thread and (once done) what it answered."""

    answer_id: int
    channel: str
    thread_ts: str
    question_ts: str
    user_id: str
    question: str
    answer: str | None
    abstained: bool
    citations: list[dict]
    reply_ts: str | None


class ConversationLog:
    """Thread-safe; `start` registers the thread before the answer exists, so a quick
    follow-up already sees the thread as the bot's."""

    def __init__(self, path: Path) -> None:
        self.db = Database(path, SCHEMA)

    def start(self, channel: str, thread_ts: str, question_ts: str, user_id: str, question: str) -> int:
        cursor = self.db.execute(
            "INSERT INTO answers(channel, thread_ts, question_ts, user_id, question, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (channel, thread_ts, question_ts, user_id, question, time.time()),
        )
        return int(cursor.lastrowid)

    def complete(self, answer_id: int, answer: str, abstained: bool, citations: list[dict]) -> None:
        self.db.execute(
            "UPDATE answers SET answer = ?, abstained = ?, citations = ? WHERE id = ?",
            (answer, int(abstained), json.dumps(citations, ensure_ascii=False), answer_id),
        )

    def set_reply(self, answer_id: int, reply_ts: str) -> None:
        """The ts of the message that carries the answer (to update it in place later)."""
        self.db.execute("UPDATE answers SET reply_ts = ? WHERE id = ?", (reply_ts, answer_id))

    def knows_thread(self, channel: str, thread_ts: str) -> bool:
        """True when the bot has been asked something in this thread."""
        return bool(self.db.query("SELECT 1 FROM answers WHERE channel = ? AND thread_ts = ? LIMIT 1",
                                  (channel, thread_ts)))

    def turns(self, channel: str, thread_ts: str, before_id: int | None = None, limit: int = 10) -> list[Turn]:
        """The thread's earlier turns, oldest first (at most `limit`, the most recent ones)."""
        rows = self.db.query(
            f"SELECT {_COLUMNS} FROM answers WHERE channel = ? AND thread_ts = ? AND id < ? "
            "ORDER BY id DESC LIMIT ?",
            (channel, thread_ts, before_id if before_id is not None else 2**62, limit),
        )
        return [_turn(row) for row in reversed(rows)]

    def history(self, channel: str, thread_ts: str, before_id: int, limit: int = 3) -> list[str]:
        """Earlier questions of the thread, oldest first: the context `KnowledgeBase.ask` takes."""
        return [t.question for t in self.turns(channel, thread_ts, before_id, limit)]

    def get(self, answer_id: int) -> Turn | None:
        rows = self.db.query(f"SELECT {_COLUMNS} FROM answers WHERE id = ?", (answer_id,))
        return _turn(rows[0]) if rows else None

    def close(self) -> None:
        self.db.close()


_COLUMNS = "id, channel, thread_ts, question_ts, user_id, question, answer, abstained, citations, reply_ts"


def _turn(row: tuple) -> Turn:
    return Turn(answer_id=row[0], channel=row[1], thread_ts=row[2], question_ts=row[3], user_id=row[4],
                question=row[5], answer=row[6], abstained=bool(row[7]),
                citations=json.loads(row[8]) if row[8] else [], reply_ts=row[9])
