"""The state in PostgreSQL: connecting (the password from the environment, never the config),
and the schema, which friendtor creates and migrates itself.

Each table holds the same JSON documents the TinyDB state holds (scheduler.app.records), keyed
by what makes a record unique, so both backends mean the same thing by a record and a state
copies from one to the other as it is. `seq` keeps the order records were added in (the TinyDB
state's document ids). The outbox adds who is sending a message and until when (`node`,
`lease`): several nodes share one database, and a node that dies leaves leases that expire.

`friendtor_schema` holds the schema's version. Migrations run in order, each in the
transaction that records its version, under an advisory lock, so two nodes starting together
migrate once; a friendtor older than the schema refuses it rather than misread it.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import conninfo, errors

from scheduler.core.config import Service
from scheduler.core.errors import StateError, StateUnavailable

CONNECT_SECONDS = 10
OLDEST_SERVER = 140000   # PostgreSQL 14: migration 3 keeps statistics of an expression
MIGRATE_LOCK = 0x66726E64   # "frnd": the advisory lock nodes take to migrate one at a time

# Tables of documents, and the key each record is unique by.
KEYED = ("meetings", "alerts", "reviews", "attendance", "sent", "replies", "items")
MIGRATIONS: list[str] = [
    # 1: the tables of the TinyDB state, one row per document.
    """
    CREATE TABLE meta (name text PRIMARY KEY, value bytea NOT NULL);
    CREATE TABLE outbox (sid text PRIMARY KEY, seq bigserial, doc jsonb NOT NULL,
                         node text, lease timestamptz);
    CREATE INDEX outbox_open ON outbox ((doc->>'status')) WHERE doc->>'status' IN ('pending', 'sending', 'retry');
    CREATE INDEX outbox_status ON outbox ((doc->>'status'));
    """ + "".join(f"""
    CREATE TABLE {t} (k text PRIMARY KEY, seq bigserial, grp text NOT NULL, doc jsonb NOT NULL);
    CREATE INDEX {t}_grp ON {t} (grp, seq);
    """ for t in KEYED),
    # 2: indexes for what every tick's prune asks (benchmarks/pgtick.py, EXPLAIN): without them
    # each tick read every finished send, every Message-ID sent and every reply on record, so
    # a tick with nothing due grew with the history kept.
    """
    CREATE INDEX outbox_expires ON outbox ((doc->>'expires')) WHERE doc->>'status' IN ('sent', 'failed', 'skipped');
    CREATE INDEX sent_at ON sent ((doc->>'sent_at'));
    CREATE INDEX replies_received ON replies ((doc->>'received'));
    CREATE INDEX meetings_end ON meetings ((doc->>'end'));
    CREATE INDEX alerts_day ON alerts ((doc->>'day'));
    -- An expression index has no statistics until the table is analyzed, and autovacuum
    -- analyzes a table only after enough rows change: without this, the planner guesses a
    -- third of the rows match and reads the whole outbox anyway.
    ANALYZE outbox, sent, replies, meetings, alerts;
    """,
    # 3: what the planner asks each tick is the sends it may still plan (core/recorded.py): the
    # finished ones not expired (outbox_expires) and the open ones (outbox_open) have indexes;
    # alerts and the invites not expired get theirs. And statistics of the expiry itself:
    # PostgreSQL keeps none for a partial index's expression, so it guessed a third of the
    # outbox had expired and prune read all of it every tick (1.4-2.6 s at 1,920,000 rows;
    # 0.03 ms by outbox_expires with the statistics). Expression statistics: PostgreSQL 14+.
    """
    CREATE INDEX outbox_alerts ON outbox (sid) WHERE doc->>'kind' = 'alert';
    CREATE INDEX outbox_invites ON outbox ((doc->>'expires')) WHERE sid LIKE 'invite:%';
    CREATE STATISTICS outbox_expiry ON (doc->>'expires') FROM outbox;
    ANALYZE outbox;
    """,
]


def where(url: str) -> str:
    """The database as the operator's messages name it: user, host, port and name, never a
    password (a URI from anywhere but service.toml may hold one)."""
    try:
        info = conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "the PostgreSQL state (its URI cannot be read)"
    host = info.get("host") or "localhost"
    port = f":{info['port']}" if info.get("port") else ""
    user = f"{info['user']}@" if info.get("user") else ""
    return f"PostgreSQL {user}{host}{port}/{info.get('dbname') or info.get('user') or ''}".rstrip("/")


def password(service: Service) -> str | None:
    """The password from the variable `state_password_env` names; None leaves it to libpq
    (PGPASSWORD, ~/.pgpass, or no password)."""
    name = service.state_password_env
    if not name:
        return None
    value = os.environ.get(name)
    if not value:
        raise StateError(f"service.toml: state_password_env names {name}, which is not set in friendtor's "
                         f"environment; set it to the database password (or remove state_password_env to use "
                         "PGPASSWORD or ~/.pgpass)")
    return value


def connect(url: str, secret: str | None, *, snapshot: bool = False) -> psycopg.Connection[Any]:
    """A connection, or one line saying why not. `snapshot`: every read of one transaction sees
    the same committed state (REPEATABLE READ), for a report read beside running nodes."""
    extra: dict[str, Any] = {"password": secret} if secret is not None else {}
    try:
        conn = psycopg.connect(url, connect_timeout=CONNECT_SECONDS, application_name="friendtor", **extra)
    except psycopg.OperationalError as exc:
        raise unavailable(url, exc, secret) from None
    except psycopg.Error as exc:
        raise StateError(f"{where(url)}: {reason(exc, secret)}; check the state URI in service.toml") from None
    if snapshot:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    return conn


def reason(exc: BaseException, secret: str | None) -> str:
    """libpq's own words, first line, with the password (should it appear) taken out."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if secret:
        text = text.replace(secret, "***")
    return text.rstrip(".")


