"""Reading each member's busy time from wherever their `calendar` key points.

`write_file` (the WriteFile port, the app's atomic write handed in by the CLI) is how the
feed cache and a refreshed Google sign-in reach the disk; without it both are only read.
`availability_reader` gives the AvailabilityReader the service is wired with.
"""

from __future__ import annotations

import functools
import logging
import os
import pickle
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from scheduler.core.availability import NO_CALENDAR, Availability
from scheduler.core.config import Config, Group, Member
from scheduler.core.errors import CalendarError, FriendtorError
from scheduler.core.fields import OUTSIDE_FOLDERS, calendar_folders, inside
from scheduler.core.log import event
from scheduler.core.ports import AvailabilityReader, WriteFile

from . import calcache

if TYPE_CHECKING:  # feeds, http and the worker pool are loaded when a read needs them: a command
    from . import feeds, workers  # whose answers are all kept (calcache) loads none of them
from .calcache import CalendarBudget


def feed_cache(config: Config, write_file: WriteFile | None) -> feeds.FeedCache:
    """The feed cache: `feeds/` next to the state file (var/feeds by default)."""
    from . import feeds

    return feeds.FeedCache(config.service.local_folder(config.folder) / "feeds", write_file)


def _google(config: Config, members: list[Member], start: datetime, end: datetime,
            google: Callable[[], object] | None, write_file: WriteFile | None) -> dict[str, Availability]:
    """Members with "google:" calendars, by email, in as few freebusy requests as possible.
    Imported here: without Google calendars the Google client is never loaded."""
    from .google import members_availability

    return members_availability(config, members, start, end, write_file=write_file, service=google)


def busy_from_ics(*args, **kwargs) -> Availability:
    """integrations.ics.busy_from_ics, imported at the first read (see `_read_all`): a command
    whose calendars' answers are all kept never loads icalendar and its companions."""
    from .ics import busy_from_ics as read

    return read(*args, **kwargs)


def budget(config: Config) -> CalendarBudget:
    """One calendar read's budget, from service.toml [limits]."""
    limits = config.service.limits
    return CalendarBudget(occurrences=limits.calendar_occurrences, seconds=limits.calendar_seconds)


@dataclass(frozen=True)
class _Read:
    """A calendar read to run in a worker: `func(*args)` within calendar_seconds plus
    `extra_seconds` (a server's own time-outs); `finish` turns what it gave (a value, or an
    unknown Availability naming the limit it hit) into the member's Availability."""

    func: Callable
    args: tuple
    extra_seconds: float = 0
    finish: Callable[[object], Availability] = lambda got: got  # noqa: E731 - the common case
    keep: tuple | None = None  # (digest, window key): where the answer goes in calcache.CACHE
    disk: calcache.DiskCache | None = None  # ... and on disk, for the next command


def member_availability(
    config: Config, member: Member, start: datetime, end: datetime,
    *, write_file: WriteFile | None = None, fetch: Callable[[str], bytes] | None = None,
    environ: Mapping[str, str] | None = None, google: Callable[[], object] | None = None,
) -> Availability:
    """One member's availability between `start` and `end`; unreadable means `unknown`, not free.

    Feed URLs go through the on-disk cache unless `fetch` is given (then it is called as is).
    `google` returns the Google Calendar client (tests: one over HttpMockSequence); by default
    it is built from the service's [google] credentials. Files, feeds and CalDAV calendars are
    read in a worker process (integrations.workers) within the [limits] deadline and memory.
    """
    if member.calendar and member.calendar.lower().startswith("google:"):
        return _google(config, [member], start, end, google, write_file)[member.email]
    return _read_all(config, [_plan(config, member, start, end, write_file, fetch, environ)])[0]


def _plan(config: Config, member: Member, start: datetime, end: datetime, write_file: WriteFile | None,
          fetch: Callable[[str], bytes] | None, environ: Mapping[str, str] | None) -> Availability | _Read:
    """What reading a (non-Google) member's calendar takes: an answer already, or a worker read."""
    spec = member.calendar
    if spec is None:
        return NO_CALENDAR
    lower = spec.lower()
    if lower.startswith("caldav:"):
        return _caldav(config, member, spec[len("caldav:"):], start, end,
                       os.environ if environ is None else environ)
    if lower.startswith(("http://", "https://")) and fetch is None and _picklable(write_file):
        return _feed_in_worker(config, member, spec, start, end, write_file)
    try:
        if lower.startswith(("http://", "https://")):
            data = fetch(spec) if fetch is not None else _feed(config, member, spec, write_file)
        else:
            data = read_calendar_file(config, spec)
    except CalendarError as exc:
        return Availability.unreadable(str(exc))
    except OSError as exc:
        return Availability.unreadable(f"cannot read {spec}: {exc.strerror or type(exc).__name__}")
    return _cached_or_read(config, data, member, start, end, write_file)


def _window(config: Config, member: Member, start: datetime, end: datetime) -> tuple:
    """The cache key's part besides the content: zone, window, and every limit that shapes
    an answer (the occurrences and seconds of the budget, the worker's memory)."""
    return calcache.window_key(member.tz, start, end, (budget(config), config.service.limits.calendar_memory_mb))


