"""Benchmark: ticks on a PostgreSQL state, one node and two, and a node's start-up.

    python benchmarks/pgtick.py                 # 1,000 groups (about 10 minutes on 2 loaded CPUs)
    python benchmarks/pgtick.py --groups 200    # smaller
    python benchmarks/pgtick.py --quick         # 20 groups: a smoke test that it still runs
    python benchmarks/pgtick.py --groups 1000 --smtp-delay 0.02 --scale-to 10000
        # mail through a loopback SMTP server that takes 20 ms a message; then the state grown
        # to 10,000 groups by bulk insert for start-up, memory and idle ticks

The groups are benchmarks/tick.py's (12 members in six zones, monthly, no calendar files), in
a config folder whose `state` is a database on a private PostgreSQL server (the `pgserver`
package) in a temporary folder; mail goes to a Maildir (one file and one fsync a message).

1. Everything due (2027-03-09 13:00 UTC: a meeting and 12 invites per group), on a fresh
   database, by one `friendtor run --now` process, then by two started together (they
   share the tick: one plans, both send). Wall time from start to the last exit, messages
   written, and how many each node sent. Rounds alternate one node / two nodes.
2. Nothing due (5 minutes after (1), ticks 5 minutes apart) on the state (1) left: in a fresh process, the time
   to load the config, open the store and build the Runner (start-up), then ticks; and the
   process's peak memory (ru_maxrss).
3. The same after the outbox is padded with finished sends (rows a long-running service
   keeps for `keep_days`), to see what start-up and an idle tick cost as sends pile up.
4. With `--scale-to N`: the state (1) left copied, group for group, into N groups by bulk
   insert in the database (INSERT ... SELECT, each row's group id replaced; ticking N groups
   would take hours here), the config folder grown to N groups, then (2) and (3) again, and
   the plans of the tick's queries (EXPLAIN) at that size.
5. With `--compare-with OLD` (another checkout, e.g. `git archive` of the commit before a
   change): an everything-due tick of --groups by OLD, the state grown to --scale-to groups
   (and padded, --pad), copied to a second database; then start-up and idle ticks by OLD and
   by this checkout, interleaved, each on its copy (this one's schema migration run first).

Measures and prints; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))

DUE = "2027-03-09T13:00:00Z"
IDLE = datetime(2027, 3, 9, 13, 5, tzinfo=UTC)   # 5 minutes after DUE: everything due was sent


def child_idle(folder: str, ticks: int) -> None:
    """In a fresh process: start-up (config, store, Runner) and idle ticks; JSON on stdout."""
    import logging

    t0 = time.perf_counter()
    import scheduler
    from integrations.mail import transport_for
    from scheduler.app.stores import open_store
    from scheduler.app.tick import Runner
    from scheduler.app.watcher import ConfigWatcher
    from scheduler.cli.wiring import group_availability

    logging.getLogger("friendtor").setLevel(logging.WARNING)
    t_import = time.perf_counter()
    watcher = ConfigWatcher(Path(folder))
    t_config = time.perf_counter()
    store = open_store(watcher.config)
    runner = Runner(watcher, store, transport_for, availability=group_availability)
    t_ready = time.perf_counter()
    spent = statement_times()
    times, planned = [], []
    for i in range(ticks):
        t = time.perf_counter()
        report = runner.tick(IDLE + timedelta(minutes=5 * i))
        times.append(time.perf_counter() - t)
        planned.append(len(report.planned) + len(report.meetings))
    store.close()
    print(json.dumps({"import": t_import - t0, "config": t_config - t_import, "store_and_runner": t_ready - t_config,
                      "ticks": times, "planned": planned, "code": str(Path(scheduler.__file__).parents[1]), "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "statements": dict(spent.most_common(4))}))


def statement_times():
    """Seconds spent in each kind of the store's SQL statements (by their first words), from now on."""
    from collections import Counter

    from scheduler.app.pgstore import PgStore

    spent: Counter = Counter()
    original = PgStore.q

    def timed(self, sql, params=None):
        t = time.perf_counter()
        try:
            return original(self, sql, params)
        finally:
            spent[" ".join(sql.split())[:50]] += time.perf_counter() - t
    PgStore.q = timed
    return spent


