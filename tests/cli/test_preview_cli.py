"""`friendtor preview GROUP KIND [--config DIR] [--to EMAIL] [--now ISO] [--eml FILE] [--html FILE]`:
prints the headers and the text a member would get, writes the whole message or its HTML on
request, and turns every bad input into one line on stderr and exit status 2.

Time is pinned with --now (or time_machine where the command reads the clock), so the
example's next meeting is always Thursday 10 December 2026 at 15:00 UTC.
"""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email import policy
from pathlib import Path

import pytest
import time_machine

import integrations.calendars
from scheduler.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "example"
NOW = "2026-11-20T12:00:00Z"
MAYA = "maya.chen@northeast-childrens.example"
OLIVER = "oliver.grant@thames-childrens.example"   # not a coordinator; his one goal is done
ANANYA = "ananya.das@kolkata-ich.example"

_read = integrations.calendars.group_availability
_seen: dict = {}


@pytest.fixture(autouse=True)
def read_calendars_once(monkeypatch):
    """The real calendar reader, remembered per (group, range): the example's files do not change here."""
    def remembered(config, group, start, end, **kw):
        key = (config.folder, group.id, start, end)
        if key not in _seen:
            _seen[key] = _read(config, group, start, end, **kw)
        return _seen[key]

    monkeypatch.setattr(integrations.calendars, "group_availability", remembered)


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["preview", *args])
    out, err = capsys.readouterr()
    return code, out, err


def preview_args(group: str = "k-club", kind: str = "invite", *extra: str, to: str | None = ANANYA,
                 now: str | None = NOW) -> list[str]:
    args = [group, kind, "--config", str(EXAMPLE)]
    if to is not None:
        args += ["--to", to]
    if now is not None:
        args += ["--now", now]
    return args + list(extra)


def headers(out: str) -> dict[str, str]:
    head = out.split("\n\n", 1)[0]
    return dict(line.split(": ", 1) for line in head.splitlines())


def test_prints_headers_parts_and_the_text(capsys):
    """The output is the headers, the list of parts, a blank line, then the text the member reads."""
    code, out, err = run(capsys, *preview_args())
    assert (code, err) == (0, "")
    h = headers(out)
    assert list(h) == ["From", "To", "Subject", "Date", "Message-ID", "X-Friendtor-Kind", "Parts"]
    assert h["From"] == '"K Club (friendtor)" <k-club@mentoring.example.org>'
    assert h["To"] == f"Ananya Das <{ANANYA}>"
    assert h["Subject"] == "Invitation: K Club, Thursday 10 December 2026 at 20:30–21:30 (Asia/Kolkata)"
    assert h["Date"] == "Fri, 20 Nov 2026 12:00:00 +0000"
    assert h["X-Friendtor-Kind"] == "invite"
    assert h["Parts"] == "text/plain, text/html, text/calendar; method=REQUEST, application/ics"
    text = out.split("\n\n", 1)[1]
    assert text.startswith("Hello Ananya,\n")
    assert "Thursday 10 December 2026, 20:30–21:30 (Asia/Kolkata)" in text


@pytest.mark.parametrize(("kind", "to", "parts"), [
    ("cancel", OLIVER, "text/plain, text/html, text/calendar; method=CANCEL, application/ics"),
    ("agenda", OLIVER, "text/plain, text/html"),
    ("alert", None, "text/plain, text/html"),
], ids=["cancel", "agenda", "alert-default-coordinator"])
def test_other_kinds_print_their_parts(capsys, kind, to, parts):
    """Each kind previews with its own parts; without --to an alert goes to the first coordinator."""
    code, out, err = run(capsys, *preview_args("k-club", kind, to=to))
    assert (code, err) == (0, "")
    h = headers(out)
    assert (h["X-Friendtor-Kind"], h["Parts"]) == (kind, parts)
    assert h["To"].endswith(f"<{to or MAYA}>")


