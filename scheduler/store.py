"""The state file: one TinyDB JSON document, owned by one process, written atomically.

Why it is built this way:
- Writes stay in memory until `commit()`, and a commit writes a temp file in the same
  folder, fsyncs it, renames it over the old file and fsyncs the folder (the way Radicale
  writes). A crash leaves either the old state or the new one, never half of either.
- The file holds names, emails and goals: it is created 0600 and kept so.
- A file that cannot be read stops the service. Starting from an empty state instead
  would resend every invite and agenda of every group.
- An fcntl lock on `<state>.lock` keeps a second instance off the same state.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from tinydb import Query, TinyDB
from tinydb.storages import Storage

from .errors import FriendtorError
from .meetings import Meeting

SCHEMA = 1


class StateError(FriendtorError):
    """The state file cannot be used; the message says what to do."""


class LockedError(StateError):
    """Another process owns the state file."""


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


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
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


class TickStorage(Storage):
    """A TinyDB storage that reads the file once and writes it only on `commit()`."""

    def __init__(self, path: Path):
        self.path = path
        self.dirty = False
        self._data: dict[str, Any] = self._load()

    def _load(self) -> dict[str, Any]:
        if not self.path.exists():
            return {}
        how_to = ("friendtor will not start from an empty state, which would resend every message. "
                  "Restore the file from a backup (docs/operations.md), or move it away to start afresh")
        try:
            raw = self.path.read_bytes()
        except OSError as exc:
            raise StateError(f"{self.path}: cannot read the state file ({exc.strerror}); {how_to}") from None
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StateError(f"{self.path}: the state file is damaged ({exc}); {how_to}") from None
        # Every table is an object of documents, and every document an object, or TinyDB and the
        # code above it fail later with an internal error instead of this message.
        if not isinstance(data, dict) or not all(
                isinstance(table, dict) and all(isinstance(doc, dict) for doc in table.values())
                for table in data.values()):
            raise StateError(f"{self.path}: this is not a friendtor state file; {how_to}")
        meta = data.get("meta", {}).get("1", {})
        if not isinstance(meta.get("schema", SCHEMA), int) or isinstance(meta.get("schema"), bool):
            raise StateError(f"{self.path}: this is not a friendtor state file (meta.schema is not a number); "
                             f"{how_to}")
        if meta.get("schema", SCHEMA) > SCHEMA:
            raise StateError(f"{self.path}: written by a newer friendtor (schema {meta['schema']}); "
                             "upgrade friendtor, or restore the backup taken before the downgrade")
        return data

    def read(self) -> dict[str, Any] | None:
        return self._data

    def write(self, data: dict[str, Any]) -> None:
        self._data = data
        self.dirty = True

    def commit(self) -> bool:
        """Write the state if it changed; True if it wrote."""
        if not self.dirty:
            return False
        payload = json.dumps(self._data, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            atomic_write(self.path, payload)
        except OSError as exc:
            raise StateError(f"{self.path}: cannot write the state file ({exc.strerror}); "
                             "nothing was lost yet: free space or fix permissions, friendtor retries") from None
        self.dirty = False
        return True


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


Q = Query()


class Store:
    """The state: meetings, outbox, alerts, attendance, reviews (TinyDB tables)."""

    def __init__(self, path: Path, *, lock: bool = True):
        self.path = path
        self.lock = Lock(path.with_name(path.name + ".lock")) if lock else None
        if self.lock:
            self.lock.acquire()
            # Holding the lock, any temp file left beside the state is from a process that died
            # mid-write (the state itself is intact): clear it so crashes do not pile them up.
            for stale in path.parent.glob(f".{path.name}.*.tmp"):
                stale.unlink(missing_ok=True)
        try:
            self.storage = TickStorage(path)
        except BaseException:
            self.close()
            raise
        self.db = TinyDB(storage=lambda: self.storage)
        if not self.db.table("meta").get(doc_id=1):
            self.db.table("meta").insert({"schema": SCHEMA})

    def close(self) -> None:
        if self.lock:
            self.lock.release()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def commit(self) -> bool:
        return self.storage.commit()

    # --- meetings ---------------------------------------------------------------------

    def meetings(self) -> dict[tuple[str, str], Meeting]:
        return {(d["group"], d["cycle"]): _meeting(d) for d in self.db.table("meetings")}

    def save_meeting(self, m: Meeting) -> None:
        doc = {"group": m.group, "cycle": m.cycle, "uid": m.uid, "sequence": m.sequence,
               "start": iso(m.start), "end": iso(m.end), "stamp": iso(m.stamp), "cancelled": m.cancelled}
        self.db.table("meetings").upsert(doc, (Q.group == m.group) & (Q.cycle == m.cycle))

    # --- outbox -----------------------------------------------------------------------
    # Each document is one message to one recipient, identified by "sid" = key|recipient.
    # Changes go in batches: TinyDB rewrites a whole table per call, so one call per message
    # would make a busy tick quadratic.

    def sends(self) -> list[dict[str, Any]]:
        return [dict(doc) for doc in self.db.table("outbox")]

    def add_sends(self, docs: list[dict[str, Any]]) -> None:
        if docs:
            self.db.table("outbox").insert_multiple({**d, "sid": sid(d["key"], d["recipient"])} for d in docs)

    def update_sends(self, changes: dict[str, dict[str, Any]]) -> None:
        """Apply field changes to outbox documents, by sid, in one table rewrite."""
        if not changes:
            return

        def apply(doc: dict[str, Any]) -> None:
            fields = changes.get(doc["sid"])
            if fields:
                doc.update(fields)

        self.db.table("outbox").update(apply, Q.sid.one_of(set(changes)))

    def prune(self, now: datetime, keep: timedelta) -> int:
        """Forget finished sends that no rule can plan again (see planner.expires) once they are
        `keep` old, and meetings and alerts more than 400 days past. Writes only if it removes."""
        cutoff = iso(now - keep)
        old_meetings, old_day = iso(now - timedelta(days=400)), (now - timedelta(days=400)).date().isoformat()
        done = (Q.status.one_of(["sent", "failed", "skipped"])) & (Q.expires < cutoff)
        removed = 0
        for table, cond in (("outbox", done), ("meetings", Q.end < old_meetings), ("alerts", Q.day < old_day)):
            t = self.db.table(table)
            if t.contains(cond):  # TinyDB rewrites the table on every remove(), even an empty one
                removed += len(t.remove(cond))
        return removed

    # --- alerts: the last day a group was told no time reaches quorum, per cycle --------

    def alerts(self) -> dict[tuple[str, str], date]:
        return {(d["group"], d["cycle"]): date.fromisoformat(d["day"]) for d in self.db.table("alerts")}

    def note_alert(self, group: str, cycle: str, day: date) -> None:
        self.db.table("alerts").upsert({"group": group, "cycle": cycle, "day": day.isoformat()},
                                       (Q.group == group) & (Q.cycle == cycle))

    # --- reviews: each mission review and year-end prompt planned ------------------------

    def note_review(self, group: str, kind: str, start: date, end: date) -> None:
        self.db.table("reviews").upsert({"group": group, "kind": kind, "start": start.isoformat(),
                                         "end": end.isoformat()},
                                        (Q.group == group) & (Q.kind == kind) & (Q.end == end.isoformat()))

    def reviews(self, group: str) -> list[dict[str, Any]]:
        return sorted(self.db.table("reviews").search(Q.group == group), key=lambda d: d["end"])

    # --- attendance --------------------------------------------------------------------

    def attendance(self, group: str) -> list[dict[str, Any]]:
        return list(self.db.table("attendance").search(Q.group == group))

    def record_attendance(self, group: str, cycle: str, email: str, present: bool, source: str, when: datetime) -> bool:
        """Store one member's attendance; an RSVP never overwrites what a coordinator recorded."""
        table = self.db.table("attendance")
        if source == "rsvp":
            existing = table.get((Q.group == group) & (Q.cycle == cycle) & (Q.email == email))
            if existing and existing["source"] == "coordinator":
                return False
        table.upsert(
            {"group": group, "cycle": cycle, "email": email, "present": present, "source": source,
             "recorded": iso(when)},
            (Q.group == group) & (Q.cycle == cycle) & (Q.email == email))
        return True


def sid(key: str, recipient: str) -> str:
    return f"{key}|{recipient}"


def _meeting(d: dict[str, Any]) -> Meeting:
    return Meeting(d["group"], d["cycle"], d["uid"], d["sequence"], parse_iso(d["start"]), parse_iso(d["end"]),
                   parse_iso(d["stamp"]), d.get("cancelled", False))
