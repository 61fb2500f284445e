"""Talking to one CalDAV server: the login, which URLs it may go to, and requests through
the shared bounded HTTP helper (integrations/http.py).

Basic auth is sent only over https, or plain http to a loopback address: a password in
clear text on the network is refused before any request is made.
"""

from __future__ import annotations

import base64
import os
import ssl
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from scheduler.core.config import CalDav
from scheduler.core.errors import SetupError

from .. import http
from ..hosts import is_loopback
from ..secrets import password_from_env

MAX_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class Auth:
    """HTTP Basic credentials; the password never shows in a repr or log."""

    username: str
    password: str = field(repr=False)


def caldav_auth(settings: CalDav, environ: Mapping[str, str] = os.environ) -> Auth | None:
    """The [caldav] login, with the password read from the variable `password_env` names."""
    password = password_from_env("[caldav]", settings.password_env, settings.username, environ, "CalDAV")
    if password is not None:
        return Auth(settings.username, password)
    if settings.username:
        raise SetupError("[caldav] username is set but there is no password: set password_env to the "
                         "name of an environment variable that holds it")
    return None


class DavClient:
    """Requests to one CalDAV server; every URL it is given must be on that server.

    `fail` builds the error for a request that got no answer (http.Fail): the busy reader
    makes it a CalendarError, the publisher a SendError. `setting` names where the URL comes
    from in the config ("[caldav] url"), so a setup error says which setting to fix.
    """

    def __init__(self, url: str, auth: Auth | None, timeout: float, *, fail: http.Fail,
                 max_bytes: int = MAX_BYTES, ssl_context: ssl.SSLContext | None = None,
                 setting: str | None = None):
        parts = urllib.parse.urlsplit(url)
        named = f"{setting}: " if setting else ""
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise SetupError(f"{named}{display(url)} is not an http(s) URL")
        self.scheme = parts.scheme.lower()
        self.host = parts.hostname
        self.port = parts.port or (443 if self.scheme == "https" else 80)
        self.where = f"the CalDAV server {self.host}" + (f":{parts.port}" if parts.port else "")
        if auth is not None and self.scheme == "http" and not is_loopback(self.host):
            raise SetupError(f"{named}refusing to send the CalDAV password for {auth.username!r} in clear text "
                             f"to {self.host} (an http:// URL); use https://")
        self.auth = auth
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.fail = fail
        self._context = ssl_context

    def __repr__(self) -> str:
        return f"DavClient({self.scheme}://{self.host}:{self.port})"

    def request(self, method: str, url: str, body: bytes | None = None,
                headers: Mapping[str, str] | None = None) -> http.Response:
        sent = dict(headers or {})
        if self.auth is not None:
            token = base64.b64encode(f"{self.auth.username}:{self.auth.password}".encode()).decode()
            sent["Authorization"] = f"Basic {token}"
        return http.request(method, url, body, sent, where=self.where, timeout=self.timeout,
                            max_bytes=self.max_bytes, fail=self.fail, ssl_context=self._context)


def display(url: str) -> str:
    """A URL as it may be shown: without user:password@ and without a query string."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def collection_url(url: str) -> str:
    """A collection's URL ends in '/': relative hrefs resolve under it."""
    return url if url.endswith("/") else url + "/"


def same_host(a: str, b: str) -> bool:
    ha, hb = urllib.parse.urlsplit(a).hostname, urllib.parse.urlsplit(b).hostname
    return ha is not None and ha == hb


def stamp(dt: datetime) -> str:
    """An instant as CalDAV's time-range wants it: UTC, basic format."""
    return dt.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
