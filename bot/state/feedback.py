"""👍/👎 clicks on answers: who, which answer, which citations, when.

One row per (answer, user): clicking again changes the vote instead of counting twice,
so the figures stay honest when someone corrects a mis-click. The `feedback` table
(strategy_bot/schema.py) lives in the state database, SQLite or PostgreSQL.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

from sqlalchemy import Engine, select

from strategy_bot.database import insert
from strategy_bot.schema import feedback

VOTES = ("up", "down")


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
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, *, answer_id: int, user_id: str, vote: str, channel: str, message_ts: str,
               question: str, citations: list[dict]) -> bool:
        """Store a vote; True when it is new or changed, False when it repeats the user's vote."""
        if vote not in VOTES:
            raise ValueError(f"vote must be one of {VOTES}, not {vote!r}")
        now = time.time()
        key = (feedback.c.answer_id == answer_id, feedback.c.user_id == user_id)
        upsert = insert(self.engine, feedback).values(
            answer_id=answer_id, user_id=user_id, vote=vote, channel=channel, message_ts=message_ts,
            question=question, citations=json.dumps(citations, ensure_ascii=False), created_at=now, updated_at=now)
        upsert = upsert.on_conflict_do_update(index_elements=[feedback.c.answer_id, feedback.c.user_id],
                                              set_={"vote": upsert.excluded.vote,
                                                    "updated_at": upsert.excluded.updated_at})
        # The read and the write in two transactions, as before: on SQLite, a write after a read in one
        # transaction fails at once (no busy wait) if another writer came in between.
        with self.engine.connect() as connection:
            previous = connection.execute(select(feedback.c.vote).where(*key)).scalar()
        with self.engine.begin() as connection:
            connection.execute(upsert)
        return previous != vote

    def all(self) -> list[Feedback]:
        columns = (feedback.c.answer_id, feedback.c.user_id, feedback.c.vote, feedback.c.channel,
                   feedback.c.message_ts, feedback.c.question, feedback.c.citations, feedback.c.created_at,
                   feedback.c.updated_at)
        with self.engine.connect() as connection:
            rows = connection.execute(select(*columns).order_by(feedback.c.created_at)).all()
        return [Feedback(*row[:6], json.loads(row[6]), row[7], row[8]) for row in rows]

    def close(self) -> None:
        """Nothing to release: the engine belongs to whoever built it (bot/services.py)."""
