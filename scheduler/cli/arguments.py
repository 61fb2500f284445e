"""From command-line text to values, shared by the commands: the config, a group, a date,
an instant (`--now`, or the clock: the CLI is where the clock is read), output files, and
the meetings already in the service's state."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime
from pathlib import Path

from scheduler.core.config import Config, Group
from scheduler.core.errors import UsageError
from scheduler.core.fields import did_you_mean


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
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{flag}: {text!r} is not a date; use YYYY-MM-DD, e.g. 2027-03-09") from None


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
    if not 2000 <= value.year <= 2200:
        raise UsageError(f"{flag}: {text!r} is too far from today to plan for; use a year between 2000 and 2200")
    return value.astimezone(UTC)


def write_output(path: str, data: bytes, flag: str) -> None:
    try:
        Path(path).write_bytes(data)
    except OSError as exc:
        raise UsageError(f"{flag}: cannot write {path}: {exc.strerror or exc}") from None


def stored_meetings(config: Config) -> dict:
    """The meetings in the service's state, read beside a running service; none before it ran."""
    from scheduler.app.store import Store

    path = config.path(config.service.state)
    if not path.exists():
        return {}
    with Store(path, lock=False) as store:
        return dict(store.meetings())
