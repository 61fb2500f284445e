"""Google Calendar through the service, end to end: a tick publishes once and emails the
invites, refused free/busy is reported once, guests' answers are recorded as RSVPs."""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from integrations.google import GooglePublisher
from integrations.mail import DryRunTransport
from scheduler.core.availability import Availability
from scheduler.app.service import ConfigWatcher, Runner
from scheduler.app.store import Store
from google_api import ROOT, SERVICE_TOML, calls, client, fails, listing, no_sleep, ok, stored_event


# --- the service, end to end ------------------------------------------------------------------

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def test_one_tick_publishes_to_google_once_and_emails_the_invites(tmp_path):
    """publish = ["email", "google"]: a tick inserts the meeting into Google once and emails every invite;
    the next tick sends nothing to Google."""
    folder = tmp_path / "cfg"
    shutil.copytree(ROOT / "config" / "example", folder, ignore=shutil.ignore_patterns("var"))
    (folder / "service.toml").write_text(SERVICE_TOML.format(publish='["email", "google"]', auth="oauth", extra=""))
    watcher = ConfigWatcher(folder)
    group = watcher.config.groups["k-club"]
    uid = "k-club-2026-12@mentoring.example.org"
    # The second tick reads the guests' answers once (events.list) and publishes nothing.
    service, http = client(listing(), ok("calendar.events.insert", stored_event(iCalUID=uid)),
                           listing(stored_event(iCalUID=uid)))
    google = GooglePublisher(lambda: service, watcher.config.service.google, folder, retries=0, sleep=no_sleep)
    transport = DryRunTransport()
    with Store(folder / "var" / "state.json") as store:
        runner = Runner(watcher, store, lambda c: transport, availability=lambda *a: {},
                        publishers_factory=lambda c: {"google": google})
        first = runner.tick(NOW)
        second = runner.tick(NOW + timedelta(minutes=10))
    found, insert, answers = calls(http)
    assert found.query["iCalUID"] == uid and insert.body["iCalUID"] == uid
    assert answers.method == "calendar.events.list" and answers.query["iCalUID"] == uid
    assert len(insert.body["attendees"]) == len(group.members)
    assert [d.kind for d in first.sent].count("publish") == 1
    invites = [m for m in transport.messages if m["X-Friendtor-Kind"] == "invite"]
    assert len(invites) == len(group.members)
    for m in invites:  # the emailed invite and the Google event carry one UID: one event for the member
        (cal,) = [p for p in m.walk() if p.get_content_type() == "text/calendar"]
        assert f"UID:{uid}" in cal.get_payload(decode=True).decode()
    assert second.sent == [] and len(http.request_sequence) == 3
    assert not first.failed and not first.retrying


def test_refused_free_busy_is_reported_to_coordinators_once(tmp_path, caplog):
    """Google refusing free/busy for good (403): an error in the log each time, one email to the coordinators."""
    from scheduler.app.store import Store

    folder = tmp_path / "cfg"
    shutil.copytree(ROOT / "config" / "example", folder, ignore=shutil.ignore_patterns("var"))
    group_file = folder / "groups" / "k-club.toml"
    group_file.write_text(group_file.read_text().replace('calendar = "calendars/maya-chen.ics"',
                                                         'calendar = "google:maya@northeast-childrens.example"'))
    (folder / "google.json").write_text("{}")
    with open(folder / "service.toml", "a") as f:
        f.write('\n[google]\ncredentials = "google.json"\n')
    refused = Availability.unreadable("Google refused access (403): share the calendar", needs_fix=True)

    def availability(config, group, lo, hi):
        return {m.email: refused if m.calendar.startswith("google:") else Availability() for m in group.members}

    caplog.set_level(logging.INFO)
    with Store(folder / "var" / "state.json") as store:
        runner = Runner(ConfigWatcher(folder), store, lambda c: DryRunTransport(), availability=availability)
        runner.tick(datetime(2026, 11, 20, 12, tzinfo=UTC))
        runner.tick(datetime(2026, 11, 21, 12, tzinfo=UTC))
        reports = [d for d in store.sends() if d.key.startswith("calendar-problem:")]
    coordinators = {"maya.chen@northeast-childrens.example", "li.wang@pacific-u.example"}
    assert {d.recipient for d in reports} == coordinators and len(reports) == 2
    assert "calendars not readable until fixed" in caplog.text
    sent = [m for m in runner.transport.messages if m["Subject"].startswith("Calendars cannot be read")]
    assert len(sent) == 2
    assert "Maya Chen" in sent[0].get_body(("plain",)).get_content()


