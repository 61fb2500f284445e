"""From command-line text to values, shared by the commands: the config, a group, a date,
an instant (`--now`, or the clock: the CLI is where the clock is read), output files, and
the meetings already in the service's state."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from scheduler.core.errors import UsageError
from scheduler.core.fields import FIRST_YEAR, LAST_YEAR, did_you_mean

if TYPE_CHECKING:  # the config's models come with load(), which every command using them calls
    from scheduler.core.config import Config, Group

# Dates and instants on the command line are held to the years config dates may use, so that
# whatever the planner adds to them (a window, a cycle, two years of look-ahead) stays a date.
YEARS = f"a year from {FIRST_YEAR} to {LAST_YEAR}"


def load(args: argparse.Namespace) -> Config:
    from scheduler.app.loader import load_config

    return load_config(Path(args.config))


def group_of(config: Config, gid: str) -> Group:
    if gid in config.groups:
        return config.groups[gid]
    known = sorted(config.groups)
    raise UsageError(f"{config.folder}: no group {gid!r}{did_you_mean(gid, known)}; groups here: {', '.join(known)}")


def parse_date(text: str | None, flag: str) -> date | None:
    if text is None:
        return None
    try:
        value = date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{flag}: {text!r} is not a date; use YYYY-MM-DD, e.g. 2027-03-09") from None
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise UsageError(f"{flag}: {text} is too far from today to plan for; use {YEARS}")
    return value


def instant(text: str | None, flag: str) -> datetime:
    """--now: an aware ISO 8601 instant (the clock is read here, at the edge, when it is absent)."""
    if text is None:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{flag}: {text!r} is not an ISO 8601 time; use e.g. 2026-12-01T09:00:00Z") from None
    if value.tzinfo is None:
        raise UsageError(f"{flag}: {text!r} has no time zone; add one, e.g. {text}Z or {text}-05:00")
    # The year is checked in UTC too: 2199-12-31T23:00-05:00 is already 2200 there.
    if not (FIRST_YEAR <= value.year <= LAST_YEAR and FIRST_YEAR <= value.astimezone(UTC).year <= LAST_YEAR):
        raise UsageError(f"{flag}: {text!r} is too far from today to plan for; use {YEARS}")
    return value.astimezone(UTC)


def local_time_text(text: str, flag: str) -> str:
    """A "YYYY-MM-DD HH:MM" argument whose year is one friendtor plans for, checked before any
    arithmetic (the form itself is checked where it is read, with the group's zone)."""
    head = text.strip()[:4]
    if head.isdigit() and len(head) == 4 and not FIRST_YEAR <= int(head) <= LAST_YEAR:
        raise UsageError(f"{flag}: {text!r} is too far from today to plan for; use {YEARS}")
    return text


def output_path(path: str | None, flag: str) -> str | None:
    """An output file's path, checked before any work: its folder must exist and be a folder."""
    if path is None:
        return None
    if "\0" in path or not path:
        raise UsageError(f"{flag}: not a usable file name; give a path such as out/result.txt")
    parent = Path(path).parent
    try:
        folder_ok, is_folder = parent.is_dir(), Path(path).is_dir()
    except (OSError, ValueError) as exc:  # a name too long, or one the file system cannot encode
        raise UsageError(f"{flag}: cannot write {path!r}: {getattr(exc, 'strerror', None) or 'not a usable name'}") from None
    if not folder_ok:
        raise UsageError(f"{flag}: cannot write {path!r}: the folder {str(parent)!r} does not exist; create it first")
    if is_folder:
        raise UsageError(f"{flag}: cannot write {path!r}: it is a folder; give a file name")
    return path


def write_output(path: str, data: bytes, flag: str) -> None:
    try:
        Path(path).write_bytes(data)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the name
        raise UsageError(f"{flag}: cannot write {path!r}: {getattr(exc, 'strerror', None) or 'not a usable name'}") from None


def stored_meetings(config: Config) -> dict:
    """The meetings in the service's state, read beside a running service; none before it ran."""
    from scheduler.app.stores import has_state, open_store

    if not has_state(config):
        return {}
    with open_store(config, lock=False) as store:
        return dict(store.meetings())
