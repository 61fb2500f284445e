"""The availability heatmap: its grid agrees with the slot finder, it draws as SVG and PNG,
`friendtor slots --heatmap` writes it, and alerts carry it as an inline image."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from PIL import Image

from builders import group, member, outbox_record, utc
from scheduler.core import heatmap as hm
from scheduler.core.availability import Availability, Busy
from scheduler.core.config import Config, Service
from scheduler.cli.main import main
from scheduler.core.cycles import range_window
from scheduler.compose.select import World, message_for
from scheduler.core.planner import StateView, plan
from scheduler.app.templates import load_templates
from scheduler.core.slots import find_slots

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "example"
NOW = datetime(2026, 11, 21, 12, tzinfo=ZoneInfo("UTC"))
SVG = "{http://www.w3.org/2000/svg}"

MEMBERS = (
    member("Maya Chen", "America/New_York", hours="08:00-18:00"),
    member("Ravi Iyer", "Asia/Kolkata", hours="17:00-22:00", holidays="IN"),
    member("Ana Souza", "America/St_Johns", away=[{"from": date(2027, 3, 11), "to": date(2027, 3, 11)}]),
    member("Li Wang", "America/Los_Angeles", weekdays=["mon", "tue", "wed"]),
)


def sample_group(**meetings):
    return group(*MEMBERS, duration_minutes=15, weekdays=["tue", "wed", "thu"], **meetings)


def sample_availability(g):
    maya, ravi, ana, li = (m.email for m in g.members)
    return {
        maya: Availability((Busy(utc(2027, 3, 9, 15), utc(2027, 3, 9, 16, 30)),
                            Busy(utc(2027, 3, 10, 14), utc(2027, 3, 10, 15), tentative=True))),
        ravi: Availability((Busy(utc(2027, 3, 10, 12, 10), utc(2027, 3, 10, 12, 50)),)),
        ana: Availability.unreadable("feed returned 404"),
        # li: no calendar at all
    }


WINDOW_DAYS = (date(2027, 3, 9), date(2027, 3, 11))


def test_cells_match_find_slots_verdicts_at_the_same_instants():
    """A cell is free/tentative/busy-or-off exactly when a grid-step meeting starting there is available/tentative/unavailable."""
    g = sample_group()
    window = range_window(g, *WINDOW_DAYS)
    avail = sample_availability(g)
    grid = hm.heatmap(g, window, avail)
    verdicts = {c.start: c.verdicts for c in find_slots(g, window, avail)}
    status = {hm.AVAILABLE: "available", hm.MAYBE: "tentative", hm.TAKEN: "unavailable", hm.OFF: "unavailable"}
    checked = 0
    for d, (day, rows) in enumerate(grid.days):
        for col in range(grid.columns):
            minutes = grid.first + col * grid.step
            start = datetime(day.year, day.month, day.day, tzinfo=g.tz) + timedelta(minutes=minutes)
            start = start.astimezone(ZoneInfo("UTC"))
            found = verdicts.get(start)
            for k in range(len(g.members)):
                cell = grid.state(d, k, col)
                if found is None:  # the slot finder drops starts nobody can attend
                    assert cell in (hm.TAKEN, hm.OFF)
                else:
                    assert status[cell] == found[k].status, (day, minutes, g.members[k].name)
                    checked += 1
    assert checked > 100
    # The grid shows each kind of state somewhere in this sample.
    assert {c for _, rows in grid.days for row in rows for c in row} == {hm.AVAILABLE, hm.MAYBE, hm.TAKEN, hm.OFF}


def test_hours_nobody_can_attend_are_trimmed_to_whole_hours():
    """Columns start and end on the hour, and the first and last hours hold someone who can attend."""
    g = sample_group()
    grid = hm.heatmap(g, range_window(g, *WINDOW_DAYS), sample_availability(g))
    assert grid.first % 60 == 0 and (grid.first + grid.columns * grid.step) % 60 == 0
    per_hour = 60 // grid.step

    def attendable(cols):
        return any(row[c] in (hm.AVAILABLE, hm.MAYBE) for _, rows in grid.days for row in rows for c in cols)

    assert attendable(range(per_hour)) and attendable(range(grid.columns - per_hour, grid.columns))
    assert grid.columns < 24 * per_hour


def test_payload_round_trips_through_json_and_stays_small():
    """The grid stored with an alert comes back equal from JSON, and is a few kilobytes."""
    g = sample_group()
    grid = hm.heatmap(g, range_window(g, *WINDOW_DAYS), sample_availability(g))
    text = json.dumps(grid.to_payload())
    assert hm.Heatmap.from_payload(json.loads(text)) == grid
    assert len(text) < 4000


def test_svg_is_xml_with_one_row_per_member_per_date_and_a_legend():
    """The SVG parses; each date panel labels every member with their zone; the legend names all four states."""
    g = sample_group()
    grid = hm.heatmap(g, range_window(g, *WINDOW_DAYS), sample_availability(g), "Test: who is free")
    root = ET.fromstring(hm.to_svg(grid))
    assert root.tag == f"{SVG}svg"
    texts = [t.text for t in root.iter(f"{SVG}text")]
    for m in g.members:
        assert texts.count(f"{m.name} ({m.timezone})") == len(grid.days)
    for _, _, words in hm.LEGEND:
        assert words in texts
    assert "Test: who is free" in texts
    assert "Tuesday 9 March 2027" in texts and "Thursday 11 March 2027" in texts
    assert "Wednesday 10 March 2027" in texts


def test_png_opens_with_the_expected_size():
    """The PNG is a PNG of the size `size()` announces (twice the layout, for sharp screens)."""
    g = sample_group()
    grid = hm.heatmap(g, range_window(g, *WINDOW_DAYS), sample_availability(g))
    image = Image.open(io.BytesIO(hm.to_png(grid)))
    assert image.format == "PNG"
    assert image.size == hm.size(grid) == tuple(2 * x for x in hm.size(grid, scale=1))


def test_svg_escapes_names():
    """A member name with markup characters stays text in the SVG."""
    g = group(member("A <b>&", "UTC", email="a@uni.example"), duration_minutes=15)
    grid = hm.heatmap(g, range_window(g, date(2027, 3, 9), date(2027, 3, 9)), {})
    texts = [t.text for t in ET.fromstring(hm.to_svg(grid)).iter(f"{SVG}text")]
    assert "A <b>& (UTC)" in texts


# --- friendtor slots --heatmap ------------------------------------------------------------------

def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("suffix", ["svg", "png"])
@time_machine.travel(NOW, tick=False)
def test_cli_writes_the_heatmap(capsys, tmp_path, suffix):
    """`slots --heatmap x.svg|x.png` prints the usual table and writes a picture of the window."""
    target = tmp_path / f"k-club.{suffix}"
    code, out, err = run(capsys, "slots", "k-club", "--config", str(EXAMPLE), "--heatmap", str(target))
    assert code == 0, err
    assert out.startswith("K Club: 60-minute meeting")
    data = target.read_bytes()
    if suffix == "svg":
        root = ET.fromstring(data)
        labels = [t.text for t in root.iter(f"{SVG}text")]
        assert "Maya Chen (America/New_York)" in labels and "Ananya Das (Asia/Kolkata)" in labels
    else:
        assert Image.open(io.BytesIO(data)).format == "PNG"


@pytest.mark.parametrize("name", ["out.pdf", "out", "out.svg.txt"])
def test_cli_rejects_a_bad_suffix_in_one_line(capsys, tmp_path, name):
    """A --heatmap file that is neither .svg nor .png is a one-line usage error, exit 2, before any work."""
    code, out, err = run(capsys, "slots", "k-club", "--config", str(EXAMPLE), "--heatmap", str(tmp_path / name))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "--heatmap" in err and ".svg" in err and ".png" in err


@time_machine.travel(NOW, tick=False)
def test_cli_reports_an_unwritable_path_in_one_line(capsys, tmp_path):
    """A folder that does not exist is a one-line error naming the file, exit 2, no traceback."""
    target = tmp_path / "missing" / "map.png"
    code, _, err = run(capsys, "slots", "k-club", "--config", str(EXAMPLE), "--heatmap", str(target))
    assert code == 2
    assert err.count("\n") == 1 and str(target) in err and "Traceback" not in err


# --- in the alert email ---------------------------------------------------------------------------

def config_with(g) -> Config:
    return Config(folder=Path("/nonexistent"), service=Service(), groups={g.id: g})


def test_planned_alert_carries_the_grid_and_its_email_shows_it_inline():
    """No quorum: the alert payload holds the grid; the email is multipart/related with a PNG the HTML names by cid."""
    g = sample_group(weeks_of_month=[2], quorum=1.0)  # everyone needed: the sample never reaches it
    cfg = config_with(g)
    now = utc(2027, 3, 1, 12)
    p = plan(cfg, StateView.empty(), now, lambda group, window: sample_availability(group))
    (alert,) = [s for s in p.sends if s.kind == "alert"]
    assert alert.payload.heatmap is not None
    grid = hm.Heatmap.from_payload(json.loads(json.dumps(alert.payload.heatmap)))
    assert [d for d, _ in grid.days] == list(alert.payload.dates)

    fields = {"key": alert.key, "kind": "alert", "group": g.id, "recipient": alert.recipient, "name": alert.name,
              "timezone": alert.timezone, "created": "2027-03-01T12:00:00Z"}
    doc = outbox_record(**fields, payload=json.loads(json.dumps(alert.payload.to_json())))
    msg = message_for(doc, cfg, World({}, {}), load_templates(None), now)
    assert msg["X-Friendtor-Kind"] == "alert"
    (related,) = [p for p in msg.walk() if p.get_content_type() == "multipart/related"]
    html, image = related.iter_parts()
    assert html.get_content_type() == "text/html" and image.get_content_type() == "image/png"
    cid = image["Content-ID"].strip("<>")
    assert f'src="cid:{cid}"' in html.get_content()
    assert Image.open(io.BytesIO(image.get_payload(decode=True))).size == hm.size(grid, target=hm.EMAIL)
    assert f'width="{hm.size(grid, scale=1, target=hm.EMAIL)[0]}"' in html.get_content()

    # The plain-text part is what it would be without the picture.
    bare = outbox_record(**fields, payload={k: v for k, v in alert.payload.to_json().items() if k != "heatmap"})
    plain = message_for(bare, cfg, World({}, {}), load_templates(None), now)
    assert plain.get_content_type() == "multipart/alternative"
    assert not any(p.get_content_type() == "image/png" for p in plain.walk())
    assert msg.get_body(("plain",)).get_content() == plain.get_body(("plain",)).get_content()


def test_content_id_is_stable_per_send():
    """The same alert built twice carries the same Content-ID (a resend is the same message)."""
    g = sample_group(weeks_of_month=[2], quorum=1.0)
    cfg = config_with(g)
    now = utc(2027, 3, 1, 12)
    (alert,) = [s for s in plan(cfg, StateView.empty(), now, lambda group, window: sample_availability(group)).sends
                if s.kind == "alert"]
    doc = outbox_record(key=alert.key, kind="alert", group=g.id, recipient=alert.recipient, name=alert.name,
                        timezone=alert.timezone, payload=alert.payload.to_json(), created="2027-03-01T12:00:00Z")

    def cid():
        msg = message_for(doc, cfg, World({}, {}), load_templates(None), now)
        return next(p["Content-ID"] for p in msg.walk() if p.get_content_type() == "image/png")

    assert cid() == cid()

