"""Members' replies taken into the state: who may reply, to what, and what their items add.

A reply is taken only when its From is a member of a group AND its In-Reply-To/References
names a Message-ID friendtor sent to that very member (the `sent` table; Message-IDs are keyed
with the installation's secret, so they cannot be guessed from a group id and a date). Anything
else is ignored and logged as `reply ignored` with a reason word and at most the sender's
domain, never content, and nothing is sent back (no backscatter to a forged From). A reply's
own Message-ID is recorded when it is taken, so the same reply again does nothing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from scheduler.app.records import iso
from scheduler.app.store import Store
from scheduler.core import goals as goals_of
from scheduler.core.config import Config
from scheduler.core.gatherings import is_gathering
from scheduler.core.log import event
from scheduler.core.outbox import Kind, OutboxRecord, ReceiptPayload, Send, midnight
from scheduler.core.cycles import first_day, next_key, next_window
from scheduler.core.replies import Agenda, Away, Celebrate, Commit, Done, parse_reply

MAX_REFERENCES = 50          # Message-IDs looked at in one reply's In-Reply-To and References
MAX_HEADER_CHARS = 16 * 1024  # of one such header
_ID = re.compile(r"<[^<>\s]{1,250}>")

TAKEN, DUPLICATE, NO_ITEMS = "taken", "duplicate", "no items"


def referenced_ids(msg: EmailMessage) -> list[str]:
    """The Message-IDs a reply answers: In-Reply-To first, then References newest first."""
    out: list[str] = []
    for header in ("In-Reply-To", "References"):
        raw = str(msg.get(header, "") or "")[:MAX_HEADER_CHARS]
        ids = _ID.findall(raw)
        out.extend(ids if header == "In-Reply-To" else reversed(ids))
    return list(dict.fromkeys(out))[:MAX_REFERENCES]


def sender_of(msg: EmailMessage) -> str | None:
    """The one address in From (lower case), or None (none, several, or unreadable)."""
    try:
        addresses = msg["From"].addresses if msg["From"] is not None else ()
    except (AttributeError, TypeError, ValueError, IndexError):
        return None
    if len(addresses) != 1 or "@" not in (addresses[0].addr_spec or ""):
        return None
    return addresses[0].addr_spec.lower()


def own_id(msg: EmailMessage, data: bytes) -> str:
    """The reply's Message-ID, or (a client that sets none) one made from its bytes."""
    found = _ID.findall(str(msg.get("Message-ID", "") or "")[:1024])
    return found[0] if found else f"<{hashlib.sha256(data).hexdigest()[:40]}@no-message-id>"


def ignored(reason: str, sender: str | None) -> str:
    event("reply ignored", reason=reason, domain=sender.rpartition("@")[2][:100] if sender else None)
    return reason


