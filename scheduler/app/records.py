"""Outbox records as the state's JSON documents, and the state's time text.

The one place that knows how an `OutboxRecord` looks on disk: the store converts with these
at its boundary, and nothing else sees a document. The format is the one friendtor has
always written (same field names, instants as UTC ISO text, payloads as JSON objects), so
existing state files read as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

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
