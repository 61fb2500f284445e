"""HTTP for the gateways that read or write calendars over it (feeds, CalDAV): one bounded
read and one map from low-level failures to friendtor's errors.

Bounded by default: every answer has a size limit, checked while reading, and one deadline,
`timeout`, for the whole exchange (connect, TLS, status line, headers and body: an
`Exchange` shuts the socket down when it passes), so a server that trickles a byte at a
time, headers included, cannot hold a tick up, and one that sends a gigabyte cannot fill
the memory. SIGTERM cuts an exchange in flight the same way (exchange.abort_all).

The one error map (`failure`) turns whatever the standard library raises (urllib,
http.client, socket, ssl) into one line in words, and whether it is worth trying again.
Each gateway then says which of friendtor's errors that is, through the `fail` function it
hands in (`Fail`): a feed's failure is an outage, a publisher's a SendError. The texts
never hold the URL: feed URLs are secrets, and `where` is how the gateway names the server;
what the server says (a reason phrase, a garbled status line) is scrubbed (secrets.scrub).

Feeds use urllib (it follows redirects, as calendar apps do for feed addresses); CalDAV
uses http.client, one connection per request, without redirects (a moved calendar is a
setup fix, reported as such).
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from scheduler.core.errors import FriendtorError

from .exchange import Exchange
from .secrets import scrub

_CHUNK = 64 * 1024

# Builds a gateway's error from (one line in words, whether trying again later may work).
Fail = Callable[[str, bool], FriendtorError]


@dataclass(frozen=True)
class Response:
    status: int
    reason: str
    headers: dict[str, str]  # lower-case names
    body: bytes


def size_text(n: int) -> str:
    return f"{n // (1024 * 1024)} MB" if n >= 1024 * 1024 else f"{n // 1024} KB"


def one_line(text: str, limit: int = 160) -> str:
    """Someone else's text (a server's reason phrase, an error body) fit to show: one line,
    no control characters, no encoded blob or URL secret, at most `limit` characters."""
    return scrub(text, limit=limit)


def failure(exc: BaseException, where: str, timeout: float) -> tuple[str, bool]:
    """The one error map: a low-level failure to get an answer from `where` (e.g. "the
    calendar feed", "the CalDAV server example.org") as (text, transient).

    Transient: the same request may well work later (time-outs, resets, refusals, a broken
    answer). Not transient: a certificate that does not verify, a URL that cannot be sent;
    an operator must act.
    """
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        # urllib wraps the socket or TLS error; a plain string reason is already in words.
        if isinstance(exc.reason, BaseException):
            return failure(exc.reason, where, timeout)
        return f"could not talk to {where}: {one_line(str(exc.reason))}", True
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return f"{where} did not answer within {timeout:g} s", True
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"the certificate of {where} could not be verified ({exc.verify_message or exc.reason}); if it "
                "uses a private certificate authority, install its CA certificate in the system trust store",
                False)
    if isinstance(exc, ConnectionRefusedError):
        return f"could not connect to {where}: connection refused", True
    if isinstance(exc, OSError):  # resets, unreachable hosts, other TLS failures
        return f"could not talk to {where}: {one_line(exc.strerror or str(exc)) or type(exc).__name__}", True
    if isinstance(exc, (http.client.InvalidURL, ValueError)):  # a control or non-ASCII character in the URL
        # The library quotes the URL after its words ("... characters. '/path?token' ..."): keep the words.
        words = str(exc).split(" '")[0].rstrip(" .:")
        return f"the URL for {where} cannot be used ({one_line(words)})", False
    if isinstance(exc, http.client.HTTPException):  # a garbled status line, IncompleteRead
        return f"{where} sent a broken answer ({one_line(str(exc), 80) or type(exc).__name__})", True
    raise exc  # anything else is a bug: let it reach the debug log with its traceback


_LOW_LEVEL = (OSError, ValueError, http.client.HTTPException)  # urllib.error.URLError is an OSError


def read_bounded(response: Any, *, where: str, timeout: float, max_bytes: int, fail: Fail,
                 deadline: float, sock: Callable[[], socket.socket | None] | None = None) -> bytes:
    """The whole body of `response`, or `fail(...)`: over `max_bytes`, past `deadline`
    (time.monotonic(), `timeout` after the exchange began), or cut off before its Content-Length.

    `sock` gives the connection's socket, whose per-wait timeout is shortened to what is
    left before the deadline (http.client); without it the deadline is checked between reads.
    """
    chunks, size = [], 0
    while size <= max_bytes:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise fail(_too_long(where, timeout), True)
        wait = min(timeout, remaining)
        if sock is not None and sock() is not None:
            sock().settimeout(wait)
        try:
            # read1: whatever has arrived, so an answer that trickles a byte at a time still
            # meets the deadline check (read(n) would wait for all n bytes).
            chunk = response.read1(min(_CHUNK, max_bytes + 1 - size))
        except (TimeoutError, socket.timeout):
            if wait < timeout:  # the wait was cut short by the deadline: say which budget ran out
                raise fail(_too_long(where, timeout), True) from None
            raise
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > max_bytes:
        raise fail(f"{where} sent an answer larger than {size_text(max_bytes)}", False)
    if response.length:  # read1 returns b"" when the server hangs up early
        raise fail(f"{where} hung up after {size} bytes of its answer", True)
    return b"".join(chunks)


def _too_long(where: str, timeout: float) -> str:
    return f"{where} took longer than {timeout:g} s to send its answer"


def _cut(exchange: Exchange, where: str, timeout: float, answering: bool) -> tuple[str, bool]:
    """Why an exchange that its watchdog cut failed: SIGTERM, or the deadline before the
    status and headers were in (`answering` False) or while the body came."""
    if exchange.aborted:
        return f"the exchange with {where} was interrupted: friendtor is stopping", True
    return (_too_long(where, timeout) if answering else f"{where} did not answer within {timeout:g} s"), True


def get(url: str, headers: Mapping[str, str], *, where: str, timeout: float, max_bytes: int,
        fail: Fail) -> Response:
    """GET `url` with urllib (redirects followed, each within the one deadline). Every HTTP
    status is a Response (a 4xx or 5xx with an empty body: it is not needed); no answer at
    all is `fail(...)`."""
    request = urllib.request.Request(url, headers={"User-Agent": "friendtor", **headers})
    answering = False
    with Exchange(timeout) as exchange:
        opener = urllib.request.build_opener(_WatchedHTTPHandler(exchange), _WatchedHTTPSHandler(exchange))
        try:
            with opener.open(request, timeout=timeout) as response:
                answering = not exchange.cut  # headers cut short still "arrive": the cut decides
                body = read_bounded(response, where=where, timeout=timeout, max_bytes=max_bytes, fail=fail,
                                    deadline=exchange.deadline)
                if exchange.cut:  # a body without a length, cut short, reads as complete: it is not
                    raise fail(*_cut(exchange, where, timeout, answering))
                return Response(response.status, one_line(response.reason or "", 80),
                                _lower(response.headers.items()), body)
        except urllib.error.HTTPError as exc:
            exc.close()  # the error body is not needed
            return Response(exc.code, one_line(str(exc.reason), 80),
                            _lower(exc.headers.items() if exc.headers else ()), b"")
        except _LOW_LEVEL as exc:
            why = _cut(exchange, where, timeout, answering) if exchange.cut else failure(exc, where, timeout)
            raise fail(*why) from None
        except FriendtorError:
            if exchange.cut:  # read_bounded saw the cut as a hang-up: say which it was
                raise fail(*_cut(exchange, where, timeout, answering)) from None
            raise


def request(method: str, url: str, body: bytes | None, headers: Mapping[str, str], *, where: str,
            timeout: float, max_bytes: int, fail: Fail,
            ssl_context: ssl.SSLContext | None = None) -> Response:
    """One request with http.client on a connection of its own (no redirects followed)."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    # Quoted so a config URL with spaces or accents still makes an ASCII request line;
    # existing %-escapes and the characters RFC 3986 allows in a path are kept.
    path = urllib.parse.quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    target = path + (f"?{parts.query}" if parts.query else "")
    with Exchange(timeout) as exchange:
        if scheme == "https":
            conn: http.client.HTTPConnection = _WatchedHTTPS(
                parts.hostname, port, timeout=timeout, context=ssl_context or ssl.create_default_context())
        else:
            conn = _WatchedHTTP(parts.hostname, port, timeout=timeout)
        conn.exchange = exchange  # type: ignore[attr-defined]
        answering = False
        try:
            conn.request(method, target, body=body, headers={"User-Agent": "friendtor", **headers})
            response = conn.getresponse()
            answering = not exchange.cut  # headers cut short still "arrive": the cut decides
            data = read_bounded(response, where=where, timeout=timeout, max_bytes=max_bytes, fail=fail,
                                deadline=exchange.deadline, sock=lambda: conn.sock)
            if exchange.cut:
                raise fail(*_cut(exchange, where, timeout, answering))
            return Response(response.status, one_line(response.reason or "", 80), _lower(response.getheaders()),
                            data)
        except _LOW_LEVEL as exc:
            why = _cut(exchange, where, timeout, answering) if exchange.cut else failure(exc, where, timeout)
            raise fail(*why) from None
        except FriendtorError:
            if exchange.cut:
                raise fail(*_cut(exchange, where, timeout, answering)) from None
            raise
        finally:
            conn.close()


# Connections whose socket the exchange watches from the moment it is connected (before TLS).

class _WatchedHTTP(http.client.HTTPConnection):
    exchange: Exchange

    def connect(self) -> None:
        self.timeout = max(0.1, min(self.timeout, self.exchange.remaining()))  # the connect waits what is left
        super().connect()
        self.exchange.watch(self.sock)


class _WatchedHTTPS(http.client.HTTPSConnection):
    exchange: Exchange

    def connect(self) -> None:
        # HTTPSConnection.connect connects (HTTPConnection.connect, watched here) then wraps in TLS.
        self.timeout = max(0.1, min(self.timeout, self.exchange.remaining()))
        http.client.HTTPConnection.connect(self)
        self.exchange.watch(self.sock)
        server_hostname = self._tunnel_host or self.host
        self.sock = self._context.wrap_socket(self.sock, server_hostname=server_hostname)


def _watched(base: type, exchange: Exchange) -> Callable[..., http.client.HTTPConnection]:
    def build(*args, **kwargs):
        conn = base(*args, **kwargs)
        conn.exchange = exchange
        return conn
    return build


class _WatchedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, exchange: Exchange):
        super().__init__()
        self.exchange = exchange

    def http_open(self, req):
        return self.do_open(_watched(_WatchedHTTP, self.exchange), req)


class _WatchedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, exchange: Exchange):
        super().__init__()
        self.exchange = exchange

    def https_open(self, req):
        return self.do_open(_watched(_WatchedHTTPS, self.exchange), req, context=self._context)


def _lower(items) -> dict[str, str]:
    return {k.lower(): v for k, v in items}
