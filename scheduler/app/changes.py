"""A coordinator moves or cancels a scheduled meeting (`friendtor reschedule`, `friendtor cancel`).

The command checks everything it can before anything is stored, then records the change in
the state, or, while the service runs, hands it over through `<state dir>/incoming/` like
attendance. Either way the meeting keeps its UID with a higher SEQUENCE, and the planner
does the rest at the next tick: an update (or a cancellation) to every member who was
invited, and the shared calendars published again.

A change carries the moment it was decided, which becomes the meeting's stamp (the
invite's DTSTAMP). A change decided no later than the meeting's current version is ignored:
so one applied twice (a crash between storing it and removing the hand-over file), or an
older one arriving after a newer, never undoes anything; the coordinator's last word wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.core.config import Conference, Config, Group
from scheduler.core.crossgroup import clashes
from scheduler.core.gatherings import attends, conference_of, is_gathering
from scheduler.core.cycles import first_day, next_key
from scheduler.core.errors import UsageError
from scheduler.core.meetings import Meeting
from scheduler.app.store import Store, iso, parse_iso

ACTIONS = ("reschedule", "cancel")


def pick_meeting(group: Group, meetings: Mapping[tuple[str, str], Meeting], cycle: str | None,
                 now: datetime) -> Meeting:
    """The meeting to change: the one of `cycle`, or the group's next one. It must not have
    started or been cancelled."""
    mine = {c: m for (g, c), m in meetings.items() if g == group.id}
    upcoming = sorted((m for m in mine.values() if not m.cancelled and m.start > now), key=lambda m: m.start)
    listed = ", ".join(m.cycle for m in upcoming) or "none"
    # Without --cycle, the next regular meeting: a gathering is changed by naming it.
    upcoming = [m for m in upcoming if not is_gathering(m.cycle)] if cycle is None else upcoming
    if cycle is None:
        if not upcoming:
            raise UsageError(f"{group.id} has no upcoming meeting to change; the service schedules one "
                             f"{group.meetings.invite_days_before} days before each cycle's window")
        return upcoming[0]
    meeting = mine.get(cycle)
    if meeting is None:
        raise UsageError(f"--cycle {cycle}: {group.id} has no meeting in that cycle; upcoming: {listed}")
    if meeting.cancelled:
        raise UsageError(f"--cycle {cycle}: that meeting is already cancelled; upcoming: {listed}")
    if meeting.start <= now:
        raise UsageError(f"--cycle {cycle}: that meeting has already started; upcoming: {listed}")
    return meeting


def local_start(group: Group, text: str, now: datetime, zone_name: str | None = None) -> datetime:
    """--to "YYYY-MM-DD HH:MM", wall-clock time in the group's zone (a gathering's: the
    conference's, `zone_name`), as an aware UTC instant. A time the clocks skip, or pass
    twice, on that date is refused: it would be a guess."""
    zone_name = zone_name or group.timezone
    try:
        naive = datetime.strptime(text.strip().replace("T", " ", 1), "%Y-%m-%d %H:%M")
    except ValueError:
        raise UsageError(f"--to: {text!r} is not a local date and time; use \"YYYY-MM-DD HH:MM\" in "
                         f"{zone_name}, e.g. \"2027-03-10 14:00\"") from None
    zone = ZoneInfo(zone_name)
    first, second = naive.replace(tzinfo=zone, fold=0), naive.replace(tzinfo=zone, fold=1)
    if first.utcoffset() != second.utcoffset():
        skipped = first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != naive
        what = "does not exist (the clocks go forward then)" if skipped else "happens twice (the clocks go back then)"
        raise UsageError(f"--to: {text} {what} in {zone_name}; pick another time")
    start = first.astimezone(UTC)
    if start <= now:
        raise UsageError(f"--to: {text} ({zone_name}) is in the past; give a time still to come")
    return start


def within_cycle(group: Group, meeting: Meeting, start: datetime, conference: Conference | None = None) -> None:
    """A meeting moves within its own cycle's period (its month, week or fortnight): the
    planner keeps each cycle's agenda, follow-up and next meeting apart by period, and a
    December meeting moved into February would lose them and double February's. A gathering
    moves within its conference's dates (local to the conference)."""
    if conference is not None:
        day = start.astimezone(ZoneInfo(conference.timezone)).date()
        if not conference.start <= day <= conference.end:
            raise UsageError(f"--to: {day} is outside {conference.name} ({conference.start} to {conference.end}, "
                             f"{conference.timezone}); a gathering moves within its conference's dates")
        return
    first = first_day(group, meeting.cycle)
    last = first_day(group, next_key(group, meeting.cycle)) - timedelta(days=1)
    day = start.astimezone(group.tz).date()
    if not first <= day <= last:
        raise UsageError(f"--to: {day} is outside cycle {meeting.cycle} ({first} to {last}, {group.timezone}); "
                         "a meeting moves within its cycle; to skip this one, use `friendtor cancel`")


