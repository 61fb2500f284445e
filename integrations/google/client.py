"""The Google Calendar API client: signed in, retried, and its failures in words.

Errors follow the outbox's rules (scheduler/app/service.py): 429, 5xx, rate-limit 403s,
time-outs and dropped connections are `SendError(transient=True)` and are retried later with
growing pauses; 401, other 403s and 404 are permanent, and their message says how to fix
them, because the service reports them once to the operator and the coordinators. Within one
call a transient failure is retried a couple of times with a short pause (`execute`), so a
single hiccup does not even reach the outbox. `classify` is this gateway's one error map.

The discovery-based client is imported only when a Google calendar is actually used, so a
service without `[google]` never loads it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scheduler.core.config import Config, Google
from scheduler.core.errors import SendError
from scheduler.core.log import event
from scheduler.core.ports import WriteFile

from ..exchange import Exchange, shut
from ..secrets import scrub
from .auth import auth_fix, google_settings, load_oauth_credentials, load_service_account_credentials, save_token

# Transient failures are retried this many times within one call, after these pauses
# (seconds); anything longer is the outbox's job, which waits minutes, not seconds. The whole
# call, retries and pauses included, has one deadline: [google] timeout_seconds.
RETRIES = 2
BACKOFF = (1.0, 2.0)

# 403s that mean "slow down", not "not allowed" (Calendar API usage limits).
RATE_LIMIT_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"}


ServiceFactory = Callable[[], Any]   # returns a googleapiclient Resource for calendar v3


class Connection:
    """Credentials and the Calendar client for one `[google]` table.

    Call it to get the client. The access token lasts an hour: each call checks it and, when
    it has expired, refreshes it up front and (OAuth) stores it, so a restart does not need a
    refresh and a revoked sign-in shows up as one clear error before any request is made.
    """

    def __init__(self, google: Google, folder: Path, write_file: WriteFile | None, *, http: Any = None):
        self.google = google
        self.folder = folder
        self.write_file = write_file  # stores a refreshed sign-in; None keeps it in memory only
        self._http = http            # an httplib2.Http (tests: HttpMockSequence); None builds one
        self._credentials = None
        self._service = None

    def _base_http(self):
        if self._http is None:
            import httplib2

            self._http = httplib2.Http(timeout=self.google.timeout_seconds)
        return self._http

    def _load(self):
        if self.google.auth == "oauth":
            return load_oauth_credentials(self.google, self.folder)
        return load_service_account_credentials(self.google, self.folder)

    def __call__(self):
        from google_auth_httplib2 import AuthorizedHttp, Request

        if self._credentials is None:
            self._credentials = self._load()
        creds = self._credentials
        if not creds.valid:
            try:
                with _Bounded(self._base_http(), self.google.timeout_seconds) as exchange:
                    try:
                        creds.refresh(Request(self._base_http()))
                    except Exception as exc:
                        if exchange.cut:
                            raise _cut_exception(exchange) from None
                        raise
            except Exception as exc:
                # Read the files again next time: the operator may have signed in again meanwhile.
                self._credentials = self._service = None
                raise classify(exc, self.google, self.folder, "signing in") from None
            if self.google.auth == "oauth" and self.write_file is not None:
                try:
                    save_token(creds, self.folder / Path(self.google.token).expanduser(), self.write_file)
                except OSError as exc:  # the new token still works in memory; say so and go on
                    event("Google sign-in refreshed but not stored", logging.WARNING, path=self.google.token,
                          error=exc.strerror or str(exc))
                else:
                    event("Google sign-in refreshed", path=self.google.token)
        if self._service is None:
            from googleapiclient.discovery import build

            self._service = build("calendar", "v3", http=AuthorizedHttp(creds, http=self._base_http()),
                                  static_discovery=True, cache_discovery=False)
        return self._service


_connections: dict[tuple[Path, Google], Connection] = {}


def connection(config: Config, write_file: WriteFile | None) -> Connection:
    """The process's one Connection for this config's `[google]` table (the token is reused).
    `write_file` stores a refreshed OAuth sign-in (the app's atomic write, from the CLI)."""
    google = google_settings(config)
    key = (config.folder, google)
    if key not in _connections:
        _connections[key] = Connection(google, config.folder, write_file)
    elif write_file is not None:
        _connections[key].write_file = write_file
    return _connections[key]


def calendar_service(config: Config, write_file: WriteFile | None = None, *, http: Any = None):
    """The Calendar v3 client for `config`, signed in; `http` (e.g. HttpMockSequence) replaces the network."""
    if http is not None:
        return Connection(google_settings(config), config.folder, write_file, http=http)()
    return connection(config, write_file)()


def _error_reasons(exc) -> list[str]:
    """The `reason`s of a Google JSON error body ({"error": {"errors": [{"reason": ...}]}})."""
    try:
        data = json.loads(exc.content.decode("utf-8"))
        error = data["error"]
        reasons = [e["reason"] for e in error.get("errors", []) if isinstance(e, dict) and e.get("reason")]
        if error.get("status"):
            reasons.append(error["status"])
        return reasons
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
        return []


def classify(exc: BaseException, google: Google, folder: Path | str, what: str,
             calendar: str | None = None) -> SendError:
    """Any failure of a Google call as a SendError whose message names the fix.

    `what` says what was being done ("publishing to calendar 'primary'"), for the one line
    the operator and the coordinators read.
    """
    import httplib2
    from google.auth import exceptions as auth_errors
    from googleapiclient.errors import HttpError

    prefix = f"Google Calendar, {what}"
    if isinstance(exc, SendError):
        return exc
    if isinstance(exc, HttpError):
        status = exc.status_code
        reasons = _error_reasons(exc)
        label = scrub(f"{status} {reasons[0] if reasons else (exc.resp.reason or '')}", limit=80).strip()
        if status == 429 or status >= 500 or (status == 403 and RATE_LIMIT_REASONS & set(reasons)):
            return SendError(f"{prefix}: {label}: Google is busy or limiting requests",
                             transient=True, code=status)
        if status == 409:
            # "duplicate": the event exists but the search did not see it yet; the retry finds it.
            return SendError(f"{prefix}: {label}: the event exists but was not found yet", transient=True, code=status)
        if status == 401:
            return SendError(f"{prefix}: {label}: Google refused the credentials; {auth_fix(google, folder)}",
                             transient=False, code=status)
        if status == 403:
            if {"accessNotConfigured", "SERVICE_DISABLED"} & set(reasons):
                fix = ("enable the Google Calendar API in the Cloud project that owns the credentials "
                       "(console: APIs & Services > Library > Google Calendar API > Enable)")
            elif calendar:
                who = "the signed-in account" if google.auth == "oauth" else google.subject
                fix = (f"{who} needs \"Make changes to events\" on calendar {calendar!r}: share it with that "
                       f"account in Google Calendar's settings; or {auth_fix(google, folder)}")
            else:
                fix = f"the account friendtor uses is not allowed to do this; {auth_fix(google, folder)}"
            return SendError(f"{prefix}: {label}: not allowed; {fix}", transient=False, code=status)
        if status in (404, 410):
            where = f"calendar {calendar!r}" if calendar else "the calendar"
            return SendError(f"{prefix}: {label}: {where} not found; check [google] calendar in service.toml "
                             "and that the calendar is shared with the account friendtor uses",
                             transient=False, code=status)
        return SendError(f"{prefix}: {label}: Google refused the request ({scrub(str(exc.reason))})",
                         transient=False, code=status)
    if isinstance(exc, auth_errors.RefreshError):
        if exc.retryable:
            return SendError(f"{prefix}: Google's sign-in service did not answer", transient=True)
        # The text of a RefreshError is Google's error code ("invalid_grant: Token has been expired
        # or revoked.", "unauthorized_client: ..."), never the token itself.
        first = str(exc.args[0]) if exc.args else type(exc).__name__
        return SendError(f"{prefix}: Google refused the sign-in ({scrub(first.splitlines()[0] if first else '')}); "
                         f"{auth_fix(google, folder)}", transient=False)
    if isinstance(exc, (auth_errors.TransportError, httplib2.HttpLib2Error, OSError)):
        # The text of a transport error may hold a URL with a token in its query: scrubbed.
        return SendError(f"{prefix}: cannot reach Google ({type(exc).__name__}: {scrub(str(exc))})",
                         transient=True)
    raise exc  # anything else is a bug: let it reach the debug log with its traceback


def _is_gone(exc: BaseException) -> bool:
    from googleapiclient.errors import HttpError

    return isinstance(exc, HttpError) and exc.status_code in (404, 410)


def execute(request, *, retries: int = RETRIES, sleep: Callable[[float], None] = time.sleep,
            on_error: Callable[[BaseException], SendError], gone_ok: bool = False,
            seconds: float | None = None):
    """Run one API request; retry transient failures `retries` times, then raise a SendError.

    The whole call, retries and their pauses included, ends within `seconds` (by default the
    timeout of the request's httplib2.Http, i.e. [google] timeout_seconds): httplib2 bounds
    only each socket wait, so a watchdog shuts its connections down at the deadline, and a
    pause that would run past it is not taken.
    `gone_ok`: a 404/410 answer is success (None), for deleting what may already be deleted.
    """
    http = _httplib2_of(request)
    with _Bounded(http, seconds or getattr(http, "timeout", None) or DEFAULT_SECONDS) as exchange:
        attempt = 0
        while True:
            try:
                answer = request.execute()
            except Exception as exc:
                if exchange.cut:
                    raise on_error(_cut_exception(exchange)) from None
                if gone_ok and _is_gone(exc):
                    return None
                error = on_error(exc)
            else:
                if exchange.cut:  # an answer cut short at the deadline can still parse: it is no answer
                    raise on_error(_cut_exception(exchange))
                return answer
            pause = BACKOFF[min(attempt, len(BACKOFF) - 1)]
            if not error.transient or attempt >= retries or pause >= exchange.remaining():
                raise error from None
            sleep(pause)
            attempt += 1


DEFAULT_SECONDS = 30.0  # the default of [google] timeout_seconds, for an Http that has none


def _httplib2_of(request) -> Any:
    """The httplib2.Http under a request (googleapiclient's `http`, maybe an AuthorizedHttp)."""
    http = getattr(request, "http", None)
    for _ in range(3):
        if http is None or hasattr(http, "connections"):
            return http
        http = getattr(http, "http", None)
    return None


class _Bounded:
    """An Exchange over an httplib2.Http: at the deadline (or SIGTERM) its open connections
    are shut down, and any it opens afterwards (httplib2 reconnects once by itself) wait no
    more than a moment; its timeout is put back at the end."""

    def __init__(self, http: Any, seconds: float):
        self.http = http
        self.exchange = Exchange(seconds)
        self._timeout = getattr(http, "timeout", None)

    def __enter__(self) -> Exchange:
        self.exchange.__enter__()
        self.exchange.on_cut(self._cut)
        return self.exchange

    def __exit__(self, *exc_info) -> None:
        self.exchange.__exit__(*exc_info)
        if self.http is not None and hasattr(self.http, "timeout"):
            self.http.timeout = self._timeout

    def _cut(self) -> None:
        if self.http is None or not hasattr(self.http, "connections"):
            return
        self.http.timeout = 0.01
        for conn in list(self.http.connections.values()):
            conn.timeout = 0.01
            shut(getattr(conn, "sock", None))


def _cut_exception(exchange: Exchange) -> OSError:
    if exchange.aborted:
        return ConnectionAbortedError("the call was interrupted: friendtor is stopping")
    return TimeoutError(f"no answer within {exchange.seconds:g} s (timeout_seconds in [google], "
                        "for the whole call, retries included)")
