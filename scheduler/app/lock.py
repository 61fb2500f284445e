"""One owner per state file: an exclusive fcntl lock on `<state>.lock`.

The lock file holds the owner's pid, so a second instance can say who holds it. The kernel
drops the lock when the process dies, so a crash never leaves the state locked. The lock
file is opened without following a symbolic link: one planted there would otherwise be
truncated and written with the pid, whatever file it points to.
"""

from __future__ import annotations

import fcntl
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from scheduler.app.files import NOFOLLOW, refused_link
from scheduler.app.journal import not_a_file
from scheduler.core.errors import LockedError, StateError


@dataclass
class Lock:
    """An exclusive lock on `<state>.lock`, held while the process lives."""

    path: Path
    fd: int | None = field(default=None, repr=False)

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | NOFOLLOW | os.O_NONBLOCK, 0o600)
        except OSError as exc:
            if refused_link(exc):
                raise not_a_file(self.path, "state's lock file") from None
            raise StateError(f"{self.path}: cannot create the state's lock file ({exc.strerror or exc}); make "
                             f"{self.path.parent} writable for the user friendtor runs as") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO or a device planted there
            os.close(fd)
            raise not_a_file(self.path, "state's lock file")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 32).decode(errors="replace").strip()
            holder = holder if holder.isdigit() else "unknown"  # a pid, or nothing of the file's quoted
            os.close(fd)
            state = self.path.with_suffix("")
            raise LockedError(f"{state}: another friendtor (pid {holder}) is already running on this state; "
                             "stop it first (systemctl stop friendtor), or give this one its own state file") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
