"""Wiring: the one module of the CLI that imports `integrations`.

Each function picks the gateway a command needs and hands it back typed as the port the
app asks for (scheduler/core/ports.py). The imports stay inside the functions: a command
loads only the gateways it uses, so a config without Google never imports googleapiclient.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from scheduler.core.availability import Availability
from scheduler.core.config import Config, Group
from scheduler.core.ports import PublishersFactory, ReplyInbox, Transport, TransportFactory


def transport_factory(dry_run: bool) -> TransportFactory:
    """SMTP or Maildir as the config says; a dry run gets a transport that sends nothing."""
    from integrations.mail import DryRunTransport, transport_for

    if dry_run:
        def dry(config: Config) -> Transport:
            return DryRunTransport()

        return dry
    return transport_for


def maildir_transport(path: Path) -> Transport:
    """A transport that writes into the Maildir at `path` whatever the config says (`simulate`)."""
    from integrations.mail import MaildirTransport

    return MaildirTransport(path)


def publishers_factory() -> PublishersFactory:
    """The shared calendars (Google, CalDAV) a config publishes meetings to."""
    from integrations.publish import publishers_for

    return publishers_for


def reply_inbox() -> ReplyInbox:
    """The Maildir reader for members' replies (RSVPs)."""
    from integrations import inbox

    return inbox


def group_availability(config: Config, group: Group, lo: datetime, hi: datetime) -> dict[str, Availability]:
    """Every member's availability between two instants, from their calendars (an AvailabilityReader).

    Looked up at each call, so a test may replace `integrations.calendars.group_availability`."""
    from integrations import calendars

    return calendars.group_availability(config, group, lo, hi)


def google_sign_in(config: Config, *, port: int, open_browser: bool) -> Path:
    """Google's OAuth flow, once; returns where the refresh token is stored."""
    from integrations.google import authorize

    return authorize(config, port=port, open_browser=open_browser)
