"""Shared by the Google Calendar tests: google-api-python-client itself, built from the
discovery document it ships (static_discovery), over its own HttpMockSequence: no network,
no imitation of the client. Every request the client sends is checked against that
discovery document: the method exists for its URL and verb, its query parameters are
declared (with allowed values), and its body validates against the method's request schema,
converted to JSON Schema with every property we send required to be declared, with the
declared type.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import googleapiclient
import jsonschema
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.http import HttpMockSequence

from builders import group as make_group
from builders import member
from integrations.google import SCOPE, GooglePublisher, save_token
from scheduler.app.store import atomic_write
from scheduler.compose.build import shared_event
from scheduler.core.config import Config, Google, Service
from scheduler.core.meetings import Meeting
from scheduler.core.ports import SharedEvent


ROOT = Path(__file__).resolve().parents[2]
DISCOVERY = json.loads((Path(googleapiclient.__file__).parent / "discovery_cache" / "documents"
                        / "calendar.v3.json").read_text(encoding="utf-8"))
BASE = DISCOVERY["rootUrl"] + DISCOVERY["servicePath"]
START = datetime(2026, 12, 1, tzinfo=UTC)


# --- the discovery document as a validator -----------------------------------------------------

def _schema(node: dict[str, Any], method: str) -> dict[str, Any]:
    """A discovery schema node as JSON Schema; `required` from the method's annotations."""
    if "$ref" in node:
        return {"$ref": f"#/$defs/{node['$ref']}"}
    out: dict[str, Any] = {}
    if node.get("type") not in (None, "any"):
        out["type"] = node["type"]
    if node.get("format") in ("date-time", "date"):
        out["format"] = node["format"]
    if "enum" in node:
        out["enum"] = node["enum"]
    if "properties" in node:
        props = node["properties"]
        out["properties"] = {k: _schema(v, method) for k, v in props.items()}
        required = [k for k, v in props.items() if method in v.get("annotations", {}).get("required", ())]
        if required:
            out["required"] = required
        # Discovery does not say "no other keys", but a key Google does not know is silently
        # dropped: every key we send must be declared.
        out["additionalProperties"] = False
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = _schema(node["additionalProperties"], method)
    if "items" in node:
        out["items"] = _schema(node["items"], method)
    return out


FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("date-time", raises=ValueError)
def _rfc3339(value: object) -> bool:
    return not isinstance(value, str) or (
        bool(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value))
        and datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo is not None)


@FORMATS.checks("date", raises=ValueError)
def _date(value: object) -> bool:
    return not isinstance(value, str) or bool(re.fullmatch(r"\d{4}-\d\d-\d\d", value))


def validate(ref: str, method: str, document: Any) -> None:
    """`document` is valid for schema `ref` as the discovery document describes it for `method`."""
    defs = {name: _schema(s, method) for name, s in DISCOVERY["schemas"].items()}
    jsonschema.Draft202012Validator({"$ref": f"#/$defs/{ref}", "$defs": defs},
                                    format_checker=FORMATS).validate(document)


def _methods() -> dict[str, dict[str, Any]]:
    found = {}

    def walk(resources: dict[str, Any]) -> None:
        for res in resources.values():
            for m in res.get("methods", {}).values():
                found[m["id"]] = m
            walk(res.get("resources", {}))
    walk(DISCOVERY["resources"])
    return found


METHODS = _methods()


@dataclass
class Call:
    method: str            # e.g. "calendar.events.insert"
    path: dict[str, str]   # path parameters
    query: dict[str, str]
    body: Any
    headers: dict[str, str]


def _route(uri: str, verb: str) -> tuple[str, dict[str, str]]:
    path = urlsplit(uri).path
    assert path.startswith(urlsplit(BASE).path), uri
    rel = path[len(urlsplit(BASE).path):]
    for mid, m in METHODS.items():
        if m["httpMethod"] != verb:
            continue
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(m["path"]))
        hit = re.fullmatch(pattern, rel)
        if hit:
            return mid, {k: unquote(v) for k, v in hit.groupdict().items()}
    raise AssertionError(f"no Calendar v3 method is {verb} {rel}")


def calls(http: HttpMockSequence) -> list[Call]:
    """Every request the client sent, each checked against the discovery document."""
    out = []
    for uri, verb, body, headers in http.request_sequence:
        if not uri.startswith(BASE):   # the token endpoint (oauth2.googleapis.com), not the Calendar API
            continue
        mid, path = _route(uri, verb)
        spec = METHODS[mid]
        params = {**DISCOVERY["parameters"], **spec.get("parameters", {})}
        query = {k: v[0] for k, v in parse_qs(urlsplit(uri).query).items()}
        for name, p in spec.get("parameters", {}).items():
            if p.get("required"):
                assert name in path or name in query, f"{mid}: required parameter {name} missing"
        for name, value in query.items():
            assert name in params, f"{mid}: undeclared query parameter {name}"
            if "enum" in params[name]:
                assert value in params[name]["enum"], f"{mid}: {name}={value!r} not in {params[name]['enum']}"
            if params[name].get("type") == "boolean":
                assert value in ("true", "false"), f"{mid}: {name}={value!r} is not a boolean"
        data = json.loads(body) if body else None
        if "request" in spec:
            assert data is not None, f"{mid} needs a body"
            validate(spec["request"]["$ref"], mid, data)
        else:
            assert data is None, f"{mid} takes no body"
        out.append(Call(mid, path, query, data, dict(headers or {})))
    return out

