"""`friendtor status`: upcoming meetings in the group's zone, what was sent, what is stuck and why."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import time_machine

from scheduler.cli.main import main
from scheduler.app.store import Store
from scheduler.core.outbox import Status

ROOT = Path(__file__).resolve().parents[2]


def test_status_shows_meetings_sends_and_failures(tmp_path, capsys):
    """After a tick: the meeting in New York time, the invites sent, and a failed send with its reason."""
    folder = tmp_path / "cfg"
    shutil.copytree(ROOT / "config" / "example", folder, ignore=shutil.ignore_patterns("var"))
    assert main(["run", "--config", str(folder), "--now", "2026-11-20T12:00:00Z"]) == 0
    with Store(folder / "var" / "state.json") as store:
        [doc] = [d for d in store.sends() if d.recipient == "li.wang@pacific-u.example"]
        store.update_sends([doc.moved_on(Status.FAILED, last_error="550 5.1.1 no such user")])
        store.commit()
    capsys.readouterr()
    with time_machine.travel(datetime(2026, 11, 21, tzinfo=UTC), tick=False):
        assert main(["status", "k-club", "--config", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "K Club (k-club), times in America/New_York" in out
    assert "meeting 2026-12: Thu 10 Dec 2026 10:00–11:00" in out
    assert "invite     invite:k-club:2026-12  to 11" in out
    assert "failed  invite     invite:k-club:2026-12 to li.wang@pacific-u.example: 550 5.1.1 no such user" in out


def test_status_before_any_run_and_bad_group(tmp_path, capsys):
    """No state yet is said plainly; an unknown group is one line, exit 2."""
    folder = tmp_path / "cfg"
    shutil.copytree(ROOT / "config" / "example", folder, ignore=shutil.ignore_patterns("var"))
    assert main(["status", "--config", str(folder)]) == 0
    assert "no state yet" in capsys.readouterr().out
    assert main(["status", "k-klub", "--config", str(folder)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "did you mean 'k-club'" in err
