"""Questionnaire state per Slack thread, persisted in SQLite.

`Dialogue` holds the state and its transitions (answer, back, restart, cancel) as pure functions
that return a new Dialogue, so they are trivial to test and never half-apply. `DialogueStore`
only persists: one SQLite file in WAL mode, one connection, one lock, so a bot restart resumes
every open questionnaire and concurrent Slack handler threads never interleave writes.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

from .model import DecisionModel, Question

ACTIVE, FINISHED, CANCELLED = "active", "finished", "cancelled"
STATUSES = (ACTIVE, FINISHED, CANCELLED)
DEFAULT_TTL_DAYS = 7
_DAY = 86400.0


@dataclass(frozen=True)
class Dialogue:
    """One questionnaire in one Slack thread. Transitions return a new Dialogue."""

    channel_id: str
    thread_ts: str
    user_id: str
    step: int = 0
    answers: Mapping[str, str] = field(default_factory=dict)
    context: str = ""
    status: str = ACTIVE
    created_at: float = 0.0
    updated_at: float = 0.0
    message_ts: Mapping[str, str] = field(default_factory=dict)

    def current_question(self, model: DecisionModel) -> Question | None:
        """The question to ask now, or None when the questionnaire is done."""
        if self.status != ACTIVE or self.step >= len(model.questions):
            return None
        return model.questions[self.step]

    def answer(self, question_key: str, value: str, model: DecisionModel) -> Dialogue:
        """Record an answer (any question, so earlier Slack messages can be re-clicked) and move on.

        The next step is the first unanswered question after this one (wrapping to the start);
        when every question is answered the dialogue becomes finished.
        """
        if self.status == CANCELLED:
            raise ValueError("cannot answer a cancelled dialogue; restart it first")
        model.question(question_key).option(value)  # raises ValueError naming the problem
        answers = {**self.answers, question_key: value}
        step = _next_unanswered(model, answers, model.question_keys.index(question_key) + 1)
        status = FINISHED if step == len(model.questions) else ACTIVE
        return replace(self, answers=answers, step=step, status=status)

    def back(self) -> Dialogue:
        """Return to the previous question; its answer is kept until it is answered again."""
        if self.status == CANCELLED:
            raise ValueError("cannot go back in a cancelled dialogue; restart it first")
        return replace(self, step=max(0, self.step - 1), status=ACTIVE)

    def restart(self) -> Dialogue:
        """Forget answers and question messages and start again from the first question."""
        return replace(self, step=0, answers={}, status=ACTIVE, message_ts={})

    def cancel(self) -> Dialogue:
        return replace(self, status=CANCELLED)

    def with_message(self, question_key: str, ts: str) -> Dialogue:
        """Remember the Slack message that asked this question, to update it in place later."""
        return replace(self, message_ts={**self.message_ts, question_key: ts})

    def with_context(self, context: str) -> Dialogue:
        return replace(self, context=context)


def _next_unanswered(model: DecisionModel, answers: Mapping[str, str], start: int) -> int:
    keys = model.question_keys
    order = list(range(start, len(keys))) + list(range(0, min(start, len(keys))))
    for index in order:
        if keys[index] not in answers:
            return index
    return len(keys)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS dialogues (
    channel_id TEXT NOT NULL,
    thread_ts  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    step       INTEGER NOT NULL,
    answers    TEXT NOT NULL,
    context    TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('active', 'finished', 'cancelled')),
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    message_ts TEXT NOT NULL,
    PRIMARY KEY (channel_id, thread_ts)
)
"""

_COLUMNS = "channel_id, thread_ts, user_id, step, answers, context, status, created_at, updated_at, message_ts"


class DialogueStore:
    """SQLite persistence for Dialogues, keyed by (channel_id, thread_ts). Thread-safe."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        with self._lock, self._conn:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA busy_timeout=30000")
            self._conn.execute(_SCHEMA)

    def create(
        self, channel_id: str, thread_ts: str, user_id: str, context: str = "", now: float | None = None
    ) -> Dialogue:
        """Start a questionnaire in a thread, replacing any earlier one there."""
        stamp = time.time() if now is None else now
        dialogue = Dialogue(channel_id, thread_ts, user_id, context=context, created_at=stamp, updated_at=stamp)
        return self._write(dialogue)

    def get(self, channel_id: str, thread_ts: str) -> Dialogue | None:
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_COLUMNS} FROM dialogues WHERE channel_id = ? AND thread_ts = ?", (channel_id, thread_ts)
            ).fetchone()
        return _from_row(row) if row else None

    def save(self, dialogue: Dialogue, now: float | None = None) -> Dialogue:
        """Persist the dialogue, stamping updated_at; returns the stamped copy."""
        if dialogue.status not in STATUSES:
            raise ValueError(f"unknown dialogue status '{dialogue.status}'")
        return self._write(replace(dialogue, updated_at=time.time() if now is None else now))

    def delete(self, channel_id: str, thread_ts: str) -> bool:
        with self._lock, self._conn:
            cursor = self._conn.execute(
                "DELETE FROM dialogues WHERE channel_id = ? AND thread_ts = ?", (channel_id, thread_ts)
            )
        return cursor.rowcount > 0

    @staticmethod
    def is_expired(dialogue: Dialogue, now: float, ttl_days: float = DEFAULT_TTL_DAYS) -> bool:
        """A dialogue untouched for more than ttl_days is stale; the bot should start over."""
        return now - dialogue.updated_at > ttl_days * _DAY

    def purge_expired(self, now: float | None = None, ttl_days: float = DEFAULT_TTL_DAYS) -> int:
        """Delete stale dialogues so the table does not grow forever; returns how many went."""
        cutoff = (time.time() if now is None else now) - ttl_days * _DAY
        with self._lock, self._conn:
            cursor = self._conn.execute("DELETE FROM dialogues WHERE updated_at < ?", (cutoff,))
        return cursor.rowcount

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> DialogueStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, d: Dialogue) -> Dialogue:
        row = (
            d.channel_id, d.thread_ts, d.user_id, d.step, json.dumps(dict(d.answers), ensure_ascii=False),
            d.context, d.status, d.created_at, d.updated_at, json.dumps(dict(d.message_ts), ensure_ascii=False),
        )
        with self._lock, self._conn:
            self._conn.execute(f"INSERT OR REPLACE INTO dialogues ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)", row)
        return d


def _from_row(row: tuple) -> Dialogue:
    channel_id, thread_ts, user_id, step, answers, context, status, created_at, updated_at, message_ts = row
    return Dialogue(
        channel_id=channel_id,
        thread_ts=thread_ts,
        user_id=user_id,
        step=int(step),
        answers=json.loads(answers),
        context=context,
        status=status,
        created_at=float(created_at),
        updated_at=float(updated_at),
        message_ts=json.loads(message_ts),
    )
