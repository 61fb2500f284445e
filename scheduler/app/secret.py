"""The installation's secret: 32 random bytes in `<state>.secret` (0600, beside the state).

Message-IDs are keyed with it (scheduler.compose.messages.message_id), so nobody who knows a
send's key (a group id and a date) can forge a reply that names a message friendtor sent.
It is created on first use, atomically (a temp file linked into place, so two processes never
each keep a different secret), never through a symbolic link, and never shown anywhere.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from scheduler.app.files import NOFOLLOW
from scheduler.core.errors import StateError

SECRET_BYTES = 32


def secret_path(state: Path) -> Path:
    return state.with_name(state.name + ".secret")


def load_secret(state: Path, *, create: bool = True) -> bytes:
    """The secret beside `state`, created if missing (when `create`); b"" when missing and not
    created (a reader beside the service composes nothing that is sent)."""
    path = secret_path(state)
    if not path.exists() and not path.is_symlink():
        if not create:
            return b""
        _create(path)
    try:
        fd = os.open(path, os.O_RDONLY | NOFOLLOW)
    except OSError as exc:
        raise StateError(f"{path}: the installation secret cannot be read ({exc.strerror or exc}); it must be a "
                         "regular file friendtor may read (remove it to have a new one made: replies to messages "
                         "sent before then are no longer recognised)") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        data = f.read(SECRET_BYTES + 1)
    if not stat.S_ISREG(st.st_mode) or len(data) != SECRET_BYTES:
        raise StateError(f"{path}: the installation secret is not {SECRET_BYTES} bytes friendtor wrote; remove it to "
                         "have a new one made (replies to messages sent before then are no longer recognised)")
    if st.st_mode & 0o077:
        raise StateError(f"{path}: the installation secret can be read by others; make it private with "
                         f"`chmod 600 {path}`")
    return data


def _create(path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(SECRET_BYTES))
            f.flush()
            os.fsync(f.fileno())
        # link, not rename: if another process made the secret meanwhile, theirs is kept
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # the folder entry, as atomic_write does
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
