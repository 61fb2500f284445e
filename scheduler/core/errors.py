"""The errors friendtor shows to people: every error class lives here.

Every error a coordinator or operator can cause is a subclass of `FriendtorError`, and
code raises the subclass that says whose mistake it is (never the base class itself).
The CLI catches the base class, prints `str(error)` (one line per problem) and exits 2;
anything else is a bug and goes to the debug log with its traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


class FriendtorError(Exception):
    """Base class: the message is written for the person who has to fix it."""

    def lines(self) -> list[str]:
        return [str(self)]


@dataclass(frozen=True)
class Problem:
    """One thing wrong in one config file: where, which field, what, and how to fix it."""

    file: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.field}: " if self.field else f"{self.file}: "
        return where + self.message


class ConfigError(FriendtorError):
    """The config folder has one or more problems; nothing from it was applied."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems]


class UsageError(FriendtorError):
    """A command-line argument is wrong (bad date, unknown group, ...)."""


class SetupError(FriendtorError):
    """The operator's setup is wrong: service.toml's outside systems, a credential or
    password variable, a sign-in or a port. The message names the setting and the fix."""


class StateError(FriendtorError):
    """The state file cannot be used; the message says what to do."""


class LockedError(StateError):
    """Another process owns the state file."""


class StateUnavailable(StateError):
    """The state database cannot be reached now (down, restarting, the network): the service
    waits for it; a command stops with one line."""


class TemplateProblem(FriendtorError):
    """A template failed to render: which file, which line, what went wrong."""

    def __init__(self, file: str, line: int | None, message: str):
        super().__init__(message)
        self.file, self.line, self.message = file, line, message

    def problem(self) -> Problem:
        return Problem(self.file, f"line {self.line}" if self.line else "", self.message)


class CalendarError(FriendtorError):
    """A member's calendar could not be read; the member's availability becomes unknown."""


class FeedUnavailable(CalendarError):
    """The feed could not be fetched now. `outage` is true when a cached copy may stand in
    (time-outs, connection errors, 5xx, a broken body), false for a 4xx answer."""

    def __init__(self, message: str, *, outage: bool):
        super().__init__(message)
        self.outage = outage


class SendError(FriendtorError):
    """A message could not be delivered to the mail server.

    `transient` errors (4xx replies) are worth retrying later; permanent ones (5xx, a
    refused recipient) are not, and are reported to the coordinators instead.

    `setup` errors are not about the message at all: the server cannot be reached or does
    not answer, refuses the login or the sender, or its certificate does not verify. Every
    other message would fail the same way, and an operator can fix it, so the service holds
    back sending through that server (retrying one message with backoff) instead of failing
    messages one by one. A setup error is always transient.
    """

    def __init__(self, message: str, *, transient: bool, code: int | None = None,
                 recipient: str | None = None, setup: bool = False):
        super().__init__(message)
        self.transient = transient or setup
        self.code = code
        self.recipient = recipient
        self.setup = setup