def run_nodes(folder: Path, nodes: int, smtp=None, root: Path = ROOT, deliver_for: float = 0) -> dict:
    """`nodes` processes of `friendtor run --now DUE`, started together; wall time, messages.

    With `deliver_for` (and an SMTP server): the nodes are stopped (SIGTERM, as an operator
    stops the service) that many seconds after the first message arrived, and the rate over
    that time is what is compared; the tick at 10,000 groups would take hours here."""
    outbox = folder / "var" / "outbox"
    shutil.rmtree(outbox, ignore_errors=True)
    if smtp is not None:
        smtp.received.clear()
    logs = [folder / f"node-{i}.log" for i in range(nodes)]
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "scheduler.cli", "run", "--config", str(folder), "--now", DUE,
                               "--log-format", "json"], cwd=root, stdout=subprocess.DEVNULL, stderr=open(log, "wb"))
             for log in logs]
    sample = {}
    if deliver_for and smtp is not None:
        first = None
        while any(p.poll() is None for p in procs):
            now = time.perf_counter()
            if first is None and smtp.received:
                first = now
                sample["first_message_s"] = first - t0
            if first is not None and now - first >= deliver_for:
                sample["messages_in_window"] = len(smtp.received)
                sample["window_s"] = now - first
                for p in procs:
                    p.terminate()
                break
            time.sleep(0.2)
    codes = [p.wait() for p in procs]
    wall = time.perf_counter() - t0
    sent = [sum(_event(line) == "sent" for line in log.read_text().splitlines()) for log in logs]
    if smtp is not None:
        messages = len(smtp.received)
    else:
        messages = len(list((outbox / "new").iterdir())) if (outbox / "new").exists() else 0
    return {"nodes": nodes, "codes": codes, "wall": wall, "messages": messages, "sent_by_node": sent, **sample}


def _event(line: str) -> str | None:
    try:
        return json.loads(line).get("event")
    except ValueError:
        return None


def idle(folder: Path, ticks: int, root: Path = ROOT) -> dict:
    """This script's child (the same measurement for both) running the friendtor checkout at `root`."""
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "pgtick.py"), "--child-idle", str(folder),
                          "--ticks", str(ticks), "--code", str(root)], cwd=root,
                         capture_output=True, text=True, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert Path(got["code"]).resolve() == root.resolve(), got["code"]
    return got


def pad_outbox(url: str, copies: int) -> int:
    """Add `copies` finished sends per outbox row (new sids, status sent): what keep_days keeps,
    sends whose rules can no longer plan them. The i-th copy expired i days before IDLE: kept
    (prune forgets them keep_days = 60 after), but no longer asked about (core/recorded.py).
    (Runs before 2026-12-02 08:15 gave them an expiry in 2099: not history, sends still live.)"""
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO outbox (sid, doc) SELECT o.sid || '#' || i, o.doc || jsonb_build_object("
                     "'sid', o.sid || '#' || i, 'status', 'sent', 'expires', "
                     "to_char((%s::timestamptz - i * interval '1 day') AT TIME ZONE 'UTC', "
                     "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')) "
                     "FROM outbox o, generate_series(1, %s) AS i", (IDLE, copies))
        return conn.execute("SELECT count(*) FROM outbox").fetchone()[0]


def scale_state(url: str, folder: Path, have: int, want: int) -> dict[str, int]:
    """Grow a `have`-group state to `want` groups: group i (above `have`) gets group
    ((i-1) % have) + 1's rows with the group id replaced, by INSERT ... SELECT in the database
    (bulk, no round trip a row). `have` must be a multiple of tick.PERIOD, so group i's config
    is the template's under another id. Keys holding a Message-ID (sent, replies) get the group
    id added, to stay unique. Also writes the group files. Row counts per table."""
    import psycopg
    import tick as tickbench

    from scheduler.app import pgschema

    assert have % tickbench.PERIOD == 0, "the template groups must cover whole periods of settings"
    for i in range(have + 1, want + 1):
        (folder / "groups" / f"{tickbench.gid(i)}.toml").write_text(tickbench.group_toml(i))
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TEMP TABLE m AS SELECT i, %s || lpad(((i - 1) %% %s::int + 1)::text, 4, '0') AS src, "
                     "'g' || CASE WHEN i < 10000 THEN lpad(i::text, 4, '0') ELSE i::text END AS dst FROM generate_series(%s::int, %s::int) AS i",
                     ("g", have, have + 1, want))
        conn.execute("INSERT INTO outbox (sid, doc, node, lease) SELECT replace(o.sid, m.src, m.dst), "
                     "replace(o.doc::text, m.src, m.dst)::jsonb, o.node, o.lease FROM m "
                     "JOIN outbox o ON o.doc->>'group' = m.src ORDER BY m.i, o.seq")
        for t in pgschema.KEYED:
            suffix = " || '#' || m.dst" if t in ("sent", "replies") else ""
            conn.execute(f"INSERT INTO {t} (k, grp, doc) SELECT CASE WHEN '{t}' IN ('sent', 'replies') "
                         f"THEN x.k{suffix} ELSE replace(x.k, m.src, m.dst) END, m.dst, "
                         f"replace(x.doc::text, m.src, m.dst)::jsonb FROM m JOIN {t} x ON x.grp = m.src "
                         "ORDER BY m.i, x.seq")
        conn.execute("ANALYZE")
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("outbox", *pgschema.KEYED)}


