"""The `friendtor` command: the one place that reads the clock and wires integrations to the core.

Every error a user can cause is a FriendtorError: printed as one line per problem on
stderr, exit status 2, no traceback. Anything else is a bug: one line, exit 70, and the
traceback only with --debug.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from scheduler.core.config import Config, Group
from scheduler.core.errors import FriendtorError, UsageError
from scheduler.core.fields import did_you_mean

log = logging.getLogger("friendtor")

DEFAULT_CONFIG = "config/example"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="friendtor", description="Keeps peer mentorship groups meeting.")
    p.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def config_arg(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--config", default=DEFAULT_CONFIG, metavar="DIR",
                        help=f"config folder (default: {DEFAULT_CONFIG})")

    v = sub.add_parser("validate", help="check every config file")
    config_arg(v)

    s = sub.add_parser("slots", help="rank meeting times for a group and explain them")
    s.add_argument("group", metavar="GROUP", help="the group's id (its file name in groups/)")
    config_arg(s)
    s.add_argument("--from", dest="start", metavar="DATE", help="first date, in the group's zone (YYYY-MM-DD)")
    s.add_argument("--to", dest="end", metavar="DATE", help="last date, inclusive (YYYY-MM-DD)")
    s.add_argument("--top", type=_positive, default=5, metavar="N", help="how many options (default 5)")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.add_argument("--heatmap", metavar="FILE", help="also draw who is free when over the window: FILE.svg or FILE.png")

    pv = sub.add_parser("preview", help="show exactly what a member would receive")
    pv.add_argument("group", metavar="GROUP")
    pv.add_argument("kind", metavar="KIND", help="invite, update, cancel, agenda, follow-up, nudge, "
                    "review, year-end or alert")
    config_arg(pv)
    pv.add_argument("--to", metavar="EMAIL", help="the member (default: the first member; alerts: a coordinator)")
    pv.add_argument("--now", metavar="ISO8601", help="as if at this instant, e.g. 2026-12-01T09:00:00Z")
    pv.add_argument("--eml", metavar="FILE", help="write the whole RFC 5322 message here")
    pv.add_argument("--html", metavar="FILE", help="write the HTML part here")

    r = sub.add_parser("run", help="run the service: plan, send and record, every tick_minutes")
    config_arg(r)
    r.add_argument("--once", action="store_true", help="run one tick and exit")
    r.add_argument("--now", metavar="ISO8601", help="run one tick as if at this instant (implies --once)")
    r.add_argument("--dry-run", action="store_true", help="print what would be done; change and send nothing")
    r.add_argument("--log-format", choices=("text", "json"), default="text", help="log lines as text or JSON")

    sim = sub.add_parser("simulate", help="run ticks over simulated time into a scratch state and Maildir")
    config_arg(sim)
    sim.add_argument("--from", dest="start", required=True, metavar="DATE")
    sim.add_argument("--to", dest="end", required=True, metavar="DATE")
    sim.add_argument("--step", default="6h", help="time between ticks: 30m, 6h, 1d (default 6h)")
    sim.add_argument("--out", metavar="DIR", help="scratch folder (default: var/simulation in the config folder)")

    at = sub.add_parser("attendance", help="record who came to a meeting")
    at.add_argument("group", metavar="GROUP")
    at.add_argument("date", metavar="DATE", help="the meeting's date in the group's zone (YYYY-MM-DD)")
    config_arg(at)
    at.add_argument("--present", nargs="+", default=[], metavar="EMAIL")
    at.add_argument("--absent", nargs="+", default=[], metavar="EMAIL")

    rs = sub.add_parser("reschedule", help="move a scheduled meeting; members get an update")
    rs.add_argument("group", metavar="GROUP")
    rs.add_argument("--to", required=True, metavar='"YYYY-MM-DD HH:MM"',
                    help="the new start, local time in the group's zone")
    rs.add_argument("--cycle", metavar="KEY", help="which meeting, e.g. 2026-12 (default: the next one)")
    config_arg(rs)

    cn = sub.add_parser("cancel", help="cancel a scheduled meeting; members get a cancellation")
    cn.add_argument("group", metavar="GROUP")
    cn.add_argument("--cycle", metavar="KEY", help="which meeting, e.g. 2026-12 (default: the next one)")
    config_arg(cn)

    st = sub.add_parser("status", help="upcoming meetings, what was sent, what is pending or failed")
    st.add_argument("group", metavar="GROUP", nargs="?")
    config_arg(st)

    ga = sub.add_parser("google-auth", help="sign in to Google Calendar once ([google] auth = \"oauth\")")
    config_arg(ga)
    ga.add_argument("--port", type=int, default=0, metavar="PORT",
                    help="local port Google's answer comes back to (default: any free port; "
                         "pick one to forward it with ssh -L PORT:localhost:PORT)")
    ga.add_argument("--no-browser", action="store_true", help="only print the URL; do not open a browser")
    return p


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")  # a C locale must not turn "–" into a traceback
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return COMMANDS[args.command](args)
    except FriendtorError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: say so in one line; the traceback is for --debug
        log.debug("internal error", exc_info=True)
        print(f"friendtor: internal error ({type(exc).__name__}: {exc}); run again with --debug "
              "and report the output", file=sys.stderr)
        return 70


def _load(args: argparse.Namespace) -> Config:
    from scheduler.app.loader import load_config

    return load_config(Path(args.config))


def _group(config: Config, gid: str) -> Group:
    if gid in config.groups:
        return config.groups[gid]
    known = sorted(config.groups)
    raise UsageError(f"{config.folder}: no group {gid!r}{did_you_mean(gid, known)}; groups here: {', '.join(known)}")


def _date(text: str | None, flag: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{flag}: {text!r} is not a date; use YYYY-MM-DD, e.g. 2027-03-09") from None


def _instant(text: str | None, flag: str) -> datetime:
    """--now: an aware ISO 8601 instant (the clock is read here, at the edge, when it is absent)."""
    if text is None:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{flag}: {text!r} is not an ISO 8601 time; use e.g. 2026-12-01T09:00:00Z") from None
    if value.tzinfo is None:
        raise UsageError(f"{flag}: {text!r} has no time zone; add one, e.g. {text}Z or {text}-05:00")
    if not 2000 <= value.year <= 2200:
        raise UsageError(f"{flag}: {text!r} is too far from today to plan for; use a year between 2000 and 2200")
    return value.astimezone(UTC)


def _write(path: str, data: bytes, flag: str) -> None:
    try:
        Path(path).write_bytes(data)
    except OSError as exc:
        raise UsageError(f"{flag}: cannot write {path}: {exc.strerror or exc}") from None


def cmd_validate(args: argparse.Namespace) -> int:
    config = _load(args)
    groups = ", ".join(f"{g.id} ({len(g.members)} members)" for g in config.groups.values())
    n = len(config.groups)
    print(f"{config.folder}: ok: {n} group{'s' if n != 1 else ''}: {groups}; mail via {config.service.mail.transport}")
    return 0


def _stored_meetings(config: Config) -> dict:
    """The meetings in the service's state, read beside a running service; none before it ran."""
    from scheduler.app.store import Store

    path = config.path(config.service.state)
    if not path.exists():
        return {}
    with Store(path, lock=False) as store:
        return dict(store.meetings())


