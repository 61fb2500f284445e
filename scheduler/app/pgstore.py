"""The state in PostgreSQL: the Store's questions and changes, as SQL, for one or more nodes.

Same behaviour as the TinyDB Store (scheduler.app.store), over the same documents: a change is
visible to this store at once and reaches the database at `commit()`; `close()` without a
commit drops it. What differs is who else is there: several `friendtor run` nodes may share
the database, so nothing is cached between questions, and two things are claimed:

- planning a group: `claim_groups` takes a transaction-scoped advisory lock per group
  (`pg_try_advisory_xact_lock`), for groups that share members all or none; a group another
  node is planning is left to it, and the lock goes with the commit that records the plan;
- sending a message: `claim_sends` takes due outbox rows with `FOR UPDATE SKIP LOCKED`, marks
  them "sending" with this node's id and a lease from the database's clock (one clock for all
  nodes); a row whose lease ran out (its node died) is due again, and its resend carries the
  same Message-ID (keyed by the secret every node reads from the database).

A reader (`lock=False`: `status`, the commands' look-ups) sees one consistent snapshot
(REPEATABLE READ) while nodes write.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import Any

import psycopg

from scheduler.app import pgschema
from scheduler.app.pgreplies import PgReplies
from scheduler.app.records import from_doc, iso, progress, to_doc
from scheduler.app.store import MEETINGS_KEPT, _meeting
from scheduler.core.config import Service
from scheduler.core.errors import StateError, StateUnavailable
from scheduler.core.meetings import Meeting
from scheduler.core.outbox import FINISHED, OPEN, OutboxRecord
from scheduler.core.recorded import Recorded

SEP = "\x1f"   # joins the parts of a record's key (no group id, cycle or address holds it)
_OPEN = list(OPEN)


# The outbox questions every tick asks, named so benchmarks/pgtick.py and the tests can EXPLAIN them.
OPEN_SENDS = "SELECT doc FROM outbox WHERE doc->>'status' = ANY(%s) ORDER BY seq"
FAILED_SENDS = "SELECT doc FROM outbox WHERE doc->>'status' = 'failed' ORDER BY seq"
# What the planner may still ask about at a tick's `now` (core/recorded.py), each part by an
# index (outbox_expires, outbox_open, outbox_alerts): the sends not expired and every alert, so an
# idle tick reads what may be due, not the history kept. Statuses written out, as in PRUNE.
PLANNED_AT = ("SELECT sid FROM outbox WHERE doc->>'status' IN ({}) AND doc->>'expires' >= %(now)s "
              "UNION ALL SELECT sid FROM outbox WHERE doc->>'status' IN ({}) "
              "UNION ALL SELECT sid FROM outbox WHERE doc->>'kind' = 'alert'").format(
    ", ".join(f"'{s}'" for s in FINISHED), ", ".join(f"'{s}'" for s in OPEN))
# Who got each invite (a gathering's too: its key is an invite's), the fields only (JSON is
# costly); at a tick's `now` only the invites not expired, by the partial index outbox_invites.
INVITED = ("SELECT doc->>'key', doc->>'recipient', doc->>'name', doc->>'timezone', "
           "CASE WHEN doc->>'status' = 'sent' THEN doc->>'sent_at' END FROM outbox WHERE sid LIKE 'invite:%%'")
INVITED_AT = INVITED + " AND doc->>'expires' >= %(now)s"
ON_RECORD = "SELECT sid FROM outbox WHERE sid = ANY(%s)"
# Those records are the newest slice of a large outbox, but PostgreSQL prices reading them as if
# they were spread over every page, so with much history it scans the whole outbox (measured:
# 1.1 s at 1,920,000 rows, 192,000 of them asked about). A bitmap scan of the index reads each
# page at most once, in order: at worst about a sequential scan, and otherwise the pages of the
# live records only. So sequential scans are priced out for these two statements, and only them.
BY_INDEX = ("SELECT set_config('enable_seqscan', 'off', true)", "SELECT set_config('enable_seqscan', %s, true)")
# What prune forgets, each by an index (migration 2). The statuses are written out, not a
# parameter, so the planner can match the partial index outbox_expires.
PRUNE = {
    "outbox": "DELETE FROM outbox WHERE doc->>'status' IN ({}) AND doc->>'expires' < %s RETURNING sid".format(
        ", ".join(f"'{s}'" for s in FINISHED)),
    "meetings": "DELETE FROM meetings WHERE doc->>'end' < %s RETURNING k",
    "alerts": "DELETE FROM alerts WHERE doc->>'day' < %s RETURNING k",
}


def key(*parts: str) -> str:
    return SEP.join(parts)


def _invited(rows: list[tuple]) -> Mapping[str, Mapping[str, tuple[str, str, str | None]]]:
    out: dict[str, dict[str, tuple[str, str, str | None]]] = {}
    for k, to, name, zone, sent in rows:
        out.setdefault(k, {})[to] = (name, zone, sent)
    return MappingProxyType(out)


class PgStore:
    """The state in a PostgreSQL database; `lock=True` for a node (or a command) that writes."""

    path = None   # no state file: nothing is handed over through a folder, commands write directly

    def __init__(self, url: str, service: Service, *, lock: bool = True):
        self.url, self.lock = url, lock
        self._password = pgschema.password(service)
        self.lease = timedelta(seconds=service.lease_seconds)
        self._leased_at = 0.0   # time.monotonic() when this node's leases were last taken or renewed
        self.node = f"{socket.gethostname()}:{os.getpid()}"
        self.unsaved: str | None = None
        self.conn: psycopg.Connection[Any] | None = None
        self._map = pgschema.guarded(url, self._password, self._lost)
        self.conn = self._connect()
        try:
            self.secret = pgschema.prepare(self.conn, url)
        except psycopg.Error as exc:
            self.close()
            raise self._map(exc) from None
        except BaseException:
            self.close()
            raise
        self.replies = PgReplies(self)

    def _connect(self) -> psycopg.Connection[Any]:
        return pgschema.connect(self.url, self._password, snapshot=not self.lock)

    def _lost(self) -> None:
        """The connection broke (the database restarted, the network): what was not committed is
        gone; the next question connects again."""
        if self.conn is not None:
            try:
                self.conn.close()
            finally:
                self.conn = None

    def q(self, sql: str, params: Any = None) -> list[tuple]:
        """Run one statement in the open transaction; its rows (none for a change without RETURNING)."""
        try:
            if self.conn is None:
                self.conn = self._connect()
            cur = self.conn.execute(sql, params)
            return cur.fetchall() if cur.description is not None else []
        except psycopg.Error as exc:
            error = self._map(exc)
            self._rollback()   # a failed statement spoils its transaction: the next tick starts clean
            raise error from None

    def _rollback(self) -> None:
        if self.conn is not None:
            try:
                self.conn.rollback()
            except psycopg.Error:
                self._lost()

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()   # what was not committed is dropped, as a TinyDB store's memory is
            except psycopg.Error:
                pass
            self.conn = None

    def __enter__(self) -> PgStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def commit(self) -> bool:
        """Keep every change since the last commit. A commit that fails loses them (unlike a
        TinyDB store, which keeps them in memory): it is StateUnavailable whatever the cause,
        so the tick stops there and the service tries again in a few seconds."""
        try:
            if self.conn is not None:
                self.conn.commit()
        except psycopg.Error as exc:
            error = self._map(exc)
            self._rollback()
            raise error if isinstance(error, StateUnavailable) else StateUnavailable(str(error)) from None
        return True

    # --- meetings ---------------------------------------------------------------------------

    def meetings(self) -> Mapping[tuple[str, str], Meeting]:
        return MappingProxyType({(d["group"], d["cycle"]): _meeting(d) for d, in self.q("SELECT doc FROM meetings")})

    def save_meeting(self, m: Meeting) -> None:
        doc = {"group": m.group, "cycle": m.cycle, "uid": m.uid, "sequence": m.sequence,
               "start": iso(m.start), "end": iso(m.end), "stamp": iso(m.stamp), "cancelled": m.cancelled}
        if m.moved_from is not None:
            doc["moved_from"] = iso(m.moved_from)
        self._put("meetings", key(m.group, m.cycle), m.group, doc)

    # --- outbox -----------------------------------------------------------------------------

    def planned_at(self, now: datetime) -> Recorded:
        """The sids the planner may ask about at `now` (core/recorded.py), not the history kept."""
        return frozenset(s for s, in self._by_index(PLANNED_AT, {"now": iso(now)}))

    def invited_at(self, now: datetime) -> Mapping[str, Mapping[str, tuple[str, str, str | None]]]:
        return _invited(self._by_index(INVITED_AT, {"now": iso(now)}))

    def _by_index(self, sql: str, params: Any) -> list[tuple]:
        """`sql` with sequential scans priced out (BY_INDEX), then the setting as it was. A failed
        statement ends its transaction, and the setting with it (it is local to the transaction)."""
        [(was,)] = self.q("SELECT current_setting('enable_seqscan')")
        self.q(BY_INDEX[0])
        rows = self.q(sql, params)
        self.q(BY_INDEX[1], (was,))
        return rows

    def on_record(self, sids: Iterable[str]) -> AbstractSet[str]:
        sids = list(sids)
        return {s for s, in self.q(ON_RECORD, (sids,))} if sids else set()

    @property
    def planned(self) -> AbstractSet[str]:
        return frozenset(s for s, in self.q("SELECT sid FROM outbox"))

    @property
    def invited(self) -> Mapping[str, Mapping[str, tuple[str, str, str | None]]]:
        return _invited(self.q(INVITED))

    def sends(self) -> list[OutboxRecord]:
        return [from_doc(d) for d, in self.q("SELECT doc FROM outbox ORDER BY seq")]

    def open_sends(self) -> list[OutboxRecord]:
        return [from_doc(d) for d, in self.q(OPEN_SENDS, (_OPEN,))]

    def failed_sends(self) -> list[OutboxRecord]:
        return [from_doc(d) for d, in self.q(FAILED_SENDS)]

    def add_sends(self, records: Iterable[OutboxRecord]) -> int:
        """Add sends; one already there (same sid, added by this node or another) stays as it is."""
        new: dict[str, str] = {}
        for r in records:
            new.setdefault(r.sid, json.dumps(to_doc(r)))
        if not new:
            return 0
        rows = self.q("INSERT INTO outbox (sid, doc) SELECT s, d::jsonb FROM unnest(%s::text[], %s::text[]) "
                      "WITH ORDINALITY AS u(s, d, n) ORDER BY n ON CONFLICT (sid) DO NOTHING RETURNING sid",
                      (list(new), list(new.values())))
        return len(rows)

    def update_sends(self, records: Iterable[OutboxRecord]) -> None:
        """Store how far each record got; its claim (node, lease) ends with it."""
        records = list(records)
        if not records:
            return
        self.q("UPDATE outbox o SET doc = o.doc || u.p::jsonb, node = NULL, lease = NULL "
               "FROM unnest(%s::text[], %s::text[]) AS u(s, p) WHERE o.sid = u.s",
               ([r.sid for r in records], [json.dumps(progress(r)) for r in records]))
        for r in records:
            if str(r.status) == "sent" and r.message_id:
                self.replies.note_sent(to_doc(r))

    # --- claims: which groups this node plans, which messages it sends ----------------------

    def claim_groups(self, sets: Iterable[Sequence[str]]) -> list[str]:
        """The groups of every set (groups sharing members, in planning order) that no other node
        is planning now, locked for this node until the next commit; a set is planned whole or
        not at all, so a person in two groups is never planned on two nodes at once. A reader (a
        dry run) takes no lock: it records nothing, and must not keep nodes waiting."""
        sets = [tuple(s) for s in sets if s]
        if not sets or not self.lock:
            return [g for s in sets for g in s]
        # The set's first group is its gate: nodes with the same config take it first, so the one
        # holding it gets the rest. The rest are locked too: a node whose config (mid-reload)
        # draws the sets differently must still find each group taken.
        heads = set(self._try_locks([s[0] for s in sets]))
        rest = set(self._try_locks([g for s in sets if s[0] in heads for g in s[1:]]))
        return [g for s in sets if s[0] in heads and rest.issuperset(s[1:]) for g in s]

    def _try_locks(self, groups: list[str]) -> list[str]:
        if not groups:
            return []
        return [g for g, in self.q("SELECT g FROM unnest(%s::text[]) AS g "
                                   "WHERE pg_try_advisory_xact_lock(hashtext('friendtor plan ' || g))", (groups,))]

    @contextlib.contextmanager
    def inbox_turn(self) -> Iterator[bool]:
        """Whether this node reads the reply inbox now. One node at a time: a session advisory
        lock, held until what was read is committed and marked seen (a lock that outlives the
        transaction), and gone with the connection if the node dies. So nodes whose configs
        name one shared Maildir never take the same reply twice; the others wait a tick."""
        got = self.q("SELECT pg_try_advisory_lock(hashtext('friendtor inbox'))")[0][0]
        try:
            yield got
        finally:
            if got and self.conn is not None:
                with contextlib.suppress(psycopg.Error, StateUnavailable):  # gone with a lost connection
                    self.q("SELECT pg_advisory_unlock(hashtext('friendtor inbox'))")

    def wait_for_planners(self, groups: Iterable[str]) -> None:
        """Wait until no other node is planning `groups` (their plans are then committed, and
        their sends visible to this node's delivery); the locks go with the next commit."""
        groups = list(groups)
        if groups and self.lock:
            self.q("SELECT count(pg_advisory_xact_lock(hashtext('friendtor plan ' || g))) FROM unnest(%s::text[]) AS g",
                   (groups,))

    def claim_sends(self, records: Iterable[OutboxRecord], now: datetime) -> list[OutboxRecord]:
        """Claim the records still due (pending, a retry whose time came, or "sending" under a
        lease that ran out) that no other node holds; they are marked "sending" with this node's
        id and a lease, written at the next commit. Returned as they were before the claim."""
        sids = [r.sid for r in records]
        if not sids:
            return []
        rows = self.q(
            "WITH c AS (SELECT sid, doc FROM outbox WHERE sid = ANY(%(sids)s) AND ("
            "  doc->>'status' = 'pending'"
            "  OR (doc->>'status' = 'retry' AND doc->>'next_attempt' <= %(now)s)"
            "  OR (doc->>'status' = 'sending' AND (lease IS NULL OR lease < clock_timestamp())))"
            "  ORDER BY seq FOR UPDATE SKIP LOCKED) "
            "UPDATE outbox o SET doc = o.doc || jsonb_build_object('status', 'sending', 'updated', %(now)s::text), "
            "  node = %(node)s, lease = clock_timestamp() + %(lease)s FROM c WHERE o.sid = c.sid RETURNING c.doc",
            {"sids": sids, "now": iso(now), "node": self.node, "lease": self.lease})
        self._leased_at = time.monotonic()
        order = {s: i for i, s in enumerate(sids)}
        return sorted((from_doc(d) for d, in rows), key=lambda r: order[r.sid])

    def keep_claims(self) -> None:
        """Renew this node's leases on the messages it is sending once a third of the lease has
        passed, and commit: a batch that outlasts the lease (a slow server, a loaded machine)
        must not let another node take, and send again, a message this node is still sending."""
        if not self.lock or time.monotonic() - self._leased_at < self.lease.total_seconds() / 3:
            return
        self.q("UPDATE outbox SET lease = clock_timestamp() + %s WHERE node = %s AND doc->>'status' = 'sending'",
               (self.lease, self.node))
        self.commit()
        self._leased_at = time.monotonic()

    # --- forgetting -------------------------------------------------------------------------

    def prune(self, now: datetime, keep: timedelta) -> int:
        """Forget what the TinyDB Store forgets (see Store.prune), by the same rules."""
        before = now - MEETINGS_KEPT
        removed = len(self.q(PRUNE["outbox"], (iso(now - keep),)))
        removed += len(self.q(PRUNE["meetings"], (iso(before),)))
        removed += len(self.q(PRUNE["alerts"], (before.date().isoformat(),)))
        return removed + self.replies.prune(now)

    # --- alerts, reviews, attendance ---------------------------------------------------------

    def alerts(self) -> Mapping[tuple[str, str], date]:
        return MappingProxyType({(d["group"], d["cycle"]): date.fromisoformat(d["day"])
                                 for d, in self.q("SELECT doc FROM alerts")})

    def note_alert(self, group: str, cycle: str, day: date) -> None:
        self._put("alerts", key(group, cycle), group, {"group": group, "cycle": cycle, "day": day.isoformat()})

    def note_review(self, group: str, kind: str, start: date, end: date) -> None:
        self._put("reviews", key(group, kind, end.isoformat()), group,
                  {"group": group, "kind": kind, "start": start.isoformat(), "end": end.isoformat()})

    def attendance(self, group: str) -> list[dict[str, Any]]:
        return [d for d, in self.q("SELECT doc FROM attendance WHERE grp = %s ORDER BY seq", (group,))]

    def record_attendance(self, group: str, cycle: str, email: str, present: bool | None, source: str,
                          when: datetime) -> bool:
        """As Store.record_attendance: an RSVP never overwrites what a coordinator recorded."""
        k = key(group, cycle, email)
        if source == "rsvp" and self.q("SELECT 1 FROM attendance WHERE k = %s AND doc->>'source' = 'coordinator'",
                                       (k,)):
            return False
        doc = {"group": group, "cycle": cycle, "email": email, "present": present is True, "source": source,
               "recorded": iso(when)}
        if present is None:
            doc["tentative"] = True
        self._put("attendance", k, group, doc)
        return True

    def forget_rsvps(self, group: str, cycle: str) -> int:
        return len(self.q("DELETE FROM attendance WHERE grp = %s AND doc->>'cycle' = %s AND doc->>'source' = 'rsvp' "
                          "RETURNING k", (group, cycle)))

    def _put(self, table: str, k: str, group: str, doc: dict[str, Any]) -> None:
        """Replace the record `k` of `table` with `doc` (keeping its place in the order), or add it."""
        if table not in pgschema.KEYED:
            raise StateError(f"no table {table}")
        self.q(f"INSERT INTO {table} (k, grp, doc) VALUES (%s, %s, %s::jsonb) "
               "ON CONFLICT (k) DO UPDATE SET doc = EXCLUDED.doc, grp = EXCLUDED.grp", (k, group, json.dumps(doc)))
