"""`friendtor slots` end to end on the bundled example, and its bad inputs."""

from __future__ import annotations

import json
import shutil
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine

from builders import ics
from scheduler.cli.main import main
from scheduler.app.loader import load_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "example"
NOW = datetime(2026, 11, 21, 12, tzinfo=ZoneInfo("UTC"))


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@time_machine.travel(NOW, tick=False)
def test_json_shape_on_the_example(capsys):
    """--json prints the documented shape; every member is in exactly one list; local times carry offsets."""
    code, out, err = run(capsys, "slots", "k-club", "--config", str(EXAMPLE), "--json", "--top", "3")
    assert code == 0, err
    doc = json.loads(out)
    assert set(doc) == {"group", "duration_minutes", "skipped", "candidates"}
    assert doc["group"] == "k-club" and doc["duration_minutes"] == 60 and doc["skipped"] == {}
    assert 1 <= len(doc["candidates"]) <= 3
    group = load_config(EXAMPLE).groups["k-club"]
    emails = {m.email for m in group.members}
    previous = None
    for c in doc["candidates"]:
        assert set(c) == {"start", "end", "attendance", "available", "tentative", "unavailable", "local"}
        assert c["start"].endswith("Z") and c["end"].endswith("Z")
        start = datetime.fromisoformat(c["start"])
        assert start > NOW
        # Next cycle after 21 Nov: December, weeks 2-3, Tue-Thu in New York.
        local = start.astimezone(group.tz)
        assert local.month == 12 and 8 <= local.day <= 21 and local.weekday() in (1, 2, 3)
        lists = [set(c["available"]), set(c["tentative"]), set(c["unavailable"])]
        assert set().union(*lists) == emails and sum(map(len, lists)) == len(emails)
        assert all(reason for reason in c["unavailable"].values())
        assert set(c["local"]) == emails
        for m in group.members:
            assert datetime.fromisoformat(c["local"][m.email]) == start
            assert datetime.fromisoformat(c["local"][m.email]).utcoffset() == start.astimezone(m.tz).utcoffset()
        assert previous is None or previous >= c["attendance"]
        previous = c["attendance"]


@time_machine.travel(NOW, tick=False)
def test_table_explains_the_choice(capsys):
    """The table names each member's local time and reason, and says why the first option won."""
    code, out, err = run(capsys, "slots", "k-club", "--config", str(EXAMPLE))
    assert code == 0, err
    assert out.startswith("K Club: 60-minute meeting, cycle 2026-12")
    assert "Asia/Kolkata" in out and "America/St_Johns" in out
    assert "\nWhy 1: " in out
    assert out.count("\n1. ") == 1 and "\n5. " in out


@time_machine.travel(NOW, tick=False)
def test_explicit_range_across_the_us_dst_change(capsys):
    """--from/--to are group-zone dates; candidates on both sides of 14 March keep members' local hours."""
    code, out, _ = run(capsys, "slots", "k-club", "--config", str(EXAMPLE), "--from", "2027-03-09",
                       "--to", "2027-03-18", "--json", "--top", "20")
    assert code == 0
    doc = json.loads(out)
    for c in doc["candidates"]:
        for email, local in c["local"].items():
            if email in c["available"]:
                t = datetime.fromisoformat(local)
                assert t.date().isoformat() >= "2027-03-08"


def test_unreadable_calendar_shows_as_unknown(capsys, tmp_path):
    """A member whose calendar file is garbage is tentative in JSON and 'calendar unknown' in the table."""
    cfg = tmp_path / "cfg"
    shutil.copytree(EXAMPLE, cfg, ignore=shutil.ignore_patterns("var"))
    (cfg / "calendars" / "maya-chen.ics").write_bytes(b"this is not a calendar")
    with time_machine.travel(NOW, tick=False):
        code, out, _ = run(capsys, "slots", "k-club", "--config", str(cfg), "--json", "--top", "1")
        assert code == 0
        best = json.loads(out)["candidates"][0]
        assert "maya.chen@northeast-childrens.example" in best["tentative"]
        code, out, _ = run(capsys, "slots", "k-club", "--config", str(cfg), "--top", "1")
    assert "calendar unknown: not an iCalendar file" in out


