"""The state's tables for members' replies: every Message-ID friendtor sent, the replies taken
in, and the items they added (goals, done marks, agenda items, celebrations, time away).

Kept beside the Store's other tables and checked with them when the state is read (a state
written before replies were read simply has none of these tables). A record says where it
came from: the member, when the reply arrived, the reply's own Message-ID.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from scheduler.app.records import iso
from scheduler.core.config import Config
from scheduler.core.goals import config_with_replies

_TEXT, _BOOL = (str,), (bool,)
FIELDS = {
    "sent": {"message_id": _TEXT, "group": _TEXT, "recipient": _TEXT, "kind": _TEXT, "key": _TEXT,
             "sent_at": _TEXT},
    "replies": {"message_id": _TEXT, "group": _TEXT, "member": _TEXT, "received": _TEXT, "answered": _TEXT},
    "items": {"id": _TEXT, "group": _TEXT, "member": _TEXT, "kind": _TEXT, "text": _TEXT, "reply": _TEXT,
              "received": _TEXT},
}
KEYS = {"sent": ("message_id",), "replies": ("message_id",), "items": ("id",)}
INSTANTS = {"sent": ("sent_at",), "replies": ("received",), "items": ("received",)}
ITEM_KINDS = ("goal", "done", "agenda", "celebrate", "away")
KEPT = timedelta(days=400)   # sent Message-IDs and replies: a reply to an older message is not taken


def problem(table: str, doc: Mapping[str, Any]) -> str | None:
    """What is wrong with an items record beyond its fields' types, or None."""
    if table != "items":
        return None
    if doc["kind"] not in ITEM_KINDS:
        return f"has a kind that is not one of {', '.join(ITEM_KINDS)}"
    for name in ("due", "first", "last"):
        if doc.get(name) is not None and not isinstance(doc[name], str):
            return f"has {name!r} that is not a date"
    if not isinstance(doc.get("done", False), bool):
        return "has a 'done' that is not true or false"
    return None


class ReplyTables:
    """The three tables, indexed once when the state is read, changed only through here."""

    def __init__(self, db: Any, storage: Any, writable: bool):
        self.db, self.storage = db, storage
        self._sent = {d["message_id"]: int(i) for i, d in storage.table("sent").items()}
        self._replies = {d["message_id"]: int(i) for i, d in storage.table("replies").items()}
        self._items = {d["id"]: int(i) for i, d in storage.table("items").items()}
        self._merged: tuple[Config, int, Config] | None = None  # (config, version, merged)
        self.version = 0   # moves on with every change to the items
        if writable:
            # Messages sent before Message-IDs were recorded here: their IDs (kept on the outbox
            # record) keep working, so a reply to an email from before the upgrade is still read.
            sent = self._sent
            for d in storage.table("outbox").values():
                mid = d.get("message_id")
                if d["status"] == "sent" and mid and mid not in sent and d.get("sent_at"):
                    self.note_sent(d)

    # --- sent -------------------------------------------------------------------------------

    def note_sent(self, d: Mapping[str, Any]) -> None:
        """Remember one sent outbox document's Message-ID (once)."""
        mid = d["message_id"]
        if mid in self._sent:
            return
        self._sent[mid] = self.db.table("sent").insert(
            {"message_id": mid, "group": d["group"], "recipient": d["recipient"].lower(), "kind": d["kind"],
             "key": d["key"], "sent_at": d["sent_at"]})

    def sent(self, message_id: str) -> dict[str, Any] | None:
        i = self._sent.get(message_id)
        return None if i is None else dict(self.storage.table("sent")[str(i)])

    # --- replies and items ------------------------------------------------------------------

    def reply(self, message_id: str) -> dict[str, Any] | None:
        i = self._replies.get(message_id)
        return None if i is None else dict(self.storage.table("replies")[str(i)])

    def note_reply(self, message_id: str, group: str, member: str, received: datetime, answered: str) -> None:
        self._replies[message_id] = self.db.table("replies").insert(
            {"message_id": message_id, "group": group, "member": member, "received": iso(received),
             "answered": answered})

    def items(self, group: str, member: str | None = None) -> list[dict[str, Any]]:
        """A group's items (one member's, if given), in the order they were recorded."""
        stored = self.storage.table("items")
        docs = (stored[str(i)] for i in sorted(self._items.values()))
        return [dict(d) for d in docs if d["group"] == group and (member is None or d["member"] == member)]

    def add_item(self, doc: dict[str, Any]) -> str:
        """Store one item (its "id" is made here: short, unique, for `friendtor goals`); its id."""
        while (item_id := secrets.token_hex(3)) in self._items:
            pass
        self._items[item_id] = self.db.table("items").insert({**doc, "id": item_id})
        self.version += 1
        return item_id

    def remove_items(self, ids: list[str]) -> int:
        doc_ids = [self._items.pop(i) for i in ids if i in self._items]
        self.version += 1
        return len(self.db.table("items").remove(doc_ids=doc_ids)) if doc_ids else 0

    def merged(self, config: Config) -> Config:
        """`config` with the members' items merged in (scheduler.core.goals), made again only
        when the config or the items changed."""
        if self._merged is None or self._merged[0] is not config or self._merged[1] != self.version:
            by_group: dict[str, list[dict[str, Any]]] = {}
            stored = self.storage.table("items")
            for i in sorted(self._items.values()):
                by_group.setdefault(stored[str(i)]["group"], []).append(dict(stored[str(i)]))
            self._merged = (config, self.version, config_with_replies(config, by_group))
        return self._merged[2]

    def prune(self, now: datetime) -> int:
        """Forget sent Message-IDs and replies older than KEPT (items stay: they are the group's)."""
        cutoff, removed = iso(now - KEPT), 0
        for table, index, field in (("sent", self._sent, "sent_at"), ("replies", self._replies, "received")):
            stored = self.storage.table(table)
            old = [k for k, i in index.items() if stored[str(i)][field] < cutoff]
            if old:
                removed += len(self.db.table(table).remove(doc_ids=[index.pop(k) for k in old]))
        return removed