def collisions(config: Config, group: Group, meetings: Mapping[tuple[str, str], Meeting], moving: Meeting,
               start: datetime, end: datetime) -> str | None:
    """One line naming each other group whose meeting [start, end) collides with for a member
    both groups share, and who; None when there is no such collision."""
    others = [m for m in meetings.values() if m.group != group.id]
    found = clashes(config, group, others, start, end)
    if is_gathering(moving.cycle):  # only those attending are taken by a gathering
        conference = conference_of(config, moving.cycle)
        going = {m.email for m in group.members if conference is not None and attends(m, conference)}
        found = [(label, [e for e in emails if e in going]) for label, emails in found]
        found = [(label, emails) for label, emails in found if emails]
    if not found:
        return None
    return "; ".join(f"{label} for {', '.join(emails)}" for label, emails in found)


def change_record(action: str, meeting: Meeting, decided: datetime, start: datetime | None = None) -> dict:
    record: dict[str, Any] = {"action": action, "group": meeting.group, "cycle": meeting.cycle,
                              "decided": iso(decided)}
    if start is not None:
        record["start"] = iso(start)
    return record


def apply_change(store: Store, record: Mapping[str, Any], now: datetime) -> Meeting | str:
    """Store a change; the changed meeting, or why it was not applied."""
    meeting = store.meetings().get((record["group"], record["cycle"]))
    decided = parse_iso(record["decided"])
    if record["action"] not in ACTIONS:
        return f"unknown action {record['action']!r}"
    if meeting is None:
        return "the meeting is not in the state"
    if decided <= meeting.stamp:
        return "the meeting was changed since (this change is applied already, or a later one was)"
    if meeting.cancelled:
        return "the meeting is cancelled"
    if meeting.start <= now:
        return "the meeting has already started"
    if record["action"] == "reschedule" and parse_iso(record["start"]) <= now:
        return "the new time has passed already (the change waited for a stopped service)"
    if record["action"] == "cancel":
        changed = meeting.cancel(decided)
    else:
        start = parse_iso(record["start"])
        changed = meeting.moved(start, start + (meeting.end - meeting.start), decided)
        store.forget_rsvps(meeting.group, meeting.cycle)  # they accepted or declined the old time
    store.save_meeting(changed)
    return changed


def describe(group: Group, before: Meeting, after: Meeting, zone_name: str | None = None) -> str:
    """The change in one line, in the group's zone (a gathering's: the conference's, `zone_name`)."""
    zone_name = zone_name or group.timezone
    zone = ZoneInfo(zone_name)

    def when(m: Meeting) -> str:
        s, e = m.start.astimezone(zone), m.end.astimezone(zone)
        return f"{s:%a %d %b %Y %H:%M}–{e:%H:%M}"

    if after.cancelled:
        return f"{group.name}, meeting of {before.cycle} ({when(before)} {zone_name}): cancelled"
    return f"{group.name}, meeting of {before.cycle}: moved from {when(before)} to {when(after)} ({zone_name})"


def lead_warning(start: datetime, now: datetime) -> str | None:
    if start - now < timedelta(hours=24):
        return "less than a day's notice: members may see the update too late"
    return None
