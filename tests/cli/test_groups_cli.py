"""Several groups on one service, end to end: a tick schedules two groups that share a member
apart; `slots` names the other group's meeting; `reschedule` onto it is refused in one line
unless --force; a gathering is moved in its conference's zone and cancelled like a meeting,
and what attendees receive is read back from the Maildir."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
import vobject

from scheduler.app.store import Store
from scheduler.cli.main import main

NY = ZoneInfo("America/New_York")
NOW = datetime(2027, 2, 16, 12, tzinfo=UTC)   # March's invites are due; so is EAPS's gathering email
SERVICE = """\
[mail]
sender = "groups@mentoring.example.org"

[[conferences]]
name = "EAPS 2027"
city = "Lisbon"
timezone = "Europe/Lisbon"
start = 2027-03-27
end = 2027-03-30
"""


def group_file(name: str, members: list[tuple[str, str, str]], **top: str) -> str:
    extra = "".join(f"{k} = {v}\n" for k, v in top.items())
    out = [f'name = "{name}"\ntimezone = "America/New_York"\ncoordinators = ["maya@uni-a.example"]\n'
           f'started = 2026-06-02\ngathering_days_before = 45\n{extra}\n'
           '[meetings]\nweekdays = ["tue", "wed", "thu"]\nweeks_of_month = [2, 3]\n']
    for who, email_, zone in members:
        conferences = 'conferences = ["EAPS 2027"]\n' if who != "Jo Park" else ""
        out.append(f'\n[[members]]\nname = "{who}"\nemail = "{email_}"\ntimezone = "{zone}"\n{conferences}')
    return "".join(out)


MAYA = ("Maya Chen", "maya@uni-a.example", "America/New_York")
ANA = ("Ana Souza", "ana@uni-c.example", "Europe/London")
RAVI = ("Ravi Iyer", "ravi@uni-b.example", "Asia/Kolkata")
JO = ("Jo Park", "jo@uni-d.example", "America/Toronto")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Two groups sharing Maya (written in another case in one file), after a first tick."""
    root = tmp_path / "cfg"
    (root / "groups").mkdir(parents=True)
    (root / "service.toml").write_text(SERVICE)
    (root / "groups" / "first-circle.toml").write_text(group_file("First Circle", [MAYA, ANA, RAVI]))
    shouted = ("Maya Chen", "MAYA@Uni-A.example", "America/New_York")
    (root / "groups" / "second-circle.toml").write_text(group_file("Second Circle", [shouted, JO]))
    assert main(["run", "--config", str(root), "--now", NOW.isoformat()]) == 0
    return root


def meetings(folder: Path) -> dict:
    with Store(folder / "var" / "state.json", lock=False) as store:
        return dict(store.meetings())


def command(capsys, folder: Path, *args: str, at: datetime = NOW + timedelta(hours=1)) -> tuple[int, str, str]:
    capsys.readouterr()
    with time_machine.travel(at, tick=False):
        code = main([*args, "--config", str(folder)])
    out, err = capsys.readouterr()
    return code, out, err


def received(folder: Path, kind: str) -> list[email.message.EmailMessage]:
    out = []
    for path in sorted((folder / "var" / "outbox" / "new").iterdir()):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if msg["X-Friendtor-Kind"] == kind:
            out.append(msg)
    return out


def local(dt: datetime, zone: ZoneInfo = NY) -> str:
    return dt.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def test_the_tick_keeps_the_two_groups_apart_for_the_member_they_share(folder):
    m = meetings(folder)
    first, second = m[("first-circle", "2027-03")], m[("second-circle", "2027-03")]
    assert first.end <= second.start or second.end <= first.start


def test_slots_names_the_other_groups_meeting(folder, capsys):
    """`slots second-circle` on the day of First Circle's February meeting (in Maya's hours): at
    every time overlapping it, Maya is "busy: First Circle meeting"."""
    first = meetings(folder)[("first-circle", "2027-02")]
    assert 9 <= first.start.astimezone(NY).hour < 17
    day = first.start.astimezone(NY).date().isoformat()
    code, out, err = command(capsys, folder, "slots", "second-circle", "--from", day, "--to", day, "--json",
                             "--top", "200")
    assert code == 0, err
    during = [c for c in json.loads(out)["candidates"]
              if datetime.fromisoformat(c["start"]) < first.end and datetime.fromisoformat(c["end"]) > first.start]
    assert during and all(c["unavailable"]["maya@uni-a.example"] == "busy: First Circle meeting" for c in during)


