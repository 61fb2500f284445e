"""Leaving out, before parsing, the events of a calendar text that cannot touch a window.

A member's calendar is usually an export of years of events, of which only the next weeks
matter; `Calendar.from_ical` costs the same for every event, so the events that provably
end before the window (or start after it) are cut from the *text*, and only the rest is
parsed. Nothing here is needed for correctness: every rule keeps an event whenever there is
doubt, and the caller gets the same busy time with or without this step (the property and
corpus tests in tests/integrations/test_icsskip*.py compare both).

What is cut, per VEVENT directly inside the VCALENDAR:
- a one-off event whose end (DTEND, DTSTART + DURATION, or the RFC 5545 default) is before
  the window, or whose start is after it;
- a recurring event (one RRULE, no RDATE) whose last possible occurrence ends before the
  window: UNTIL bounds it, or COUNT times the longest gap its FREQ/INTERVAL allows (only
  for rules whose gaps are known: no BY-parts, or plain weekdays in BYDAY for a daily or
  weekly rule; a monthly rule on the 29th-31st or a yearly one on 29 February is kept);
  or whose first occurrence is after the window.
Events are decided together by UID, because the events of one UID form one series for
recurring-ical-events (the master, its moved instances, their SEQUENCE): a UID is cut only
when every one of its events may go, so a moved instance (RECURRENCE-ID) that lands in the
window keeps its master, and a master that is kept keeps its overrides, except those whose
own time and whose original occurrence both end long before the window. A UID with a
RANGE=THISANDFUTURE override is always kept whole.

Times are compared without their zones: a TZID, a floating time or a date is read as if it
were UTC and every comparison gets `SLACK` (a week) on top, more than any UTC offset an
iCalendar VTIMEZONE can express (±99:59), so no zone has to be resolved here. VTIMEZONE and
everything else outside the VEVENTs is kept as it is.

Bounded like the rest of the read: most of a long history is plain one-offs, which
`icsplain.cut_plain` removes first in one substitution; then one pass of one regular
expression over what is left finds the component boundaries and the few properties read (no
backtracking across lines). A text whose structure is not the plain VCALENDAR > VEVENT
nesting (a missing END, two calendars, a byte-order mark before BEGIN) is returned unchanged.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from .icsplain import OTHER, UID_TEXT, VALUE, cut_plain

SLACK = timedelta(days=7)

_NAMES = {b"DTSTART", b"DTEND", b"DURATION", b"RRULE", b"RDATE", b"RECURRENCE-ID", b"UID"}
# One expression scans the text; each branch starts with the newline before a line (the text
# gets one put in front) rather than `^`, so the engine skips ahead to the next newline.
# - `fast`, then `block`: a whole plain VEVENT in one match, so that a one-off costs one step
#   of the scan, not one per line: BEGIN:VEVENT, lines none of which begins or ends a component
#   or makes more than a one-off (RRULE, RDATE, RECURRENCE-ID, DURATION), END:VEVENT. `fast`
#   takes UID, DTSTART and DTEND (once each, in the order Outlook, Google and Apple write them,
#   simple values) into its groups, decided without Python; for `block`, `_PLAIN_PROPS` reads
#   them in one call. A VEVENT with anything else inside (a VALARM, a rule) fails both at its
#   first such line and is read line by line; each BEGIN:VEVENT is tried once and the
#   repetitions are possessive and cannot pass an END line, so the scan stays linear. Lines
#   passed over are skipped with a one-byte class (a lone CR ends no line, as for icalendar).
# - otherwise one line: a component boundary or one of the few properties that decide, with its
#   continuation lines (folding); everything else is skipped by the expression itself.


@functools.cache  # compiled on first use (~20 ms): a command whose answers are kept never cuts
def _scan() -> re.Pattern:
    return re.compile(
        rb"\n(?:(?P<fast>BEGIN:VEVENT[ \t]*\r?\n(?:" + OTHER + rb")*+"
        rb"UID:[ \t\x0b\x0c]*+(" + UID_TEXT + rb")[ \t\x0b\x0c]*+\r?\n(?![ \t])(?:" + OTHER + rb")*+"
        rb"DTSTART(" + VALUE + rb")\r?\n(?![ \t])(?:" + OTHER + rb")*+"
        rb"DTEND(" + VALUE + rb")\r?\n(?![ \t])(?:" + OTHER + rb")*+"
        rb"END:VEVENT[ \t]*)(?=\r?\n|\Z)"
        rb"|(?P<block>BEGIN:VEVENT[ \t]*\r?\n"
        rb"(?:(?!(?:BEGIN|END|RRULE|RDATE|RECURRENCE-ID|DURATION)[;:])[^\n]*+\n)*+"
        rb"END:VEVENT[ \t]*)(?=\r?\n|\Z)"
        rb"|(BEGIN|END|DTSTART|DTEND|DURATION|RRULE|RDATE|RECURRENCE-ID|UID)"
        rb"([;:][^\r\n]*(?:\r?\n[ \t][^\r\n]*)*))", re.I)


_PLAIN_PROPS = re.compile(rb"\n(UID|DTSTART|DTEND)([;:][^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)", re.I)
_UNFOLD = re.compile(rb"\r?\n[ \t]")
_DATE_TIME = re.compile(rb"\d{8}(?:T\d{6}Z?)?")
_DURATION = re.compile(rb"([+-]?)P(?:(\d{1,7})W)?(?:(\d{1,7})D)?(?:T(?:(\d{1,8})H)?(?:(\d{1,10})M)?(?:(\d{1,12})S)?)?")
_WEEKDAYS = {b"MO", b"TU", b"WE", b"TH", b"FR", b"SA", b"SU"}
# The longest gap between two occurrences of a rule without BY-parts, per unit of INTERVAL.
_GAP = {b"SECONDLY": timedelta(seconds=1), b"MINUTELY": timedelta(minutes=1), b"HOURLY": timedelta(hours=1),
        b"DAILY": timedelta(days=1), b"WEEKLY": timedelta(days=7), b"MONTHLY": timedelta(days=31),
        b"YEARLY": timedelta(days=366)}
_DOUBT = object()  # a value that could not be read here: the event is kept


class _Doubt(Exception):
    """Something this reader does not understand for sure: keep the event."""


@dataclass(slots=True)
class _Block:
    start: int                   # byte offsets of the whole block, BEGIN line to END line's end
    end: int = -1
    props: dict = field(default_factory=dict)  # the event's own DTSTART, DTEND, ... (see _event_blocks)
    uid: bytes | None = None     # set by _scan()'s `fast` branch: the UID as prune() keys it,
    days: tuple | None = None    # and the YYYYMMDD of DTSTART and DTEND


def prune(data: bytes, lo: datetime, hi: datetime) -> tuple[bytes, int]:
    """`data` without the VEVENTs that cannot touch [lo, hi] (aware), and how many were left out.

    Anything unexpected returns `data` itself and 0: this step only ever saves work."""
    if not isinstance(data, bytes | bytearray):
        return data, 0
    lo_n = lo.astimezone(UTC).replace(tzinfo=None) - SLACK
    hi_n = hi.astimezone(UTC).replace(tzinfo=None) + SLACK
    lo_day, hi_day = lo_n.strftime("%Y%m%d").encode(), hi_n.strftime("%Y%m%d").encode()
    original = data
    data, plain = cut_plain(bytes(data), lo_day, hi_day)
    blocks = _event_blocks(data)
    if blocks is None:
        return original, 0
    by_uid: dict[bytes, list[tuple[_Block, dict]]] = {}
    for n, block in enumerate(blocks):
        props = block.props
        if block.uid is not None:
            by_uid.setdefault(block.uid, []).append((block, props))
            continue
        uid = props.get(b"UID")
        if uid is not None:
            if uid is _DOUBT or not uid.startswith(b":") or b"\\" in uid:
                # A UID this reader may read differently from icalendar (parameters, escapes,
                # two of them) could split a series in two here: then nothing is cut at all.
                return original, 0
            uid = uid[1:].strip()
        key = uid if uid is not None else b"\0%d" % n  # no UID: a series of its own
        by_uid.setdefault(key, []).append((block, props))
    cut: list[_Block] = []
    for events in by_uid.values():
        if len(events) == 1 and (days := events[0][0].days) is not None:
            plainly = max(days) < lo_day or min(days) > hi_day  # as _plainly_outside
        else:
            plainly = len(events) == 1 and _plainly_outside(events[0][1], lo_day, hi_day)
        if plainly:
            cut.append(events[0][0])
        else:
            cut.extend(_cuttable(events, lo_n, hi_n))
    if not cut:
        return data, plain
    cut.sort(key=lambda b: b.start)
    pieces, at = [], 0
    for block in cut:
        pieces.append(data[at:block.start])
        at = block.end
    pieces.append(data[at:])
    return b"".join(pieces), plain + len(cut)


def _event_blocks(data: bytes) -> list[_Block] | None:
    """The VEVENT blocks directly inside the one VCALENDAR, each with its own properties
    (raw, unfolded, `params:value`; one seen twice becomes `_DOUBT`; a VALARM's are not the
    event's), in one pass of one expression over the text; None when the structure is not plain."""
    stack: list[bytes] = []
    blocks: list[_Block] = []
    calendars = 0
    props: dict | None = None  # the properties of the VEVENT being read, while directly in it
    for match in _scan().finditer(b"\n" + data):  # offsets in `data`: match.start() is its newline
        fast, uid, first, first_day, last, last_day, name, value = match.group(1, 2, 3, 4, 5, 6, 8, 9)
        if name is None:  # a whole plain VEVENT (see _scan)
            if len(stack) != 1:
                return None  # not directly in the calendar: not this reader's shape
            if fast is not None:
                blocks.append(_Block(match.start(), _line_end(data, match.end() - 1),
                                     {b"UID": b":" + uid, b"DTSTART": first, b"DTEND": last}, uid, (first_day, last_day)))
                continue
            text = match.group("block")
            found = _PLAIN_PROPS.findall(text)
            props = dict(found)
            if len(props) != len(found) or not props.keys() <= _PLAIN or b"\n " in text or b"\n\t" in text:
                props = {}  # rare (a property twice, lower case, folded lines): one at a time
                for prop, raw in found:
                    prop = prop.upper()
                    if b"\n" in raw:
                        raw = _UNFOLD.sub(b"", raw)
                    props[prop] = _DOUBT if prop in props else raw
            blocks.append(_Block(match.start(), _line_end(data, match.end() - 1), props))
            props = None
            continue
        if name not in _NAMES:
            name = name.upper()  # rare: names are case-insensitive, but written in capitals
        if name in _NAMES:
            if props is not None:
                if b"\n" in value:
                    value = _UNFOLD.sub(b"", value)
                props[name] = _DOUBT if name in props else value
            continue
        if not value.startswith(b":"):
            return None
        component = value[1:].strip().upper()
        if name == b"BEGIN":
            if not stack:
                calendars += 1
                if component != b"VCALENDAR" or calendars > 1:
                    return None
            elif component == b"VEVENT" and len(stack) == 1:
                blocks.append(_Block(match.start()))  # the line's first byte in `data`
            stack.append(component)
            props = blocks[-1].props if len(stack) == 2 and component == b"VEVENT" else None
        else:
            if not stack or stack[-1] != component:
                return None
            stack.pop()
            if component == b"VEVENT" and len(stack) == 1:
                blocks[-1].end = _line_end(data, match.end() - 1)
            props = blocks[-1].props if len(stack) == 2 and stack[1] == b"VEVENT" else None
    if stack or not calendars:
        return None
    return blocks


def _line_end(data: bytes, at: int) -> int:
    newline = data.find(b"\n", at)
    return len(data) if newline < 0 else newline + 1


_PLAIN = {b"UID", b"DTSTART", b"DTEND"}
# `params:value` of a DATE or DATE-TIME, the params without a quote (which may hide a colon),
# the value with the whitespace `bytes.strip` would remove around it.
_PLAIN_DAY = re.compile(rb'([^:"]*):[ \t\r\n\x0b\x0c]*(\d{8})(?:T\d{6}Z?)?[ \t\r\n\x0b\x0c]*')


def _plainly_outside(props: dict, lo_day: bytes, hi_day: bytes) -> bool:
    """The common case, decided on the text alone: a one-off event with DTSTART and DTEND
    both on days before the window's first day, or both after its last (dates of the form
    YYYYMMDD compare as text; an end before the start is swapped by recurring-ical-events,
    which keeps it on the same side). False: not decided here."""
    if not props.keys() <= _PLAIN or b"DTSTART" not in props or b"DTEND" not in props:
        return False
    first, last = _day(props[b"DTSTART"]), _day(props[b"DTEND"])
    if first is None or last is None:
        return False
    return max(first, last) < lo_day or min(first, last) > hi_day


def _day(raw) -> bytes | None:
    """The YYYYMMDD of a DATE or DATE-TIME value, or None when it is not plainly one."""
    if raw is _DOUBT:
        return None
    match = _PLAIN_DAY.fullmatch(raw)
    if match is None:
        return None
    params = match.group(1)
    if params and b"VALUE=" in params.upper() and b"VALUE=DATE" not in params.upper():
        return None
    return match.group(2)


def _cuttable(events: list[tuple[_Block, dict]], lo: datetime, hi: datetime) -> list[_Block]:
    """The blocks of one UID that may go: all of them, or only old overrides of a kept master."""
    try:
        spans = [_span(props) for _, props in events]
    except _Doubt:
        return []
    if all(last < lo or first > hi for first, last, _ in spans):
        return [block for block, _ in events]
    masters = [i for i, (_, props) in enumerate(events) if b"RECURRENCE-ID" not in props]
    if len(masters) != 1:
        return []
    duration = spans[masters[0]][2]
    cut = []
    for (block, props), (first, last, _) in zip(events, spans, strict=True):
        if b"RECURRENCE-ID" not in props or not last < lo:
            continue
        try:
            original = _recurrence_id(props[b"RECURRENCE-ID"])
        except _Doubt:
            continue
        # Without this override the master's own occurrence comes back, at its original time.
        if original + duration < lo:
            cut.append(block)
    return cut


def _span(props: dict) -> tuple[datetime, datetime, timedelta]:
    """(first start, last end, one occurrence's length) of an event, zone-less and widened by
    nothing yet; `datetime.max` as the last end of a rule without an end. Raises _Doubt."""
    if b"RDATE" in props or b"DTSTART" not in props:
        raise _Doubt
    if b"RECURRENCE-ID" in props:
        _recurrence_id(props[b"RECURRENCE-ID"])  # RANGE=THISANDFUTURE, a bad value: keep
        if b"RRULE" in props:
            raise _Doubt
    start = _when(props[b"DTSTART"])
    if b"DTEND" in props and b"DURATION" in props:
        raise _Doubt
    if b"DTEND" in props:
        length = _when(props[b"DTEND"]) - start
    elif b"DURATION" in props:
        length = _duration(props[b"DURATION"])
    else:
        length = timedelta(days=1)  # the longest default (a date's whole day)
    if length < timedelta(0):
        raise _Doubt  # recurring-ical-events swaps such an event's ends, rule and all
    rule = props.get(b"RRULE")
    if rule is None:
        return start, _add(start, length), length
    last_start = _last_start(rule, start)
    return start, datetime.max if last_start is None else _add(last_start, length), length


def _recurrence_id(raw) -> datetime:
    if not isinstance(raw, bytes):
        raise _Doubt
    params = raw.partition(b":")[0].upper()
    if b"RANGE" in params:
        raise _Doubt
    return _when(raw)


def _when(raw) -> datetime:
    """A DATE or DATE-TIME value as a naive datetime (the zone is covered by SLACK)."""
    if not isinstance(raw, bytes):
        raise _Doubt
    params, colon, value = raw.partition(b":")
    if not colon or b'"' in params:
        raise _Doubt  # a quoted parameter may hold a colon: not worth reading here
    upper = params.upper()
    if b"VALUE=" in upper and b"VALUE=DATE" not in upper:
        raise _Doubt  # VALUE=PERIOD and the like
    value = value.strip()
    if _DATE_TIME.fullmatch(value) is None:
        raise _Doubt
    v = value
    try:
        if len(v) == 8:
            return datetime(int(v[:4]), int(v[4:6]), int(v[6:8]))
        return datetime(int(v[:4]), int(v[4:6]), int(v[6:8]), int(v[9:11]), int(v[11:13]), int(v[13:15]))
    except ValueError:
        raise _Doubt from None


def _duration(raw) -> timedelta:
    if not isinstance(raw, bytes) or not raw.startswith(b":"):
        raise _Doubt
    match = _DURATION.fullmatch(raw[1:].strip())
    if match is None or match.group(1) == b"-" or match.group(0) in (b"P", b"+P"):
        raise _Doubt  # a negative length is swapped by recurring-ical-events: not guessed here
    weeks, days, hours, minutes, seconds = (int(g or 0) for g in match.groups()[1:])
    try:
        return timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
    except OverflowError:
        raise _Doubt from None


def _last_start(raw, start: datetime) -> datetime | None:
    """The latest start a rule can give (None: it never ends). Raises _Doubt."""
    if not isinstance(raw, bytes) or not raw.startswith(b":"):
        raise _Doubt
    parts: dict[bytes, bytes] = {}
    for item in raw[1:].strip().split(b";"):
        key, equals, value = item.partition(b"=")
        key = key.strip().upper()
        if not equals or key in parts:
            raise _Doubt
        parts[key] = value.strip().upper()
    freq = parts.pop(b"FREQ", None)
    if freq not in _GAP:
        raise _Doubt
    parts.pop(b"WKST", None)
    try:
        interval = int(parts.pop(b"INTERVAL", b"1"))
    except ValueError:
        raise _Doubt from None
    if interval < 1:
        raise _Doubt
    until, count = parts.pop(b"UNTIL", None), parts.pop(b"COUNT", None)
    if until is not None and count is not None:
        raise _Doubt
    if until is not None:
        # DTSTART itself is an occurrence even when UNTIL is before it.
        return max(start, _when(b":" + until))
    if count is None:
        return None
    if not count.isdigit():
        raise _Doubt  # recurring-ical-events drops a negative COUNT: the rule never ends
    byday = parts.pop(b"BYDAY", None)
    if parts:
        raise _Doubt  # BYMONTH, BYSETPOS, ...: gaps this reader does not bound
    gap = _GAP[freq] * interval
    if byday is not None:
        if freq not in (b"DAILY", b"WEEKLY") or not set(byday.split(b",")) <= _WEEKDAYS:
            raise _Doubt
        gap = timedelta(days=7) * interval  # at least one listed weekday in every period
    if (freq == b"MONTHLY" and start.day > 28) or (freq == b"YEARLY" and (start.month, start.day) == (2, 29)):
        raise _Doubt  # months or years without that day are skipped
    return _add(start, gap * (int(count) + 1))


def _add(when: datetime, delta: timedelta) -> datetime:
    try:
        return when + delta
    except OverflowError:
        return datetime.max

