"""Real SMTP servers on 127.0.0.1 for the mail tests, as pytest fixtures.

Each fixture starts a server on a free port, yields a `Server` that records what it
received, and stops it afterwards. conftest.py imports the fixtures, so every test module
asks for them by name; import only the constants and classes you use.

TLS servers use certificates from a throwaway certificate authority (trustme); clients
trust it through `client_tls` (an `ssl.SSLContext` with verification on), never by
turning verification off.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

HOST = "127.0.0.1"
USERNAME = "friendtor"
PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Received:
    """One message as the server saw it: the envelope and the bytes after DATA."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes


@dataclass
class Recorder:
    """An aiosmtpd handler that accepts everything and remembers it."""

    received: list[Received] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.received.append(Received(envelope.mail_from, tuple(envelope.rcpt_tos), content))
        return "250 OK"


@dataclass
class DeferFirst(Recorder):
    """Answers the first DATA with a 451 (greylisting, a full queue), then accepts."""

    attempts: int = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.attempts += 1
        if self.attempts == 1:
            return "451 4.3.0 try again later"
        return await super().handle_DATA(server, session, envelope)


@dataclass
class NoSuchUser(Recorder):
    """Refuses every recipient with a 550, as for a mistyped address."""

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        return "550 5.1.1 no such user"


@dataclass
class Slow(Recorder):
    """Takes `delay` seconds to answer each DATA, like a busy relay.

    The message is recorded before the pause: a client that dies during it never sees the
    250, although the server has the message (the ambiguous crash the outbox must survive).
    The list may be read from another thread while the server appends to it.
    """

    delay: float = 0.2

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        await asyncio.sleep(self.delay)
        return reply


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    handler: Recorder

    @property
    def received(self) -> list[Received]:
        return self.handler.received


class LoopbackController(Controller):
    """An aiosmtpd Controller that can listen on port 0.

    Controller.start() pokes the new server on `self.port` to make it build its SMTP
    instance; with port 0 that poke would go nowhere, so the bound port is read back from
    the listening socket first. This avoids the race of picking a "free" port and hoping
    it is still free when the server binds it.
    """

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@contextmanager
def running(handler: Recorder, **kwargs) -> Iterator[Server]:
    controller = LoopbackController(handler, hostname=HOST, port=0, server_hostname="localhost",
                                    ready_timeout=5, **kwargs)
    controller.start()
    try:
        yield Server(HOST, controller.port, handler)
    finally:
        controller.stop()


# --- certificates ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def test_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def server_tls(test_ca: trustme.CA) -> ssl.SSLContext:
    """The servers' side: a certificate for 127.0.0.1 and localhost, signed by the test CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    test_ca.issue_cert(HOST, "localhost").configure_cert(context)
    return context


@pytest.fixture
def client_tls(test_ca: trustme.CA) -> ssl.SSLContext:
    """A client context that verifies certificates and hostnames, and trusts the test CA."""
    context = ssl.create_default_context()
    test_ca.configure_trust(context)
    return context


# --- SMTP servers ---------------------------------------------------------------------------

def _authenticate(server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                  auth_data: object) -> AuthResult:
    ok = (isinstance(auth_data, LoginPassword)
          and auth_data.login == USERNAME.encode() and auth_data.password == PASSWORD.encode())
    # handled=False: let aiosmtpd answer 535 itself (handled=True would mean "already answered").
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def plain_smtp() -> Iterator[Server]:
    """No TLS, no login: a relay on the same host."""
    with running(Recorder()) as server:
        yield server


@pytest.fixture
def submission_smtp(server_tls: ssl.SSLContext) -> Iterator[Server]:
    """A submission server: STARTTLS before anything else, then AUTH as USERNAME/PASSWORD."""
    with running(Recorder(), tls_context=server_tls, require_starttls=True,
                 auth_required=True, auth_require_tls=True, authenticator=_authenticate) as server:
        yield server


@pytest.fixture
def smtps(server_tls: ssl.SSLContext) -> Iterator[Server]:
    """Implicit TLS (what port 465 speaks): TLS from the first byte."""
    with running(Recorder(), ssl_context=server_tls) as server:
        yield server


@pytest.fixture
def deferring_smtp() -> Iterator[Server]:
    """Answers the first message with 451, accepts the next."""
    with running(DeferFirst()) as server:
        yield server


@pytest.fixture
def slow_smtp() -> Iterator[Server]:
    """No TLS, no login, 0.15 s per message: slow enough to interrupt a batch of sends."""
    with running(Slow(delay=0.15)) as server:
        yield server


@pytest.fixture
def refusing_smtp() -> Iterator[Server]:
    """Refuses every recipient with 550 5.1.1."""
    with running(NoSuchUser()) as server:
        yield server


# --- broken servers (plain sockets) --------------------------------------------------------

@contextmanager
def _socket_server(on_accept) -> Iterator[tuple[str, int]]:
    """A listening socket whose accepted connections go to `on_accept(conn)` in a thread."""
    listener = socket.create_server((HOST, 0))
    listener.settimeout(0.1)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)
            on_accept(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[:2]
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()
        for conn in held:
            conn.close()


@pytest.fixture
def hanging_up_server() -> Iterator[tuple[str, int]]:
    """Accepts a connection and closes it at once, before the greeting."""
    with _socket_server(lambda conn: conn.close()) as address:
        yield address


@pytest.fixture
def silent_server() -> Iterator[tuple[str, int]]:
    """Accepts a connection and never says a word (a hung server, a black-holing firewall)."""
    with _socket_server(lambda conn: None) as address:
        yield address


@pytest.fixture
def closed_port() -> Iterator[tuple[str, int]]:
    """A port where nothing listens: bound but not listening, so connecting is refused
    and no other process can take the port during the test."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        yield sock.getsockname()[:2]
