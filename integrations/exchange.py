"""One deadline for a whole exchange with a peer, and a way to abort every exchange at once.

A socket timeout bounds each wait, not the exchange: a server that trickles its greeting
or its headers a byte at a time, each byte inside the timeout, holds the tick for as long
as it likes. So every exchange with a peer (an SMTP session, an HTTP request, a Google
call) runs inside an `Exchange`: a watchdog thread that, at the deadline, shuts down the
exchange's sockets. Shutting a socket down (not closing it: the library still owns the file
descriptor) makes any read or write in progress return at once, whatever library is doing
it, TLS included, and the library then fails the way it does when a peer hangs up. The
gateway asks `expired` / `aborted` to say which it was.

`abort_all()` is the SIGTERM hook (the CLI hands it to the service's signal handler): it
shuts down every exchange in flight and makes any exchange started afterwards abort at
once, so the process stops within a few seconds even mid-exchange. The gateway then raises
its usual error, and the delivery loop, which sees `stop`, leaves the message pending.

It must be safe in a signal handler, which runs in the main thread between two bytecodes,
possibly while that thread is inside this module: so no locks, only operations that are
atomic under the GIL (set add/discard, copying a set, setting an attribute).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

# The exchanges in flight, for abort_all(); and whether the process is stopping.
_open: set[Exchange] = set()
_stopping = False


class Exchange:
    """A deadline of `seconds` for everything done inside `with Exchange(...) as ex:`.

    Hand it the exchange's sockets with `watch(sock)` as soon as they exist, or a callable
    that shuts the exchange's connections down with `on_cut(fn)` (for a library whose
    sockets come and go, like httplib2's connection pool).
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.expired = False   # the deadline passed and the sockets were shut down
        self.aborted = False   # abort_all() (SIGTERM) shut them down
        self._socks: list[socket.socket] = []
        self._cuts: list[Callable[[], None]] = []
        self._timer: threading.Timer | None = None

    @property
    def cut(self) -> bool:
        return self.expired or self.aborted

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def __enter__(self) -> Exchange:
        _open.add(self)
        if _stopping:
            self.abort()
        self._timer = threading.Timer(max(0.0, self.remaining()), self._expire)
        self._timer.daemon = True  # never keeps the process alive
        self._timer.start()
        return self

    def __exit__(self, *exc_info) -> None:
        if self._timer is not None:
            self._timer.cancel()
        _open.discard(self)
        for dup in self._socks:
            dup.close()
        self._socks = []

    def watch(self, sock: socket.socket) -> None:
        """Cut `sock` at the deadline. A duplicate of its descriptor is kept, because a
        shutdown acts on the connection, not the descriptor: it works even after TLS has
        wrapped (and detached) the original socket object, and never touches a descriptor
        the library closed and the system may have reused."""
        try:
            dup = socket.fromfd(sock.fileno(), sock.family, sock.type)
        except OSError:
            return  # already closed: nothing left to cut
        self._socks.append(dup)
        if self.cut:
            _shut(dup)

    def on_cut(self, fn: Callable[[], None]) -> None:
        self._cuts.append(fn)
        if self.cut:
            _call(fn)

    def _expire(self) -> None:
        self.expired = True
        self._shut_all()

    def abort(self) -> None:
        self.aborted = True
        self._shut_all()

    def _shut_all(self) -> None:
        for dup in list(self._socks):
            _shut(dup)
        for fn in list(self._cuts):
            _call(fn)


def abort_all() -> None:
    """SIGTERM: cut every exchange in flight and every one started from now on."""
    global _stopping
    _stopping = True
    for exchange in list(_open):
        exchange.abort()


def stopping() -> bool:
    return _stopping


def resume() -> None:
    """Exchanges may run again (tests that called abort_all in-process)."""
    global _stopping
    _stopping = False


def shut(sock: socket.socket | None) -> None:
    """Shuts a connection down in both directions, whatever it is wrapped in; never raises.
    Called on the socket class itself so an SSLSocket's TLS state is left alone (its owner
    is reading in another thread)."""
    if sock is not None:
        _shut(sock)


def _shut(sock: socket.socket) -> None:
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except (OSError, ValueError):
        pass  # already closed or never connected: nothing to cut


def _call(fn: Callable[[], None]) -> None:
    try:
        fn()
    except Exception:  # noqa: BLE001 (cutting is best effort; the deadline error follows anyway)
        pass
