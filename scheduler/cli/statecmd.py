"""`friendtor state copy`: move the state between TinyDB and PostgreSQL (or a copy of either)."""

from __future__ import annotations

import argparse


def cmd_state(args: argparse.Namespace) -> int:
    from scheduler.app.statecopy import copy_state, where_text

    counts = copy_state(args.source, args.dest, replace=args.replace, password_env=args.password_env)
    total = sum(counts.values())
    detail = ", ".join(f"{table} {n}" for table, n in counts.items())
    print(f"copied {total} records from {where_text(args.source)} to {where_text(args.dest)} ({detail}), "
          "and the installation secret; counts checked")
    return 0
