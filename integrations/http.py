"""HTTP for the gateways that read or write calendars over it (feeds, CalDAV): one bounded
read and one map from low-level failures to friendtor's errors.

Bounded by default: every answer has a size limit, checked while reading, and one deadline
for the whole answer (twice the per-wait `timeout`), so a server that trickles a byte at a
time cannot hold a tick up, and one that sends a gigabyte cannot fill the memory.

The one error map (`failure`) turns whatever the standard library raises (urllib,
http.client, socket, ssl) into one line in words, and whether it is worth trying again.
Each gateway then says which of friendtor's errors that is, through the `fail` function it
hands in (`Fail`): a feed's failure is an outage, a publisher's a SendError. The texts
never hold the URL: feed URLs are secrets, and `where` is how the gateway names the server.

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
    return " ".join(text.split())[:limit]


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
        return f"the URL for {where} cannot be used ({one_line(str(exc))})", False
    if isinstance(exc, http.client.HTTPException):  # a garbled status line, IncompleteRead
        return f"{where} sent a broken answer ({one_line(str(exc)) or type(exc).__name__})", True
    raise exc  # anything else is a bug: let it reach the debug log with its traceback


_LOW_LEVEL = (OSError, ValueError, http.client.HTTPException)  # urllib.error.URLError is an OSError


def read_bounded(response: Any, *, where: str, timeout: float, max_bytes: int, fail: Fail,
                 deadline: float, sock: Callable[[], socket.socket | None] | None = None) -> bytes:
    """The whole body of `response`, or `fail(...)`: over `max_bytes`, past `deadline`
    (time.monotonic()), or cut off before its Content-Length.

    `sock` gives the connection's socket, whose per-wait timeout is shortened to what is
    left before the deadline (http.client); without it the deadline is checked between reads.
    """
    chunks, size = [], 0
    while size <= max_bytes:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise fail(f"{where} took longer than {2 * timeout:g} s to send its answer", True)
        wait = min(timeout, remaining)
        if sock is not None and sock() is not None:
            sock().settimeout(wait)
        try:
            # read1: whatever has arrived, so an answer that trickles a byte at a time still
            # meets the deadline check (read(n) would wait for all n bytes).
            chunk = response.read1(min(_CHUNK, max_bytes + 1 - size))
        except (TimeoutError, socket.timeout):
            if wait < timeout:  # the wait was cut short by the deadline: say which budget ran out
                raise fail(f"{where} took longer than {2 * timeout:g} s to send its answer", True) from None
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


def get(url: str, headers: Mapping[str, str], *, where: str, timeout: float, max_bytes: int,
        fail: Fail) -> Response:
    """GET `url` with urllib (redirects followed). Every HTTP status is a Response (a 4xx or
    5xx with an empty body: it is not needed); no answer at all is `fail(...)`."""
    request = urllib.request.Request(url, headers={"User-Agent": "friendtor", **headers})
    deadline = time.monotonic() + 2 * timeout  # each wait is bounded by `timeout`; the whole read by twice that
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (scheme checked in config)
            body = read_bounded(response, where=where, timeout=timeout, max_bytes=max_bytes, fail=fail,
                                deadline=deadline)
            return Response(response.status, response.reason, _lower(response.headers.items()), body)
    except urllib.error.HTTPError as exc:
        exc.close()  # the error body is not needed
        return Response(exc.code, str(exc.reason), _lower(exc.headers.items() if exc.headers else ()), b"")
    except _LOW_LEVEL as exc:
        raise fail(*failure(exc, where, timeout)) from None


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
    deadline = time.monotonic() + 2 * timeout  # each wait `timeout`, the whole answer twice that
    if scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname, port, timeout=timeout, context=ssl_context or ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(parts.hostname, port, timeout=timeout)
    try:
        conn.request(method, target, body=body, headers={"User-Agent": "friendtor", **headers})
        response = conn.getresponse()
        data = read_bounded(response, where=where, timeout=timeout, max_bytes=max_bytes, fail=fail,
                            deadline=deadline, sock=lambda: conn.sock)
        return Response(response.status, response.reason, _lower(response.getheaders()), data)
    except _LOW_LEVEL as exc:
        raise fail(*failure(exc, where, timeout)) from None
    finally:
        conn.close()


def _lower(items) -> dict[str, str]:
    return {k.lower(): v for k, v in items}
