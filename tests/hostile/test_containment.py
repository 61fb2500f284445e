"""A failure while planning or preparing one group's messages costs that group only: the
other groups in the same folder get their messages, the failing group's coordinators hear of
it once, in friendtor's words (issue 11: a goal due 9999-12-31 once crashed every tick for
every group, exit 70)."""

from __future__ import annotations

import logging
import mailbox
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from integrations.mail import transport_for
from scheduler.app.store import Store
from scheduler.app.tick import Runner
from scheduler.app.watcher import ConfigWatcher
from scheduler.cli.main import main
from scheduler.core import planner
from scheduler.core.outbox import Kind, Status
from scheduler.core.planner import StateView, plan

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "example"
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)   # the example's December invites are due
COORDINATORS = {"maya.chen@northeast-childrens.example", "li.wang@pacific-u.example"}
SECRET = "PASSWORD=hunter2"                     # what a bug's message might quote; must go nowhere


def two_groups(tmp_path: Path, *, broken_only: bool = False) -> Path:
    """The example folder with a second group, `broken`, a copy of k-club (or only `broken`)."""
    folder = tmp_path / "cfg"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("var"))
    groups = folder / "groups"
    text = (groups / "k-club.toml").read_text().replace('name = "K Club"', 'name = "Broken Club"', 1)
    (groups / "broken.toml").write_text(text)
    if broken_only:
        (groups / "k-club.toml").unlink()
    return folder


@pytest.fixture
def broken_planning(monkeypatch):
    """Planning the group `broken` raises, as a bug would, late in its plan (after its
    invites were planned), with a message that quotes something it must not."""
    real = planner._plan_reports

    def failing(group, *args, **kwargs):
        if group.id == "broken":
            raise OverflowError(f"date value out of range near {SECRET}")
        return real(group, *args, **kwargs)

    monkeypatch.setattr(planner, "_plan_reports", failing)


def delivered(folder: Path) -> list:
    box = folder / "var" / "outbox"
    return list(mailbox.Maildir(box, create=False)) if box.exists() else []


def test_plan_keeps_the_other_groups_and_drops_the_failing_groups_half_plan(tmp_path, broken_planning):
    """plan() returns the healthy group's sends, a group problem for the other, and none of its half-made plan."""
    config = ConfigWatcher(two_groups(tmp_path)).config
    p = plan(config, StateView.empty(), NOW, lambda g, w: {})
    assert [gp.group for gp in p.group_problems] == ["broken"]
    assert p.group_problems[0].reason == "internal error (OverflowError in _plan_group)"  # friendtor's innermost
    assert SECRET not in p.group_problems[0].reason and SECRET in p.group_problems[0].detail
    assert {m.group for m in p.meetings} == {"k-club"}
    assert {s.group for s in p.sends if s.kind == Kind.INVITE} == {"k-club"}
    alerts = [s for s in p.sends if s.group == "broken"]
    assert {s.recipient for s in alerts} == COORDINATORS and {s.kind for s in alerts} == {Kind.ALERT}
    dry = plan(config, StateView.empty(), NOW, lambda g, w: {}, alert_calendars=False)
    assert dry.group_problems and not [s for s in dry.sends if s.group == "broken"]


def test_a_group_that_cannot_be_planned_costs_only_itself_and_is_alerted_once(tmp_path, broken_planning, caplog):
    """The healthy group's invites go out; the broken group's coordinators get one alert, not one per tick."""
    folder = two_groups(tmp_path)
    caplog.set_level(logging.INFO, logger="friendtor")
    with Store(folder / "var" / "state.json") as store:
        runner = Runner(ConfigWatcher(folder), store, transport_for, availability=lambda *a: {})
        first = runner.tick(NOW)
        assert [gp.group for gp in first.group_problems] == ["broken"]
        assert {r.group for r in first.sent if r.kind == Kind.INVITE} == {"k-club"}
        assert len([r for r in first.sent if r.kind == Kind.INVITE]) == 12
        alerts = [r for r in first.sent if r.kind == Kind.ALERT]
        assert {r.recipient for r in alerts} == COORDINATORS and {r.group for r in alerts} == {"broken"}
        for minutes in (5, 10, 60 * 24):
            later = runner.tick(NOW + timedelta(minutes=minutes))
            assert [gp.group for gp in later.group_problems] == ["broken"]  # still not planned ...
            assert not [r for r in later.sent if r.kind == Kind.ALERT]      # ... and not alerted again
        assert all(r.status == Status.SENT for r in store.sends() if r.kind == Kind.ALERT)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(r.getMessage().startswith("group not planned") and r.fields["group"] == "broken" for r in errors)
    assert not any(SECRET in str(r.getMessage()) + str(getattr(r, "fields", "")) for r in errors)
    texts = [m.get_payload(decode=True) or b"" for msg in delivered(folder) for m in msg.walk()
             if m.get_content_maintype() == "text"]
    alert_texts = [t.decode() for t in texts if b"Broken Club" in t and b"internal error" in t]
    assert alert_texts and not any(SECRET in t or "Traceback" in t for t in alert_texts)