def _google_runner(tmp_path: Path, *answers):
    folder = tmp_path / "cfg"
    shutil.copytree(ROOT / "config" / "example", folder, ignore=shutil.ignore_patterns("var"))
    (folder / "service.toml").write_text(SERVICE_TOML.format(publish='["email", "google"]', auth="oauth", extra=""))
    watcher = ConfigWatcher(folder)
    uid = "k-club-2026-12@mentoring.example.org"
    service, http = client(listing(), ok("calendar.events.insert", stored_event(iCalUID=uid)), *answers)
    google = GooglePublisher(lambda: service, watcher.config.service.google, folder, retries=0, sleep=no_sleep)
    store = Store(folder / "var" / "state.json")
    runner = Runner(watcher, store, lambda c: DryRunTransport(), availability=lambda *a: {},
                    publishers_factory=lambda c: {"google": google})
    return runner, store, http, uid


def test_google_responses_are_recorded_as_rsvps_once_a_day(tmp_path, caplog):
    """A tick reads the Google guests' answers: accepted/declined become RSVPs for members, tentative a tentative
    one, a non-member's answer is ignored, a coordinator's record stands; a second tick that day asks nothing."""
    maya, james = "maya.chen@northeast-childrens.example", "james.carter@northeast-childrens.example"
    daniel, hannah = "daniel.okafor@lakeshore-u.example", "hannah.schultz@lakeshore-u.example"
    uid = "k-club-2026-12@mentoring.example.org"
    guests = [{"email": maya, "responseStatus": "accepted"}, {"email": james.upper(), "responseStatus": "declined"},
              {"email": daniel, "responseStatus": "accepted"}, {"email": hannah, "responseStatus": "tentative"},
              {"email": "stranger@elsewhere.example", "responseStatus": "accepted"}]
    runner, store, http, _ = _google_runner(tmp_path, listing(stored_event(iCalUID=uid, attendees=guests)))
    caplog.set_level(logging.INFO)
    with store:
        runner.tick(NOW)                       # schedules and publishes; nothing to read yet
        (cycle,) = [c for (g, c) in store.meetings() if g == "k-club"]
        store.record_attendance("k-club", cycle, daniel, False, "coordinator", NOW)  # he was not there
        runner.tick(NOW + timedelta(minutes=10))
        runner.tick(NOW + timedelta(hours=2))  # the same day: Google is not asked again
        rows = {r["email"]: (r["present"], r["source"], r.get("tentative", False)) for r in store.attendance("k-club")}
    assert rows == {maya: (True, "rsvp", False), james: (False, "rsvp", False), daniel: (False, "coordinator", False),
                    hannah: (False, "rsvp", True)}
    *_, answers = calls(http)
    assert answers.method == "calendar.events.list" and answers.query["iCalUID"] == uid
    assert len(http.request_sequence) == 3
    ignored = [r for r in caplog.records if r.getMessage() == "reply from a non-member ignored"]
    assert [r.fields["sender"] for r in ignored] == ["stranger@elsewhere.example"]


def test_a_google_failure_reading_responses_does_not_stop_the_tick(tmp_path, caplog):
    """A refused events.list is a warning; the tick still completes, and that meeting is not read again that day."""
    runner, store, http, _ = _google_runner(tmp_path, fails(503, "backendError"))
    with store:
        runner.tick(NOW)
        report = runner.tick(NOW + timedelta(minutes=10))
        runner.tick(NOW + timedelta(minutes=20))
        assert store.attendance("k-club") == []
    assert not report.failed and len(http.request_sequence) == 3
    assert any(r.levelno == logging.WARNING and "Google responses not read" in r.getMessage() for r in caplog.records)
