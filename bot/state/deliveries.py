"""Durable intake of Slack events: recorded before the ack, claimed with a lease, finished once.

Slack retries an event it thinks we missed (slow ack, error, timeout), so the same
`event_id` can arrive several times, on any process sharing this log; and once Slack
has its 200 it never sends the event again. So every event is recorded (its body
included) *before* the ack, and the work on it is held under a lease:

- `receive` records a delivery and claims it for this process (owner = boot id,
  `lease_until` = now + lease) unless someone holds a lease on it that has not expired,
  or it is finished: then the delivery is a duplicate and is dropped;
- while this process holds leases, a heartbeat renews them every lease/3 s (an LLM
  writing for a minute keeps its event);
- `note_reply` records the ts of a streamed answer as soon as it exists, so a retry finishes that
  message instead of starting another; `mark_stream`, written just before the stream is started,
  tells a retry that finds no noted ts that a message without metadata may exist all the same
  (the process died before noting it, or Slack created it and answered 5xx): the retry looks for it
  in the thread and adopts it (bot/listeners/answers.py);
- `finish` ends an event (`done` with an outcome and the reply's ts, or `failed` with the
  permanent error); `release` gives it back after a transient failure, due again after a
  backoff;
- `due` lists pending events nobody holds: released ones past their backoff, and those
  of a process that died (its lease ran out). A resumer (bot/resume.py) claims and
  answers them.

The log lives in the `deliveries` table of the shared state database (strategy_bot/schema.py,
SQLAlchemy Core; stream marks beside it in `stream_starts`): a SQLite file under DATA_DIR by
default, or PostgreSQL that every replica shares, so a retry landing on another replica, or a
replica's dead leases, are seen by all.
Claims are single statements whose WHERE clause decides (INSERT ... ON CONFLICT DO NOTHING
RETURNING, UPDATE ... WHERE lease expired RETURNING): two processes cannot both win, on either
engine, and RETURNING says who won (psycopg reports no rowcount for INSERT ... ON CONFLICT).
Earlier versions kept this log in its own file, `DATA_DIR/slack_deliveries.sqlite3`; it is not
read any more (its records only mattered for a day).
"""
from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from sqlalchemy import ColumnElement, Connection, Engine, delete, or_, select, update

from strategy_bot.database import insert
from strategy_bot.schema import deliveries, stream_starts

log = logging.getLogger(__name__)

KEEP_SECONDS = 24 * 3600  # Slack retries for minutes; a day is plenty to recognise them
PENDING, DONE, FAILED = "pending", "done", "failed"
MAX_BODY_BYTES = 64 * 1024  # a recorded body is at most this (Slack's event bodies are a few KB)
RETRY_BASE_S = 1.0  # a released event is due again after 1, 2, 4 ... s
RETRY_MAX_S = 300.0  # ... at most 5 minutes apart
MAX_ATTEMPTS = 20  # then it is given up (failed, outcome "gave_up"): about an hour of retries
RENEW_CHUNK = 500  # event ids per renewing statement (SQLite's parameter limit is 999 on old builds)
_C = deliveries.c


@dataclass(frozen=True)
class Claim:
    """This process holds the event: `attempt` 1 is its first delivery, more means it may have been
    answered already (check the thread before posting)."""

    event_id: str
    attempt: int


@dataclass(frozen=True)
class Delivery:
    event_id: str
    body: str
    status: str
    owner: str | None
    lease_until: float | None
    attempts: int
    deliveries: int
    first_seen: float
    finished_at: float | None
    outcome: str | None
    reply_ts: str | None


def bounded_body(body: dict) -> str:
    """The event callback as JSON, at most MAX_BODY_BYTES: an oversized one loses what answering does not
    read (rich-text blocks, attachments, file details but id and name) and its text is cut."""
    raw = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    if len(raw.encode("utf-8")) <= MAX_BODY_BYTES:
        return raw
    event = dict(body.get("event") or {})
    for key in ("blocks", "attachments"):
        event.pop(key, None)
    if isinstance(event.get("files"), list):
        event["files"] = [{"id": f.get("id"), "name": f.get("name")} for f in event["files"][:20]
                          if isinstance(f, dict)]
    event["text"] = str(event.get("text") or "")[:8000]
    keep = {k: v for k, v in body.items() if k in {"type", "event_id", "event_time", "team_id", "api_app_id",
                                                       "authorizations", "enterprise_id", "context_team_id"}}
    raw = json.dumps({**keep, "event": event}, ensure_ascii=False, separators=(",", ":"))
    return raw if len(raw.encode("utf-8")) <= MAX_BODY_BYTES else json.dumps(
        {**keep, "event": {k: event.get(k) for k in ("type", "channel", "ts", "user")}})


def retry_delay_s(attempts: int) -> float:
    """How long a released event waits before it is due again, after `attempts` tries."""
    return min(RETRY_BASE_S * 2 ** max(attempts - 1, 0), RETRY_MAX_S)


