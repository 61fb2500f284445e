"""Several `friendtor run` nodes on one PostgreSQL state: no double sends, nothing lost.

Real processes (`python -m scheduler.cli run`) against one database on the session's pgserver,
sending a 40-group tick through a slow SMTP server on loopback (aiosmtpd): the nodes share the
work through claims (an advisory lock per group for planning, leases on outbox rows for
sending); a node killed with SIGKILL leaves leases that expire, and the other sends those
messages again, with the same Message-ID. The database restarting mid-tick: the service waits
for it, says so once, and goes on.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
from pg_servers import fresh_database, private_server
from smtp_servers import Server, Slow, running
from test_service_process import Start, parsed, recipient, start, wait_for  # noqa: F401 (start: a fixture)

NOW = "2026-11-20T12:00:00Z"   # December's invites are due for every group below
GROUPS, MEMBERS = 40, 4
LEASE = 2                      # seconds: a dead node's claims run out quickly


def forty_groups(folder: Path, url: str, smtp: Server, groups: int = GROUPS) -> Path:
    """A config folder: 40 groups (or `groups`) of four (no calendars: planning is quick), mail through `smtp`."""
    (folder / "groups").mkdir(parents=True)
    (folder / "service.toml").write_text(
        f'state = "{url}"\nlease_seconds = {LEASE}\n\n[mail]\ntransport = "smtp"\nsender = "g@mentoring.example.org"\n\n'
        f'[mail.smtp]\nhost = "{smtp.host}"\nport = {smtp.port}\nsecurity = "none"\ntimeout_seconds = 5\n')
    for g in range(1, groups + 1):
        members = "".join(f'[[members]]\nname = "M{i} G{g}"\nemail = "m{i}.g{g}@uni.example"\n'
                          f'timezone = "America/New_York"\nhours = "08:00-18:00"\n\n' for i in range(1, MEMBERS + 1))
        (folder / "groups" / f"g{g}.toml").write_text(
            f'name = "G{g}"\ntimezone = "America/New_York"\ncoordinators = ["m1.g{g}@uni.example"]\n'
            f'started = 2026-01-13\n\n[meetings]\ncadence = "monthly"\nweekdays = ["tue", "wed", "thu"]\n'
            f'weeks_of_month = [2, 3]\ninvite_days_before = 21\n\n{members}')
    return folder


def rows(url: str, where: str = "TRUE", params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT sid, doc->>'status', doc->>'message_id', node FROM outbox WHERE {where}",
                            params).fetchall()


def node_args(folder: Path) -> tuple[str, ...]:
    return ("run", "--config", str(folder), "--now", NOW, "--log-format", "json")


@pytest.fixture
def slowish_smtp():
    """0.05 s per message: a 160-message tick takes seconds, long enough to share and to interrupt."""
    with running(Slow(delay=0.05)) as server:
        yield server


def received_ids(server: Server) -> Counter:
    return Counter(str(parsed(r.content)["Message-ID"]) for r in server.received)


def check_every_message_went_out(url: str, server: Server) -> dict[str, str]:
    """All rows sent; each message received carries its row's Message-ID; sid -> Message-ID."""
    stored = rows(url)
    assert stored and all(status == "sent" for _, status, _, _ in stored), Counter(s for _, s, _, _ in stored)
    by_sid = {sid: mid for sid, _, mid, _ in stored}
    for r in server.received:
        m = parsed(r.content)
        assert r.rcpt_tos == (recipient(m),)
        assert by_sid[f"{m['X-Friendtor-Key']}|{recipient(m)}"] == str(m["Message-ID"])
    assert set(received_ids(server)) == set(by_sid.values()), "every message arrived"
    return by_sid


@pytest.mark.slow
def test_two_nodes_share_a_40_group_tick_and_send_every_message_once(tmp_path, pg_url, slowish_smtp, start: Start):
    """Two nodes on one database: every message exactly once (by Message-ID), and both nodes sent some."""
    folder = forty_groups(tmp_path / "config", pg_url, slowish_smtp)
    # Started together: one plans (the other finds the groups locked and waits for that plan's
    # commit), then both send.
    a, b = start(*node_args(folder)), start(*node_args(folder))
    assert a.wait(120) == 0, a.stderr
    assert b.wait(120) == 0, b.stderr
    check_every_message_went_out(pg_url, slowish_smtp)
    assert len(slowish_smtp.received) == GROUPS * MEMBERS
    assert max(received_ids(slowish_smtp).values()) == 1, "a message was sent twice"
    sent_by = {name: sum(e.get("event") == "sent" for e in run.events()) for name, run in (("a", a), ("b", b))}
    assert sent_by["a"] > 0 and sent_by["b"] > 0 and sum(sent_by.values()) == GROUPS * MEMBERS, sent_by


