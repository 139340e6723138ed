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
from collections import Counter
from dataclasses import dataclass
from typing import Callable

from sqlalchemy import Engine, Row, func, insert, select, update

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
    build_id: str | None = None
    created_at: float = 0.0


_COLUMNS = (answers.c.id, answers.c.channel, answers.c.thread_ts, answers.c.question_ts, answers.c.user_id,
            answers.c.question, answers.c.answer, answers.c.abstained, answers.c.citations, answers.c.reply_ts,
            answers.c.build_id, answers.c.created_at)
CITED_SCAN_ROWS = 5000  # documents most cited: read at most the latest this many answers (bounded cost)


class ConversationLog:
    """Thread-safe (each call takes a pooled connection); `start` registers the thread before the
    answer exists, so a quick follow-up already sees the thread as the bot's."""

    def __init__(self, engine: Engine, current_build: Callable[[], str | None] | None = None) -> None:
        """`current_build`: which index build is being served (bot/services.py passes the knowledge
        base's), recorded with each completed answer so feedback on it names the build that answered."""
        self.engine = engine
        self.current_build = current_build

    def start(self, channel: str, thread_ts: str, question_ts: str, user_id: str, question: str) -> int:
        with self.engine.begin() as connection:
            result = connection.execute(insert(answers).values(
                channel=channel, thread_ts=thread_ts, question_ts=question_ts, user_id=user_id, question=question,
                created_at=time.time()))
        return int(result.inserted_primary_key[0])

    def complete(self, answer_id: int, answer: str, abstained: bool, citations: list[dict],
                 build_id: str | None = None) -> None:
        if build_id is None and self.current_build is not None:
            build_id = self.current_build()
        self._update(answer_id, answer=answer, abstained=bool(abstained),
                     citations=json.dumps(citations, ensure_ascii=False), build_id=build_id)

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

    def recent_questions(self, user_id: str, limit: int = 5) -> list[Turn]:
        """A user's latest questions, newest first (their App Home)."""
        query = select(*_COLUMNS).where(answers.c.user_id == user_id).order_by(answers.c.id.desc()).limit(limit)
        with self.engine.connect() as connection:
            return [_turn(row) for row in connection.execute(query).all()]

    def most_declined(self, since: float, limit: int = 5) -> list[tuple[str, int]]:
        """The questions the bot declined most often since `since` (same words, case aside): the gaps in
        the documents, for admins."""
        asked = func.lower(func.trim(answers.c.question))
        times = func.count().label("times")
        query = (select(func.max(answers.c.question), times)
                 .where(answers.c.abstained.is_(True), answers.c.created_at >= since)
                 .group_by(asked).order_by(times.desc(), func.max(answers.c.id).desc()).limit(limit))
        with self.engine.connect() as connection:
            return [(row[0], int(row[1])) for row in connection.execute(query).all()]

    def most_cited(self, since: float, limit: int = 5) -> list[tuple[str, str, int]]:
        """(doc_id, title, answers citing it) for the documents answers cited most since `since`
        (declined answers list passages too, but cite none). Citations are JSON, so the counting is
        done here, over at most CITED_SCAN_ROWS of the latest answers."""
        query = (select(answers.c.citations)
                 .where(answers.c.abstained.is_(False), answers.c.created_at >= since, answers.c.citations.is_not(None))
                 .order_by(answers.c.id.desc()).limit(CITED_SCAN_ROWS))
        counts: Counter[str] = Counter()
        titles: dict[str, str] = {}
        with self.engine.connect() as connection:
            for (raw,) in connection.execute(query):
                cited = {}
                for citation in _json_list(raw):
                    if isinstance(citation, dict) and citation.get("doc_id"):
                        cited[str(citation["doc_id"])] = str(citation.get("title") or citation["doc_id"])
                counts.update(cited.keys())
                titles.update(cited)
        return [(doc, titles[doc], n) for doc, n in counts.most_common(limit)]

    def close(self) -> None:
        """Nothing to release: the engine belongs to whoever built it (bot/services.py)."""

    def _update(self, answer_id: int, **values: object) -> None:
        with self.engine.begin() as connection:
            connection.execute(update(answers).where(answers.c.id == answer_id).values(**values))


def _turn(row: Row) -> Turn:
    return Turn(answer_id=row.id, channel=row.channel, thread_ts=row.thread_ts, question_ts=row.question_ts,
                user_id=row.user_id, question=row.question, answer=row.answer, abstained=bool(row.abstained),
                citations=_json_list(row.citations), reply_ts=row.reply_ts, build_id=row.build_id,
                created_at=float(row.created_at))


def _json_list(raw: str | None) -> list:
    try:
        value = json.loads(raw) if raw else []
    except ValueError:
        return []
    return value if isinstance(value, list) else []
