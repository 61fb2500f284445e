"""Shared fixtures. Keep each one small and say what it is for."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# Real servers on loopback (SMTP, and the test CA every TLS server here uses), as fixtures for
# every test module: a module asks for them by name, as for any fixture.
from smtp_servers import (  # noqa: F401
    client_tls,
    closed_port,
    deferring_smtp,
    hanging_up_server,
    plain_smtp,
    refusing_smtp,
    server_tls,
    silent_server,
    slow_smtp,
    smtps,
    submission_smtp,
    test_ca,
)

WriteConfigFolder = Callable[..., Path]


@pytest.fixture
def write_config_folder(tmp_path: Path) -> WriteConfigFolder:
    """Factory that writes a config folder under tmp_path and returns its path.

    `write_config_folder({"k-club.toml": text}, service=text)` writes groups/k-club.toml and,
    unless `service` is None, service.toml. Contents are str (written as UTF-8) or bytes
    (written as is). Every call makes a new folder, so a test, or each example of a
    hypothesis test, can write as it needs.
    """
    counter = itertools.count(1)

    def write(groups: dict[str, str | bytes], service: str | bytes | None = None) -> Path:
        folder = tmp_path / f"config-{next(counter)}"
        (folder / "groups").mkdir(parents=True)
        files = {f"groups/{name}": text for name, text in groups.items()}
        if service is not None:
            files["service.toml"] = service
        for rel, text in files.items():
            data = text if isinstance(text, bytes) else text.encode("utf-8")
            (folder / rel).write_bytes(data)
        return folder

    return write


# Every backend the state store can keep its state in. Store tests that ask for `store` run
# once per backend. Tests of one backend's own files (the TinyDB journal, its lock file) open
# `Store` directly instead.
STORE_BACKENDS = ("tinydb", "postgresql")

OpenStore = Callable[..., "Store"]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[object]:
    """One real PostgreSQL server for the session (the `pgserver` package: no system service,
    no root setup), on a socket in its own folder, stopped at the end."""
    from pg_servers import private_server

    with private_server() as server:
        yield server


@pytest.fixture
def pg_url(pg_server: object) -> str:
    """A fresh database on the session's server, with friendtor's schema already made (copied
    from a template database: seconds saved per test), as the `state` URI names it."""
    from pg_servers import fresh_database

    return fresh_database(pg_server)


@pytest.fixture(params=STORE_BACKENDS)
def store_backend(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The `state` value of this test's backend: a TinyDB file under tmp_path, or a fresh
    PostgreSQL database's URI."""
    if request.param == "tinydb":
        return str(tmp_path / "store" / "state.json")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(store_backend: str) -> Iterator[OpenStore]:
    """Factory that opens this test's state store on the backend under test: `store()` opens it
    as the service does (owning it), `store(lock=False)` as a reader beside the owner. Each call
    opens the same state again, so a test can commit, close and reopen. Use it in a `with`."""
    from scheduler.app.pgstore import PgStore
    from scheduler.app.store import Store
    from scheduler.core.config import Service, is_database

    def open_store(*, lock: bool = True) -> Store:
        if is_database(store_backend):
            return PgStore(store_backend, Service(), lock=lock)
        return Store(Path(store_backend), lock=lock)

    yield open_store
