"""Reading members' replies (scheduler.core.replies, scheduler.core.replytext): the items in
replies written by real mail programs, and nothing from the original they quote.

The fixtures in tests/fixtures/replies/ are written in the formats Gmail, Outlook (desktop,
web, "-----Original Message-----"), Apple Mail, the iPhone and Samsung's Android client
produce. Each quotes an original that holds item-looking lines ("agenda: old item from the
original"), so a quote that leaks shows up as an extra item."""

from __future__ import annotations

from datetime import UTC, date, datetime
from email import policy
from email.parser import BytesParser
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from scheduler.core.replies import (Agenda, Away, Celebrate, Commit, Done, NotUnderstood, Undo, parse_items,
                                    parse_reply, read_date)
from scheduler.core.replytext import _parts, html_to_text, new_text, strip_quoted

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "replies"
NEW_YORK = ZoneInfo("America/New_York")
RECEIVED = datetime(2026, 3, 5, 12, tzinfo=UTC)

EXPECTED = {
    "gmail.eml": (Commit("send specific aims to Rafael", date(2026, 3, 15)), Done(1),
                  Agenda("10 minutes on the resubmission timeline")),
    "outlook_desktop.eml": (Celebrate("our paper was accepted at Hospital Pediatrics – finally!"),
                            Commit("finish the IRB amendment", date(2026, 3, 20))),
    "outlook_web.eml": (Done("Ask two people"), Away(date(2026, 4, 6), date(2026, 4, 17))),
    "outlook_original_message.eml": (Agenda("como equilibrar plantão e escrita (balancing call weeks and writing)"),
                                     Commit("two writing mornings a week")),
    "apple_mail.eml": (Celebrate("Sam started walking this week 🎉"), Done(2)),
    "iphone.eml": (Away(date(2026, 3, 12), date(2026, 3, 12)),),
    "android_samsung.eml": (Commit("read the summary statements", date(2026, 3, 18)),
                            Celebrate("I said no to a new committee!")),
    "html_only.eml": (Agenda("how we each say no to committees & keep research time"),
                      Commit("draft the F&A budget with Sara", date(2026, 3, 27)),
                      Celebrate("promoted to Associate Professor 🎉")),
    "signature.eml": (Commit("ask the department chair about protected time for writing", date(2026, 4, 10)),
                      Done("two writing mornings")),
    "forwarded.eml": (Agenda("the new K award deadline (forwarded below)"),),
}
# Words that appear only in the quoted originals, signatures, stylesheets and forwarded text.
LEAKS = ("old", "original", "quoted", "motto", "script", "stylesheet", "forwarded text", "internal review")


def message(name: str):
    return BytesParser(policy=policy.default).parsebytes((FIXTURES / name).read_bytes())


def texts(items) -> list[str]:
    return [str(getattr(i, "text", getattr(i, "ref", ""))) for i in items]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_client_reply_gives_exactly_the_members_items(name):
    """The items a member wrote above the quote, exactly; nothing not understood, nothing cut."""
    parsed = parse_reply(message(name), NEW_YORK, RECEIVED)
    assert parsed.items == EXPECTED[name]
    assert parsed.not_understood == () and parsed.notes == ()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_nothing_from_the_quoted_original_leaks_into_the_items(name):
    """The originals quote 'agenda: old item from the original' and the like; none of it comes back."""
    parsed = parse_reply((FIXTURES / name).read_bytes(), NEW_YORK, RECEIVED)
    assert parsed.items == EXPECTED[name]  # the same from the raw bytes
    for text in texts(parsed.items):
        assert not any(word in text.lower() for word in LEAKS), text


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if _parts(message(n))[1] is not None))
def test_the_html_part_alone_gives_the_same_items(name):
    """Read as if it had come HTML-only, each reply gives the same items: quotes are dropped there too."""
    _, html = _parts(message(name))
    assert parse_items(strip_quoted(html_to_text(html)), NEW_YORK, RECEIVED).items == EXPECTED[name]


def test_a_broken_message_reads_what_it_can_and_never_raises():
    """Unknown charsets, bad base64, unclosed boundaries and tags: whatever text is readable, no error."""
    parsed = parse_reply((FIXTURES / "garbage.eml").read_bytes(), NEW_YORK, RECEIVED)
    assert parsed.items == (Agenda("broken charset still read"),)


