"""De-duplication of Slack event deliveries by `event_id`, persisted across restarts.

Slack retries an event it thinks we missed (slow ack, error, timeout), so the same
`event_id` can arrive several times — and a retry can also be the *only* delivery
that ever arrives. So we never drop retries as such; we drop an `event_id` we have
already taken. Each delivery is claimed by this process (its boot id); a claim
left unfinished by a process that died is taken over by the next delivery, so a
crash in the middle of an answer does not lose the question.
"""
from __future__ import annotations

import time
import uuid
from pathlib import Path

from bot.state.sqlite import Database

KEEP_SECONDS = 24 * 3600  # Slack retries for minutes; a day is plenty to recognise them
CLAIMED, DONE = "claimed", "done"

SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    event_id TEXT PRIMARY KEY,
    boot_id TEXT NOT NULL,
    status TEXT NOT NULL,
    first_seen REAL NOT NULL,
    deliveries INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS deliveries_first_seen ON deliveries(first_seen);
"""


class DeliveryLog:
    """`claim(event_id)` is True exactly once per event (per crash of the claimer)."""

    def __init__(self, path: Path) -> None:
        self.db = Database(path, SCHEMA)
        self.boot_id = uuid.uuid4().hex
        self._forget_old()

    def claim(self, event_id: str) -> bool:
        """True when this process should handle the event; False for a duplicate."""
        inserted = self.db.execute(
            "INSERT OR IGNORE INTO deliveries(event_id, boot_id, status, first_seen) VALUES (?, ?, ?, ?)",
            (event_id, self.boot_id, CLAIMED, time.time()),
        ).rowcount
        if inserted:
            return True
        # Seen before: take it over only if a previous process claimed it and never finished.
        return bool(self.db.execute(
            "UPDATE deliveries SET boot_id = ?, deliveries = deliveries + 1 "
            "WHERE event_id = ? AND status = ? AND boot_id != ?",
            (self.boot_id, event_id, CLAIMED, self.boot_id),
        ).rowcount) or self._count_duplicate(event_id)

    def _count_duplicate(self, event_id: str) -> bool:
        self.db.execute("UPDATE deliveries SET deliveries = deliveries + 1 WHERE event_id = ?", (event_id,))
        return False

    def finish(self, event_id: str) -> None:
        """The event's work is done: later deliveries are duplicates even after a restart."""
        self.db.execute("UPDATE deliveries SET status = ? WHERE event_id = ?", (DONE, event_id))

    def status(self, event_id: str) -> tuple[str, int] | None:
        """(status, deliveries seen) of an event, or None if it never arrived."""
        rows = self.db.query("SELECT status, deliveries FROM deliveries WHERE event_id = ?", (event_id,))
        return (rows[0][0], rows[0][1]) if rows else None

    def _forget_old(self) -> None:
        self.db.execute("DELETE FROM deliveries WHERE first_seen < ?", (time.time() - KEEP_SECONDS,))

    def close(self) -> None:
        self.db.close()
