"""One tick: reload the config if it changed, take in what was handed over, plan, record,
deliver, forget what is old. The tick owns no sending and no intake itself: delivery.py
sends, handover.py takes in, the planner decides. `service.serve` runs ticks forever.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from scheduler.app.delivery import Delivery
from scheduler.app.handover import Handover
from scheduler.app.store import iso
from scheduler.app.stores import StateStore
from scheduler.app.templates import load_templates
from scheduler.app.watcher import ConfigWatcher
from scheduler.core import crossgroup
from scheduler.core.availability import Availability
from scheduler.core.config import Config, Group
from scheduler.core.cycles import Window
from scheduler.core.errors import FriendtorError, StateUnavailable
from scheduler.core.log import event
from scheduler.core.meetings import Meeting
from scheduler.core.alerts import GroupProblem, failure_alerts
from scheduler.core.outbox import OutboxRecord, Send
from scheduler.core.planner import Plan, StateView, plan
from scheduler.core.ports import (AvailabilityReader, Publisher, PublishersFactory, ReplyInbox, Transport,
                                  TransportFactory)


@dataclass
class TickReport:
    now: datetime
    meetings: list[Meeting] = field(default_factory=list)
    planned: list[Send] = field(default_factory=list)
    sent: list[OutboxRecord] = field(default_factory=list)
    failed: list[OutboxRecord] = field(default_factory=list)     # with the error that failed them
    retrying: list[OutboxRecord] = field(default_factory=list)
    skipped: list[OutboxRecord] = field(default_factory=list)
    held: list[OutboxRecord] = field(default_factory=list)       # not tried: their way out is held back
    # Groups that could not be planned this tick (the others were); see planner.plan.
    group_problems: list[GroupProblem] = field(default_factory=list)
    # Dry run: each record and the message it would be (a publish: {"Subject": what it would do}).
    would_send: list[tuple[OutboxRecord, Any]] = field(default_factory=list)


def _no_publishers(config: Config) -> dict[str, Publisher]:
    return {}


class Runner:
    """The service's state between ticks: the config in force, the store, delivery and intake."""

    def __init__(self, watcher: ConfigWatcher, store: StateStore, transport_factory: TransportFactory, *,
                 availability: AvailabilityReader, dry_run: bool = False,
                 publishers_factory: PublishersFactory = _no_publishers, inbox: ReplyInbox | None = None):
        self.watcher = watcher
        self.store = store
        self.transport_factory = transport_factory
        self.publishers_factory = publishers_factory
        self.availability = availability
        self.dry_run = dry_run
        config = lambda: self.config  # noqa: E731 (read at each use: a reload replaces it)
        first = watcher.config
        self.delivery = Delivery(store, config, self.commit, transport=transport_factory(first),
                                 publishers={} if dry_run else publishers_factory(first),
                                 # compiled once, not per tick
                                 templates=load_templates(first.folder / "templates", first.service.limits),
                                 dry_run=dry_run)
        # The intake reads the config as written: a `done: N` is read against the goals in the
        # config and the items in the state (core.goals.open_goals), not a merge of both.
        self.handover = Handover(store, lambda: self.watcher.config, self.commit, inbox)

    @property
    def config(self) -> Config:
        """The config in force, with the members' items from replies merged in (core.goals)."""
        return self.store.replies.merged(self.watcher.config)

    # The ways out live in delivery; these let the CLI's signal handler and tests reach them.
    @property
    def stop(self) -> bool:
        return self.delivery.stop

    @stop.setter
    def stop(self, value: bool) -> None:
        self.delivery.stop = value

    @property
    def transport(self) -> Transport:
        return self.delivery.transport

    @transport.setter
    def transport(self, value: Transport) -> None:
        self.delivery.transport = value

    def _adopt(self, config: Config) -> None:
        """Build everything a new config needs (transport, publishers, templates) before it takes
        over; if any of it fails, the error propagates and the last good config stays in force."""
        transport = self.transport_factory(config)
        publishers = {} if self.dry_run else self.publishers_factory(config)
        self.delivery.adopt(transport, publishers, load_templates(config.folder / "templates", config.service.limits))

    # --- plan -----------------------------------------------------------------------------

    def view(self, now: datetime) -> StateView:
        # Live views of the Store's indexes, not copies: the planner reads them before anything
        # is recorded, and copying a long-running outbox every tick is what made ticks slow. Of
        # the outbox, only what the planner may ask about at `now` (core/recorded.py): a
        # database reads that, not every send kept.
        return StateView(self.store.meetings(), self.store.planned_at(now), self.store.invited_at(now),
                         self.store.alerts())

    def _availability_fn(self) -> Callable[[Group, Window], Mapping[str, Availability]]:
        """Availability for the planner, each window read once per tick."""
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
            return cache[key]
        return read

    def record_plan(self, p: Plan, now: datetime) -> None:
        for m in p.meetings:
            self.store.save_meeting(m)
            # A dry run keeps nothing: its log says what a real tick would do, never that it did.
            event("meeting would be scheduled" if self.dry_run else "meeting scheduled", group=m.group,
                  cycle=m.cycle, start=iso(m.start), uid=m.uid)
        for group, cycle, day in p.alerts:
            self.store.note_alert(group, cycle, day)
            event(f"no time reaches quorum; coordinators {'would be ' if self.dry_run else ''}alerted", logging.WARNING,
                  group=group, cycle=cycle)
        for group, kind, start, end in p.reviews:
            self.store.note_review(group, kind, start, end)
        for problem in p.problems:
            event("calendars not readable until fixed", logging.ERROR, group=problem.group,
                  members=len(problem.members), error=problem.reason)
        for gp in p.group_problems:
            # Every tick while it lasts (the operator must see it); the coordinators hear of it once.
            event("group not planned, the other groups were", logging.ERROR, group=gp.group, error=gp.reason)
            logging.getLogger("friendtor").debug("group %s not planned:\n%s", gp.group, gp.detail)
        self.record_sends(p.sends, now)

    def record_sends(self, sends: tuple[Send, ...], now: datetime) -> None:
        self.store.add_sends(OutboxRecord.planned(s, self.config.groups[s.group], now) for s in sends)

    # --- the tick -------------------------------------------------------------------------

    def tick(self, now: datetime) -> TickReport:
        if now.tzinfo is None:
            raise ValueError("now must be aware")
        self.watcher.refresh(self._adopt)
        report = TickReport(now)
        if not self.dry_run:
            self.handover.ingest(now)
            self.handover.guest_answers(now, self.delivery.publishers)
        mine = self._groups_to_plan()   # first: the view is read once the groups are this node's
        p = plan(mine, self.view(now), now, self._availability_fn(), alert_calendars=not self.dry_run)
        if self.stop:  # SIGTERM cut calendar reads mid-plan: a plan on them is not to be kept
            return report
        report.meetings, report.planned = list(p.meetings), list(p.sends)
        report.group_problems = list(p.group_problems)
        self.record_plan(p, now)
        if not self.dry_run:
            self.commit()
            # Groups another node was planning: their sends are shared too, so wait for that
            # plan's commit (a moment) rather than leave the other node to send them all.
            others = [gid for gid in self.config.groups if gid not in mine.groups]
            if others:
                self.store.wait_for_planners(others)
                self.commit()
        self.delivery.deliver(now, report)
        # Sends that failed for good: their group's coordinators hear of it (sent next tick),
        # once: the store is asked which of these alerts it has, not for every key on record.
        if report.failed:
            alerts = failure_alerts(self.config, report.failed, frozenset(), now)
            known = self.store.on_record(s.sid for s in alerts)
            self.record_sends(tuple(s for s in alerts if s.sid not in known), now)
        if not self.dry_run:
            forgotten = self.store.prune(now, timedelta(days=self.config.service.keep_days))
            if forgotten:
                event("old sends forgotten", count=forgotten)
            self.commit()
        return report

    def _groups_to_plan(self) -> Config:
        """The config in force, with the groups no other node is planning now (a TinyDB state has
        one owner: all of them), groups that share members claimed together (each sees the
        others' meetings as busy time). The claim lasts until the commit that records the plan."""
        config = self.config
        mine = self.store.claim_groups(crossgroup.sharing_sets(config))
        if len(mine) == len(config.groups):
            return config
        return config.model_copy(update={"groups": {gid: config.groups[gid] for gid in mine}})

    def commit(self) -> None:
        try:
            self.store.commit()
        except StateUnavailable:
            # The database went away: what was not committed is gone with the connection, so
            # the tick stops here rather than send on a claim it could not record; the service
            # waits for the database (service.serve), and leases left behind expire.
            raise
        except FriendtorError as exc:
            # Nothing is lost while the process lives: the state stays in memory and the next
            # commit tries again. The operator has to act (disk full, permissions).
            event("state not saved", logging.ERROR, error=str(exc))
