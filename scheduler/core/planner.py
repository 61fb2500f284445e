"""The planner: every message that should have gone out by `now` and has not. Pure.

Given the config, a view of the stored state, `now` and a way to read availability, it returns new
meeting records and sends. It reads no clock and does no I/O; availability is a function the caller
supplies (the service reads calendars, tests pass a dict), called only for a group choosing a time.

Each send has a deterministic key (`agenda:k-club:2026-12`) and goes to one recipient; a key and
recipient already in the outbox, in any state, is never planned again: that makes a tick idempotent,
and a restart after any downtime safe.

Misfire rules (what happens to something whose time has passed):
- invite: planned from `invite_days_before` the cycle window opens until 24 hours before the
  window's last possible start; a window that closed while the service was down gets no meeting
  (the coordinators hear about the next one as usual).
- no time reaches quorum: the coordinators are alerted, at most once a day per cycle, and the
  search runs again the next day until the window closes.
- call for items: from `call_days_before` the meeting (0: none) until the agenda is due; never after.
- agenda: from `agenda_days_before` the meeting until it starts; never after it started.
- follow-up: from `follow_up_days_after` the meeting ended, for 7 days; then skipped.
- goal nudge: from `nudge_days_before` the due date (09:00, member's zone) to the due date's end.
- mission review and year-end prompt (none in a group's first six months): from 09:00 (group's zone)
  on their date, for 14 days.
- coordinators' report: from 09:00 (group's zone) on the 1st of each month, for 7 days; none for
  the month the group started in. It carries the next window's heatmap, and each alert its own
  window's (drawn at send time from the stored grid).
- gathering (docs/groups.md): from 09:00 (group's zone) `gathering_days_before` the conference
  opens until a day before the gathering; its updates and cancellation as for a meeting.
- nothing is ever sent twice to catch up: each key is planned once.

Groups are planned one after another in `crossgroup.planning_order` (by id); a group's
members who are in other groups are busy at those groups' meetings, stored or planned earlier
in this tick, and a member in several groups gets one call for items a week (`crossgroup`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cached_property

from scheduler.core.availability import Availability
from scheduler.core.config import Config, Group, Member
from scheduler.core.cycles import Window, cycle_of, first_day, next_key, window
from scheduler.core.meetings import Meeting, by_group, meeting_uid
from scheduler.core.alerts import CalendarProblem, GroupProblem, calendar_alerts, group_alerts
# The misfire windows, add_months and candidate_payload are known from here too.
from scheduler.core.outbox import (FOLLOW_UP_GRACE, LOOKBACK, REPORT_GRACE, REVIEW_GRACE, Addressee, Kind,  # noqa: F401
    MeetingPayload, NoQuorumPayload, NudgePayload, Payload, PeriodPayload, ReportPayload, Send, add_months, candidate_payload, midnight)
from scheduler.core.history import Burden, Usual, recent_burden, usual_time
from scheduler.core.slots import find_slots
from scheduler.core import crossgroup, gatherings
from scheduler.core.prompts import SEND_AT, YEAR_END_AFTER_MONTHS, plan_nudges, plan_reviews  # noqa: F401
from scheduler.core.prompts import plan_reports as _plan_reports
from scheduler.core.recorded import Recorded

LEAD = timedelta(hours=24)          # an invite gives members at least a day's notice

AvailabilityFn = Callable[[Group, Window], Mapping[str, Availability]]


@dataclass(frozen=True)
class StateView:
    """What the planner needs from the state: read-only views of the store's indexes (copying
    them every tick would cost more than planning), which do not change while the planner runs.
    `planned` and `invited` need cover only the outbox records the planner may still ask about
    at the tick's `now` (core/recorded.py): a database hands those, not its whole history."""

    meetings: Mapping[tuple[str, str], Meeting]
    planned: Recorded                                         # sids already in the outbox
    invited: Mapping[str, Mapping[str, tuple[str, str, str | None]]]  # invite key -> email -> (name, zone, sent)
    alerts: Mapping[tuple[str, str], date]

    @classmethod
    def empty(cls) -> StateView:
        return cls({}, frozenset(), {}, {})

    @cached_property
    def meetings_by_group(self) -> Mapping[str, list[Meeting]]:
        return by_group(self.meetings)


