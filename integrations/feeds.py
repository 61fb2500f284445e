"""Fetching calendar feeds over HTTP(S): bounded in time and size, so one slow or huge feed
cannot hold up the whole group."""

from __future__ import annotations

import urllib.error
import urllib.request

from scheduler.errors import CalendarError

TIMEOUT_SECONDS = 15
MAX_BYTES = 10 * 1024 * 1024  # a year of a busy person's calendar is well under 1 MB


def fetch(url: str, *, timeout: float = TIMEOUT_SECONDS, max_bytes: int = MAX_BYTES) -> bytes:
    """The body of `url`, or CalendarError saying why not (in words, without the URL's secret path)."""
    request = urllib.request.Request(url, headers={"User-Agent": "friendtor", "Accept": "text/calendar"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (scheme checked in config)
            body = response.read(max_bytes + 1)
    except urllib.error.HTTPError as exc:
        raise CalendarError(f"the calendar feed answered HTTP {exc.code}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CalendarError(f"the calendar feed could not be fetched ({reason})") from None
    if len(body) > max_bytes:
        raise CalendarError(f"the calendar feed is larger than {max_bytes // (1024 * 1024)} MB")
    return body
