"""The slot finder: ranks meeting times for a group and says why each member can or cannot come.

Pure: it takes the group, a window of local dates, each member's availability and the
earliest acceptable start, and returns values. No clock, no I/O.

How it stays fast: candidate starts form one sorted list of UTC seconds. For each member
we *paint* that list once per local date (away / holiday / not a working day / outside
hours / free, from their hours on that date in their own zone) and once per busy interval,
finding the affected index ranges by bisection. Cost grows with dates + busy intervals +
candidates, never with their product. Explanations are written only for the candidates
that are returned.

Ranking, best first (`rank_key`, a total order):
1. viable: reaches quorum with every required member;
2. expected attendance (free 1, tentative or unknown ½);
3. attendees inside their preferred hours;
4. fairness: the lower cost, where cost = sum, over members who can attend and for whom the
   slot is *inconvenient* (outside their preferred hours, or outside COMFORT when they have
   none), of that member's recent burden (`recent_burden`: their inconvenient meetings among
   the group's last few, recent ones weighing more). Without a burden every cost is 0 and
   the order is the one before fairness existed;
5. consistency: the group's usual weekday first, then the start nearest its usual local time
   (`usual_time`: the most common weekday and start, in the group's zone, among its last few
   meetings). Without past meetings every option is as any other;
6. the earliest.

What the group's past meetings say (the burden and the usual time) is `history.py`'s job.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from scheduler.core.availability import NO_CALENDAR, Availability, holiday_name
from scheduler.core.config import Group, Member
from scheduler.core.cycles import Window
from scheduler.core.fields import Hours
from scheduler.core.history import COMFORT, Usual, comfort_hours

# Member states at a candidate, from best to worst. The first three can attend.
FREE, TENTATIVE, UNKNOWN, BUSY, OUTSIDE, NOT_WORKDAY, HOLIDAY, AWAY = range(8)

# Expected attendance per state: a tentative event or an unreadable calendar may or may
# not keep someone away, so they count half; only a confirmed free slot counts fully.
WEIGHT = (1.0, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0)
STATUS = ("available", "tentative", "tentative", "unavailable", "unavailable", "unavailable",
          "unavailable", "unavailable")


@dataclass(frozen=True)
class Verdict:
    """One member at one candidate."""

    email: str
    status: str          # "available" | "tentative" | "unavailable"
    reason: str          # "" when available; otherwise why, in words
    local_start: datetime


@dataclass(frozen=True)
class Candidate:
    start: datetime      # UTC
    end: datetime
    expected: float      # expected number of attendees
    attendance: float    # expected / number of members
    preferred: int       # attendees for whom this is inside their preferred hours
    viable: bool         # reaches quorum, and no required member is unavailable
    verdicts: tuple[Verdict, ...]
    # Sum of the recent burden of attendees for whom this slot is inconvenient (0 without burden).
    fairness: float = 0.0
    # Emails of members who can attend but for whom the slot is outside their preferred
    # hours (or COMFORT when they have none).
    inconvenient: tuple[str, ...] = field(default=())
    # Members spared by fairness: inconvenienced (and burdened) at the earliest start that
    # ties with this one on viability, attendance and preferred hours, but not here.
    spared: tuple[str, ...] = field(default=())
    # How far from the group's usual time: (1 if another weekday else 0, minutes from the usual
    # local start). (0, 0) without a usual time.
    off_usual: tuple[int, int] = (0, 0)

    def who(self, status: str) -> list[str]:
        return [v.email for v in self.verdicts if v.status == status]

    @property
    def rank_key(self) -> tuple:
        return rank_key(self.viable, self.expected, self.preferred, self.start.timestamp(), self.fairness,
                        self.off_usual)


def rank_key(viable: bool, expected: float, preferred: int, start: float, fairness: float = 0.0,
             off_usual: tuple[int, int] = (0, 0)) -> tuple:
    """Ranking: slots that can go ahead, then expected attendance, preferred hours, lower
    fairness cost (spare those who recently had inconvenient times), the group's usual weekday
    and time, earliest."""
    return (not viable, -expected, -preferred, round(fairness, 9), off_usual, start)


def candidate_starts(group: Group, window: Window, not_before: datetime | None) -> list[int]:
    """Grid starts (UTC seconds) on each window date, aligned to local midnight in the group's zone."""
    step = group.meetings.grid_minutes * 60
    lo = int(not_before.timestamp()) if not_before else None
    starts: list[int] = []
    for day in window.dates:
        day_lo = _midnight(day, group.tz)
        day_hi = _midnight(day + timedelta(days=1), group.tz)
        first = day_lo
        if lo is not None and lo > first:
            first = day_lo + -(-(lo - day_lo) // step) * step  # round up onto the grid
        starts.extend(range(first, day_hi, step))
    return starts


def _midnight(day: date, zone: ZoneInfo) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=zone).timestamp())