@dataclass(frozen=True)
class Plan:
    meetings: tuple[Meeting, ...] = ()
    sends: tuple[Send, ...] = ()
    alerts: tuple[tuple[str, str, date], ...] = ()
    reviews: tuple[tuple[str, str, date, date], ...] = ()
    problems: tuple[CalendarProblem, ...] = ()   # found in the calendars read for this plan
    # Groups that could not be planned (a bug, an overflow): nothing of theirs is in this plan.
    group_problems: tuple[GroupProblem, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.meetings or self.sends or self.alerts or self.reviews)


def plan(config: Config, state: StateView, now: datetime, availability: AvailabilityFn, *,
         alert_calendars: bool = True) -> Plan:
    """What is due at `now`. Calendars found unreadable until someone acts are in the plan's
    `problems` and, with `alert_calendars` (not in a dry run), alerted to the coordinators.

    Each group is planned on its own: whatever goes wrong while planning one group (any
    exception, a bug included) costs that group's plan only. The group is in the plan's
    `group_problems`, none of its half-planned meetings or sends is kept, and (with
    `alert_calendars`) its coordinators are alerted once per distinct problem."""
    if now.tzinfo is None:
        raise ValueError("now must be aware")
    out = _Builder(state, config)
    for gid in crossgroup.planning_order(config):
        group = config.groups[gid]
        mine = _Builder(state, config, out.shares, out.meetings)
        try:
            _plan_one(config, group, state, now, _seeing_others(group, availability, mine), mine, alert_calendars)
        except Exception as exc:  # noqa: BLE001 (contained: this group's plan only, never the tick)
            problem = GroupProblem.of(group.id, exc)
            out.group_problems.append(problem)
            if alert_calendars:
                for s in group_alerts(group, problem, now):
                    out.add(s)
            continue
        out.merge(mine)
    return out.result()


def _plan_one(config: Config, group: Group, state: StateView, now: datetime, availability: AvailabilityFn,
              out: _Builder, alert_calendars: bool) -> None:
    reads: dict[tuple[date, ...], Mapping[str, Availability]] = {}

    def read(g: Group, w: Window) -> Mapping[str, Availability]:
        found = availability(g, w)
        reads.setdefault(w.dates, found)  # each window's problems once, however often it is read
        return found

    _plan_group(config, group, state, now, read, out)
    if alert_calendars:
        for found in reads.values():
            problems, sends = calendar_alerts(group, found, now)
            out.problems.extend(problems)
            for s in sends:
                out.add(s)


def _seeing_others(group: Group, availability: AvailabilityFn, out: _Builder) -> AvailabilityFn:
    """`availability` with the meetings of the groups `group` shares members with (stored, and
    planned earlier in this tick) as busy time for those members; unchanged for a group that
    shares nobody."""
    if group.id not in out.shares:
        return availability

    def read(g: Group, w: Window) -> Mapping[str, Availability]:
        lo, hi = midnight(w.first - timedelta(days=1), g.tz), midnight(w.last + timedelta(days=2), g.tz)
        busy = crossgroup.busy_elsewhere(out.config, g, out.others(g), lo, hi, shares=out.shares)
        return crossgroup.with_busy(availability(g, w), busy)
    return read