class DeliveryLog:
    """Thread-safe; one per process (its `boot_id` owns the leases it takes) over the shared state engine."""

    def __init__(self, engine: Engine, lease_s: float = 30.0, boot_id: str | None = None) -> None:
        self.engine = engine
        self.lease_s = float(lease_s)
        self.boot_id = boot_id or uuid.uuid4().hex
        self._held: set[str] = set()
        self._held_lock = threading.Lock()
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self._forget_old()

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction; on SQLite it takes the file's write lock first (BEGIN IMMEDIATE), so a
        read-then-write waits its turn instead of failing with "database is locked" half-way."""
        with self.engine.connect().execution_options(sqlite_immediate=True) as connection, connection.begin():
            yield connection

    # ------------------------------------------------------------------ claiming

    def receive(self, event_id: str, body: dict) -> Claim | None:
        """Record a delivery from Slack and claim it; None for a duplicate (finished, or held by a live lease)."""
        now = time.time()
        record = insert(self.engine, deliveries).values(
            event_id=event_id, body=bounded_body(body), status=PENDING, owner=self.boot_id,
            lease_until=now + self.lease_s, attempts=1, deliveries=1, first_seen=now,
        ).on_conflict_do_nothing(index_elements=[_C.event_id]).returning(_C.event_id)
        with self._write() as connection:
            inserted = connection.execute(record).first() is not None
        if inserted:  # held once committed: a heartbeat before that would not find the row and drop it
            return self._hold(Claim(event_id, 1))
        claim = self._take(event_id, count_delivery=True)
        if claim is None:
            with self._write() as connection:
                connection.execute(update(deliveries).where(_C.event_id == event_id)
                                   .values(deliveries=_C.deliveries + 1))
        return claim

    def claim(self, event_id: str) -> Claim | None:
        """Claim a recorded event that is due (the resumer's way in); None when someone else got it first."""
        return self._take(event_id, count_delivery=False)

    def _take(self, event_id: str, *, count_delivery: bool) -> Claim | None:
        now = time.time()
        statement = (update(deliveries)
                     .where(_C.event_id == event_id, _C.status == PENDING, _due(now))
                     .values(owner=self.boot_id, lease_until=now + self.lease_s, attempts=_C.attempts + 1,
                             deliveries=_C.deliveries + (1 if count_delivery else 0))
                     .returning(_C.attempts))
        with self._write() as connection:
            attempts = connection.execute(statement).scalar()
        return None if attempts is None else self._hold(Claim(event_id, int(attempts)))

    def due(self, limit: int = 50) -> list[str]:
        """Pending events nobody holds (lease run out, or released and past the backoff), oldest first."""
        query = (select(_C.event_id).where(_C.status == PENDING, _due(time.time()))
                 .order_by(_C.first_seen).limit(limit))
        with self.engine.connect() as connection:
            return list(connection.execute(query).scalars())

    # ------------------------------------------------------------------ ending a claim

    def finish(self, event_id: str, outcome: str = "answered", reply_ts: str | None = None) -> None:
        """The event's work is done: later deliveries are duplicates, even after a restart."""
        self._end(event_id, DONE, outcome, reply_ts)

    def note_reply(self, event_id: str, reply_ts: str) -> None:
        """The message answering a pending event exists already (a stream just started): a retry reads it
        here, since Slack shows a stream's metadata only once it stops (bot/streaming.py)."""
        with self._write() as connection:
            connection.execute(update(deliveries).where(_C.event_id == event_id, _C.status == PENDING)
                               .values(reply_ts=reply_ts))

    def noted_reply(self, event_id: str) -> str | None:
        """The ts `note_reply` recorded for an event (or `finish` did), if any."""
        with self.engine.connect() as connection:
            return connection.execute(select(_C.reply_ts).where(_C.event_id == event_id)).scalar()

    def mark_stream(self, event_id: str) -> None:
        """A stream is about to be started for an event: written before `chat.startStream`, because Slack may
        create the message and the ts still never reach `note_reply` (a crash, a 5xx, a timeout)."""
        now = time.time()
        upsert = insert(self.engine, stream_starts).values(event_id=event_id, started_at=now)
        upsert = upsert.on_conflict_do_update(index_elements=[stream_starts.c.event_id], set_={"started_at": now})
        with self._write() as connection:
            connection.execute(upsert)

    def stream_mark(self, event_id: str) -> float | None:
        """When a stream was last being started for an event (`mark_stream`), or None if never."""
        with self.engine.connect() as connection:
            return connection.execute(select(stream_starts.c.started_at)
                                      .where(stream_starts.c.event_id == event_id)).scalar()

    def replied_elsewhere(self, reply_ts: str, event_id: str) -> bool:
        """Whether another event noted (or finished with) a reply of this ts: that message is not ours to adopt."""
        with self.engine.connect() as connection:
            return connection.execute(select(_C.event_id).where(_C.reply_ts == reply_ts, _C.event_id != event_id)
                                      .limit(1)).first() is not None

    def fail(self, event_id: str, outcome: str) -> None:
        """A permanent failure (`outcome` names it, e.g. Slack's `channel_not_found`): never retried."""
        self._end(event_id, FAILED, outcome, None)

    def release(self, event_id: str) -> float | None:
        """Give the event back after a transient failure; due again after a backoff that grows with the
        attempts (the delay in seconds), or failed as `gave_up` after MAX_ATTEMPTS (None)."""
        with self._write() as connection:
            attempts = int(connection.execute(select(_C.attempts).where(_C.event_id == event_id)).scalar() or 1)
            if attempts < MAX_ATTEMPTS:
                delay = retry_delay_s(attempts)
                connection.execute(update(deliveries)
                                   .where(_C.event_id == event_id, _C.owner == self.boot_id, _C.status == PENDING)
                                   .values(owner=None, lease_until=time.time() + delay))
        if attempts >= MAX_ATTEMPTS:
            self.fail(event_id, "gave_up")
            return None
        self._drop(event_id)
        return delay

    def _end(self, event_id: str, status: str, outcome: str, reply_ts: str | None) -> None:
        with self._write() as connection:
            connection.execute(update(deliveries).where(_C.event_id == event_id, _C.status == PENDING)
                               .values(status=status, outcome=outcome, reply_ts=reply_ts, finished_at=time.time()))
        self._drop(event_id)

    # ------------------------------------------------------------------ leases held

    def held(self) -> int:
        """How many events this process holds right now."""
        with self._held_lock:
            return len(self._held)

    def renew(self) -> int:
        """Push back the lease of every event this process holds; returns how many it still holds.

        A lease that ran out meanwhile (the process was frozen past it) and was taken by another
        process stays theirs: its `owner` no longer matches, and this process forgets it.
        """
        with self._held_lock:
            held = sorted(self._held)
        kept: set[str] = set()
        for start in range(0, len(held), RENEW_CHUNK):
            statement = (update(deliveries)
                         .where(_C.owner == self.boot_id, _C.status == PENDING,
                                _C.event_id.in_(held[start:start + RENEW_CHUNK]))
                         .values(lease_until=time.time() + self.lease_s).returning(_C.event_id))
            with self._write() as connection:
                kept.update(connection.execute(statement).scalars())
        for event_id in set(held) - kept:
            if (self.status(event_id) or ("",))[0] == PENDING:
                log.warning("lost the lease on %s to another process", event_id)
            self._drop(event_id)
        return len(kept)

    def _hold(self, claim: Claim) -> Claim:
        with self._held_lock:
            self._held.add(claim.event_id)
            if self._heartbeat is None and not self._stop.is_set():
                self._heartbeat = threading.Thread(target=self._beat, name="delivery-heartbeat", daemon=True)
                self._heartbeat.start()
        return claim

    def _drop(self, event_id: str) -> None:
        with self._held_lock:
            self._held.discard(event_id)

    def _beat(self) -> None:
        """Renew this process's leases every lease/3 s, so one late beat never lets a lease run out."""
        while not self._stop.wait(self.lease_s / 3):
            try:
                if self.held():
                    self.renew()
            except Exception:  # a locked or vanished database: the next beat tries again
                log.exception("renewing delivery leases failed")

    # ------------------------------------------------------------------ reading

    def get(self, event_id: str) -> Delivery | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(deliveries).where(_C.event_id == event_id)).first()
        return Delivery(**row._mapping) if row else None

    def body(self, event_id: str) -> dict | None:
        """The recorded event callback, or None when the event is unknown or its record unreadable."""
        delivery = self.get(event_id)
        try:
            body = json.loads(delivery.body) if delivery else None
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def status(self, event_id: str) -> tuple[str, int] | None:
        """(status, deliveries seen) of an event, or None if it never arrived."""
        with self.engine.connect() as connection:
            row = connection.execute(select(_C.status, _C.deliveries).where(_C.event_id == event_id)).first()
        return (row[0], int(row[1])) if row else None

    def _forget_old(self) -> None:
        """Finished events are kept a day (to recognise late retries); a pending one that old is stale, and so
        is a stream mark (a retry that late is given up)."""
        cutoff = time.time() - KEEP_SECONDS
        with self._write() as connection:
            connection.execute(delete(deliveries).where(_C.first_seen < cutoff, _C.status != PENDING))
            connection.execute(delete(stream_starts).where(stream_starts.c.started_at < cutoff))
            connection.execute(update(deliveries).where(_C.first_seen < cutoff, _C.status == PENDING)
                               .values(status=FAILED, outcome="expired", finished_at=time.time()))

    def close(self) -> None:
        """Stop the heartbeat; the engine belongs to the caller (bot/services.py disposes of it)."""
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=5)


def _due(now: float) -> ColumnElement[bool]:
    """Nobody holds the event: no lease, or one that has run out."""
    return or_(_C.lease_until.is_(None), _C.lease_until <= now)
