"""Outbox records as the state's JSON documents, and the state's time text.

The one place that knows how an `OutboxRecord` looks on disk: the store converts with these
at its boundary, and nothing else sees a document. The format is the one friendtor has
always written (same field names, instants as UTC ISO text, payloads as JSON objects), so
existing state files read as they are. Also how the two big tables (the outbox and `sent`)
are held in memory once read: light documents that answer as dicts (`decode_state`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec
import msgspec.structs

from scheduler.core.outbox import Kind, OutboxRecord, Status, payload_from_json

# What delivery changes on a record; the rest is fixed when it is planned.
PROGRESS = ("status", "attempts", "last_error", "message_id", "updated", "next_attempt", "sent_at")


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _maybe(dt: datetime | None) -> str | None:
    return None if dt is None else iso(dt)


def to_doc(r: OutboxRecord) -> dict[str, Any]:
    return {"sid": r.sid, "key": r.key, "kind": str(r.kind), "group": r.group, "recipient": r.recipient,
            "name": r.name, "timezone": r.timezone, "payload": r.payload.to_json(), **progress(r),
            "created": iso(r.created), "due": iso(r.due), "expires": iso(r.expires)}


def progress(r: OutboxRecord) -> dict[str, Any]:
    """The fields delivery moves on, as stored."""
    return {"status": str(r.status), "attempts": r.attempts, "last_error": r.last_error,
            "message_id": r.message_id, "updated": iso(r.updated), "next_attempt": _maybe(r.next_attempt),
            "sent_at": _maybe(r.sent_at)}


def from_doc(d: Mapping[str, Any]) -> OutboxRecord:
    """A stored document as a record; KeyError, TypeError or ValueError if it is not one (the
    store checks every document when it reads the state, so a tick never meets one)."""
    kind = Kind(d["kind"])
    return OutboxRecord(
        d["key"], kind, d["group"], d["recipient"], d["name"], d["timezone"], payload_from_json(kind, d["payload"]),
        parse_iso(d["due"]), parse_iso(d["created"]), parse_iso(d["updated"]), parse_iso(d["expires"]),
        Status(d["status"]), d["attempts"], d.get("last_error"), d.get("message_id"),
        parse_iso(d["next_attempt"]) if d.get("next_attempt") else None,
        parse_iso(d["sent_at"]) if d.get("sent_at") else None)


# --- the two big tables in memory -----------------------------------------------------------
# At 1,000 groups the outbox and the `sent` table are 860,000 documents, and most of their
# text is the same few thousand values (1,000 groups, 12,000 recipients, a hundred instants)
# repeated. As dicts, each with its own copy of each text, they were about 1 GB in memory.
# Read from the file they are light documents instead: slotted objects outside the garbage
# collector's sight, whose repeated texts are one shared object each. They answer as the
# dicts did (d["key"], d.get, dict(d), update); documents made later are dicts, as before.


class Shared(str):
    """Text many documents hold alike, read once from the file and shared by all of them."""
    __slots__ = ()


class Payload(dict):
    """A record's payload, shared by the documents that hold the same one (the twelve recipients
    of a message). Never changed in place: a record's payload is written whole when planned."""
    __slots__ = ()


class Doc(msgspec.Struct, gc=False, kw_only=True, forbid_unknown_fields=True):
    """A stored document in its light form: the fields of its table, exactly (any other shape
    is read as a dict, and checked as one)."""

    __getitem__ = object.__getattribute__   # every field is always there

    def get(self, name: str, default: Any = None) -> Any:
        return getattr(self, name, default)

    def keys(self) -> tuple[str, ...]:
        return self.__struct_fields__

    def __iter__(self):
        return iter(self.__struct_fields__)

    def __len__(self) -> int:
        return len(self.__struct_fields__)

    def __contains__(self, name: object) -> bool:
        return name in self.__struct_fields__

    def items(self) -> list[tuple[str, Any]]:
        return [(f, getattr(self, f)) for f in self.__struct_fields__]

    def values(self) -> list[Any]:
        return [getattr(self, f) for f in self.__struct_fields__]

    def update(self, fields: Mapping[str, Any]) -> None:
        for name, value in fields.items():
            setattr(self, name, value)

    def plain(self) -> dict[str, Any]:
        return msgspec.structs.asdict(self)

    def __eq__(self, other: object) -> bool:  # equal to the dict it stands for, as to its own kind
        return isinstance(other, Mapping) and self.plain() == dict(other)

    __hash__ = None  # type: ignore[assignment]  (mutable, as a dict)


Mapping.register(Doc)


class OutboxDoc(Doc):
    sid: str
    key: Shared
    kind: Kind             # the enum's members are shared as they are (and compare as their text)
    group: Shared
    recipient: Shared
    name: Shared
    timezone: Shared
    payload: Payload
    status: Status
    attempts: int
    last_error: str | None
    message_id: str | None
    updated: Shared
    next_attempt: Shared | None
    sent_at: Shared | None
    created: Shared
    due: Shared
    expires: Shared


class SentDoc(Doc):
    message_id: str
    group: Shared
    recipient: Shared
    kind: Kind
    key: Shared
    sent_at: Shared


LIGHT = {"outbox": OutboxDoc, "sent": SentDoc}


def plain(obj: Any) -> Any:
    """json.dumps' `default`: a light document as the dict it stands for."""
    if isinstance(obj, Doc):
        return obj.plain()
    raise TypeError(f"{type(obj).__name__} is not a state document")


def decode_state(raw: bytes) -> Any:
    """The state file's tables, the outbox and `sent` as light documents where every one of
    them has its table's exact shape (else as dicts, which the checks word what is wrong
    with). msgspec.DecodeError (a ValueError) if `raw` is not JSON."""
    shared: dict[Any, Any] = {}

    def share(kind: type, value: Any) -> Any:
        # msgspec calls this for every Shared and Payload field; a value not of the field's
        # JSON type is handed back as it is, and fails validation.
        if kind is Shared and type(value) is str:
            key = value
        elif kind is Payload and type(value) is dict:
            key = msgspec.json.encode(value)  # dict key order kept: the same text, the same payload
        else:
            return value
        found = shared.get(key)
        if found is None:
            found = shared[key] = kind(value)
        return found

    try:
        tables = msgspec.json.decode(raw, type=dict[str, msgspec.Raw])
    except msgspec.ValidationError:  # not an object of tables: read it as it is
        return msgspec.json.decode(raw)
    data: dict[str, Any] = {}
    for name in list(tables):
        part = tables.pop(name)   # each table's bytes parsed once, then let go
        light = LIGHT.get(name)
        if light is not None:
            try:
                data[name] = msgspec.json.decode(part, type=dict[str, light], dec_hook=share)
                continue
            except msgspec.ValidationError:
                pass
        data[name] = msgspec.json.decode(part)
    return data
