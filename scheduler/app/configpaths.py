"""Paths in config files: what a value names (relative to the config folder), and the calendar files
group files name, which must lie inside the folders calendars may be read from, and exist.

`CalendarFiles` is made once per load: the allowed folders are resolved once, not for each
calendar, and so is each folder calendars are in. A calendar file itself, when it is not a
symbolic link, is then one `lstat` where resolving it walked every folder of its path (for
10,000 groups of 12 members with a calendar file each, 120,000 walks, as long as all the rest of
the load). What is refused or missing is what was refused or missing before: a link is resolved
in full, and anything unusual goes the way it went.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

from pydantic_core import PydanticCustomError

from scheduler.core.config import Service
from scheduler.core.fields import OUTSIDE_FOLDERS, _calendar, calendar_folders, inside


def resolve(spec: str, folder: Path) -> Path | str:
    """The path a config value names (as Config.path resolves it), or why it cannot be resolved."""
    try:
        path = Path(spec).expanduser()
    except RuntimeError:  # "~someone/..." where there is no such user, or no home folder
        return (f"cannot expand {spec!r}: no home folder for {spec.split('/', 1)[0]!r}; "
                "write the full path, or a path relative to the config folder")
    return path if path.is_absolute() else folder / path


def calendars(data: dict[str, Any]) -> list[tuple[int, str | None]]:
    """Each [[members]] entry's calendar as validation reads it (None: none, or one whose own
    field problem says what is wrong), numbered from 1."""
    out: list[tuple[int, str | None]] = []
    members = data.get("members")
    for i, m in enumerate(members if isinstance(members, list) else [], 1):
        spec = m.get("calendar") if isinstance(m, dict) else None
        try:
            out.append((i, None if spec is None else _calendar(spec)))
        except PydanticCustomError:
            out.append((i, None))
    return out


class CalendarFiles:
    """The check of the calendar files in one config folder, for every group file in it."""

    def __init__(self, folder: Path, service: Service):
        self.folder = folder
        self.service = service
        self.allowed = [real(f) for f in calendar_folders(folder, service.limits.calendar_folders)]
        self._folders: dict[Path, tuple[Path, bool]] = {}  # a calendar's folder -> where it resolves, inside?

    def problems(self, calendars: list[tuple[int, str | None]]) -> list[tuple[str, str]]:
        """Calendar files named in the group must exist (URLs are checked when read), and a
        Google calendar needs the service's [google] credentials."""
        problems = []
        for i, spec in calendars:
            if spec and spec.lower().startswith("google:") and self.service.google is None:
                problems.append((f"members[{i}].calendar", "\"google:\" calendars are read with the service's "
                                 "Google credentials; add a [google] table to service.toml (see docs/google.md)"))
                continue
            if spec is None or re.match(r"(https?://|google:|caldav:)", spec, re.I):
                continue
            path = resolve(spec, self.folder)
            if isinstance(path, str):
                problems.append((f"members[{i}].calendar", path))
                continue
            allowed, regular = self._where(path)
            if not allowed:
                # Resolved first: `../..` and a symlink that leads outside are refused like "/etc/x".
                problems.append((f"members[{i}].calendar", f"file {spec!r} {OUTSIDE_FOLDERS}"))
            elif not (path.is_file() if regular is None else regular):
                problems.append((f"members[{i}].calendar", f"file {spec!r} does not exist (looked for {path}); "
                                 "paths are relative to the config folder"))
        return problems

    def _where(self, path: Path) -> tuple[bool, bool | None]:
        """Whether `path` resolves inside an allowed folder (as `real` and `inside` say), and whether
        it is a regular file (None: not known here). A name that is not a link resolves to its
        resolved folder and that name, which is how `os.path.realpath` walks a path too; and it is
        inside when it is an allowed folder itself or its folder is inside (`inside` walks its parents)."""
        try:
            st = os.lstat(path)
        except OSError:
            st = None  # realpath takes a name it cannot look at as it is; is_file() says why it is missing
        if path.name in ("", ".", "..") or (st is not None and stat.S_ISLNK(st.st_mode)):
            return inside(real(path), self.allowed), None
        known = self._folders.get(path.parent)
        if known is None:
            parent = real(path.parent)
            known = self._folders[path.parent] = (parent, inside(parent, self.allowed))
        parent, parent_inside = known
        return parent_inside or parent / path.name in self.allowed, (None if st is None else stat.S_ISREG(st.st_mode))


def real(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop: compared as written, so it is refused or missing
        return path.absolute()
