"""Index builds shared by every replica through PostgreSQL: one builder, every replica current.

With `DATABASE_URL` pointing at PostgreSQL, several `strategy-bot serve` processes (and the CLI)
each keep their own DATA_DIR, but the index they serve is one:

- **One builder.** A build holds a session-level advisory lock (`pg_try_advisory_lock`) on a
  connection of its own for as long as it runs; a second request anywhere gets `IndexBusy` at once.
  The server drops the lock when the builder's connection dies (a killed process), like flock.
- **Published in one transaction.** The finished build's files go into `index_files` byte for byte
  (meta.json and its checksums among them: IndexStore's format is unchanged), with the translation
  cache of that moment (`translations/...`), and `index_current` points at it, in one transaction
  that also prunes all but the newest KEEP_PUBLISHED builds and sends a NOTIFY on CHANNEL (delivered
  at commit, so no replica hears of a build it cannot read yet).
- **Materialised locally.** A replica copies a build it does not have into DATA_DIR/indexes/<build>
  through a hidden temporary folder, checks every file against meta.json (BuildFiles, the same check
  as loading) and the stored sha256, and only then renames it into place: a damaged stored build is
  refused (IndexCorrupt) and the replica keeps serving what it has.

`BuildFollower` is the per-process listener thread (LISTEN on its own connection, reconnecting when
the database goes away, plus a pointer check every POINTER_CHECK_S as a fallback). Why psycopg by
hand for LISTEN: SQLAlchemy has no API for notifications; this is the one raw connection we hold.
"""
from __future__ import annotations

import hashlib
import logging
import re
import shutil
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Mapping

from sqlalchemy import Engine, delete, select, text
from sqlalchemy.exc import SQLAlchemyError

from retrieval.index_store import META_FILE, BuildFiles, IndexBusy, damaged_index, read_meta_file
from strategy_bot.database import SCHEMA_LOCK_KEY, describe, insert
from strategy_bot.schema import index_builds, index_current, index_files

log = logging.getLogger(__name__)

# pg_try_advisory_lock key of a build: a constant no other tool on the database uses ("reindex!").
BUILD_LOCK_KEY = 0x7265696E64657821
LISTENER_NAME = "strategy-bot build listener"  # its application_name in pg_stat_activity
CHANNEL = "strategy_bot_builds"  # NOTIFY channel; the payload is the new build's id
# Builds kept in the database: the served one and two before it, so a replica still loading the
# previous build (or rolling back by hand) finds it; each is a few MB for the shipped corpus.
KEEP_PUBLISHED = 3
POINTER_CHECK_S = 30.0  # fallback when a NOTIFY is missed (listener reconnecting): the pointer is read
WAKE_S = 1.0  # the listener looks up from waiting this often (to stop promptly)
RECONNECT_S = (1.0, 2.0, 5.0, 10.0)  # waits between reconnection attempts of the listener, then the last
EXTRA_NAME = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_][A-Za-z0-9_.-]*")  # `translations/translations.en.jsonl`


@dataclass(frozen=True)
class Published:
    build_id: str
    built_at: float
    built_by: str