class _Builder:
    def __init__(self, state: StateView, config: Config, shares: Mapping[str, Mapping[str, frozenset[str]]] | None = None,
                 made: list[Meeting] | None = None):
        self.state = state
        self.config = config
        self.shares = crossgroup.shared_with(config) if shares is None else shares
        self.made = made if made is not None else []   # meetings planned for the groups before this one
        self.meetings: list[Meeting] = []
        self.sends: dict[str, Send] = {}
        self.alerts: list[tuple[str, str, date]] = []
        self.reviews: list[tuple[str, str, date, date]] = []
        self.new_alerts: list[str] = []  # sids of the alerts planned for the group being planned
        self.problems: list[CalendarProblem] = []
        self.group_problems: list[GroupProblem] = []

    def send(self, kind: Kind, key: str, group: Group, who: Member | Addressee, at: datetime,
             payload: Payload) -> None:
        self.add(Send(key, kind, group.id, who.email, who.name, who.timezone, at, payload))

    def add(self, s: Send) -> None:
        if s.sid not in self.state.planned and s.sid not in self.sends:
            self.sends[s.sid] = s
            if isinstance(s.payload, NoQuorumPayload):
                self.new_alerts.append(s.sid)

    def others(self, group: Group) -> list[Meeting]:
        """The meetings of the groups `group` shares members with: stored, and planned this tick."""
        mine = self.shares.get(group.id, {})
        return ([m for gid in mine for m in self.state.meetings_by_group.get(gid, ())]
                + [m for m in self.made if m.group in mine])

    def merge(self, other: _Builder) -> None:
        """Take in one group's plan, made in a builder of its own so that a failure drops it whole."""
        self.meetings += other.meetings
        self.alerts += other.alerts
        self.reviews += other.reviews
        self.problems += other.problems
        for s in other.sends.values():
            self.sends.setdefault(s.sid, s)

    def result(self) -> Plan:
        return Plan(*(tuple(x) for x in (self.meetings, self.sends.values(), self.alerts, self.reviews,
                                         self.problems, self.group_problems)))


def _plan_group(config: Config, group: Group, state: StateView, now: datetime,
                availability: AvailabilityFn, out: _Builder) -> None:
    today = now.astimezone(group.tz).date()
    horizon = today + timedelta(days=group.meetings.invite_days_before) + LOOKBACK
    key = cycle_of(group, today - LOOKBACK)
    while True:
        w = window(group, key)
        # Cycles before the group started hold no meeting (a window half-way through is trimmed).
        w = Window(w.key, tuple(d for d in w.dates if d >= group.started))
        if w.dates:
            if w.first > horizon:
                break
            _plan_cycle(config, group, w, state, now, availability, out)
        elif first_day(group, key) > horizon:
            break
        key = next_key(group, key)
    _plan_gatherings(config, group, state, now, out)
    plan_nudges(group, now, out)
    plan_reviews(group, now, out)
    _plan_reports(group, state, now, availability, out)


def _plan_cycle(config: Config, group: Group, w: Window, state: StateView, now: datetime,
                availability: AvailabilityFn, out: _Builder) -> None:
    tz = group.tz
    meeting = state.meetings.get((group.id, w.key))
    if meeting is None:
        opens = midnight(w.first, tz) - timedelta(days=group.meetings.invite_days_before)
        closes = midnight(w.last + timedelta(days=1), tz)
        if not (opens <= now and now + LEAD < closes):
            return
        today = now.astimezone(tz).date()
        if state.alerts.get((group.id, w.key)) == today:
            return  # already searched and alerted today; try again tomorrow
        earliest = now + LEAD
        remaining = Window(w.key, tuple(d for d in w.dates if midnight(d + timedelta(days=1), tz) > earliest))
        options = find_slots(group, remaining, availability(group, remaining), not_before=earliest, top=3,
                             distinct=True, burden=past_burden(group, state, earliest),
                             usual=past_usual(group, state, earliest))
        viable = [c for c in options if c.viable]
        if viable:
            best = viable[0]
            meeting = Meeting(group.id, w.key, meeting_uid(group.id, w.key, config.service.mail.sender), 0,
                              best.start, best.end, stamp=now)
            out.meetings.append(meeting)
        else:
            out.alerts.append((group.id, w.key, today))
            for m in group.members:
                if m.email in group.coordinators:
                    out.send(Kind.ALERT, f"alert:{group.id}:{w.key}:{today.isoformat()}", group, m, now,
                             NoQuorumPayload(w.key, remaining.dates, tuple(candidate_payload(c) for c in options)))
            return
    if meeting.cancelled:
        _plan_cancelled(group, meeting, state, now, out, config.service.publish)
        return
    _plan_meeting(group, meeting, state, now, out, config.service.publish)


