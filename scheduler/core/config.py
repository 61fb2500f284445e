"""The config, as frozen values.

Key names here are the contract with coordinators and operators (see README and
../shared/DESIGN.md): keys may be added, never renamed. Each key is documented where it
is defined. Loading files and turning validation errors into one-line messages lives in
`loader.py`; this module only says what a valid config is.
"""

from __future__ import annotations

import re
from datetime import date, time
from urllib.parse import parse_qsl, urlsplit
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from scheduler.core.fields import (
    CalendarSpec,
    CycleKey,
    Day,
    Email,
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
    slug,
)


class Frozen(BaseModel):
    """Config values: immutable, and any key we do not know is an error (typos surface)."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", arbitrary_types_allowed=True, populate_by_name=True,
        ignored_types=(cached_property,),
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


# --- service.toml ------------------------------------------------------------------------

def _env_name(v: str) -> str:
    # Never echo the value: when it is not a variable name, it is often the password itself.
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", v):
        raise fail("password_env is the NAME of an environment variable (letters, digits and '_'), "
                   "e.g. password_env = \"FRIENDTOR_SMTP_PASSWORD\", not the password; "
                   "set the password in that variable")
    return v


# The NAME of an environment variable holding a password. Never the password itself:
# config files are shared and backed up, secrets are not.
EnvName = Annotated[str, AfterValidator(_env_name)]


class Smtp(Frozen):
    host: SingleLine
    # Default: 587 for starttls, 465 for ssl, 25 for none.
    port: int | None = Field(None, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: SingleLine | None = None
    password_env: EnvName | None = None
    timeout_seconds: float = Field(30, gt=0, le=600)


class Google(Frozen):
    """Google Calendar: busy time for `calendar = "google:<id>"` members, and publishing."""

    # "oauth": an installed-app OAuth client (client_secret JSON); the refresh token from
    # `friendtor google-auth` is stored in `token`. "service-account": a Workspace service
    # account key with domain-wide delegation, acting as `subject`.
    auth: Literal["oauth", "service-account"] = "oauth"
    credentials: str                      # the client or key JSON file; keep it 0600
    token: str = "var/google-token.json"  # oauth only; written 0600
    subject: Email | None = None          # service-account only: the user to act as
    # The calendar meetings are published to (with publish = [..., "google"]).
    calendar: SingleLine = "primary"
    # Who emails the invitations for published meetings: "friendtor" (iMIP, publish has
    # "email") or "google" (Google's own, sendUpdates=all; then publish must not have "email").
    invitations: Literal["friendtor", "google"] = "friendtor"
    timeout_seconds: float = Field(30, gt=0, le=600)

    @model_validator(mode="after")
    def _subject(self) -> Google:
        if self.auth == "service-account" and self.subject is None:
            raise fail("auth = \"service-account\" needs subject = \"user@your-domain\": the account "
                       "whose calendar the service account acts on (domain-wide delegation)")
        return self


class CalDav(Frozen):
    """A CalDAV calendar collection: meetings are published there (publish = [..., "caldav"]),
    and its credentials are used to read members' `caldav:` calendars on the same server."""

    url: Url
    username: SingleLine | None = None
    password_env: EnvName | None = None
    timeout_seconds: float = Field(30, gt=0, le=600)


class Mail(Frozen):
    transport: Literal["maildir", "smtp"] = "maildir"
    # The Maildir the default transport writes to (relative to the config folder).
    maildir: str = "var/outbox"
    # The address every message and invite comes from (the invite's ORGANIZER).
    sender: Email = "friendtor@localhost"
    sender_name: SingleLine = "friendtor"
    # Optional: a Maildir where replies to `sender` are delivered (e.g. by fetchmail or the
    # mail server). Accept/Decline replies found there are recorded as RSVPs.
    inbox: str | None = None
    smtp: Smtp | None = None

    @model_validator(mode="after")
    def _smtp_needs_host(self) -> Mail:
        if self.transport == "smtp" and self.smtp is None:
            raise fail("transport = \"smtp\" needs a [mail.smtp] table with at least host = \"...\"")
        return self