def _cached_or_read(config: Config, data: bytes, member: Member, start: datetime, end: datetime,
                    write_file: WriteFile | None = None) -> Availability | _Read:
    """The answer kept for these bytes and this window (in this process, else in the state
    folder), or a worker read that keeps its answer in both."""
    sha, window = calcache.digest(data), _window(config, member, start, end)
    kept = calcache.CACHE.get(sha, window)
    if kept is not None:
        return kept
    disk = disk_cache(config, write_file)
    kept = disk.get(sha, window)
    if kept is not None:
        calcache.CACHE.put(sha, window, kept)
        return kept
    return _Read(busy_from_ics, (data, member.tz, start, end, budget(config)), keep=(sha, window), disk=disk)


def disk_cache(config: Config, write_file: WriteFile | None) -> calcache.DiskCache:
    """The answers kept in the state folder (read-only without `write_file`)."""
    return calcache.DiskCache(config.service.local_folder(config.folder) / calcache.DISK_FOLDER, write_file)


def _read_all(config: Config, plans: list[Availability | _Read]) -> list[Availability]:
    """The plans' answers, the worker reads run side by side (integrations.workers.SIZE at once)."""
    limits = config.service.limits
    reads = [p for p in plans if isinstance(p, _Read)]
    if not reads:
        return list(plans)
    from . import ics, workers  # noqa: F401 - ics loaded once here, so the forked workers start with it

    outcomes = iter(workers.POOL.map([(r.func, r.args, limits.calendar_seconds + r.extra_seconds) for r in reads],
                                     megabytes=limits.calendar_memory_mb))
    answers = []
    for plan in plans:
        if not isinstance(plan, _Read):
            answers.append(plan)
            continue
        outcome = next(outcomes)
        answers.append(plan.finish(_value(config, outcome, plan.extra_seconds)))
        if plan.keep is not None and outcome.failure is None:
            calcache.CACHE.put(*plan.keep, answers[-1])
            if plan.disk is not None:
                plan.disk.put(*plan.keep, answers[-1])
    return answers


def _feed_in_worker(config: Config, member: Member, url: str, start: datetime, end: datetime,
                    write_file: WriteFile | None) -> _Read:
    """A feed fetched *and* parsed in a worker: a server that trickles its headers is cut at
    the deadline (the fetch's own bound, twice its time-out, plus calendar_seconds)."""
    cache = feed_cache(config, write_file)
    cache.max_bytes = config.service.limits.calendar_bytes
    window = _window(config, member, start, end)
    known = calcache.CACHE.known(window)  # held here: an eviction meanwhile costs nothing

    def finish(got: object) -> Availability:
        if isinstance(got, tuple):
            avail, note, sha = got
            if avail is None:  # the body's answer is known: the worker did not parse it
                avail = known[sha]
                calcache.CACHE.hit()
            elif sha is not None:
                calcache.CACHE.put(sha, window, avail)
        else:  # the worker ran out of time or memory: for the member, an outage like any other
            try:  # so a recent cached copy stands in
                cached = cache.stale(url, f"the calendar feed: {got.unknown}")
            except CalendarError:
                return got
            avail, note = _read_all(config, [_Read(busy_from_ics, (cached.body, member.tz, start, end,
                                                                   budget(config)))])[0], cached.note
        if note and avail.unknown is None:
            from . import feeds

            # The URL is a secret: only its host goes into the log.
            event("calendar feed unavailable, cached copy used", logging.WARNING, member=member.email,
                  feed=feeds.redact(url), note=note)
        return avail

    return _Read(_read_feed, (cache, url, member.tz, start, end, budget(config), frozenset(known)),
                 2 * cache.timeout, finish)


def _picklable(value: object) -> bool:
    try:
        pickle.dumps(value)
    except Exception:  # a lambda or a closure: the feed is then fetched here, parsed in the worker
        return False
    return True


def _read_feed(cache: feeds.FeedCache, url: str, zone, start: datetime, end: datetime,
               limit: CalendarBudget, known: frozenset[str]) -> tuple[Availability | None, str | None, str | None]:
    """In the worker: the feed through its cache, then its busy time (None when the parent
    already holds the answer for a body with this digest), the cache's note, the digest."""
    try:
        got = cache.get(url)
    except CalendarError as exc:
        return Availability.unreadable(str(exc)), None, None
    sha = calcache.digest(got.body)
    if sha in known:
        return None, got.note, sha
    return busy_from_ics(got.body, zone, start, end, limit), got.note, sha


def _value(config: Config, outcome: workers.Outcome, extra_seconds: float):
    """What a worker gave, or an unreadable Availability saying which limit was hit."""
    limits = config.service.limits
    if outcome.failure is None:
        return outcome.value
    if outcome.failure == "time":
        also = " plus the server's time-outs" if extra_seconds else ""
        return Availability.unreadable(f"reading it took more than {limits.calendar_seconds + extra_seconds:g} s "
                                       f"(limit [limits] calendar_seconds{also})")
    if outcome.failure == "stopped":  # SIGTERM: the tick that asked keeps no plan on this
        return Availability.unreadable("not read: the service is stopping")
    if outcome.failure == "memory":
        return Availability.unreadable(f"reading it took more memory than {limits.calendar_memory_mb} MB "
                                       "(limit [limits] calendar_memory_mb)")
    # A bug in a reader, or a crash in C code: the operator gets its type, the member "unknown".
    event("calendar reader failed", logging.ERROR, error=outcome.value or "the worker process died")
    return Availability.unreadable("reading it failed unexpectedly (the reader stopped)")