class BuildRegistry:
    """The builds in the shared database: lock, publish, read the pointer, materialise, prune."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def where(self) -> str:
        return describe(self.engine)

    # ------------------------------------------------------------------------------ one builder

    @contextmanager
    def build_lock(self) -> Iterator[None]:
        """Held for a whole build on its own connection; IndexBusy when another process holds it."""
        with self.engine.connect() as connection:
            got = connection.execute(text(f"SELECT pg_try_advisory_lock({SCHEMA_LOCK_KEY})"),
                                     {"key": BUILD_LOCK_KEY}).scalar()
            connection.commit()
            if not got:
                raise IndexBusy("a re-index is already running; try again when it has finished")
            try:
                yield
            finally:
                try:
                    connection.execute(text(f"SELECT pg_advisory_unlock({SCHEMA_LOCK_KEY})"), {"key": BUILD_LOCK_KEY})
                    connection.commit()
                except SQLAlchemyError as exc:  # the connection is gone, and the server dropped the lock with it
                    log.warning("could not release the build lock: %s", type(exc).__name__)

    # --------------------------------------------------------------------------------- publish

    def publish(self, folder: Path, extras: Mapping[str, Path] = ()) -> Published:
        """Store the finished build in `folder` (and `extras`: name -> file) and make it current.

        One transaction: the build's rows, the pointer, the pruning and the NOTIFY land together or not at all.
        """
        meta_path = folder / META_FILE
        meta = read_meta_file(meta_path)
        files = {p.name: p for p in sorted(folder.iterdir()) if p.is_file()}
        for name in dict(extras):
            if not EXTRA_NAME.fullmatch(name):
                raise ValueError(f"not a name a build can carry: {name!r}")
        files.update(dict(extras))
        build_id = folder.name
        now = time.time()
        with self.engine.begin() as connection:
            connection.execute(insert(connection, index_builds).values(
                build_id=build_id, built_at=meta.built_at, built_by=meta.built_by,
                meta=meta_path.read_text(encoding="utf-8"), published_at=now).on_conflict_do_nothing())
            connection.execute(delete(index_files).where(index_files.c.build_id == build_id))
            for name, path in files.items():
                data = path.read_bytes()
                connection.execute(index_files.insert().values(
                    build_id=build_id, name=name, size=len(data), sha256=hashlib.sha256(data).hexdigest(), bytes=data))
            connection.execute(insert(connection, index_current).values(id=1, build_id=build_id, updated_at=now)
                               .on_conflict_do_update(index_elements=["id"],
                                                      set_={"build_id": build_id, "updated_at": now}))
            self._prune(connection, keep=build_id)
            connection.execute(text("SELECT pg_notify(:channel, :build)"), {"channel": CHANNEL, "build": build_id})
        log.info("published index build %s to %s (%d files)", build_id, self.where, len(files))
        return Published(build_id, meta.built_at, meta.built_by)

    def _prune(self, connection, keep: str) -> None:
        """Delete all but the newest KEEP_PUBLISHED builds (the current one always stays)."""
        rows = connection.execute(select(index_builds.c.build_id)
                                  .order_by(index_builds.c.published_at.desc(), index_builds.c.build_id.desc()))
        old = [r.build_id for r in rows][KEEP_PUBLISHED:]
        old = [b for b in old if b != keep]
        if old:
            connection.execute(delete(index_files).where(index_files.c.build_id.in_(old)))
            connection.execute(delete(index_builds).where(index_builds.c.build_id.in_(old)))

    # ---------------------------------------------------------------------------------- read

    def current(self) -> str | None:
        """The id of the build every replica should serve (None: nothing published yet)."""
        with self.engine.connect() as connection:
            return connection.execute(select(index_current.c.build_id).where(index_current.c.id == 1)).scalar()

    def builds(self) -> list[str]:
        """Every build kept in the database, newest first."""
        with self.engine.connect() as connection:
            return [r.build_id for r in connection.execute(
                select(index_builds.c.build_id).order_by(index_builds.c.published_at.desc()))]

    def materialise(self, build_id: str, builds_dir: Path, data_dir: Path) -> Path:
        """The build's folder under `builds_dir`, copied from the database if this replica lacks it.

        Every file is checked (stored sha256, then meta.json's checksums through BuildFiles) in a
        hidden temporary folder before it is renamed into place; IndexCorrupt when one does not hold.
        The build's extras (the translation cache) are merged into `data_dir` (see `_merge_extra`).
        """
        target = builds_dir / build_id
        rows = self._files(build_id)
        if not rows:
            raise damaged_index([build_id], "not in the database (pruned?)")
        damaged = [name for name, (sha, data) in rows.items() if hashlib.sha256(data).hexdigest() != sha]
        if damaged or META_FILE not in rows:
            raise damaged_index(sorted(damaged) or [META_FILE], "stored bytes do not match their checksum")
        for name, (_, data) in rows.items():
            if "/" in name:
                self._merge_extra(data_dir, name, data)
        if (target / META_FILE).is_file() and not BuildFiles(target, read_meta_file(target / META_FILE)).damaged():
            return target  # already here (built here, or materialised before)
        builds_dir.mkdir(parents=True, exist_ok=True)
        temp = builds_dir / f".fetch-{build_id}-{uuid.uuid4().hex[:8]}"
        temp.mkdir()
        try:
            self._write_checked(temp, rows)
            if target.exists():  # a damaged copy of this build: replace it
                shutil.rmtree(target)
            temp.rename(target)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
        log.info("materialised index build %s from %s", build_id, self.where)
        return target

    def _files(self, build_id: str) -> dict[str, tuple[str, bytes]]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(index_files.c.name, index_files.c.sha256, index_files.c.bytes)
                                      .where(index_files.c.build_id == build_id))
            return {r.name: (r.sha256, bytes(r.bytes)) for r in rows}

    @staticmethod
    def _write_checked(folder: Path, rows: Mapping[str, tuple[str, bytes]]) -> None:
        """Write the build's own files, then check them as loading would (meta.json's sizes and sha256)."""
        for name, (_, data) in rows.items():
            if "/" not in name:
                (folder / Path(name).name).write_bytes(data)
        missing = BuildFiles(folder, read_meta_file(folder / META_FILE)).damaged()
        if missing:
            raise damaged_index(missing)

    @staticmethod
    def _merge_extra(data_dir: Path, name: str, data: bytes) -> None:
        """Add the stored lines of a translation cache file that the local copy lacks.

        A union, not a replacement: the local file may hold renderings paid for after that build
        was published (a re-index translating right now); lines are whole JSON records, order kept.
        """
        if not EXTRA_NAME.fullmatch(name):
            log.warning("ignored a stored build file with an unexpected name (%d characters)", len(name))
            return
        path = data_dir / name
        local = path.read_bytes() if path.is_file() else b""
        have = set(local.splitlines())
        new = [line for line in data.splitlines() if line.strip() and line not in have]
        if not new:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        prefix = local if not local or local.endswith(b"\n") else local + b"\n"
        temp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
        temp.write_bytes(prefix + b"\n".join(new) + b"\n")
        temp.replace(path)


class BuildFollower:
    """A thread that calls `on_change` when a build is published, and every POINTER_CHECK_S anyway.

    LISTENs on a connection of its own (psycopg, autocommit); when the database goes away it
    waits RECONNECT_S and connects again, checking the pointer on each reconnection (a NOTIFY sent
    while it was away is lost). `on_change` must be cheap when nothing changed (one pointer read).
    """

    def __init__(self, engine: Engine, on_change: Callable[[], object], *,
                 check_every_s: float = POINTER_CHECK_S) -> None:
        self.conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.where = describe(engine)
        self.on_change = on_change
        self.check_every_s = check_every_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()  # for tests and /healthz-style checks

    def start(self) -> "BuildFollower":
        self._thread = threading.Thread(target=self._run, name="build-follower", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._listen()
                failures = 0
            except Exception as exc:  # noqa: BLE001 - any failure of the connection: wait, reconnect
                self.connected.clear()
                wait = RECONNECT_S[min(failures, len(RECONNECT_S) - 1)]
                failures += 1
                log.warning("build listener lost %s (%s); reconnecting in %.0f s", self.where,
                            type(exc).__name__, wait)
                self._stop.wait(wait)

    def _listen(self) -> None:
        import psycopg

        with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5,
                             application_name=LISTENER_NAME) as connection:
            connection.execute(f"LISTEN {CHANNEL}")
            self.connected.set()
            self._changed()  # whatever was published while we were not listening
            checked = time.monotonic()
            while not self._stop.is_set():
                # short waits, so `stop` is prompt; the pointer is read on a notification or every check_every_s
                heard = bool(list(connection.notifies(timeout=WAKE_S, stop_after=1)))
                if heard or time.monotonic() - checked >= self.check_every_s:
                    if not heard:
                        connection.execute("SELECT 1")  # a dead server is noticed here, not never
                    self._changed()
                    checked = time.monotonic()

    def _changed(self) -> None:
        try:
            self.on_change()
        except Exception:  # noqa: BLE001 - a failed swap is logged; the old build keeps serving
            log.exception("could not follow the published index build")
