"""What a group's past meetings say about choosing the next time: who recently met at
inconvenient local hours (fairness: `recent_burden`), and when the group usually meets
(consistency: `usual_time`). The slot finder ranks by both (see `slots.py`).

Pure: aware datetimes in, values out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime

from scheduler.core.availability import holiday_name
from scheduler.core.config import Group, Member
from scheduler.core.fields import Hours

# A member without preferred_hours finds a meeting inconvenient outside these local hours:
# a working day's ordinary span, so an 07:00 or 19:30 meeting counts and 10:00 does not.
COMFORT = Hours(8 * 60, 18 * 60)
# Fairness looks at the group's last RECENT meetings; the latest weighs 1, the one before
# DECAY, then DECAY**2 ...: so whoever carried the last awkward slot is spared first.
RECENT = 6
DECAY = 0.8


# --- consistency: when the group usually meets ------------------------------------------------

@dataclass(frozen=True)
class Usual:
    """The group's usual meeting weekday (Monday 0) and local start (minutes after midnight),
    in its home zone."""

    weekday: int
    minutes: int

    def __str__(self) -> str:
        day = ("Mondays", "Tuesdays", "Wednesdays", "Thursdays", "Fridays", "Saturdays", "Sundays")[self.weekday]
        return f"{day} at {self.minutes // 60:02d}:{self.minutes % 60:02d}"

    def off(self, local: datetime) -> tuple[int, int]:
        return int(local.weekday() != self.weekday), abs(local.hour * 60 + local.minute - self.minutes)


def usual_time(group: Group, starts: Iterable[datetime], *, last: int = RECENT) -> Usual | None:
    """When the group usually meets: the most common (weekday, local start) among its `last`
    meetings (aware starts, any order), the most recent of them on a tie; None without any.
    Local to the group's zone, so a meeting that stays at 11:00 New York time through a DST
    change is as ever."""
    recent = [s.astimezone(group.tz) for s in sorted(starts, reverse=True)[:last]]
    if not recent:
        return None
    keys = [(d.weekday(), d.hour * 60 + d.minute) for d in recent]
    counts = Counter(keys)
    top = max(counts.values())
    return Usual(*next(k for k in keys if counts[k] == top))


# --- fairness: who recently met at inconvenient local times --------------------------------

def comfort_hours(member: Member) -> Hours:
    """The hours outside which a meeting is inconvenient for a member."""
    return member.preferred_hours or COMFORT


def inconvenient_for(member: Member, start: datetime, end: datetime) -> bool | None:
    """Was a meeting inconvenient for this member: None if they could not have come at all
    (outside their hours, not a working day, away, holiday), else whether it lies outside
    their comfortable hours. Judged on the local date, in local wall-clock time."""
    zone = member.tz
    day = start.astimezone(zone).date()
    h0, h1 = member.hours.bounds_on(day, zone)
    if not (h0 <= start and end <= h1) or day.weekday() not in member.weekdays:
        return None
    if any(a.covers(day) for a in member.away) or holiday_name(member.holidays, day):
        return None
    c0, c1 = comfort_hours(member).bounds_on(day, zone)
    return not (c0 <= start and end <= c1)


class Burden(Mapping[str, float]):
    """Each member's recent burden (a Mapping email -> weight, as `find_slots` takes it),
    plus the plain counts behind it, so an explanation can say "3 of the last 4"."""

    def __init__(self, weights: Mapping[str, float] | None = None,
                 counts: Mapping[str, tuple[int, int]] | None = None):
        self.weights = dict(weights or {})
        self.counts = dict(counts or {})   # email -> (inconvenient meetings, meetings looked at)

    def __getitem__(self, email: str) -> float:
        return self.weights[email]

    def __iter__(self) -> Iterator[str]:
        return iter(self.weights)

    def __len__(self) -> int:
        return len(self.weights)

    def __repr__(self) -> str:
        return f"Burden({self.weights!r}, {self.counts!r})"


def recent_burden(group: Group, meetings: Iterable[tuple[datetime, datetime]], *,
                  last: int = RECENT, decay: float = DECAY) -> Burden:
    """Each member's burden from the group's past meetings ((start, end), aware; any order).

    Only the `last` most recent meetings count. A meeting adds decay**age (age 0 = the
    latest) to a member's burden when it was inconvenient for them and they could come;
    meetings they could not come to at all add nothing (missing out is attendance's
    business, which ranks first anyway).
    """
    recent = sorted(meetings, key=lambda m: m[0], reverse=True)[:last]
    weights: dict[str, float] = {}
    counts: dict[str, tuple[int, int]] = {}
    for member in group.members:
        w, k = 0.0, 0
        for age, (start, end) in enumerate(recent):
            if inconvenient_for(member, start, end):
                w += decay ** age
                k += 1
        weights[member.email] = round(w, 9)
        counts[member.email] = (k, len(recent))
    return Burden(weights, counts)
