"""Questionnaire state per Slack thread, persisted in the state database (SQLite or PostgreSQL).

`Dialogue` holds the state and its transitions (answer, back, restart, cancel) as pure functions
that return a new Dialogue, so they are trivial to test and never half-apply. `DialogueStore`
only persists, in the `dialogues` table (strategy_bot/schema.py), so a bot restart resumes every
open questionnaire.

Saves are optimistic: every stored dialogue has a `version`, and a save succeeds only if the stored
version is still the one the dialogue was read at (one conditional UPDATE, atomic on both engines).
Two clicks of the same step, handled at once by two replicas, cannot both advance it: the second
save raises `DialogueConflict` and the caller reloads. (Before, `INSERT OR REPLACE`: the last write won.)
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from sqlalchemy import Engine, Row, delete, select, update

from strategy_bot.database import insert
from strategy_bot.schema import dialogues

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
    version: int = 0  # the stored version this state was read at (0: never stored)

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


class DialogueConflict(Exception):
    """The dialogue was saved by someone else (another click, another replica) since it was read."""


_KEY = (dialogues.c.channel_id, dialogues.c.thread_ts)


class DialogueStore:
    """Dialogues keyed by (channel_id, thread_ts), in the state database. Thread-safe."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(
        self, channel_id: str, thread_ts: str, user_id: str, context: str = "", now: float | None = None
    ) -> Dialogue:
        """Start a questionnaire in a thread, replacing any earlier one there (whatever its version)."""
        stamp = time.time() if now is None else now
        dialogue = Dialogue(channel_id, thread_ts, user_id, context=context, created_at=stamp, updated_at=stamp)
        values = _values(dialogue)
        statement = insert(self.engine, dialogues).values(**values, version=1)
        statement = statement.on_conflict_do_update(
            index_elements=list(_KEY),
            set_={**{k: v for k, v in values.items() if k not in ("channel_id", "thread_ts")},
                  "version": dialogues.c.version + 1},
        ).returning(dialogues.c.version)
        with self.engine.begin() as connection:
            version = connection.execute(statement).scalar_one()
        return replace(dialogue, version=int(version))

    def get(self, channel_id: str, thread_ts: str) -> Dialogue | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(dialogues).where(*_where(channel_id, thread_ts))).first()
        return _from_row(row) if row else None

    def save(self, dialogue: Dialogue, now: float | None = None) -> Dialogue:
        """Persist the dialogue, stamping updated_at; returns the stamped copy at its new version.

        DialogueConflict when the stored dialogue is no longer at `dialogue.version` (someone else
        saved it, or it was deleted): nothing is written, and the caller should reload.
        """
        if dialogue.status not in STATUSES:
            raise ValueError(f"unknown dialogue status '{dialogue.status}'")
        stamped = replace(dialogue, updated_at=time.time() if now is None else now)
        values, version = _values(stamped), dialogue.version + 1
        if dialogue.version == 0:  # never stored: insert it, unless someone else just did
            statement = insert(self.engine, dialogues).values(**values, version=version).on_conflict_do_nothing()
        else:
            statement = (update(dialogues).where(*_where(dialogue.channel_id, dialogue.thread_ts),
                                                 dialogues.c.version == dialogue.version)
                         .values(**values, version=version))
        with self.engine.begin() as connection:  # RETURNING: rowcount of an upsert is -1 on psycopg
            written = connection.execute(statement.returning(dialogues.c.version)).all()
        if len(written) != 1:
            raise DialogueConflict(f"dialogue {dialogue.channel_id}/{dialogue.thread_ts} was changed since "
                                   f"version {dialogue.version}")
        return replace(stamped, version=version)

    def delete(self, channel_id: str, thread_ts: str) -> bool:
        with self.engine.begin() as connection:
            return connection.execute(delete(dialogues).where(*_where(channel_id, thread_ts))).rowcount > 0

    @staticmethod
    def is_expired(dialogue: Dialogue, now: float, ttl_days: float = DEFAULT_TTL_DAYS) -> bool:
        """A dialogue untouched for more than ttl_days is stale; the bot should start over."""
        return now - dialogue.updated_at > ttl_days * _DAY

    def purge_expired(self, now: float | None = None, ttl_days: float = DEFAULT_TTL_DAYS) -> int:
        """Delete stale dialogues so the table does not grow forever; returns how many went."""
        cutoff = (time.time() if now is None else now) - ttl_days * _DAY
        with self.engine.begin() as connection:
            return connection.execute(delete(dialogues).where(dialogues.c.updated_at < cutoff)).rowcount

    def close(self) -> None:
        """Nothing to release: the engine belongs to whoever built it (bot/services.py)."""

    def __enter__(self) -> DialogueStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _where(channel_id: str, thread_ts: str) -> tuple[Any, Any]:
    return dialogues.c.channel_id == channel_id, dialogues.c.thread_ts == thread_ts


def _values(d: Dialogue) -> dict[str, Any]:
    return {"channel_id": d.channel_id, "thread_ts": d.thread_ts, "user_id": d.user_id, "step": d.step,
            "answers": json.dumps(dict(d.answers), ensure_ascii=False), "context": d.context, "status": d.status,
            "created_at": d.created_at, "updated_at": d.updated_at,
            "message_ts": json.dumps(dict(d.message_ts), ensure_ascii=False)}


def _from_row(row: Row) -> Dialogue:
    return Dialogue(
        channel_id=row.channel_id,
        thread_ts=row.thread_ts,
        user_id=row.user_id,
        step=int(row.step),
        answers=json.loads(row.answers),
        context=row.context,
        status=row.status,
        created_at=float(row.created_at),
        updated_at=float(row.updated_at),
        message_ts=json.loads(row.message_ts),
        version=int(row.version),
    )
