"""The reply inbox: a Maildir the operator points `[mail] inbox` at, where Accept/Decline
replies to the sender address arrive. friendtor reads new messages, and marks them seen
(moves them to cur/ with the S flag) only after their RSVPs are stored."""

from __future__ import annotations

import email
import email.policy
import mailbox
from pathlib import Path

from scheduler.core.attendance import Reply, replies_in


def unread_replies(path: Path) -> list[tuple[str, list[Reply]]]:
    """(Maildir key, RSVPs) for each unseen message; messages with no REPLY give []."""
    if not (path / "new").is_dir():
        return []
    box = mailbox.Maildir(path, factory=None, create=False)
    out = []
    for key in sorted(box.keys()):
        msg = box.get_message(key)
        if "S" in msg.get_flags():
            continue
        parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
        out.append((key, replies_in(parsed)))
    return out


def mark_seen(path: Path, keys: list[str]) -> None:
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

    def unread_replies(self, path: Path) -> list[tuple[str, list[Reply]]]:
        return unread_replies(path)

    def mark_seen(self, path: Path, keys: list[str]) -> None:
        mark_seen(path, keys)
