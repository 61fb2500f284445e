"""Reading each member's busy time from wherever their `calendar` key points.

`write_file` (the WriteFile port, the app's atomic write handed in by the CLI) is how the
feed cache and a refreshed Google sign-in reach the disk; without it both are only read.
`availability_reader` gives the AvailabilityReader the service is wired with.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from datetime import datetime

from scheduler.core.availability import NO_CALENDAR, Availability
from scheduler.core.config import Config, Group, Member
from scheduler.core.errors import CalendarError, FriendtorError
from scheduler.core.log import event
from scheduler.core.ports import AvailabilityReader, WriteFile

from . import feeds
from .ics import busy_from_ics


def feed_cache(config: Config, write_file: WriteFile | None) -> feeds.FeedCache:
    """The feed cache: `feeds/` next to the state file (var/feeds by default)."""
    return feeds.FeedCache(config.path(config.service.state).parent / "feeds", write_file)


def _google(config: Config, members: list[Member], start: datetime, end: datetime,
            google: Callable[[], object] | None, write_file: WriteFile | None) -> dict[str, Availability]:
    """Members with "google:" calendars, by email, in as few freebusy requests as possible.
    Imported here: without Google calendars the Google client is never loaded."""
    from .google import members_availability

    return members_availability(config, members, start, end, write_file=write_file, service=google)


def member_availability(
    config: Config, member: Member, start: datetime, end: datetime,
    *, write_file: WriteFile | None = None, fetch: Callable[[str], bytes] | None = None,
    environ: Mapping[str, str] | None = None, google: Callable[[], object] | None = None,
) -> Availability:
    """One member's availability between `start` and `end`; unreadable means `unknown`, not free.

    Feed URLs go through the on-disk cache unless `fetch` is given (then it is called as is).
    `google` returns the Google Calendar client (tests: one over HttpMockSequence); by default
    it is built from the service's [google] credentials.
    """
    spec = member.calendar
    if spec is None:
        return NO_CALENDAR
    lower = spec.lower()
    if lower.startswith("google:"):
        return _google(config, [member], start, end, google, write_file)[member.email]
    if lower.startswith("caldav:"):
        return _caldav(config, member, spec[len("caldav:"):], start, end,
                       os.environ if environ is None else environ)
    try:
        if lower.startswith(("http://", "https://")):
            data = fetch(spec) if fetch is not None else _feed(config, member, spec, write_file)
        else:
            data = config.path(spec).read_bytes()
    except CalendarError as exc:
        return Availability.unreadable(str(exc))
    except OSError as exc:
        return Availability.unreadable(f"cannot read {spec}: {exc.strerror or exc}")
    return busy_from_ics(data, member.tz, start, end)


def _feed(config: Config, member: Member, url: str, write_file: WriteFile | None) -> bytes:
    got = feed_cache(config, write_file).get(url)
    if got.note:
        # The URL is a secret: only its host goes into the log.
        event("calendar feed unavailable, cached copy used", logging.WARNING, member=member.email,
              feed=feeds.redact(url), note=got.note)
    return got.body


def _caldav(config: Config, member: Member, url: str, start: datetime, end: datetime,
            environ: Mapping[str, str]) -> Availability:
    from .caldav import caldav_auth, caldav_busy, same_host

    settings = config.service.caldav
    auth = None
    # The [caldav] login goes only to the server it belongs to; other servers are asked anonymously.
    if settings is not None and same_host(url, settings.url):
        try:
            auth = caldav_auth(settings, environ)
        except FriendtorError as exc:
            return Availability.unreadable(str(exc))
    timeout = settings.timeout_seconds if settings is not None else feeds.TIMEOUT_SECONDS
    return caldav_busy(url, start, end, auth=auth, timeout=timeout, zone=member.tz)


def group_availability(
    config: Config, group: Group, start: datetime, end: datetime,
    *, write_file: WriteFile | None = None, fetch: Callable[[str], bytes] | None = None,
    environ: Mapping[str, str] | None = None, google: Callable[[], object] | None = None,
) -> dict[str, Availability]:
    """Every member's availability, by email. Google calendars are asked together (50 a request)."""
    googled = [m for m in group.members if m.calendar and m.calendar.lower().startswith("google:")]
    found = _google(config, googled, start, end, google, write_file) if googled else {}
    return {m.email: found[m.email] if m.email in found
            else member_availability(config, m, start, end, write_file=write_file, fetch=fetch, environ=environ)
            for m in group.members}


def availability_reader(write_file: WriteFile) -> AvailabilityReader:
    """The AvailabilityReader the CLI hands the service and the reports: `group_availability`
    with the app's file writer, so feed caches and refreshed sign-ins are kept."""
    def read(config: Config, group: Group, start: datetime, end: datetime) -> dict[str, Availability]:
        return group_availability(config, group, start, end, write_file=write_file)

    return read
