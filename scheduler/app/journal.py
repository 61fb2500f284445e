"""The state's journal, `<state>.journal`: the changes since the full file was written, one
line per commit.

A line is `CRC32 JSON` and its entry `{"gen": N, "tables": {table: {doc_id: doc or null}}}`
(null: the document was removed). Why:
- A line torn by a crash can only be the last one, and is ignored: it was never
  acknowledged, so nothing was sent on its strength. A damaged line followed by good ones
  means the file was damaged otherwise: stop and say so.
- A last line that is whole (it ends in a newline and holds no NUL byte, which a crash's
  unwritten blocks read as) but fails its CRC was not torn by a crash: it was changed
  afterwards (a flipped bit, an edit), and is refused like a damaged line.
- Each line carries the generation of the full file it continues. Lines of another
  generation are ignored: an older one's (a crash between a full write and emptying the
  journal) are in the file already, a newer one's belong to a file that is not this one (a
  backup restored beside a newer journal).
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scheduler.app.files import NOFOLLOW, atomic_write, fsync_folder, read_regular, refused_link
from scheduler.app.records import plain
from scheduler.core.errors import StateError

# Said after every problem with the state that friendtor will not repair by itself.
HOW_TO = ("friendtor will not start from an empty state, which would resend every message. "
          "Restore the file from a backup (docs/operations.md), or move it away to start afresh")


def not_a_file(path: Path, what: str) -> StateError:
    """The one line for a link (or a FIFO, a folder) where friendtor keeps `what`."""
    return StateError(f"{path}: the {what} is a symbolic link or not a regular file; friendtor never follows "
                      "one (a link planted there could make it overwrite another file): remove it, and put the "
                      "real file back from a backup if it was moved (docs/operations.md)")


def journal_path(path: Path) -> Path:
    return path.with_name(path.name + ".journal")


def encode(entry: dict[str, Any]) -> bytes:
    """One journal line, newline included."""
    body = json.dumps(entry, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=plain).encode()
    return b"%08x %s\n" % (zlib.crc32(body), body)


def decode(line: bytes) -> dict[str, Any] | None:
    """A journal line's entry (without its newline), or None if the line is not intact."""
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


@dataclass(frozen=True)
class Replayed:
    """What reading the journal found, beside the changes it applied."""

    end: int        # bytes of intact lines: the next line is written here, over any torn one
    newest: int     # the highest generation in the file or the journal
    foreign: bool   # some line is of another generation than the file's


def replay(journal: Path, data: dict[str, Any], generation: int) -> Replayed:
    """Apply the journal's lines of `generation` to `data` (tables of documents by str id), in order."""
    try:
        raw = read_regular(journal)
    except OSError as exc:
        if refused_link(exc):
            raise not_a_file(journal, "state journal") from None
        raise StateError(f"{journal}: cannot read the state journal ({exc.strerror}); {HOW_TO}") from None
    if raw is None:
        return Replayed(0, generation, False)
    offset, torn, newest, foreign = 0, None, generation, False
    lines = raw.splitlines(keepends=True)
    for number, line in enumerate(lines, 1):
        entry = decode(line[:-1]) if line.endswith(b"\n") else None
        whole = line.endswith(b"\n") and b"\0" not in line  # what a crash cannot leave at the end
        if entry is None and not torn and number == len(lines) and not whole:
            torn = number
        elif entry is None or torn:
            raise StateError(f"{journal}: line {torn or number} of the state journal is damaged; restore the state "
                             "and its journal from a backup (docs/operations.md), or move the journal away to "
                             "go back to the last full write (messages sent since then are sent again)")
        else:
            offset += len(line)
            newest = max(newest, entry["gen"])
            foreign |= entry["gen"] != generation
            if entry["gen"] == generation:
                for name, docs in entry["tables"].items():
                    table = data.setdefault(name, {})
                    for doc_id, doc in docs.items():
                        if doc is None:
                            table.pop(doc_id, None)
                        else:
                            table[doc_id] = doc
    return Replayed(offset, newest, foreign)


class JournalWriter:
    """Appends lines to the journal, each fsynced before `append` returns, after the last
    intact line (`end`): whatever a crash tore off the end is written over."""

    def __init__(self, path: Path, end: int):
        self.path = path
        self.end = end
        self._fd: int | None = None

    def _open(self) -> int:
        if self._fd is None:
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | NOFOLLOW, 0o600)
            except OSError as exc:
                if refused_link(exc):
                    raise not_a_file(self.path, "state journal") from None
                raise
            os.fchmod(fd, 0o600)
            self._fd = fd
            fsync_folder(self.path.parent)
        return self._fd

    def append(self, line: bytes) -> None:
        fd = self._open()
        os.ftruncate(fd, self.end)  # anything after the last intact line is a torn write
        written = os.pwrite(fd, line, self.end)
        if written != len(line):
            raise OSError(28, "short write to the state journal")
        os.fsync(fd)
        self.end += len(line)

    def empty(self) -> None:
        """Start afresh after a full write (whose generation makes the old lines ignored anyway).

        A new empty file replaces the journal rather than truncating it, so that a backup
        copying the old journal at this moment reads it whole."""
        if self._fd is not None or self.path.exists():
            self.close()
            atomic_write(self.path, b"")
        self.end = 0

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