def ok(method: str, document: dict[str, Any]) -> tuple[dict[str, str], str]:
    """A 200 answer for `method`, itself checked against the method's response schema."""
    validate(METHODS[method]["response"]["$ref"], method, document)
    return {"status": "200", "content-type": "application/json"}, json.dumps(document)


NO_CONTENT = ({"status": "204"}, "")


def fails(status: int, reason: str = "", message: str = "failed") -> tuple[dict[str, str], str]:
    """A Google JSON error answer."""
    errors = [{"domain": "global", "reason": reason, "message": message}] if reason else []
    return ({"status": str(status), "content-type": "application/json"},
            json.dumps({"error": {"code": status, "message": message, "errors": errors}}))


def client(*answers) -> tuple[Any, HttpMockSequence]:
    http = HttpMockSequence(list(answers))
    return build("calendar", "v3", http=http, static_discovery=True), http


def no_sleep(seconds: float) -> None:
    """Retries in tests do not wait."""

# --- free/busy ---------------------------------------------------------------------------

def freebusy_answer(body: dict[str, Any], calendars: dict[str, dict[str, Any]] | None = None):
    calendars = calendars or {}
    return ok("calendar.freebusy.query", {
        "kind": "calendar#freeBusy", "timeMin": body["timeMin"], "timeMax": body["timeMax"],
        "calendars": {i["id"]: calendars.get(i["id"], {"busy": []}) for i in body["items"]}})


def window_body(ids: list[str], lo: datetime, hi: datetime) -> dict[str, Any]:
    return {"timeMin": lo.strftime("%Y-%m-%dT%H:%M:%SZ"), "timeMax": hi.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "items": [{"id": i} for i in ids]}

def config_with(tmp_path: Path, google: Google | None, *groups) -> Config:
    return Config(folder=tmp_path, service=Service(google=google), groups={g.id: g for g in groups})

# --- publishing ---------------------------------------------------------------------------------

UID = "g-2026-12@mentoring.example.org"
MEETING = Meeting(group="g", cycle="2026-12", uid=UID, sequence=0, start=datetime(2026, 12, 10, 15, tzinfo=UTC),
                  end=datetime(2026, 12, 10, 16, tzinfo=UTC), stamp=datetime(2026, 11, 19, 12, tzinfo=UTC))
GROUP = make_group(member("Maya Chen", "America/New_York"), member("Li Wang", "America/Los_Angeles"),
                   zone="America/New_York")


CONFIG = Config(folder=Path("."), service=Service(), groups={"g": GROUP})


def event(meeting: Meeting) -> SharedEvent:
    """What friendtor composes for the meeting's shared-calendar event (as the service does)."""
    return shared_event(CONFIG, GROUP, meeting)


def listing(*items: dict[str, Any]):
    return ok("calendar.events.list", {"kind": "calendar#events", "items": list(items)})


def stored_event(**extra) -> dict[str, Any]:
    """The event as Google returns it after the insert."""
    return {"kind": "calendar#event", "id": "evt123", "iCalUID": UID, "status": "confirmed", "sequence": 0,
            "start": {"dateTime": "2026-12-10T10:00:00-05:00", "timeZone": "America/New_York"},
            "end": {"dateTime": "2026-12-10T11:00:00-05:00", "timeZone": "America/New_York"}, **extra}


def publisher(service, invitations: str = "friendtor", retries: int = 0, sleep=no_sleep) -> GooglePublisher:
    return GooglePublisher(lambda: service, Google(credentials="client.json", invitations=invitations),
                           "/srv/friendtor/config", retries=retries, sleep=sleep)

# --- credentials ------------------------------------------------------------------------------

CLIENT = {"installed": {"client_id": "123.apps.googleusercontent.com", "client_secret": "client-SECRET-value",
                        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                        "token_uri": "https://oauth2.googleapis.com/token", "redirect_uris": ["http://localhost"]}}
REFRESH = "1//refresh-TOKEN-value"
ACCESS = "ya29.fresh-ACCESS-token"


def signed_in(folder: Path, *, expired: bool) -> Google:
    """A config folder with an OAuth client file and a stored sign-in (expired or not)."""
    (folder / "client.json").write_text(json.dumps(CLIENT))
    creds = Credentials(token="ya29.old-ACCESS-token", refresh_token=REFRESH,
                        token_uri="https://oauth2.googleapis.com/token",
                        client_id=CLIENT["installed"]["client_id"],
                        client_secret=CLIENT["installed"]["client_secret"], scopes=[SCOPE],
                        expiry=datetime(2020, 1, 1) if expired else datetime.now(UTC).replace(tzinfo=None)
                        + timedelta(hours=1))
    save_token(creds, folder / "var" / "google-token.json", atomic_write)
    return Google(credentials="client.json")


def logged(caplog) -> str:
    """Everything the log records carry: messages and the structured fields friendtor's events add."""
    return "\n".join(f"{r.getMessage()} {getattr(r, 'fields', '')} {r.exc_text or ''}" for r in caplog.records)

SERVICE_TOML = """
publish = {publish}
[mail]
sender = "k-club@mentoring.example.org"
sender_name = "K Club (friendtor)"
[google]
auth = "{auth}"
credentials = "key.json"
{extra}
"""
