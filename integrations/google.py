"""Google Calendar: members' busy time (freebusy.query) and publishing meetings (events).

Two kinds of credentials, chosen by `[google] auth` in service.toml (docs/google.md):
- "oauth": an installed-app OAuth client; `friendtor google-auth` asks a person to consent
  once and stores the refresh token in `[google] token` (0600). Every later run refreshes
  the short-lived access token from it and rewrites the file atomically, still 0600.
- "service-account": a Workspace service account key with domain-wide delegation, acting
  as `[google] subject`. Nothing is stored: the key signs a fresh token when needed.

Tokens never reach a log line or an error message: errors name files and fixes, not values.

Errors follow the outbox's rules (scheduler/service.py): 429, 5xx, rate-limit 403s, time-outs
and dropped connections are `SendError(transient=True)` and are retried later with growing
pauses; 401, other 403s and 404 are permanent, and their message says how to fix them,
because the service reports them once to the operator and the coordinators. Within one call
a transient failure is retried a couple of times with a short pause (`retries`), so a single
hiccup does not even reach the outbox.

The discovery-based client is imported only when a Google calendar is actually used, so a
service without `[google]` never loads it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.core.availability import Availability, Busy
from scheduler.core.config import Config, Google, Group, Member
from scheduler.core.errors import SendError, SetupError
from scheduler.core.log import event
from scheduler.core.meetings import Meeting
from scheduler.app.store import atomic_write

# One scope for both jobs: freebusy alone would do with calendar.readonly, but publishing
# writes events, and asking for two scopes would mean two consents.
SCOPE = "https://www.googleapis.com/auth/calendar"

# freebusy.query answers for at most 50 calendars per request, and Google refuses long
# ranges ("timeRangeEmpty"/"tooManyCalendarsRequested" in practice); 60 days is well inside.
MAX_CALENDARS = 50
MAX_SPAN = timedelta(days=60)

# Transient failures are retried this many times within one call, after these pauses
# (seconds); anything longer is the outbox's job, which waits minutes, not seconds.
RETRIES = 2
BACKOFF = (1.0, 2.0)

# 403s that mean "slow down", not "not allowed" (Calendar API usage limits).
RATE_LIMIT_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"}

# Per-calendar freebusy errors, in words a coordinator can act on.
FREEBUSY_REASONS = {
    "notFound": "not found, or its free/busy is not shared with the account friendtor uses; "
                "ask the member to share it (\"See only free/busy\") or check the calendar id",
    "internalError": "Google could not read it this time; it is read again at the next tick",
    "backendError": "Google could not read it this time; it is read again at the next tick",
    "tooManyCalendarsRequested": "too many calendars in one request (a friendtor bug; please report it)",
    "groupTooBig": "it is a group with too many members to expand; use a person's calendar id",
}

ServiceFactory = Callable[[], Any]   # returns a googleapiclient Resource for calendar v3


# --- credentials and the client -------------------------------------------------------------

def _google(config: Config) -> Google:
    google = config.service.google
    if google is None:
        raise SetupError(f"{config.folder / 'service.toml'}: there is no [google] table; "
                             "add one (see docs/google.md)")
    return google


def _sign_in_again(folder: Path | str) -> str:
    return f"run `friendtor google-auth --config {folder}` to sign in again"


def _auth_fix(google: Google, folder: Path | str) -> str:
    """What an operator does when Google refuses the credentials."""
    if google.auth == "oauth":
        return _sign_in_again(folder)
    return (f"check the service account key ({google.credentials}) and that domain-wide delegation in the "
            f"Workspace admin console grants its client id the scope {SCOPE}, acting as {google.subject}")


def _permanent(message: str) -> SendError:
    return SendError(message, transient=False)


def _client_secrets(path: Path) -> tuple[str, str]:
    """client_id and client_secret from an OAuth client JSON ("Desktop app" download)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        client = data.get("installed") or data.get("web")
        return client["client_id"], client["client_secret"]
    except OSError as exc:
        raise _permanent(f"{path}: cannot read the Google OAuth client file ({exc.strerror or exc}); "
                         "download it from the Google Cloud console, APIs & Services > Credentials "
                         "(docs/google.md)") from None
    except (ValueError, TypeError, KeyError, AttributeError):
        raise _permanent(f"{path}: not a Google OAuth client file (expected JSON with an \"installed\" "
                         "client); create an OAuth client of type \"Desktop app\" and download its JSON "
                         "(docs/google.md)") from None


