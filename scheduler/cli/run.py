"""`run` (the service, or one tick) and `simulate` (ticks over simulated time)."""

from __future__ import annotations

import argparse
import contextlib
import logging
from datetime import UTC, datetime
from pathlib import Path

from scheduler.cli import wiring
from scheduler.cli.arguments import instant
from scheduler.core.config import Config
from scheduler.core.errors import StateError


def cmd_run(args: argparse.Namespace) -> int:
    from scheduler.app import logs
    from scheduler.app.holidaykeep import kept_holidays
    from scheduler.app.service import Signals, serve
    from scheduler.app.stores import describe, open_store
    from scheduler.core.config import is_database
    from scheduler.app.tick import Runner
    from scheduler.app.watcher import ConfigWatcher

    logs.setup(args.log_format, debug=args.debug)
    watcher = ConfigWatcher(Path(args.config))
    config = watcher.config
    state_path = describe(config)
    if args.dry_run and not is_database(config.service.state):  # it writes nothing, but promises the service
        from scheduler.app.statecheck import check_state_folder  # would run: a writer checks in Store

        check_state_folder(config.path(config.service.state))
    # A dry run reads the state but never writes it, so it takes no lock and may run beside the service.
    store = open_store(config, lock=not args.dry_run)
    # The holiday tables a tick computes are kept for the commands after it (not by a dry run,
    # which writes nothing); kept ones spare a restart the `holidays` import.
    holidays = contextlib.nullcontext() if args.dry_run else kept_holidays(config.service.local_folder(config.folder))
    try:
        runner = Runner(watcher, store, wiring.transport_factory(args.dry_run), availability=wiring.group_availability,
                        dry_run=args.dry_run, publishers_factory=wiring.publishers_factory(),
                        inbox=wiring.reply_inbox())
        signals = Signals(runner, on_stop=wiring.exchange_abort())
        signals.install()
        if args.once or args.now or args.dry_run:
            with holidays:
                report = runner.tick(instant(args.now, "--now"))
            print(_run_summary(runner.config, report, args.dry_run))
            if store.unsaved:
                raise StateError(f"{state_path}: the state was not saved ({store.unsaved}): what this tick sent "
                                 "is not recorded, so the next run may send those messages again (with the same "
                                 "Message-IDs, which mail clients drop as duplicates); free space or fix "
                                 "permissions before the next run")
            # A group that could not be planned is printed, logged and alerted; the tick went on
            # for the others, so that is success. Only a tick where no group could be planned
            # at all (the service did nothing) exits non-zero.
            if report.group_problems and len(report.group_problems) == len(runner.config.groups):
                return 1
        else:
            with holidays:
                serve(runner, clock=lambda: datetime.now(UTC), signals=signals)
    finally:
        store.close()
    return 0


def _run_summary(config: Config, report, dry_run: bool) -> str:
    from collections import Counter

    lines = [f"{'dry run' if dry_run else 'tick'} at {report.now:%Y-%m-%d %H:%M} UTC, config {config.folder}"]
    for m in report.meetings:
        g = config.groups[m.group]
        s, e = m.start.astimezone(g.tz), m.end.astimezone(g.tz)
        lines.append(f"  {'would schedule' if dry_run else 'scheduled'} {m.group} {m.cycle}: "
                     f"{s:%a %d %b %Y %H:%M}–{e:%H:%M} {g.timezone}")
    for gp in report.group_problems:
        lines.append(f"  could not plan {gp.group}: {gp.reason} (see the log); the other groups went on")
    if dry_run:
        for record, message in report.would_send:
            lines.append(f"  would send {record.kind:<10} to {record.recipient}: {message['Subject']}")
        if not report.would_send and not report.meetings:
            lines.append("  nothing is due")
        return "\n".join(lines)
    counts = Counter(str(r.kind) for r in report.sent)
    if counts:
        lines.append(f"  sent {sum(counts.values())}: " + ", ".join(f"{k} {n}" for k, n in sorted(counts.items())))
    for label, docs in (("will retry", report.retrying), ("failed", report.failed), ("not sent", report.skipped)):
        if docs:
            lines.append(f"  {label} {len(docs)} (see `friendtor status`)")
    if report.held:
        lines.append(f"  held back {len(report.held)}: the mail server or the setup failed (see the log), "
                     "they wait for the next try")
    if not (counts or report.meetings or report.failed or report.retrying or report.held):
        lines.append("  nothing was due")
    mail = config.service.mail
    if mail.transport == "maildir":
        box = config.path(mail.maildir)
        lines.append(f"  messages are in {box} (open with: mutt -f {box})")
    from scheduler.app.stores import describe

    lines.append(f"  state: {describe(config)}; `friendtor status --config {config.folder}` "
                 "shows what is planned")
    return "\n".join(lines)


def cmd_simulate(args: argparse.Namespace) -> int:
    from scheduler.app import logs
    from scheduler.app.simulate import day_bounds, format_timeline, parse_step, simulate

    logs.setup("text", debug=args.debug, level=logging.WARNING)  # the timeline is the output
    start, end = day_bounds(args.start, args.end)
    step = parse_step(args.step)
    folder = Path(args.config)
    out = Path(args.out) if args.out else folder / "var" / "simulation"
    timeline = simulate(folder, start, end, step, out, availability=wiring.group_availability,
                        maildir=wiring.maildir_transport)
    print(format_timeline(timeline, out))
    return 0
