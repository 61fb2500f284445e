"""PostgreSQL for the tests: one real server per session (the `pgserver` package ships a
PostgreSQL build on PyPI), a fresh database per test made from a template that already holds
friendtor's schema."""

from __future__ import annotations

import itertools
import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TEMPLATE = "friendtor_template"
_names = itertools.count(1)


def start_server(folder: Path) -> Any:
    import pgserver
    import psycopg

    from scheduler.app import pgschema

    logging.getLogger("pgserver").setLevel(logging.WARNING)
    server = pgserver.get_server(folder, cleanup_mode="stop")
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {TEMPLATE}")
    with psycopg.connect(url(server, TEMPLATE)) as conn:
        pgschema.prepare(conn, url(server, TEMPLATE))
    return server


@contextmanager
def private_server() -> Iterator[Any]:
    """A server of its own in a new folder (not under pytest's 0700 tmp: pgserver runs PostgreSQL
    as its own user when the tests run as root), stopped and removed at the end."""
    folder = Path(tempfile.mkdtemp(prefix="friendtor-pg-"))
    folder.chmod(0o755)
    try:
        server = start_server(folder / "data")
        try:
            yield server
        finally:
            server.cleanup()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def url(server: Any, database: str) -> str:
    """The URI friendtor's `state` holds: no password (the server trusts local sockets)."""
    return server.get_uri(database).replace("postgres:@", "postgres@")


def fresh_database(server: Any, *, empty: bool = False) -> str:
    """A new database: a copy of the template (friendtor's schema made), or `empty`."""
    import psycopg

    name = f"t{next(_names)}"
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}" + ("" if empty else f" TEMPLATE {TEMPLATE}"))
    return url(server, name)
