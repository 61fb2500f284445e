"""The state on disk: a TinyDB JSON file plus a journal of the changes since it was written.

Why it is built this way:
- A long-running service's state is large (about 130 KB per group, mostly the outbox's
  record of what was sent), and the service records progress many times per busy tick
  (before and after each batch of sends). Rewriting the whole file each time makes a busy
  tick quadratic in the number of groups. So a commit appends only the changed documents
  to `<state>.journal` (one line, fsynced), and the whole file is rewritten ("compacted")
  only when the journal has grown to a quarter of it. Reading the state is the file plus
  the journal replayed over it.
- A full write goes to a temp file in the same folder, is fsynced, renamed over the old
  file, and the folder fsynced (the way Radicale writes). A crash leaves the old file or the
  new one, never half of either.
- Each journal line carries a CRC and the generation of the full file it continues. A line
  torn by a crash can only be the last one, and is ignored: it was never acknowledged, so
  nothing was sent on its strength. Lines of another generation are ignored too: an older
  one's (a crash between a full write and emptying the journal) are in the file already, a
  newer one's belong to a file that is not this one (a backup restored beside a newer
  journal). A full write takes a generation above any seen, so none is ever reused. A
  damaged line followed by good ones means the file was damaged otherwise: stop and say so.
- Both files hold names, emails and goals: they are created 0600 and kept so.
- An fcntl lock on `<state>.lock` keeps a second instance off the state.

TinyDB rewrites a whole table on every insert, update or remove (its storage interface only
reads and writes everything). `TrackedTable` changes that one method, `_update_table`, so a
change by document id costs what it changes, and so the storage learns which documents
changed, which is what the journal writes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import zlib
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Table

from scheduler.core.errors import LockedError, StateError

SCHEMA = 2              # 2: the journal beside the file (a friendtor reading schema 1 would ignore it)
COMPACT_MIN = 1 << 20   # never compact a journal smaller than this
COMPACT_SHARE = 4       # compact when the journal reaches 1/COMPACT_SHARE of the full file

HOW_TO = ("friendtor will not start from an empty state, which would resend every message. "
          "Restore the file from a backup (docs/operations.md), or move it away to start afresh")


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace `path` with `data` so that a crash leaves the old file or the new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)  # whatever the umask says
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_folder(path.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def fsync_folder(folder: Path) -> None:
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def journal_path(path: Path) -> Path:
    return path.with_name(path.name + ".journal")


def _line(entry: dict[str, Any]) -> bytes:
    body = json.dumps(entry, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    return b"%08x %s\n" % (zlib.crc32(body), body)


def _entry(line: bytes) -> dict[str, Any] | None:
    """A journal line's entry, or None if the line is not intact."""
    crc, _, body = line.partition(b" ")
    try:
        if int(crc, 16) != zlib.crc32(body) or len(crc) != 8:
            return None
        entry = json.loads(body)
    except ValueError:
        return None
    ok = (isinstance(entry, dict) and isinstance(entry.get("gen"), int) and isinstance(entry.get("tables"), dict)
          and all(isinstance(docs, dict) and all(d is None or isinstance(d, dict) for d in docs.values())
                  for docs in entry["tables"].values()))
    return entry if ok else None


