"""One SQLite connection shared by a store's threads, in WAL mode.

Why a lock around one connection rather than a connection per thread: every write
is a few microseconds, Slack's worker threads are few, and a single connection makes
"read then write" sequences atomic without transactions spread across threads.
"""
from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any, Iterable


class Database:
    """A thread-safe wrapper: `execute` and `query` hold the lock for one statement."""

    def __init__(self, path: Path, schema: str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30,
                                     isolation_level=None)  # autocommit: each statement is durable alone
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across a process crash
            self._conn.execute("PRAGMA busy_timeout=30000")
            self._conn.executescript(schema)

    def execute(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._conn.execute(sql, tuple(params))

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, tuple(params)).fetchall()

    def close(self) -> None:
        with self._lock:
            self._conn.close()
