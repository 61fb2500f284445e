"""The state on disk: a TinyDB JSON file plus a journal of the changes since it was written.

Why it is built this way:
- A long-running service's state is large (about 130 KB per group, mostly the outbox's
  record of what was sent), and the service records progress many times per busy tick
  (before and after each batch of sends). Rewriting the whole file each time makes a busy
  tick quadratic in the number of groups. So a commit appends only the changed documents
  to `<state>.journal` (one line, fsynced: `journal.py`), and the whole file is rewritten
  ("compacted") only when the journal has grown to a quarter of it. Reading the state is
  the file plus the journal replayed over it.
- A full write is atomic (`files.atomic_write`): a crash leaves the old file or the new one.
  It takes a generation above any seen, so no old journal line can continue it.
- Both files hold names, emails and goals: they are created 0600 and kept so, and opened
  without following a symbolic link (one planted there is refused, never written through).
- Both carry a checksum, so that silent damage (a flipped byte that still parses as JSON) is
  refused instead of read: each journal line its CRC, the full file a SHA-256 of everything
  after it, as a first member `"checksum": {"1": {"sha256": HEX}}` (shaped like a table, so
  that a friendtor of schema 2 reads on to the schema and gives its "newer friendtor" line).

TinyDB's own tables rewrite a whole table on every insert, update or remove (its storage
interface only reads and writes everything). `TrackedTable` replaces the public methods the
Store uses (insert, update and remove by document id, truncate) with ones that change only
those documents and tell the storage which, which is what the journal writes. It overrides
no private TinyDB method: any other change (by query) goes through TinyDB's own code and its
`Storage.write`, which the storage answers with a full write.
"""

from __future__ import annotations

import gc
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from pathlib import Path
from typing import Any

import msgspec as _msgspec  # tests set this to None to read with json alone
from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Table

from scheduler.app.files import atomic_write, read_regular, refused_link
from scheduler.app.records import Doc, decode_state, plain
from scheduler.app.journal import HOW_TO, JournalWriter, encode, journal_path, not_a_file, replay
from scheduler.core.errors import StateError


# 2: the journal beside the file (a friendtor reading schema 1 would ignore it);
# 3: the full file's checksum (read: 2 and 3; written: 3).
SCHEMA = 3
CHECKSUMMED = 3         # from this schema on, a file without its checksum is damaged
# The file's first bytes: the checksum of the rest, which is the canonical JSON of the tables.
_HEAD = re.compile(rb'\{"checksum":\{"1":\{"sha256":"([0-9a-f]{64})"\}\}(,|\})')
COMPACT_MIN = 1 << 20   # never compact a journal smaller than this
COMPACT_SHARE = 4       # compact when the journal reaches 1/COMPACT_SHARE of the full file
FREEZE_MIN = 8 << 20    # a state from this size on is frozen out of the garbage collector's sight


class Loading:
    """Around reading the state and building what is kept of it: the cyclic garbage collector paused.

    Why: a large state is millions of objects (about 20 per outbox record), all made at once
    and all kept. The collector runs after every 700 new objects and, every so often, walks
    every object there is, so while a 120 MiB state was parsed it walked the growing state
    again and again: most of the time json.loads took. Nothing made while loading is a cycle
    to collect. Afterwards a large state (`size()` bytes, at least FREEZE_MIN) is frozen
    (gc.freeze): the collections during the service's ticks do not walk it either, until
    `thaw` (the store is closed). Small states are not frozen: a test process opening thousands
    of them would keep every cycle made meanwhile."""

    def __init__(self, size: Callable[[], int]):
        self.size = size
        self.frozen = False
        self._enabled = False

    def __enter__(self) -> Loading:
        self._enabled = gc.isenabled()
        gc.disable()
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None and self.size() >= FREEZE_MIN:
            gc.freeze()
            self.frozen = True
        if self._enabled:
            gc.enable()

    def thaw(self) -> None:
        if self.frozen:
            gc.unfreeze()
            self.frozen = False