def _history(config: Config, group: Group, now: datetime):
    """Who met at inconvenient hours lately, and when the group usually meets, from the
    service's state (none yet: no history), so `slots` ranks as the service will."""
    from scheduler.core.planner import StateView, past_burden, past_usual

    view = StateView(_stored_meetings(config), frozenset(), {}, {})
    return past_burden(group, view, now), past_usual(group, view, now)


def cmd_slots(args: argparse.Namespace) -> int:
    from integrations.calendars import group_availability

    from scheduler.core.cycles import next_window, range_window
    from scheduler.cli.slotreport import as_json, as_table
    from scheduler.core.slots import find_slots

    heatmap_format = _heatmap_format(args.heatmap)
    config = _load(args)
    group = _group(config, args.group)
    now = datetime.now(UTC)
    start, end = _date(args.start, "--from"), _date(args.end, "--to")
    if start or end:
        start = start or now.astimezone(group.tz).date()
        end = end or start + timedelta(days=30)
        if end < start:
            raise UsageError(f"--to {end} is before --from {start}; swap them")
        if (end - start).days > 366:
            raise UsageError("--from/--to span more than a year; ask for a shorter range")
        window = range_window(group, start, end)
    else:
        window = next_window(group, now)
        if window is None:
            raise UsageError(f"groups/{group.id}.toml: meetings: no eligible date in the next two years; "
                             "check meetings.weekdays and meetings.weeks_of_month")
    if not window.dates:
        raise UsageError(f"no {', '.join(_weekday_names(group))} between {start} and {end}; widen --from/--to")
    lo = datetime.combine(window.first, datetime.min.time(), group.tz)
    hi = datetime.combine(window.last + timedelta(days=1), datetime.min.time(), group.tz)
    availability = group_availability(config, group, lo, hi)
    burden, usual = _history(config, group, now)
    candidates = find_slots(group, window, availability, not_before=now, top=args.top, distinct=True,
                            burden=burden, usual=usual)
    print(as_json(group, candidates) if args.json else as_table(group, window, candidates, burden, usual))
    if args.heatmap:
        from scheduler.core import heatmap as hm

        grid = hm.heatmap(group, window, availability,
                          f"{group.name}: who is free, {window.first.day} {window.first:%b} to {window.last.day} {window.last:%b %Y}")
        data = hm.to_svg(grid).encode() if heatmap_format == "svg" else hm.to_png(grid)
        _write(args.heatmap, data, "--heatmap")
        print(f"heatmap written to {args.heatmap}", file=sys.stderr)
    return 0


