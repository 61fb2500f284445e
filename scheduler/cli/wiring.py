"""Wiring: the one module of the CLI that imports `integrations`.

Each function picks the gateway a command needs and hands it back typed as the port the
app asks for (scheduler/core/ports.py). The imports stay inside the functions: a command
loads only the gateways it uses, so a config without Google never imports googleapiclient.
Gateways that keep a file of their own (the feed cache, a refreshed Google sign-in) are
handed the app's atomic write as their WriteFile port: they never import the app.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from scheduler.app.files import atomic_write
from scheduler.core.availability import Availability
from scheduler.core.config import Config, Group
from scheduler.core.ports import (AbortExchanges, Publisher, PublishersFactory, ReplyInbox, Transport,
                                  TransportFactory)


def transport_factory(dry_run: bool) -> TransportFactory:
    """SMTP or Maildir as the config says; a dry run gets a transport that sends nothing."""
    from integrations.mail import DryRunTransport, transport_for

    if dry_run:
        def dry(config: Config) -> Transport:
            return DryRunTransport()

        return dry
    return transport_for


def exchange_abort() -> AbortExchanges:
    """SIGTERM's hook: cut every exchange with a server in flight. Imported here, not in the
    signal handler, where an import could wait on a lock the interrupted code holds."""
    from integrations.exchange import abort_all

    return abort_all


def maildir_transport(path: Path) -> Transport:
    """A transport that writes into the Maildir at `path` whatever the config says (`simulate`)."""
    from integrations.mail import MaildirTransport

    return MaildirTransport(path)


def publishers_factory() -> PublishersFactory:
    """The shared calendars (Google, CalDAV) a config publishes meetings to."""
    from integrations.publish import publishers_for

    def publishers(config: Config) -> dict[str, Publisher]:
        return publishers_for(config, write_file=atomic_write)

    return publishers


def reply_inbox() -> ReplyInbox:
    """The Maildir reader for members' replies (RSVPs)."""
    from integrations.inbox import MaildirInbox

    return MaildirInbox()


def group_availability(config: Config, group: Group, lo: datetime, hi: datetime) -> dict[str, Availability]:
    """Every member's availability between two instants, from their calendars (an AvailabilityReader);
    feed caches and a refreshed Google sign-in are written with the app's atomic write.

    Looked up at each call, so a test may replace `integrations.calendars.group_availability`."""
    from integrations import calendars

    return calendars.availability_reader(atomic_write)(config, group, lo, hi)


def google_sign_in(config: Config, *, port: int, open_browser: bool) -> Path:
    """Google's OAuth flow, once; returns where the refresh token is stored."""
    from integrations.google import authorize

    return authorize(config, atomic_write, port=port, open_browser=open_browser)
