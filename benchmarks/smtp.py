"""Benchmark: SMTP delivery at wire speed, and an everything-due tick through SMTP vs Maildir.

    python benchmarks/smtp.py                       # 500 messages per side x 5 rounds; ticks of 20 groups x 5
    python benchmarks/smtp.py --before ../base      # the same, plus another checkout's code, interleaved
                                                    # (e.g. `git archive BASE | tar -x -C ../base`)
    python benchmarks/smtp.py --quick               # 50 messages, ticks of 2 groups, 2 rounds: a smoke test
    python benchmarks/smtp.py --profile             # also a cProfile of the batch session and of the SMTP tick

One aiosmtpd server on loopback, in this process, accepts everything and keeps a SHA-256 of
each message it receives. The clients run in child processes (so the server never competes
with a client for one GIL, as a real mail server would not, and a child can run another
checkout's code: its folder goes first on PYTHONPATH, and the child reports where its code
came from). Only the sending is timed, never a child's start-up. Reported: the median over
the rounds, the spread (lowest-highest), and the median (lowest-highest) of each round's
ratio, for the wall clock and for the client's CPU time per message (which moves less with
the machine's load than the wall clock).

1. Wire speed. One child per checkout and round sends the same N invites (text, HTML, a
   text/calendar part and the .ics attachment, ~5 kB, one recipient each, built by
   friendtor's `compose` with the MIME boundaries fixed before the clock starts) three
   ways, taking turns every --block messages (the first to go moves on by one each turn),
   so a burst of load from elsewhere falls on all three alike:
   - smtplib:     raw `smtplib.SMTP`, one connection, `send_message(msg, sender, [rcpt])`
                  with the envelope worked out before the clock starts: the wire-speed reference.
   - batch:       `SmtpTransport.send` inside `with transport.session():`, as the delivery
                  loop sends each batch: envelope check, a deadline per message (the shared
                  deadline thread, the socket cut at the deadline), error classification, one
                  connection.
   - per message: `SmtpTransport.send` outside a session: a connection per message.
   The server's digests check that the three sent the same bytes.
2. Everything due: benchmarks/tick.py's config (N groups of 12 members, fresh state, `now`
   inside every group's invite window), one `Runner.tick` with `transport = "smtp"` to the
   loopback server vs with the Maildir transport (one file and one fsync per message, as in
   production), one child per tick, taking turns round after round. Everything else
   (planning, rendering, the state commits, logging at INFO to /dev/null) is the same code;
   the ratio is what SMTP costs.

It measures and reports; it asserts nothing about time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SENDER = "friendtor@bench.example"
INVITE_ICS = "\r\n".join([
    "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//friendtor//friendtor//EN", "METHOD:REQUEST",
    "BEGIN:VTIMEZONE", "TZID:America/New_York",
    "BEGIN:STANDARD", "DTSTART:20261101T020000", "TZNAME:EST", "TZOFFSETFROM:-0400", "TZOFFSETTO:-0500",
    "END:STANDARD",
    "BEGIN:DAYLIGHT", "DTSTART:20270314T020000", "TZNAME:EDT", "TZOFFSETFROM:-0500", "TZOFFSETTO:-0400",
    "END:DAYLIGHT", "END:VTIMEZONE",
    "BEGIN:VEVENT", "UID:meeting-k-club-2026-12@bench.example", "SEQUENCE:0", "DTSTAMP:20261120T120000Z",
    "DTSTART;TZID=America/New_York:20261208T120000", "DTEND;TZID=America/New_York:20261208T130000",
    "SUMMARY:K Club: monthly meeting", "LOCATION:https://meet.example.org/k-club",
    "ORGANIZER;CN=K Club:mailto:" + SENDER,
    "ATTENDEE;CN=Member;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:member@uni-a.example",
    "DESCRIPTION:Check-in round\\, goals\\, the coordinators' items\\, unplanned time.",
    "END:VEVENT", "END:VCALENDAR", ""]).encode()


# --- the server (this process) -------------------------------------------------------------

class Sink:
    """Accepts every message; keeps its digest, so the variants can be checked to send the same bytes."""

    def __init__(self) -> None:
        self.digests: list[str] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.digests.append(hashlib.sha256(envelope.original_content or b"").hexdigest())
        return "250 OK"


def start_server(sink: Sink):
    from aiosmtpd.controller import Controller

    class Loopback(Controller):
        def _trigger_server(self) -> None:  # port 0: read the bound port back first
            self.port = self.server.sockets[0].getsockname()[1]
            super()._trigger_server()

    controller = Loopback(sink, hostname="127.0.0.1", port=0, ready_timeout=5)
    controller.start()
    return controller


# --- the clients (child processes) -------------------------------------------------------

def invites(n: int) -> list:
    """n invites as friendtor builds them (compose), the same bytes on every call and checkout."""
    from scheduler.compose.messages import Mailbox, compose
    from scheduler.compose.render import Rendered

    text = ("Dear {name},\n\nthe K Club meets on Tuesday 8 December, 12:00-13:00 (New York).\n"
            "Agenda: check-in round, then each member's goals, the coordinators' items, unplanned time.\n" * 6)
    html = "<p>" + text.replace("\n", "<br>\n") + "</p>\n" + "<p>Your open goals:</p><ul><li>Specific aims</li></ul>\n" * 4
    out = []
    for i in range(n):
        name = f"Member {i:04d}"
        rendered = Rendered(subject="K Club: invitation for Tuesday 8 December", text=text.format(name=name),
                            html=html.format(name=name))
        out.append(compose(kind="invite", key="invite:k-club:2026-12", group="k-club",
                           sender=Mailbox("K Club (friendtor)", SENDER),
                           recipient=Mailbox(name, f"member{i:04d}@uni-a.example"), rendered=rendered,
                           date=datetime(2026, 11, 20, 12, 0, tzinfo=UTC), calendar=INVITE_ICS, method="REQUEST",
                           secret=b"benchmark"))
    return out


SIDES = ("smtplib", "batch", "per-message")


def paired(port: int, n: int, block: int, profile: bool) -> dict:
    """The three wire variants in this (child) process, taking turns every `block` messages
    (the first to go moves on by one each block), so a burst of load from elsewhere on the
    machine falls on all of them alike. Each side sends its own copy of the same n messages
    and keeps its connection (or session) from block to block; only the blocks are timed."""
    import smtplib

    from integrations.mail import SmtpTransport, envelope
    from scheduler.core.config import Smtp

    copies = {side: invites(n) for side in SIDES}
    for side, batch in copies.items():
        # MIME boundaries are random (email.generator); fixed here, the same in every copy and
        # checkout, so every side puts the same bytes on the wire (the server's digests check it).
        for i, msg in enumerate(batch):
            for j, part in enumerate(p for p in msg.walk() if p.is_multipart()):
                part.set_boundary(f"=============== bench {i} {j} ==")
    envelopes = [envelope(m) for m in copies["smtplib"]]  # the raw side knows them before the clock starts
    settings = Smtp(host="127.0.0.1", port=port, security="none", timeout_seconds=30)
    batched, single = SmtpTransport(settings, None), SmtpTransport(settings, None)
    raw: list[smtplib.SMTP] = []

    def send(side: str, start: int) -> None:
        chunk = copies[side][start:start + block]
        if side == "smtplib":
            if not raw:
                raw.append(smtplib.SMTP("127.0.0.1", port, timeout=30))
            for msg, (sender, rcpt) in zip(chunk, envelopes[start:start + block]):
                raw[0].send_message(msg, sender, [rcpt])
        else:
            transport = batched if side == "batch" else single
            for msg in chunk:
                transport.send(msg)

    import cProfile
    import gc
    prof = cProfile.Profile() if profile else None
    wall = dict.fromkeys(SIDES, 0.0)
    cpu = dict.fromkeys(SIDES, 0.0)
    gc.collect()
    with batched.session():
        for k, start in enumerate(range(0, n, block)):
            for side in SIDES[k % 3:] + SIDES[:k % 3]:
                if prof and side == "batch":
                    prof.enable()
                t, c = time.perf_counter(), time.process_time()
                send(side, start)
                wall[side] += time.perf_counter() - t
                cpu[side] += time.process_time() - c
                if prof and side == "batch":
                    prof.disable()
    raw[0].quit()
    if prof:
        print_profile(prof, f"batch session, {n} messages")
    return {"wall": wall, "cpu": cpu, "connections": {"batch": batched.connections, "per-message": single.connections}}


def tick_client(transport: str, port: int, groups: int, profile: bool) -> dict:
    """One everything-due tick of benchmarks/tick.py's config, into Maildir or through SMTP."""
    sys.path.insert(1, str(HERE))
    import tick as bench  # benchmarks/tick.py: the config, the runner, the logging as in production

    with tempfile.TemporaryDirectory(prefix="friendtor-smtp-tick-") as tmp, open(os.devnull, "w") as devnull:
        folder = bench.make_config(Path(tmp) / "config", groups)
        if transport == "smtp":
            service = bench.SERVICE_TOML.replace('transport = "maildir"\nmaildir = "var/outbox"\n', 'transport = "smtp"\n')
            (folder / "service.toml").write_text(
                service + f'\n[mail.smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\ntimeout_seconds = 30\n')
        bench.quiet_service_logging(devnull)
        runner, store = bench.new_runner(folder, folder / "var" / "state.json")
        try:
            result = timed(lambda: runner.tick(bench.EVERYTHING_DUE), profile, f"everything-due tick via {transport}")
            report = result.pop("value")
            result.update(sent=len(report.sent), other=len(report.failed) + len(report.retrying) + len(report.held))
            if transport == "maildir":
                result["delivered"] = bench.maildir_count(folder)
        finally:
            store.close()
    return result