def _epoch(dt: datetime) -> int:
    return int(dt.timestamp())


def paint_member(member: Member, avail: Availability, starts: list[int], duration: int) -> list[int]:
    """Each candidate's state for one member (see the state constants above)."""
    n = len(starts)
    codes = [OUTSIDE] * n
    if not n:
        return codes
    zone = member.tz
    open_state = UNKNOWN if avail.unknown is not None else FREE
    first_day = datetime.fromtimestamp(starts[0], zone).date()
    last_day = datetime.fromtimestamp(starts[-1], zone).date()
    day = first_day
    while day <= last_day:
        i0 = bisect_left(starts, _midnight(day, zone))
        i1 = bisect_left(starts, _midnight(day + timedelta(days=1), zone))
        if i0 < i1:
            if any(a.covers(day) for a in member.away):
                codes[i0:i1] = [AWAY] * (i1 - i0)
            elif holiday_name(member.holidays, day):
                codes[i0:i1] = [HOLIDAY] * (i1 - i0)
            elif day.weekday() not in member.weekdays:
                codes[i0:i1] = [NOT_WORKDAY] * (i1 - i0)
            else:
                a, b = member.hours.bounds_on(day, zone)
                j0 = max(i0, bisect_left(starts, _epoch(a)))
                j1 = min(i1, bisect_right(starts, _epoch(b) - duration))
                if j0 < j1:
                    codes[j0:j1] = [open_state] * (j1 - j0)
        day += timedelta(days=1)

    for b0, b1, tentative in avail.spans:
        # A meeting [s, s+d) overlaps [b0, b1) exactly when b0 - d < s < b1.
        k0 = bisect_right(starts, b0 - duration)
        k1 = bisect_left(starts, b1)
        new = TENTATIVE if tentative else BUSY
        for k in range(k0, k1):
            if codes[k] < new:  # busy beats tentative beats free; never hides "away" etc.
                codes[k] = new
    return codes


def _paint_preferred(member: Member, starts: list[int], duration: int,
                     hours: Hours | None = None) -> list[bool]:
    """Which candidates lie wholly inside `hours` (default: the member's preferred hours)."""
    hours = hours or member.preferred_hours
    inside = [False] * len(starts)
    if hours is None or not starts:
        return inside
    zone = member.tz
    day = datetime.fromtimestamp(starts[0], zone).date()
    last_day = datetime.fromtimestamp(starts[-1], zone).date()
    while day <= last_day:
        a, b = hours.bounds_on(day, zone)
        j0, j1 = bisect_left(starts, _epoch(a)), bisect_right(starts, _epoch(b) - duration)
        if j0 < j1:
            inside[j0:j1] = [True] * (j1 - j0)
        day += timedelta(days=1)
    return inside


