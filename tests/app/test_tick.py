"""One tick (scheduler.app.tick): plan, record, deliver, and the alerts that follow; and the
loop around it (scheduler.app.service): a tick at once, then every tick_minutes or on SIGUSR1."""

from __future__ import annotations

import email.utils
import os
import shutil
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

from scheduler.app.service import Signals, serve
from scheduler.app.store import Store
from scheduler.app.tick import Runner, TickReport
from scheduler.app.watcher import ConfigWatcher
from scheduler.core.availability import Availability
from scheduler.core.errors import SendError
from scheduler.core.outbox import Kind, Status

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)   # the example's December invites are due
COORDINATORS = {"maya.chen@northeast-childrens.example", "li.wang@pacific-u.example"}
DANIEL = "daniel.okafor@lakeshore-u.example"
REVOKED = Availability.unreadable("sign-in revoked: run friendtor google-auth", needs_fix=True)


class Refusing:
    """A transport that refuses one recipient for good and keeps the rest."""

    def __init__(self, refused: str):
        self.refused, self.messages = refused, []

    def send(self, message) -> None:
        if email.utils.parseaddr(str(message["To"]))[1] == self.refused:
            raise SendError("550 5.1.1 no such user", transient=False)
        self.messages.append(message)


def example(tmp_path: Path) -> Path:
    folder = tmp_path / "cfg"
    shutil.copytree(ROOT / "config" / "example", folder, ignore=shutil.ignore_patterns("var"))
    return folder


def test_a_failed_send_has_its_alerts_recorded_in_the_same_tick_and_sent_at_the_next(tmp_path):
    """A member's invite fails for good: the coordinators' alerts are in the outbox when the tick
    ends (pending, so `status` shows them) and go out at the next tick."""
    folder = example(tmp_path)
    transport = Refusing(DANIEL)
    with Store(folder / "var" / "state.json") as store:
        runner = Runner(ConfigWatcher(folder), store, lambda c: transport, availability=lambda *a: {})
        report = runner.tick(NOW)
        assert [r.recipient for r in report.failed] == [DANIEL] and report.failed[0].last_error
        alerts = [r for r in store.sends() if r.kind == Kind.ALERT]
        assert {r.recipient for r in alerts} == COORDINATORS and {r.status for r in alerts} == {Status.PENDING}
        nxt = runner.tick(NOW + timedelta(minutes=5))
        assert {r.recipient for r in nxt.sent if r.kind == Kind.ALERT} == COORDINATORS


def test_a_dry_run_records_nothing_and_alerts_nobody(tmp_path):
    """A dry run plans and renders, but the state file is not written and no calendar alert is planned."""
    folder = example(tmp_path)
    state = folder / "var" / "state.json"
    with Store(state, lock=False) as store:
        runner = Runner(ConfigWatcher(folder), store, lambda c: Refusing(""), dry_run=True,
                        availability=lambda config, group, lo, hi: {m.email: REVOKED for m in group.members})
        report = runner.tick(NOW)
        assert report.meetings and report.would_send
        assert not [r for r in report.planned if r.key.startswith("calendar-problem:")]
    assert not state.exists()


def test_unreadable_calendars_are_alerted_by_the_plan(tmp_path):
    """Calendars that need a fix: the plan carries the coordinators' alert, recorded with the rest."""
    folder = example(tmp_path)
    with Store(folder / "var" / "state.json") as store:
        runner = Runner(ConfigWatcher(folder), store, lambda c: Refusing(""),
                        availability=lambda config, group, lo, hi: {m.email: REVOKED for m in group.members})
        report = runner.tick(NOW)
        planned = [s for s in report.planned if s.key.startswith("calendar-problem:")]
        assert {s.recipient for s in planned} == COORDINATORS
        assert {r.sid for r in store.sends()} >= {s.sid for s in planned}


class Ticking:
    """Stands in for the Runner in the loop: counts ticks, stops after `ticks`."""

    def __init__(self, ticks: int):
        self.config = SimpleNamespace(service=SimpleNamespace(tick_minutes=1), groups={})
        self.stop, self.ticks, self.left = False, [], ticks

    def tick(self, now: datetime) -> TickReport:
        self.ticks.append(now)
        self.left -= 1
        self.stop = self.left <= 0
        return TickReport(now)


def test_the_loop_ticks_at_once_and_on_sigusr1_without_waiting_a_minute():
    """serve() ticks at start; SIGUSR1 asks for the next tick at once, not at the next minute mark."""
    runner = Ticking(ticks=2)
    signals = Signals(runner)
    before = signal.getsignal(signal.SIGUSR1), signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    signals.install()
    try:
        sleeps = []

        def sleep(seconds: float) -> None:
            sleeps.append(seconds)
            if len(sleeps) == 3:
                os.kill(os.getpid(), signal.SIGUSR1)
            assert len(sleeps) < 10, "the loop did not tick on SIGUSR1"

        serve(runner, clock=lambda: NOW, sleep=sleep, signals=signals)
    finally:
        for sig, handler in zip((signal.SIGUSR1, signal.SIGTERM, signal.SIGINT), before):
            signal.signal(sig, handler)
    assert len(runner.ticks) == 2 and len(sleeps) <= 4


def test_sigterm_stops_the_loop():
    """SIGTERM sets the stop flag the loop and delivery look at; the loop ends after its sleep."""
    runner = Ticking(ticks=100)
    signals = Signals(runner)
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGUSR1)
    signals.install()
    try:
        serve(runner, clock=lambda: NOW, sleep=lambda s: os.kill(os.getpid(), signal.SIGTERM), signals=signals)
    finally:
        for sig, handler in zip((signal.SIGTERM, signal.SIGINT, signal.SIGUSR1), before):
            signal.signal(sig, handler)
    assert runner.stop and len(runner.ticks) == 1
