"""The index of one replica when several share a PostgreSQL database (retrieval/build_registry.py).

`SharedIndexStore` is `IndexStore` with three differences, and the same files on disk:

- a build takes the database's advisory lock (and the local file lock) instead of the file lock
  alone, so a re-index runs once across every replica and the CLI;
- before reading the documents it brings in the published build (so an incremental build reuses
  it, and its summary compares with what every replica serves) and runs `before_build` (the upload
  sync: knowledge/upload_registry.py), both under that lock, so a build anywhere sees every upload
  recorded before it started;
- a finished build is published (files, translation cache, pointer, NOTIFY in one transaction)
  before the local symlink is swapped to it.

`follow()` is what every replica runs when told of a new build: materialise it (checked) and swap
the local symlink; the caller then loads it while the old build keeps answering.
"""
from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from retrieval.build_registry import BuildRegistry
from retrieval.index_store import IndexCorrupt, IndexStore

log = logging.getLogger(__name__)

# One process materialises, swaps and prunes its DATA_DIR one thread at a time (the listener thread,
# a question's refresh and a build all get here); another process has its own DATA_DIR.
_LOCAL = threading.RLock()


class SharedIndexStore(IndexStore):
    def __init__(self, *args: Any, registry: BuildRegistry, before_build: Callable[[], object] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.registry = registry
        self.before_build = before_build

    @contextmanager
    def _build_lock(self) -> Iterator[None]:
        with self.registry.build_lock(), super()._build_lock(), _LOCAL:
            yield

    def _prepare_build(self) -> None:
        try:
            self.follow()
        except IndexCorrupt as exc:  # built anew from the documents; the damaged one is replaced
            log.warning("the published index build cannot be used (%s); building without it", exc)
        if self.before_build is not None:
            self.before_build()

    def _publish(self, folder: Path) -> None:
        self.registry.publish(folder, self.extras())

    def extras(self) -> dict[str, Path]:
        """What travels with a build besides its own files: the translation cache (retrieval/translation.py)."""
        found: dict[str, Path] = {}
        for folder in self.translation_folders:
            if folder.is_dir() and folder.parent.resolve() == self.data_dir.resolve():
                found.update({f"{folder.name}/{p.name}": p for p in sorted(folder.glob("*.jsonl")) if p.is_file()})
        return found

    def served_build(self) -> str | None:
        """The build this replica's symlink points at (None: none yet)."""
        return self.current_link.resolve().name if self.exists() else None

    def follow(self) -> bool:
        """Make the published build this replica's current one; True when the symlink moved.

        IndexCorrupt when the published build does not check out: nothing local changes then.
        """
        with _LOCAL:
            current = self.registry.current()
            if current is None or current == self.served_build():
                return False
            folder = self.registry.materialise(current, self.builds_dir, self.data_dir)
            self._swap(folder)
            self._prune(keep=folder)
            log.info("index build %s is now current here", current)
            return True

    def adopt(self) -> bool:
        """Publish this replica's own build when the database has none yet (first start on PostgreSQL
        with an existing DATA_DIR): no replica has to build what one already has. True if published."""
        if self.registry.current() is not None or not self.exists():
            return False
        with self.registry.build_lock(), _LOCAL:
            if self.registry.current() is not None:
                return False
            self.registry.publish(self.current_link.resolve(), self.extras())
            return True
