"""Small builders for groups and calendars in tests: only what a test changes is spelled out."""

from __future__ import annotations

import shutil
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from scheduler.app.records import from_doc
from scheduler.core.availability import Availability, Busy
from scheduler.core.config import Group
from scheduler.core.cycles import range_window
from scheduler.core.outbox import OutboxRecord
from scheduler.core.planner import Plan, StateView, plan
from scheduler.core.slots import find_slots

UTC = ZoneInfo("UTC")


def member(name: str, zone: str, **extra) -> dict:
    email = f"{name.lower().replace(' ', '.')}@uni.example"
    return {"name": name, "email": email, "timezone": zone, **extra}


def group(*members: dict, gid: str = "g", zone: str = "America/New_York", **meetings) -> Group:
    meetings = {"weekdays": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], **meetings}
    return Group.model_validate({
        "id": gid, "name": "Test group", "timezone": zone, "started": date(2026, 1, 1),
        "coordinators": [members[0]["email"]], "members": list(members), "meetings": meetings,
    })


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def slots_on(g: Group, day: date, availability: dict[str, Availability] | None = None, **kw):
    """Every candidate on one group-local date, best first."""
    return find_slots(g, range_window(g, day, day), availability or {}, **kw)


def starts_where_all_free(g: Group, day: date, availability=None) -> list[datetime]:
    return sorted(c.start for c in slots_on(g, day, availability) if c.attendance == 1.0)


def busy(start: datetime, end: datetime, tentative: bool = False) -> Availability:
    return Availability((Busy(start, end, tentative),))


VCAL = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tests//EN\r\n{body}END:VCALENDAR\r\n"


def ics(*events: str, extra: str = "") -> bytes:
    """A calendar from VEVENT bodies (lines without BEGIN/END), with DTSTAMP and UID filled in."""
    body = extra
    for i, ev in enumerate(events):
        lines = [line.strip() for line in ev.strip().splitlines() if line.strip()]
        if not any(line.startswith("UID") for line in lines):
            lines.append(f"UID:ev{i}@tests")
        if not any(line.startswith("DTSTAMP") for line in lines):
            lines.append("DTSTAMP:20260101T000000Z")
        body += "BEGIN:VEVENT\r\n" + "\r\n".join(lines) + "\r\nEND:VEVENT\r\n"
    return VCAL.format(body=body).encode()


def outbox_record(**doc) -> OutboxRecord:
    """An outbox record from the fields of its document as the state file stores it (ISO text,
    payload as JSON), read through the store's own conversion; what a test leaves out gets a
    default (a pending record, planned when it was created, of the meeting of 2027-01)."""
    created = doc.get("created", doc.get("updated", "2027-01-01T00:00:00Z"))
    kind = doc["kind"]
    defaults = {"key": f"{kind}:{doc.get('group', 'g')}:2027-01", "group": "g", "name": doc.get("recipient", ""),
                "timezone": "UTC", "payload": {"cycle": "2027-01"}, "status": "pending", "attempts": 0,
                "created": created, "updated": created, "due": created, "expires": created}
    return from_doc({**defaults, **doc})


def example_after_first_run(tmp_path: Path, now: datetime, *, inbox: bool = False) -> Path:
    """A copy of the example config after a first tick at `now` (December's meeting scheduled
    and its invites sent); with `inbox`, `[mail] inbox = "var/inbox"` is set first."""
    from scheduler.cli.main import main  # here: the pure tests that use this module never load the CLI

    folder = tmp_path / "cfg"
    shutil.copytree(Path(__file__).resolve().parents[1] / "config" / "example", folder,
                    ignore=shutil.ignore_patterns("var"))
    if inbox:
        service = (folder / "service.toml").read_text()
        (folder / "service.toml").write_text(service.replace('sender_name = ', 'inbox = "var/inbox"\nsender_name = '))
    assert main(["run", "--config", str(folder), "--now", now.isoformat()]) == 0
    return folder


# The example as coordinators ship it, plus a conference four members attend (the bundled
# example lists none), so that every kind, the gathering too, is built from one config.
CONFERENCE = """
[[conferences]]
name = "PAS 2027"
city = "Toronto"
timezone = "America/Toronto"
start = 2027-04-24
end = 2027-04-27
"""


def with_conference(folder: Path) -> Path:
    """A copy of config/example in `folder` with CONFERENCE, attended by Maya, Li, Oliver and Ananya."""
    shutil.copytree(Path(__file__).resolve().parents[1] / "config" / "example", folder,
                    ignore=shutil.ignore_patterns("var"))
    (folder / "service.toml").write_text((folder / "service.toml").read_text("utf-8") + CONFERENCE, "utf-8")
    toml = folder / "groups" / "k-club.toml"
    text = toml.read_text("utf-8")
    for who in ("maya-chen", "li-wang", "oliver-grant", "ananya-das"):
        line = f'calendar = "calendars/{who}.ics"\n'
        assert line in text
        text = text.replace(line, line + 'conferences = ["PAS 2027"]\n')
    toml.write_text(text, "utf-8")
    return folder


def no_busy(group, window):
    """Availability with nobody busy: every member free within their hours."""
    return {}


class PlannedState:
    """An in-memory outbox and meeting table, applying plans as the service does (the planner's
    tests tick it through months without a store)."""

    def __init__(self):
        self.meetings, self.sent, self.sends, self.invited, self.alerts = {}, set(), [], {}, {}

    def view(self) -> StateView:
        return StateView(dict(self.meetings), frozenset(self.sent), {k: dict(v) for k, v in self.invited.items()},
                         dict(self.alerts))

    def apply(self, p: Plan) -> Plan:
        for m in p.meetings:
            self.meetings[(m.group, m.cycle)] = m
        for g, c, d in p.alerts:
            self.alerts[(g, c)] = d
        for s in p.sends:
            self.sent.add(s.sid)
            self.sends.append(s)
            if s.key.startswith("invite:"):
                self.invited.setdefault(s.key, {})[s.recipient] = (s.name, s.timezone, s.due.isoformat())
        return p

    def tick(self, config, now: datetime, availability=no_busy) -> Plan:
        return self.apply(plan(config, self.view(), now, availability))


# A group of one member whose calendar is `{calendar}`, in `{zone}` (the calendar-reading tests).
ONE_MEMBER_GROUP = """
name = "G"
timezone = "Europe/London"
coordinators = ["a@uni.example"]
started = 2026-01-01
[[members]]
name = "A"
email = "a@uni.example"
timezone = "{zone}"
calendar = "{calendar}"
"""
