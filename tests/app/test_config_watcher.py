"""The running service notices config edits, and only config edits."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from scheduler.app.watcher import ConfigWatcher

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "example"


def config_with_state_beside_it(tmp_path: Path) -> Path:
    """The example config, with the state and Maildir in data/ (inside the folder, not var/)."""
    folder = tmp_path / "cfg"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("var"))
    service = (folder / "service.toml").read_text()
    service = service.replace('state = "var/state.json"', 'state = "data/state.json"')
    service = service.replace('maildir = "var/outbox"', 'maildir = "data/outbox"')
    (folder / "service.toml").write_text(service)
    return folder


def test_what_the_service_writes_is_not_a_config_edit(tmp_path):
    """State, journal, lock, feed cache, hand-over folder and Maildir change every tick; wherever
    service.toml puts them, they do not make the service reload its config."""
    folder = config_with_state_beside_it(tmp_path)
    watcher = ConfigWatcher(folder)
    data = folder / "data"
    (data / "feeds").mkdir(parents=True)
    (data / "incoming").mkdir()
    (data / "outbox" / "new").mkdir(parents=True)
    for path in ("state.json", "state.json.journal", "state.json.lock", "feeds/abc.ics", "incoming/a.json",
                 "outbox/new/1.eml"):
        (data / path).write_text("written by the service")
    assert not watcher.refresh()
    (data / "state.json.journal").write_text("one more line\n")
    assert not watcher.refresh()


def test_a_config_edit_is_noticed(tmp_path):
    folder = config_with_state_beside_it(tmp_path)
    watcher = ConfigWatcher(folder)
    group = folder / "groups" / "k-club.toml"
    group.write_text(group.read_text().replace('name = "K Club"', 'name = "The K Club"', 1))
    os.utime(group, ns=(1, 1))  # a different stamp whatever the clock's resolution
    assert watcher.refresh()
    assert watcher.config.groups["k-club"].name == "The K Club"
    (folder / "notes.txt").write_text("a file the coordinators keep here")
    assert watcher.refresh()  # any other file counts: it may be a calendar or a template
