"""Fetching calendar feeds over HTTP(S): bounded in time and size, so one slow or huge feed
cannot hold up the whole group, and cached on disk with ETag / Last-Modified.

A feed URL (a Google or Outlook "secret address") is a password in all but name: anyone
who has it reads the member's calendar. So it is never logged or shown in full (`redact`
keeps the scheme and host), never used as a file name (the cache files are named after
its SHA-256), and the cache files are 0600 in a 0700 folder.

When a feed that was read before stops answering (time-out, refused connection, 5xx, a
body that is not iCalendar, a body over the size limit), the cached copy is used for up to
`MAX_STALE` (24 h) after the server last confirmed it, with a note the caller logs: a
calendar a day old is a better guess than "unknown" for a meeting weeks away, and a
passing outage of Google or Outlook should not turn a whole group tentative. After that
the member is unknown. A 4xx answer (404, 410, 401, 403: the secret address was reset or
revoked) is not an outage, so it makes the member unknown at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from scheduler.core.errors import CalendarError, FeedUnavailable
from scheduler.core.ports import WriteFile

from . import http

TIMEOUT_SECONDS = 15
MAX_BYTES = 10 * 1024 * 1024  # a year of a busy person's calendar is well under 1 MB
MAX_STALE = timedelta(hours=24)
WHERE = "the calendar feed"  # how errors name the server: never by its URL, which is a secret


def redact(url: str) -> str:
    """A feed URL as it may appear in logs and messages: scheme and host, never the secret path."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "?"
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}/…"


def fetch(url: str, *, timeout: float = TIMEOUT_SECONDS, max_bytes: int = MAX_BYTES) -> bytes:
    """The body of `url`, uncached, or CalendarError saying why not (in words, without the URL)."""
    body, _ = _get(url, {}, timeout=timeout, max_bytes=max_bytes)
    assert body is not None  # no conditional headers, so never a 304
    return body


def _unavailable(text: str, transient: bool) -> FeedUnavailable:
    """The feed gateway's one error map: no answer at all (time-out, reset, TLS, a broken or
    oversized body) is an outage, whatever the cause, so a recent cached copy may stand in."""
    return FeedUnavailable(text, outage=True)


def _get(url: str, headers: dict[str, str], *, timeout: float,
         max_bytes: int) -> tuple[bytes | None, dict[str, str]]:
    """(body, response headers); body None for a 304. Raises FeedUnavailable."""
    answer = http.get(url, {"Accept": "text/calendar", **headers}, where=WHERE, timeout=timeout,
                      max_bytes=max_bytes, fail=_unavailable)
    if answer.status == 304:
        return None, answer.headers
    if not 200 <= answer.status < 300:
        # 408 and 429 are the server asking for patience, like a 5xx; any other 4xx (404,
        # 410, 401, 403: the secret address was reset or revoked) is not an outage.
        outage = answer.status >= 500 or answer.status in (408, 429)
        raise FeedUnavailable(f"{WHERE} answered HTTP {answer.status}", outage=outage)
    return answer.body, answer.headers


def looks_like_icalendar(body: bytes) -> bool:
    """A cheap check before a body replaces a good cached copy: an HTML login page or an
    error text served with 200 must not."""
    return body.lstrip(b"\xef\xbb\xbf \t\r\n")[:15].upper() == b"BEGIN:VCALENDAR"


@dataclass(frozen=True)
class Feed:
    body: bytes
    note: str | None = None  # set when a stale copy stands in: why, and how old it is


