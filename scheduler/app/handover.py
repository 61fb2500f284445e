"""Hand-over intake: what reaches the state from outside the tick, and the `incoming/` protocol.

While the service runs it owns the state (the lock), so a coordinator's command cannot write
it: `friendtor attendance`, `reschedule` and `cancel` then leave a JSON record in
`<state dir>/incoming/` (`hand_over`, the writer side) and the service stores it at its next
tick (`Handover.ingest`, the reader side). Both sides of that protocol live in this module.
Members' answers arrive here too: RSVPs and replies with items (scheduler.app.intake) from the
reply inbox, and the answers of the guests of a Google Calendar event. A source is cleared only after what it carried is committed, so
a crash in between reads it again (storing a record twice is harmless).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from email import policy
from email.parser import BytesParser

from scheduler.app import changes
from scheduler.app.intake import DUPLICATE, TAKEN, ReplyIntake, ignored
from scheduler.app.replystate import change_items
from scheduler.app.store import LockedError, atomic_write, iso, parse_iso
from scheduler.app.stores import StateStore, open_store
from scheduler.core.gatherings import is_gathering
from scheduler.core.attendance import PARTSTAT_PRESENT, RESPONSE_PRESENT, Reply, replies_in, stale
from scheduler.core.config import Config
from scheduler.core.errors import SendError
from scheduler.core.log import event
from scheduler.core.meetings import Meeting
from scheduler.core.ports import GuestAnswers, Publisher, ReplyInbox


INBOX_PER_TICK = 200              # messages read from the reply inbox in one tick; the rest wait
MAX_MESSAGE_BYTES = 1024 * 1024  # a larger message is not read (no member writes a megabyte of items)
MAX_PASSED = 10_000              # keys remembered as left for a person (then forgotten, read once more)


def incoming_folder(state_path: Path) -> Path:
    """Where commands leave records for a running service to pick up."""
    return state_path.parent / "incoming"


def hand_over(state_path: Path, kind: str, record: Mapping[str, Any], now: datetime) -> Path:
    """Leave `record` ("attendance", "meeting" or "goals") for the running service's next tick. The
    name sorts by time, so changes are applied in the order they were given."""
    folder = incoming_folder(state_path)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"{kind}-{iso(now)}-{os.getpid()}.json"
    atomic_write(path, json.dumps(record).encode())
    return path


def store_or_hand_over(state: Config | Path, kind: str, record: Mapping[str, Any],
                       store_it: Callable[[StateStore], object], now: datetime) -> str:
    """Store a coordinator's record in the state (`state`: the config naming it, or a TinyDB
    file), or, while the service owns a TinyDB state, leave it in `<state dir>/incoming/` for
    its next tick; says which. A database is shared by the nodes and the commands alike: the
    record is always stored at once."""
    from scheduler.app.store import Store

    try:
        with (open_store(state) if isinstance(state, Config) else Store(state)) as store:
            store_it(store)
            store.commit()
        return "stored"
    except LockedError:
        hand_over(state.path(state.service.state) if isinstance(state, Config) else state, kind, record, now)
        return "handed to the running service (it acts at its next tick)"


def decision_time(now: datetime, meeting: Meeting, state_path: Path | None) -> datetime:
    """When a change counts as decided: now, to the second (as the state keeps times), but
    after the meeting's current version and after any change to it still waiting in
    `incoming/`, so two commands within one second are both applied, in the order given."""
    latest = meeting.stamp
    for path in incoming_folder(state_path).glob("meeting-*.json") if state_path is not None else ():
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            record = json.loads(path.read_text())
            if (record["group"], record["cycle"]) == (meeting.group, meeting.cycle):
                latest = max(latest, parse_iso(record["decided"]))
    return max(now.replace(microsecond=0), latest + timedelta(seconds=1))


def store_attendance(store: StateStore, record: Mapping[str, Any], now: datetime) -> int:
    """Store a coordinator's record {"group", "cycle", "present": [...], "absent": [...]}."""
    n = 0
    for key, present in (("present", True), ("absent", False)):
        for email in record[key]:
            store.record_attendance(record["group"], record["cycle"], email, present, "coordinator", now)
            n += 1
    return n


