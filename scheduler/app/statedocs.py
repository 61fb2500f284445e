"""What the state's documents hold, checked once when the state is read.

Every document is checked when the store opens: a record with a missing or mistyped field
stops the service with one line naming it, instead of failing later in the middle of a tick.

At 1,000 groups that is some 300,000 documents and over a million instants (issue 13,
point 4), so the check is built once per table and each distinct text is parsed once: the
twelve recipients of one message share their `due`, `expires` and `created`, and a sent
message's time is in the outbox and again in the `sent` table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from operator import itemgetter
from pathlib import Path
from typing import Any

from scheduler.app import replystate
from scheduler.app.journal import HOW_TO, journal_path
from scheduler.app.records import LIGHT, Doc, Payload, parse_iso
from scheduler.core.errors import StateError
from scheduler.core.outbox import FINISHED, OPEN, Kind, Status, payload_from_json, sid

# What the code reads from each table's documents, and its JSON type; `when` fields hold instants
# or dates as ISO text and must parse.
_TEXT, _INT, _BOOL, _OBJECT = (str,), (int,), (bool,), (dict,)
_KIND = {_TEXT: "text", _INT: "a number", _BOOL: "true or false", _OBJECT: "an object"}
FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "meetings": {"group": _TEXT, "cycle": _TEXT, "uid": _TEXT, "sequence": _INT, "start": _TEXT, "end": _TEXT,
                 "stamp": _TEXT},
    "outbox": {"sid": _TEXT, "key": _TEXT, "kind": _TEXT, "group": _TEXT, "recipient": _TEXT, "name": _TEXT,
               "timezone": _TEXT, "payload": _OBJECT, "status": _TEXT, "attempts": _INT, "created": _TEXT,
               "updated": _TEXT, "due": _TEXT, "expires": _TEXT},
    "alerts": {"group": _TEXT, "cycle": _TEXT, "day": _TEXT},
    "reviews": {"group": _TEXT, "kind": _TEXT, "start": _TEXT, "end": _TEXT},
    "attendance": {"group": _TEXT, "cycle": _TEXT, "email": _TEXT, "present": _BOOL, "source": _TEXT},
}
KEYS = {"meetings": ("group", "cycle"), "outbox": ("sid",), "alerts": ("group", "cycle"),
        "reviews": ("group", "kind", "end"), "attendance": ("group", "cycle", "email")}  # one record each
INSTANTS = {"meetings": ("start", "end", "stamp"), "outbox": ("created", "updated", "due", "expires"),
            **replystate.INSTANTS}
FIELDS.update(replystate.FIELDS)
KEYS.update(replystate.KEYS)
DAYS = {"alerts": ("day",), "reviews": ("start", "end")}

_STATUSES = frozenset(OPEN + FINISHED)
_KINDS = {str(k): k for k in Kind}
# The one Python type JSON gives each kind of field (a bool is not a number here).
_EXACT = {_TEXT: str, _INT: int, _BOOL: bool, _OBJECT: dict}


class _Table:
    """One table's checks, prepared once: the fields and their types, the time fields and how
    each is read, each fetched from a document in one C-level call."""

    def __init__(self, name: str):
        self.name, self.fields = name, FIELDS[name]
        self.values = itemgetter(*self.fields)
        self.types = tuple(_EXACT[t] for t in self.fields.values())
        self.readers: dict[str, Callable[[str], Any]] = {
            **{f: parse_iso for f in INSTANTS.get(name, ())}, **{f: date.fromisoformat for f in DAYS.get(name, ())}}
        # (a getter of a tuple of texts, how they are read), for each reader the table has; one
        # name is asked for twice, so that the getter gives a tuple for it too
        self.times = tuple((itemgetter(*names, *names[:max(0, 2 - len(names))]), read)
                           for names, read in ((INSTANTS.get(name, ()), parse_iso), (DAYS.get(name, ()), date.fromisoformat))
                           if names)
        self.key = itemgetter(*KEYS[name])


def check_documents(path: Path, table: Callable[[str], Mapping[str, Any]]) -> None:
    """Raise StateError naming the first document of the state at `path` (its tables read with
    `table`) that the code could not use, or that repeats another's key."""
    parsed: dict[Callable[..., Any], set[Any]] = {parse_iso: set(), date.fromisoformat: set(),
                                                  payload_from_json: set()}
    for name in FIELDS:
        docs = table(name)
        if not _check_table(path, name, docs, parsed, _light_keys(name, docs, parsed)):
            _check_table(path, name, docs, parsed, None)  # a repeat across the two forms: worded in order


def _check_table(path: Path, name: str, docs: Mapping[str, Any], parsed: dict[Callable[..., Any], set[Any]],
                 light: set[Any] | None) -> bool:
    """Check one table's documents one by one, but for its light ones when `light` (their keys)
    vouches for them; False if a document repeats the key of a light one."""
    spec, seen = _Table(name), {}
    skip = LIGHT.get(name) if light is not None else None
    for doc_id, doc in docs.items():
        if type(doc) is skip:
            continue
        problem = _problem(spec, doc, parsed)
        key = spec.key(doc) if problem is None else ()
        if problem is None and light and key in light:
            return False
        if problem is None and key in seen:
            # Two records for one thing: the indexes would see one, and the other would
            # live on unseen (a pending copy of a sent message would be sent forever).
            problem = f"repeats record {seen[key]} (the same {' and '.join(KEYS[name])})"
        if problem:
            where = f"{path}" + (" (with its journal)" if journal_path(path).exists() else "")
            raise StateError(f"{where}: {name} record {doc_id} {problem}; this is not a state friendtor "
                             f"wrote, or it was edited by hand. {HOW_TO}")
        seen[key] = doc_id
    return True


