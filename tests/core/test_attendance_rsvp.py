"""RSVPs as real calendar clients send them (scheduler.core.attendance): Accept, Tentative and
Decline from Google Calendar, Outlook for Mac, the iPhone and an Android phone on Exchange, in
tests/fixtures/rsvp/; and which answers are stale (about a meeting's older time)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from scheduler.core.attendance import PARTSTAT_PRESENT, Reply, replies_in, stale
from scheduler.core.meetings import Meeting

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rsvp"
UID = "k-club-2026-12@mentoring.example.org"
START = datetime(2026, 12, 10, 15, tzinfo=UTC)
MEETING = Meeting("k-club", "2026-12", UID, 0, START, START + timedelta(hours=1), datetime(2026, 11, 20, tzinfo=UTC))
WHO = {"google": "li.wang@pacific-u.example", "outlook_mac": "maya.chen@northeast-childrens.example",
       "iphone": "james.carter@northeast-childrens.example", "android_exchange": "daniel.okafor@lakeshore-u.example"}
# Exchange's reply from an Android phone names no SEQUENCE (only its own X-MICROSOFT counter).
SEQUENCE = {"google": 0, "outlook_mac": 0, "iphone": 0, "android_exchange": None}
CASES = [(client, partstat) for client in WHO for partstat in ("ACCEPTED", "TENTATIVE", "DECLINED")]


def read(name: str):
    return BytesParser(policy=policy.default).parsebytes((FIXTURES / name).read_bytes())


@pytest.mark.parametrize(("client", "partstat"), CASES, ids=[f"{c}-{p.lower()}" for c, p in CASES])
def test_each_clients_reply_is_one_answer_with_its_sequence_and_start(client, partstat):
    """One Reply per message: the attendee, the answer, and the SEQUENCE and start (UTC) it answered;
    Outlook's Windows zone name and the iPhone's TZID both resolve to the same instant."""
    who = WHO[client]
    assert replies_in(read(f"{client}_{partstat.lower()}.eml")) == [
        Reply(UID, who, partstat, who, SEQUENCE[client], START)]
    assert partstat in PARTSTAT_PRESENT  # every one of them is an answer to record


def test_googles_two_copies_of_the_calendar_are_one_answer():
    """Google sends the REPLY as a text/calendar part and again as invite.ics: it is read once."""
    message = read("google_tentative.eml")
    parts = [p for p in message.walk() if p.get_content_type() in ("text/calendar", "application/ics")]
    assert len(parts) == 2 and len(replies_in(message)) == 1


def test_tentative_is_an_answer_that_is_neither_present_nor_absent():
    """ACCEPTED is present, DECLINED absent, TENTATIVE recorded as tentative (None); NEEDS-ACTION says nothing."""
    assert PARTSTAT_PRESENT == {"ACCEPTED": True, "DECLINED": False, "TENTATIVE": None}


def answer(sequence: int | None, start: datetime | None) -> Reply:
    return Reply(UID, "a@x.example", "DECLINED", "a@x.example", sequence, start)


def test_an_answer_for_an_older_version_is_stale():
    """A lower SEQUENCE, or another start, is an answer about the time before a move."""
    moved = MEETING.moved(START + timedelta(days=1), START + timedelta(days=1, hours=1), MEETING.stamp)
    assert "SEQUENCE 0" in stale(answer(0, START), moved)
    assert "starts 2026-12-11T15:00Z" in stale(answer(None, START), moved)   # Exchange: no SEQUENCE
    assert stale(answer(moved.sequence, moved.start), moved) is None


def test_an_answer_the_reply_cannot_date_is_taken_and_a_members_own_copy_may_run_ahead():
    """No SEQUENCE and no usable start: nothing says it is stale. A SEQUENCE above the meeting's (a member's
    own re-invite) is current."""
    assert stale(answer(None, None), MEETING) is None
    assert stale(answer(2, START), MEETING) is None
    assert stale(answer(0, START), replace(MEETING, sequence=1)) is not None
