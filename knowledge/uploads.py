"""Adding a document to the knowledge folder from bytes someone sent (a Slack file share, say).

Whatever arrives is untrusted: its name may try to climb out of the folder
(`../../etc/x.md`), hide itself (`.x.md`), or collide with a document already
there. So the name is reduced to a plain file name, the content must parse before
anything is written, and a name (or document id) already taken gets a `-2`, `-3`…
suffix instead of replacing the other document. Writing is atomic and never
overwrites: a temporary hidden file (ignored by the loader) is hard-linked to the
final name, which fails if that name appeared meanwhile.
"""
from __future__ import annotations

import hashlib
import os
import re
import unicodedata
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from knowledge.documents import candidate_files, doc_id_for, first_heading
from knowledge.parsers import PARSERS, ParseError, ParseLimits, parse_file, supported_suffixes

MAX_STEM_CHARS = 80
MAX_NAME_TRIES = 1000


class UploadRejected(ValueError):
    """The file is not stored; the message says why, in words fit for the person who sent it."""


@dataclass(frozen=True)
class StoredUpload:
    path: Path
    doc_id: str
    title: str
    created: bool  # False: the very same file was already there, nothing written


def check_type(name: str) -> None:
    suffix = Path(name or "").suffix.lower()
    if suffix not in PARSERS:
        raise UploadRejected(f"{suffix or 'a file without an extension'} is not a supported type "
                             f"(supported: {', '.join(supported_suffixes())})")


def check_upload(name: str, size: int, max_bytes: int) -> None:
    """Refuse, before downloading, what we could never index: unknown types, empty or oversized files."""
    check_type(name)
    if size <= 0:
        raise UploadRejected("the file is empty")
    if size > max_bytes:
        raise UploadRejected(f"the file is {_mb(size)}, over the {_mb(max_bytes)} limit")


def safe_file_name(name: str) -> str:
    """A plain, visible file name from whatever the sender called it (no folders, no control characters)."""
    base = unicodedata.normalize("NFKC", name or "").replace("\\", "/").split("/")[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip().lstrip(".")  # no hidden files
    stem, suffix = os.path.splitext(base)
    stem = re.sub(r"[^\w\-.]+", "-", stem).strip("-. ")[:MAX_STEM_CHARS].strip("-. ")
    return f"{stem or 'document'}{suffix.lower()}"


def store_upload(folder: Path, name: str, data: bytes, *, knowledge_dirs: Sequence[Path] = (),
                 limits: ParseLimits | None = None) -> StoredUpload:
    """Parse, then store `data` in `folder` under a safe name that clashes with no other document.

    `knowledge_dirs` are all the folders indexed together: document ids must be unique
    across them, since two files with one id cannot both be indexed. `limits`: what reading
    the file may cost (the same as when the index is built, so what is stored can be indexed).
    """
    file_name = safe_file_name(name)
    check_type(file_name)
    if not data:
        raise UploadRejected("the file is empty")
    try:
        text, _ = parse_file(Path(file_name), data, limits)
    except ParseError as exc:
        raise UploadRejected(f"the file could not be read: {exc}") from None
    if not text.strip():
        raise UploadRejected("the file has no text to index")
    folder.mkdir(parents=True, exist_ok=True)
    same = _identical_file(folder, file_name, data)
    if same is not None:
        return _stored(same, text, created=False)
    path = _write_new(folder, file_name, data, _taken_ids([folder, *knowledge_dirs]))
    return _stored(path, text, created=True)


def _stored(path: Path, text: str, created: bool) -> StoredUpload:
    return StoredUpload(path=path, doc_id=doc_id_for(path), title=first_heading(text) or path.stem, created=created)


def _identical_file(folder: Path, file_name: str, data: bytes) -> Path | None:
    """The earlier upload of the same bytes under this name (or its `-N` variants), if any."""
    stem, suffix = os.path.splitext(file_name)
    pattern = re.compile(rf"{re.escape(stem)}(-\d+)?{re.escape(suffix)}")
    digest = _sha(data)
    for path in sorted(folder.iterdir()):
        if pattern.fullmatch(path.name) and path.is_file() and path.stat().st_size == len(data) \
                and _sha(path.read_bytes()) == digest:
            return path
    return None


def _taken_ids(folders: Sequence[Path]) -> set[str]:
    return {doc_id_for(p) for folder in dict.fromkeys(folders) for p in candidate_files(folder)}


def _write_new(folder: Path, file_name: str, data: bytes, taken_ids: set[str]) -> Path:
    """Write under the first free name: `name.ext`, `name-2.ext`, … (atomic, never overwriting)."""
    stem, suffix = os.path.splitext(file_name)
    temp = folder / f".upload-{uuid.uuid4().hex}{suffix}"
    with open(temp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        for n in range(1, MAX_NAME_TRIES + 1):
            target = folder / (file_name if n == 1 else f"{stem}-{n}{suffix}")
            if doc_id_for(target) in taken_ids:
                continue
            try:
                os.link(temp, target)  # fails if the name exists: nothing is ever overwritten
            except FileExistsError:
                continue
            return target
    finally:
        temp.unlink(missing_ok=True)
    raise UploadRejected(f"too many documents are already called {stem!r}; rename the file")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _mb(size: int) -> str:
    return f"{size / 1_048_576:.1f} MB"