def explain(url: str) -> None:
    """The plans of the questions a tick asks of the outbox, at the size the database has now."""
    import psycopg

    from scheduler.app import pgstore
    from scheduler.app.records import iso

    now = {"now": iso(IDLE)}
    questions = {
        "open_sends": (pgstore.OPEN_SENDS, (pgstore._OPEN,)),
        "failed_sends": (pgstore.FAILED_SENDS, None),
        "invited (at the tick's now)": (pgstore.INVITED_AT, now),
        "planned (at the tick's now)": (pgstore.PLANNED_AT, now),
        "attendance (one group)": ("SELECT doc FROM attendance WHERE grp = %s ORDER BY seq", ("g0001",)),
    }
    with psycopg.connect(url) as conn:
        for label, (sql, params) in questions.items():
            if sql in (pgstore.PLANNED_AT, pgstore.INVITED_AT):   # asked as the store asks them
                conn.execute(pgstore.BY_INDEX[0])
            plan = [r[0] for r in conn.execute("EXPLAIN (ANALYZE, BUFFERS OFF) " + sql, params).fetchall()]
            conn.execute(pgstore.BY_INDEX[1], ("on",))
            scans = [p.split("  (")[0].strip(" ->") for p in plan if "Scan" in p]
            timing = [p.strip() for p in plan if p.strip().startswith("Execution Time")]
            print(f"    EXPLAIN {label}: {'; '.join(scans)}; {timing[0] if timing else ''}", flush=True)


def describe(got: dict) -> str:
    top = ", ".join(f"{sql} {t:.2f} s" for sql, t in got.get("statements", {}).items())
    return (f"start-up {got['config']:.2f} s config + {got['store_and_runner']:.2f} s store and Runner (imports "
            f"{got['import']:.2f} s); idle ticks {', '.join(f'{t:.2f}' for t in got['ticks'])} s (planned "
            f"{got.get('planned', '?')}); peak memory "
            f"{got['maxrss_mib']:.0f} MiB; load average {os.getloadavg()[0]:.1f}" + (f"\n      SQL time over the ticks: {top}"
                                                                                   if top else ""))


