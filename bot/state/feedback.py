"""👍/👎 on answers: who, which answer, which citations, which build, when — and why, for a 👎.

One row per (answer, user): clicking again changes the vote instead of counting twice,
so the figures stay honest when someone corrects a mis-click. A 👎 may then get a reason
from the modal (`set_reason`): one of REASONS and, optionally, the voter's own words, cut
to REASON_TEXT_CHARS. The `feedback` table (strategy_bot/schema.py) lives in the state
database, SQLite or PostgreSQL. `most_declined` feeds the admins' App Home.
"""
from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import Engine, func, select, update

from strategy_bot.database import insert
from strategy_bot.schema import feedback

VOTES = ("up", "down")
# Why a 👎 (the modal's choices; their labels are in prompts/slack.yaml, feedback_reasons).
REASONS = ("wrong_source", "outdated", "not_asked", "wrong_language", "other")
REASON_TEXT_CHARS = 500  # the modal's input allows this much; anything longer is cut, never stored whole


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
    build_id: str | None = None
    reason: str | None = None
    reason_text: str | None = None


@dataclass(frozen=True)
class Disliked:
    """An answer with 👎s: its question, how many, and the reasons given (most frequent first)."""

    answer_id: int
    question: str
    downs: int
    reasons: list[tuple[str, int]]
    comments: list[str]


class FeedbackLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, *, answer_id: int, user_id: str, vote: str, channel: str, message_ts: str,
               question: str, citations: list[dict], build_id: str | None = None) -> bool:
        """Store a vote; True when it is new or changed, False when it repeats the user's vote.
        A changed vote drops the reason given for the old one (a 👍 has none)."""
        if vote not in VOTES:
            raise ValueError(f"vote must be one of {VOTES}, not {vote!r}")
        now = time.time()
        key = (feedback.c.answer_id == answer_id, feedback.c.user_id == user_id)
        upsert = insert(self.engine, feedback).values(
            answer_id=answer_id, user_id=user_id, vote=vote, channel=channel, message_ts=message_ts,
            question=question, citations=json.dumps(citations, ensure_ascii=False), created_at=now, updated_at=now,
            build_id=build_id)
        # The read and the write in two transactions, as before: on SQLite, a write after a read in one
        # transaction fails at once (no busy wait) if another writer came in between.
        with self.engine.connect() as connection:
            previous = connection.execute(select(feedback.c.vote).where(*key)).scalar()
        changes: dict = {"vote": upsert.excluded.vote, "updated_at": upsert.excluded.updated_at}
        if previous is not None and previous != vote:
            changes.update(reason=None, reason_text=None)
        upsert = upsert.on_conflict_do_update(index_elements=[feedback.c.answer_id, feedback.c.user_id],
                                              set_=changes)
        with self.engine.begin() as connection:
            connection.execute(upsert)
        return previous != vote

    def set_reason(self, answer_id: int, user_id: str, reason: str, text: str = "") -> bool:
        """Why `user_id` gave `answer_id` a 👎; False (nothing written) unless that user's 👎 is on record —
        so a forged modal cannot write a reason onto someone else's vote, or onto a 👍."""
        if reason not in REASONS:
            raise ValueError(f"reason must be one of {REASONS}, not {reason!r}")
        words = " ".join(text.split())[:REASON_TEXT_CHARS] or None
        statement = (update(feedback)
                     .where(feedback.c.answer_id == answer_id, feedback.c.user_id == user_id, feedback.c.vote == "down")
                     .values(reason=reason, reason_text=words, updated_at=time.time())
                     .returning(feedback.c.answer_id))
        with self.engine.begin() as connection:
            return connection.execute(statement).first() is not None

    def get(self, answer_id: int, user_id: str) -> Feedback | None:
        query = select(*_COLUMNS).where(feedback.c.answer_id == answer_id, feedback.c.user_id == user_id)
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return _feedback(row) if row else None

    def all(self) -> list[Feedback]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(*_COLUMNS).order_by(feedback.c.created_at)).all()
        return [_feedback(row) for row in rows]

    def most_disliked(self, since: float, limit: int = 5, comments: int = 3) -> list[Disliked]:
        """The answers with the most 👎 since `since`, with their reasons: what admins should look at."""
        downs = func.count().label("downs")
        top = (select(feedback.c.answer_id, func.max(feedback.c.question), downs)
               .where(feedback.c.vote == "down", feedback.c.updated_at >= since)
               .group_by(feedback.c.answer_id).order_by(downs.desc(), feedback.c.answer_id.desc()).limit(limit))
        with self.engine.connect() as connection:
            rows = connection.execute(top).all()
            ids = [row[0] for row in rows]
            given = connection.execute(
                select(feedback.c.answer_id, feedback.c.reason, feedback.c.reason_text)
                .where(feedback.c.answer_id.in_(ids), feedback.c.vote == "down")
                .order_by(feedback.c.updated_at.desc())).all() if ids else []
        found = []
        for answer_id, question, count in rows:
            mine = [g for g in given if g[0] == answer_id]
            reasons = Counter(g[1] for g in mine if g[1]).most_common()
            found.append(Disliked(int(answer_id), question, int(count), reasons,
                                  [g[2] for g in mine if g[2]][:comments]))
        return found

    def close(self) -> None:
        """Nothing to release: the engine belongs to whoever built it (bot/services.py)."""


_COLUMNS = (feedback.c.answer_id, feedback.c.user_id, feedback.c.vote, feedback.c.channel, feedback.c.message_ts,
            feedback.c.question, feedback.c.citations, feedback.c.created_at, feedback.c.updated_at,
            feedback.c.build_id, feedback.c.reason, feedback.c.reason_text)


def _feedback(row) -> Feedback:
    return Feedback(*row[:6], json.loads(row[6]), *row[7:])
