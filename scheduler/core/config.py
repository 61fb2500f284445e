"""The config, as frozen values.

Key names here are the contract with coordinators and operators (see README and
../shared/DESIGN.md): keys may be added, never renamed. Each key is documented where it
is defined. Loading files and turning validation errors into one-line messages lives in
`loader.py`; this module only says what a valid config is.
"""

from __future__ import annotations

from datetime import date, time
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import BeforeValidator, Field, field_validator, model_validator

from scheduler.core.fields import (
    CalendarSpec,
    CycleKey,
    Day,
    Email,
    Frozen,
    HolidayRegion,
    Hours,
    HoursSpec,
    SingleLine,
    TimeOfDay,
    TimeZoneName,
    Url,
    Weekdays,
    _email,
    fail,
)

# service.toml's settings, known from here too (where most code meets the config).
from scheduler.core.service import (  # noqa: F401
    DATABASE_SCHEMES,
    CalDav,
    Conference,
    EnvName,
    Google,
    Limits,
    Mail,
    Service,
    Smtp,
    is_database,
)

# --- group files: config/groups/<id>.toml --------------------------------------------------

class Away(Frozen):
    """Time away, inclusive local dates: `{ from = 2026-12-21, to = 2027-01-04 }`."""

    start: Day = Field(alias="from")
    end: Day = Field(alias="to")

    @model_validator(mode="after")
    def _ordered(self) -> Away:
        if self.end < self.start:
            raise fail(f"'to' ({self.end}) is before 'from' ({self.start}); swap them")
        return self

    def covers(self, day: date) -> bool:
        return self.start <= day <= self.end


class Member(Frozen):
    name: SingleLine
    email: Email
    institution: SingleLine | None = None
    timezone: TimeZoneName
    # Local wall-clock hours when a meeting is acceptable, applied on each date in `timezone`.
    hours: HoursSpec = Hours(9 * 60, 17 * 60)
    # Optional: hours the member prefers; slots inside them rank higher among equals.
    preferred_hours: HoursSpec | None = None
    weekdays: Weekdays = (0, 1, 2, 3, 4)
    # Public holidays: a country ("US") or country-subdivision ("CA-NL", "GB-ENG").
    holidays: HolidayRegion | None = None
    # Busy time: a path to an .ics file (relative to the config folder), an https URL,
    # "google:<calendar id>" or "caldav:https://...".
    calendar: CalendarSpec | None = None
    away: tuple[Away, ...] = ()
    # A required member (often the coordinator): no slot is proposed without them.
    required: bool = False
    # Conferences the member attends, by their `name` in service.toml's [[conferences]].
    conferences: tuple[SingleLine, ...] = ()

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Goal(Frozen):
    member: Email
    text: SingleLine
    due: Day | None = None
    done: bool = False


class Milestone(Frozen):
    member: Email
    text: SingleLine
    date: Day


class AgendaItem(Frozen):
    text: SingleLine
    # "2026-12" (monthly) or "2026-W50" (weekly/biweekly): only that cycle's agenda.
    # Without it the item stands on every agenda.
    cycle: CycleKey | None = None