class Limits(Frozen):
    """Budgets for reading what others wrote (`[limits]` in service.toml). Over a budget, only
    that calendar, template or exchange fails; docs/operations.md, "Limits and budgets"."""

    # One read of one member's calendar: occurrences inside the window, seconds (walking the
    # rules, expanding, and a worker's whole run), bytes of a local file or feed, memory.
    calendar_occurrences: int = Field(10_000, ge=100, le=1_000_000)
    calendar_seconds: float = Field(10, gt=0, le=300)
    calendar_bytes: int = Field(10 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    calendar_memory_mb: int = Field(512, ge=64, le=16 * 1024)
    # Folders besides the config folder where `calendar = "<path>"` files may live (absolute,
    # or relative to the config folder). A calendar path outside all of them is refused.
    calendar_folders: tuple[str, ...] = ()
    # Rendering one email from a coordinator's templates: seconds, and characters of output.
    template_seconds: float = Field(2, gt=0, le=60)
    template_chars: int = Field(1_000_000, ge=10_000, le=100_000_000)
    # `validate` and a reload render a coordinator's templates in a worker process with this
    # much memory (besides what the worker starts with): the backstop for what the sandbox's
    # own checks cannot see.
    template_memory_mb: int = Field(256, ge=64, le=16 * 1024)


DATABASE_SCHEMES = ("postgresql://", "postgres://")


def is_database(state: str) -> bool:
    """Whether `state` names a PostgreSQL database (a libpq URI) rather than a TinyDB file."""
    return state.lower().startswith(DATABASE_SCHEMES)


def _state(v: str) -> str:
    # A password in the URI would sit in a file that is shared and backed up; the URI itself is
    # never echoed (it may hold one).
    if is_database(v):
        parts = urlsplit(v)
        query = {k.lower() for k, _ in parse_qsl(parts.query, keep_blank_values=True)}
        try:
            has_password = bool(parts.password) or "password" in query
            if "," not in parts.netloc:  # libpq's multi-host form (h1:5432,h2:5432) is checked by libpq
                parts.port  # noqa: B018 (a bad port is a ValueError here, not a failure at connection time)
        except ValueError:
            raise fail("the PostgreSQL URI is not a valid libpq URI (check the host and the port), e.g. "
                       "state = \"postgresql://friendtor@db.example.org:5432/friendtor\"") from None
        if has_password:
            raise fail("the PostgreSQL URI holds a password, and config files must not: remove it and put the "
                       "password in the environment variable named by state_password_env, or in PGPASSWORD "
                       "or ~/.pgpass")
    return v


class Conference(Frozen):
    """A conference members may attend: `[[conferences]]` in service.toml. `start` and `end`
    are inclusive local dates in `timezone`, the conference's own zone."""

    name: SingleLine
    city: SingleLine
    timezone: TimeZoneName
    start: Day
    end: Day

    @model_validator(mode="after")
    def _ordered(self) -> Conference:
        if self.end < self.start:
            raise fail(f"end ({self.end}) is before start ({self.start}); swap them")
        return self


class Service(Frozen):
    # Where the state lives: a TinyDB file, relative to the config folder, or a PostgreSQL
    # database as a libpq URI ("postgresql://USER@HOST:PORT/DB", "?host=/run/postgresql" for a
    # socket folder), which several `friendtor run` nodes may share. Never with a password.
    state: Annotated[str, AfterValidator(_state)] = "var/state.json"
    # PostgreSQL: the NAME of the environment variable holding the database password (libpq's
    # PGPASSWORD and ~/.pgpass work too).
    state_password_env: EnvName | None = None
    # PostgreSQL: how long a node's claim on a message it is sending lasts; a node that dies
    # leaves claims that expire after this, and another node sends those messages again (with
    # the same Message-ID). Longer than the slowest batch of sends (a couple of seconds,
    # plus the mail server's timeout when it is slow).
    lease_seconds: int = Field(300, ge=2, le=24 * 3600)
    tick_minutes: int = Field(5, ge=1, le=24 * 60)
    # A message the mail server turned away for now (4xx, dropped connection) is retried
    # with growing pauses for this many days, then reported to the coordinators as failed.
    retry_days: int = Field(3, ge=0, le=30)
    # A finished send is kept this many days after no rule could plan it again (for
    # `friendtor status`), then forgotten, which keeps the state file small.
    keep_days: int = Field(60, ge=0, le=3650)
    mail: Mail = Mail()
    # Where meetings are published: "email" (iMIP invitations to each member), "google",
    # "caldav". Agendas and other emails go by mail whatever this says.
    publish: tuple[Literal["email", "google", "caldav"], ...] = ("email",)
    google: Google | None = None
    caldav: CalDav | None = None
    limits: Limits = Limits()
    # Conferences members may list in their `conferences` (gatherings, docs/groups.md).
    conferences: tuple[Conference, ...] = ()

    @field_validator("conferences")
    @classmethod
    def _one_name_each(cls, v: tuple[Conference, ...]) -> tuple[Conference, ...]:
        seen: dict[str, str] = {}
        for c in v:
            if slug(c.name) in seen:
                raise fail(f"two conferences are named \"{seen[slug(c.name)]}\" and \"{c.name}\"; members "
                           "name a conference by its name, so give each its own (e.g. with the year)")
            seen[slug(c.name)] = c.name
        return v

    def local_folder(self, folder: Path) -> Path:
        """Where the service keeps its own local files (the feed cache, the template check's
        record): beside the TinyDB state, or var/ in the config folder `folder` when the state
        is a database."""
        if is_database(self.state):
            return folder / "var"
        try:
            p = Path(self.state).expanduser()
        except RuntimeError:  # "~nobody/...": the loader reports it; the folder is only a fallback then
            p = Path(self.state)
        return (p if p.is_absolute() else folder / p).parent

    @model_validator(mode="after")
    def _publishers_configured(self) -> Service:
        for name, table in (("google", self.google), ("caldav", self.caldav)):
            if name in self.publish and table is None:
                raise fail(f"publish has \"{name}\" but there is no [{name}] table; add one (see docs/"
                           f"{'google' if name == 'google' else 'operations'}.md)")
        if self.google and self.google.invitations == "google" and "email" in self.publish:
            raise fail("members would get two invitations: [google] invitations = \"google\" lets Google "
                       "send them, so remove \"email\" from publish (or set invitations = \"friendtor\")")
        return self


class Config(Frozen):
    """A whole config folder: the service settings and every group, by id."""

    folder: Path
    service: Service
    groups: dict[str, Group]

    def path(self, relative: str) -> Path:
        """A path from a config file, resolved against the config folder."""
        p = Path(relative).expanduser()
        return p if p.is_absolute() else self.folder / p