class _Feeds(BaseHTTPRequestHandler):
    body = ics("SUMMARY:x\nDTSTART:20261208T150000Z\nDTEND:20261208T160000Z")

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path == "/good.ics":
            self.send_response(200)
            self.send_header("Content-Type", "text/calendar")
            self.end_headers()
            self.wfile.write(self.body)
        else:
            self.send_error(404)

    def log_message(self, *args):
        pass


@pytest.fixture
def feed_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Feeds)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_calendar_feed_url(feed_server, tmp_path):
    """An https/http calendar URL is fetched and read; a 404 makes the member unknown with the status."""
    from integrations.calendars import group_availability

    cfg = tmp_path / "cfg"
    (cfg / "groups").mkdir(parents=True)
    (cfg / "groups" / "g.toml").write_text(f"""
name = "G"
timezone = "Europe/London"
coordinators = ["a@uni.example"]
started = 2026-01-01
[[members]]
name = "A"
email = "a@uni.example"
timezone = "Europe/London"
calendar = "{feed_server}/good.ics"
[[members]]
name = "B"
email = "b@uni.example"
timezone = "Europe/London"
calendar = "{feed_server}/missing.ics"
""")
    config = load_config(cfg)
    lo, hi = datetime(2026, 12, 1, tzinfo=ZoneInfo("UTC")), datetime(2026, 12, 31, tzinfo=ZoneInfo("UTC"))
    avail = group_availability(config, config.groups["g"], lo, hi)
    assert len(avail["a@uni.example"].busy) == 1 and avail["a@uni.example"].unknown is None
    assert avail["b@uni.example"].unknown == "the calendar feed answered HTTP 404"


@pytest.mark.parametrize(("argv", "expected"), [
    (["slots", "k-klub"], "no group 'k-klub' (did you mean 'k-club'?)"),
    (["slots", "k-club", "--from", "next tuesday"], "--from: 'next tuesday' is not a date"),
    (["slots", "k-club", "--from", "2027-03-10", "--to", "2027-03-01"], "--to 2027-03-01 is before --from 2027-03-10"),
    (["slots", "k-club", "--from", "2027-01-01", "--to", "2029-01-01"], "more than a year"),
    (["slots", "k-club", "--from", "2027-03-13", "--to", "2027-03-14"], "no tue, wed, thu between"),
], ids=["unknown-group", "bad-date", "reversed", "too-long", "no-meeting-days"])
def test_bad_arguments_get_one_line(capsys, argv, expected):
    """Bad arguments exit 2 with one line that says what to fix, and no traceback."""
    code, out, err = run(capsys, *argv[:2], "--config", str(EXAMPLE), *argv[2:])
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and expected in err
    assert "Traceback" not in err


@pytest.mark.parametrize("top", ["0", "-3", "many"])
def test_bad_top_is_refused(capsys, top):
    """--top takes a positive whole number; argparse reports anything else in one line and exits 2."""
    with pytest.raises(SystemExit) as exit_info:
        main(["slots", "k-club", "--config", str(EXAMPLE), "--top", top])
    assert exit_info.value.code == 2
    assert "--top" in capsys.readouterr().err


def test_example_calendars_are_up_to_date():
    """The committed example calendars are exactly what make_calendars.py writes today."""
    import importlib.util
    import tomllib

    spec = importlib.util.spec_from_file_location("make_calendars", EXAMPLE / "make_calendars.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    members = tomllib.loads((EXAMPLE / "groups" / "k-club.toml").read_text())["members"]
    for index, m in enumerate(members):
        assert (EXAMPLE / m["calendar"]).read_bytes() == module.member_calendar(index, m).to_ical(), (
            f"{m['calendar']} is stale: run python config/example/make_calendars.py")
