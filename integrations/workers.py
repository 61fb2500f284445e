"""Reading calendars in worker processes, so one member's calendar has a wall-clock deadline
and a memory limit that hold even when a library call never returns.

The budget inside `busy_from_ics` (occurrences, seconds) is checked between steps of the
parser and the expander; a single call into icalendar or dateutil that runs for minutes, or
allocates a gigabyte, is out of its reach. So each read runs in a forked worker: the parent
waits at most its deadline, then kills that worker and starts a fresh one on the next read.
A worker that dies (MemoryError under its RLIMIT_AS, a crash) costs only the member whose
calendar it was reading.

The pool is small (one worker per core, at most `SIZE`) and lives for the process: forked
workers start in a few milliseconds and have icalendar already imported, so a normal read
costs one round trip through a pipe. Workers are daemonic, so multiprocessing ends them at
exit (`run --once`, SIGTERM through SystemExit); `shutdown()` ends them at once (tests), and
a worker whose parent disappeared (SIGKILL) notices within a second and exits.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import os
import pickle
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from typing import Any

from integrations import exchange

SIZE = max(1, min(4, os.cpu_count() or 1))
# Extra wall-clock time for a read on top of its budget: starting a worker, the pipe, pickling.
SLACK_SECONDS = 1.0

_MEMORY = "memory"
_CRASH = "crash"
_STOPPED = "stopped"      # the service is stopping (SIGTERM): the read was cut, not failed
STOP_CHECK_SECONDS = 0.25


class Outcome:
    """What one read in a worker gave: `value`, or `failure` ("time", "memory", "crash")."""

    def __init__(self, value: Any = None, failure: str | None = None):
        self.value = value
        self.failure = failure


def _limit_memory(megabytes: int) -> None:
    """RLIMIT_AS at what the worker already maps (inherited from the parent) plus `megabytes`:
    the service's own size is not the calendar's fault."""
    import resource

    try:
        with open("/proc/self/statm", "rb") as f:
            mapped = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        mapped = 0
    limit = mapped + megabytes * 1024 * 1024
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))


def _close_inherited(keep: int) -> None:
    """Close every descriptor the fork copied from the service except the pipe and stdio: a
    worker must not keep the state lock (flock) held after the service died, nor its sockets."""
    os.closerange(3, keep)
    os.closerange(keep + 1, os.sysconf("SC_OPEN_MAX") if os.sysconf("SC_OPEN_MAX") > 0 else 65536)


def _serve(conn: Connection, parent: int, megabytes: int) -> None:
    """A worker's loop: (function, args) in, ("ok", value) | ("memory",) | ("crash", the
    exception's type name, for the log) out."""
    _close_inherited(conn.fileno())
    _limit_memory(megabytes)
    while True:
        try:
            if not conn.poll(1.0):
                if os.getppid() != parent:  # the service was killed: do not linger
                    return
                continue
            raw = conn.recv_bytes()
        except (EOFError, OSError):
            return
        try:
            task = pickle.loads(raw)
            if task is None:
                return
            func, args = task
            reply: tuple = ("ok", func(*args))
        except MemoryError:
            reply = (_MEMORY,)
        except BaseException:  # noqa: BLE001 - a bug in a reader costs only its member; the parent logs it
            # Only the exception's type: its text may quote the calendar.
            reply = (_CRASH, type(sys.exc_info()[1]).__name__)
        try:
            conn.send(reply)
        except MemoryError:
            with contextlib.suppress(Exception):
                conn.send((_MEMORY,))
        except (OSError, EOFError):
            return


class _Worker:
    def __init__(self, megabytes: int):
        ctx = multiprocessing.get_context("fork")
        self.conn, child = ctx.Pipe()
        self.megabytes = megabytes
        self.process = ctx.Process(target=_serve, args=(child, os.getpid(), megabytes), daemon=True,
                                   name="friendtor-calendar")
        self.process.start()
        child.close()

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.process.kill()
        with contextlib.suppress(Exception):
            self.process.join(5)
        with contextlib.suppress(Exception):
            self.conn.close()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.send(None)
        with contextlib.suppress(Exception):
            self.process.join(1)
        self.kill()


