"""The state: meetings, outbox, alerts, reviews, attendance and replies (app.replystate), as TinyDB tables.

How it is kept on disk (atomically, 0600, with a journal) is `statefile`'s job; this module
knows what the documents mean. The service asks the same questions of the outbox (~170 records
a group) every few minutes, so the Store keeps indexes in memory, built when the state is read
and kept current by its methods, the only ones that change the state, always by document id.

Every document is checked when the state is read (`statedocs`): a record with a missing or
mistyped field stops the service with one line naming it, instead of failing later in a tick.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from datetime import date, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any
# iso and parse_iso are known from here too.
from scheduler.app.records import from_doc, iso, parse_iso, progress, to_doc  # noqa: F401
from scheduler.core.meetings import Meeting
from scheduler.app.files import atomic_write  # noqa: F401 (re-exported: the service and the CLI know them from here)
from scheduler.app.journal import HOW_TO, journal_path  # noqa: F401
from scheduler.app import replystate
from scheduler.app.claims import SingleNode
from scheduler.app.lock import Lock
from scheduler.app.secret import load_secret
from scheduler.app.statecheck import check_state_folder
from scheduler.app.statedocs import DAYS, FIELDS, INSTANTS, KEYS, check_documents  # noqa: F401
from scheduler.app.statefile import SCHEMA, Loading, StateDB, StateFile
from scheduler.core.errors import LockedError, StateError  # noqa: F401
from scheduler.core.outbox import FINISHED, OPEN, Kind, OutboxRecord
from scheduler.core.recorded import Recorded

MEETINGS_KEPT = timedelta(days=400)   # meetings and alerts are forgotten this long after


class Store(SingleNode):
    """The state, owned by one process (`lock=True`) or read beside it (`lock=False`)."""

    def __init__(self, path: Path, *, lock: bool = True):
        self.path = path
        self.lock = Lock(path.with_name(path.name + ".lock")) if lock else None
        if self.lock:
            # A writer checks, before any work, that the state can be saved: a read-only or
            # full folder is one line now, not a send that cannot be recorded later.
            check_state_folder(path)
            self.lock.acquire()
            # Holding the lock, any temp file left beside the state is from a process that died
            # mid-write (the state itself is intact): clear it so crashes do not pile them up.
            for stale in path.parent.glob(f".{path.name}.*.tmp"):
                stale.unlink(missing_ok=True)
        self._loading = Loading(lambda: self.storage.full_bytes + self.storage.journal_bytes)
        try:
            with self._loading:  # millions of objects at 1,000 groups: see statefile.Loading
                self.storage = StateFile(path, writable=lock)
                self.db = StateDB(storage=lambda: self.storage)
                self._check()
                self._index()
                self.replies = replystate.ReplyTables(self.db, self.storage, writable=lock)
            self.secret = load_secret(path, create=lock)  # keys Message-IDs; made by the state's owner
        except BaseException:
            self.close()
            raise
        if not self.db.table("meta").get(doc_id=1):
            self.db.table("meta").insert({"schema": SCHEMA})

    def close(self) -> None:
        if getattr(self, "storage", None):
            self.storage.close()
        if getattr(self, "_loading", None):
            self._loading.thaw()
        if self.lock:
            self.lock.release()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def commit(self) -> bool:
        return self.storage.commit()

    @property
    def unsaved(self) -> str | None:
        """Why the last commit failed, while no later one succeeded (the changes are only in memory)."""
        return self.storage.unsaved

    # --- reading the state once -------------------------------------------------------------

    def _check(self) -> None:
        check_documents(self.path, self.storage.table)

    def _index(self) -> None:
        self._meetings: dict[tuple[str, str], Meeting] = {}
        self._meeting_ids: dict[tuple[str, str], int] = {}
        for i, d in self.storage.table("meetings").items():
            self._meeting_ids[(d["group"], d["cycle"])] = int(i)
            self._meetings[(d["group"], d["cycle"])] = _meeting(d)
        self._sids: dict[str, int] = {}
        self._open: set[int] = set()
        self._failed: set[int] = set()
        self._invited: dict[str, dict[str, tuple[str, str]]] = {}
        self._oldest_done: str | None = None   # the earliest `expires` of a finished send
        for i, d in self.storage.table("outbox").items():
            self._index_send(int(i), d)
        self._alerts: dict[tuple[str, str], date] = {}
        self._alert_ids: dict[tuple[str, str], int] = {}
        for i, d in self.storage.table("alerts").items():
            self._alert_ids[(d["group"], d["cycle"])] = int(i)
            self._alerts[(d["group"], d["cycle"])] = date.fromisoformat(d["day"])
        self._review_ids = {(d["group"], d["kind"], d["end"]): int(i)
                            for i, d in self.storage.table("reviews").items()}
        self._attendance_ids: dict[tuple[str, str, str], int] = {}
        self._attendance_of: dict[str, list[int]] = {}
        for i, d in self.storage.table("attendance").items():
            self._attendance_ids[(d["group"], d["cycle"], d["email"])] = int(i)
            self._attendance_of.setdefault(d["group"], []).append(int(i))

    # --- meetings ---------------------------------------------------------------------------

    def meetings(self) -> Mapping[tuple[str, str], Meeting]:
        """Every stored meeting by (group, cycle); a live read-only view."""
        return MappingProxyType(self._meetings)

    def save_meeting(self, m: Meeting) -> None:
        doc = {"group": m.group, "cycle": m.cycle, "uid": m.uid, "sequence": m.sequence,
               "start": iso(m.start), "end": iso(m.end), "stamp": iso(m.stamp), "cancelled": m.cancelled}
        if m.moved_from is not None:
            doc["moved_from"] = iso(m.moved_from)
        key = (m.group, m.cycle)
        self._meeting_ids[key] = self._put("meetings", self._meeting_ids.get(key), doc)
        self._meetings[key] = _meeting(doc)

    # --- outbox -----------------------------------------------------------------------------
    # Each document is one message to one recipient, identified by "sid" = key|recipient. Out of
    # the store they are OutboxRecords (see scheduler.core.outbox), converted by app.records.

    @property
    def planned(self) -> AbstractSet[str]:
        """The sids in the outbox, in any status: a live read-only view."""
        return self._sids.keys()

    @property
    def invited(self) -> Mapping[str, Mapping[str, tuple[str, str, str | None]]]:
        """invite key -> recipient -> (name, zone, when it was sent or None), for every invite in the outbox."""
        return MappingProxyType(self._invited)

    def planned_at(self, now: datetime) -> Recorded:
        """What the planner asks at `now`: the index of every sid answers at no cost, so no narrower
        view is made (it answers as a database's does for every record asked_at `now`)."""
        return self._sids.keys()

    def invited_at(self, now: datetime) -> Mapping[str, Mapping[str, tuple[str, str, str | None]]]:
        return MappingProxyType(self._invited)

    def on_record(self, sids: Iterable[str]) -> AbstractSet[str]:
        return {s for s in sids if s in self._sids}

    def sends(self) -> list[OutboxRecord]:
        return [from_doc(doc) for doc in self.storage.table("outbox").values()]

    def open_sends(self) -> list[OutboxRecord]:
        """The sends not finished: pending, sending (interrupted) or waiting to retry."""
        docs = self.storage.table("outbox")
        return [from_doc(docs[str(i)]) for i in self._open]

    def failed_sends(self) -> list[OutboxRecord]:
        docs = self.storage.table("outbox")
        return [from_doc(docs[str(i)]) for i in self._failed]

    def add_sends(self, records: Iterable[OutboxRecord]) -> int:
        """Add sends to the outbox; one already there (same key and recipient) is left as it is."""
        new: dict[str, dict[str, Any]] = {}
        for r in records:
            if r.sid not in self._sids:
                new.setdefault(r.sid, to_doc(r))
        if new:
            stored = self.storage.table("outbox")
            for i in self.db.table("outbox").insert_multiple(new.values()):
                self._index_send(i, stored[str(i)])
        return len(new)

    def update_sends(self, records: Iterable[OutboxRecord]) -> None:
        """Store how far each record got (its status, attempts, error...), by sid."""
        changes = {r.sid: progress(r) for r in records}
        ids = [self._sids[s] for s in changes]
        if not ids:
            return
        stored = self.storage.table("outbox")
        for i in ids:
            self._unindex_status(i, stored[str(i)])
        self.db.table("outbox").update(lambda doc: doc.update(changes[doc["sid"]]), doc_ids=ids)
        for i in ids:
            self._index_status(i, stored[str(i)])
            if stored[str(i)]["status"] == "sent" and stored[str(i)].get("message_id"):
                self.replies.note_sent(stored[str(i)])
            if stored[str(i)]["key"].startswith(f"{Kind.INVITE}:"):
                self._index_invite(stored[str(i)])

    def _index_send(self, i: int, d: Mapping[str, Any]) -> None:
        self._sids[d["sid"]] = i
        if d["key"].startswith(f"{Kind.INVITE}:"):  # not re-invites: the planner asks who got the invite
            self._index_invite(d)
        self._index_status(i, d)

    def _index_invite(self, d: Mapping[str, Any]) -> None:
        sent = d.get("sent_at") if d["status"] == "sent" else None
        self._invited.setdefault(d["key"], {})[d["recipient"]] = (d["name"], d["timezone"], sent)

    def _index_status(self, i: int, d: Mapping[str, Any]) -> None:
        if d["status"] in OPEN:
            self._open.add(i)
        elif d["status"] in FINISHED:
            if d["status"] == "failed":
                self._failed.add(i)
            if self._oldest_done is None or d["expires"] < self._oldest_done:
                self._oldest_done = d["expires"]

    def _unindex_status(self, i: int, d: Mapping[str, Any]) -> None:
        self._open.discard(i)
        self._failed.discard(i)

    def _unindex_send(self, i: int, d: Mapping[str, Any]) -> None:
        self._unindex_status(i, d)
        del self._sids[d["sid"]]
        invited = self._invited.get(d["key"])
        if invited is not None:
            invited.pop(d["recipient"], None)
            if not invited:
                del self._invited[d["key"]]

    # --- forgetting -------------------------------------------------------------------------

    def prune(self, now: datetime, keep: timedelta) -> int:
        """Forget finished sends that no rule can plan again (see outbox.expires) once they are
        `keep` old, and meetings and alerts more than 400 days past. Looks at the records only
        when the oldest of them is old enough, so most ticks cost nothing here."""
        removed = 0
        cutoff = iso(now - keep)
        if self._oldest_done is not None and self._oldest_done < cutoff:
            stored = self.storage.table("outbox")
            old = [int(i) for i, d in stored.items() if d["status"] in FINISHED and d["expires"] < cutoff]
            for i in old:
                self._unindex_send(i, stored[str(i)])
            removed += len(self.db.table("outbox").remove(doc_ids=old))
            self._oldest_done = min((d["expires"] for d in stored.values() if d["status"] in FINISHED), default=None)
        before = now - MEETINGS_KEPT
        old_meetings = [key for key, m in self._meetings.items() if m.end < before]
        if old_meetings:
            removed += len(self.db.table("meetings").remove(doc_ids=[self._meeting_ids.pop(k) for k in old_meetings]))
            for key in old_meetings:
                del self._meetings[key]
        old_alerts = [key for key, day in self._alerts.items() if day < before.date()]
        if old_alerts:
            removed += len(self.db.table("alerts").remove(doc_ids=[self._alert_ids.pop(k) for k in old_alerts]))
            for key in old_alerts:
                del self._alerts[key]
        return removed + self.replies.prune(now)

    # --- alerts: the last day a group was told no time reaches quorum, per cycle ------------

    def alerts(self) -> Mapping[tuple[str, str], date]:
        return MappingProxyType(self._alerts)

    def note_alert(self, group: str, cycle: str, day: date) -> None:
        key = (group, cycle)
        self._alert_ids[key] = self._put("alerts", self._alert_ids.get(key),
                                         {"group": group, "cycle": cycle, "day": day.isoformat()})
        self._alerts[key] = day

    # --- reviews: each mission review and year-end prompt planned ---------------------------

    def note_review(self, group: str, kind: str, start: date, end: date) -> None:
        key = (group, kind, end.isoformat())
        self._review_ids[key] = self._put("reviews", self._review_ids.get(key),
                                          {"group": group, "kind": kind, "start": start.isoformat(),
                                           "end": end.isoformat()})

    # --- attendance -------------------------------------------------------------------------

    def attendance(self, group: str) -> list[dict[str, Any]]:
        stored = self.storage.table("attendance")
        return [dict(stored[str(i)]) for i in self._attendance_of.get(group, ())]

    def record_attendance(self, group: str, cycle: str, email: str, present: bool | None, source: str,
                          when: datetime) -> bool:
        """Store one member's attendance; an RSVP never overwrites what a coordinator recorded.
        `present` None is a Tentative RSVP: stored as not present with "tentative": true, so a
        state written before tentative answers were kept reads as it always did."""
        key = (group, cycle, email)
        existing = self._attendance_ids.get(key)
        if (source == "rsvp" and existing is not None
                and self.storage.table("attendance")[str(existing)]["source"] == "coordinator"):
            return False
        doc = {"group": group, "cycle": cycle, "email": email, "present": present is True, "source": source,
               "recorded": iso(when)}
        if present is None:
            doc["tentative"] = True
        self._attendance_ids[key] = i = self._put("attendance", existing, doc)
        if existing is None:
            self._attendance_of.setdefault(group, []).append(i)
        return True

    def forget_rsvps(self, group: str, cycle: str) -> int:
        """Drop the members' own answers (RSVPs) for one meeting: they answered for a time that
        has changed. A coordinator's record of who came stays."""
        stored = self.storage.table("attendance")
        ids = [i for i in self._attendance_of.get(group, ())
               if stored[str(i)]["cycle"] == cycle and stored[str(i)]["source"] == "rsvp"]
        for i in ids:
            d = stored[str(i)]
            del self._attendance_ids[(d["group"], d["cycle"], d["email"])]
        self._attendance_of[group] = [i for i in self._attendance_of.get(group, ()) if i not in set(ids)]
        return len(self.db.table("attendance").remove(doc_ids=ids)) if ids else 0

    def _put(self, table: str, doc_id: int | None, doc: dict[str, Any]) -> int:
        """Replace document `doc_id` with `doc`, or insert it if there is none; its id."""
        if doc_id is None:
            return self.db.table(table).insert(doc)

        def replace(old: dict[str, Any]) -> None:
            old.clear()
            old.update(doc)

        self.db.table(table).update(replace, doc_ids=[doc_id])
        return doc_id


def _meeting(d: Mapping[str, Any]) -> Meeting:
    return Meeting(d["group"], d["cycle"], d["uid"], d["sequence"], parse_iso(d["start"]), parse_iso(d["end"]),
                   parse_iso(d["stamp"]), d.get("cancelled", False),
                   parse_iso(d["moved_from"]) if d.get("moved_from") else None)