def load_oauth_credentials(google: Google, folder: Path):
    """The stored sign-in as Credentials: the refresh token from `token`, the client from `credentials`."""
    from google.oauth2.credentials import Credentials

    secrets = folder / Path(google.credentials).expanduser()
    token = folder / Path(google.token).expanduser()
    client_id, client_secret = _client_secrets(secrets)
    try:
        info = json.loads(token.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _permanent(f"{token}: no Google sign-in stored yet; run `friendtor google-auth --config "
                         f"{folder}` once (docs/google.md)") from None
    except OSError as exc:
        raise _permanent(f"{token}: cannot read the stored Google sign-in ({exc.strerror or exc}); "
                         f"check its permissions, or {_sign_in_again(folder)}") from None
    except ValueError:
        raise _permanent(f"{token}: the stored Google sign-in is damaged; {_sign_in_again(folder)}") from None
    if not isinstance(info, dict) or not info.get("refresh_token"):
        raise _permanent(f"{token}: the stored Google sign-in has no refresh token; {_sign_in_again(folder)}")
    if info.get("client_id", client_id) != client_id:
        raise _permanent(f"{token}: the stored sign-in was made with another OAuth client than {secrets}; "
                         f"{_sign_in_again(folder)}")
    try:
        return Credentials.from_authorized_user_info({**info, "client_id": client_id,
                                                      "client_secret": client_secret})
    except ValueError:
        raise _permanent(f"{token}: the stored Google sign-in is damaged; {_sign_in_again(folder)}") from None


def load_service_account_credentials(google: Google, folder: Path):
    from google.oauth2 import service_account

    key = folder / Path(google.credentials).expanduser()
    try:
        creds = service_account.Credentials.from_service_account_file(str(key), scopes=[SCOPE])
    except OSError as exc:
        raise _permanent(f"{key}: cannot read the service account key ({exc.strerror or exc}); "
                         "create a JSON key for the service account (docs/google.md)") from None
    except (ValueError, KeyError, TypeError):
        raise _permanent(f"{key}: not a service account key (expected the JSON key file from the Cloud "
                         "console, IAM > Service accounts > Keys); docs/google.md") from None
    return creds.with_subject(google.subject)


def save_token(credentials, path: Path) -> None:
    """Store an OAuth sign-in: 0600, written atomically, without the client secret.

    The client secret stays in the client file alone (one place to rotate it); the token file
    holds the refresh token, which is as a password for the calendar: never print it.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(path, credentials.to_json(strip=["client_secret"]).encode("utf-8"), 0o600)


class Connection:
    """Credentials and the Calendar client for one `[google]` table.

    Call it to get the client. The access token lasts an hour: each call checks it and, when
    it has expired, refreshes it up front and (OAuth) stores it, so a restart does not need a
    refresh and a revoked sign-in shows up as one clear error before any request is made.
    """

    def __init__(self, google: Google, folder: Path, *, http: Any = None):
        self.google = google
        self.folder = folder
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
                creds.refresh(Request(self._base_http()))
            except Exception as exc:
                # Read the files again next time: the operator may have signed in again meanwhile.
                self._credentials = self._service = None
                raise classify(exc, self.google, self.folder, "signing in") from None
            if self.google.auth == "oauth":
                try:
                    save_token(creds, self.folder / Path(self.google.token).expanduser())
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


def connection(config: Config) -> Connection:
    """The process's one Connection for this config's `[google]` table (the token is reused)."""
    google = _google(config)
    key = (config.folder, google)
    if key not in _connections:
        _connections[key] = Connection(google, config.folder)
    return _connections[key]


def calendar_service(config: Config, *, http: Any = None):
    """The Calendar v3 client for `config`, signed in; `http` (e.g. HttpMockSequence) replaces the network."""
    if http is not None:
        return Connection(_google(config), config.folder, http=http)()
    return connection(config)()


# --- errors -------------------------------------------------------------------------------

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
        label = f"{status} {reasons[0] if reasons else (exc.resp.reason or '')}".strip()
        if status == 429 or status >= 500 or (status == 403 and RATE_LIMIT_REASONS & set(reasons)):
            return SendError(f"{prefix}: {label}: Google is busy or limiting requests",
                             transient=True, code=status)
        if status == 409:
            # "duplicate": the event exists but the search did not see it yet; the retry finds it.
            return SendError(f"{prefix}: {label}: the event exists but was not found yet", transient=True, code=status)
        if status == 401:
            return SendError(f"{prefix}: {label}: Google refused the credentials; {_auth_fix(google, folder)}",
                             transient=False, code=status)
        if status == 403:
            if {"accessNotConfigured", "SERVICE_DISABLED"} & set(reasons):
                fix = ("enable the Google Calendar API in the Cloud project that owns the credentials "
                       "(console: APIs & Services > Library > Google Calendar API > Enable)")
            elif calendar:
                who = "the signed-in account" if google.auth == "oauth" else google.subject
                fix = (f"{who} needs \"Make changes to events\" on calendar {calendar!r}: share it with that "
                       f"account in Google Calendar's settings; or {_auth_fix(google, folder)}")
            else:
                fix = f"the account friendtor uses is not allowed to do this; {_auth_fix(google, folder)}"
            return SendError(f"{prefix}: {label}: not allowed; {fix}", transient=False, code=status)
        if status in (404, 410):
            where = f"calendar {calendar!r}" if calendar else "the calendar"
            return SendError(f"{prefix}: {label}: {where} not found; check [google] calendar in service.toml "
                             "and that the calendar is shared with the account friendtor uses",
                             transient=False, code=status)
        return SendError(f"{prefix}: {label}: Google refused the request ({exc.reason})",
                         transient=False, code=status)
    if isinstance(exc, auth_errors.RefreshError):
        if exc.retryable:
            return SendError(f"{prefix}: Google's sign-in service did not answer", transient=True)
        # The text of a RefreshError is Google's error code ("invalid_grant: Token has been expired
        # or revoked.", "unauthorized_client: ..."), never the token itself.
        first = str(exc.args[0]) if exc.args else type(exc).__name__
        return SendError(f"{prefix}: Google refused the sign-in ({first.splitlines()[0][:200]}); "
                         f"{_auth_fix(google, folder)}", transient=False)
    if isinstance(exc, (auth_errors.TransportError, httplib2.HttpLib2Error, OSError)):
        return SendError(f"{prefix}: cannot reach Google ({type(exc).__name__}: {exc})",
                         transient=True)
    raise exc  # anything else is a bug: let it reach the debug log with its traceback


def _is_gone(exc: BaseException) -> bool:
    from googleapiclient.errors import HttpError

    return isinstance(exc, HttpError) and exc.status_code in (404, 410)


def execute(request, *, retries: int = RETRIES, sleep: Callable[[float], None] = time.sleep,
            on_error: Callable[[BaseException], SendError], gone_ok: bool = False):
    """Run one API request; retry transient failures `retries` times, then raise a SendError.

    `gone_ok`: a 404/410 answer is success (None), for deleting what may already be deleted.
    """
    attempt = 0
    while True:
        try:
            return request.execute()
        except Exception as exc:
            if gone_ok and _is_gone(exc):
                return None
            error = on_error(exc)
            if not error.transient or attempt >= retries:
                raise error from None
            sleep(BACKOFF[min(attempt, len(BACKOFF) - 1)])
            attempt += 1


# --- busy time ------------------------------------------------------------------------------

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
                         service: ServiceFactory | None = None,
                         sleep: Callable[[float], None] = time.sleep) -> dict[str, Availability]:
    """Availability of members whose calendar is "google:<id>", by email, in as few requests as possible."""
    if not members:
        return {}
    google = config.service.google
    if google is None:  # validation requires [google] for google: calendars; this is a safety net
        reason = "Google Calendar is not configured: add a [google] table to service.toml (docs/google.md)"
        return {m.email: Availability.unreadable(reason) for m in members}
    try:
        client = (service or connection(config))()
    except SendError as exc:
        event("Google free/busy not read; those members count as unknown", logging.WARNING,
              calendars=len(members), error=str(exc))
        return {m.email: Availability.unreadable(str(exc), needs_fix=not exc.transient) for m in members}
    by_id = google_busy(client, [calendar_id(m.calendar) for m in members], start, end,
                        google=google, folder=config.folder, sleep=sleep)
    return {m.email: by_id[calendar_id(m.calendar)] for m in members}


# --- publishing -------------------------------------------------------------------------------

@dataclass
class GooglePublisher:
    """Puts meetings into `[google] calendar`, one event per meeting, found again by its iCalUID.

    The event's iCalUID is the meeting's UID, the UID of the emailed invites too, so a member
    who gets both sees one event. Google sends its own invitations only when
    `[google] invitations = "google"` (sendUpdates=all); otherwise friendtor's emails are the
    invitations and Google is told to send nothing (sendUpdates=none).
    """

    service: ServiceFactory
    google: Google
    folder: Path | str = "DIR"
    retries: int = RETRIES
    sleep: Callable[[float], None] = time.sleep

    @classmethod
    def from_config(cls, config: Config) -> GooglePublisher:
        return cls(connection(config), _google(config), config.folder)

    @property
    def send_updates(self) -> str:
        return "all" if self.google.invitations == "google" else "none"

    def _run(self, request, what: str, *, gone_ok: bool = False):
        return execute(request, retries=self.retries, sleep=self.sleep, gone_ok=gone_ok,
                       on_error=lambda exc: classify(exc, self.google, self.folder, what, self.google.calendar))

    def _client(self):
        return self.service()   # SendError (no sign-in, refused sign-in) goes to the outbox as it is

    def find(self, client, uid: str) -> dict[str, Any] | None:
        """The event with this iCalUID, deleted ones included (a move may bring one back)."""
        answer = self._run(client.events().list(calendarId=self.google.calendar, iCalUID=uid, showDeleted=True),
                           f"looking up {uid} in calendar {self.google.calendar!r}")
        return next((e for e in answer.get("items") or () if e.get("iCalUID") == uid), None)

    def publish(self, group: Group, meeting: Meeting) -> None:
        client = self._client()
        existing = self.find(client, meeting.uid)
        what = f"publishing {meeting.uid} to calendar {self.google.calendar!r}"
        if existing is None:
            body = event_body(group, meeting)
            self._run(client.events().insert(calendarId=self.google.calendar, body=body,
                                             sendUpdates=self.send_updates), what)
            return
        # The time, the text and the guest list follow the config; answers already given are kept.
        # Google refuses a SEQUENCE below the event's own (it raises it itself on some edits).
        body = event_body(group, meeting, existing)
        body.pop("iCalUID")
        body["sequence"] = max(meeting.sequence, int(existing.get("sequence") or 0))
        self._run(client.events().patch(calendarId=self.google.calendar, eventId=existing["id"], body=body,
                                        sendUpdates=self.send_updates), what)

    def responses(self, group: Group, meeting: Meeting) -> dict[str, str]:
        """Each guest's answer in Google, {email (lower case): responseStatus}: "accepted",
        "declined", "tentative" or "needsAction". {} when the meeting is not (or no longer) in
        the calendar. Failures are SendErrors, as for publishing."""
        existing = self.find(self._client(), meeting.uid)
        if existing is None or existing.get("status") == "cancelled":
            return {}
        return {(a.get("email") or "").lower(): a.get("responseStatus") or "needsAction"
                for a in existing.get("attendees") or () if a.get("email")}

    def cancel(self, group: Group, meeting: Meeting) -> None:
        """Delete the event (Google keeps it as status "cancelled", and with invitations = "google"
        sends the guests a cancellation). Deleting rather than patching the status is the
        documented way, and an event already gone is fine."""
        client = self._client()
        existing = self.find(client, meeting.uid)
        if existing is None or existing.get("status") == "cancelled":
            return
        what = f"cancelling {meeting.uid} in calendar {self.google.calendar!r}"
        self._run(client.events().delete(calendarId=self.google.calendar, eventId=existing["id"],
                                         sendUpdates=self.send_updates), what, gone_ok=True)


def event_body(group: Group, meeting: Meeting, existing: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Google event for a meeting: the same title, text, times and guests as the emailed invite."""
    from scheduler.compose.build import meeting_description

    zone = ZoneInfo(group.timezone)
    answered = {(a.get("email") or "").lower(): a.get("responseStatus")
                for a in (existing or {}).get("attendees") or ()}
    body: dict[str, Any] = {
        "iCalUID": meeting.uid,
        "summary": group.name,
        "description": meeting_description(group),
        "start": {"dateTime": meeting.start.astimezone(zone).isoformat(), "timeZone": group.timezone},
        "end": {"dateTime": meeting.end.astimezone(zone).isoformat(), "timeZone": group.timezone},
        "attendees": [{"email": m.email, "displayName": m.name,
                       "responseStatus": answered.get(m.email) or "needsAction"} for m in group.members],
        "guestsCanSeeOtherGuests": group.share_member_emails,
        "sequence": meeting.sequence,
        "status": "confirmed",
        "transparency": "opaque",
        "reminders": {"useDefault": True},
        "extendedProperties": {"private": {"friendtorGroup": group.id, "friendtorCycle": meeting.cycle}},
    }
    if group.video_link:
        body["location"] = group.video_link
    return body


# --- one-time consent (friendtor google-auth) ---------------------------------------------------

def authorize(config: Config, *, port: int = 0, open_browser: bool = True,
              timeout_seconds: int = 600) -> Path:
    """Ask a person to consent in a browser; store the refresh token in `[google] token` (0600).

    Google's installed-app flow redirects the browser to a small web server on this machine
    (http://localhost:PORT/). On a server without a browser, open the printed URL on your own
    computer with `ssh -L PORT:localhost:PORT server` forwarding that port (docs/google.md).
    """
    google = _google(config)
    if google.auth != "oauth":
        raise SetupError(f"{config.folder / 'service.toml'}: [google] auth = \"{google.auth}\" needs no "
                             "sign-in: the service account key and domain-wide delegation are the credentials "
                             "(docs/google.md); google-auth is for auth = \"oauth\"")
    secrets = config.path(google.credentials)
    _client_secrets(secrets)  # a missing or wrong file is one clear line before any browser opens
    from google_auth_oauthlib.flow import InstalledAppFlow

    if open_browser:
        import webbrowser

        try:
            webbrowser.get()
        except webbrowser.Error:  # a server without a desktop: the printed URL is the way
            open_browser = False
    flow = InstalledAppFlow.from_client_secrets_file(str(secrets), scopes=[SCOPE])
    try:
        creds = flow.run_local_server(
            host="localhost", port=port, open_browser=open_browser, timeout_seconds=timeout_seconds,
            authorization_prompt_message="Open this URL in a browser and allow access to Google Calendar:\n{url}\n",
            success_message="friendtor may now use your Google Calendar. You can close this window.",
            # offline + consent: Google returns a refresh token even to an account that consented before.
            access_type="offline", prompt="consent")
    except OSError as exc:
        raise SetupError(f"cannot listen on localhost:{port} for Google's answer ({exc.strerror or exc}); "
                             "choose another --port") from None
    except Exception as exc:  # oauthlib's errors: access denied, state mismatch, time-out
        raise SetupError(f"Google sign-in did not complete ({type(exc).__name__}: {exc}); "
                             "run the command again and allow access") from None
    if not creds.refresh_token:
        raise SetupError("Google returned no refresh token; remove friendtor's access at "
                             "myaccount.google.com > Security > Third-party access, then run the command again")
    path = config.path(google.token)
    try:
        save_token(creds, path)
    except OSError as exc:
        raise SetupError(f"{path}: cannot store the Google sign-in ({exc.strerror or exc}); "
                             "check that the folder is writable") from None
    return path