def _light_keys(name: str, docs: Mapping[str, Any], parsed: dict[Callable[..., Any], set[Any]]) -> set[Any] | None:
    """The keys of a table's light documents (records.LIGHT: the outbox and `sent`, 860,000
    documents at 1,000 groups) if every one of them is certainly fine, asked of them all at
    once: their types were checked as they were read, so what is left is each distinct time
    text and payload, and that no key repeats. None when anything is in doubt (a repeat, a
    text that does not parse): the checks document by document then find the first one wrong
    and word it. Documents written since the file (the journal's) are dicts, checked one by one."""
    light = LIGHT.get(name)
    if light is None or not docs or not _STATUSES.issuperset(Status):  # (a status the checks here do not know)
        return None
    values = [d for d in docs.values() if type(d) is light]
    if not values:
        return None
    if name == "sent":
        keys, times = {d.message_id for d in values}, {d.sent_at for d in values}
    else:
        keys, times = {d.sid for d in values}, set()
        for field in ("created", "updated", "due", "expires"):
            times.update(getattr(d, field) for d in values)
        times.update(d.next_attempt for d in values if d.status == "retry")
        if not all(d.sid == sid(d.key, d.recipient) for d in values):
            return None
        payloads = {(d.kind, id(d.payload)): d.payload for d in values}
        try:
            for (kind, _), payload in payloads.items():
                payload_from_json(kind, payload)
        except (KeyError, TypeError, ValueError):
            return None
    if len(keys) != len(values):
        return None
    done = parsed[parse_iso]
    try:
        for text in times - done:
            parse_iso(text)
    except (AttributeError, TypeError, ValueError):
        return None
    done.update(times)
    return keys


def _problem(spec: _Table, doc: Mapping[str, Any], parsed: dict[Callable[..., Any], set[Any]]) -> str | None:
    """What is wrong with one stored document, or None. `parsed`: the texts each reader
    has already read without an error, and the shared payloads checked (shared by every
    document of one check).

    Each step first asks the quick question (every field of its JSON type? every time text
    one read before?); only a document that fails it is gone through field by field, which
    finds and words what is wrong."""
    if isinstance(doc, Doc):
        typed = True  # its fields' types were checked as it was read (records.decode_state)
    else:
        try:
            typed = tuple(map(type, spec.values(doc))) == spec.types
        except KeyError:
            typed = False
    if not typed:
        for name, types in spec.fields.items():
            if name not in doc:
                return f"has no {name!r}"
            value = doc[name]
            if not isinstance(value, types) or (types is not _BOOL and isinstance(value, bool)):
                return f"has {name!r} as {_json_kind(value)}, not {_KIND[types]}"
    table, parse = spec.name, spec.readers
    if table == "outbox":
        if doc["status"] not in _STATUSES:
            return f"has a status that is not one of {', '.join(OPEN + FINISHED)}"
        kind = _KINDS.get(doc["kind"])
        if kind is None:
            return f"has a kind that is not one of {', '.join(Kind)}"
        payload, checked = doc["payload"], parsed[payload_from_json]
        try:
            # A payload read from the file is shared by the documents that hold the same one
            # (records.Payload): checked once for each kind it comes with.
            if type(payload) is not Payload or (kind, id(payload)) not in checked:
                payload_from_json(kind, payload)
                if type(payload) is Payload:
                    checked.add((kind, id(payload)))
        except KeyError as exc:  # the name of a field the code needs, never a stored value
            return f"has a payload that does not fit its kind {str(doc['kind'])!r} (no {exc})"
        except (TypeError, ValueError):
            return f"has a payload that does not fit its kind {str(doc['kind'])!r} (a value of the wrong form)"
        if doc["status"] == "retry":
            parse = {**parse, "next_attempt": parse_iso}
        if doc["sid"] != sid(doc["key"], doc["recipient"]):
            return "has a sid that is not its key|recipient"
    if (extra := replystate.problem(table, doc)) is not None:
        return extra
    if table == "attendance" and not isinstance(doc.get("tentative", False), bool):  # optional: older states lack it
        return "has a 'tentative' that is not true or false"
    if table == "meetings" and doc.get("moved_from") is not None:
        parse = {**parse, "moved_from": parse_iso}
    if parse is spec.readers:
        for get, read in spec.times:
            if not parsed[read].issuperset(get(doc)):  # the fields are text: checked above
                break
        else:
            return None  # every time text here was read before
    for name, read in parse.items():
        value = doc.get(name)
        done = parsed[read]
        if isinstance(value, str) and value in done:
            continue
        try:
            read(value)
        except (AttributeError, TypeError, ValueError):
            return f"has {name!r} that is not a date{' and time' if read is parse_iso else ''}"
        done.add(value)
    return None


def _json_kind(value: Any) -> str:
    """A stored value's JSON type in words: messages say what is wrong, never the value (it is
    the state's content: names, emails, goals)."""
    for types, words in ((bool, "true or false"), ((int, float), "a number"), (str, "text"), (list, "a list"),
                         (dict, "an object")):
        if isinstance(value, types):
            return words
    return "null"