def compare_idle(groups: int, scale_to: int, old_root: Path, rounds: int, pad: int) -> None:
    """Start-up and idle ticks at `scale_to` groups, this checkout against `old_root` (another
    checkout of friendtor, e.g. the commit before a change), interleaved, on two copies of one
    state: an everything-due tick of `groups` groups (Maildir) by the old checkout, grown by bulk
    insert (and padded with `pad` finished sends a row). The new checkout's schema migration runs
    before its first measured start-up."""
    import psycopg
    import tick as tickbench
    from pg_servers import fresh_database, private_server, url

    root = Path(tempfile.mkdtemp(prefix="pgtick-"))
    try:
        folder = tickbench.make_config(root / "old", groups)
        base = (folder / "service.toml").read_text()
        with private_server() as server:
            old_url = fresh_database(server, empty=True)
            (folder / "service.toml").write_text(base.replace('state = "var/state.json"', f'state = "{old_url}"'))
            res = run_nodes(folder, 1, root=old_root)
            print(f"  everything due, {groups} groups, old checkout: {res['wall']:.1f} s, {res['messages']} messages",
                  flush=True)
            counts = scale_state(old_url, folder, groups, scale_to)
            print(f"  state grown to {scale_to} groups by bulk insert: {counts}", flush=True)
            if pad:
                counts["outbox"] = pad_outbox(old_url, pad)
                print(f"  outbox padded with {pad} finished sends a row: {counts['outbox']} rows", flush=True)
            old_db = psycopg.conninfo.conninfo_to_dict(old_url)["dbname"]
            with psycopg.connect(server.get_uri(), autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {old_db}_new TEMPLATE {old_db}")
            new_url = url(server, f"{old_db}_new")
            new = root / "new"
            shutil.copytree(folder, new)
            (new / "service.toml").write_text(base.replace('state = "var/state.json"', f'state = "{new_url}"'))
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                            "from scheduler.app.stores import open_store; from scheduler.app.loader import load_config;"
                            f"open_store(load_config(Path({str(new)!r}))).close()"], cwd=ROOT, check=True)
            print(f"  new checkout's schema migration on {counts['outbox']} outbox rows (one process, with its "
                  f"config): {time.perf_counter() - t:.1f} s", flush=True)
            explain(new_url)
            for r in range(rounds):
                for label, where, code in (("old", folder, old_root), ("new", new, ROOT))[::1 if r % 2 == 0 else -1]:
                    print(f"  {scale_to} groups, {label}: {describe(idle(where, 3, code))}", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--groups", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--child-idle")
    ap.add_argument("--ticks", type=int, default=3)
    ap.add_argument("--code", help="with --child-idle: the friendtor checkout to measure")
    ap.add_argument("--smtp-delay", type=float, default=0.0,
                    help="send through a loopback SMTP server that takes this many seconds a message")
    ap.add_argument("--scale-to", type=int, default=0, help="then grow the state to this many groups (bulk insert)")
    ap.add_argument("--pad", type=int, default=0, help="with --compare-with: finished sends added per outbox row")
    ap.add_argument("--compare-with", help="another checkout: start-up and idle ticks at --scale-to groups, interleaved")
    ap.add_argument("--deliver-for", type=float, default=0,
                    help="with --smtp-delay: stop the nodes this many seconds after the first message and "
                         "compare delivery rates (for sizes whose whole tick takes hours)")
    args = ap.parse_args()
    if args.child_idle:
        sys.path.insert(0, args.code or str(ROOT))   # the checkout measured
        child_idle(args.child_idle, args.ticks)
        return
    if args.compare_with:
        print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()}", flush=True)
        compare_idle(args.groups, args.scale_to, Path(args.compare_with), max(args.rounds, 2), args.pad)
        return
    import tick as tickbench
    from contextlib import ExitStack

    from pg_servers import fresh_database, private_server
    from smtp_servers import Slow, running

    n = 20 if args.quick else args.groups
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()}", flush=True)
    mail = (f"SMTP on loopback taking {args.smtp_delay * 1000:.0f} ms a message" if args.smtp_delay
            else "Maildir with fsync")
    print(f"{n} groups of 12 members, no calendar files, {mail}; PostgreSQL from pgserver on a local socket",
          flush=True)
    root = Path(tempfile.mkdtemp(prefix="pgtick-"))
    try:
        folder = tickbench.make_config(root / "config", n)
        service = folder / "service.toml"
        base = service.read_text()
        with ExitStack() as stack:
            server = stack.enter_context(private_server())
            smtp = None
            if args.smtp_delay:
                smtp = stack.enter_context(running(Slow(delay=args.smtp_delay)))
                base = base.replace('transport = "maildir"\nmaildir = "var/outbox"\n',
                                    'transport = "smtp"\n').replace(
                    'sender_name = "Benchmark (friendtor)"\n',
                    f'sender_name = "Benchmark (friendtor)"\n[mail.smtp]\nhost = "{smtp.host}"\nport = {smtp.port}\n'
                    'security = "none"\ntimeout_seconds = 30\n')
            results = []
            last_url = ""
            for r in range(args.rounds):
                for nodes in (1, 2) if r % 2 == 0 else (2, 1):
                    last_url = fresh_database(server, empty=True)
                    service.write_text(base.replace('state = "var/state.json"', f'state = "{last_url}"'))
                    res = run_nodes(folder, nodes, smtp, deliver_for=args.deliver_for)
                    res["load"] = os.getloadavg()[0]
                    results.append(res)
                    sampled = (f" (first message after {res['first_message_s']:.1f} s, then "
                               f"{res['messages_in_window']} in {res['window_s']:.0f} s: "
                               f"{res['messages_in_window'] / res['window_s']:.1f} messages/s; stopped)"
                               if "window_s" in res else "")
                    print(f"  everything due, {nodes} node{'s' if nodes > 1 else ''}: {res['wall']:.1f} s, "
                          f"{res['messages']} messages, sent by node {res['sent_by_node']}, exit {res['codes']}, "
                          f"load average after {res['load']:.1f}{sampled}",
                          flush=True)
            if all("window_s" in r for r in results):
                rate = {k: statistics.median(r["messages_in_window"] / r["window_s"] for r in results if r["nodes"] == k)
                        for k in (1, 2)}
                print(f"  two nodes / one node: {rate[2] / rate[1]:.2f}x the delivery rate", flush=True)
                return
            one = statistics.median(r["wall"] for r in results if r["nodes"] == 1)
            two = statistics.median(r["wall"] for r in results if r["nodes"] == 2)
            print(f"  two nodes / one node: {one / two:.2f}x faster", flush=True)
            sizes = [n]
            if args.scale_to > n:
                sizes.append(args.scale_to)
            for size in sizes:
                if size != n:
                    counts = scale_state(last_url, folder, n, size)
                    print(f"  state grown to {size} groups by bulk insert: {counts}", flush=True)
                rows = pad_outbox(last_url, 0)
                explain(last_url)
                for label, copies in (("as left by the tick", 0), ("outbox padded x10 with finished sends", 9)):
                    if copies:
                        rows = pad_outbox(last_url, copies)
                    print(f"  {size} groups, nothing due, {rows} outbox rows ({label}): {describe(idle(folder, 3))}",
                          flush=True)
                if copies:
                    explain(last_url)
                    with __import__("psycopg").connect(last_url) as conn:   # back to the tick's state
                        conn.execute("DELETE FROM outbox WHERE sid LIKE '%#%'")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
