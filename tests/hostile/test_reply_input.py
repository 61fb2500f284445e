"""Replies from anyone: whatever arrives in the reply inbox is read within bounds, never
raises and never takes long (scheduler.core.replies and scheduler.core.replytext)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.core.replies import MAX_ITEM_CHARS, MAX_ITEMS, ParsedReply, parse_reply
from scheduler.core.replytext import MAX_CHARS, html_to_text

ZONE = ZoneInfo("Europe/Berlin")
RECEIVED = datetime(2026, 3, 5, 12, tzinfo=UTC)
# Text that is mostly items and markers, so the interesting paths are taken often.
PIECES = st.sampled_from(["commit: ", "done: ", "agenda: ", "celebrate: ", "away: ", "undo", " by ", " to ",
                          "15 March", "2026-02-30", "Mar 15", "\n", "> ", "On x wrote:", "From: a", "Sent: b",
                          "-- \n", "•", "*", "<blockquote>", "</div>", "\u00a0", "\u200b", "9" * 30])
TEXT = st.lists(st.one_of(PIECES, st.text(max_size=40)), max_size=60).map("".join)


def bounded(parsed: ParsedReply) -> bool:
    items = len(parsed.items) + len(parsed.not_understood)
    return (items <= MAX_ITEMS and len(parsed.notes) <= 3
            and all(len(getattr(i, "text", "") or "") <= MAX_ITEM_CHARS for i in parsed.items)
            and all(len(n.line) <= MAX_ITEM_CHARS for n in parsed.not_understood))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXT)
def test_any_text_is_read_without_error_and_with_bounded_output(text):
    """Any text in: no exception, at most 50 items, none longer than 500 characters."""
    assert bounded(parse_reply(text, ZONE, RECEIVED))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000), st.sampled_from([b"", b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n",
                                                   b"Content-Type: text/html; charset=x-bogus\r\n\r\n"]))
def test_any_bytes_are_read_without_error(raw, head):
    """Any bytes as a message, with or without a MIME header that promises structure: no exception."""
    assert bounded(parse_reply(head + raw, ZONE, RECEIVED))


def finishes(fn, *args, limit: float = 20.0):
    """Runs fn and says it finished within a generous bound (it must not hang, however slow the machine)."""
    start = time.monotonic()
    result = fn(*args)
    assert time.monotonic() - start < limit
    return result


def test_a_megabyte_line_is_no_item_and_costs_little():
    """One line of a megabyte (an item or not) is skipped, not scanned character by character."""
    parsed = finishes(parse_reply, "agenda: " + "x" * 1_000_000 + "\nagenda: " + "y" * 1_000_000, ZONE, RECEIVED)
    assert parsed.items == () and "longer than 256 KB" in parsed.notes[0]


def test_many_short_lines_that_look_like_markers_finish():
    """256 KB of 'On ...' and 'From:' lines (each looked at with the lines after it) is read in time."""
    finishes(parse_reply, "On a\nFrom: b\n" * (MAX_CHARS // 12) + "agenda: x", ZONE, RECEIVED)


def test_deeply_nested_html_is_read():
    """A hundred thousand nested elements, unclosed, and a blockquote never closed: text, no recursion."""
    html = "<div>" * 100_000 + "agenda: deep" + "<blockquote>" * 1000 + "agenda: quoted"
    assert finishes(html_to_text, html) == "agenda: deep"


def test_deeply_nested_multipart_is_read_without_exhausting_the_stack():
    """A message nested 2000 multiparts deep reads as no text, and no error."""
    raw = b"".join(b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i) for i in range(2000))
    parsed = finishes(parse_reply, raw + b"Content-Type: text/plain\r\n\r\nagenda: bottom\r\n", ZONE, RECEIVED)
    assert parsed.items == ()


def test_an_attachment_and_a_forwarded_message_are_not_read():
    """Only the member's own body: a text attachment or an attached message/rfc822 gives no items."""
    msg = EmailMessage()
    msg["From"] = "a@x.example"
    msg.set_content("hello")
    msg.add_attachment("agenda: from an attachment", filename="notes.txt")
    inner = EmailMessage()
    inner.set_content("agenda: from a forwarded message")
    msg.add_attachment(inner)
    assert parse_reply(msg, ZONE, RECEIVED).items == ()


def test_odd_charsets_are_read_as_far_as_they_go():
    """A part in UTF-16, or one whose charset lies, gives what can be read, not an error."""
    msg = EmailMessage()
    msg.set_content("agenda: über".encode("utf-16"), maintype="text", subtype="plain", cte="base64")
    msg.replace_header("Content-Type", "text/plain; charset=utf-16")
    assert [i.text for i in parse_reply(msg, ZONE, RECEIVED).items] == ["über"]
    msg.replace_header("Content-Type", "text/plain; charset=us-ascii")
    assert bounded(parse_reply(msg, ZONE, RECEIVED))


def test_html_that_stalls_a_rescanning_parser_is_read_in_linear_time():
    """Unclosed comments, tags, attributes and declarations by the hundred thousand: read, cut, no stall."""
    for html in ("<!--" * 200_000, "<" * 1_000_000, "<a " * 300_000, "<![CDATA[" * 100_000, "<?" * 400_000,
                 '<a href="' + "x" * 1_000_000, "&#" * 400_000, "<b>x" * 300_000):
        assert len(finishes(html_to_text, html)) <= MAX_CHARS + 1