def _heatmap_format(path: str | None) -> str | None:
    """svg or png from --heatmap's suffix, checked before any calendar is read."""
    if path is None:
        return None
    suffix = Path(path).suffix.lower()
    if suffix not in (".svg", ".png"):
        raise UsageError(f"--heatmap: {path!r} must end in .svg (for a browser) or .png (for email or slides)")
    return suffix[1:]


def cmd_preview(args: argparse.Namespace) -> int:
    from integrations.calendars import group_availability

    from scheduler.cli.preview import preview

    config = _load(args)
    group = _group(config, args.group)
    now = _instant(args.now, "--now")
    availability = group_availability(config, group, now - timedelta(days=1), now + timedelta(days=120))
    message = preview(config, group, args.kind, args.to, now, availability, _stored_meetings(config))
    if args.eml:
        _write(args.eml, bytes(message), "--eml")
    if args.html:
        html = next(p for p in message.walk() if p.get_content_type() == "text/html")
        _write(args.html, html.get_content().encode(), "--html")
    for header in ("From", "To", "Subject", "Date", "Message-ID", "X-Friendtor-Kind"):
        print(f"{header}: {message[header]}")
    parts = [p.get_content_type() + (f"; method={p.get_param('method')}" if p.get_param("method") else "")
             for p in message.walk() if not p.is_multipart()]
    print(f"Parts: {', '.join(parts)}")
    print()
    text = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    print(text.get_content().rstrip())
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from integrations.mail import DryRunTransport, transport_for

    from integrations.calendars import group_availability
    from integrations.inbox import MaildirInbox

    from scheduler.app import logs
    from scheduler.app.service import Signals, serve
    from scheduler.app.store import Store
    from scheduler.app.tick import Runner
    from scheduler.app.watcher import ConfigWatcher

    logs.setup(args.log_format, debug=args.debug)
    watcher = ConfigWatcher(Path(args.config))
    config = watcher.config
    state_path = config.path(config.service.state)
    # A dry run reads the state but never writes it, so it takes no lock and may run beside the service.
    store = Store(state_path, lock=not args.dry_run)
    try:
        factory = (lambda c: DryRunTransport()) if args.dry_run else transport_for
        from integrations.publish import publishers_for

        runner = Runner(watcher, store, factory, availability=group_availability, dry_run=args.dry_run,
                        publishers_factory=publishers_for, inbox=MaildirInbox())
        signals = Signals(runner)
        signals.install()
        if args.once or args.now or args.dry_run:
            report = runner.tick(_instant(args.now, "--now"))
            print(_run_summary(runner.config, report, args.dry_run))
        else:
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
    lines.append(f"  state: {config.path(config.service.state)}; `friendtor status --config {config.folder}` "
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
    from integrations.calendars import group_availability
    from integrations.mail import MaildirTransport

    timeline = simulate(folder, start, end, step, out, availability=group_availability, maildir=MaildirTransport)
    print(format_timeline(timeline, out))
    return 0


def cmd_attendance(args: argparse.Namespace) -> int:
    from scheduler.app.handover import store_attendance, store_or_hand_over
    from scheduler.app.store import Store

    config = _load(args)
    group = _group(config, args.group)
    day = _date(args.date, "DATE")
    present = [e.strip().lower() for e in args.present]
    absent = [e.strip().lower() for e in args.absent]
    if not present and not absent:
        raise UsageError("name who came with --present EMAIL... and who did not with --absent EMAIL...")
    strangers = [e for e in present + absent if group.member(e) is None]
    if strangers:
        raise UsageError(f"{', '.join(strangers)}: not a member of {group.id}; members: "
                         + ", ".join(m.email for m in group.members))
    both = sorted(set(present) & set(absent))
    if both:
        raise UsageError(f"{', '.join(both)}: listed both --present and --absent; keep one")
    path = config.path(config.service.state)
    if not path.exists():
        raise UsageError(f"{path}: no state yet, so no meeting to record; the service has not run")
    with Store(path, lock=False) as reader:
        meetings = {m.start.astimezone(group.tz).date(): m for (g, _), m in reader.meetings().items()
                    if g == group.id and not m.cancelled}
    meeting = meetings.get(day)
    if meeting is None:
        known = ", ".join(d.isoformat() for d in sorted(meetings)) or "none yet"
        raise UsageError(f"{group.id} had no meeting on {day} ({group.timezone}); meetings: {known}")
    now = datetime.now(UTC)
    record = {"group": group.id, "cycle": meeting.cycle, "present": present, "absent": absent}
    n = len(present) + len(absent)
    where = store_or_hand_over(path, "attendance", record, lambda store: store_attendance(store, record, now), now)
    print(f"{group.name}, meeting of {day}: {len(present)} present, {len(absent)} absent; {n} records {where}")
    return 0


def cmd_change_meeting(args: argparse.Namespace) -> int:
    """`reschedule` and `cancel`: checked here, applied by the store or the running service."""
    from scheduler.app import changes
    from scheduler.app.handover import decision_time, store_or_hand_over
    from scheduler.app.store import Store

    config = _load(args)
    group = _group(config, args.group)
    path = config.path(config.service.state)
    if not path.exists():
        raise UsageError(f"{path}: no state yet, so no meeting to change; the service has not run")
    now = datetime.now(UTC)
    with Store(path, lock=False) as reader:
        meeting = changes.pick_meeting(group, reader.meetings(), args.cycle, now)
    if args.command == "reschedule":
        start = changes.local_start(group, args.to, now)
        changes.within_cycle(group, meeting, start)
        if start == meeting.start:
            raise UsageError(f"--to: the {meeting.cycle} meeting already starts then; nothing to change")
        after = meeting.moved(start, start + (meeting.end - meeting.start), now)
    else:
        start, after = None, meeting.cancel(now)
    decided = decision_time(now, meeting, path)
    record = changes.change_record(args.command, meeting, decided, start)

    def store_it(store) -> None:
        result = changes.apply_change(store, record, now)
        if isinstance(result, str):
            raise UsageError(f"{group.id} {meeting.cycle}: not changed: {result}")

    where = store_or_hand_over(path, "meeting", record, store_it, decided)
    print(f"{changes.describe(group, meeting, after)}; {where}. Members who were invited get "
          f"{'the cancellation' if after.cancelled else 'the new time'} at the next tick.")
    warning = changes.lead_warning(after.start, now) if not after.cancelled else None
    if warning:
        print(f"note: {warning}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from scheduler.cli.statusreport import status_text
    from scheduler.app.store import Store

    config = _load(args)
    if args.group:
        _group(config, args.group)
    path = config.path(config.service.state)
    if not path.exists():
        print(f"{path}: no state yet; `friendtor run` has not run with this config")
        return 0
    store = Store(path, lock=False)  # read-only: the running service keeps its lock
    print(status_text(config, store.meetings(), store.sends(), datetime.now(UTC), args.group), end="")
    return 0


def cmd_google_auth(args: argparse.Namespace) -> int:
    from integrations.google import authorize

    config = _load(args)
    path = authorize(config, port=args.port, open_browser=not args.no_browser)
    print(f"signed in: the Google refresh token is stored in {path} (mode 0600; keep it private, "
          "like a password)")
    return 0


def _weekday_names(group: Group) -> list[str]:
    from scheduler.core.fields import WEEKDAYS

    return [WEEKDAYS[d] for d in group.meetings.weekdays]


COMMANDS = {"validate": cmd_validate, "slots": cmd_slots, "preview": cmd_preview, "run": cmd_run,
            "simulate": cmd_simulate, "status": cmd_status, "attendance": cmd_attendance,
            "reschedule": cmd_change_meeting, "cancel": cmd_change_meeting,
            "google-auth": cmd_google_auth}
