"""Who does which work, when several processes share one state.

A TinyDB state has one owner (the lock file), so its claims are trivial: every group is this
process's to plan and every due message its to send; `SingleNode` says so for the TinyDB
Store. The PostgreSQL store (scheduler.app.pgstore) answers the same two questions with an
advisory lock per group and leases on outbox rows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from datetime import datetime

from scheduler.core.outbox import OutboxRecord, Status


class SingleNode:
    """Claims for a state with one owner: all of it (mixed into the Store, whose update_sends it uses)."""

    def claim_groups(self, sets: Iterable[Sequence[str]]) -> list[str]:
        """The groups this process may plan now, until the next commit: all of them."""
        return [g for s in sets for g in s]

    def wait_for_planners(self, groups: Iterable[str]) -> None:
        """Nobody else plans: nothing to wait for."""

    def keep_claims(self) -> None:
        """Nobody else sends: a claim never runs out."""

    def inbox_turn(self) -> contextlib.AbstractContextManager[bool]:
        """Nobody else reads the reply inbox: always this process's turn."""
        return contextlib.nullcontext(True)

    def claim_sends(self, records: Iterable[OutboxRecord], now: datetime) -> list[OutboxRecord]:
        """Mark `records` "sending" (written at the next commit) and return the ones this
        process may send: all of them. A crash after the commit leaves them "sending", and the
        next run sends them again with the same Message-ID."""
        records = list(records)
        self.update_sends(r.moved_on(Status.SENDING, updated=now) for r in records)
        return records