@pytest.mark.parametrize(("quote", "text"), [
    ("On Tue, Mar 3, 2026 at 9:14 AM K Club <k@x.example> wrote:", "Gmail"),
    ("On Tue, Mar 3, 2026 at 9:14 AM K Club <\nk@x.example> wrote:", "Gmail wrapped"),
    ("On 3 Mar 2026, at 09:14, K Club <k@x.example>\nwrote:", "Apple Mail wrapped"),
    ("Am 03.03.2026 um 09:14 schrieb K Club <k@x.example>:", "German"),
    ("Le mar. 3 mars 2026 à 09:14, K Club <k@x.example> a écrit :", "French"),
    ("-----Original Message-----", "Outlook"),
    ("________________________________\nFrom: K Club", "Outlook rule"),
    ("From: K Club <k@x.example>\nSent: Tuesday, March 3, 2026 9:14 AM", "Outlook block"),
    ("*From:* K Club <k@x.example>\n*Sent:* Tuesday", "Outlook block in bold"),
    ("From: K Club <k@x.example>\nDate: Tuesday, March 3, 2026", "Outlook Mac"),
    ("-------- Original message --------", "Android"),
    ("---------- Forwarded message ---------", "Gmail forward"),
    ("Begin forwarded message:", "Apple forward"),
    ("-- ", "signature"),
    ("Sent from my iPhone", "iPhone"),
    ("Get Outlook for Android", "Outlook mobile"),
])
def test_every_quote_marker_cuts_the_original(quote, text):
    """Below each client's marker nothing is read, whatever item-looking lines follow."""
    parsed = parse_items(strip_quoted(f"agenda: mine\n\n{quote}\n\nagenda: old item\ncommit: old"), NEW_YORK,
                         RECEIVED)
    assert parsed.items == (Agenda("mine"),), text


def test_quoted_lines_are_dropped_and_bottom_posted_text_is_read():
    """`>` lines are never items; what the member wrote below a quote still is."""
    text = "> agenda: old item\n>> commit: older\n\nagenda: my answer below the quote"
    assert parse_items(strip_quoted(text), NEW_YORK, RECEIVED).items == (Agenda("my answer below the quote"),)


def test_a_line_that_merely_mentions_a_marker_is_not_a_cut():
    """'From: ...' without a 'Sent:' below, or 'On Monday we...' without 'wrote:', is the member's text."""
    text = "From: the last meeting, two things\nagenda: one\nOn Monday I wrote the draft\ncelebrate: done!"
    assert parse_items(strip_quoted(text), NEW_YORK, RECEIVED).items == (Agenda("one"), Celebrate("done!"))


def test_keywords_bullets_and_undo():
    """Any letter case, optional -, * or • before, bold marks around the keyword; 'undo' alone is Undo."""
    text = "COMMIT: a\n  - Agenda: b\n* celebrate: c\n• done: 3\n**Agenda:** d\nUndo\nundo please\nDone with it."
    assert parse_items(text, NEW_YORK, RECEIVED).items == (
        Commit("a"), Agenda("b"), Celebrate("c"), Done(3), Agenda("d"), Undo())


def test_done_takes_a_number_several_numbers_or_the_start_of_a_goal():
    """'done: #2', 'done: 1, 3 and 4' (each a Done) and 'done: K award' (a goal's text, matched later)."""
    assert parse_items("done: #2\ndone: 1, 3 and 4\ndone: K award", NEW_YORK, RECEIVED).items == (
        Done(2), Done(1), Done(3), Done(4), Done("K award"))


@pytest.mark.parametrize(("line", "why"), [
    ("commit:", "nothing after"),
    ("agenda:   ", "nothing after"),
    ("commit: x by 31 February", "not a day of the calendar"),
    ("commit: x by 3/4", "not a date I can read"),
    ("done: 0", "no goal with that number"),
    ("away: next week", "not a date I can read"),
    ("away: 2026-04-10 to 2026-04-01", "ends before it begins"),
    ("away: 2026-04-01 to 2027-06-01", "at most 366 days"),
    ("commit: y by 2099-01-01", "too far"),
])
def test_item_lines_that_cannot_be_read_are_returned_as_not_understood(line, why):
    """The receipt quotes the line back to its author with why it was not taken."""
    parsed = parse_items(line, NEW_YORK, RECEIVED)
    assert parsed.items == () and len(parsed.not_understood) == 1
    assert parsed.not_understood[0].line == line.strip() and why in parsed.not_understood[0].why


def test_a_by_that_is_not_a_date_is_part_of_the_commitment():
    """'by Li' or 'by Friday' is not a date: the whole line is the commitment, with no due date."""
    assert parse_items("commit: get feedback by Li", NEW_YORK, RECEIVED).items == (Commit("get feedback by Li"),)


@pytest.mark.parametrize(("written", "expected"), [
    ("2026-03-20", date(2026, 3, 20)), ("15 March", date(2026, 3, 15)), ("Mar 15", date(2026, 3, 15)),
    ("March 15th, 2027", date(2027, 3, 15)), ("1 February", date(2027, 2, 1)), ("Sept 3", date(2026, 9, 3)),
    ("Fri, 13 March", date(2026, 3, 13)), ("5 March", date(2026, 3, 5)), ("29 Feb", date(2028, 2, 29)),
])
def test_dates_without_a_year_are_the_next_such_day(written, expected):
    """A day without a year is the next one on or after the day the reply came (in the member's zone)."""
    assert read_date(written, date(2026, 3, 5)) == expected


