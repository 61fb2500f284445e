"""The ports: what the core and the service ask of the outside world, as Protocols.

Each outside system (a mail server, a shared calendar, a calendar feed, the reply inbox)
is reached through one of these. The gateways in `integrations/` implement them; the CLI
is the one place that picks an implementation and hands it to the service. Nothing here
does any I/O: these are only the shapes the two sides agree on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol, runtime_checkable

from scheduler.core.availability import Availability
from scheduler.core.config import Config, Group
from scheduler.core.meetings import Meeting


@runtime_checkable
class Transport(Protocol):
    """Delivers one message to its one recipient, or raises SendError."""

    def send(self, message: EmailMessage) -> None: ...


def transport_session(transport: Transport) -> AbstractContextManager[object]:
    """`transport.session()` if it has one: the sends inside form one delivery batch, which a
    transport may serve on one connection (SMTP). Optional, so a transport (or a test's fake)
    with only `send` still works; the built-in ones all have it."""
    session = getattr(transport, "session", None)
    return session() if session is not None else nullcontext()


@dataclass(frozen=True)
class SharedEvent:
    """What a shared calendar shows for a meeting, composed by friendtor (not the gateway):
    the iCalendar object (a VCALENDAR with the one VEVENT, as emailed invites carry it) and
    the description text, the same words members see in their invites."""

    ics: bytes
    description: str


@runtime_checkable
class Publisher(Protocol):
    """Puts meetings into one shared calendar, keyed by the meeting's UID, so publishing the
    same meeting again (a retry, or a new SEQUENCE after a move) updates the event in place.
    Errors are SendError: transient ones are retried by the outbox, permanent ones reported."""

    def publish(self, group: Group, meeting: Meeting, event: SharedEvent) -> None:
        """Create the event, or update it if an event with the meeting's UID exists."""

    def cancel(self, group: Group, meeting: Meeting) -> None:
        """Remove (or mark cancelled) the event with the meeting's UID; absent is fine."""


@runtime_checkable
class GuestAnswers(Protocol):
    """A shared calendar that also tells how its guests answered (Google Calendar does)."""

    def responses(self, group: Group, meeting: Meeting) -> Mapping[str, str]:
        """Guest email (lower case) -> "accepted", "declined" or "tentative"."""


@dataclass(frozen=True)
class InboxMessage:
    """One unread message in the reply inbox: its key there, and its bytes, or None when it is
    larger than the inbox was asked to read (it is not read at all)."""

    key: str
    data: bytes | None


class ReplyInbox(Protocol):
    """Where members' replies to friendtor's messages arrive (a Maildir).

    `unread` hands over at most `limit` unread messages, oldest first, leaving out the keys in
    `skip` (messages already looked at and left for a person); each is read only up to
    `max_bytes`. A message is marked seen only after what it carried is stored, so a crash in
    between reads it again (storing an RSVP, or a reply already recorded, twice is harmless)."""

    def unread(self, path: Path, *, limit: int, max_bytes: int,
               skip: AbstractSet[str] = frozenset()) -> Sequence[InboxMessage]: ...

    def mark_seen(self, path: Path, keys: Sequence[str]) -> None: ...


# Every member's availability in a group between two instants (calendars, hours, holidays).
AvailabilityReader = Callable[[Config, Group, datetime, datetime], dict[str, Availability]]

# Builds the transport for a config (SMTP, Maildir, or a dry run that sends nothing).
TransportFactory = Callable[[Config], Transport]

# Builds the shared-calendar publishers a config asks for, by name ("google", "caldav").
PublishersFactory = Callable[[Config], dict[str, Publisher]]

# Replaces a file atomically with the given bytes and mode (the app's implementation is
# handed to gateways that keep a file of their own: the feed cache, the Google token).
WriteFile = Callable[[Path, bytes, int], None]

# Cuts every exchange with a peer in flight, and any started later (SIGTERM): the sockets
# are shut down, so a trickling server cannot keep the process from stopping. Must be safe
# to call from a signal handler.
AbortExchanges = Callable[[], None]
