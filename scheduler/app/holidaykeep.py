"""Public-holiday tables kept in the state folder, so that a command does not import `holidays`.

Naming a member's holidays means importing the `holidays` package, which loads every
country's module (about a tenth of a second, a quarter of a `slots`), and building the year's
table. The tables a command or the service computed are kept in one file,
`holiday-tables.json` beside the state, under a stamp of the installed `holidays` and of the
core module that asks it (where their files are, their sizes and times): a new version of
either is never served an old table.
The file is 0600 (written atomically), read through a bounded reader, and anything wrong with
it (missing, a link, too big, not JSON, another stamp or shape) means "compute again", never
an error: it is a cache, and it holds nothing that is not public.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path

from scheduler.app.files import atomic_write, read_capped
from scheduler.core import availability
from scheduler.core.availability import keep_holiday_tables, new_holiday_tables

FILE = "holiday-tables.json"
MAX_BYTES = 2 * 1024 * 1024
MAX_TABLES = 256  # regions x years; a year of one region is ~2 KB
_FORMAT = 1


def holidays_stamp() -> str | None:
    """What the kept tables were computed with, found without importing the package; None when
    it is not installed as files (then nothing is kept)."""
    from importlib.util import find_spec

    try:
        origin = Path(find_spec("holidays").origin).parent
        h = hashlib.sha256(f"{_FORMAT}\n".encode())
        # The package, and friendtor's code that asks it (which country, subdivision, year).
        for path in (*(origin / name for name in ("__init__.py", "version.py", "registry.py")),
                     Path(availability.__file__)):
            info = os.stat(path)
            h.update(f"{path} {info.st_size} {info.st_mtime_ns}\n".encode())
    except (OSError, TypeError, AttributeError, ImportError, ValueError):
        return None
    return h.hexdigest()


def load(folder: Path) -> dict[tuple[str, int], dict[date, str]]:
    """The tables kept in `folder`, handed to the core; {} when there are none worth using."""
    stamp = holidays_stamp()
    if stamp is None:
        return {}
    try:
        if (folder / FILE).is_symlink():
            return {}
        record = json.loads(read_capped(folder / FILE, MAX_BYTES))
        tables = _tables(record, stamp)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return {}
    keep_holiday_tables(tables)
    return tables


def _tables(record: object, stamp: str) -> dict[tuple[str, int], dict[date, str]]:
    if not isinstance(record, dict) or record.get("format") != _FORMAT or record.get("stamp") != stamp:
        return {}
    kept = record["tables"]
    if not isinstance(kept, dict) or len(kept) > MAX_TABLES:
        return {}
    tables = {}
    for key, days in kept.items():
        region, _, year = key.rpartition("|")
        if not region or not year.isdigit() or not isinstance(days, dict):
            return {}
        table = {}
        for day, name in days.items():
            d = date.fromisoformat(day)
            if d.year != int(year) or not isinstance(name, str):
                return {}
            table[d] = name
        tables[(region, int(year))] = table
    return tables


def save(folder: Path, kept: dict) -> None:
    """Add the tables computed since `load` to the file, if the state folder exists."""
    fresh = new_holiday_tables()
    stamp = holidays_stamp()
    if not fresh or stamp is None or not folder.is_dir() or (folder / FILE).is_symlink():
        return
    merged = {**kept, **fresh}
    if len(merged) > MAX_TABLES:
        merged = fresh if len(fresh) <= MAX_TABLES else {}
    record = {"format": _FORMAT, "stamp": stamp,
              "tables": {f"{region}|{year}": {d.isoformat(): name for d, name in sorted(table.items())}
                         for (region, year), table in sorted(merged.items())}}
    with contextlib.suppress(OSError, ValueError):  # not kept: the next command computes them again
        atomic_write(folder / FILE, json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode())


@contextlib.contextmanager
def kept_holidays(folder: Path) -> Iterator[None]:
    """Use the tables kept in `folder` for the block and keep those it computed."""
    kept = load(folder)
    try:
        yield
    finally:
        save(folder, kept)