def past_burden(group: Group, state: StateView, before: datetime) -> Burden:
    """Each member's recent burden of inconvenient times, from the group's meetings (not cancelled) before `before`."""
    return recent_burden(group, [(m.start, m.end) for m in _held_before(group, state, before)])


def past_usual(group: Group, state: StateView, before: datetime) -> Usual | None:
    """When the group usually meets, from its meetings in the state that started before `before`."""
    return usual_time(group, [m.start for m in _held_before(group, state, before)])


def _held_before(group: Group, state: StateView, before: datetime) -> list[Meeting]:
    return [m for m in state.meetings_by_group.get(group.id, ())
            if not m.cancelled and m.start < before and not gatherings.is_gathering(m.cycle)]


def _plan_meeting(group: Group, meeting: Meeting, state: StateView, now: datetime, out: _Builder,
                  publish: tuple[str, ...] = ("email",), invitees: tuple[Member, ...] | None = None) -> None:
    """A meeting's invites, updates and the emails around it. A gathering (`invitees`: those
    attending) has its own invite kind and no call, agenda or follow-up."""
    g, c = group.id, meeting.cycle
    gathering = invitees is not None
    members = group.members if invitees is None else invitees
    if meeting.start > now:
        invite_key = f"invite:{g}:{c}"
        if "email" in publish:
            for m in members:  # a member added after the invites went out gets one too
                out.send(Kind.GATHERING if gathering else Kind.INVITE, invite_key, group, m, meeting.stamp,
                         MeetingPayload(c))
        for target in publish:
            if target != "email":  # one "send" per calendar, keyed by SEQUENCE: a move publishes again
                calendar = Addressee(target, target, group.timezone)
                out.send(Kind.PUBLISH, f"publish:{g}:{c}:{meeting.sequence}", group, calendar, meeting.stamp,
                         MeetingPayload(c))
        invited = state.invited.get(invite_key, {})
        if meeting.moved_from is not None and "email" in publish:
            # Moved by a coordinator: whoever had the invite before the move gets the new time (one
            # update per move, keyed by SEQUENCE). An invite sent since, or still waiting, carries
            # the new time itself; a member re-invited after leaving gets the re-invite instead.
            for m in members:
                if (_had_it_before(invited.get(m.email), meeting.stamp)
                        and f"uninvite:{g}:{c}|{m.email}" not in state.planned):
                    out.send(Kind.UPDATE, f"update:{g}:{c}:{meeting.sequence}", group, m, meeting.stamp,
                             MeetingPayload(c, sequence=meeting.sequence))
        current = {m.email for m in members}
        for email, (name, zone, _) in sorted(invited.items()):
            if email not in current:  # removed from the group (or the conference): out of their calendar
                out.send(Kind.CANCEL, f"uninvite:{g}:{c}", group, Addressee(name, email, zone), now,
                         MeetingPayload(c))
        if "email" in publish:
            for m in members:
                # Removed and then added back: their copy was cancelled, so invite them again with a
                # SEQUENCE above the cancellation's (once per meeting; see docs/operations.md).
                if f"uninvite:{g}:{c}|{m.email}" in state.planned:
                    out.send(Kind.GATHERING if gathering else Kind.INVITE, f"reinvite:{g}:{c}", group, m, now,
                             MeetingPayload(c, bump=2))
    if gathering:
        return
    agenda_at = meeting.start - timedelta(days=group.meetings.agenda_days_before)
    call_at = meeting.start - timedelta(days=group.meetings.call_days_before)
    if group.meetings.call_days_before and call_at <= now < min(agenda_at, meeting.start):
        others = out.others(group)
        for m in group.members:  # answers must reach the agenda: never once it is due
            also = crossgroup.combined_call(out.config, group, meeting, m.email, call_at, others, out.shares)
            if also is not None:  # None: another group's call this week names this meeting
                out.send(Kind.CALL, f"call:{g}:{c}", group, m, call_at, MeetingPayload(c, also=also))
    if agenda_at <= now < meeting.start:
        for m in group.members:
            out.send(Kind.AGENDA, f"agenda:{g}:{c}", group, m, agenda_at, MeetingPayload(c))
    follow_at = meeting.end + timedelta(days=group.meetings.follow_up_days_after)
    if follow_at <= now < follow_at + FOLLOW_UP_GRACE:
        for m in group.members:
            out.send(Kind.FOLLOW_UP, f"follow-up:{g}:{c}", group, m, follow_at, MeetingPayload(c))


