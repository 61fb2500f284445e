"""service.toml, as frozen values: the operator's settings (mail, publishing, limits, where the
state lives) and the conferences members may attend. Group files are `config.py`'s; both
follow its rules (keys may be added, never renamed; each documented where it is defined).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import parse_qsl, urlsplit

from pydantic import AfterValidator, Field, field_validator, model_validator

from scheduler.core.fields import (
    Day,
    Email,
    Frozen,
    SingleLine,
    TimeZoneName,
    Url,
    fail,
    slug,
)


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