def test_reschedule_onto_another_groups_meeting_is_refused_in_one_line_unless_forced(folder, capsys):
    """Moving Second Circle's meeting onto First Circle's hour: exit 2, one line naming First Circle
    and Maya, nothing stored; with --force it is moved, with a warning naming them."""
    before = meetings(folder)
    first, second = before[("first-circle", "2027-03")], before[("second-circle", "2027-03")]
    code, out, err = command(capsys, folder, "reschedule", "second-circle", "--cycle", "2027-03", "--to",
                                 local(first.start))
    assert code == 2 and out == ""
    [line] = err.splitlines()
    assert "collides with First Circle meeting for maya@uni-a.example" in line and "--force" in line
    assert "Traceback" not in err
    assert meetings(folder)[("second-circle", "2027-03")] == second
    code, out, err = command(capsys, folder, "reschedule", "second-circle", "--cycle", "2027-03", "--to",
                                 local(first.start), "--force")
    assert code == 0, err
    assert "warning: collides with First Circle meeting for maya@uni-a.example (--force)" in out
    assert meetings(folder)[("second-circle", "2027-03")].start == first.start


def test_a_gathering_is_moved_in_the_conference_zone_and_cancelled_like_a_meeting(folder, capsys):
    """The attendees got the gathering invite (LOCATION Lisbon); `reschedule --cycle gathering-eaps-2027`
    takes Lisbon time and keeps to the conference's dates; `cancel` withdraws it; a plain
    `reschedule` still moves the next video meeting, not the gathering."""
    invites = received(folder, "gathering")
    to = sorted(m["To"].addresses[0].addr_spec for m in invites)
    assert to == ["ana@uni-c.example", "maya@uni-a.example", "ravi@uni-b.example"]  # First Circle's three
    cycle = "gathering-eaps-2027"
    gathering = meetings(folder)[("first-circle", cycle)]
    lisbon = ZoneInfo("Europe/Lisbon")
    assert local(gathering.start, lisbon) == "2027-03-28 18:30"
    code, out, err = command(capsys, folder, "reschedule", "first-circle", "--cycle", cycle, "--to", "2027-04-02 19:00")
    assert code == 2 and "outside EAPS 2027 (2027-03-27 to 2027-03-30, Europe/Lisbon)" in err
    code, out, err = command(capsys, folder, "reschedule", "first-circle", "--cycle", cycle, "--to", "2027-03-29 19:30")
    assert code == 0, err
    assert "moved from Sun 28 Mar 2027 18:30–19:30 to Mon 29 Mar 2027 19:30–20:30 (Europe/Lisbon)" in out
    moved = meetings(folder)[("first-circle", cycle)]
    assert moved.start == datetime(2027, 3, 29, 18, 30, tzinfo=UTC) and moved.uid == gathering.uid
    assert main(["run", "--config", str(folder), "--now", (NOW + timedelta(hours=2)).isoformat()]) == 0
    updates = [m for m in received(folder, "gathering") if "New time" in str(m["Subject"])]
    assert len(updates) == 3
    event = vobject.readOne(next(p for p in updates[0].walk() if p.get_content_type() == "text/calendar")
                            .get_payload(decode=True).decode()).vevent
    assert event.location.value == "Lisbon" and int(event.sequence.value) == moved.sequence
    code, out, err = command(capsys, folder, "cancel", "first-circle", "--cycle", cycle, at=NOW + timedelta(hours=3))
    assert code == 0, err
    assert main(["run", "--config", str(folder), "--now", (NOW + timedelta(hours=4)).isoformat()]) == 0
    assert len([m for m in received(folder, "gathering") if str(m["Subject"]).startswith("Cancelled")]) == 3
    code, out, err = command(capsys, folder, "reschedule", "first-circle", "--to", "2027-02-18 11:00",
                             at=NOW + timedelta(hours=5))
    assert code == 0, err
    assert "meeting of 2027-02" in out
