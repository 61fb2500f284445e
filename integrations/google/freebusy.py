"""Members' busy time from Google Calendar (freebusy.query), in as few requests as possible.

A calendar Google reports an error for, or any calendar of a request that failed as a whole,
is *unknown* with the reason, never free: a member whose calendar could not be read may well
be busy.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from scheduler.core.availability import Availability, Busy
from scheduler.core.config import Config, Google, Member
from scheduler.core.errors import SendError
from scheduler.core.log import event
from scheduler.core.ports import WriteFile

from .client import RETRIES, ServiceFactory, classify, connection, execute

# freebusy.query answers for at most 50 calendars per request, and Google refuses long
# ranges ("timeRangeEmpty"/"tooManyCalendarsRequested" in practice); 60 days is well inside.
MAX_CALENDARS = 50
MAX_SPAN = timedelta(days=60)

# Per-calendar freebusy errors, in words a coordinator can act on.
FREEBUSY_REASONS = {
    "notFound": "not found, or its free/busy is not shared with the account friendtor uses; "
                "ask the member to share it (\"See only free/busy\") or check the calendar id",
    "internalError": "Google could not read it this time; it is read again at the next tick",
    "backendError": "Google could not read it this time; it is read again at the next tick",
    "tooManyCalendarsRequested": "too many calendars in one request (a friendtor bug; please report it)",
    "groupTooBig": "it is a group with too many members to expand; use a person's calendar id",
}


def _rfc3339(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _windows(start: datetime, end: datetime) -> Iterable[tuple[datetime, datetime]]:
    t = start
    while t < end:
        yield t, min(t + MAX_SPAN, end)
        t += MAX_SPAN


def _calendar_reason(calendar_id: str, errors: list[dict[str, Any]]) -> str:
    reason = next((e.get("reason") for e in errors if isinstance(e, dict) and e.get("reason")), "error")
    words = FREEBUSY_REASONS.get(reason, "Google could not read this calendar")
    return f"Google Calendar: {reason}: {calendar_id}: {words}"


def google_busy(service, calendar_ids: Iterable[str], start: datetime, end: datetime, *,
                google: Google | None = None, folder: Path | str = "DIR", retries: int = RETRIES,
                sleep: Callable[[float], None] = time.sleep) -> dict[str, Availability]:
    """Busy time of each calendar id between `start` and `end`, as Availability.

    One freebusy.query per 50 calendars and per 60 days. A calendar that Google reports an
    error for, or any calendar of a request that failed as a whole, is *unknown* with the
    reason, never free: a member whose calendar could not be read may well be busy.

    Free/busy has no "tentative": Google reports only the times the calendar shows as busy
    (events marked "free" are left out), so every interval here is opaque busy time.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("aware datetimes only")
    ids = list(dict.fromkeys(calendar_ids))
    google = google or Google(credentials="-")
    busy: dict[str, list[Busy]] = {cid: [] for cid in ids}
    unknown: dict[str, str] = {}
    refused: set[str] = set()  # ids whose request Google refused for good: someone must act
    for chunk in _chunks(ids, MAX_CALENDARS):
        for lo, hi in _windows(start, end):
            todo = [cid for cid in chunk if cid not in unknown]
            if not todo:
                break
            body = {"timeMin": _rfc3339(lo), "timeMax": _rfc3339(hi), "timeZone": "UTC",
                    "items": [{"id": cid} for cid in todo]}
            try:
                answer = execute(service.freebusy().query(body=body), retries=retries, sleep=sleep,
                                 on_error=lambda exc: classify(exc, google, folder, "reading free/busy"))
            except SendError as exc:
                event("Google free/busy not read; those members count as unknown", logging.WARNING,
                      calendars=len(todo), error=str(exc))
                for cid in todo:
                    unknown[cid] = str(exc)
                    if not exc.transient:
                        refused.add(cid)
                continue
            calendars = answer.get("calendars") or {}
            for cid in todo:
                got = calendars.get(cid)
                if got is None:
                    unknown[cid] = f"Google Calendar: {cid}: no answer for this calendar"
                elif got.get("errors"):
                    unknown[cid] = _calendar_reason(cid, got["errors"])
                else:
                    for b in got.get("busy") or ():
                        s, e = _parse_time(b["start"]), _parse_time(b["end"])
                        if e > s:
                            busy[cid].append(Busy(s, e))
    return {cid: Availability.unreadable(unknown[cid], needs_fix=cid in refused) if cid in unknown
            else Availability(tuple(sorted(busy[cid], key=lambda b: (b.start, b.end))))
            for cid in ids}


def _parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def calendar_id(spec: str) -> str:
    """"google:someone@example.org" -> "someone@example.org"."""
    return spec[len("google:"):].strip()


def members_availability(config: Config, members: Sequence[Member], start: datetime, end: datetime, *,
                         write_file: WriteFile | None = None, service: ServiceFactory | None = None,
                         sleep: Callable[[float], None] = time.sleep) -> dict[str, Availability]:
    """Availability of members whose calendar is "google:<id>", by email, in as few requests as possible.
    `write_file` stores a refreshed sign-in; `service` returns the client (tests: over HttpMock)."""
    if not members:
        return {}
    google = config.service.google
    if google is None:  # validation requires [google] for google: calendars; this is a safety net
        reason = "Google Calendar is not configured: add a [google] table to service.toml (docs/google.md)"
        return {m.email: Availability.unreadable(reason) for m in members}
    try:
        client = (service or connection(config, write_file))()
    except SendError as exc:
        event("Google free/busy not read; those members count as unknown", logging.WARNING,
              calendars=len(members), error=str(exc))
        return {m.email: Availability.unreadable(str(exc), needs_fix=not exc.transient) for m in members}
    by_id = google_busy(client, [calendar_id(m.calendar) for m in members], start, end,
                        google=google, folder=config.folder, sleep=sleep)
    return {m.email: by_id[calendar_id(m.calendar)] for m in members}

