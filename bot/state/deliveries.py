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
- `finish` ends an event (`done` with an outcome and the reply's ts, or `failed` with the
  permanent error); `release` gives it back after a transient failure, due again after a
  backoff;
- `due` lists pending events nobody holds: released ones past their backoff, and those
  of a process that died (its lease ran out). A resumer (bot/resume.py) claims and
  answers them.

Claims are single statements whose WHERE clause decides (INSERT ... ON CONFLICT DO
NOTHING, UPDATE ... WHERE lease expired), so two processes sharing the file cannot both
win, and the SQL ports as is to PostgreSQL (the `deliveries` table has the shared shape).
"""
from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bot.state.sqlite import Database

log = logging.getLogger(__name__)

KEEP_SECONDS = 24 * 3600  # Slack retries for minutes; a day is plenty to recognise them
PENDING, DONE, FAILED = "pending", "done", "failed"
MAX_BODY_BYTES = 64 * 1024  # a recorded body is at most this (Slack's event bodies are a few KB)
RETRY_BASE_S = 1.0  # a released event is due again after 1, 2, 4 ... s
RETRY_MAX_S = 300.0  # ... at most 5 minutes apart
MAX_ATTEMPTS = 20  # then it is given up (failed, outcome "gave_up"): about an hour of retries
RENEW_CHUNK = 500  # event ids per renewing statement (SQLite's parameter limit is 999 on old builds)

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS deliveries (
    event_id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    owner TEXT NULL,
    lease_until DOUBLE PRECISION NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    deliveries INTEGER NOT NULL DEFAULT 1,
    first_seen DOUBLE PRECISION NOT NULL,
    finished_at DOUBLE PRECISION NULL,
    outcome TEXT NULL,
    reply_ts TEXT NULL
)""",
    "CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(status, lease_until)",
    "CREATE INDEX IF NOT EXISTS deliveries_first_seen ON deliveries(first_seen)",
]
_COLUMNS = ("event_id, body, status, owner, lease_until, attempts, deliveries, first_seen, finished_at, outcome, "
            "reply_ts")


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
    """Thread-safe; one per process (its `boot_id` owns the leases it takes)."""

    def __init__(self, path: Path, lease_s: float = 30.0, boot_id: str | None = None) -> None:
        self.db = Database(path, "")
        _upgrade_old_table(self.db)
        for statement in SCHEMA:
            self.db.execute(statement)
        self.lease_s = float(lease_s)
        self.boot_id = boot_id or uuid.uuid4().hex
        self._held: set[str] = set()
        self._held_lock = threading.Lock()
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self._forget_old()

    # ------------------------------------------------------------------ claiming

    def receive(self, event_id: str, body: dict) -> Claim | None:
        """Record a delivery from Slack and claim it; None for a duplicate (finished, or held by a live lease)."""
        now = time.time()
        inserted = self.db.execute(
            "INSERT INTO deliveries(event_id, body, status, owner, lease_until, attempts, deliveries, first_seen) "
            "VALUES (?, ?, ?, ?, ?, 1, 1, ?) ON CONFLICT (event_id) DO NOTHING",
            (event_id, bounded_body(body), PENDING, self.boot_id, now + self.lease_s, now),
        ).rowcount
        if inserted:
            return self._hold(Claim(event_id, 1))
        claim = self._take(event_id, count_delivery=True)
        if claim is None:
            self.db.execute("UPDATE deliveries SET deliveries = deliveries + 1 WHERE event_id = ?", (event_id,))
        return claim

    def claim(self, event_id: str) -> Claim | None:
        """Claim a recorded event that is due (the resumer's way in); None when someone else got it first."""
        return self._take(event_id, count_delivery=False)

    def _take(self, event_id: str, *, count_delivery: bool) -> Claim | None:
        now = time.time()
        taken = self.db.execute(
            "UPDATE deliveries SET owner = ?, lease_until = ?, attempts = attempts + 1, "
            f"deliveries = deliveries + {1 if count_delivery else 0} "
            "WHERE event_id = ? AND status = ? AND (lease_until IS NULL OR lease_until <= ?)",
            (self.boot_id, now + self.lease_s, event_id, PENDING, now),
        ).rowcount
        if not taken:
            return None
        rows = self.db.query("SELECT attempts FROM deliveries WHERE event_id = ?", (event_id,))
        return self._hold(Claim(event_id, int(rows[0][0]) if rows else 2))

    def due(self, limit: int = 50) -> list[str]:
        """Pending events nobody holds (lease run out, or released and past the backoff), oldest first."""
        rows = self.db.query(
            "SELECT event_id FROM deliveries WHERE status = ? AND (lease_until IS NULL OR lease_until <= ?) "
            "ORDER BY first_seen LIMIT ?", (PENDING, time.time(), limit))
        return [row[0] for row in rows]

    # ------------------------------------------------------------------ ending a claim

    def finish(self, event_id: str, outcome: str = "answered", reply_ts: str | None = None) -> None:
        """The event's work is done: later deliveries are duplicates, even after a restart."""
        self._end(event_id, DONE, outcome, reply_ts)

    def fail(self, event_id: str, outcome: str) -> None:
        """A permanent failure (`outcome` names it, e.g. Slack's `channel_not_found`): never retried."""
        self._end(event_id, FAILED, outcome, None)

    def release(self, event_id: str) -> float | None:
        """Give the event back after a transient failure; due again after a backoff that grows with the
        attempts (the delay in seconds), or failed as `gave_up` after MAX_ATTEMPTS (None)."""
        rows = self.db.query("SELECT attempts FROM deliveries WHERE event_id = ?", (event_id,))
        attempts = int(rows[0][0]) if rows else 1
        if attempts >= MAX_ATTEMPTS:
            self.fail(event_id, "gave_up")
            return None
        delay = retry_delay_s(attempts)
        self.db.execute("UPDATE deliveries SET owner = NULL, lease_until = ? WHERE event_id = ? AND owner = ? "
                        "AND status = ?", (time.time() + delay, event_id, self.boot_id, PENDING))
        self._drop(event_id)
        return delay

    def _end(self, event_id: str, status: str, outcome: str, reply_ts: str | None) -> None:
        self.db.execute("UPDATE deliveries SET status = ?, outcome = ?, reply_ts = ?, finished_at = ? "
                        "WHERE event_id = ? AND status = ?", (status, outcome, reply_ts, time.time(), event_id,
                                                               PENDING))
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
        kept = 0
        for start in range(0, len(held), RENEW_CHUNK):
            chunk = held[start:start + RENEW_CHUNK]
            marks = ", ".join("?" * len(chunk))
            kept += self.db.execute(
                f"UPDATE deliveries SET lease_until = ? WHERE owner = ? AND status = ? AND event_id IN ({marks})",
                (time.time() + self.lease_s, self.boot_id, PENDING, *chunk)).rowcount
        if kept < len(held):
            self._forget_lost(held)
        return kept

    def _forget_lost(self, held: list[str]) -> None:
        for event_id in held:
            rows = self.db.query("SELECT owner, status FROM deliveries WHERE event_id = ?", (event_id,))
            if not rows or rows[0][1] != PENDING or rows[0][0] != self.boot_id:
                if rows and rows[0][1] == PENDING:
                    log.warning("lost the lease on %s to another process", event_id)
                self._drop(event_id)

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
        rows = self.db.query(f"SELECT {_COLUMNS} FROM deliveries WHERE event_id = ?", (event_id,))
        return Delivery(*rows[0]) if rows else None

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
        rows = self.db.query("SELECT status, deliveries FROM deliveries WHERE event_id = ?", (event_id,))
        return (rows[0][0], rows[0][1]) if rows else None

    def _forget_old(self) -> None:
        """Finished events are kept a day (to recognise late retries); a pending one that old is stale."""
        cutoff = time.time() - KEEP_SECONDS
        self.db.execute("DELETE FROM deliveries WHERE first_seen < ? AND status <> ?", (cutoff, PENDING))
        self.db.execute("UPDATE deliveries SET status = ?, outcome = ?, finished_at = ? "
                        "WHERE first_seen < ? AND status = ?", (FAILED, "expired", time.time(), cutoff, PENDING))

    def close(self) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=5)
        self.db.close()


def _upgrade_old_table(db: Database) -> None:
    """The first version of the table (boot_id, no body) cannot be resumed from: its events are kept as
    finished, so their late retries are still recognised. SQLite only (PRAGMA); the SQLAlchemy port
    replaces this with an Alembic migration."""
    columns = {row[1] for row in db.query("PRAGMA table_info(deliveries)")}
    if "boot_id" not in columns:
        return
    db.execute("BEGIN")  # all or nothing: a crash half-way leaves the old table as it was
    db.execute("ALTER TABLE deliveries RENAME TO deliveries_v1")
    db.execute(SCHEMA[0])
    db.execute("INSERT INTO deliveries(event_id, body, status, deliveries, first_seen, finished_at, outcome) "
               "SELECT event_id, '{}', 'done', deliveries, first_seen, first_seen, "
               "CASE status WHEN 'done' THEN 'answered' ELSE 'unrecorded' END FROM deliveries_v1")
    db.execute("DROP TABLE deliveries_v1")
    db.execute("COMMIT")
    log.info("upgraded the deliveries table (events seen before the upgrade stay finished)")
