"""Writing a file so that a crash leaves the old version or the new one, never half of either.

Used for the state, its journal, the `incoming/` hand-over files, and (through the WriteFile
port) the files the gateways keep: the feed cache and the Google token.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace `path` with `data` so that a crash leaves the old file or the new one.

    A temp file in the same folder is written, fsynced, renamed over the old file, and the
    folder fsynced (the way Radicale writes)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)  # whatever the umask says
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_folder(path.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def fsync_folder(folder: Path) -> None:
    """Make a rename or a new file in `folder` durable (the folder's entry, not the file's bytes)."""
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