def _plan_gatherings(config: Config, group: Group, state: StateView, now: datetime, out: _Builder) -> None:
    """A gathering at each conference enough members attend (see core/gatherings.py)."""
    for conference in config.service.conferences:
        c, who = gatherings.cycle_of(conference), gatherings.attendees(group, conference)
        meeting = state.meetings.get((group.id, c))
        if meeting is None and len(who) < group.gathering_min:
            continue
        if meeting is None:  # one scheduled is kept for those still going, however few
            start = gatherings.proposed_start(group, conference)
            if not (gatherings.email_due(group, conference) <= now and now + LEAD < start):
                continue
            meeting = Meeting(group.id, c, meeting_uid(group.id, c, config.service.mail.sender), 0, start,
                              start + timedelta(minutes=group.meetings.duration_minutes), stamp=now)
            out.meetings.append(meeting)
        if meeting.cancelled:
            _plan_cancelled(group, meeting, state, now, out, ())
        else:
            _plan_meeting(group, meeting, state, now, out, ("email",), invitees=who)


def _had_it_before(entry: tuple[str, str, str | None] | None, stamp: datetime) -> bool:
    """Whether an invite (an `invited` entry) reached its member before `stamp`."""
    return entry is not None and entry[2] is not None and datetime.fromisoformat(entry[2].replace("Z", "+00:00")) < stamp


def _plan_cancelled(group: Group, meeting: Meeting, state: StateView, now: datetime, out: _Builder,
                    publish: tuple[str, ...]) -> None:
    """A meeting a coordinator cancelled: a cancellation to every member it was sent to, and out
    of each shared calendar it was put in; nothing once it would have started."""
    if meeting.start <= now:
        return
    g, c = group.id, meeting.cycle
    invited = state.invited.get(f"invite:{g}:{c}", {})
    # Everyone whose calendar has it: members (a member who left and came back holds the
    # re-invite), and those who left since, unless their own copy was cancelled already. An
    # invite that never went out needs no cancellation.
    for email, (name, zone, sent) in sorted(invited.items()):
        member = group.member(email)
        if sent is not None and (member is not None or f"uninvite:{g}:{c}|{email}" not in state.planned):
            who = member or Addressee(name, email, zone)
            out.send(Kind.CANCEL, f"cancel:{g}:{c}", group, who, meeting.stamp, MeetingPayload(c))
    for target in publish:
        published = any(f"publish:{g}:{c}:{s}|{target}" in state.planned for s in range(meeting.sequence))
        if target != "email" and published:
            calendar = Addressee(target, target, group.timezone)
            out.send(Kind.PUBLISH, f"publish:{g}:{c}:{meeting.sequence}", group, calendar, meeting.stamp,
                     MeetingPayload(c))
