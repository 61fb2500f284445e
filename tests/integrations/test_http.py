"""The HTTP helper shared by feeds and CalDAV (integrations/http.py): the bounded read (size,
one deadline for the whole answer, a cut-off answer) over both openers against a real
loopback server, and the one map from low-level failures to (text, transient).
"""

from __future__ import annotations

import http.client
import socket
import ssl
import struct
import threading
import time
import urllib.error
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from integrations import http as h
from scheduler.core.errors import FriendtorError, SendError

TIMEOUT = 0.5
LIMIT = 1024
WHERE = "the test server"


class _Answers(BaseHTTPRequestHandler):
    """Answers /<kind> as the kind says: good, huge, trickle, cut, reset, slow, missing."""

    protocol_version = "HTTP/1.1"

    def _any(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        kind = self.path.strip("/")
        if kind == "slow":
            time.sleep(TIMEOUT * 3)
        if kind == "reset":  # SO_LINGER 0: close() sends a TCP RST
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        if kind in ("trickle", "cut"):
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            for _ in range(10 if kind == "cut" else 100):
                self.wfile.write(b"x")
                self.wfile.flush()
                if kind == "trickle":
                    time.sleep(0.05)
            if kind == "cut":
                self.connection.shutdown(socket.SHUT_WR)
                self.close_connection = True
            return
        body = {"huge": b"y" * (LIMIT * 4), "missing": b"not here"}.get(kind, f"{self.command} ok".encode())
        self.send_response(404 if kind == "missing" else 200, "Gone Fishing" if kind == "missing" else None)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", '"e1"')
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = _any  # noqa: N815 (http.server's naming)

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass  # reset on purpose

    def log_message(self, *args):
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass


@pytest.fixture(scope="module")
def server():
    """A loopback HTTP server; yields its base URL."""
    srv = _Server(("127.0.0.1", 0), _Answers)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def fail(text: str, transient: bool) -> SendError:
    """A gateway's error factory, as the CalDAV publisher's: text and transient kept as given."""
    return SendError(text, transient=transient)


def through_get(url: str) -> h.Response:
    return h.get(url, {}, where=WHERE, timeout=TIMEOUT, max_bytes=LIMIT, fail=fail)


def through_request(url: str) -> h.Response:
    return h.request("PUT", url, b"body", {}, where=WHERE, timeout=TIMEOUT, max_bytes=LIMIT, fail=fail)


OPENERS = [pytest.param(through_get, id="urllib"), pytest.param(through_request, id="http.client")]


@pytest.mark.parametrize("open_", OPENERS)
def test_a_good_answer_is_read_whole_with_lower_case_headers(server, open_):
    """Status, reason, headers (names in lower case) and the whole body come back."""
    answer = open_(f"{server}/good")
    assert answer.status == 200 and answer.body.endswith(b" ok") and answer.headers["etag"] == '"e1"'


@pytest.mark.parametrize("open_", OPENERS)
def test_an_http_error_status_is_an_answer_not_a_failure(server, open_):
    """A 404 is the server's answer: the gateway decides what it means."""
    answer = open_(f"{server}/missing")
    assert answer.status == 404 and answer.reason == "Gone Fishing"


BOUNDED = [
    ("huge", False, f"{WHERE} sent an answer larger than 1 KB"),
    ("trickle", True, f"{WHERE} took longer than 0.5 s to send its answer"),
    ("cut", True, f"{WHERE} hung up after 10 bytes of its answer"),
    ("slow", True, f"{WHERE} did not answer within 0.5 s"),
    ("reset", True, f"could not talk to {WHERE}: "),
]


@pytest.mark.parametrize("open_", OPENERS)
@pytest.mark.parametrize(("kind", "transient", "text"), BOUNDED, ids=[k for k, _, _ in BOUNDED])
def test_budgets_and_broken_answers_go_through_the_gateways_fail(server, open_, kind, transient, text):
    """Over the size limit, past the deadline, cut off, silent or reset: the gateway's own error,
    with the words of the one map, within the deadline."""
    started = time.monotonic()
    with pytest.raises(SendError) as caught:
        open_(f"{server}/{kind}")
    assert time.monotonic() - started < 2.5
    assert str(caught.value).startswith(text), str(caught.value)
    assert caught.value.transient is transient
    assert "127.0.0.1" not in str(caught.value)


def test_a_refused_connection(closed_port):
    """Nobody listening: "connection refused", worth trying again, from both openers."""
    for open_ in (through_get, through_request):
        with pytest.raises(SendError, match=f"^could not connect to {WHERE}: connection refused$") as caught:
            open_(f"http://127.0.0.1:{closed_port[1]}/good")
        assert caught.value.transient


def _cert_error() -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.verify_message, exc.reason = "unable to get local issuer certificate", "CERTIFICATE_VERIFY_FAILED"
    return exc


MAP = [
    (TimeoutError("timed out"), True, f"{WHERE} did not answer within 0.5 s"),
    (socket.timeout(), True, f"{WHERE} did not answer within 0.5 s"),
    (urllib.error.URLError(TimeoutError()), True, f"{WHERE} did not answer within 0.5 s"),
    (ConnectionRefusedError(111, "Connection refused"), True, f"could not connect to {WHERE}: connection refused"),
    (urllib.error.URLError(ConnectionRefusedError(111, "Connection refused")), True,
     f"could not connect to {WHERE}: connection refused"),
    (ConnectionResetError(104, "Connection reset by peer"), True,
     f"could not talk to {WHERE}: Connection reset by peer"),
    (urllib.error.URLError("no host given"), True, f"could not talk to {WHERE}: no host given"),
    (_cert_error(), False, f"the certificate of {WHERE} could not be verified (unable to get local issuer "
                           "certificate); if it uses a private certificate authority, install its CA certificate "
                           "in the system trust store"),
    (http.client.InvalidURL("URL can't contain control characters"), False,
     f"the URL for {WHERE} cannot be used (URL can't contain control characters)"),
    (http.client.IncompleteRead(b"abc", 10), True,
     f"{WHERE} sent a broken answer (IncompleteRead(3 bytes read, 10 more expected))"),
    (http.client.BadStatusLine("garbage\r\n"), True, f"{WHERE} sent a broken answer (garbage)"),
]


@pytest.mark.parametrize(("exc", "transient", "text"), MAP,
                         ids=[f"{type(e).__name__}-{i}" for i, (e, _, _) in enumerate(MAP)])
def test_the_one_error_map(exc, transient, text):
    """Each low-level failure becomes one line in words and whether trying again may help."""
    assert h.failure(exc, WHERE, TIMEOUT) == (text, transient)


def test_anything_else_is_a_bug_and_is_not_mapped():
    """An exception the map does not know propagates, traceback and all, to the debug log."""
    with pytest.raises(KeyError):
        h.failure(KeyError("x"), WHERE, TIMEOUT)


def test_fail_must_build_a_friendtor_error():
    """The Fail type promises the caller's error class: one of friendtor's (core/errors.py)."""
    assert isinstance(fail("x", True), FriendtorError)
