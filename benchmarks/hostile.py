"""Benchmark: one service tick over 40 groups when two of them are hostile.

    python benchmarks/hostile.py              # 40 groups: one RRULE bomb, one trickling feed
    python benchmarks/hostile.py --groups 10  # fewer groups, same two hostile ones

Every group is the example's K Club (12 members, each with a local .ics calendar), copied
under another name. In group 1 the first member's calendar is a 300-byte event with
RRULE:FREQ=SECONDLY; in group 2 it is a feed on a loopback server that sends its headers
one byte every 2 s for two minutes. A third run uses the same 40 groups with no hostile
input, as the baseline. Each tick is `friendtor run --now 2026-11-20T12:00:00Z` (invites
for the December meeting are due) into a Maildir outbox, in this process.

Prints, for each run: the tick's wall-clock time, the invites per group (12 expected for
every group: the hostile members are "calendar unknown", not a reason to stop), and the
reasons the two hostile members got. Asserts nothing; docs/performance.md quotes the numbers.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scheduler.cli.main import main  # noqa: E402

EXAMPLE = ROOT / "config" / "example"
MAYA = "calendars/maya-chen.ics"
NOW = "2026-11-20T12:00:00Z"
BOMB = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//x//EN\r\nBEGIN:VEVENT\r\nUID:bomb@x\r\n"
        "DTSTART:20261201T000000Z\r\nDTEND:20261201T000001Z\r\nRRULE:FREQ=SECONDLY\r\nSUMMARY:x\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n")


def trickling_server(stop: threading.Event) -> str:
    """A loopback HTTP server that sends its headers one byte every 2 s."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)

    def trickle(conn: socket.socket) -> None:
        with conn:
            for byte in b"HTTP/1.1 200 OK\r\nContent-Type: text/calendar\r\nX-Padding: " + b"x" * 100:
                if stop.wait(2):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            threading.Thread(target=trickle, args=(conn,), daemon=True).start()
        listener.close()

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}/secret/feed.ics"


def build(folder: Path, groups: int, hostile: bool, feed: str) -> None:
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("var"))
    text = (folder / "groups" / "k-club.toml").read_text()
    (folder / "groups" / "k-club.toml").unlink()
    (folder / "calendars" / "bomb.ics").write_text(BOMB)
    for n in range(1, groups + 1):
        body = text.replace('name = "K Club"', f'name = "Group {n:02d}"', 1)
        if hostile and n == 1:
            body = body.replace(f'calendar = "{MAYA}"', 'calendar = "calendars/bomb.ics"', 1)
        if hostile and n == 2:
            body = body.replace(f'calendar = "{MAYA}"', f'calendar = "{feed}"', 1)
        (folder / "groups" / f"g{n:02d}.toml").write_text(body)


def tick(folder: Path) -> tuple[float, collections.Counter, int]:
    started = time.monotonic()
    with contextlib.redirect_stdout(io.StringIO()):  # the tick's own report: not the benchmark's
        code = main(["run", "--now", NOW, "--config", str(folder), "--log-format", "json"])
    elapsed = time.monotonic() - started
    invites: collections.Counter = collections.Counter()
    for path in (folder / "var" / "outbox" / "new").iterdir():
        m = re.search(rb"Subject: Invitation: Group (\d+)", path.read_bytes())
        if m:
            invites[int(m.group(1))] += 1
    return elapsed, invites, code


def main_(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--groups", type=int, default=40)
    args = parser.parse_args(argv)
    stop = threading.Event()
    feed = trickling_server(stop)
    with tempfile.TemporaryDirectory() as tmp:
        for label, hostile in (("baseline (no hostile input)", False), ("RRULE bomb + trickling feed", True)):
            folder = Path(tmp) / label.split()[0]
            build(folder, args.groups, hostile, feed)
            elapsed, invites, code = tick(folder)
            full = sum(1 for n in range(1, args.groups + 1) if invites[n] == 12)
            print(f"{label}: {args.groups} groups, tick {elapsed:.1f} s, exit {code}, "
                  f"groups with all 12 invites: {full}/{args.groups}"
                  + (f" (group 1: {invites[1]}, group 2: {invites[2]})" if hostile else ""))
    stop.set()


if __name__ == "__main__":
    main_()
