"""The read-only commands: validate, slots, preview and status. They read the config, the
calendars and the service's state (beside a running service, without its lock), and change nothing.

Each command imports what only it uses inside its body: `validate` loads neither the calendar
gateways (`wiring`) nor the slot finder."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from scheduler.cli.arguments import (group_of, instant, load, output_path, parse_date, stored_meetings,
                                     write_output)
from scheduler.core.config import Config, Group
from scheduler.core.errors import UsageError


def cmd_validate(args: argparse.Namespace) -> int:
    from scheduler.app.statecheck import check_state_folder
    from scheduler.app.templates import keep_clean_check

    from scheduler.core.config import is_database

    config = load(args)
    if not is_database(config.service.state):  # a database is checked by connecting, at `run`
        check_state_folder(config.path(config.service.state))  # "ok" promises the service can save its state
    # The templates passed (load raised otherwise): kept, so the commands after this one do not
    # check them again, even before the first `run` has made the state folder. A state in a
    # database names no folder: its nodes' var/ is used once `run` has made it, never made here.
    local = config.service.local_folder(config.folder)
    if not is_database(config.service.state) or local.is_dir():
        keep_clean_check(config.folder, config.service.limits, local)
    groups = ", ".join(f"{g.id} ({len(g.members)} members)" for g in config.groups.values())
    n = len(config.groups)
    print(f"{config.folder}: ok: {n} group{'s' if n != 1 else ''}: {groups}; mail via {config.service.mail.transport}")
    return 0


def _history(config: Config, group: Group, now: datetime, stored: dict):
    """Who met at inconvenient hours lately, and when the group usually meets, from the
    service's state (none yet: no history), so `slots` ranks as the service will."""
    from scheduler.core.planner import StateView, past_burden, past_usual

    view = StateView(stored, frozenset(), {}, {})
    return past_burden(group, view, now), past_usual(group, view, now)


def cmd_slots(args: argparse.Namespace) -> int:
    from scheduler.core.cycles import next_window, range_window
    from scheduler.app.holidaykeep import kept_holidays
    from scheduler.cli import wiring
    from scheduler.cli.slotreport import as_json, as_table
    from scheduler.core.crossgroup import busy_elsewhere, with_busy
    from scheduler.core.slots import find_slots

    heatmap_format = _heatmap_format(output_path(args.heatmap, "--heatmap"))
    start, end = parse_date(args.start, "--from"), parse_date(args.end, "--to")
    config = load(args)
    group = group_of(config, args.group)
    now = datetime.now(UTC)
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
    stored = stored_meetings(config)
    # Other groups' meetings are busy time for the members they share, named here: whoever runs
    # `slots` holds every group's file (emails say only "another friendtor group's meeting").
    availability = with_busy(wiring.group_availability(config, group, lo, hi),
                             busy_elsewhere(config, group, stored.values(), lo, hi, named=True))
    with kept_holidays(config.service.local_folder(config.folder)):
        burden, usual = _history(config, group, now, stored)
        candidates = find_slots(group, window, availability, not_before=now, top=args.top, distinct=True,
                                burden=burden, usual=usual)
        if args.json:
            text = as_json(group, candidates, availability)
        else:
            text = as_table(group, window, candidates, burden, usual, availability)
    print(text)
    if args.heatmap:
        from scheduler.core import heatmap as hm

        grid = hm.heatmap(group, window, availability,
                          f"{group.name}: who is free, {window.first.day} {window.first:%b} to {window.last.day} {window.last:%b %Y}")
        data = hm.to_svg(grid).encode() if heatmap_format == "svg" else hm.to_png(grid)
        write_output(args.heatmap, data, "--heatmap")
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


def _weekday_names(group: Group) -> list[str]:
    from scheduler.core.fields import WEEKDAYS

    return [WEEKDAYS[d] for d in group.meetings.weekdays]


def cmd_preview(args: argparse.Namespace) -> int:
    from scheduler.app.holidaykeep import kept_holidays
    from scheduler.cli import wiring
    from scheduler.cli.preview import preview

    output_path(args.eml, "--eml"), output_path(args.html, "--html")
    now = instant(args.now, "--now")
    config = load(args)
    group = group_of(config, args.group)
    availability = wiring.group_availability(config, group, now - timedelta(days=1), now + timedelta(days=120))
    with kept_holidays(config.service.local_folder(config.folder)):
        message = preview(config, group, args.kind, args.to, now, availability, stored_meetings(config))
    if args.eml:
        write_output(args.eml, bytes(message), "--eml")
    if args.html:
        html = next(p for p in message.walk() if p.get_content_type() == "text/html")
        write_output(args.html, html.get_content().encode(), "--html")
    for header in ("From", "To", "Subject", "Date", "Message-ID", "X-Friendtor-Kind"):
        print(f"{header}: {message[header]}")
    parts = [p.get_content_type() + (f"; method={p.get_param('method')}" if p.get_param("method") else "")
             for p in message.walk() if not p.is_multipart()]
    print(f"Parts: {', '.join(parts)}")
    print()
    text = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    print(text.get_content().rstrip())
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from scheduler.cli.statusreport import status_text
    from scheduler.app.stores import describe, has_state, open_store

    config = load(args)
    if args.group:
        group_of(config, args.group)
    if not has_state(config):
        print(f"{describe(config)}: no state yet; `friendtor run` has not run with this config")
        return 0
    # A reader: the running service keeps its lock; on a database, one snapshot while nodes write.
    with open_store(config, lock=False) as store:
        print(status_text(config, store.meetings(), store.sends(), datetime.now(UTC), args.group), end="")
    return 0
