"""The reply inbox: a Maildir the operator points `[mail] inbox` at, where members' replies
(Accept/Decline, and `commit:`/`done:`/... lines) to the sender address arrive. friendtor
reads unread messages, a bounded number a tick and each up to a size, and marks them seen
(moves them to cur/ with the S flag) only after what they carried is stored.

The folder is listed by name, not through `mailbox.Maildir` (which reads every message whole
to hand it over): a message's size is known before any of it is read."""

from __future__ import annotations

import contextlib
import mailbox
import os
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from pathlib import Path

from scheduler.core.ports import InboxMessage

NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _unread_names(path: Path) -> list[tuple[str, Path]]:
    """(key, file) of each message without the S flag, in new/ and cur/."""
    out = []
    for sub in ("new", "cur"):
        with contextlib.suppress(FileNotFoundError):  # any other error: the inbox is broken, said once
            for entry in os.scandir(path / sub):
                name = entry.name
                if name.startswith("."):
                    continue
                key, _, info = name.partition(mailbox.Maildir.colon)
                if sub == "cur" and "S" in info.partition(",")[2]:
                    continue
                out.append((key, Path(entry.path)))
    return sorted(out)


def unread(path: Path, *, limit: int, max_bytes: int,
           skip: AbstractSet[str] = frozenset()) -> list[InboxMessage]:
    """At most `limit` unread messages not in `skip`, oldest first (Maildir names begin with
    the time of delivery); the bytes of each, or None when it is over `max_bytes`."""
    if not (path / "new").is_dir():
        return []
    out: list[InboxMessage] = []
    for key, file in _unread_names(path):
        if len(out) >= limit:
            break
        if key in skip:
            continue
        try:
            fd = os.open(file, os.O_RDONLY | NOFOLLOW)
        except OSError:
            continue  # moved meanwhile (another reader), or a link: not a message delivered here
        with os.fdopen(fd, "rb") as f:
            data = f.read(max_bytes + 1)
        out.append(InboxMessage(key, data if len(data) <= max_bytes else None))
    return out


def mark_seen(path: Path, keys: Sequence[str]) -> None:
    box = mailbox.Maildir(path, factory=None, create=False)
    for key in keys:
        try:
            msg = box.get_message(key)
        except KeyError:
            continue  # someone else moved it: fine
        msg.set_subdir("cur")
        msg.add_flag("S")
        box[key] = msg


class MaildirInbox:
    """The reply inbox as the service's ReplyInbox port: the two functions above."""

    def unread(self, path: Path, *, limit: int, max_bytes: int,
               skip: AbstractSet[str] = frozenset()) -> list[InboxMessage]:
        return unread(path, limit=limit, max_bytes=max_bytes, skip=skip)

    def mark_seen(self, path: Path, keys: Sequence[str]) -> None:
        mark_seen(path, keys)