def test_run_once_prints_the_group_and_succeeds_when_other_groups_were_planned(tmp_path, broken_planning, capsys):
    """`run --once`: one line names the group that could not be planned; exit 0, the others went out."""
    folder = two_groups(tmp_path)
    code = main(["run", "--once", "--now", NOW.strftime("%Y-%m-%dT%H:%M:%SZ"), "--config", str(folder)])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "could not plan broken: internal error (OverflowError" in out and "sent 14" in out
    assert "Traceback" not in out + err and SECRET not in out + err


def test_run_once_fails_when_no_group_could_be_planned(tmp_path, broken_planning, capsys):
    """When every group failed the tick did nothing: the problem is printed and the exit status is 1."""
    folder = two_groups(tmp_path, broken_only=True)
    code = main(["run", "--once", "--now", NOW.strftime("%Y-%m-%dT%H:%M:%SZ"), "--config", str(folder)])
    out, err = capsys.readouterr()
    assert code == 1 and "could not plan broken" in out and "Traceback" not in out + err


def test_a_message_that_cannot_be_built_fails_alone_in_friendtors_words(tmp_path, monkeypatch):
    """A bug building one member's message fails that message (no exception text kept); the rest are sent."""
    from scheduler.app import delivery

    victim = "daniel.okafor@lakeshore-u.example"
    real = delivery.message_for

    def failing(record, *args, **kwargs):
        if record.recipient == victim:
            raise KeyError(SECRET)
        return real(record, *args, **kwargs)

    monkeypatch.setattr(delivery, "message_for", failing)
    folder = two_groups(tmp_path)
    with Store(folder / "var" / "state.json") as store:
        runner = Runner(ConfigWatcher(folder), store, transport_for, availability=lambda *a: {})
        report = runner.tick(NOW)
        assert {r.recipient for r in report.failed} == {victim}
        assert len([r for r in report.sent if r.kind == Kind.INVITE]) == 22
        errors = {r.last_error for r in store.sends() if r.status == Status.FAILED}
    assert errors == {"internal error (KeyError) while preparing the message; the operator's log has the details"}


def test_a_state_database_lost_while_a_message_is_built_fails_no_message(tmp_path, monkeypatch):
    """The state going away mid-delivery stops the tick; the message is not failed for it (it is sent later)."""
    from scheduler.app import delivery
    from scheduler.core.errors import StateUnavailable

    victim = "daniel.okafor@lakeshore-u.example"
    real = delivery.message_for

    def database_gone(record, *args, **kwargs):
        if record.recipient == victim:
            raise StateUnavailable("cannot reach the state database")
        return real(record, *args, **kwargs)

    monkeypatch.setattr(delivery, "message_for", database_gone)
    folder = two_groups(tmp_path)
    with Store(folder / "var" / "state.json") as store:
        runner = Runner(ConfigWatcher(folder), store, transport_for, availability=lambda *a: {})
        with pytest.raises(StateUnavailable):
            runner.tick(NOW)
        assert not [r for r in store.sends() if r.status == Status.FAILED]
    monkeypatch.setattr(delivery, "message_for", real)
    with Store(folder / "var" / "state.json") as store:
        runner = Runner(ConfigWatcher(folder), store, transport_for, availability=lambda *a: {})
        runner.tick(NOW)
        assert victim in {r.recipient for r in store.sends() if r.status == Status.SENT}
