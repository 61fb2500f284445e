"""What the calendar-cache tests share: an empty process cache per test, and a config folder
with one member whose calendar is a local file."""

from __future__ import annotations

import pytest

from integrations import calcache
from builders import ONE_MEMBER_GROUP as GROUP
from scheduler.app.loader import load_config


@pytest.fixture
def fresh_cache():
    """An empty calendar cache for the test (it is process-wide)."""
    calcache.CACHE.clear()
    yield
    calcache.CACHE.clear()


@pytest.fixture
def member_with_file(write_config_folder, fresh_cache):
    """Factory: (config, member) whose calendar is calendars/m.ics holding `data`; with
    `state_folder`, the state folder (var/) exists, as after a first run."""
    def make(data: bytes, zone: str = "Europe/London", service: str = 'state = "var/state.json"\n',
             state_folder: bool = False):
        folder = write_config_folder({"g.toml": GROUP.format(zone=zone, calendar="calendars/m.ics")}, service=service)
        (folder / "calendars").mkdir()
        (folder / "calendars" / "m.ics").write_bytes(data)
        if state_folder:
            (folder / "var").mkdir(mode=0o700, exist_ok=True)
        config = load_config(folder)
        return config, config.groups["g"].members[0]
    return make


@pytest.fixture(scope="module")
def substitution_on_small_texts():
    """icsplain's one-substitution cut on every calendar, however few its events (it is left
    out below `icsplain._WORTH` events, and test calendars are small)."""
    from integrations import icsplain

    worth, icsplain._WORTH = icsplain._WORTH, 0
    yield
    icsplain._WORTH = worth
