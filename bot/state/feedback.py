"""👍/👎 clicks on answers: who, which answer, which citations, when.

One row per (answer, user): clicking again changes the vote instead of counting twice,
so the figures stay honest when someone corrects a mis-click.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from bot.state.sqlite import Database

VOTES = ("up", "down")

SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    answer_id INTEGER NOT NULL,
    user_id TEXT NOT NULL,
    vote TEXT NOT NULL,
    channel TEXT NOT NULL,
    message_ts TEXT NOT NULL,
    question TEXT NOT NULL,
    citations TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (answer_id, user_id)
);
"""


@dataclass(frozen=True)
class Feedback:
    answer_id: int
    user_id: str
    vote: str
    channel: str
    message_ts: str
    question: str
    citations: list[dict]
    created_at: float
    updated_at: float


class FeedbackLog:
    def __init__(self, path: Path) -> None:
        self.db = Database(path, SCHEMA)

    def record(self, *, answer_id: int, user_id: str, vote: str, channel: str, message_ts: str,
               question: str, citations: list[dict]) -> bool:
        """Store a vote; True when it is new or changed, False when it repeats the user's vote."""
        if vote not in VOTES:
            raise ValueError(f"vote must be one of {VOTES}, not {vote!r}")
        previous = self.db.query("SELECT vote FROM feedback WHERE answer_id = ? AND user_id = ?",
                                 (answer_id, user_id))
        now = time.time()
        self.db.execute(
            "INSERT INTO feedback(answer_id, user_id, vote, channel, message_ts, question, citations, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(answer_id, user_id) DO UPDATE SET vote = excluded.vote, updated_at = excluded.updated_at",
            (answer_id, user_id, vote, channel, message_ts, question, json.dumps(citations, ensure_ascii=False),
             now, now),
        )
        return not previous or previous[0][0] != vote

    def all(self) -> list[Feedback]:
        rows = self.db.query("SELECT answer_id, user_id, vote, channel, message_ts, question, citations, "
                             "created_at, updated_at FROM feedback ORDER BY created_at")
        return [Feedback(*row[:6], json.loads(row[6]), row[7], row[8]) for row in rows]

    def close(self) -> None:
        self.db.close()