class Meetings(Frozen):
    cadence: Literal["weekly", "biweekly", "monthly"] = "monthly"
    duration_minutes: int = Field(60, ge=15, le=8 * 60)
    # Weekdays the group meets on, in the group's time zone.
    weekdays: Weekdays = (1, 2, 3)
    # Monthly cadence: which weeks of the month are eligible; week 2 is days 8-14,
    # so [2, 3] means "the second or third Tuesday/Wednesday/Thursday".
    weeks_of_month: tuple[int, ...] = (1, 2, 3, 4, 5)
    # Fraction of members who must be able to come (expected attendance) for a slot to be proposed.
    quorum: float = 0.5
    invite_days_before: int = Field(21, ge=1, le=120)
    agenda_days_before: int = Field(2, ge=0, le=30)
    # The call for items goes out this many days before each meeting; 0 turns it off for the group.
    # It is sent only while it is earlier than the agenda (a call after the agenda could not be answered).
    call_days_before: int = Field(7, ge=0, le=30)
    follow_up_days_after: int = Field(1, ge=0, le=30)
    # Candidate start times are this many minutes apart (and aligned to the hour).
    grid_minutes: Literal[5, 10, 15, 20, 30, 60] = 15
    # A reminder goes to a member this many days before one of their goals falls due.
    nudge_days_before: int = Field(3, ge=0, le=30)

    @field_validator("quorum")
    @classmethod
    def _quorum(cls, v: float) -> float:
        if not 0 < v <= 1:
            raise fail(f"quorum must be a fraction above 0 and at most 1 (0.5 means half the group), got {v}")
        return v

    @field_validator("weeks_of_month")
    @classmethod
    def _weeks(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        bad = [w for w in v if not 1 <= w <= 5]
        if bad or not v:
            raise fail(f"weeks_of_month takes numbers from 1 to 5 (week 2 is days 8-14), got {list(v)}")
        return tuple(sorted(set(v)))


class Reviews(Frozen):
    # A mission review prompt every this many months, counted from `started`.
    mission_review_months: int = Field(6, ge=1, le=24)
    # A year-end reflection (continue, redefine or close?) on the 1st of `year_end_month`.
    year_end: bool = True
    year_end_month: int = Field(12, ge=1, le=12)


def _role(value: object) -> str:
    if isinstance(value, str) and value.strip().lower() in ("rotate", "none"):
        return value.strip().lower()
    if isinstance(value, str) and "@" not in value:
        raise fail(f"use \"rotate\", \"none\" or a member's email, got \"{value}\"")
    return _email(value)


# "rotate" (members in file order, one step per meeting cycle since `started`), "none", or
# a member's email (always that person).
Role = Annotated[str, BeforeValidator(_role)]


class Roles(Frozen):
    """Who facilitates each meeting and who takes notes; named on the invite and the agenda."""

    facilitator: Role = "none"
    note_taker: Role = "none"


class Group(Frozen):
    # The group's id is its file name (groups/k-club.toml is "k-club"); set by the loader.
    id: str
    name: SingleLine
    mission: str = ""
    # The group's home zone: group-wide emails, meeting weekdays and `slots --from/--to` use it.
    timezone: TimeZoneName
    coordinators: tuple[Email, ...] = Field(min_length=1)
    video_link: Url | None = None
    started: Day
    # false (default): each message shows only its recipient's address.
    share_member_emails: bool = False
    meetings: Meetings = Meetings()
    reviews: Reviews = Reviews()
    roles: Roles = Roles()
    members: tuple[Member, ...] = Field(min_length=1)
    goals: tuple[Goal, ...] = ()
    milestones: tuple[Milestone, ...] = ()
    agenda: tuple[AgendaItem, ...] = ()
    # Gathering in person (docs/groups.md): when at least `gathering_min` members attend one
    # conference, they get a `gathering` email `gathering_days_before` it opens, proposing
    # `gathering_time` (the conference's local time) on its first full day.
    gathering_min: int = 3
    gathering_days_before: int = Field(30, ge=1, le=365)
    gathering_time: TimeOfDay = time(18, 30)

    @field_validator("gathering_min")
    @classmethod
    def _gathering_min(cls, v: int) -> int:
        if not 2 <= v <= 100:
            raise fail(f"gathering_min is how many members make a gathering worth proposing: a number "
                       f"from 2 to 100 (default 3), got {v}")
        return v

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def member(self, email: str) -> Member | None:
        email = email.lower()
        return next((m for m in self.members if m.email == email), None)


class Config(Frozen):
    """A whole config folder: the service settings and every group, by id."""

    folder: Path
    service: Service
    groups: dict[str, Group]

    def path(self, relative: str) -> Path:
        """A path from a config file, resolved against the config folder."""
        p = Path(relative).expanduser()
        return p if p.is_absolute() else self.folder / p