class Pool:
    """Idle workers, reused; a worker that overran or died is killed and dropped."""

    def __init__(self) -> None:
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        self._owner = os.getpid()

    def _take(self, megabytes: int) -> _Worker:
        with self._lock:
            if self._owner != os.getpid():  # forked: the workers belong to the parent
                self._idle, self._owner = [], os.getpid()
            while self._idle:
                worker = self._idle.pop()
                if worker.megabytes == megabytes and worker.process.is_alive():
                    return worker
                worker.kill()
        return _Worker(megabytes)

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            if len(self._idle) < SIZE:
                self._idle.append(worker)
                return
        worker.stop()

    def run(self, func: Callable[..., Any], args: tuple, *, seconds: float, megabytes: int) -> Outcome:
        """`func(*args)` in a worker, waiting at most `seconds` (plus a little slack)."""
        return self.map([(func, args, seconds)], megabytes=megabytes)[0]

    def map(self, tasks: list[tuple[Callable[..., Any], tuple, float]], *, megabytes: int) -> list[Outcome]:
        """Each (func, args, seconds) in a worker, `SIZE` at a time, each cut at its own deadline:
        a group's calendars are read side by side, and one slow calendar delays nobody else's."""
        outcomes: list[Outcome | None] = [None] * len(tasks)
        waiting = list(enumerate(tasks))[::-1]
        running: dict[Connection, tuple[int, _Worker, float]] = {}
        try:
            while waiting or running:
                while waiting and len(running) < SIZE:
                    i, (func, args, seconds) = waiting.pop()
                    worker = self._take(megabytes)
                    try:
                        worker.conn.send((func, args))
                    except (OSError, EOFError):
                        worker.kill()
                        outcomes[i] = Outcome(failure=_CRASH)
                        continue
                    running[worker.conn] = (i, worker, time.monotonic() + seconds + SLACK_SECONDS)
                if not running:
                    continue
                soonest = min(d for _, _, d in running.values())
                # Waited in short slices: SIGTERM (exchange.abort_all) must not wait for a
                # calendar's whole deadline (40 s for a feed).
                ready = wait(list(running), min(max(soonest - time.monotonic(), 0), STOP_CHECK_SECONDS))
                if exchange.stopping():
                    for conn, (i, worker, _) in list(running.items()):
                        del running[conn]
                        worker.kill()
                        outcomes[i] = Outcome(failure=_STOPPED)
                    for i, _ in waiting:
                        outcomes[i] = Outcome(failure=_STOPPED)
                    waiting = []
                    break
                for conn in ready:
                    i, worker, _ = running.pop(conn)
                    outcomes[i] = self._collect(worker)
                now = time.monotonic()
                for conn, (i, worker, deadline) in list(running.items()):
                    if deadline <= now:
                        del running[conn]
                        worker.kill()
                        outcomes[i] = Outcome(failure="time")
        finally:
            for _, worker, _ in running.values():  # interrupted (KeyboardInterrupt, SystemExit)
                worker.kill()
        return [o if o is not None else Outcome(failure=_CRASH) for o in outcomes]

    def _collect(self, worker: _Worker) -> Outcome:
        try:
            reply = worker.conn.recv()
        except (EOFError, OSError):
            worker.kill()  # the worker died (a crash in C code, a signal)
            return Outcome(failure=_CRASH)
        if reply[0] == "ok":
            self._give_back(worker)
            return Outcome(reply[1])
        worker.kill()  # a worker that ran out of memory may hold a heap in a bad state
        return Outcome(failure=reply[0], value=reply[1] if len(reply) > 1 else None)

    def shutdown(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.stop()


POOL = Pool()


def shutdown() -> None:
    """End every idle worker now (a busy one is killed by the read that waits on it)."""
    POOL.shutdown()


atexit.register(shutdown)
