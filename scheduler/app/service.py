"""The long-running service: a tick every `tick_minutes`, until SIGTERM or SIGINT.

What a tick does is tick.py's; this module only keeps ticking: a tick that fails is logged
and the next one comes as usual; the first tick runs at once (a restart after downtime
catches up straight away); SIGTERM and SIGINT cut the exchanges in flight (the hook the CLI
wires: an SMTP session, a feed or CalDAV request, a Google call), so the process stops
within a few seconds even when a server trickles; the message in flight goes back to
pending, untouched, and is resent after a restart with the same Message-ID; then the loop
ends; SIGUSR1 asks for a tick at once instead of at the next
minute mark (operators after an edit, and the tests, which would otherwise wait a minute).
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from datetime import datetime

from scheduler.app.tick import Runner
from scheduler.app.watcher import ConfigWatcher  # noqa: F401 (the service's config, known from here too)
from scheduler.core.errors import FriendtorError, StateUnavailable
from scheduler.core.log import event
from scheduler.core.ports import AbortExchanges

DATABASE_RETRY_SECONDS = 3   # while the state database is unreachable, a tick is tried this often


class Signals:
    """What the process was asked by signal: stop (SIGTERM, SIGINT) or tick now (SIGUSR1)."""

    def __init__(self, runner: Runner, on_stop: AbortExchanges | None = None):
        self.runner = runner
        self.on_stop = on_stop  # cuts the exchanges in flight (the app never imports integrations)
        self.wake = False

    def install(self) -> None:
        def stop(signum, frame):
            # Stop first, then cut: the delivery loop that sees the cut send fail must already
            # know it is stopping, so it puts the message back instead of counting a failure.
            self.runner.stop = True
            if self.on_stop is not None:
                self.on_stop()

        def wake(signum, frame):
            self.wake = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGUSR1, wake)


def serve(runner: Runner, clock: Callable[[], datetime], sleep: Callable[[float], None] = time.sleep,
          signals: Signals | None = None) -> None:
    import schedule

    scheduler = schedule.Scheduler()
    down = False   # the state database could not be reached at the last tick

    def run_tick() -> None:
        nonlocal down
        try:
            report = runner.tick(clock())
            if down:
                event("state database reachable again; ticking as usual")
                down = False
            if report.sent or report.failed or report.meetings or report.held:
                event("tick", sent=len(report.sent), failed=len(report.failed), meetings=len(report.meetings),
                      held=len(report.held))
        except StateUnavailable as exc:
            # One line when it goes, one when it is back; meanwhile a tick is tried every few
            # seconds, so the nodes go on as soon as the database does.
            if not down:
                event("state database unreachable; waiting for it", logging.ERROR, error=str(exc))
            down = True
        except FriendtorError as exc:
            event("tick failed", logging.ERROR, error=str(exc))
        except Exception as exc:  # a bug: log it with its traceback and keep the service up
            logging.getLogger("friendtor").exception("tick failed with an internal error")
            event("tick failed", logging.ERROR, error=f"{type(exc).__name__}: {exc}")

    minutes = runner.config.service.tick_minutes
    scheduler.every(minutes).minutes.do(run_tick)
    event("started", tick_minutes=minutes, groups=len(runner.config.groups), pid=os.getpid())
    run_tick()  # at once: a restart after downtime catches up straight away
    waited = 0
    while not runner.stop:
        waited += 1
        if down and waited >= DATABASE_RETRY_SECONDS:
            waited = 0
            run_tick()
        if _tick_minutes(runner, minutes) != minutes:  # changed in a reloaded config
            minutes = runner.config.service.tick_minutes
            scheduler.clear()
            scheduler.every(minutes).minutes.do(run_tick)
        if signals is not None and signals.wake:
            signals.wake = False
            scheduler.run_all()  # the tick at once; the next one counts from now
        else:
            scheduler.run_pending()
        sleep(1)
    event("stopped")


def _tick_minutes(runner: Runner, minutes: int) -> int:
    """The config's tick_minutes; `minutes` while the state database is away (the config in
    force has the members' items merged in, which are read from the state)."""
    try:
        return runner.config.service.tick_minutes
    except StateUnavailable:
        return minutes
