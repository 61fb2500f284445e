"""The reply tables (sent Message-IDs, replies, items) in PostgreSQL: what
scheduler.app.replystate.ReplyTables does for the TinyDB state, with the same answers."""

from __future__ import annotations

import json
import secrets
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from scheduler.app.records import iso
from scheduler.app.replystate import KEPT
from scheduler.core.config import Config
from scheduler.core.goals import config_with_replies

if TYPE_CHECKING:
    from scheduler.app.pgstore import PgStore

# How long `merged` trusts what it read: other nodes add items too (members' replies), and the
# config is asked for many times a tick; a second's lag is nothing to a goal list.
FRESH_SECONDS = 1.0
# What prune forgets, each by an index on the date it compares (migration 2).
PRUNE = {
    "sent": "DELETE FROM sent WHERE doc->>'sent_at' < %s RETURNING k",
    "replies": "DELETE FROM replies WHERE doc->>'received' < %s RETURNING k",
}


class PgReplies:
    def __init__(self, store: PgStore):
        self.store = store
        self.version = 0   # moves on with every change to the items made here
        self._merged: tuple[Config, tuple, Config] | None = None
        self._checked: tuple[float, tuple] = (float("-inf"), ())

    def _put(self, table: str, k: str, group: str, doc: dict[str, Any]) -> bool:
        """Add a record unless one with its key is there; whether it was added."""
        return bool(self.store.q(f"INSERT INTO {table} (k, grp, doc) VALUES (%s, %s, %s::jsonb) "
                                 "ON CONFLICT (k) DO NOTHING RETURNING k", (k, group, json.dumps(doc))))

    def _get(self, table: str, k: str) -> dict[str, Any] | None:
        rows = self.store.q(f"SELECT doc FROM {table} WHERE k = %s", (k,))
        return rows[0][0] if rows else None

    # --- sent -------------------------------------------------------------------------------

    def note_sent(self, d: dict[str, Any]) -> None:
        self._put("sent", d["message_id"], d["group"],
                  {"message_id": d["message_id"], "group": d["group"], "recipient": d["recipient"].lower(),
                   "kind": d["kind"], "key": d["key"], "sent_at": d["sent_at"]})

    def sent(self, message_id: str) -> dict[str, Any] | None:
        return self._get("sent", message_id)

    # --- replies and items ------------------------------------------------------------------

    def reply(self, message_id: str) -> dict[str, Any] | None:
        return self._get("replies", message_id)

    def note_reply(self, message_id: str, group: str, member: str, received: datetime, answered: str) -> None:
        self.store.q("INSERT INTO replies (k, grp, doc) VALUES (%s, %s, %s::jsonb) ON CONFLICT (k) DO UPDATE "
                     "SET doc = EXCLUDED.doc",
                     (message_id, group, json.dumps({"message_id": message_id, "group": group, "member": member,
                                                     "received": iso(received), "answered": answered})))

    def items(self, group: str, member: str | None = None) -> list[dict[str, Any]]:
        docs = [d for d, in self.store.q("SELECT doc FROM items WHERE grp = %s ORDER BY seq", (group,))]
        return [d for d in docs if member is None or d["member"] == member]

    def add_item(self, doc: dict[str, Any]) -> str:
        while not self._put("items", item_id := secrets.token_hex(3), doc["group"], {**doc, "id": item_id}):
            pass
        self.version += 1
        return item_id

    def remove_items(self, ids: list[str]) -> int:
        self.version += 1
        return len(self.store.q("DELETE FROM items WHERE k = ANY(%s) RETURNING k", (list(ids),)))

    def merged(self, config: Config) -> Config:
        """`config` with the members' items merged in, made again when the config or the items
        changed (here, or, read at most once a second, on another node)."""
        now = time.monotonic()
        if now - self._checked[0] > FRESH_SECONDS:
            self._checked = (now, tuple(self.store.q("SELECT count(*), coalesce(max(seq), 0) FROM items")[0]))
        stamp = (self.version, self._checked[1])
        if self._merged is None or self._merged[0] is not config or self._merged[1] != stamp:
            by_group: dict[str, list[dict[str, Any]]] = {}
            for d, in self.store.q("SELECT doc FROM items ORDER BY seq"):
                by_group.setdefault(d["group"], []).append(d)
            self._merged = (config, stamp, config_with_replies(config, by_group))
        return self._merged[2]

    def prune(self, now: datetime) -> int:
        cutoff = iso(now - KEPT)
        return len(self.store.q(PRUNE["sent"], (cutoff,))) + len(self.store.q(PRUNE["replies"], (cutoff,)))
