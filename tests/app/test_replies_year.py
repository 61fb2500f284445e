"""A simulated year (2026) of the example group in which members answer by replying.

The real Runner ticks every 6 hours over the example config, sending into a Maildir outbox and
reading a Maildir inbox. At points in the year the test drops real-format replies (the fixtures in
tests/fixtures/replies/, their In-Reply-To and References naming a message this run sent to that
member) into the inbox, as a member would a few hours after an email reached them:

- Maya (Gmail) answers the February follow-up: a commitment due 15 March, her goal from the
  config done (by the start of its text: the fixture's `done: 1` is read after the commitment
  above it, which then takes number 1), an item for the next agenda;
- Maya (Apple Mail) answers the nudge about that commitment: a celebration and `done: 1` (the
  fixture's `done: 2` adapted: by then she has one open goal);
- Maya (iPhone) answers the April follow-up: away for the second week of June (the fixture's
  single date adapted); she is required, so June's meeting must fall in the third week.
"""

from __future__ import annotations

import email
import email.policy
import mailbox
import re
import shutil
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from integrations.calendars import group_availability
from integrations.inbox import MaildirInbox
from integrations.mail import MaildirTransport
from scheduler.app.store import Store
from scheduler.app.tick import Runner
from scheduler.app.watcher import ConfigWatcher

ROOT = Path(__file__).resolve().parents[2]
REPLIES = ROOT / "tests" / "fixtures" / "replies"
MAYA = "maya.chen@northeast-childrens.example"
ZONE = ZoneInfo("America/New_York")  # the group's
START, END, STEP = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 12, 3, tzinfo=UTC), timedelta(hours=6)

# (the key of the message answered, its recipient, the fixture, what to adapt in it)
REPLIES_IN_THE_YEAR = [
    ("follow-up:k-club:2026-02", MAYA, "gmail.eml", {b"done: 1": b"done: Send specific aims page"}),
    ("nudge:k-club:2026-03-15", MAYA, "apple_mail.eml", {b"done: 2": b"done: 1"}),
    ("follow-up:k-club:2026-04", MAYA, "iphone.eml",
     {b"Away: 2026-03-12": b"Away: 2026-06-08 to 2026-06-14",
      b"James Carter <james.carter@northeast-childrens.example>": f"Maya Chen <{MAYA}>".encode()}),
]


def answering(fixture: str, message_id: str, adapt: dict[bytes, bytes]) -> bytes:
    """A real-format reply naming `message_id` in In-Reply-To and References, lines adapted."""
    data = (REPLIES / fixture).read_bytes()
    for old, new in adapt.items():
        assert old in data, (fixture, old)
        data = data.replace(old, new)
    crlf = b"\r\n\r\n" in data[:4096]
    head, sep, body = data.partition(b"\r\n\r\n" if crlf else b"\n\n")
    head = re.sub(rb"(?im)^(In-Reply-To|References):.*$", lambda m: m.group(1) + b": " + message_id.encode(), head)
    return head + sep + body


def parse(m: mailbox.MaildirMessage) -> email.message.EmailMessage:
    return email.message_from_bytes(m.as_bytes(), policy=email.policy.default)


def text(msg: email.message.EmailMessage) -> str:
    return msg.get_body(("plain",)).get_content()


@pytest.fixture(scope="module")
def year(tmp_path_factory):
    """The year's messages, meetings and replies taken, the replies dropped as the run went."""
    folder = tmp_path_factory.mktemp("cfg")
    shutil.copytree(ROOT / "config" / "example", folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns("var"))
    service = (folder / "service.toml").read_text().replace("sender_name = ", 'inbox = "var/inbox"\nsender_name = ', 1)
    (folder / "service.toml").write_text(service)
    (folder / "var").mkdir(mode=0o700)
    outbox, inbox = folder / "var" / "outbox", mailbox.Maildir(folder / "var" / "inbox", create=True)
    cache: dict = {}

    def availability(config, group, lo, hi):  # the calendars do not change during the year
        if (group.id, lo, hi) not in cache:
            cache[(group.id, lo, hi)] = group_availability(config, group, lo, hi)
        return cache[(group.id, lo, hi)]

    waiting = {(key, to): (fixture, adapt) for key, to, fixture, adapt in REPLIES_IN_THE_YEAR}
    due: list[tuple[datetime, str, str, str, dict]] = []
    dropped: dict[str, datetime] = {}
    with Store(folder / "var" / "state.json") as store:
        runner = Runner(ConfigWatcher(folder), store, lambda c: MaildirTransport(outbox),
                        availability=availability, inbox=MaildirInbox())
        now = START
        while now <= END:
            for item in [d for d in due if d[0] <= now]:  # the member answers a few hours later
                _, key, to, fixture, adapt = item
                sent = [parse(m) for m in mailbox.Maildir(outbox, create=False)
                        if m["X-Friendtor-Key"] == key and to in m["To"]]
                assert len(sent) == 1, key
                inbox.add(answering(fixture, str(sent[0]["Message-ID"]), adapt))
                dropped[fixture] = now
                due.remove(item)
            report = runner.tick(now)
            for r in report.sent:
                if (r.key, r.recipient) in waiting:
                    due.append((now + STEP, r.key, r.recipient, *waiting.pop((r.key, r.recipient))))
            now += STEP
        meetings = {c: m for (g, c), m in store.meetings().items() if g == "k-club" and not m.cancelled}
        config = runner.config
    assert not waiting and not due, "every reply of the year was dropped"
    messages = [parse(m) for m in mailbox.Maildir(outbox, create=False)]
    return config, messages, meetings, dropped