# Where the killed node dies: while it starts and plans (it starts first), or, once the other
# node is sending, as soon as it holds a lease, or once the server has received k more
# messages. Each point is a whole tick on a fresh database, so every point has work left.
KILL_POINTS = [("first", "seconds", 0.5), ("second", "leased", 0), ("second", "messages", 3),
               ("second", "messages", 15)]


@pytest.mark.slow
@pytest.mark.parametrize("order, how, amount", KILL_POINTS, ids=[f"{o}-{h}-{a}" for o, h, a in KILL_POINTS])
def test_kill_9_of_one_node_loses_nothing_and_resends_only_its_leased_messages(
        tmp_path, pg_server, start: Start, order, how, amount):
    """SIGKILL one node while the other runs: every message arrives, a copy is only ever of a
    message the dead node held a lease on, with the same Message-ID."""
    url = fresh_database(pg_server)
    with running(Slow(delay=0.05)) as smtp:
        folder = forty_groups(tmp_path / "config", url, smtp, groups=20)
        if order == "first":
            victim, other = start(*node_args(folder)), start(*node_args(folder))
        else:
            other = start(*node_args(folder))
            wait_for(lambda: rows(url, "doc->>'status' = 'sending'") or not other.alive(), 60, "sending under way")
            victim = start(*node_args(folder))
        began, before = time.monotonic(), len(smtp.received)
        mine = f"%:{victim.proc.pid}"
        trigger = {
            "seconds": lambda: time.monotonic() - began >= amount,
            "leased": lambda: rows(url, "node LIKE %s", (mine,)),
            "messages": lambda: len(smtp.received) - before >= amount,
        }[how]
        wait_for(lambda: trigger() or not victim.alive(), 60, f"kill point {how} {amount}", every=0.005)
        assert victim.alive(), "the node finished before its kill point"
        victim.proc.send_signal(signal.SIGKILL)
        assert victim.wait() == -signal.SIGKILL
        leased = {sid for sid, status, _, _ in rows(url, "node LIKE %s", (mine,)) if status == "sending"}
        assert other.wait(120) == 0, other.stderr

        time.sleep(LEASE + 0.5)   # the dead node's leases run out; the next node sends those messages
        final = start(*node_args(folder))
        assert final.wait(120) == 0, final.stderr
        by_sid = check_every_message_went_out(url, smtp)
        copies = received_ids(smtp)
    twice = {sid for sid, mid in by_sid.items() if copies[mid] > 1}
    assert twice <= leased, f"resent without a lease held by the killed node: {sorted(twice - leased)[:5]}"
    assert max(copies.values()) <= 2


@pytest.mark.slow
def test_a_database_restart_mid_tick_the_service_waits_says_so_once_and_goes_on(
        tmp_path, slowish_smtp, caplog):
    """pg_ctl restart while a node sends: one log line, then it goes on; nothing lost, a resend only
    with the same Message-ID."""
    from pgserver import _commands

    from integrations.mail import transport_for
    from scheduler.app.service import Signals, serve
    from scheduler.app.stores import open_store
    from scheduler.app.tick import Runner
    from scheduler.app.watcher import ConfigWatcher

    with private_server() as server:
        url = fresh_database(server)
        folder = forty_groups(tmp_path / "config", url, slowish_smtp)
        watcher = ConfigWatcher(folder)
        now = datetime.fromisoformat(NOW.replace("Z", "+00:00"))
        caplog.set_level(logging.INFO, logger="friendtor")
        with open_store(watcher.config) as store:
            runner = Runner(watcher, store, transport_for, availability=lambda *a: {})
            signals = Signals(runner)
            loop = threading.Thread(target=serve, args=(runner, lambda: now), kwargs={"signals": signals})
            loop.start()
            try:
                wait_for(lambda: len(slowish_smtp.received) >= 20, 60, "sending under way")
                _commands.pg_ctl(["-w", "-m", "fast", "restart"], pgdata=server.pgdata, user=server.system_user)
                give_up = time.monotonic() + 180
                while len(rows(url, "doc->>'status' = 'sent'")) < GROUPS * MEMBERS:
                    failed = rows(url, "doc->>'status' = 'failed'")
                    assert not failed, f"the restart failed messages for good: {failed[:3]}"
                    assert time.monotonic() < give_up, "not every message was sent after the restart"
                    signals.wake = True   # a tick now (SIGUSR1's way), not at the next minute
                    wait_for(lambda: not signals.wake, 60, "the tick to start")
                    time.sleep(0.5)
            finally:
                runner.stop = True
                loop.join(30)
        check_every_message_went_out(url, slowish_smtp)
        waiting = [r for r in caplog.records if "state database unreachable" in r.getMessage()]
        assert len(waiting) == 1, [r.getMessage() for r in caplog.records]
        assert any("reachable again" in r.getMessage() for r in caplog.records)
