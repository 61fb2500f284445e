"""The simulated year on both backends: the example config ticks every 6 hours through 2027 once
with a TinyDB state and once with a PostgreSQL state, and both send the same messages."""

from __future__ import annotations

import email
import email.policy
import mailbox
import shutil
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from pg_servers import fresh_database

from integrations.calendars import group_availability
from integrations.mail import MaildirTransport
from scheduler.app.simulate import day_bounds
from scheduler.app.stores import open_store
from scheduler.app.tick import Runner
from scheduler.app.watcher import ConfigWatcher

REPO = Path(__file__).resolve().parents[2]
STEP = timedelta(hours=6)
cache: dict = {}   # member calendars, read once for both runs (they do not change)


def run_year(folder: Path, outbox: Path) -> tuple[list[email.message.EmailMessage], list]:
    """Tick through 2027 as `friendtor simulate` does, against the state the config names."""
    start, end = day_bounds("2027-01-01", "2027-12-31")

    def availability(config, group, lo, hi):  # calendars do not change during the year
        if (group.id, lo, hi) not in cache:
            cache[(group.id, lo, hi)] = group_availability(config, group, lo, hi)
        return cache[(group.id, lo, hi)]

    watcher = ConfigWatcher(folder)
    with open_store(watcher.config) as store:
        runner = Runner(watcher, store, lambda c: MaildirTransport(outbox), availability=availability)
        now = start
        while now <= end:
            runner.tick(now)
            now += STEP
        sends = store.sends()
    messages = [email.message_from_bytes(m.as_bytes(), policy=email.policy.default)
                for m in mailbox.Maildir(outbox, create=False)]
    return messages, sends


@pytest.fixture(scope="module")
def years(tmp_path_factory, pg_server):
    out = {}
    for backend in ("tinydb", "postgresql"):
        folder = tmp_path_factory.mktemp(backend) / "config"
        shutil.copytree(REPO / "config" / "example", folder, ignore=shutil.ignore_patterns("var"))
        if backend == "postgresql":
            service = folder / "service.toml"
            service.write_text(service.read_text().replace('state = "var/state.json"',
                                                           f'state = "{fresh_database(pg_server)}"', 1))
        out[backend] = run_year(folder, folder / "var" / "outbox")
    return out


def what(m: email.message.EmailMessage) -> tuple[str, str, str, str]:
    return (str(m["X-Friendtor-Key"]), str(m["To"]), str(m["Subject"]), str(m["Date"]))


@pytest.mark.slow  # two simulated years
def test_a_year_on_postgresql_sends_what_it_sends_on_tinydb(years):
    """Same messages (key, recipient, subject, date), each once; same outbox at the end of the year."""
    tiny, pg = years["tinydb"], years["postgresql"]
    assert len(pg[0]) > 300
    assert Counter(map(what, pg[0])) == Counter(map(what, tiny[0]))
    assert len({m["Message-ID"] for m in pg[0]}) == len(pg[0])
    assert sorted((r.sid, r.status, r.attempts) for r in pg[1]) == sorted((r.sid, r.status, r.attempts)
                                                                          for r in tiny[1])