def unavailable(url: str, exc: BaseException, secret: str | None) -> StateUnavailable:
    text = reason(exc, secret)
    if "password" in text.lower() or "authentication" in text.lower():
        return StateUnavailable(f"{where(url)}: the database refused friendtor's sign-in ({text}); check the "
                                "user in the state URI and the password (state_password_env, PGPASSWORD or "
                                "~/.pgpass)")
    return StateUnavailable(f"{where(url)}: cannot reach the state database ({text}); check that PostgreSQL "
                            "runs there and the host, port and database in the state URI")


def version(conn: psycopg.Connection[Any]) -> int | None:
    """The schema's version, or None in a database friendtor has not set up."""
    if conn.execute("SELECT to_regclass('friendtor_schema')").fetchone()[0] is None:
        return None
    row = conn.execute("SELECT max(version) FROM friendtor_schema").fetchone()
    return row[0] if row and row[0] is not None else 0


def prepare(conn: psycopg.Connection[Any], url: str) -> bytes:
    """Create or migrate the schema (committed), and return the installation secret that keys
    Message-IDs: one per database, so every node writes the same Message-ID for a message."""
    known = len(MIGRATIONS)
    if conn.info.server_version < OLDEST_SERVER:
        found = conn.info.server_version
        raise StateError(f"{where(url)}: the server is PostgreSQL {found // 10000}.{found % 10000}, older than "
                         f"friendtor needs ({OLDEST_SERVER // 10000} or newer); upgrade the server or point "
                         "`state` at a newer one")
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
        found = version(conn)
        if found is None:
            if conn.execute("SELECT to_regclass('outbox')").fetchone()[0] is not None:
                raise StateError(f"{where(url)}: the database has an outbox table friendtor did not create; give "
                                 "friendtor a database of its own (CREATE DATABASE friendtor)")
            conn.execute("CREATE TABLE friendtor_schema (version integer NOT NULL, applied timestamptz NOT NULL "
                         "DEFAULT now())")
            found = 0
        if found > known:
            raise StateError(f"{where(url)}: the state's schema is version {found}, newer than this friendtor knows "
                             f"({known}); a newer friendtor wrote it: upgrade friendtor on this node")
        for step in range(found, known):
            conn.execute(MIGRATIONS[step])
            conn.execute("INSERT INTO friendtor_schema (version) VALUES (%s)", (step + 1,))
        conn.execute("INSERT INTO meta (name, value) VALUES ('secret', %s) ON CONFLICT DO NOTHING",
                     (secrets.token_bytes(32),))
        row = conn.execute("SELECT value FROM meta WHERE name = 'secret'").fetchone()
    return bytes(row[0])


def guarded(url: str, secret: str | None, on_lost: Callable[[], None]) -> Callable[[BaseException], StateError]:
    """Maps a psycopg error met mid-use to friendtor's: a lost connection is StateUnavailable
    (the service waits for the database), anything else a StateError with libpq's words."""
    def map_error(exc: BaseException) -> StateError:
        if isinstance(exc, (psycopg.OperationalError, errors.AdminShutdown, errors.CannotConnectNow)):
            on_lost()
            return unavailable(url, exc, secret)
        logging.getLogger("friendtor").debug("state database error", exc_info=exc)
        return StateError(f"{where(url)}: the state database refused a change ({reason(exc, secret)})")
    return map_error