def read_calendar_file(config: Config, spec: str) -> bytes:
    """A local calendar file's bytes, checked again now (a symlink may have changed since
    `validate`): inside the allowed folders, a regular file, within [limits] calendar_bytes.
    Nothing of a refused file is read. Raises CalendarError or OSError."""
    limits = config.service.limits
    path = config.path(spec)
    real = path.resolve()
    allowed = [Path(f).resolve() for f in calendar_folders(config.folder, limits.calendar_folders)]
    if not inside(real, allowed):
        raise CalendarError(f"the file {OUTSIDE_FOLDERS}")
    # O_NOFOLLOW: the resolved path is opened, and if its last part became a symlink since,
    # the open fails instead of following it; O_NONBLOCK: a FIFO does not hang the open.
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(real, flags)
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise CalendarError("it is not a regular file; point calendar at an .ics file")
        if info.st_size > limits.calendar_bytes:
            raise _too_big(limits.calendar_bytes)
        data = f.read(limits.calendar_bytes + 1)
    if len(data) > limits.calendar_bytes:  # it grew since fstat
        raise _too_big(limits.calendar_bytes)
    return data


def _too_big(limit: int) -> CalendarError:
    from .http import size_text

    return CalendarError(f"the file is larger than {size_text(limit)} (limit [limits] calendar_bytes)")


def _feed(config: Config, member: Member, url: str, write_file: WriteFile | None) -> bytes:
    cache = feed_cache(config, write_file)
    cache.max_bytes = config.service.limits.calendar_bytes
    got = cache.get(url)
    if got.note:
        from . import feeds

        # The URL is a secret: only its host goes into the log.
        event("calendar feed unavailable, cached copy used", logging.WARNING, member=member.email,
              feed=feeds.redact(url), note=got.note)
    return got.body


def _caldav(config: Config, member: Member, url: str, start: datetime, end: datetime,
            environ: Mapping[str, str]) -> Availability | _Read:
    from . import feeds
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
    # In a worker like files and feeds: the answer is parsed by icalendar, and the exchange
    # (two requests at most, each bounded by twice `timeout`) is cut at the same deadline.
    return _Read(functools.partial(caldav_busy, auth=auth, timeout=timeout, zone=member.tz),
                 (url, start, end), 4 * timeout)


def group_availability(
    config: Config, group: Group, start: datetime, end: datetime,
    *, write_file: WriteFile | None = None, fetch: Callable[[str], bytes] | None = None,
    environ: Mapping[str, str] | None = None, google: Callable[[], object] | None = None,
) -> dict[str, Availability]:
    """Every member's availability, by email. Google calendars are asked together (50 a request)."""
    googled = [m for m in group.members if m.calendar and m.calendar.lower().startswith("google:")]
    found = _google(config, googled, start, end, google, write_file) if googled else {}
    others = [m for m in group.members if m.email not in found]
    read = _read_all(config, [_plan(config, m, start, end, write_file, fetch, environ) for m in others])
    got = {**found, **dict(zip((m.email for m in others), read, strict=True))}
    got = {m.email: got[m.email] for m in group.members}  # in the group's order, as before
    for email, avail in got.items():
        _log_once(group.id, email, avail)
    return got


# What was last logged about each member's calendar, by (group, member): the service reads
# every calendar every tick, and an operator needs one line when it breaks, not one a tick.
_TOLD: dict[tuple[str, str], tuple[str | None, int]] = {}


def _log_once(group: str, email: str, avail: Availability) -> None:
    key, now = (group, email), (avail.unknown, avail.skipped)
    before = _TOLD.get(key, (None, 0))
    if now == before:
        return
    if len(_TOLD) > 100_000:  # members come and go over years; never let this grow without bound
        _TOLD.clear()
    _TOLD[key] = now
    if avail.unknown is not None and avail.unknown != before[0]:
        event("calendar unknown", logging.WARNING, group=group, member=email, reason=avail.unknown)
    elif avail.unknown is None and before[0] is not None:
        event("calendar readable again", group=group, member=email)
    if avail.skipped and avail.skipped != before[1]:
        event("calendar events could not be read", logging.WARNING, group=group, member=email,
              events=avail.skipped)


def availability_reader(write_file: WriteFile) -> AvailabilityReader:
    """The AvailabilityReader the CLI hands the service and the reports: `group_availability`
    with the app's file writer, so feed caches and refreshed sign-ins are kept."""
    def read(config: Config, group: Group, start: datetime, end: datetime) -> dict[str, Availability]:
        return group_availability(config, group, start, end, write_file=write_file)

    return read
