"""Delivery: sending what the outbox holds, in batches, with retries and channel holds.

Crash safety: before a batch is sent its records are marked "sending" and written; after
it, the results are written. A crash in between leaves "sending" records, which the next
tick sends again, with the same Message-ID (derived from key and recipient), so mail
systems drop the duplicate. Batches grow while sending is quick and shrink when it is slow,
so a crash repeats at most a couple of seconds' worth of sends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from scheduler.app.store import iso
from scheduler.app.stores import StateStore
from scheduler.compose.build import shared_event
from scheduler.compose.render import TemplateProblem, Templates
from scheduler.compose.select import Skip, World, message_for
from scheduler.core.config import Config
from scheduler.core.errors import SendError, StateUnavailable
from scheduler.core.log import event
from scheduler.core.outbox import Kind, MeetingPayload, OutboxRecord, Status, retry_delay
from scheduler.core.ports import Publisher, Transport, transport_session

if TYPE_CHECKING:
    from scheduler.app.tick import TickReport

BATCH_MIN, BATCH_MAX = 5, 1000
BATCH_SECONDS = 2.0


class Delivery:
    """Sends due outbox records through the transport (mail) and the publishers (shared calendars)."""

    def __init__(self, store: StateStore, config: Callable[[], Config], commit: Callable[[], None], *,
                 transport: Transport, publishers: Mapping[str, Publisher], templates: Templates,
                 dry_run: bool = False):
        self.store = store
        self._config = config      # the config in force, which a reload may replace
        self.commit = commit
        self.transport = transport
        self.publishers = publishers
        self.templates = templates
        self.dry_run = dry_run
        self.stop = False  # set by SIGTERM/SIGINT: finish the send in progress, record, exit
        self.batch = BATCH_MIN
        # Channels ("mail", or "publish:<target>") held back after a setup error (the server is
        # unreachable, the login refused...): channel -> (setup errors in a row, held until, the
        # sid that met the last one). In memory: after a restart one message tries again at once.
        self.held: dict[str, tuple[int, datetime, str]] = {}

    @property
    def config(self) -> Config:
        return self._config()

    def adopt(self, transport: Transport, publishers: Mapping[str, Publisher], templates: Templates) -> None:
        """A new config's ways out; a new setup may be the fix, so held channels are tried at once."""
        self.transport, self.publishers, self.templates = transport, publishers, templates
        self.held.clear()

    def due(self, now: datetime) -> list[OutboxRecord]:
        records = [r for r in self.store.open_sends()
                   if r.status != Status.RETRY or (r.next_attempt is not None and r.next_attempt <= now)]
        return sorted(records, key=lambda r: (r.created, r.key, r.recipient))

    def deliver(self, now: datetime, report: TickReport) -> None:
        queue = self.due(now)
        if not queue:
            return
        # The message that met a channel's last setup error goes last, so the next try is made
        # with another one: whatever the error, one message can never keep the others waiting.
        probes = {probe for _, _, probe in self.held.values()}
        queue.sort(key=lambda r: r.sid in probes)
        world = World(self.store.meetings(), {gid: self.store.attendance(gid) for gid in self.config.groups},
                      self.store.failed_sends(), self.store.secret)
        templates = self.templates
        while queue and not self.stop:
            if self.held:  # a held way out: its sends wait, untouched (not even marked "sending")
                report.held.extend(r for r in queue if self._is_held(r.channel, now))
                queue = [r for r in queue if not self._is_held(r.channel, now)]
            batch, queue = queue[:self.batch], queue[self.batch:]
            if not batch:
                break
            if not self.dry_run:
                # Marked "sending" and written before anything goes out. With several nodes on
                # one database, only what no other node holds is claimed: the rest is theirs.
                batch = self.store.claim_sends(batch, now)
                self.commit()
                if not batch:
                    continue
            started = time.monotonic()
            results: list[OutboxRecord] = []
            with transport_session(self.transport):  # one SMTP connection for the whole batch
                for i, record in enumerate(batch):
                    if self.stop:
                        # Not attempted: back to where they were, so attempts stay honest.
                        results += [_untouched(r, now) for r in batch[i:]]
                        break
                    if self._is_held(record.channel, now):
                        results.append(_untouched(record, now))
                        report.held.append(record)
                        continue
                    if not self.dry_run:
                        self.store.keep_claims()   # a long batch keeps what it is still sending
                    results.append(self._send_one(record, world, templates, now, report))
            # The batch is sized by sending time alone: that is what a crash would repeat.
            elapsed = time.monotonic() - started
            if not self.dry_run:
                self.store.update_sends(results)
                self.commit()
            self.batch = (min(BATCH_MAX, self.batch * 2) if elapsed < BATCH_SECONDS / 2
                          else max(BATCH_MIN, self.batch // 2) if elapsed > BATCH_SECONDS else self.batch)

    def _send_one(self, record: OutboxRecord, world: World, templates: Templates, now: datetime,
                  report: TickReport) -> OutboxRecord:
        tried = replace(record, attempts=record.attempts + 1, updated=now)
        where = {"kind": str(record.kind), "group": record.group, "key": record.key, "to": record.recipient}
        try:
            if record.kind == Kind.PUBLISH:
                return self._publish_one(tried, world, now, report, where)
            message = message_for(record, self.config, world, templates, now)
        except TemplateProblem as exc:
            return self._failed(tried, f"template problem: {exc.problem()}", True, now, report, where)
        except StateUnavailable:
            # The state database went away while the message was built (the config in force reads
            # members' items from it): the tick stops, the record stays as claimed, and its lease
            # brings it back; it is no fault of this message.
            raise
        except Exception as exc:  # a bug with this one record: fail it, never the whole queue
            # The exception's text may quote what it choked on (a file, a value): the record, the
            # log line and the coordinators' alert say what happened in friendtor's words; the
            # traceback goes to the debug log for whoever fixes it.
            logging.getLogger("friendtor").debug("internal error preparing a send", exc_info=True)
            return self._failed(tried, f"internal error ({type(exc).__name__}) while preparing the message; "
                                "the operator's log has the details", False, now, report, where)
        if isinstance(message, Skip):
            event("not sent", reason=message.reason, **where)
            report.skipped.append(record)
            return tried.moved_on(Status.SKIPPED, last_error=message.reason)
        if self.dry_run:
            report.would_send.append((record, message))
            return record
        try:
            self.transport.send(message)
        except SendError as exc:
            if self.stop:
                return self._interrupted(record, exc, now, where)
            if exc.setup:
                return self._hold(tried, exc, now, report, where)
            self.held.pop("mail", None)  # the server answered about this message: the way out works
            return self._failed(tried, str(exc), exc.transient, now, report, where)
        self.held.pop("mail", None)
        event("sent", message_id=message["Message-ID"], attempt=tried.attempts, **where)
        report.sent.append(record)
        return tried.moved_on(Status.SENT, sent_at=now, message_id=message["Message-ID"], last_error=None,
                              next_attempt=None)

    def _publish_one(self, tried: OutboxRecord, world: World, now: datetime, report: TickReport,
                     where: dict[str, Any]) -> OutboxRecord:
        """Put the meeting into a shared calendar (Google, CalDAV); same outbox rules as mail."""
        group = self.config.groups.get(tried.group)
        cycle = tried.payload.cycle if isinstance(tried.payload, MeetingPayload) else None
        meeting = world.meetings.get((tried.group, cycle)) if cycle else None
        publisher = self.publishers.get(tried.recipient)
        reason = ("the group is no longer in the config" if group is None
                  else "the meeting is not in the state" if meeting is None
                  else "the meeting has already started" if meeting.start <= now
                  else f"publishing to {tried.recipient} is no longer configured"
                  if publisher is None and not self.dry_run else None)
        if reason:
            event("not published", reason=reason, **where)
            report.skipped.append(tried)
            return tried.moved_on(Status.SKIPPED, last_error=reason)
        if self.dry_run:
            report.would_send.append((tried, {"Subject": f"publish {meeting.uid} (sequence {meeting.sequence})"}))
            return tried
        try:
            if meeting.cancelled:
                publisher.cancel(group, meeting)
            else:
                publisher.publish(group, meeting, shared_event(self.config, group, meeting))
        except SendError as exc:
            if self.stop:
                return self._interrupted(replace(tried, attempts=tried.attempts - 1), exc, now, where)
            if exc.setup or _calendar_setup(exc):
                return self._hold(tried, exc, now, report, where)
            self.held.pop(tried.channel, None)
            return self._failed(tried, str(exc), exc.transient, now, report, where)
        self.held.pop(tried.channel, None)
        event("published", uid=meeting.uid, sequence=meeting.sequence, **where)
        report.sent.append(tried)
        return tried.moved_on(Status.SENT, sent_at=now, last_error=None, next_attempt=None)

    def _interrupted(self, record: OutboxRecord, exc: SendError, now: datetime,
                     where: dict[str, Any]) -> OutboxRecord:
        """SIGTERM cut the exchange (or it failed as the process was stopping): the message goes
        back as it was, not failed, no attempt counted, no channel held, and is sent again after
        a restart with the same Message-ID. A server that had already taken it drops the
        duplicate by that Message-ID; one that refused it will say so again."""
        event("send interrupted: friendtor is stopping; it stays pending", logging.WARNING, error=str(exc), **where)
        return _untouched(record, now)

    def _is_held(self, channel: str, now: datetime) -> bool:
        return channel in self.held and now < self.held[channel][1]

    def _hold(self, tried: OutboxRecord, exc: SendError, now: datetime, report: TickReport,
              where: dict[str, Any]) -> OutboxRecord:
        """A setup error: the message is fine, the way out is not. Hold the channel back with
        backoff (5 minutes, doubling, up to 6 hours), so a wrong password is tried once per
        hold, not once per message (which also gets accounts locked), and a silent server
        costs one timeout, not one per message. The message stays pending with the others (a
        restart or a config reload tries them at once), and nothing is reported to the
        coordinators, whose email would go the same broken way: the log says what the operator
        must fix, and `status` shows it on the message. A setup error never fails a message;
        retry_days still counts from when it was planned, so a message refused on its own after
        a long hold is failed at once."""
        channel = tried.channel
        errors = self.held[channel][0] + 1 if channel in self.held else 1
        until = now + retry_delay(errors)
        self.held[channel] = (errors, until, tried.sid)
        event("sending held back until the server or the setup is fixed", logging.ERROR, channel=channel,
              error=str(exc), retry_at=iso(until), **where)
        report.held.append(tried)
        return tried.moved_on(Status.PENDING, last_error=str(exc), next_attempt=None)

    def _failed(self, tried: OutboxRecord, error: str, transient: bool, now: datetime, report: TickReport,
                where: dict[str, Any]) -> OutboxRecord:
        give_up = tried.created + timedelta(days=self.config.service.retry_days)
        if transient and now < give_up:
            nxt = now + retry_delay(tried.attempts)
            event("send failed, will retry", logging.WARNING, error=error, retry_at=iso(nxt), **where)
            report.retrying.append(tried)
            return tried.moved_on(Status.RETRY, last_error=error, next_attempt=nxt)
        event("send failed", logging.ERROR, error=error, **where)
        failed = tried.moved_on(Status.FAILED, last_error=error, next_attempt=None)
        # With its error: the tick has the coordinators' alerts planned from report.failed.
        report.failed.append(failed)
        return failed


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


def _untouched(record: OutboxRecord, now: datetime) -> OutboxRecord:
    """A send of the batch that was not attempted: back to the status it had before the batch
    (one interrupted in an earlier run, "sending" then, is pending again)."""
    return record.moved_on(Status.PENDING if record.status == Status.SENDING else record.status, updated=now)
