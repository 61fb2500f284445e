"""Benchmark: ticks on a PostgreSQL state, one node and two, and a node's start-up.

    python benchmarks/pgtick.py                 # 1,000 groups (about 10 minutes on 2 loaded CPUs)
    python benchmarks/pgtick.py --groups 200    # smaller
    python benchmarks/pgtick.py --quick         # 20 groups: a smoke test that it still runs

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
    times = []
    for i in range(ticks):
        t = time.perf_counter()
        runner.tick(IDLE + timedelta(minutes=5 * i))
        times.append(time.perf_counter() - t)
    store.close()
    print(json.dumps({"import": t_import - t0, "config": t_config - t_import, "store_and_runner": t_ready - t_config,
                      "ticks": times, "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def run_nodes(folder: Path, nodes: int) -> dict:
    """`nodes` processes of `friendtor run --now DUE`, started together; wall time, messages."""
    outbox = folder / "var" / "outbox"
    shutil.rmtree(outbox, ignore_errors=True)
    logs = [folder / f"node-{i}.log" for i in range(nodes)]
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "scheduler.cli", "run", "--config", str(folder), "--now", DUE,
                               "--log-format", "json"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(log, "wb"))
             for log in logs]
    codes = [p.wait() for p in procs]
    wall = time.perf_counter() - t0
    sent = [sum(_event(line) == "sent" for line in log.read_text().splitlines()) for log in logs]
    messages = len(list((outbox / "new").iterdir())) if (outbox / "new").exists() else 0
    return {"nodes": nodes, "codes": codes, "wall": wall, "messages": messages, "sent_by_node": sent}


def _event(line: str) -> str | None:
    try:
        return json.loads(line).get("event")
    except ValueError:
        return None


def idle(folder: Path, ticks: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child-idle", str(folder), "--ticks", str(ticks)], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def pad_outbox(url: str, copies: int) -> int:
    """Add `copies` finished sends per outbox row (new sids, status sent): what keep_days keeps."""
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO outbox (sid, doc) SELECT o.sid || '#' || i, o.doc || jsonb_build_object("
                     "'sid', o.sid || '#' || i, 'status', 'sent', 'expires', '2099-01-01T00:00:00Z') "
                     "FROM outbox o, generate_series(1, %s) AS i", (copies,))
        return conn.execute("SELECT count(*) FROM outbox").fetchone()[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--groups", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--child-idle")
    ap.add_argument("--ticks", type=int, default=3)
    args = ap.parse_args()
    if args.child_idle:
        child_idle(args.child_idle, args.ticks)
        return
    import tick as tickbench
    from pg_servers import fresh_database, private_server

    n = 20 if args.quick else args.groups
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()}", flush=True)
    print(f"{n} groups of 12 members, no calendar files, Maildir with fsync; PostgreSQL from pgserver on a "
          "local socket", flush=True)
    root = Path(tempfile.mkdtemp(prefix="pgtick-"))
    try:
        folder = tickbench.make_config(root / "config", n)
        service = folder / "service.toml"
        base = service.read_text()
        with private_server() as server:
            results = []
            last_url = ""
            for r in range(args.rounds):
                for nodes in (1, 2) if r % 2 == 0 else (2, 1):
                    last_url = fresh_database(server, empty=True)
                    service.write_text(base.replace('state = "var/state.json"', f'state = "{last_url}"'))
                    res = run_nodes(folder, nodes)
                    results.append(res)
                    print(f"  everything due, {nodes} node{'s' if nodes > 1 else ''}: {res['wall']:.1f} s, "
                          f"{res['messages']} messages, sent by node {res['sent_by_node']}, exit {res['codes']}",
                          flush=True)
            one = statistics.median(r["wall"] for r in results if r["nodes"] == 1)
            two = statistics.median(r["wall"] for r in results if r["nodes"] == 2)
            print(f"  two nodes / one node: {one / two:.2f}x faster", flush=True)
            rows = pad_outbox(last_url, 0)
            for label, copies in (("as left by the tick", 0), ("outbox padded x10 with finished sends", 9)):
                if copies:
                    rows = pad_outbox(last_url, copies)
                got = idle(folder, 3)
                print(f"  nothing due, {rows} outbox rows ({label}): start-up {got['config']:.2f} s config + "
                      f"{got['store_and_runner']:.2f} s store and Runner (imports {got['import']:.2f} s); idle ticks "
                      f"{', '.join(f'{t:.2f}' for t in got['ticks'])} s; peak memory {got['maxrss_mib']:.0f} MiB",
                      flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