class ReplyIntake:
    """Takes members' replies into the store; `take` says what became of one message."""

    def __init__(self, store: Store, config: Callable[[], Config]):
        self.store = store
        self._config = config

    def take(self, msg: EmailMessage, data: bytes, now: datetime) -> str:
        """TAKEN, DUPLICATE, NO_ITEMS, or the reason word it was ignored for."""
        sender = sender_of(msg)
        ids = referenced_ids(msg)
        if not ids:
            return ignored("not a reply", sender)
        answered = [s for i in ids if (s := self.store.replies.sent(i)) is not None]
        if not answered:
            return ignored("unknown message", sender)
        mine = [s for s in answered if sender is not None and s["recipient"] == sender]
        if not mine:
            return ignored("sent to another address", sender)
        sent = mine[0]
        group = self._config().groups.get(sent["group"])
        member = group.member(sender) if group is not None and sender else None
        if member is None:
            return ignored("not a member", sender)
        reply_id = own_id(msg, data)
        if self.store.replies.reply(reply_id) is not None:
            return DUPLICATE
        parsed = parse_reply(msg, member.tz, now)
        if not parsed.items and not parsed.not_understood:
            event("reply without items", group=group.id)
            return NO_ITEMS
        self.store.replies.note_reply(reply_id, group.id, member.email, now, sent["message_id"])
        recorded, wrong = self._apply(group.id, member.email, reply_id, sent, parsed.items, now)
        wrong += [(n.line, n.why) for n in parsed.not_understood]
        # The receipt goes to the author alone (the outbox key is the reply's: planned once).
        receipt = Send(f"{Kind.RECEIPT}:{reply_id}", Kind.RECEIPT, group.id, member.email, member.name,
                       member.timezone, now, ReceiptPayload(reply_id, tuple(recorded), tuple(wrong), parsed.notes))
        self.store.add_sends([OutboxRecord.planned(receipt, group, now)])
        event("reply taken", group=group.id, member=member.email, recorded=len(recorded), not_understood=len(wrong),
              kind=sent["kind"])
        return TAKEN

    def _apply(self, gid: str, member: str, reply_id: str, sent: dict[str, Any], items: tuple,
               now: datetime) -> tuple[list[str], list[tuple[str, str]]]:
        """Store the items; what the receipt says was recorded, and what could not be."""
        group = self._config().groups[gid]
        base = {"group": gid, "member": member, "reply": reply_id, "received": iso(now)}
        recorded: list[str] = []
        wrong: list[tuple[str, str]] = []
        # `done: N` means the number the member saw: the open goals before this reply, not
        # renumbered by a commitment or a done earlier in the same reply.
        shown = goals_of.open_goals(group, self.store.replies.items(gid), member)
        for item in items:
            if isinstance(item, Commit):
                doc = {"kind": "goal", "text": item.text, "due": item.due.isoformat() if item.due else None}
                line = f"New goal: {item.text}" + (f" (by {_day(item.due)})" if item.due else "")
            elif isinstance(item, Done):
                still_open = goals_of.open_goals(group, self.store.replies.items(gid), member)
                found = goals_of.resolve(item.ref, shown if isinstance(item.ref, int) else still_open)
                if isinstance(found, str):
                    wrong.append((f"done: {item.ref}", found))
                    continue
                if found[0] not in {ref for ref, _ in still_open}:
                    wrong.append((f"done: {item.ref}", "that goal is already marked done."))
                    continue
                doc, line = {"kind": "done", "text": found[1].text, "goal": found[0]}, f"Done: {found[1].text}"
            elif isinstance(item, Agenda | Celebrate):
                kind = "agenda" if isinstance(item, Agenda) else "celebrate"
                doc = {"kind": kind, "text": item.text, "cycle": self._next_cycle(gid, now)}
                line = f"{'On the next agenda' if kind == 'agenda' else 'To celebrate'}: {item.text}"
            elif isinstance(item, Away):
                doc = {"kind": "away", "text": "", "first": item.first.isoformat(), "last": item.last.isoformat()}
                line = f"Away: {_day(item.first)}" + (f" to {_day(item.last)}" if item.last != item.first else "")
            else:  # Undo
                if sent["kind"] != Kind.RECEIPT:
                    wrong.append(("undo", "undo works as a reply to the receipt of the reply to take back."))
                else:
                    recorded.append(f"Taken back: {self._undo(sent, member)} item(s) from your earlier reply")
                continue
            self.store.replies.add_item({**base, **doc})
            recorded.append(line)
        return recorded, wrong

    def _next_cycle(self, gid: str, now: datetime) -> str | None:
        """The cycle of the group's next meeting, whose agenda shows the item."""
        # A gathering at a conference has no agenda: items go to the next video meeting's.
        mine = [m for (g, c), m in self.store.meetings().items() if g == gid and not m.cancelled
                and not is_gathering(c)]
        coming = [m for m in mine if m.start > now]
        if coming:
            return min(coming, key=lambda m: m.start).cycle
        group = self._config().groups[gid]
        upcoming = next_window(group, now)  # not scheduled yet: the cycle to come
        # A window with days left whose meeting was held already (10 Feb, replying on the 11th)
        # has no agenda to come: the item goes on the next cycle's.
        if upcoming and upcoming.key in {m.cycle for m in mine}:
            upcoming = next_window(group, midnight(first_day(group, next_key(group, upcoming.key)), group.tz))
        return upcoming.key if upcoming else None

    def _undo(self, sent: dict[str, Any], member: str) -> int:
        """`undo` answering a receipt: remove what the receipted reply added (its author's only)."""
        receipted = sent["key"].partition(":")[2]
        ids = [d["id"] for d in self.store.replies.items(sent["group"], member) if d["reply"] == receipted]
        return self.store.replies.remove_items(ids)



def _day(day: Any) -> str:
    return f"{day:%A} {day.day} {day:%B %Y}"
