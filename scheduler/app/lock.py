"""One owner per state file: an exclusive fcntl lock on `<state>.lock`.

The lock file holds the owner's pid, so a second instance can say who holds it. The kernel
drops the lock when the process dies, so a crash never leaves the state locked.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass, field
from pathlib import Path

from scheduler.core.errors import LockedError


@dataclass
class Lock:
    """An exclusive lock on `<state>.lock`, held while the process lives."""

    path: Path
    fd: int | None = field(default=None, repr=False)

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
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