class Handover:
    """Takes in, at each tick, what arrived since the last: hand-over files, RSVPs, guests' answers."""

    def __init__(self, store: StateStore, config: Callable[[], Config], commit: Callable[[], None],
                 inbox: ReplyInbox | None = None):
        self.store = store
        self._config = config      # the config in force, which a reload may replace
        self.commit = commit
        # None: RSVPs are not read (simulations, tests).
        self.inbox = inbox
        self.replies = ReplyIntake(store, config)
        # Messages that are neither an RSVP nor a taken reply (a bounce, a stranger's mail, a
        # member's "thanks!") stay unread for a person, and are remembered here so each is read
        # once per run: the per-tick cap then always reaches new mail. Memory only.
        self.passed: set[str] = set()
        # (group, cycle) -> the day Google's answers were last read for that meeting. Kept in memory
        # only: after a restart each meeting is read once more that day, which is harmless.
        self.google_polled: dict[tuple[str, str], date] = {}

    @property
    def config(self) -> Config:
        return self._config()

    def ingest(self, now: datetime) -> None:
        """Store coordinators' attendance records and meeting changes dropped in `incoming/`
        while the service ran, and RSVPs from the reply inbox; the sources are cleared only
        after a commit. A broken inbox is logged and skipped: it must never stop the sending."""
        try:
            self._ingest(now)
        except OSError as exc:
            event("attendance intake failed", logging.ERROR, error=str(exc))

    def _ingest(self, now: datetime) -> None:
        # A database state has no hand-over folder: the commands wrote to it directly.
        folder = incoming_folder(self.store.path) if self.store.path is not None else None
        attendance, meetings = _dropped(folder, "attendance"), _dropped(folder, "meeting")
        for path in attendance:
            try:
                store_attendance(self.store, json.loads(path.read_text()), now)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                _set_aside(path, "attendance", exc)
        for path in meetings:  # `friendtor reschedule` and `cancel`, in the order they were given
            try:
                record = json.loads(path.read_text())
                result = changes.apply_change(self.store, record, now)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                _set_aside(path, "meeting change", exc)
                continue
            if isinstance(result, str):
                event("meeting change ignored", logging.WARNING, group=record["group"], cycle=record["cycle"],
                      reason=result)
            else:
                event("meeting cancelled" if result.cancelled else "meeting moved", group=result.group,
                      cycle=result.cycle, start=iso(result.start), sequence=result.sequence)
        goals = _dropped(folder, "goals")
        for path in goals:  # `friendtor goals --done/--remove`, in the order they were given
            try:
                record = json.loads(path.read_text())
                why = change_items(self.store.replies, record, now)
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                _set_aside(path, "goals change", exc)
                continue
            if why is not None:  # the item went meanwhile: nothing to do, the record is dropped
                event("goals change ignored", logging.WARNING, group=record["group"], id=record["id"], reason=why)
            else:
                event("goals changed", group=record["group"], id=record["id"], action=record["action"])
        dropped = [p for p in attendance + meetings + goals if p.exists()]
        with self.store.inbox_turn() as mine:  # several nodes: one reads the inbox at a time
            seen = self._inbox(now) if mine else []
            if dropped or seen:
                self.commit()
                if self.store.unsaved is None:  # saved: now the sources may go
                    for path in dropped:
                        path.unlink(missing_ok=True)
                    if seen and self.inbox is not None and self.config.service.mail.inbox:
                        self.inbox.mark_seen(self.config.path(self.config.service.mail.inbox), seen)

    def _inbox(self, now: datetime) -> list[str]:
        """Read the reply inbox: each message is parsed once, then taken as RSVPs or as a reply
        with items (scheduler.app.intake); the keys of the messages to mark seen."""
        inbox = self.config.service.mail.inbox if self.inbox is not None else None
        seen: list[str] = []
        if not inbox or self.inbox is None:
            return seen
        if len(self.passed) > MAX_PASSED:
            self.passed.clear()
        for message in self.inbox.unread(self.config.path(inbox), limit=INBOX_PER_TICK, max_bytes=MAX_MESSAGE_BYTES,
                                         skip=self.passed):
            outcome = self._one(message.data, now) if message.data is not None else ignored("too large", None)
            (seen.append if outcome in ("rsvp", TAKEN, DUPLICATE) else self.passed.add)(message.key)
        return seen

    def _one(self, data: bytes, now: datetime) -> str:
        """What became of one message: "rsvp", or what the reply intake said."""
        try:
            msg = BytesParser(policy=policy.default).parsebytes(data)
            rsvps = replies_in(msg)  # type: ignore[arg-type]
        except Exception:  # noqa: BLE001 (a malformed message costs only itself)
            return ignored("unreadable", None)
        if rsvps:
            self._rsvps(rsvps, now)
            return "rsvp"
        try:
            return self.replies.take(msg, data, now)  # type: ignore[arg-type]
        except (LookupError, TypeError, ValueError, UnicodeError):  # headers a parser choked on
            return ignored("unreadable", None)

    def _rsvps(self, replies: list[Reply], now: datetime) -> None:
        """Store the Accept/Tentative/Decline answers of one message. An answer about an older
        version of the meeting (a lower SEQUENCE, another start) is stale: logged, not stored."""
        by_uid = {m.uid: m for m in self.store.meetings().values()}
        for r in dict.fromkeys(replies):  # one answer once, however often the message carries it
            meeting = by_uid.get(r.uid)
            group = self.config.groups.get(meeting.group) if meeting else None
            if meeting is None or group is None:
                event("reply for an unknown meeting ignored", uid=r.uid)
            elif group.member(r.email) is None:
                event("reply from a non-member ignored", logging.WARNING, group=group.id, sender=r.email)
            elif r.partstat not in PARTSTAT_PRESENT:
                continue  # NEEDS-ACTION, DELEGATED: no answer to record
            elif (why := stale(r, meeting)) is not None:
                event("stale rsvp ignored", group=group.id, cycle=meeting.cycle, member=r.email,
                      partstat=r.partstat, reason=why)
            elif self.store.record_attendance(group.id, meeting.cycle, r.email, PARTSTAT_PRESENT[r.partstat],
                                              "rsvp", now):
                event("rsvp recorded", group=group.id, cycle=meeting.cycle, member=r.email,
                      partstat=r.partstat)

    def guest_answers(self, now: datetime, publishers: Mapping[str, Publisher]) -> None:
        """RSVPs from the Google event's guests (responseStatus), for meetings published there.

        Each meeting from two days ago to 60 days ahead is read at most once a day (one
        events.list). accepted/declined are recorded like an emailed Accept/Decline ("rsvp": a
        coordinator's record still wins), tentative as tentative; needsAction says nothing. A Google failure
        is logged and the tick goes on: the meeting is read again the next day.
        """
        google = publishers.get("google")
        if not isinstance(google, GuestAnswers):
            return
        today = now.date()
        for (gid, cycle), meeting in self.store.meetings().items():
            group = self.config.groups.get(gid)
            if (group is None or meeting.cancelled or self.google_polled.get((gid, cycle)) == today
                    or is_gathering(cycle)  # gatherings go by email only, never into a shared calendar
                    or not now - timedelta(days=2) <= meeting.start <= now + timedelta(days=60)):
                continue
            self.google_polled[(gid, cycle)] = today  # before the call: a failure is not retried every tick
            try:
                answers = google.responses(group, meeting)
            except SendError as exc:
                event("Google responses not read", logging.WARNING, group=gid, cycle=cycle, error=str(exc))
                continue
            for email, status in answers.items():
                if group.member(email) is None:
                    event("reply from a non-member ignored", logging.WARNING, group=gid, sender=email)
                elif status in RESPONSE_PRESENT and self.store.record_attendance(
                        gid, cycle, email, RESPONSE_PRESENT[status], "rsvp", now):
                    event("rsvp recorded", group=gid, cycle=cycle, member=email, partstat=status, source="google")


def _dropped(folder: Path | None, kind: str) -> list[Path]:
    """The records of one kind waiting in the hand-over folder, in the order they were given."""
    return sorted(folder.glob(f"{kind}-*.json")) if folder is not None else []


def _set_aside(path: Path, what: str, exc: Exception) -> None:
    """A record that cannot be read: kept, as <name>.bad, for a person to look at; never read again."""
    event(f"{what} file ignored", logging.ERROR, file=str(path), error=str(exc), kept_as=path.name + ".bad")
    with contextlib.suppress(OSError):
        path.rename(path.with_name(path.name + ".bad"))
