"""Uploaded documents shared by every replica: stored in PostgreSQL, copied into each upload folder.

With several replicas, an admin's file lands on whichever replica Slack picked, but a build may run
on any of them. So each upload is also recorded in the `uploads` table (name, bytes, sha256, who,
when), and `sync` copies every recorded upload this replica lacks into its upload folder before a
build (retrieval/shared_index.py runs it under the build lock). The stored name is the key: `store`
first syncs, then picks a free name as `store_upload` does, then records it; if another replica
recorded other bytes under that name meanwhile, the local file is removed and it tries again.
"""
from __future__ import annotations

import hashlib
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Sequence

from sqlalchemy import Engine, select

from knowledge.parsers import ParseLimits
from knowledge.uploads import StoredUpload, UploadRejected, safe_file_name, store_upload
from strategy_bot.database import insert
from strategy_bot.schema import uploads

log = logging.getLogger(__name__)

NAME_TRIES = 5  # a name taken by another replica between our sync and our record: sync and pick again


class UploadRegistry:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def names(self) -> dict[str, str]:
        """Every recorded upload: name -> sha256."""
        with self.engine.connect() as connection:
            return {r.name: r.sha256 for r in connection.execute(select(uploads.c.name, uploads.c.sha256))}

    def sync(self, folder: Path) -> list[str]:
        """Copy into `folder` each recorded upload it lacks; the names written.

        A local file of that name with other bytes is left alone (logged): nothing local is overwritten.
        """
        wanted = [name for name, sha in self.names().items() if not _holds(folder / name, sha)]
        written = []
        for name in wanted:
            path = folder / name
            if path.exists():
                log.warning("upload %s differs from the one recorded in the database; kept the local file", name)
                continue
            data, sha = self._bytes(name)
            if data is None or hashlib.sha256(data).hexdigest() != sha or safe_file_name(name) != name:
                log.warning("recorded upload %s is damaged or badly named; not copied", name[:100])
                continue
            folder.mkdir(parents=True, exist_ok=True)
            _write_new(path, data)
            written.append(name)
        if written:
            log.info("copied %d upload(s) recorded by other replicas into %s", len(written), folder)
        return written

    def _bytes(self, name: str) -> tuple[bytes | None, str]:
        with self.engine.connect() as connection:
            row = connection.execute(select(uploads.c.bytes, uploads.c.sha256).where(uploads.c.name == name)).first()
        return (bytes(row.bytes), row.sha256) if row else (None, "")

    def record(self, path: Path, uploaded_by: str) -> bool:
        """Record the stored file under its name; False when that name holds other bytes already."""
        data = path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        with self.engine.begin() as connection:
            connection.execute(insert(connection, uploads).values(
                name=path.name, size=len(data), sha256=sha, bytes=data, uploaded_by=uploaded_by,
                uploaded_at=time.time()).on_conflict_do_nothing())
            stored = connection.execute(select(uploads.c.sha256).where(uploads.c.name == path.name)).scalar_one()
        return stored == sha

    def store(self, folder: Path, name: str, data: bytes, *, uploaded_by: str, knowledge_dirs: Sequence[Path] = (),
              limits: ParseLimits | None = None) -> StoredUpload:
        """`store_upload`, and recorded for every replica (same rules: safe name, no overwriting, must parse)."""
        for _ in range(NAME_TRIES):
            self.sync(folder)
            result = store_upload(folder, name, data, knowledge_dirs=knowledge_dirs, limits=limits)
            if self.record(result.path, uploaded_by):
                return result
            if result.created:  # the name went to another replica's upload meanwhile: ours takes the next one
                result.path.unlink(missing_ok=True)
        raise UploadRejected("other uploads kept taking this file's name; try again")


def _holds(path: Path, sha: str) -> bool:
    try:
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest() == sha
    except OSError:
        return False


def _write_new(path: Path, data: bytes) -> None:
    """Atomic, never overwriting (as knowledge/uploads.py writes): hidden temp file, hard-linked into place."""
    temp = path.with_name(f".upload-{uuid.uuid4().hex}{path.suffix}")
    with open(temp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(temp, path)
    except FileExistsError:
        log.warning("upload %s appeared locally meanwhile; kept the local file", path.name)
    finally:
        temp.unlink(missing_ok=True)
