"""Reading each member's busy time from wherever their `calendar` key points."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from scheduler.availability import NO_CALENDAR, Availability
from scheduler.config import Config, Group, Member
from scheduler.errors import CalendarError

from . import feeds
from .ics import busy_from_ics


def member_availability(
    config: Config, member: Member, start: datetime, end: datetime,
    *, fetch: Callable[[str], bytes] = feeds.fetch,
) -> Availability:
    """One member's availability between `start` and `end`; unreadable means `unknown`, not free."""
    spec = member.calendar
    if spec is None:
        return NO_CALENDAR
    lower = spec.lower()
    if lower.startswith(("google:", "caldav:")):
        kind = "Google Calendar" if lower.startswith("google:") else "CalDAV"
        return Availability.unreadable(f"{kind} calendars are not supported by this version")
    try:
        if lower.startswith(("http://", "https://")):
            data = fetch(spec)
        else:
            data = config.path(spec).read_bytes()
    except CalendarError as exc:
        return Availability.unreadable(str(exc))
    except OSError as exc:
        return Availability.unreadable(f"cannot read {spec}: {exc.strerror or exc}")
    return busy_from_ics(data, member.tz, start, end)


def group_availability(
    config: Config, group: Group, start: datetime, end: datetime,
    *, fetch: Callable[[str], bytes] = feeds.fetch,
) -> dict[str, Availability]:
    """Every member's availability, by email."""
    return {m.email: member_availability(config, m, start, end, fetch=fetch) for m in group.members}
