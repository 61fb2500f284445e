"""The errors friendtor shows to people.

Every error a coordinator or operator can cause is a subclass of `FriendtorError`.
The CLI catches that one class, prints `str(error)` (one line per problem) and exits 2;
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


class CalendarError(FriendtorError):
    """A member's calendar could not be read; the member's availability becomes unknown."""


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