def test_eml_is_the_rfc5322_message_with_the_printed_message_id(capsys, tmp_path):
    """--eml writes a message that parses back whole, with the Message-ID and Date that were printed."""
    eml = tmp_path / "invite.eml"
    code, out, err = run(capsys, *preview_args("k-club", "invite", "--eml", str(eml)))
    assert (code, err) == (0, "")
    msg = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
    h = headers(out)
    assert msg["Message-ID"] == h["Message-ID"]
    assert msg["Date"].datetime == datetime(2026, 11, 20, 12, tzinfo=UTC)
    assert [a.addr_spec for a in msg["To"].addresses] == [ANANYA]
    assert msg.get_content_type() == "multipart/mixed"
    assert [p.get_content_type() for p in msg.walk() if not p.is_multipart()] == \
        ["text/plain", "text/html", "text/calendar", "application/ics"]
    assert msg.get_body(("plain",)).get_content().rstrip() == out.split("\n\n", 1)[1].rstrip()


def test_same_preview_twice_has_the_same_message_id(capsys, tmp_path):
    """Two runs for the same send (the instant spelt in another zone) give the same Message-ID and Date."""
    first, second = tmp_path / "a.eml", tmp_path / "b.eml"
    run(capsys, *preview_args("k-club", "agenda", "--eml", str(first)))
    run(capsys, *preview_args("k-club", "agenda", "--eml", str(second), now="2026-11-20T17:30:00+05:30"))
    a, b = (email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in (first, second))
    assert a["Message-ID"] == b["Message-ID"]
    assert a["Date"] == b["Date"] == "Fri, 20 Nov 2026 12:00:00 +0000"


def test_html_writes_the_html_part(capsys, tmp_path):
    """--html writes the message's HTML part as a complete document."""
    html, eml = tmp_path / "agenda.html", tmp_path / "agenda.eml"
    code, _, err = run(capsys, *preview_args("k-club", "agenda", "--html", str(html), "--eml", str(eml)))
    assert (code, err) == (0, "")
    written = html.read_text("utf-8")
    assert written.startswith("<!DOCTYPE html>") and written.rstrip().endswith("</html>")
    assert "Agenda for our next meeting" in written and "Asia/Kolkata" in written
    msg = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert msg.get_body(("html",)).get_content() == written


def test_without_now_the_clock_is_read(capsys):
    """Without --now the preview is for the current instant (pinned here with time_machine)."""
    with time_machine.travel(datetime(2026, 11, 20, 12, tzinfo=UTC), tick=False):
        code, out, err = run(capsys, *preview_args(now=None))
    assert (code, err) == (0, "")
    assert headers(out)["Date"] == "Fri, 20 Nov 2026 12:00:00 +0000"
    assert "Thursday 10 December 2026" in headers(out)["Subject"]


GARBAGE = [
    ("unknown-kind", preview_args("k-club", "invitation"), "unknown kind 'invitation'"),
    ("unknown-group", preview_args("k-clb", "invite"), "no group 'k-clb'"),
    ("not-a-member", preview_args(to="someone@elsewhere.example"), "is not a member of k-club"),
    ("alert-to-non-coordinator", preview_args("k-club", "alert", to=OLIVER), "alerts go to coordinators only"),
    ("now-not-iso", preview_args(now="next tuesday"), "is not an ISO 8601 time"),
    ("now-without-zone", preview_args(now="2026-11-20T12:00:00"), "has no time zone"),
    ("now-date-only", preview_args(now="2026-11-20"), "has no time zone"),
    ("eml-in-missing-folder", preview_args("k-club", "invite", "--eml", "{tmp}/no/such/folder/x.eml"),
     "--eml: cannot write"),
    ("html-in-missing-folder", preview_args("k-club", "invite", "--html", "{tmp}/no/such/folder/x.html"),
     "--html: cannot write"),
    ("nudge-without-open-goals", preview_args("k-club", "nudge", to=OLIVER), "has no open goal"),
    ("missing-config", ["k-club", "invite", "--config", "{tmp}/nowhere", "--now", NOW], "no such config folder"),
]


@pytest.mark.parametrize(("args", "says"), [g[1:] for g in GARBAGE], ids=[g[0] for g in GARBAGE])
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, args, says):
    """Every bad argument gives exit status 2 and exactly one stderr line saying what to fix; no traceback."""
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    code, out, err = run(capsys, *args)
    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1, err
    assert says in err
    assert "Traceback" not in err and "internal error" not in err
    assert not (tmp_path / "no").exists()
