"""The coordinator's changes to meetings: `attendance`, `reschedule` and `cancel`.

Each is checked here against the stored meeting, then stored in the state, or, while the
running service holds the lock, handed over to it through `<state dir>/incoming/`."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

from scheduler.cli.arguments import group_of, load, local_time_text, parse_date
from scheduler.core.config import Config, Group, Member
from scheduler.core.errors import UsageError
from scheduler.core.gatherings import conference_of, is_gathering
from scheduler.core.meetings import Meeting


def cmd_attendance(args: argparse.Namespace) -> int:
    from scheduler.app.handover import store_attendance, store_or_hand_over
    from scheduler.app.stores import describe, has_state, open_store

    day = parse_date(args.date, "DATE")
    config = load(args)
    group = group_of(config, args.group)
    present = [e.strip().lower() for e in args.present]
    absent = [e.strip().lower() for e in args.absent]
    if not present and not absent:
        raise UsageError("name who came with --present EMAIL... and who did not with --absent EMAIL...")
    strangers = [e for e in present + absent if group.member(e) is None]
    if strangers:
        raise UsageError(f"{', '.join(strangers)}: not a member of {group.id}; members: "
                         + ", ".join(m.email for m in group.members))
    both = sorted(set(present) & set(absent))
    if both:
        raise UsageError(f"{', '.join(both)}: listed both --present and --absent; keep one")
    if not has_state(config):
        raise UsageError(f"{describe(config)}: no state yet, so no meeting to record; the service has not run")
    with open_store(config, lock=False) as reader:
        meetings = {m.start.astimezone(group.tz).date(): m for (g, _), m in reader.meetings().items()
                    if g == group.id and not m.cancelled}
    meeting = meetings.get(day)
    if meeting is None:
        known = ", ".join(d.isoformat() for d in sorted(meetings)) or "none yet"
        raise UsageError(f"{group.id} had no meeting on {day} ({group.timezone}); meetings: {known}")
    now = datetime.now(UTC)
    if meeting.end > now:
        raise UsageError(f"{group.id}'s meeting of {day} has not happened yet (it ends "
                         f"{_local_end(meeting, group)}); record who came once it is over")
    record = {"group": group.id, "cycle": meeting.cycle, "present": present, "absent": absent}
    n = len(present) + len(absent)
    where = store_or_hand_over(config, "attendance", record, lambda store: store_attendance(store, record, now), now)
    print(f"{group.name}, meeting of {day}: {len(present)} present, {len(absent)} absent; {n} records {where}")
    return 0


def _local_end(meeting: Meeting, group: Group) -> str:
    return f"{meeting.end.astimezone(group.tz):%a %d %b %Y %H:%M} {group.timezone}"


def cmd_change_meeting(args: argparse.Namespace) -> int:
    """`reschedule` and `cancel`: checked here, applied by the store or the running service."""
    from scheduler.app import changes
    from scheduler.app.handover import decision_time, store_or_hand_over
    from scheduler.app.stores import describe, has_state, open_store

    if args.command == "reschedule":
        local_time_text(args.to, "--to")
    config = load(args)
    group = group_of(config, args.group)
    if not has_state(config):
        raise UsageError(f"{describe(config)}: no state yet, so no meeting to change; the service has not run")
    now = datetime.now(UTC)
    with open_store(config, lock=False) as reader:
        path = reader.path   # where changes wait for a running service (a TinyDB state only)
        meetings = dict(reader.meetings())
    meeting = changes.pick_meeting(group, meetings, args.cycle, now)
    if args.command == "reschedule":
        conference = conference_of(config, meeting.cycle)
        if is_gathering(meeting.cycle) and conference is None:
            raise UsageError(f"--cycle {meeting.cycle}: its conference is no longer in service.toml; "
                             f"`friendtor cancel {group.id} --cycle {meeting.cycle}` withdraws the gathering")
        start = changes.local_start(group, args.to, now, conference.timezone if conference else None)
        changes.within_cycle(group, meeting, start, conference)
        if start == meeting.start:
            raise UsageError(f"--to: the {meeting.cycle} meeting already starts then; nothing to change")
        after = meeting.moved(start, start + (meeting.end - meeting.start), now)
        clash = changes.collisions(config, group, meetings, meeting, after.start, after.end)
        if clash and not args.force:
            raise UsageError(f"--to: {args.to} collides with {clash}; pick another time (`friendtor slots "
                             f"{group.id}` shows them) or add --force")
        if clash:
            print(f"warning: collides with {clash} (--force)")
        # A gathering is in person, away from home: members' hours and calendars say nothing about it.
        absent = [] if conference else _who_cannot_come(config, group, after.start, after.end)
        blocked = [(member, reason) for member, status, reason in absent
                   if member.required and status == "unavailable"]
        if blocked and not args.force:
            raise UsageError(f"--to: {args.to}: required {_names(blocked)} cannot come; pick another time "
                             f"(`friendtor slots {group.id}` ranks them) or add --force")
    else:
        start, after, absent = None, meeting.cancel(now), []
    decided = decision_time(now, meeting, path)
    record = changes.change_record(args.command, meeting, decided, start)

    def store_it(store) -> None:
        result = changes.apply_change(store, record, now)
        if isinstance(result, str):
            raise UsageError(f"{group.id} {meeting.cycle}: not changed: {result}")

    where = store_or_hand_over(config, "meeting", record, store_it, decided)
    conference = conference_of(config, meeting.cycle)
    zone = conference.timezone if conference else None
    print(f"{changes.describe(group, meeting, after, zone)}; {where}. Members who were invited get "
          f"{'the cancellation' if after.cancelled else 'the new time'} at the next tick.")
    warning = changes.lead_warning(after.start, now) if not after.cancelled else None
    if warning:
        print(f"note: {warning}")
    for member, status, reason in absent:
        what = "cannot come" if status == "unavailable" else "may not come"
        print(f"{'warning' if status == 'unavailable' else 'note'}: {'required ' if member.required else ''}"
              f"{member.name} <{member.email}> {what} at the new time: {reason}")
    return 0


def _who_cannot_come(config: Config, group: Group, start: datetime, end: datetime) -> list[tuple[Member, str, str]]:
    """(member, status, reason) for each member the slot finder marks unavailable (or only
    tentative: a tentative event, an unreadable calendar) at [start, end), from their calendars,
    hours, working days, holidays and time away, as `slots` shows them."""
    from scheduler.cli import wiring
    from scheduler.core.slots import verdicts_at

    # A day either side, as `slots` reads whole local days: an all-day event or a long busy
    # span that began the day before still counts.
    availability = wiring.group_availability(config, group, start - timedelta(days=1), end + timedelta(days=1))
    verdicts = {v.email: v for v in verdicts_at(group, start, availability)}
    return [(m, verdicts[m.email].status, verdicts[m.email].reason) for m in group.members
            if verdicts[m.email].status != "available"]


def _names(pairs: list[tuple[Member, str]]) -> str:
    return "; ".join(f"{member.name} <{member.email}> ({reason})" for member, reason in pairs)