def timed(fn, profile: bool, title: str) -> dict:
    import cProfile
    import gc

    gc.collect()
    prof = cProfile.Profile() if profile else None
    started, cpu = time.perf_counter(), time.process_time()
    if prof:
        prof.enable()
    value = fn()
    if prof:
        prof.disable()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    if prof:
        print_profile(prof, title)
    return {"seconds": seconds, "cpu": cpu, "value": value}


def print_profile(prof, title: str) -> None:
    import io
    import pstats

    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out).strip_dirs()
    stats.sort_stats("cumulative").print_stats(30)
    stats.sort_stats("tottime").print_stats(20)
    print(f"--- cProfile: {title} ---\n" + "\n".join(line for line in out.getvalue().splitlines() if line.strip()),
          file=sys.stderr)


# --- the parent: rounds, interleaved -------------------------------------------------------

def spawn(tree: Path, *args: str) -> dict:
    """Runs this script as a child with `tree` first on the path (its scheduler, integrations)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), *args], env=env,
                          capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{done.stderr}")
    if done.stderr:
        print(done.stderr, file=sys.stderr)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if set(result["code"]) != {str(tree.resolve())}:
        raise SystemExit(f"the child ran the code in {result['code']}, not in {tree}")
    return result


def rounds(variants: dict[str, tuple], count: int, sink: Sink) -> dict[str, list[dict]]:
    """Each variant once per round, the order turned by one each round."""
    names = list(variants)
    results: dict[str, list[dict]] = {name: [] for name in names}
    for r in range(count):
        for name in names[r % len(names):] + names[:r % len(names)]:
            sink.digests.clear()
            result = spawn(*variants[name])
            result["digests"] = Counter(sink.digests)
            results[name].append(result)
            print(f"  round {r + 1}: {name:<38} {result['seconds']:7.2f} s", flush=True)
    return results


def summarize(title: str, results: dict[str, list[dict]], reference, rate: bool, per_run: int) -> None:
    """Wall clock (messages/s for the wire part, seconds for the tick) and the client's CPU time
    per message, each as median (lowest-highest) over the rounds, with the median (lowest-highest)
    of each round's ratio to `reference(name)` (a ratio above 1 is faster for the rate and
    slower for seconds and CPU). CPU time counts only the sending process, so it moves less
    with the machine's load than the wall clock does."""
    def cell(values: list[float], fmt: str) -> str:
        return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"

    print(f"\n{title}")
    wall = "msg/s" if rate else "seconds"
    print(f"  {'variant':<40} {wall:^22} {'ratio':^19} {'CPU ms/message':^19} {'ratio':^19}")
    for name, runs in results.items():
        ref = results[reference(name)]
        walls = [per_run / r["seconds"] if rate else r["seconds"] for r in runs]
        ref_walls = [per_run / q["seconds"] if rate else q["seconds"] for q in ref]
        cpus = [1000 * r["cpu"] / per_run for r in runs]
        ref_cpus = [1000 * q["cpu"] / per_run for q in ref]
        same = all(r["digests"] == q["digests"] for r, q in zip(runs, ref))
        note = "" if same or not rate else "   NOT the same bytes as the reference"
        print(f"  {name:<40} {cell(walls, '.0f' if rate else '.2f'):<22} "
              f"{cell([a / b for a, b in zip(walls, ref_walls)], '.2f'):<19} {cell(cpus, '.2f'):<19} "
              f"{cell([a / b for a, b in zip(cpus, ref_cpus)], '.2f'):<19}{note}")


