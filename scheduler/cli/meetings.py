"""The coordinator's changes to meetings: `attendance`, `reschedule` and `cancel`.

Each is checked here against the stored meeting, then stored in the state, or, while the
running service holds the lock, handed over to it through `<state dir>/incoming/`."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from scheduler.cli.arguments import group_of, load, local_time_text, parse_date
from scheduler.core.errors import UsageError


def cmd_attendance(args: argparse.Namespace) -> int:
    from scheduler.app.handover import store_attendance, store_or_hand_over
    from scheduler.app.store import Store

    day = parse_date(args.date, "DATE")
    config = load(args)
    group = group_of(config, args.group)
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

    if args.command == "reschedule":
        local_time_text(args.to, "--to")
    config = load(args)
    group = group_of(config, args.group)
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
