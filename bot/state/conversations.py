"""The threads the bot answers in: each question, its answer and citations, its reply message.

Why keep our own record rather than read the thread back with `conversations.replies`:
deciding whether a channel message is a follow-up to the bot happens before the 3-second
ack, for every message in every channel the bot is in, so it must be a local lookup; and
the record is also what feedback clicks point to ("which answer, which citations").
The `answers` table (strategy_bot/schema.py) lives in the state database, SQLite or PostgreSQL.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

from sqlalchemy import Engine, Row, insert, select, update

from strategy_bot.schema import answers


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


_COLUMNS = (answers.c.id, answers.c.channel, answers.c.thread_ts, answers.c.question_ts, answers.c.user_id,
            answers.c.question, answers.c.answer, answers.c.abstained, answers.c.citations, answers.c.reply_ts)


class ConversationLog:
    """Thread-safe (each call takes a pooled connection); `start` registers the thread before the
    answer exists, so a quick follow-up already sees the thread as the bot's."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def start(self, channel: str, thread_ts: str, question_ts: str, user_id: str, question: str) -> int:
        with self.engine.begin() as connection:
            result = connection.execute(insert(answers).values(
                channel=channel, thread_ts=thread_ts, question_ts=question_ts, user_id=user_id, question=question,
                created_at=time.time()))
        return int(result.inserted_primary_key[0])

    def complete(self, answer_id: int, answer: str, abstained: bool, citations: list[dict]) -> None:
        self._update(answer_id, answer=answer, abstained=bool(abstained),
                     citations=json.dumps(citations, ensure_ascii=False))

    def set_reply(self, answer_id: int, reply_ts: str) -> None:
        """The ts of the message that carries the answer (to update it in place later)."""
        self._update(answer_id, reply_ts=reply_ts)

    def knows_thread(self, channel: str, thread_ts: str) -> bool:
        """True when the bot has been asked something in this thread."""
        query = select(answers.c.id).where(answers.c.channel == channel, answers.c.thread_ts == thread_ts).limit(1)
        with self.engine.connect() as connection:
            return connection.execute(query).first() is not None

    def turns(self, channel: str, thread_ts: str, before_id: int | None = None, limit: int = 10) -> list[Turn]:
        """The thread's earlier turns, oldest first (at most `limit`, the most recent ones)."""
        query = select(*_COLUMNS).where(answers.c.channel == channel, answers.c.thread_ts == thread_ts)
        if before_id is not None:
            query = query.where(answers.c.id < before_id)
        with self.engine.connect() as connection:
            rows = connection.execute(query.order_by(answers.c.id.desc()).limit(limit)).all()
        return [_turn(row) for row in reversed(rows)]

    def history(self, channel: str, thread_ts: str, before_id: int, limit: int = 3) -> list[str]:
        """Earlier questions of the thread, oldest first: the context `KnowledgeBase.ask` takes."""
        return [t.question for t in self.turns(channel, thread_ts, before_id, limit)]

    def get(self, answer_id: int) -> Turn | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(*_COLUMNS).where(answers.c.id == answer_id)).first()
        return _turn(row) if row else None

    def close(self) -> None:
        """Nothing to release: the engine belongs to whoever built it (bot/services.py)."""

    def _update(self, answer_id: int, **values: object) -> None:
        with self.engine.begin() as connection:
            connection.execute(update(answers).where(answers.c.id == answer_id).values(**values))


def _turn(row: Row) -> Turn:
    return Turn(answer_id=row.id, channel=row.channel, thread_ts=row.thread_ts, question_ts=row.question_ts,
                user_id=row.user_id, question=row.question, answer=row.answer, abstained=bool(row.abstained),
                citations=json.loads(row.citations) if row.citations else [], reply_ts=row.reply_ts)
