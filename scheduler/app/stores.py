"""One Store interface, two backends, and the one place that picks the backend.

`state` in service.toml names a TinyDB file (scheduler.app.store: the embedded default, one
owner at a time) or a PostgreSQL database (scheduler.app.pgstore: several nodes share it).
Everything above the store asks `StateStore`'s questions and nothing else; `open_store` is how
the service and the commands open it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from collections.abc import Set as AbstractSet
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from scheduler.core.config import Config, is_database
from scheduler.core.meetings import Meeting
from scheduler.core.outbox import OutboxRecord
from scheduler.core.recorded import Recorded


class StateStore(Protocol):
    """What the tick, delivery, the intake and the commands ask of the state. Changes are seen
    by this store at once and kept at `commit()`."""

    path: Path | None       # the TinyDB file (its folder takes hand-overs), None for a database
    secret: bytes           # keys Message-IDs
    replies: Any            # the reply tables (replystate.ReplyTables, pgreplies.PgReplies)

    @property
    def unsaved(self) -> str | None: ...
    def commit(self) -> bool: ...
    def close(self) -> None: ...
    def __enter__(self) -> StateStore: ...
    def __exit__(self, *exc: object) -> None: ...

    def meetings(self) -> Mapping[tuple[str, str], Meeting]: ...
    def save_meeting(self, m: Meeting) -> None: ...

    # What a tick's planner asks (core/recorded.py): the records it may still ask about at `now`,
    # not the history kept; and, for the failure alerts, which of a few sids are on record.
    def planned_at(self, now: datetime) -> Recorded: ...
    def invited_at(self, now: datetime) -> Mapping[str, Mapping[str, tuple[str, str, str | None]]]: ...
    def on_record(self, sids: Iterable[str]) -> AbstractSet[str]: ...
    # Every sid and every invite on record, however old (`state copy`, reports, tests).
    @property
    def planned(self) -> AbstractSet[str]: ...
    @property
    def invited(self) -> Mapping[str, Mapping[str, tuple[str, str, str | None]]]: ...
    def sends(self) -> list[OutboxRecord]: ...
    def open_sends(self) -> list[OutboxRecord]: ...
    def failed_sends(self) -> list[OutboxRecord]: ...
    def add_sends(self, records: Iterable[OutboxRecord]) -> int: ...
    def update_sends(self, records: Iterable[OutboxRecord]) -> None: ...
    def claim_groups(self, sets: Iterable[Sequence[str]]) -> list[str]: ...
    def wait_for_planners(self, groups: Iterable[str]) -> None: ...
    def claim_sends(self, records: Iterable[OutboxRecord], now: datetime) -> list[OutboxRecord]: ...
    def keep_claims(self) -> None: ...
    def inbox_turn(self) -> AbstractContextManager[bool]: ...
    def prune(self, now: datetime, keep: timedelta) -> int: ...

    def alerts(self) -> Mapping[tuple[str, str], date]: ...
    def note_alert(self, group: str, cycle: str, day: date) -> None: ...
    def note_review(self, group: str, kind: str, start: date, end: date) -> None: ...
    def attendance(self, group: str) -> list[dict[str, Any]]: ...
    def record_attendance(self, group: str, cycle: str, email: str, present: bool | None, source: str,
                          when: datetime) -> bool: ...
    def forget_rsvps(self, group: str, cycle: str) -> int: ...


def open_store(config: Config, *, lock: bool = True) -> StateStore:
    """The state `config` names. `lock=True` for a writer: the TinyDB file's one owner (a second
    is refused with LockedError), or one more node on a database. `lock=False` for a reader
    beside the writer (a consistent snapshot on a database)."""
    state = config.service.state
    if is_database(state):
        from scheduler.app.pgstore import PgStore   # psycopg is loaded only for a database

        return PgStore(state, config.service, lock=lock)
    from scheduler.app.store import Store

    return Store(config.path(state), lock=lock)


def has_state(config: Config) -> bool:
    """Whether there is a state to read yet (a database always has one: friendtor makes its tables)."""
    return is_database(config.service.state) or config.path(config.service.state).exists()


def describe(config: Config) -> str:
    """The state as messages name it, never with a password."""
    if is_database(config.service.state):
        from scheduler.app.pgschema import where

        return where(config.service.state)
    return str(config.path(config.service.state))