def test_the_day_a_reply_came_is_the_members_day():
    """At 02:00 UTC on 15 March it is still the 14th in New York but the 15th in Tokyo."""
    received = datetime(2026, 3, 15, 2, tzinfo=UTC)
    assert parse_items("commit: x by 14 March", NEW_YORK, received).items == (Commit("x", date(2026, 3, 14)),)
    assert parse_items("commit: x by 14 March", ZoneInfo("Asia/Tokyo"), received).items == (
        Commit("x", date(2027, 3, 14)),)


@pytest.mark.parametrize(("written", "first", "last"), [
    ("2026-04-06 to 2026-04-17", date(2026, 4, 6), date(2026, 4, 17)),
    ("1 to 14 April", date(2026, 4, 1), date(2026, 4, 14)),
    ("20 December - 5 January", date(2026, 12, 20), date(2027, 1, 5)),
    ("Apr 6 until Apr 8", date(2026, 4, 6), date(2026, 4, 8)),
    ("2026-04-06", date(2026, 4, 6), date(2026, 4, 6)),
])
def test_time_away(written, first, last):
    """One date or a span, in the forms commitments take; an end without a year follows the start."""
    assert parse_items(f"away: {written}", NEW_YORK, RECEIVED).items == (Away(first, last),)


def test_too_many_items_are_cut_with_a_note():
    """At most 50 items a reply; the note says so."""
    parsed = parse_items("\n".join(f"agenda: item {i}" for i in range(80)), NEW_YORK, RECEIVED)
    assert len(parsed.items) == 50 and parsed.items[-1] == Agenda("item 49")
    assert parsed.notes and "more than 50 items" in parsed.notes[0]


def test_a_long_item_is_cut_with_a_note():
    """An item over 500 characters keeps its first 500."""
    parsed = parse_items("agenda: " + "x" * 2000, NEW_YORK, RECEIVED)
    assert parsed.items == (Agenda("x" * 500),) and "cut" in parsed.notes[0]


def test_a_reply_over_the_size_limit_is_cut_with_a_note():
    """Past 256 KB of text the reply is not read; its beginning still is."""
    parsed = parse_reply("agenda: first\n" + "blah " * 100_000 + "\nagenda: far below", NEW_YORK, RECEIVED)
    assert parsed.items == (Agenda("first"),) and "longer than 256 KB" in parsed.notes[0]


def test_new_text_of_text_and_of_a_message_agree():
    """The text of a message is what the member wrote: the reply above the quote, trimmed."""
    text, cut = new_text(message("gmail.eml"))
    assert text.startswith("Thanks Li") and text.endswith("Maya") and not cut
    assert NotUnderstood("a", "b") == NotUnderstood("a", "b")  # frozen values compare by value


@pytest.mark.parametrize(("zone", "received", "expected"), [
    # 18:45 UTC on 14 March 2027 is 00:15 on the 15th in Kolkata (+05:30): "14 March" is next year's.
    ("Asia/Kolkata", datetime(2027, 3, 14, 18, 45, tzinfo=UTC), date(2028, 3, 14)),
    ("Asia/Kolkata", datetime(2027, 3, 14, 18, 15, tzinfo=UTC), date(2027, 3, 14)),
    # St John's moves to -02:30 on 14 March 2027 at 02:00 local: 02:45 UTC on the 15th is 00:15 there.
    ("America/St_Johns", datetime(2027, 3, 15, 2, 15, tzinfo=UTC), date(2027, 3, 14)),
    ("America/St_Johns", datetime(2027, 3, 15, 2, 45, tzinfo=UTC), date(2028, 3, 14)),
    # London is still on GMT on 14 March (it changes on 28 March): 23:30 UTC is the 14th there.
    ("Europe/London", datetime(2027, 3, 14, 23, 30, tzinfo=UTC), date(2027, 3, 14)),
    # New York changed that morning (-04:00): 03:30 UTC is 23:30 on the 14th, 04:30 UTC the 15th.
    ("America/New_York", datetime(2027, 3, 15, 3, 30, tzinfo=UTC), date(2027, 3, 14)),
    ("America/New_York", datetime(2027, 3, 15, 4, 30, tzinfo=UTC), date(2028, 3, 14)),
])
def test_the_members_day_in_half_hour_zones_and_across_dst(zone, received, expected):
    """The day a reply came is read in the member's zone on that date: half-hour offsets and the
    US and European clock changes move the day boundary, and with it what "by 14 March" means."""
    assert parse_items("commit: x by 14 March", ZoneInfo(zone), received).items == (Commit("x", expected),)


def test_the_members_day_after_the_european_change():
    """00:30 BST on 29 March 2027 is 23:30 UTC on the 28th: for a London member "by 28 March" is next year's."""
    received = datetime(2027, 3, 28, 23, 30, tzinfo=UTC)
    assert parse_items("commit: x by 28 March", ZoneInfo("Europe/London"), received).items == (
        Commit("x", date(2028, 3, 28)),)
