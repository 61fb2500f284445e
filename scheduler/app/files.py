"""Writing a file so that a crash leaves the old version or the new one, never half of either.

Used for the state, its journal, the `incoming/` hand-over files, and (through the WriteFile
port) the files the gateways keep: the feed cache and the Google token.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path

# Never follow a symbolic link planted where friendtor keeps a file (the state, its journal,
# its lock): following it would let whoever can write the folder make friendtor truncate and
# overwrite any file it can write. O_EXCL makes a temp file always a new one of ours.
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace `path` with `data` so that a crash leaves the old file or the new one.

    A temp file in the same folder is written, fsynced, renamed over the old file, and the
    folder fsynced (the way Radicale writes). The temp file is created new (O_EXCL, not
    through a link: an old or planted one is never written into), and the rename replaces
    a link at `path` itself, never the file it points to."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW, mode)
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


def read_regular(path: Path) -> bytes | None:
    """The bytes of the regular file at `path`, None if there is none; never through a link.

    Raises OSError (ELOOP for a symbolic link, EINVAL for anything but a regular file: a
    FIFO planted there must not hang the reader, hence O_NONBLOCK)."""
    try:
        fd = os.open(path, os.O_RDONLY | NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read()
    finally:
        os.close(fd)


def read_capped(path: Path, max_bytes: int) -> bytes:
    """The bytes of the regular file at `path` (links followed: coordinators link config files),
    at most `max_bytes` of them.

    Raises OSError: EINVAL for anything but a regular file (a FIFO must not hang the reader,
    hence O_NONBLOCK; /dev/zero must not fill memory), EFBIG for a file over the bound."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        # In reads the size of the file (a buffer of the whole bound for each 4 KB group file cost
        # more than reading it), on until the end or past the bound: a file that grows meanwhile,
        # or says it is empty (/proc), is still read only that far.
        chunks, left, size = [], max_bytes + 1, min(st.st_size, max_bytes) + 1
        while left > 0 and (chunk := os.read(fd, min(size, left))):
            chunks.append(chunk)
            left -= len(chunk)
            size = 64 * 1024
        data = b"".join(chunks)
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise OSError(errno.EFBIG, f"larger than {_size(max_bytes)}")
    return data


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MB" if n % (1024 * 1024) == 0 else f"{n // 1024:,} KB"


def refused_link(exc: OSError) -> bool:
    """Whether opening failed because a symbolic link (or a non-file) stands at the path."""
    return exc.errno in (errno.ELOOP, errno.EINVAL)
