"""Publishing meetings to shared calendars (Google Calendar, CalDAV).

A publisher puts one meeting into a calendar, keyed by the meeting's UID, so publishing the
same meeting again (a retry, or a new SEQUENCE after a move) updates the event in place.
Errors are SendError: transient ones (429, 5xx, time-outs) are retried by the service's
outbox, permanent ones (401/403, 404) are reported to the operator and the coordinators.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from scheduler.core.config import Config
from scheduler.core.ports import Publisher, WriteFile


def publishers_for(config: Config, environ: Mapping[str, str] = os.environ, *,
                   write_file: WriteFile | None = None) -> dict[str, Publisher]:
    """The publishers `service.publish` asks for, by name ("google", "caldav"). `write_file`
    (the app's atomic write, from the CLI) stores a refreshed Google sign-in."""
    out: dict[str, Publisher] = {}
    service = config.service
    if "google" in service.publish and service.google is not None:
        from .google import GooglePublisher

        out["google"] = GooglePublisher.from_config(config, write_file)
    if "caldav" in service.publish and service.caldav is not None:
        from .caldav import CalDavPublisher

        out["caldav"] = CalDavPublisher.from_config(config, environ)
    return out
