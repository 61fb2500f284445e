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
from scheduler.core.errors import FriendtorError
from scheduler.core.log import event
from scheduler.core.ports import AbortExchanges


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

    def run_tick() -> None:
        try:
            report = runner.tick(clock())
            if report.sent or report.failed or report.meetings or report.held:
                event("tick", sent=len(report.sent), failed=len(report.failed), meetings=len(report.meetings),
                      held=len(report.held))
        except FriendtorError as exc:
            event("tick failed", logging.ERROR, error=str(exc))
        except Exception as exc:  # a bug: log it with its traceback and keep the service up
            logging.getLogger("friendtor").exception("tick failed with an internal error")
            event("tick failed", logging.ERROR, error=f"{type(exc).__name__}: {exc}")

    minutes = runner.config.service.tick_minutes
    scheduler.every(minutes).minutes.do(run_tick)
    event("started", tick_minutes=minutes, groups=len(runner.config.groups), pid=os.getpid())
    run_tick()  # at once: a restart after downtime catches up straight away
    while not runner.stop:
        if runner.config.service.tick_minutes != minutes:  # changed in a reloaded config
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