class StateFile(Storage):
    """A TinyDB storage: everything in memory, written only on `commit()`, as a journal line
    or a full rewrite. Which documents changed is told by `TrackedTable`."""

    def __init__(self, path: Path, *, writable: bool = True):
        self.path = path
        self.journal = journal_path(path)
        self.writable = writable
        self._changed: dict[str, set[str]] = {}
        self._rewrite = False           # a change the journal cannot express: write everything
        self._journal_fd: int | None = None
        self.full_bytes = 0             # size of the full file as last read or written
        self.journal_bytes = 0          # end of the last intact journal line
        self._data = self._load()
        self.generation: int = self._data.get("meta", {}).get("1", {}).get("generation", 0)
        self._newest = self.generation  # the highest generation on disk, file or journal
        self._foreign = False           # the journal holds lines of another generation
        self._replay()
        if self._foreign and writable:
            # Lines of another generation (a crash before the journal was emptied, or a backup
            # restored beside a newer journal): rewrite at the next commit, which empties the
            # journal, and never reuse their number (see _write_all).
            self._rewrite = True

    # --- reading ----------------------------------------------------------------------------

    def _load(self) -> dict[str, Any]:
        if not self.path.exists():
            return {}
        try:
            raw = self.path.read_bytes()
        except OSError as exc:
            raise StateError(f"{self.path}: cannot read the state file ({exc.strerror}); {HOW_TO}") from None
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StateError(f"{self.path}: the state file is damaged ({exc}); {HOW_TO}") from None
        # Every table is an object of documents, and every document an object, or TinyDB and the
        # code above it fail later with an internal error instead of this message.
        if not isinstance(data, dict) or not all(
                isinstance(table, dict) and all(isinstance(doc, dict) for doc in table.values())
                for table in data.values()):
            raise StateError(f"{self.path}: this is not a friendtor state file; {HOW_TO}")
        meta = data.get("meta", {}).get("1", {})
        for key in ("schema", "generation"):
            if key in meta and (not isinstance(meta[key], int) or isinstance(meta[key], bool)):
                raise StateError(f"{self.path}: this is not a friendtor state file (meta.{key} is not a number); "
                                 f"{HOW_TO}")
        if meta.get("schema", SCHEMA) > SCHEMA:
            raise StateError(f"{self.path}: written by a newer friendtor (schema {meta['schema']}); "
                             "upgrade friendtor, or restore the backup taken before the downgrade")
        self.full_bytes = len(raw)
        return data

    def _replay(self) -> None:
        try:
            raw = self.journal.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StateError(f"{self.journal}: cannot read the state journal ({exc.strerror}); {HOW_TO}") from None
        offset, torn = 0, None
        for number, line in enumerate(raw.splitlines(keepends=True), 1):
            entry = _entry(line[:-1]) if line.endswith(b"\n") else None
            if entry is None:
                torn = torn or number
            elif torn:
                raise StateError(f"{self.journal}: line {torn} of the state journal is damaged; restore the state "
                                 "and its journal from a backup (docs/operations.md), or move the journal away to "
                                 "go back to the last full write (messages sent since then are sent again)")
            else:
                offset += len(line)
                self._newest = max(self._newest, entry["gen"])
                self._foreign |= entry["gen"] != self.generation
                if entry["gen"] == self.generation:
                    for name, docs in entry["tables"].items():
                        table = self._data.setdefault(name, {})
                        for doc_id, doc in docs.items():
                            if doc is None:
                                table.pop(doc_id, None)
                            else:
                                table[doc_id] = doc
        self.journal_bytes = offset

    def read(self) -> dict[str, Any]:
        return self._data

    def table(self, name: str) -> dict[str, Any]:
        """The live documents of one table, by string id (read-only for callers)."""
        return self._data.setdefault(name, {})

    # --- changing ---------------------------------------------------------------------------

    def write(self, data: dict[str, Any]) -> None:
        # Only TinyDB calls this directly (drop_table and the like): nothing says what changed.
        self._data = data
        self._rewrite = True

    def changed(self, table: str, doc_ids: set[str], *, everything: bool = False) -> None:
        if everything:
            self._rewrite = True
        elif doc_ids:
            self._changed.setdefault(table, set()).update(doc_ids)

    @property
    def dirty(self) -> bool:
        return self._rewrite or bool(self._changed)

    def commit(self) -> bool:
        """Make the changes durable; True if anything was written."""
        if not self.dirty:
            return False
        if not self.writable:
            raise RuntimeError("a read-only state is never written")
        line = None
        if not self._rewrite and self.path.exists():
            line = _line({"gen": self.generation, "tables": {
                name: {i: self._data.get(name, {}).get(i) for i in sorted(ids, key=int)}
                for name, ids in self._changed.items()}})
            if self.journal_bytes + len(line) > max(COMPACT_MIN, self.full_bytes // COMPACT_SHARE):
                line = None
        try:
            if line is None:
                self._write_all()
            else:
                self._append(line)
        except OSError as exc:
            self._rewrite = True  # a half-written journal line is cut off by the next, full write
            raise StateError(f"{self.path}: cannot write the state ({exc.strerror}); "
                             "nothing was lost yet: free space or fix permissions, friendtor retries") from None
        self._changed.clear()
        self._rewrite = False
        return True

    def _write_all(self) -> None:
        # Above every generation seen, so that no old journal line can ever continue this file.
        generation = max(self.generation, self._newest) + 1
        meta = self._data.setdefault("meta", {}).setdefault("1", {})
        meta["schema"], meta["generation"] = SCHEMA, generation
        payload = json.dumps(self._data, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            atomic_write(self.path, payload)
        except BaseException:
            meta["generation"] = self.generation  # the file on disk is still the old generation
            raise
        self.generation = self._newest = generation
        self.full_bytes = len(payload)
        # The journal's lines are now of an older generation and ignored; emptying it is tidiness.
        # A new empty file replaces it rather than truncating it, so that a backup copying the old
        # journal at this moment reads it whole.
        if self._journal_fd is not None or self.journal.exists():
            self.close()
            atomic_write(self.journal, b"")
        self.journal_bytes = 0

    def _open_journal(self) -> int:
        if self._journal_fd is None:
            fd = os.open(self.journal, os.O_WRONLY | os.O_CREAT, 0o600)
            os.fchmod(fd, 0o600)
            self._journal_fd = fd
            fsync_folder(self.journal.parent)
        return self._journal_fd

    def _append(self, line: bytes) -> None:
        fd = self._open_journal()
        os.ftruncate(fd, self.journal_bytes)  # anything after the last intact line is a torn write
        written = os.pwrite(fd, line, self.journal_bytes)
        if written != len(line):
            raise OSError(28, "short write to the state journal")
        os.fsync(fd)
        self.journal_bytes += len(line)

    def close(self) -> None:
        if self._journal_fd is not None:
            os.close(self._journal_fd)
            self._journal_fd = None


class _ById(MutableMapping):
    """A table's documents keyed by int id (as TinyDB's updaters expect) over the stored
    str-keyed dict, noting every document an updater reads or writes. A document read is
    counted as changed because TinyDB's updaters change documents in place."""

    def __init__(self, docs: dict[str, Any]):
        self.docs = docs
        self.touched: set[str] = set()
        self.cleared = False

    def __getitem__(self, doc_id: int) -> Any:
        doc = self.docs[str(doc_id)]
        self.touched.add(str(doc_id))
        return doc

    def __setitem__(self, doc_id: int, doc: Any) -> None:
        self.docs[str(doc_id)] = doc
        self.touched.add(str(doc_id))

    def __delitem__(self, doc_id: int) -> None:
        del self.docs[str(doc_id)]
        self.touched.add(str(doc_id))

    def __contains__(self, doc_id: object) -> bool:
        return str(doc_id) in self.docs

    def __iter__(self) -> Iterator[int]:
        return (int(k) for k in self.docs)

    def __len__(self) -> int:
        return len(self.docs)

    def clear(self) -> None:
        self.docs.clear()
        self.cleared = True


class TrackedTable(Table):
    """A TinyDB table whose changes cost what they change, and are reported to the storage.

    Changes by document id (`update(..., doc_ids=...)`, `remove(doc_ids=...)`, inserts) touch
    only those documents; a change by query reads, and so reports, every document."""

    def _update_table(self, updater) -> None:
        storage: StateFile = self._storage
        view = _ById(storage.table(self.name))
        try:
            updater(view)
        finally:
            storage.changed(self.name, view.touched, everything=view.cleared)
            self.clear_cache()


class StateDB(TinyDB):
    table_class = TrackedTable


@dataclass
class Lock:
    """An exclusive lock on `<state>.lock`, held while the process lives."""

    path: Path
    fd: int | None = field(default=None, repr=False)

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            state = self.path.with_suffix("")
            raise LockedError(f"{state}: another friendtor (pid {holder}) is already running on this state; "
                             "stop it first (systemctl stop friendtor), or give this one its own state file") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
