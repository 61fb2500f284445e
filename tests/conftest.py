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
# once per backend; issue 11 adds "postgresql". Tests of one backend's own files (the TinyDB
# journal, its lock file) open `Store` directly instead.
STORE_BACKENDS = ("tinydb",)

OpenStore = Callable[..., "Store"]


@pytest.fixture(params=STORE_BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenStore]:
    """Factory that opens this test's state store on the backend under test: `store()` opens it
    as the service does (owning it), `store(lock=False)` as a reader beside the owner. Each call
    opens the same state again, so a test can commit, close and reopen. Use it in a `with`."""
    from scheduler.app.store import Store

    path = tmp_path / "store" / "state.json"

    def open_store(*, lock: bool = True) -> Store:
        if request.param == "tinydb":
            return Store(path, lock=lock)
        raise AssertionError(f"no store backend {request.param!r}")

    yield open_store