def find_slots(
    group: Group,
    window: Window,
    availability: Mapping[str, Availability],
    *,
    not_before: datetime | None = None,
    top: int | None = None,
    distinct: bool = False,
    burden: Mapping[str, float] | None = None,
    usual: Usual | None = None,
) -> list[Candidate]:
    """Candidates in ranking order (see the module docstring), each with every member's verdict.

    `availability` maps member email to what their calendar says (missing: no calendar).
    `burden` maps member email to their recent burden (`recent_burden`); missing or empty,
    fairness plays no part. `usual` is the group's usual time (`usual_time`); without it,
    consistency plays no part.
    Candidates nobody can attend are dropped. With `distinct`, a candidate that overlaps a
    better one is skipped, so the list offers real alternatives rather than the same hour
    shifted by 15 minutes. `top` limits the number returned.
    """
    if not_before is not None and not_before.tzinfo is None:
        raise ValueError("not_before must be aware")
    duration = group.meetings.duration_minutes * 60
    starts = candidate_starts(group, window, not_before)
    members = group.members
    states = [paint_member(m, availability.get(m.email, NO_CALENDAR), starts, duration) for m in members]
    preferred_masks = [_paint_preferred(m, starts, duration) for m in members]

    n = len(starts)
    # One pass over all members' states per candidate, rather than one list per member.
    expected = [sum(WEIGHT[c] for c in column) for column in zip(*states)] if states else [0.0] * n
    preferred = [0] * n
    required_ok = [True] * n
    for member, codes, pref in zip(members, states, preferred_masks):
        if member.preferred_hours is not None:
            preferred = [p + (c <= TENTATIVE and inside) for p, c, inside in zip(preferred, codes, pref)]
        if member.required:
            required_ok = [ok and c <= UNKNOWN for ok, c in zip(required_ok, codes)]
    # Fairness: only painted for members carrying a burden, so it costs nothing without one.
    comfy: list[list[bool] | None] = [None] * len(members)
    fairness = [0.0] * n
    for k, member in enumerate(members):
        weight = (burden or {}).get(member.email, 0.0)
        if weight <= 0:
            continue
        comfy[k] = inside = (preferred_masks[k] if member.preferred_hours is not None
                             else _paint_preferred(member, starts, duration, COMFORT))
        fairness = [f + weight * (c <= UNKNOWN and not ok) for f, c, ok in zip(fairness, states[k], inside)]

    # Consistency: each start's local weekday and time in the group's zone, only with a usual time.
    off = ([usual.off(datetime.fromtimestamp(t, group.tz)) for t in starts] if usual is not None
           else [(0, 0)] * n)

    size = len(members)
    quorum = group.meetings.quorum * size - 1e-9
    viable = [ok and e >= quorum for ok, e in zip(required_ok, expected)]
    order = sorted((i for i in range(n) if expected[i] > 0),
                   key=lambda i: rank_key(viable[i], expected[i], preferred[i], starts[i], fairness[i], off[i]))

    # The earliest start of each (viable, expected, preferred) class: what fairness moved away from.
    # Only needed when a burden is given; starts ascend, so the first index seen is the earliest.
    earliest_of: dict[tuple, int] = {}
    if any(fairness):
        for i in range(n):
            if expected[i] > 0:
                earliest_of.setdefault((viable[i], expected[i], preferred[i]), i)

    def inconvenient(i: int) -> tuple[str, ...]:
        return tuple(m.email for k, m in enumerate(members)
                     if states[k][i] <= UNKNOWN and not _comfortable(m, comfy[k], i, starts, duration))

    def spared(i: int) -> tuple[str, ...]:
        j = earliest_of.get((viable[i], expected[i], preferred[i]), i)
        if j == i or fairness[j] <= fairness[i]:
            return ()
        here = inconvenient(i)
        return tuple(e for e in inconvenient(j) if e not in here and (burden or {}).get(e, 0) > 0)

    picked: list[int] = []
    for i in order:
        if top is not None and len(picked) >= top:
            break
        if distinct and any(abs(starts[i] - starts[j]) < duration for j in picked):
            continue
        picked.append(i)

    return [
        Candidate(
            start=datetime.fromtimestamp(starts[i], UTC),
            end=datetime.fromtimestamp(starts[i] + duration, UTC),
            expected=expected[i],
            attendance=round(expected[i] / size, 4),
            preferred=preferred[i],
            viable=viable[i],
            verdicts=tuple(_verdict(m, availability.get(m.email, NO_CALENDAR), states[k][i], starts[i], duration)
                           for k, m in enumerate(members)),
            fairness=round(fairness[i], 9),
            inconvenient=inconvenient(i),
            spared=spared(i),
            off_usual=off[i],
        )
        for i in picked
    ]


def verdicts_at(group: Group, start: datetime, availability: Mapping[str, Availability]) -> tuple[Verdict, ...]:
    """Every member's verdict at one given start (on the grid or not), with the reasons
    `find_slots` gives: what `reschedule` shows for a time the coordinator picked."""
    duration, t = group.meetings.duration_minutes * 60, _epoch(start)
    return tuple(_verdict(m, availability.get(m.email, NO_CALENDAR),
                          paint_member(m, availability.get(m.email, NO_CALENDAR), [t], duration)[0], t, duration)
                 for m in group.members)


def _comfortable(member: Member, painted: list[bool] | None, i: int, starts: list[int], duration: int) -> bool:
    """Whether candidate i lies inside the member's comfortable hours (asked only for returned ones)."""
    if painted is not None:
        return painted[i]
    zone = member.tz
    start = datetime.fromtimestamp(starts[i], UTC)
    c0, c1 = comfort_hours(member).bounds_on(start.astimezone(zone).date(), zone)
    return c0 <= start and start + timedelta(seconds=duration) <= c1


def _verdict(member: Member, avail: Availability, code: int, start: int, duration: int = 0) -> Verdict:
    local = datetime.fromtimestamp(start, member.tz)
    reason = explain(member, avail, code, local)
    if code == BUSY:  # busy time friendtor knows the nature of (another group's meeting) says so
        labels = [b.label for b in avail.busy if b.label and not b.tentative
                  and b.start.timestamp() < start + duration and b.end.timestamp() > start]
        if labels:
            reason = f"busy: {labels[0]}"
    return Verdict(member.email, STATUS[code], reason, local)


def explain(member: Member, avail: Availability, code: int, local: datetime) -> str:
    """Why a member can or cannot come, in words a coordinator reads at a glance."""
    zone = member.timezone
    if code == FREE:
        return ""
    if code == TENTATIVE:
        return "tentative"
    if code == UNKNOWN:
        return f"calendar unknown: {avail.unknown}"
    if code == BUSY:
        return "busy"
    if code == OUTSIDE:
        return f"outside {member.hours} local ({local:%H:%M} in {zone})"
    if code == NOT_WORKDAY:
        return f"not a working day ({local:%A} in {zone})"
    if code == HOLIDAY:
        return f"holiday: {holiday_name(member.holidays, local.date())}"
    return "away"