class FeedCache:
    """Fetches feeds with conditional requests and keeps the last good copy of each.

    Files, in `folder` (created 0700 on first use): `<sha256 of url>.ics`, the body, and
    `<sha256>.json`, {etag, last_modified, checked, sha256 of the body}; both 0600, written
    atomically. A copy whose JSON does not match its body (two processes wrote at once) is
    ignored. Failing to write the cache never fails a fetch: the body is still returned.

    `write_file` is the app's atomic write (the WriteFile port), handed in by the CLI; None
    reads the cache but never writes it, for a caller that must leave the service's files as
    they are. `clock` gives the current time (aware, UTC). The cache is I/O-edge code, like
    the HTTP request itself; the planner never sees it, and tests pass their own clock.
    """

    def __init__(self, folder: Path, write_file: WriteFile | None, *, timeout: float | None = None,
                 max_bytes: int | None = None, max_stale: timedelta | None = None,
                 clock: Callable[[], datetime] | None = None):
        # Defaults are read here, not at import, so the module's limits can be tuned in one place.
        self.folder = Path(folder)
        self.write_file = write_file
        self.timeout = TIMEOUT_SECONDS if timeout is None else timeout
        self.max_bytes = MAX_BYTES if max_bytes is None else max_bytes
        self.max_stale = MAX_STALE if max_stale is None else max_stale
        self.clock = clock or _now  # a module function: the cache is handed to a worker process

    def paths(self, url: str) -> tuple[Path, Path]:
        name = hashlib.sha256(url.encode()).hexdigest()
        return self.folder / f"{name}.ics", self.folder / f"{name}.json"

    def get(self, url: str) -> Feed:
        """The feed's body (fresh, revalidated, or a stale copy with a note), or CalendarError."""
        cached = self._load(url)
        headers = {}
        if cached is not None:
            meta = cached[1]
            if meta.get("etag"):
                headers["If-None-Match"] = meta["etag"]
            if meta.get("last_modified"):
                headers["If-Modified-Since"] = meta["last_modified"]
        try:
            body, answer = _get(url, headers, timeout=self.timeout, max_bytes=self.max_bytes)
            if body is not None and not looks_like_icalendar(body):
                raise FeedUnavailable("the calendar feed did not return an iCalendar file"
                                      f"{_kind(answer.get('content-type'))}", outage=True)
        except FeedUnavailable as exc:
            return self._stale(url, cached, exc)
        now = self.clock()
        if body is None:  # 304: our copy is current
            if cached is None:  # a 304 we did not ask for
                raise CalendarError("the calendar feed answered 304 Not Modified to a plain request")
            body, meta = cached
            meta = {**meta, "checked": _iso(now)}
            # A 304 may carry a new validator (RFC 9110 15.4.5).
            if answer.get("etag"):
                meta["etag"] = answer["etag"]
            self._save(url, None, meta)
            return Feed(body)
        meta = {"etag": answer.get("etag"), "last_modified": answer.get("last-modified"), "checked": _iso(now),
                "sha256": hashlib.sha256(body).hexdigest(), "host": redact(url)}
        self._save(url, body, meta)
        return Feed(body)

    def stale(self, url: str, reason: str) -> Feed:
        """The cached copy after a failure the caller saw itself (a worker that ran out of time
        fetching the feed), on the same terms as an outage; CalendarError when there is none."""
        return self._stale(url, self._load(url), FeedUnavailable(reason, outage=True))

    def _stale(self, url: str, cached: tuple[bytes, dict] | None, exc: FeedUnavailable) -> Feed:
        if cached is None or not exc.outage:
            raise exc
        body, meta = cached
        try:
            checked = datetime.fromisoformat(meta["checked"])
        except (KeyError, TypeError, ValueError):
            raise exc from None
        age = self.clock() - checked
        if age > self.max_stale:
            raise CalendarError(f"{exc}; the last good copy is {_age(age)} old, too old to use") from None
        return Feed(body, note=f"{exc}; using the copy from {_age(age)} ago")

    def _load(self, url: str) -> tuple[bytes, dict] | None:
        body_path, meta_path = self.paths(url)
        try:
            meta = json.loads(meta_path.read_text("utf-8"))
            body = body_path.read_bytes()
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict) or meta.get("sha256") != hashlib.sha256(body).hexdigest():
            return None
        return body, meta

    def _save(self, url: str, body: bytes | None, meta: dict) -> None:
        if self.write_file is None:
            return
        body_path, meta_path = self.paths(url)
        try:
            self._folder()
            if body is not None:
                self.write_file(body_path, body, 0o600)
            self.write_file(meta_path, json.dumps(meta, indent=1).encode(), 0o600)
        except OSError:
            # A cache that cannot be written (a folder created by root with `sudo friendtor
            # slots`, a full disk) costs a full download next time, nothing more.
            with contextlib.suppress(OSError):
                meta_path.unlink()

    def _folder(self) -> None:
        try:
            self.folder.mkdir(mode=0o700, parents=True)
        except FileExistsError:
            return
        os.chmod(self.folder, 0o700)  # mkdir's mode is filtered by the umask


def _now() -> datetime:
    return datetime.now(UTC)


def _kind(content_type: str | None) -> str:
    kind = (content_type or "").split(";")[0].strip()[:40]
    # Named only when it is a media type: a header is the server's text, not friendtor's words.
    return f" (got {kind})" if re.fullmatch(r"[A-Za-z0-9.+-]+/[A-Za-z0-9.+-]+", kind) else ""


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat()


def _age(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{max(minutes, 0)} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // (24 * 60)} days"
