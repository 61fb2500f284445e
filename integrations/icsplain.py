"""The plain one-off events of a calendar text that lie wholly before or after a window, cut
in one substitution (for integrations/icsskip.py, which reads everything else).

A member's export of years holds tens of thousands of one-off events, each a VEVENT with a
UID, a DTSTART and a DTEND and nothing that makes more than one occurrence. Deciding each
in Python costs a few microseconds; here one expression, made for the window, matches only
those whose dates are on days before it or after it (as YYYYMMDD text, compared digit by
digit), and `re.Pattern.subn` removes them in C. A one-off is cut only if its UID is its
own in the whole text (icalendar groups events by UID, and a series' master or a second
copy of an event may carry it): the UIDs several events share are excluded inside the
expression. A UID that icalendar might read otherwise (a parameter, an escape, a folded
line) anywhere in the text means nothing is cut here, and the general reading decides.
"""

from __future__ import annotations

import functools
import re
from collections import Counter

# Shared with icsskip's scan: a line of a VEVENT that neither begins or ends a component nor
# decides its times (possessive, it never passes an END line), and
OTHER = rb"(?!(?:BEGIN|END|RRULE|RDATE|RECURRENCE-ID|DURATION|UID|DTSTART|DTEND)[;:])[^\n]*+\n"
# `params:value` of a DATE or DATE-TIME, no quoted parameter, no VALUE= other than DATE(-TIME)
VALUE = rb"(?:;(?![^:\"\r\n]*VALUE=(?!DATE))[^:\"\r\n]*)?:[ \t\x0b\x0c]*(\d{8})(?:T\d{6}Z?)?[ \t\x0b\x0c]*"


def _below(day: bytes) -> bytes:
    """An expression for the YYYYMMDD texts that sort before `day` (8 digits)."""
    return b"(?:" + b"|".join(re.escape(day[:i]) + b"[0-%c]" % (day[i] - 1) + b"\\d" * (7 - i)
                              for i in range(8) if day[i] > ord("0")) + b"|(?!))"


def _above(day: bytes) -> bytes:
    """An expression for the YYYYMMDD texts that sort after `day` (8 digits)."""
    return b"(?:" + b"|".join(re.escape(day[:i]) + b"[%c-9]" % (day[i] + 1) + b"\\d" * (7 - i)
                              for i in range(8) if day[i] < ord("9")) + b"|(?!))"


# A UID's value without the blanks around it, read in linear time: a lazy `[^\r\n]*?` before
# trailing blanks would try every split of a long run of blanks (quadratic; a hostile line
# of a megabyte of spaces). Here a run of blanks is taken only when more text follows it.
UID_TEXT = rb"(?:[^\r\n\\ \t\x0b\x0c]|[ \t\x0b\x0c]++(?=[^\r\n\\ \t\x0b\x0c]))*+"

# Every UID line: its value (stripped as icsskip's `fast` branch strips it) in the first group,
# or, for a line icalendar may read as another UID (a parameter, an escape, a continuation
# line), the character that made it so in the second.
_UIDS = re.compile(rb"\n[Uu][Ii][Dd](?::[ \t\x0b\x0c]*+(" + UID_TEXT + rb")[ \t\x0b\x0c]*+\r?\n(?![ \t])|(.|\n))")
_WORTH = 1000        # events below which the general reading is quicker than compiling (~2 ms)
_SHARED_MAX = 1000   # UIDs of several events (series with moved instances) the expression excludes
_SHARED_BYTES = 200  # the longest such UID written into it


@functools.lru_cache(maxsize=32)
def _plain_outside(lo_day: bytes, hi_day: bytes, shared: frozenset[bytes]) -> re.Pattern:
    """icsskip's scan's `fast` branch (one whole plain one-off, through its line end), with dates
    only on days before `lo_day` or only after `hi_day` (the end on the start's side), and a
    UID none of `shared`. BEGIN:VEVENT is matched in capitals after a newline, so the engine
    jumps from one to the next (a lower-case one is left to the general reading); the rest
    ignores case as icsskip's scan does (a UID in `shared` in other capitals is excluded too)."""
    others = rb"(?!" + _one_of(shared) + rb"[ \t\x0b\x0c]*+\r?\n)" if shared else b""
    below, above = _below(lo_day), _above(hi_day)
    first = VALUE.replace(rb"(\d{8})", b"(?:(?P<before>" + below + b")|" + above + b")")
    last = VALUE.replace(rb"(\d{8})", b"(?(before)" + below + b"|" + above + b")")
    return re.compile(
        rb"(?<=\n)BEGIN:VEVENT(?i:[ \t]*\r?\n(?:" + OTHER + rb")*+"
        rb"UID:[ \t\x0b\x0c]*+" + others + UID_TEXT + rb"[ \t\x0b\x0c]*+\r?\n(?![ \t])(?:" + OTHER + rb")*+"
        rb"DTSTART" + first + rb"\r?\n(?![ \t])(?:" + OTHER + rb")*+"
        rb"DTEND" + last + rb"\r?\n(?![ \t])(?:" + OTHER + rb")*+"
        rb"END:VEVENT[ \t]*)(?:\r?\n|\Z)")


def _one_of(words: frozenset[bytes]) -> bytes:
    """An expression matching exactly `words`, as a trie: UIDs often share a long beginning
    (Outlook's start with the same 40 characters), and a plain alternation would compare that
    beginning once per word for every event."""
    trie: dict = {}
    for word in words:
        node = trie
        for byte in word:
            node = node.setdefault(byte, {})
        node[None] = {}

    def emit(node: dict) -> bytes:
        ends = None in node
        alternatives = [re.escape(bytes([byte])) + emit(child) for byte, child in sorted(
            (k, v) for k, v in node.items() if k is not None)]
        if not alternatives:
            return b""
        if len(alternatives) == 1 and not ends:
            return alternatives[0]
        return b"(?:" + b"|".join(alternatives) + b")" + (b"?" if ends else b"")

    return b"(?:" + emit(trie) + b")"


def cut_plain(data: bytes, lo_day: bytes, hi_day: bytes) -> tuple[bytes, int]:
    """`data` without the plain one-offs (as the scan's `fast` branch reads them) wholly on
    days before `lo_day` or after `hi_day` whose UID no other event has, and how many, in one
    substitution; (`data`, 0) when a UID anywhere could be read otherwise by icalendar, or
    the UIDs shared by several events are too many or too long to write into the expression,
    or the text holds too few events to repay making an expression for it."""
    if data.count(b"BEGIN:VEVENT") < _WORTH:
        return data, 0
    text = b"\n" + data
    repeated = []
    for (uid, odd), n in Counter(_UIDS.findall(text)).items():
        if odd:
            return data, 0  # two UIDs written differently here might be one for icalendar
        if n > 1:
            repeated.append(uid)
    shared = frozenset(repeated)
    if len(shared) > _SHARED_MAX or any(len(u) > _SHARED_BYTES for u in shared):
        return data, 0
    text, cut = _plain_outside(lo_day, hi_day, shared).subn(b"", text)
    return text[1:], cut
