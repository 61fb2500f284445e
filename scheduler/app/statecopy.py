"""`friendtor state copy`: every record of one state into another, TinyDB or PostgreSQL on
either side, with the installation secret (so Message-IDs, and replies to messages already
sent, stay as they were), then the counts checked.

Both backends hold the same JSON documents (scheduler.app.records), so a copy is documents
out, documents in. The source is opened as the service opens it (a TinyDB file's lock: the
service must be stopped; on a database, stop the nodes too: what they write after the
snapshot would not be copied). The destination must be empty unless `replace`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from scheduler.core.config import Service, is_database
from scheduler.core.errors import StateError, UsageError

TABLES = ("meetings", "outbox", "alerts", "reviews", "attendance", "sent", "replies", "items")


@contextmanager
def _opened(where: str, password_env: str | None, *, fresh: bool = False, create: bool = False) -> Iterator[Any]:
    if is_database(where):
        from pydantic import ValidationError

        from scheduler.app.pgstore import PgStore

        try:
            service = Service(state=where, state_password_env=password_env)
        except ValidationError as exc:
            raise UsageError(f"{where_text(where)}: {exc.errors()[0]['msg']}") from None
        with PgStore(where, service) as store:
            yield store
        return
    from scheduler.app.store import Store

    path = Path(where)
    if fresh:
        from scheduler.app.journal import journal_path
        from scheduler.app.secret import secret_path

        with Store(path):   # the lock: nobody else is using it while it goes
            pass
        for old in (path, journal_path(path), secret_path(path)):
            old.unlink(missing_ok=True)
    elif not path.exists() and not create:
        raise UsageError(f"{path}: no such state file")
    with Store(path) as store:
        yield store


def where_text(where: str) -> str:
    if is_database(where):
        from scheduler.app.pgschema import where as describe

        return describe(where)
    return where


def documents(store: Any) -> dict[str, list[dict[str, Any]]]:
    """Every record of every table, in the order it was added."""
    if store.path is None:
        return {t: [d for d, in store.q(f"SELECT doc FROM {t} ORDER BY seq")] for t in TABLES}
    return {t: [dict(d) for _, d in sorted(store.storage.table(t).items(), key=lambda kv: int(kv[0]))]
            for t in TABLES}


def _write(store: Any, docs: dict[str, list[dict[str, Any]]], secret: bytes) -> None:
    if store.path is None:
        import json

        from scheduler.app.pgstore import key
        from scheduler.app.store import KEYS

        store.q("TRUNCATE " + ", ".join(TABLES))
        for t, rows in docs.items():
            if not rows:
                continue
            if t == "outbox":
                store.q("INSERT INTO outbox (sid, doc) SELECT s, d::jsonb FROM unnest(%s::text[], %s::text[]) "
                        "WITH ORDINALITY AS u(s, d, n) ORDER BY n", ([d["sid"] for d in rows], [json.dumps(d) for d in rows]))
            else:
                store.q(f"INSERT INTO {t} (k, grp, doc) SELECT k, g, d::jsonb FROM unnest(%s::text[], %s::text[], "
                        "%s::text[]) WITH ORDINALITY AS u(k, g, d, n) ORDER BY n",
                        ([key(*(d[f] for f in KEYS[t])) for d in rows], [d["group"] for d in rows],
                         [json.dumps(d) for d in rows]))
        store.q("UPDATE meta SET value = %s WHERE name = 'secret'", (secret,))
    else:
        from scheduler.app.files import atomic_write
        from scheduler.app.secret import secret_path

        for t, rows in docs.items():
            if rows:
                store.db.table(t).insert_multiple(rows)
        atomic_write(secret_path(store.path), secret)
    store.commit()


def copy_state(source: str, dest: str, *, replace: bool, password_env: str | None = None) -> dict[str, int]:
    """Copy every record from `source` to `dest` (each a TinyDB path or a PostgreSQL URI); the
    number of records per table, checked on the destination read back."""
    if is_database(source) == is_database(dest) and (source == dest or (
            not is_database(source) and Path(source).resolve() == Path(dest).resolve())):
        raise UsageError("--from and --to name the same state")
    with _opened(source, password_env) as src:
        docs = documents(src)
        secret = src.secret
    counts = {t: len(rows) for t, rows in docs.items()}
    if not is_database(dest) and Path(dest).exists() and not replace:
        raise UsageError(f"{dest}: already holds a state; add --replace to overwrite it")
    with _opened(dest, password_env, fresh=replace and not is_database(dest), create=True) as dst:
        if is_database(dest) and not replace and any(documents(dst).values()):
            raise UsageError(f"{where_text(dest)}: already holds a state; add --replace to overwrite it")
        _write(dst, docs, secret)
    with _opened(dest, password_env) as check:
        found = {t: len(rows) for t, rows in documents(check).items()}
        if found != counts or check.secret != secret:
            wrong = ", ".join(f"{t} {found[t]} of {counts[t]}" for t in TABLES if found[t] != counts[t]) or "the secret"
            raise StateError(f"{where_text(dest)}: the copy does not match its source ({wrong}); copy again with "
                             "--replace")
    return counts
