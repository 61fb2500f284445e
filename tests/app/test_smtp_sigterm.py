"""SIGTERM while a delivery batch holds its SMTP session open, through a real `friendtor run`.

The server (aiosmtpd on loopback) takes the first messages, then sits on one message's DATA
without answering: it has the message, the client has no 250 (the ambiguous case the
outbox is built for). SIGTERM then must end the process promptly, record what the server
accepted as sent, leave the message in flight and the rest pending without an attempt
counted, and a restart must deliver each message exactly once by Message-ID, except the one
in flight, which may arrive twice with the same Message-ID. The process helpers are
test_service_process.py's.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from smtp_servers import Recorder, Server, running
from test_service_process import (  # noqa: F401 (start is a fixture)
    INVITE_KEY,
    NOW,
    Start,
    copy_example,
    members,
    no_traceback,
    outbox,
    parsed,
    recipient,
    run_args,
    smtp_service,
    start,
    wait_for,
)

STALL_AT = 8  # the 8th message is the one in flight: the first batch (5) and two of the second are accepted


@dataclass
class StallsAt(Recorder):
    """Accepts every message but the `at`-th, whose DATA it keeps unanswered until `release`
    is set (it has the message: it is recorded before the wait). Notes the SMTP session each
    message came in, in the order received."""

    at: int = STALL_AT
    release: threading.Event = field(default_factory=threading.Event)
    sessions: list[object] = field(default_factory=list)  # kept alive: no two share an identity

    async def handle_DATA(self, server, session, envelope) -> str:
        self.sessions.append(session)
        reply = await super().handle_DATA(server, session, envelope)
        if len(self.received) == self.at:
            while not self.release.is_set():
                await asyncio.sleep(0.02)
        return reply


@pytest.fixture
def stalling_smtp() -> Iterator[Server]:
    handler = StallsAt()
    try:
        with running(handler) as server:
            yield server
    finally:
        handler.release.set()


def message_ids(server: Server) -> list[str]:
    return [parsed(r.content)["Message-ID"] for r in server.received]


@pytest.mark.slow
def test_sigterm_with_a_batch_session_open_keeps_what_was_accepted_and_loses_nothing(
        tmp_path: Path, stalling_smtp: Server, start: Start) -> None:
    """SIGTERM mid-session: prompt exit 0; accepted sent, in flight and rest pending, no attempt; restart: once each by Message-ID."""
    handler: StallsAt = stalling_smtp.handler  # type: ignore[assignment]
    folder = copy_example(tmp_path / "config")
    # A deadline far away: only SIGTERM can end the exchange the server sits on.
    service = smtp_service(stalling_smtp, security="none").replace("timeout_seconds = 5", "timeout_seconds = 120")
    (folder / "service.toml").write_text(service)
    everyone = members(folder)
    args = run_args(folder, "--now", NOW)

    run = start(*args)
    wait_for(lambda: len(stalling_smtp.received) >= STALL_AT or not run.alive(), 60, "the message that stalls")
    assert run.alive(), run.stderr
    received = [recipient(parsed(r.content)) for r in stalling_smtp.received]
    accepted, in_flight = received[:STALL_AT - 1], received[STALL_AT - 1]
    # The batch session was open: the stalled message came on a session that had already
    # carried accepted messages of its batch.
    assert sum(s is handler.sessions[-1] for s in handler.sessions) >= 2

    run.proc.send_signal(signal.SIGTERM)
    assert run.wait(timeout=30) == 0, run.stderr  # "promptly": the SMTP deadline was 120 s
    no_traceback(run.stderr)
    assert len(stalling_smtp.received) == STALL_AT, "nothing was sent after SIGTERM"

    records = {d.recipient: d for d in outbox(folder) if d.key == INVITE_KEY}
    assert set(records) == everyone
    ids = dict(zip(received, message_ids(stalling_smtp)))
    for who in accepted:
        assert records[who].status == "sent" and records[who].attempts == 1, records[who]
        assert records[who].message_id == ids[who]
    for who in everyone - set(accepted):  # the one in flight and the rest: untouched
        assert records[who].status == "pending" and records[who].attempts == 0, records[who]
        assert records[who].last_error is None and records[who].message_id is None, records[who]
    assert in_flight not in accepted

    handler.at = 0  # the server accepts everything from now on
    handler.release.set()
    again = start(*args)
    assert again.wait(timeout=60) == 0, again.stderr
    no_traceback(again.stderr)

    records = {d.recipient: d for d in outbox(folder) if d.key == INVITE_KEY}
    assert all(d.status == "sent" for d in records.values()), records
    copies = Counter(message_ids(stalling_smtp))
    assert set(copies) == {d.message_id for d in records.values()}, "every member's invite arrived, none lost"
    assert {recipient(parsed(r.content)) for r in stalling_smtp.received} == everyone
    in_flight_id = records[in_flight].message_id
    assert ids[in_flight] == in_flight_id, "the one in flight was resent with its Message-ID"
    assert all(n == 1 for mid, n in copies.items() if mid != in_flight_id), copies
    assert copies[in_flight_id] <= 2