class StateFile(Storage):
    """A TinyDB storage: everything in memory, written only on `commit()`, as a journal line
    or a full rewrite. Which documents changed is told by `TrackedTable`."""

    def __init__(self, path: Path, *, writable: bool = True):
        self.path = path
        self.journal = journal_path(path)
        self.writable = writable
        self._changed: dict[str, set[str]] = {}
        self._rewrite = False           # a change the journal cannot express: write everything
        self.full_bytes = 0             # size of the full file as last read or written
        self.unsaved: str | None = None  # why the last commit failed; None once one succeeds
        self._data = self._load()
        self.generation: int = self._data.get("meta", {}).get("1", {}).get("generation", 0)
        replayed = replay(self.journal, self._data, self.generation)
        self._newest = replayed.newest  # the highest generation on disk, file or journal
        self._writer = JournalWriter(self.journal, replayed.end)
        if replayed.foreign and writable:
            # Lines of another generation (a crash before the journal was emptied, or a backup
            # restored beside a newer journal): rewrite at the next commit, which empties the
            # journal, and never reuse their number (see _write_all).
            self._rewrite = True

    @property
    def journal_bytes(self) -> int:
        """End of the last intact journal line."""
        return self._writer.end

    # --- reading ----------------------------------------------------------------------------

    def _load(self) -> dict[str, Any]:
        try:
            raw = read_regular(self.path)
        except OSError as exc:
            if refused_link(exc):
                raise not_a_file(self.path, "state file") from None
            raise StateError(f"{self.path}: cannot read the state file ({exc.strerror}); {HOW_TO}") from None
        if raw is None:
            return {}
        # The checksum is taken on the bytes in place, and the bytes are parsed as they are (see
        # _parse): the file is in memory once, beside the documents made from it.
        size, digest = len(raw), _digest(raw)
        # Never the file's own text in a message: it holds names, emails and goals.
        try:
            data = _parse(raw)
            del raw
        except UnicodeDecodeError:
            raise StateError(f"{self.path}: the state file is damaged (not UTF-8 text); {HOW_TO}") from None
        except json.JSONDecodeError as exc:
            raise StateError(f"{self.path}: the state file is damaged (not JSON at line {exc.lineno}, "
                             f"column {exc.colno}); {HOW_TO}") from None
        # Every table is an object of documents, and every document an object, or TinyDB and the
        # code above it fail later with an internal error instead of this message.
        if not isinstance(data, dict) or not all(
                isinstance(table, dict) and all(isinstance(doc, (dict, Doc)) for doc in table.values())
                for table in data.values()):
            raise StateError(f"{self.path}: this is not a friendtor state file; {HOW_TO}")
        meta = data.get("meta", {}).get("1", {})
        for key in ("schema", "generation"):
            if key in meta and (not isinstance(meta[key], int) or isinstance(meta[key], bool)):
                raise StateError(f"{self.path}: this is not a friendtor state file (meta.{key} is not a number); "
                                 f"{HOW_TO}")
        if meta.get("schema", SCHEMA) > SCHEMA:
            raise StateError(f"{self.path}: written by a newer friendtor (schema {meta['schema']}); "
                             "upgrade friendtor, or restore the backup taken before the downgrade")
        self._verify(digest, data, meta)
        data.pop("checksum", None)
        self.full_bytes = size
        return data

    def _verify(self, digest: bool | None, data: dict[str, Any], meta: dict[str, Any]) -> None:
        """Refuse a file whose checksum does not match what follows it (schema 3), or that lost it."""
        if digest is None:
            if "checksum" not in data and meta.get("schema", 0) < CHECKSUMMED:
                return  # written before checksums (schema 2): read as it is, checksummed at the next write
            raise StateError(f"{self.path}: the state file is damaged (its checksum is missing or malformed); "
                             f"{HOW_TO}")
        if not digest or meta.get("schema", 0) < CHECKSUMMED:
            raise StateError(f"{self.path}: the state file is damaged (its checksum does not match: changed "
                             f"after friendtor wrote it); {HOW_TO}")

    def read(self) -> dict[str, Any]:
        return self._data

    def table(self, name: str) -> dict[str, Any]:
        """The live documents of one table, by string id (read-only for callers but TrackedTable)."""
        return self._data.setdefault(name, {})

    # --- changing ---------------------------------------------------------------------------

    def write(self, data: dict[str, Any]) -> None:
        # Only TinyDB's own code calls this (a change by query, drop_table and the like):
        # nothing says what changed, so everything is written.
        self._data = data
        self._rewrite = True

    def changed(self, table: str, doc_ids: set[str], *, everything: bool = False) -> None:
        if everything:
            self._rewrite = True
        elif doc_ids:
            self._changed.setdefault(table, set()).update(doc_ids)

    @property
    def dirty(self) -> bool:
        return self._rewrite or bool(self._changed)

    def commit(self) -> bool:
        """Make the changes durable; True if anything was written."""
        if not self.dirty:
            return False
        if not self.writable:
            raise RuntimeError("a read-only state is never written")
        line = None
        if not self._rewrite and self.path.exists():
            line = encode({"gen": self.generation, "tables": {
                name: {i: self._data.get(name, {}).get(i) for i in sorted(ids, key=int)}
                for name, ids in self._changed.items()}})
            if self.journal_bytes + len(line) > max(COMPACT_MIN, self.full_bytes // COMPACT_SHARE):
                line = None
        try:
            if line is None:
                self._write_all()
            else:
                self._writer.append(line)
        except OSError as exc:
            self._rewrite = True  # a half-written journal line is cut off by the next, full write
            self.unsaved = f"cannot write the state ({exc.strerror or exc})"
            raise StateError(f"{self.path}: {self.unsaved}; "
                             "nothing was lost yet: free space or fix permissions, friendtor retries") from None
        except StateError as exc:  # a link planted as the journal
            self._rewrite = True
            self.unsaved = str(exc)
            raise
        self._changed.clear()
        self._rewrite = False
        self.unsaved = None
        return True

    def _write_all(self) -> None:
        # Above every generation seen, so that no old journal line can ever continue this file.
        generation = max(self.generation, self._newest) + 1
        meta = self._data.setdefault("meta", {}).setdefault("1", {})
        meta["schema"], meta["generation"] = SCHEMA, generation
        body = json.dumps(self._data, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                          default=plain).encode()
        checksum = b'{"checksum":{"1":{"sha256":"%s"}}' % hashlib.sha256(body).hexdigest().encode()
        payload = checksum + (b"," + body[1:] if body != b"{}" else b"}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            atomic_write(self.path, payload)
        except BaseException:
            meta["generation"] = self.generation  # the file on disk is still the old generation
            raise
        self.generation = self._newest = generation
        self.full_bytes = len(payload)
        # The journal's lines are now of an older generation and ignored; emptying it is tidiness.
        self._writer.empty()

    def close(self) -> None:
        self._writer.close()


def _parse(raw: bytes) -> Any:
    """The JSON document in `raw`; UnicodeDecodeError or json.JSONDecodeError if it is none.

    msgspec parses the UTF-8 bytes themselves: a third less time than `json.loads`, and no
    text copy of the whole file (about 280 MiB at 1,000 groups) beside the documents. It makes
    the same documents, the outbox and `sent` in their light form (`records.decode_state`).
    What it refuses is read again by the standard library, whose error says where the damage
    is, in the words the state's one-line messages have always used."""
    if _msgspec is not None:
        try:
            return decode_state(raw)
        except (ValueError, RecursionError):  # msgspec.DecodeError is a ValueError
            pass
    return json.loads(raw.decode("utf-8"))


def _digest(raw: bytes) -> bool | None:
    """Whether the checksum at the head of a full file matches the rest; None if it has none."""
    head = _HEAD.match(raw)
    if head is None:
        return None
    sha = hashlib.sha256(b"{")
    if head.group(2) == b",":
        sha.update(memoryview(raw)[head.end():])  # the rest of the file, not a copy of it
    else:
        sha = hashlib.sha256(b"{}")
    return sha.hexdigest().encode() == head.group(1)


Fields = Mapping | Callable[[MutableMapping], None]


class TrackedTable(Table):
    """A TinyDB table whose changes by document id cost what they change, and are reported
    to the storage (a StateFile).

    Only public Table methods are replaced, with their documented behaviour: inserts, and
    `update(..., doc_ids=...)` and `remove(doc_ids=...)`, touch only those documents; a
    change by query is TinyDB's own, and the storage writes everything after it."""

    def __init__(self, storage: Storage, name: str, **kwargs: Any):
        super().__init__(storage, name, **kwargs)
        self._next_free: int | None = None  # the next new document's id, once known

    def _docs(self) -> dict[str, Any]:
        storage: StateFile = self.storage  # type: ignore[assignment]
        return storage.table(self.name)

    def _report(self, doc_ids: Iterable[int], *, everything: bool = False) -> None:
        storage: StateFile = self.storage  # type: ignore[assignment]
        storage.changed(self.name, {str(i) for i in doc_ids}, everything=everything)
        self.clear_cache()

    def _new_id(self, docs: dict[str, Any]) -> int:
        # As TinyDB does: one above the highest id, remembered so removing the newest
        # document does not give its id to the next one.
        if self._next_free is None:
            self._next_free = max((int(i) for i in docs), default=0) + 1
        doc_id, self._next_free = self._next_free, self._next_free + 1
        return doc_id

    def insert(self, document: Mapping) -> int:
        return self.insert_multiple([document])[0]

    def insert_multiple(self, documents: Iterable[Mapping]) -> list[int]:
        docs, ids = self._docs(), []
        try:
            for document in documents:
                if not isinstance(document, Mapping):
                    raise ValueError("Document is not a Mapping")
                if isinstance(document, self.document_class):
                    doc_id = self.document_id_class(document.doc_id)
                    if str(doc_id) in docs:
                        raise ValueError(f"Document with ID {doc_id} already exists")
                    self._next_free = None  # counted afresh from the highest id, as TinyDB does
                else:
                    doc_id = self._new_id(docs)
                docs[str(doc_id)] = dict(document)
                ids.append(doc_id)
        finally:
            self._report(ids)
        return ids

    def update(self, fields: Fields, cond: Any = None, doc_ids: Iterable[int] | None = None) -> list[int]:
        if doc_ids is None:
            return super().update(fields, cond)
        docs = self._docs()
        ids = [i for i in doc_ids if str(i) in docs]
        try:
            for i in ids:
                if callable(fields):
                    fields(docs[str(i)])
                else:
                    docs[str(i)].update(fields)
        finally:
            self._report(ids)  # TinyDB's updaters change documents in place
        return ids

    def remove(self, cond: Any = None, doc_ids: Iterable[int] | None = None) -> list[int]:
        if doc_ids is None:
            return super().remove(cond)
        docs = self._docs()
        # Each existing id once: TinyDB's own table raises KeyError halfway through on a
        # repeated id; removing it once is what was meant.
        ids = list(dict.fromkeys(i for i in doc_ids if str(i) in docs))
        for i in ids:
            del docs[str(i)]
        self._report(ids)
        return ids

    def truncate(self) -> None:
        self._docs().clear()
        self._next_free = None
        self._report((), everything=True)


class StateDB(TinyDB):
    table_class = TrackedTable