def summarize_wire(wire: dict[str, list[dict]], n: int) -> None:
    """Per checkout and side: messages per second (wall clock) and CPU ms per message, each
    as median (lowest-highest) over the rounds, and the median (lowest-highest) of each
    round's ratio to smtplib in the same child (a rate ratio above 1 is faster; a CPU ratio
    above 1 costs more)."""
    def cell(values: list[float], fmt: str) -> str:
        return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"

    print(f"\n1. wire speed, {n} invites per side and round, loopback aiosmtpd; ratios to smtplib in the same child")
    print(f"  {'variant':<44} {'msg/s':^18} {'ratio':^18} {'CPU ms/message':^18} {'ratio':^18}")
    digests = {}
    for label, runs in wire.items():
        for side in SIDES:
            rates = [n / r["wall"][side] for r in runs]
            cpus = [1000 * r["cpu"][side] / n for r in runs]
            rate_ratios = [r["wall"]["smtplib"] / r["wall"][side] for r in runs]
            cpu_ratios = [r["cpu"][side] / r["cpu"]["smtplib"] for r in runs]
            name = {"smtplib": "smtplib, 1 connection", "batch": "friendtor, batch session",
                    "per-message": "friendtor, connection per message"}[side]
            print(f"  {label + name:<44} {cell(rates, '.0f'):<18} {cell(rate_ratios, '.2f'):<18} "
                  f"{cell(cpus, '.2f'):<18} {cell(cpu_ratios, '.2f'):<18}")
        same = all(set(r["digests"].values()) == {len(SIDES)} and len(r["digests"]) == n for r in runs)
        print(f"  {label or 'after: '}every side sent the same {n} messages, byte for byte: {'yes' if same else 'NO'}; "
              f"connections: batch {runs[0]['connections']['batch']}, per message {runs[0]['connections']['per-message']}")
        digests[label] = set(runs[0]["digests"])
    if len(digests) > 1:
        same = len({frozenset(d) for d in digests.values()}) == 1
        print(f"  the checkouts built {'the same bytes' if same else 'DIFFERENT bytes'} for these messages")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, two rounds: a smoke test")
    parser.add_argument("--before", type=Path, help="another checkout whose friendtor variants run too")
    parser.add_argument("--profile", action="store_true", help="cProfile the batch session and the SMTP tick once")
    parser.add_argument("--messages", type=int, help="messages per wire-speed run (default 500)")
    parser.add_argument("--groups", type=int, help="groups in the everything-due tick (default 20)")
    parser.add_argument("--rounds", type=int, help="rounds of each part (default 7 and 5)")
    parser.add_argument("--part", choices=("wire", "tick"), help="run only this part")
    # a child's part: one variant, printed as one JSON line
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--tick", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--block", type=int, default=25, help="messages per turn in the wire part (default 25)")
    args = parser.parse_args(argv)

    if args.client or args.tick:
        result = (paired(args.port, args.n, args.block, args.profile) if args.client
                  else tick_client(args.tick, args.port, args.n, args.profile))
        result.pop("value", None)
        import integrations.mail
        import scheduler
        result["code"] = [str(Path(m.__file__).resolve().parents[1]) for m in (integrations.mail, scheduler)]
        print(json.dumps(result))
        return 0

    n = args.messages or (50 if args.quick else 500)
    groups = args.groups or (2 if args.quick else 20)
    wire_rounds, tick_rounds = (args.rounds or 2,) * 2 if args.quick else (args.rounds or 5, args.rounds or 5)
    trees = {"": REPO} | ({"before: ": args.before.resolve()} if args.before else {})
    sink = Sink()
    controller = start_server(sink)
    try:
        port = str(controller.port)
        if hasattr(os, "getloadavg"):
            print("load average before the run: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
        for label, tree in trees.items():
            print(f"{label or 'after: '}{tree} ({git_head(tree)})")
        if args.profile:
            spawn(REPO, "--client", "paired", "--port", port, "--n", str(n), "--profile")
            spawn(REPO, "--tick", "smtp", "--port", port, "--n", str(groups), "--profile")

        print(f"\n1. {n} invites per side, in turns of {args.block}, {wire_rounds} rounds")
        wire: dict[str, list[dict]] = {label: [] for label in trees}
        for r in range(wire_rounds if args.part != "tick" else 0):
            for label, tree in trees.items():
                sink.digests.clear()
                result = spawn(tree, "--client", "paired", "--port", port, "--n", str(n), "--block", str(args.block))
                result["digests"] = Counter(sink.digests)
                wire[label].append(result)
                print(f"  round {r + 1}: {label or 'after: '}" + ", ".join(
                    f"{side} {result['wall'][side]:.2f} s" for side in SIDES), flush=True)

        ticks = {}
        for label, tree in trees.items():
            ticks[f"{label}tick into Maildir"] = (tree, "--tick", "maildir")
            ticks[f"{label}tick through SMTP"] = (tree, "--tick", "smtp")
        ticks = {k: (*v, "--port", port, "--n", str(groups)) for k, v in ticks.items()}
        if args.part != "wire":
            print(f"\n2. everything due: {groups} groups, {tick_rounds} interleaved rounds")
        ticked = rounds(ticks, tick_rounds, sink) if args.part != "wire" else {}
    finally:
        controller.stop()

    if any(wire.values()):
        summarize_wire(wire, n)
    if not ticked:
        return 0
    got = {(r["sent"], r["other"], r.get("delivered", sum(r["digests"].values())))
           for runs in ticked.values() for r in runs}
    messages = next(iter(got))[0]
    if len(got) != 1 or next(iter(got))[1:] != (0, messages):
        print(f"  warning: the ticks did not all send and deliver the same messages: (sent, not sent, delivered) {got}")
    summarize(f"2. everything-due tick, {groups} groups, {messages} messages (seconds; ratio to the same "
              "checkout's tick into Maildir)",
              ticked, lambda name: name.replace("through SMTP", "into Maildir"), False, messages)
    if args.quick:
        print("\n--quick: too small to be a measurement; run without --quick for numbers.")
    return 0


def git_head(tree: Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip() or "not a git checkout"
    except OSError:
        return "git not found"


if __name__ == "__main__":
    sys.exit(main())