def _kind(messages, kind, key=None, to=None):
    return [m for m in messages if m["X-Friendtor-Kind"] == kind and (key is None or m["X-Friendtor-Key"] == key)
            and (to is None or to in str(m["To"]))]


def _next_agenda(messages, meetings, after: datetime):
    """The agenda of the first meeting after `after`, as Maya got it."""
    cycle = min((m for m in meetings.values() if m.start > after), key=lambda m: m.start).cycle
    (agenda,) = _kind(messages, "agenda", f"agenda:k-club:{cycle}", MAYA)
    return text(agenda)


@pytest.mark.slow  # a simulated year, ticking every 6 hours
def test_each_reply_gets_one_receipt_to_its_author(year):
    """Every reply dropped is taken: one receipt each, to Maya only, saying what was recorded."""
    _, messages, _, dropped = year
    assert len(dropped) == len(REPLIES_IN_THE_YEAR)
    receipts = _kind(messages, "receipt")
    assert len(receipts) == len(REPLIES_IN_THE_YEAR) and all(str(r["To"]).endswith(f"<{MAYA}>") for r in receipts)
    body = "\n".join(text(r) for r in receipts)
    assert "send specific aims to Rafael" in body and "Sam started walking" in body


@pytest.mark.slow
def test_a_commitment_by_reply_is_on_the_next_agenda_and_nudged_before_it_falls_due(year):
    """Gmail reply to the February follow-up: its commitment and agenda item are on March's agenda, and a nudge precedes 15 March."""
    _, messages, meetings, dropped = year
    agenda = _next_agenda(messages, meetings, dropped["gmail.eml"])
    assert "send specific aims to Rafael (due Sun 15 Mar 2026)" in agenda
    assert "10 minutes on the resubmission timeline" in agenda
    (nudge,) = _kind(messages, "nudge", "nudge:k-club:2026-03-15")
    assert str(nudge["To"]).endswith(f"<{MAYA}>") and "send specific aims to Rafael" in text(nudge)
    assert parsedate_to_datetime(nudge["Date"]).date() <= date(2026, 3, 12)
    # Her config goal is done: no agenda after the reply lists it as hers to do.
    later = [m for m in _kind(messages, "agenda", to=MAYA) if parsedate_to_datetime(m["Date"]) > dropped["gmail.eml"]]
    assert later and all("Send specific aims page to primary mentor (due" not in text(m) for m in later)


@pytest.mark.slow
def test_a_celebration_by_reply_is_on_the_next_agenda_and_done_goals_count_in_reviews(year):
    """Apple Mail reply to the nudge: the win is celebrated on the next agenda; both done goals count at review and year-end."""
    config, messages, meetings, dropped = year
    agenda = _next_agenda(messages, meetings, dropped["apple_mail.eml"])
    assert "Sam started walking this week" in agenda and "Done: send specific aims to Rafael" in agenda
    done_in_config = sum(g.done for g in config.groups["k-club"].goals if g.member != MAYA)
    (review,) = _kind(messages, "review", "review:k-club:2026-07-13", MAYA)
    (year_end,) = _kind(messages, "year-end", to=MAYA)
    for msg in (review, year_end):
        assert f"Goals: {done_in_config + 2} done" in text(msg), msg["X-Friendtor-Key"]
    assert "Sam started walking this week" in text(review)


@pytest.mark.slow
def test_time_away_by_reply_keeps_the_meeting_off_those_dates(year):
    """iPhone reply: Maya (required) is away 8-14 June, so June's meeting is in the window's third week."""
    _, _, meetings, dropped = year
    june = meetings["2026-06"]
    assert dropped["iphone.eml"] < june.stamp
    assert june.start.astimezone(ZONE).date() >= date(2026, 6, 15)


@pytest.mark.slow
def test_calls_go_out_seven_days_before_each_meeting(year):
    """Every meeting of the year gets a call for items to each of the twelve members, 7 days before it."""
    config, messages, meetings, _ = year
    group = config.groups["k-club"]
    calls = defaultdict(set)
    for m in _kind(messages, "call"):
        calls[m["X-Friendtor-Key"]].add((m["To"].addresses[0].addr_spec, parsedate_to_datetime(m["Date"])))
    held = [m for m in meetings.values() if m.start < END and m.stamp < m.start - timedelta(days=7)]
    assert len(held) >= 11
    for meeting in held:
        got = calls[f"call:k-club:{meeting.cycle}"]
        assert {to for to, _ in got} == {m.email for m in group.members}, meeting.cycle
        call_at = meeting.start - timedelta(days=7)
        assert all(call_at <= at < call_at + STEP for _, at in got), meeting.cycle
        (call,) = [m for m in _kind(messages, "call", f"call:k-club:{meeting.cycle}", MAYA)]
        assert "done:" in text(call) and "agenda:" in text(call)

