"""What a tick's planner is handed of the outbox (StateStore.planned_at, invited_at, on_record),
on both backends: with the history of half a year kept, ticks plan exactly what a plan on every
record kept plans (no send twice, a member who leaves and comes back uncancelled and re-invited
once, a moved meeting's updates, a cancellation), and a tick never reads every send kept."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler.app.tick import Runner
from scheduler.app.watcher import ConfigWatcher
from scheduler.core.planner import StateView, plan
from scheduler.core.recorded import asked_at

ROOT = Path(__file__).resolve().parents[2]
HANNAH = "hannah.schultz@lakeshore-u.example"
LEAVES, RETURNS = datetime(2027, 2, 20, tzinfo=UTC), datetime(2027, 3, 1, tzinfo=UTC)


class Keep:
    def __init__(self):
        self.messages = []

    def send(self, message) -> None:
        self.messages.append(message)


def no_busy(group, window):
    return {}


def example(tmp_path: Path) -> Path:
    """The example config, keeping finished sends ten years (the history stays in the state)."""
    folder = tmp_path / "cfg"
    shutil.copytree(ROOT / "config" / "example", folder, ignore=shutil.ignore_patterns("var"))
    service = folder / "service.toml"
    service.write_text("keep_days = 3650\n" + service.read_text("utf-8"), "utf-8")
    return folder


def test_a_state_with_half_a_year_of_history_is_planned_as_before(tmp_path, store, monkeypatch):
    folder = example(tmp_path)
    toml = folder / "groups" / "k-club.toml"
    with_hannah = toml.read_text("utf-8")
    without_hannah = re.sub(r'\[\[members\]\]\nname = "Hannah Schultz"\n.*?\n\n', "", with_hannah, flags=re.S)
    assert HANNAH in with_hannah and HANNAH not in without_hannah
    transport = Keep()
    with store() as s:
        everything = type(s).planned, type(s).invited

        def whole_outbox(self):
            raise AssertionError("a tick read every send kept")
        monkeypatch.setattr(type(s), "planned", property(whole_outbox))
        monkeypatch.setattr(type(s), "invited", property(whole_outbox))
        runner = Runner(ConfigWatcher(folder), s, lambda c: transport, availability=lambda *a: {})
        now, moved, cancelled = datetime(2026, 11, 1, 3, tzinfo=UTC), False, False
        while now < datetime(2027, 5, 20, tzinfo=UTC):
            toml.write_text(without_hannah if LEAVES <= now < RETURNS else with_hannah, "utf-8")
            for (g, c), m in s.meetings().items():   # a coordinator moves March's meeting, cancels April's
                if c == "2027-03" and not moved and now >= m.stamp + timedelta(days=3):
                    s.save_meeting(replace(m, start=m.start + timedelta(hours=1), end=m.end + timedelta(hours=1),
                                           sequence=m.sequence + 1, stamp=now, moved_from=m.start))
                    moved = True
                if c == "2027-04" and not cancelled and now >= m.stamp + timedelta(days=2):
                    s.save_meeting(replace(m, cancelled=True, sequence=m.sequence + 1, stamp=now))
                    cancelled = True
            runner.watcher.refresh(runner._adopt)
            config = runner.config
            full = StateView(s.meetings(), everything[0].fget(s), everything[1].fget(s), s.alerts())
            assert plan(config, runner.view(now), now, no_busy) == plan(config, full, now, no_busy), now
            runner.tick(now)
            now += timedelta(hours=23)
        assert moved and cancelled
        sends = s.sends()
        kept = everything[0].fget(s)
        narrow = s.planned_at(now)
    sent = Counter((str(m["X-Friendtor-Key"]), str(m["To"])) for m in transport.messages)
    assert sent and set(sent.values()) == {1}
    hannah = sorted(r.key for r in sends if r.recipient == HANNAH and r.key.split(":")[0] in ("uninvite", "reinvite"))
    assert hannah == ["reinvite:k-club:2027-03", "uninvite:k-club:2027-03"]
    assert any(r.key.startswith("update:k-club:2027-03:") for r in sends)
    assert any(r.key == "cancel:k-club:2027-04" for r in sends)
    # much of what is kept is history no rule asks about any more; a database hands the planner the rest
    history = [r.sid for r in sends if not asked_at(r.kind, r.expires, now)]
    assert len(history) > len(sends) / 2
    assert all(sid not in narrow for sid in history) or narrow == kept


def test_failure_alerts_ask_for_their_own_keys_and_are_recorded_once(tmp_path, store, monkeypatch):
    """A message refused for good: its coordinators' alerts are recorded once, though the same
    failure's alerts were already on record from a tick that did not finish."""
    from scheduler.core.alerts import failure_alerts
    from scheduler.core.errors import SendError
    from scheduler.core.outbox import Kind

    class Refusing(Keep):
        def send(self, message) -> None:
            if HANNAH in str(message["To"]):
                raise SendError("550 5.1.1 no such user", transient=False)
            super().send(message)

    folder = example(tmp_path)
    now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    with store() as s:
        runner = Runner(ConfigWatcher(folder), s, lambda c: Refusing(), availability=lambda *a: {})
        asked = []
        on_record = type(s).on_record
        monkeypatch.setattr(type(s), "on_record", lambda self, sids: on_record(self, asked.append(list(sids)) or asked[-1]))
        report = runner.tick(now)
        [failed] = report.failed
        assert [len(a) for a in asked] == [2]   # the two coordinators' alerts, nothing else
        alerts = [r for r in s.sends() if r.kind == Kind.ALERT]
        assert len(alerts) == 2
        # the same failure reported again (as by a tick that stopped before its commit): nothing new
        before = len(s.sends())
        again = failure_alerts(runner.config, [failed], s.on_record(a.sid for a in alerts), now)
        assert again == ()
        runner.record_sends(failure_alerts(runner.config, [failed], frozenset(), now), now)
        assert len(s.sends()) == before


@pytest.mark.parametrize("garbage", [[], ["", "no-such|x@y.example", "'; DROP TABLE outbox; --|x"]])
def test_on_record_answers_for_the_sids_asked_only(store, garbage):
    with store() as s:
        assert s.on_record(garbage) == set()
        assert s.on_record(iter(garbage)) == set()