# --- a coordinator's corrections (`friendtor goals GROUP --done ID / --remove ID`) -------------

COORDINATOR = "coordinator"   # the "reply" of an item a coordinator added (a done mark): no Message-ID
GOALS_ACTIONS = ("done", "remove")


def goals_record(group: str, action: str, item_id: str) -> dict[str, str]:
    """The record `friendtor goals` stores, or hands over to the running service."""
    if action not in GOALS_ACTIONS:
        raise ValueError(f"unknown goals action {action!r}")
    return {"group": group, "action": action, "id": item_id}


def change_items(tables: ReplyTables, record: Mapping[str, Any], now: datetime) -> str | None:
    """Apply a coordinator's goals record; None, or why it no longer applies (the item is gone,
    or already done). Removing a goal removes its done mark too; removing a done mark reopens
    the goal it marked. A malformed record is a ValueError/KeyError (set aside by the intake)."""
    group, action, item_id = record["group"], record["action"], record["id"]
    if action not in GOALS_ACTIONS or not all(isinstance(v, str) for v in (group, item_id)):
        raise ValueError(f"not a goals record (action {action!r})")
    items = tables.items(group)
    found = next((d for d in items if d["id"] == item_id), None)
    if found is None:
        return f"{group} has no item {item_id} (removed since, by its member's undo or another command)"
    marks = [d["id"] for d in items if d["kind"] == "done" and d.get("goal") == f"item:{item_id}"]
    if action == "remove":
        tables.remove_items([item_id, *marks])
        return None
    if found["kind"] != "goal":
        return f"item {item_id} is {_a(found['kind'])} item, not a goal; only goals are marked done (--remove takes it away)"
    if marks:
        return f"goal {item_id} is already done"
    tables.add_item({"group": group, "member": found["member"], "kind": "done", "text": found["text"],
                     "goal": f"item:{item_id}", "reply": COORDINATOR, "received": iso(now)})
    return None


def _a(kind: str) -> str:
    return {"goal": "a goal", "done": "a done", "agenda": "an agenda", "celebrate": "a celebration",
            "away": "a time-away"}.get(kind, "an")
