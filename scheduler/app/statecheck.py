"""Is the state folder usable? Asked before any work, by every command that writes the state
(`run`, `attendance`, `reschedule`, `cancel`, `simulate`'s scratch state) and by `validate`
and `run --dry-run`, which write nothing but promise the service would run.

Why a probe and not permission bits: the service may run as root (or a test does), for whom
`os.access` says yes to a read-only mount or a folder another user owns under a strict
ProtectSystem= unit. The only honest answer is to create a file the way the state is written
(O_EXCL|O_NOFOLLOW beside the state) and remove it again.

Why a free-space floor: a full write of the state needs the file's size again beside it,
and a disk that fills between two commits makes the service send messages it cannot
record (they are sent again, with the same Message-IDs, after a restart). Starting work on
a nearly full disk only makes that likely; saying so before work is cheaper.
"""

from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path

from scheduler.app.journal import not_a_file
from scheduler.core.errors import StateError

# Free space the state folder must have before work: this floor, or twice the state and its
# journal (a full write puts a new copy beside the old), whichever is more.
MIN_FREE_BYTES = 16 * 1024 * 1024

FULL_FIX = "free some space there, or set `state` in service.toml to a folder on another disk"
FIX = "make it writable for the user friendtor runs as, or set `state` in service.toml to a writable folder"


def _existing_ancestor(folder: Path) -> tuple[Path, str | None]:
    """The nearest folder that exists at or above `folder`, and a problem if something in the
    way is not a folder (a file where a folder should be)."""
    current = folder
    while True:
        try:
            if current.is_dir():
                return current, None
            if current.exists() or current.is_symlink():
                return current, f"{current} is not a folder"
        except OSError as exc:  # e.g. a name too long, or a folder we may not look into
            return current, f"cannot look at {current} ({exc.strerror or exc})"
        if current.parent == current:
            return current, f"{current} does not exist"
        current = current.parent


def _probe(folder: Path) -> str | None:
    """Create and remove a file in `folder` as the state is written; a problem, or None."""
    probe = folder / f".friendtor-probe.{os.getpid()}.{secrets.token_hex(4)}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        reason = {errno.EROFS: "it is on a read-only file system", errno.EACCES: "permission denied",
                  errno.EPERM: "permission denied", errno.ENOSPC: "the disk is full",
                  errno.EDQUOT: "the disk quota is used up"}.get(exc.errno, exc.strerror or str(exc))
        return f"cannot write in {folder} ({reason})"
    try:
        os.close(fd)
    finally:
        try:
            os.unlink(probe)
        except OSError as exc:
            return f"cannot remove files in {folder} ({exc.strerror or exc})"
    return None


def _space(folder: Path, state: Path) -> str | None:
    """A problem if the file system holding `folder` has too little space or no free inodes."""
    try:
        vfs = os.statvfs(folder)
    except OSError:
        return None  # not knowable here (some network file systems): the probe has spoken
    used = 0
    for path in (state, state.with_name(state.name + ".journal")):
        try:
            used += path.lstat().st_size
        except OSError:
            pass
    need = max(MIN_FREE_BYTES, 2 * used)
    free = vfs.f_bavail * vfs.f_frsize
    if free < need:
        return (f"the disk holding {folder} is full ({free // (1024 * 1024)} MB free, friendtor needs "
                f"{-(-need // (1024 * 1024))} MB to save its state safely)")
    if vfs.f_files and vfs.f_favail == 0:
        return f"the disk holding {folder} has no free inodes (no new file can be created)"
    return None


def state_folder_problem(state: Path) -> str | None:
    """What keeps friendtor from writing the state file `state`, in one line, or None.

    A folder that does not exist yet is fine if it can be created (the first run makes it):
    then the nearest existing folder above it is probed instead."""
    folder = state.parent
    existing, problem = _existing_ancestor(folder)
    if problem is None:
        problem = _probe(existing) or _space(existing, state)
    if problem is None:
        try:
            if state.is_symlink() or (state.exists() and not state.is_file()):
                return str(not_a_file(state, "state file"))
        except OSError as exc:
            problem = f"cannot look at {state} ({exc.strerror or exc})"
    if problem is None:
        return None
    full = problem.startswith("the disk holding") or "disk is full" in problem or "quota" in problem
    return f"{state}: the state cannot be saved: {problem}; {FULL_FIX if full else FIX}"


def check_state_folder(state: Path) -> None:
    """Raise StateError (one line, exit 2) if the state file cannot be written."""
    problem = state_folder_problem(state)
    if problem:
        raise StateError(problem)
