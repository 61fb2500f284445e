"""The service: plan, then act, then record; one tick at a time.

A tick reloads the config if a file changed (a broken edit is logged and the last good
config stays in force), asks the planner what is due, records that (one state write),
then sends what the outbox holds, recording progress in batches.

Crash safety: before a batch is sent its records are marked "sending" and written; after
it, the results are written. A crash in between leaves "sending" records, which the next
tick sends again, with the same Message-ID (derived from key and recipient), so mail
systems drop the duplicate. Batches grow while sending is quick and shrink when it is slow,
so a crash repeats at most a couple of seconds' worth of sends.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from scheduler.app import changes
from scheduler.core.attendance import PARTSTAT_PRESENT, RESPONSE_PRESENT
from scheduler.core.availability import Availability
from scheduler.core.config import Config, Group
from scheduler.core.cycles import Window
from scheduler.compose.select import Skip, World, message_for, retry_delay
from scheduler.core.errors import FriendtorError, SendError
from scheduler.app.loader import load_config
from scheduler.core.log import event
from scheduler.core.planner import Plan, Send, StateView, expires, plan
from scheduler.app.templates import load_templates
from scheduler.compose.render import TemplateProblem, Templates
from scheduler.compose.samples import failure_payload
from scheduler.app.store import Store, iso, parse_iso

BATCH_MIN, BATCH_MAX = 5, 1000
BATCH_SECONDS = 2.0

AvailabilityReader = Callable[[Config, Group, datetime, datetime], dict[str, Availability]]


def written_paths(config: Config) -> frozenset[str]:
    """What the service itself writes, wherever the config puts it: not config, so a change
    there must not count as an edit (it would reload the config every tick)."""
    state = config.path(config.service.state)
    paths = {state, state.with_name(state.name + ".journal"), state.with_name(state.name + ".lock"),
             state.parent / "feeds", incoming_folder(state), config.path(config.service.mail.maildir)}
    if config.service.mail.inbox:
        paths.add(config.path(config.service.mail.inbox))
    if config.service.google:
        paths.add(config.path(config.service.google.token))
    return frozenset(os.path.abspath(p) for p in paths)


def fingerprint(folder: Path, skip: frozenset[str] = frozenset()) -> tuple:
    """Names, sizes and times of the config files: not var/, hidden files or `skip` (absolute
    paths of files and folders the service writes)."""
    out = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not (Path(root) == folder and d == "var")
                         and os.path.abspath(os.path.join(root, d)) not in skip)
        for name in sorted(files):
            path = os.path.abspath(os.path.join(root, name))
            if not name.startswith(".") and path not in skip:
                # A dangling symlink, or a file an editor removes between the listing and the
                # stat (vim's "4913" probe), must not stop the service: record it without a
                # stamp, so it still counts as a change, and let load_config judge the files.
                try:
                    st = os.stat(path)
                except OSError:
                    out.append((path, None, None))
                    continue
                out.append((path, st.st_mtime_ns, st.st_size))
    return tuple(out)


class ConfigWatcher:
    """The config in force; reloaded when its files change, kept when the new one is broken."""

    def __init__(self, folder: Path):
        self.folder = folder
        before = fingerprint(folder)  # before loading: an edit made meanwhile shows at the first tick
        self.config = load_config(folder)  # at start a broken config is an error: nothing to fall back on
        skip = written_paths(self.config)
        self.stamp = tuple(entry for entry in before
                           if not any(entry[0] == p or entry[0].startswith(p + os.sep) for p in skip))

    def refresh(self, adopt: Callable[[Config], None] = lambda config: None) -> bool:
        """Reload if a file changed. `adopt` prepares what the new config needs; the new config
        is put in force only if loading and adopting both succeed."""
        stamp = fingerprint(self.folder, written_paths(self.config))
        if stamp == self.stamp:
            return False
        self.stamp = stamp  # a broken edit is reported once, not every tick
        try:
            config = load_config(self.folder)
            adopt(config)
        except FriendtorError as exc:
            for line in exc.lines():
                event("config not reloaded, the last good config stays in force", logging.ERROR, problem=line)
            return False
        self.config = config
        event("config reloaded", groups=len(self.config.groups))
        return True


@dataclass
class TickReport:
    now: datetime
    meetings: list[Any] = field(default_factory=list)
    planned: list[Send] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    retrying: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    held: list[dict[str, Any]] = field(default_factory=list)     # not tried: their way out is held back
    would_send: list[tuple[dict[str, Any], Any]] = field(default_factory=list)  # dry run


class Runner:
    def __init__(self, watcher: ConfigWatcher, store: Store, transport_factory: Callable[[Config], Any], *,
                 availability: AvailabilityReader, dry_run: bool = False,
                 publishers_factory: Callable[[Config], dict[str, Any]] = lambda config: {},
                 inbox: Any = None):
        self.watcher = watcher
        self.store = store
        self.transport_factory = transport_factory
        self.transport = transport_factory(watcher.config)
        self.publishers_factory = publishers_factory
        self.publishers = {} if dry_run else publishers_factory(watcher.config)
        # The reply inbox reader (integrations.inbox); None: RSVPs are not read (simulations).
        self.inbox = inbox
        self.templates = load_templates(watcher.config.folder / "templates")  # compiled once, not per tick
        self.availability = availability
        self.dry_run = dry_run
        self.stop = False  # set by SIGTERM/SIGINT: finish the send in progress, record, exit
        # (group, cycle) -> the day Google's answers were last read for that meeting. Kept in memory
        # only: after a restart each meeting is read once more that day, which is harmless.
        self.google_polled: dict[tuple[str, str], date] = {}
        self.batch = BATCH_MIN
        # Channels ("mail", or "publish:<target>") held back after a setup error (the server is
        # unreachable, the login refused...): channel -> (setup errors in a row, held until, the
        # sid that met the last one). In memory: after a restart one message tries again at once.
        self.held: dict[str, tuple[int, datetime, str]] = {}

    @property
    def config(self) -> Config:
        return self.watcher.config

    def _adopt(self, config: Config) -> None:
        """Build everything a new config needs (transport, publishers, templates) before it takes
        over; if any of it fails, the error propagates and the last good config stays in force."""
        transport = self.transport_factory(config)
        publishers = {} if self.dry_run else self.publishers_factory(config)
        templates = load_templates(config.folder / "templates")
        self.transport, self.publishers, self.templates = transport, publishers, templates
        self.held.clear()  # a new setup may be the fix: try it at once

    # --- plan -----------------------------------------------------------------------------

    def view(self) -> StateView:
        # Live views of the Store's indexes, not copies: the planner reads them before anything
        # is recorded, and copying a long-running outbox every tick is what made ticks slow.
        return StateView(self.store.meetings(), self.store.planned, self.store.invited, self.store.alerts())

    def _availability_fn(self, reads: list[tuple[Group, dict[str, Availability]]]):
        """Availability for the planner, each window read once per tick. Every read is also
        appended to `reads`: calendars that could not be read are reported after planning, so
        the state does not change while the planner looks at it."""
        cache: dict[tuple[str, tuple[date, ...]], dict[str, Availability]] = {}

        def read(group: Group, window: Window) -> dict[str, Availability]:
            key = (group.id, window.dates)
            if key not in cache:
                if not window.dates:
                    cache[key] = {}
                else:
                    lo = datetime.combine(window.first, datetime.min.time(), group.tz)
                    hi = datetime.combine(window.last + timedelta(days=1), datetime.min.time(), group.tz)
                    cache[key] = self.availability(self.config, group, lo, hi)
                    reads.append((group, cache[key]))
            return cache[key]
        return read

    def record_plan(self, p: Plan, now: datetime) -> None:
        for m in p.meetings:
            self.store.save_meeting(m)
            event("meeting scheduled", group=m.group, cycle=m.cycle, start=iso(m.start), uid=m.uid)
        for group, cycle, day in p.alerts:
            self.store.note_alert(group, cycle, day)
            event("no time reaches quorum; coordinators alerted", logging.WARNING, group=group, cycle=cycle)
        for group, kind, start, end in p.reviews:
            self.store.note_review(group, kind, start, end)
        self.store.add_sends([self._doc(s, now) for s in p.sends])

    def _doc(self, s: Send, now: datetime) -> dict[str, Any]:
        group = self.config.groups[s.group]
        return {"key": s.key, "kind": s.kind, "group": s.group, "recipient": s.recipient, "name": s.name,
                "timezone": s.timezone, "payload": dict(s.payload), "status": "pending", "attempts": 0,
                "last_error": None, "message_id": None, "created": iso(now), "updated": iso(now),
                "due": iso(s.due), "next_attempt": None, "sent_at": None, "expires": iso(expires(s, group))}

    # --- act ------------------------------------------------------------------------------

    def tick(self, now: datetime) -> TickReport:
        if now.tzinfo is None:
            raise ValueError("now must be aware")
        self.watcher.refresh(self._adopt)
        report = TickReport(now)
        if not self.dry_run:
            self.ingest(now)
            self.google_responses(now)
        reads: list[tuple[Group, dict[str, Availability]]] = []
        p = plan(self.config, self.view(), now, self._availability_fn(reads))
        report.meetings, report.planned = list(p.meetings), list(p.sends)
        self.record_plan(p, now)
        for group, availability in reads:
            self._report_calendar_problems(group, availability, now)
        if not self.dry_run:
            self.commit()
        self.deliver(now, report)
        if not self.dry_run:
            forgotten = self.store.prune(now, timedelta(days=self.config.service.keep_days))
            if forgotten:
                event("old sends forgotten", count=forgotten)
            self.commit()
        return report

    # --- attendance coming in -----------------------------------------------------------

    def ingest(self, now: datetime) -> None:
        """Store coordinators' attendance records dropped by `friendtor attendance` while the
        service ran, and RSVPs from the reply inbox; the sources are cleared only after a commit.
        A broken inbox is logged and skipped: it must never stop the sending."""
        try:
            self._ingest(now)
        except OSError as exc:
            event("attendance intake failed", logging.ERROR, error=str(exc))

    def _ingest(self, now: datetime) -> None:
        folder = incoming_folder(self.store.path)
        attendance, meetings = sorted(folder.glob("attendance-*.json")), sorted(folder.glob("meeting-*.json"))
        def set_aside(path: Path, what: str, exc: Exception) -> None:
            # Kept, as <name>.bad, for a person to look at; never read again.
            event(f"{what} file ignored", logging.ERROR, file=str(path), error=str(exc), kept_as=path.name + ".bad")
            with contextlib.suppress(OSError):
                path.rename(path.with_name(path.name + ".bad"))

        for path in attendance:
            try:
                record = json.loads(path.read_text())
                store_attendance(self.store, record, now)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                set_aside(path, "attendance", exc)
        for path in meetings:  # `friendtor reschedule` and `cancel`, in the order they were given
            try:
                record = json.loads(path.read_text())
                result = changes.apply_change(self.store, record, now)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                set_aside(path, "meeting change", exc)
                continue
            if isinstance(result, str):
                event("meeting change ignored", logging.WARNING, group=record["group"], cycle=record["cycle"],
                      reason=result)
            else:
                event("meeting cancelled" if result.cancelled else "meeting moved", group=result.group,
                      cycle=result.cycle, start=iso(result.start), sequence=result.sequence)
        dropped = [p for p in attendance + meetings if p.exists()]
        inbox = self.config.service.mail.inbox if self.inbox else None
        seen: list[str] = []
        if inbox:
            by_uid = {m.uid: m for m in self.store.meetings().values()}
            for key, replies in self.inbox.unread_replies(self.config.path(inbox)):
                if not replies:
                    continue  # not an Accept/Decline (a bounce, a note): left unread for a person
                seen.append(key)
                for r in replies:
                    meeting = by_uid.get(r.uid)
                    group = self.config.groups.get(meeting.group) if meeting else None
                    if group is None:
                        event("reply for an unknown meeting ignored", uid=r.uid)
                    elif group.member(r.email) is None:
                        event("reply from a non-member ignored", logging.WARNING, group=group.id, sender=r.email)
                    elif r.partstat in PARTSTAT_PRESENT:
                        self.store.record_attendance(group.id, meeting.cycle, r.email,
                                                     PARTSTAT_PRESENT[r.partstat], "rsvp", now)
                        event("rsvp recorded", group=group.id, cycle=meeting.cycle, member=r.email,
                              partstat=r.partstat)
        if dropped or seen:
            self.commit()
            if not self.store.storage.dirty:  # saved: now the sources may go
                for path in dropped:
                    path.unlink(missing_ok=True)
                if seen:
                    self.inbox.mark_seen(self.config.path(inbox), seen)

    def google_responses(self, now: datetime) -> None:
        """RSVPs from the Google event's guests (responseStatus), for meetings published there.

        Each meeting from two days ago to 60 days ahead is read at most once a day (one
        events.list). accepted/declined are recorded like an emailed Accept/Decline ("rsvp": a
        coordinator's record still wins); tentative and needsAction say nothing. A Google failure
        is logged and the tick goes on: the meeting is read again the next day.
        """
        google = self.publishers.get("google")
        if google is None or not hasattr(google, "responses"):
            return
        today = now.date()
        for (gid, cycle), meeting in self.store.meetings().items():
            group = self.config.groups.get(gid)
            if (group is None or meeting.cancelled or self.google_polled.get((gid, cycle)) == today
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

    def commit(self) -> None:
        try:
            self.store.commit()
        except FriendtorError as exc:
            # Nothing is lost while the process lives: the state stays in memory and the next
            # commit tries again. The operator has to act (disk full, permissions).
            event("state not saved", logging.ERROR, error=str(exc))

    def due(self, now: datetime) -> list[dict[str, Any]]:
        docs = [d for d in self.store.open_sends()
                if d["status"] != "retry" or parse_iso(d["next_attempt"]) <= now]
        return sorted(docs, key=lambda d: (d["created"], d["key"], d["recipient"]))

    def deliver(self, now: datetime, report: TickReport) -> None:
        queue = self.due(now)
        if not queue:
            return
        # The message that met a channel's last setup error goes last, so the next try is made
        # with another one: whatever the error, one message can never keep the others waiting.
        probes = {probe for _, _, probe in self.held.values()}
        queue.sort(key=lambda d: d["sid"] in probes)
        world = World(self.store.meetings(), _attendance(self.store, self.config), self.store.failed_sends())
        templates = self.templates
        while queue and not self.stop:
            if self.held:  # a held way out: its sends wait, untouched (not even marked "sending")
                report.held.extend(d for d in queue if self._is_held(_channel(d), now))
                queue = [d for d in queue if not self._is_held(_channel(d), now)]
            batch, queue = queue[:self.batch], queue[self.batch:]
            if not batch:
                break
            if not self.dry_run:
                self.store.update_sends({d["sid"]: {"status": "sending", "updated": iso(now)} for d in batch})
                self.commit()
            started = time.monotonic()
            results: dict[str, dict[str, Any]] = {}
            for i, doc in enumerate(batch):
                if self.stop:
                    # Not attempted: back to where they were, so attempts stay honest.
                    results.update({d["sid"]: _untouched(d) for d in batch[i:]})
                    break
                if self._is_held(_channel(doc), now):
                    results[doc["sid"]] = _untouched(doc)
                    report.held.append(doc)
                    continue
                results[doc["sid"]] = self._send_one(doc, world, templates, now, report)
            # The batch is sized by sending time alone: that is what a crash would repeat.
            elapsed = time.monotonic() - started
            if not self.dry_run:
                self.store.update_sends(results)
                self.commit()
            self.batch = (min(BATCH_MAX, self.batch * 2) if elapsed < BATCH_SECONDS / 2
                          else max(BATCH_MIN, self.batch // 2) if elapsed > BATCH_SECONDS else self.batch)

    def _send_one(self, doc: dict[str, Any], world: World, templates: Templates, now: datetime,
                  report: TickReport) -> dict[str, Any]:
        attempts = doc["attempts"] + 1
        base = {"attempts": attempts, "updated": iso(now)}
        where = {"kind": doc["kind"], "group": doc["group"], "key": doc["key"], "to": doc["recipient"]}
        try:
            if doc["kind"] == "publish":
                return self._publish_one(doc, world, now, report, base, where)
            message = message_for(doc, self.config, world, templates, now)
        except TemplateProblem as exc:
            return self._failed(doc, base, f"template problem: {exc.problem()}", True, now, report, where)
        except Exception as exc:  # a bug with this one record: fail it, never the whole queue
            logging.getLogger("friendtor").exception("internal error preparing a send")
            return self._failed(doc, base, f"internal error: {type(exc).__name__}: {exc}", False, now, report,
                                where)
        if isinstance(message, Skip):
            event("not sent", reason=message.reason, **where)
            report.skipped.append(doc)
            return {**base, "status": "skipped", "last_error": message.reason}
        if self.dry_run:
            report.would_send.append((doc, message))
            return {}
        try:
            self.transport.send(message)
        except SendError as exc:
            if exc.setup:
                return self._hold(doc, base, exc, now, report, where)
            self.held.pop("mail", None)  # the server answered about this message: the way out works
            return self._failed(doc, base, str(exc), exc.transient, now, report, where)
        self.held.pop("mail", None)
        event("sent", message_id=message["Message-ID"], attempt=attempts, **where)
        report.sent.append(doc)
        return {**base, "status": "sent", "sent_at": iso(now), "message_id": message["Message-ID"],
                "last_error": None, "next_attempt": None}

    def _publish_one(self, doc: dict[str, Any], world: World, now: datetime, report: TickReport,
                     base: dict[str, Any], where: dict[str, Any]) -> dict[str, Any]:
        """Put the meeting into a shared calendar (Google, CalDAV); same outbox rules as mail."""
        group = self.config.groups.get(doc["group"])
        meeting = world.meetings.get((doc["group"], doc["payload"].get("cycle")))
        publisher = self.publishers.get(doc["recipient"])
        reason = ("the group is no longer in the config" if group is None
                  else "the meeting is not in the state" if meeting is None
                  else "the meeting has already started" if meeting.start <= now
                  else f"publishing to {doc['recipient']} is no longer configured"
                  if publisher is None and not self.dry_run else None)
        if reason:
            event("not published", reason=reason, **where)
            report.skipped.append(doc)
            return {**base, "status": "skipped", "last_error": reason}
        if self.dry_run:
            report.would_send.append((doc, {"Subject": f"publish {meeting.uid} (sequence {meeting.sequence})"}))
            return {}
        try:
            if meeting.cancelled:
                publisher.cancel(group, meeting)
            else:
                from scheduler.compose.build import shared_event

                publisher.publish(group, meeting, shared_event(self.config, group, meeting))
        except SendError as exc:
            if exc.setup or _calendar_setup(exc):
                return self._hold(doc, base, exc, now, report, where)
            self.held.pop(_channel(doc), None)
            return self._failed(doc, base, str(exc), exc.transient, now, report, where)
        self.held.pop(_channel(doc), None)
        event("published", uid=meeting.uid, sequence=meeting.sequence, **where)
        report.sent.append(doc)
        return {**base, "status": "sent", "sent_at": iso(now), "last_error": None, "next_attempt": None}

    def _is_held(self, channel: str, now: datetime) -> bool:
        return channel in self.held and now < self.held[channel][1]

    def _hold(self, doc, base, exc: SendError, now: datetime, report: TickReport, where) -> dict:
        """A setup error: the message is fine, the way out is not. Hold the channel back with
        backoff (5 minutes, doubling, up to 6 hours), so a wrong password is tried once per
        hold, not once per message (which also gets accounts locked), and a silent server
        costs one timeout, not one per message. The message stays pending with the others (a
        restart or a config reload tries them at once), and nothing is reported to the
        coordinators, whose email would go the same broken way: the log says what the operator
        must fix, and `status` shows it on the message. A setup error never fails a message;
        retry_days still counts from when it was planned, so a message refused on its own after
        a long hold is failed at once."""
        channel = _channel(doc)
        errors = self.held[channel][0] + 1 if channel in self.held else 1
        until = now + retry_delay(errors)
        self.held[channel] = (errors, until, doc["sid"])
        event("sending held back until the server or the setup is fixed", logging.ERROR, channel=channel,
              error=str(exc), retry_at=iso(until), **where)
        report.held.append(doc)
        return {**base, "status": "pending", "last_error": str(exc), "next_attempt": None}

    def _failed(self, doc, base, error: str, transient: bool, now: datetime, report: TickReport, where) -> dict:
        give_up = parse_iso(doc["created"]) + timedelta(days=self.config.service.retry_days)
        if transient and now < give_up:
            nxt = now + retry_delay(base["attempts"])
            event("send failed, will retry", logging.WARNING, error=error, retry_at=iso(nxt), **where)
            report.retrying.append(doc)
            return {**base, "status": "retry", "last_error": error, "next_attempt": iso(nxt)}
        event("send failed", logging.ERROR, error=error, **where)
        report.failed.append(doc)
        self._report_failure(doc, error, now)
        return {**base, "status": "failed", "last_error": error, "next_attempt": None}

    def _report_calendar_problems(self, group: Group, availability: dict[str, Availability], now: datetime) -> None:
        """A calendar that cannot be read until someone acts (revoked sign-in, no permission):
        an error in the log every time, and one email to the coordinators per distinct problem."""
        problems: dict[str, list[str]] = {}
        for email, avail in availability.items():
            if avail.needs_fix and avail.unknown:
                problems.setdefault(avail.unknown, []).append(email)
        if not problems or self.dry_run:
            return
        for reason, emails in problems.items():
            event("calendars not readable until fixed", logging.ERROR, group=group.id, members=len(emails),
                  error=reason)
            names = ", ".join(m.name for m in group.members if m.email in emails)
            payload = {"failure": {**failure_payload("calendar", "", "", reason, now.astimezone(group.tz).date()),
                                   "summary": f"friendtor cannot read the calendars of {names}, so they "
                                              "count as unknown when it looks for meeting times."}}
            key = f"calendar-problem:{group.id}:{hashlib.sha256(reason.encode()).hexdigest()[:16]}"
            sends = [Send(key, "alert", group.id, m.email, m.name, m.timezone, now, payload)
                     for m in group.members if m.email in group.coordinators]
            self.store.add_sends([self._doc(s, now) for s in sends if s.sid not in self.store.planned])

    def _report_failure(self, doc: dict[str, Any], error: str, now: datetime) -> None:
        """Tell the group's coordinators, once, that a member did not get a message."""
        group = self.config.groups.get(doc["group"])
        if group is None or "failure" in doc.get("payload", {}):
            return  # a report that itself failed is not reported again (no loops)
        payload = {"failure": failure_payload(doc["kind"], doc["name"], doc["recipient"], error,
                                              now.astimezone(group.tz).date())}
        sends = [Send(f"failure:{doc['key']}:{doc['recipient']}", "alert", group.id, m.email, m.name,
                      m.timezone, now, payload)
                 for m in group.members if m.email in group.coordinators and m.email != doc["recipient"]]
        self.store.add_sends([self._doc(s, now) for s in sends if s.sid not in self.store.planned])

    # --- the long-running loop --------------------------------------------------------------

    def serve(self, clock: Callable[[], datetime], sleep: Callable[[float], None] = time.sleep) -> None:
        import schedule

        scheduler = schedule.Scheduler()

        def run_tick() -> None:
            try:
                report = self.tick(clock())
                if report.sent or report.failed or report.meetings or report.held:
                    event("tick", sent=len(report.sent), failed=len(report.failed), meetings=len(report.meetings),
                          held=len(report.held))
            except FriendtorError as exc:
                event("tick failed", logging.ERROR, error=str(exc))
            except Exception as exc:  # a bug: log it with its traceback and keep the service up
                logging.getLogger("friendtor").exception("tick failed with an internal error")
                event("tick failed", logging.ERROR, error=f"{type(exc).__name__}: {exc}")

        minutes = self.config.service.tick_minutes
        scheduler.every(minutes).minutes.do(run_tick)
        event("started", tick_minutes=minutes, groups=len(self.config.groups), pid=os.getpid())
        run_tick()  # at once: a restart after downtime catches up straight away
        while not self.stop:
            if self.config.service.tick_minutes != minutes:  # changed in a reloaded config
                minutes = self.config.service.tick_minutes
                scheduler.clear()
                scheduler.every(minutes).minutes.do(run_tick)
            scheduler.run_pending()
            sleep(1)
        event("stopped")


def _channel(doc: dict[str, Any]) -> str:
    """The way out a send takes: mail, or one shared calendar."""
    return f"publish:{doc['recipient']}" if doc["kind"] == "publish" else "mail"


def _calendar_setup(exc: SendError) -> bool:
    """Whether a shared calendar's refusal is the setup's, not this meeting's: no answer at all,
    a refused sign-in or certificate (no HTTP status), the login refused (401), the calendar
    missing (404, 410) or moved (a redirect). Each would refuse every meeting alike, so
    publishing is held back as mail is, rather than failing each meeting for good. 403 and 409
    stay per meeting: CalDAV uses them for one event's conflicts too (a UID already there), and
    holding the channel for one event would hold every other. A rate limit or a server error is
    retried per meeting."""
    if exc.code is None:
        return True
    return not exc.transient and (exc.code in (401, 404, 410) or 300 <= exc.code < 400)


def _untouched(doc: dict[str, Any]) -> dict[str, Any]:
    """A send of the batch that was not attempted: back to the status it had before the batch."""
    return {"status": doc["status"] if doc["status"] != "sending" else "pending"}


def incoming_folder(state_path: Path) -> Path:
    """Where `friendtor attendance` leaves records for a running service to pick up."""
    return state_path.parent / "incoming"


def store_attendance(store: Store, record: dict[str, Any], now: datetime) -> int:
    """Store a coordinator's record {"group", "cycle", "present": [...], "absent": [...]}."""
    n = 0
    for key, present in (("present", True), ("absent", False)):
        for email in record[key]:
            store.record_attendance(record["group"], record["cycle"], email, present, "coordinator", now)
            n += 1
    return n


def _attendance(store: Store, config: Config) -> dict[str, list[dict[str, Any]]]:
    return {gid: store.attendance(gid) for gid in config.groups}


def default_availability(config: Config, group: Group, lo: datetime, hi: datetime) -> dict[str, Availability]:
    from integrations.calendars import group_availability

    return group_availability(config, group, lo, hi)
