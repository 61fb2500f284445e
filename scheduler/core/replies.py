"""The items in a member's reply: commitments, done goals, agenda items, celebrations, time
away, undo. Pure: a message (or its text), the member's zone and when it arrived in; values out.

One item a line, the keyword first (any letter case), optionally after a `-`, `*` or `•`:

    commit: submit the K award draft by 15 March
    done: 2                      (the number the email showed beside an open goal)
    done: K award draft          (or the start of its text)
    agenda: feedback on my aims page
    celebrate: my first R01 was funded!
    away: 2027-03-01 to 2027-03-14      (or one date)
    undo                         (as a reply to a receipt: remove what that reply added)

Only the text the member wrote is read (scheduler.core.replytext drops the quoted original,
signatures and Outlook's header block). A line that starts with a keyword and a colon but
cannot be read (an empty commitment, a date that does not exist) comes back as NotUnderstood,
for the receipt to show its author; any other line is conversation and is left alone.
Dates without a year ("15 March", "Mar 15") are the next such day in the member's zone, on or
after the day the reply arrived. Bounded: MAX_ITEMS items, MAX_ITEM_CHARS characters each.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email.message import Message
from zoneinfo import ZoneInfo

from scheduler.core.replytext import MAX_CHARS, new_text

MAX_ITEMS = 50          # items taken from one reply; more are cut, with a note
MAX_ITEM_CHARS = 500    # of one item's text; longer is cut, with a note
MAX_AWAY_DAYS = 366     # one `away:` span at most
MAX_YEARS_AHEAD = 5     # a date further ahead than this is a typo, not a plan


@dataclass(frozen=True)
class Commit:
    text: str
    due: date | None = None


@dataclass(frozen=True)
class Done:
    ref: int | str      # the goal's number in the email, or the start of its text


@dataclass(frozen=True)
class Agenda:
    text: str


@dataclass(frozen=True)
class Celebrate:
    text: str


@dataclass(frozen=True)
class Away:
    first: date
    last: date


@dataclass(frozen=True)
class Undo:
    pass


Item = Commit | Done | Agenda | Celebrate | Away | Undo


@dataclass(frozen=True)
class NotUnderstood:
    line: str           # what the member wrote (at most MAX_ITEM_CHARS), quoted back only to them
    why: str            # one short sentence for the receipt


@dataclass(frozen=True)
class ParsedReply:
    items: tuple[Item, ...] = ()
    not_understood: tuple[NotUnderstood, ...] = ()
    notes: tuple[str, ...] = ()     # what was cut (a reply too long, too many items)


KEYWORDS = ("commit", "done", "agenda", "celebrate", "away")
_BULLET = r"[-*•·‣◦–—]"
_ITEM = re.compile(rf"^(?:{_BULLET}\s*)*\**\s*({'|'.join(KEYWORDS)})\s*\**\s*[:：]\**(.*)$", re.IGNORECASE)
_UNDO = re.compile(rf"^(?:{_BULLET}\s*)*\**\s*undo\s*\**\s*[.!]?$", re.IGNORECASE)

_MONTHS = {name: i + 1 for i, names in enumerate((
    "january jan", "february feb", "march mar", "april apr", "may", "june jun", "july jul",
    "august aug", "september sep sept", "october oct", "november nov", "december dec")) for name in names.split()}
_MONTH = r"(?P<month>[a-z]{3,9})\.?"
_WEEKDAY = r"(?:[a-z]{3,9},?\s+)?"                 # "Fri, 13 March": the weekday is not checked
_DAY, _YEAR = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?", r",?(?:\s+(?P<year>\d{4}))?"
_DATE_FORMS = [
    re.compile(r"^(?P<year>\d{4})-(?P<num>\d{1,2})-(?P<day>\d{1,2})$"),
    re.compile(rf"^{_WEEKDAY}{_DAY}\s+(?:of\s+)?{_MONTH}{_YEAR}$", re.IGNORECASE),
    re.compile(rf"^{_WEEKDAY}{_MONTH}\s+{_DAY}{_YEAR}$", re.IGNORECASE),
]
# What a member may have meant as a date: a form above, or digits with slashes or dots, which
# are ambiguous (3/4 is March or April) and so refused with the forms that work.
_DATEISH = re.compile(r"^(\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[/.]\d{1,2}([/.]\d{2,4})?|"
                      r"(?:[a-z]{3,9},?\s+)?(\d{1,2}(st|nd|rd|th)?\s+(of\s+)?[a-z]{3,9}\.?|[a-z]{3,9}\.?\s+\d{1,2}"
                      r"(st|nd|rd|th)?),?(\s+\d{4})?)$", re.IGNORECASE)
_BY = re.compile(r"^(?P<text>.*\S)\s+by\s+(?P<when>[^\s].{0,40})$", re.IGNORECASE)
_RANGE = re.compile(r"^(?P<first>.+?)\s*(?:\bto\b|\buntil\b|\bthrough\b|–|—|\s-\s)\s*(?P<last>.+)$", re.IGNORECASE)
# "done: 1, 3", "done: #1 and #3": several numbers on one line.
_NUMBERS = re.compile(r"^#?\d{1,6}(?:\s*(?:,|&|\band\b)\s*#?\d{1,6})+\.?$", re.IGNORECASE)
HOW_TO_WRITE_DATES = "write dates as 2027-03-15, 15 March or Mar 15"


def parse_reply(message: Message | bytes | str, zone: ZoneInfo, received: datetime) -> ParsedReply:
    """The items in a reply (a message, its bytes, or its text), read in the member's zone."""
    text, cut = new_text(message)
    parsed = parse_items(text, zone, received)
    if cut:
        note = f"Your reply was longer than {MAX_CHARS // 1024} KB; only its beginning was read."
        return ParsedReply(parsed.items, parsed.not_understood, (note, *parsed.notes))
    return parsed


def parse_items(text: str, zone: ZoneInfo, received: datetime) -> ParsedReply:
    """The items in text the member wrote (already without quotes and signature)."""
    today = received.astimezone(zone).date()
    items: list[Item] = []
    wrong: list[NotUnderstood] = []
    notes: list[str] = []
    long_cut = False
    for raw in text[:MAX_CHARS].splitlines():
        line = raw.strip()
        if not line or len(line) > 64 * 1024:  # a megabyte line is no item; reading it costs time
            continue
        if len(line) <= 40 and _UNDO.match(line):
            found: list[Item | NotUnderstood] = [Undo()]
        else:
            match = _ITEM.match(line[:MAX_ITEM_CHARS + 40])
            if match is None:
                continue
            value = _clean(line[match.start(2):])
            if len(value) > MAX_ITEM_CHARS:
                value, long_cut = value[:MAX_ITEM_CHARS].rstrip(), True
            found = _items(match.group(1).lower(), value, line, today)
        if len(items) + len(wrong) + len(found) > MAX_ITEMS:
            notes.append(f"Your reply had more than {MAX_ITEMS} items; only the first {MAX_ITEMS} were read.")
            break
        for one in found:
            (wrong if isinstance(one, NotUnderstood) else items).append(one)  # type: ignore[arg-type]
    if long_cut:
        notes.append(f"An item longer than {MAX_ITEM_CHARS} characters was cut to its first {MAX_ITEM_CHARS}.")
    return ParsedReply(tuple(items), tuple(wrong), tuple(notes))


def _clean(value: str) -> str:
    """The item's text without the bold or italics marks a mail program may have added."""
    return re.sub(r"\s+", " ", value.strip().strip("*_").strip())


def _items(keyword: str, value: str, line: str, today: date) -> list[Item | NotUnderstood]:
    """What one item line says: one item, or several for "done: 1, 3" ("done: 1 and 3")."""
    if keyword == "done" and _NUMBERS.match(value):
        return [_item(keyword, n, line, today) for n in re.findall(r"\d+", value)[:MAX_ITEMS]]
    return [_item(keyword, value, line, today)]


def _item(keyword: str, value: str, line: str, today: date) -> Item | NotUnderstood:
    shown = line[:MAX_ITEM_CHARS]
    if not value:
        return NotUnderstood(shown, f"there is nothing after \"{keyword}:\".")
    if keyword == "commit":
        by = _BY.match(value)
        if by and _DATEISH.match(by.group("when").strip().rstrip(".!")):
            due = read_date(by.group("when").strip().rstrip(".!"), today)
            if isinstance(due, str):
                return NotUnderstood(shown, due)
            return Commit(by.group("text"), due)
        return Commit(value)
    if keyword == "done":
        number = value.rstrip(".").lstrip("#").strip()
        if number.isdigit():
            n = int(number[:6])
            return Done(n) if 1 <= n <= 999 else NotUnderstood(shown, "there is no goal with that number.")
        return Done(value)
    if keyword == "agenda":
        return Agenda(value)
    if keyword == "celebrate":
        return Celebrate(value)
    return _away(value, shown, today)


def _away(value: str, shown: str, today: date) -> Away | NotUnderstood:
    value = value.rstrip(".!")
    span = _RANGE.match(value) if not _DATEISH.match(value) else None
    first_text, last_text = (span.group("first"), span.group("last")) if span else (value, value)
    first_text, last_text = first_text.strip(), last_text.strip()
    if span and first_text.isdigit() and len(first_text) <= 2:
        # "1 to 14 March": the start's month is the end's.
        last = read_date(last_text, today)
        first = last if isinstance(last, str) else _day_before(last, int(first_text))
    else:
        first = read_date(first_text, today)
        # The end is read from the start: "20 December to 5 January" ends in the next year.
        last = read_date(last_text, first) if span and not isinstance(first, str) else first
    if isinstance(first, str):
        return NotUnderstood(shown, first)
    if isinstance(last, str):
        return NotUnderstood(shown, last)
    if last < first:
        return NotUnderstood(shown, "the time away ends before it begins.")
    if (last - first).days >= MAX_AWAY_DAYS:
        return NotUnderstood(shown, f"one time away can be at most {MAX_AWAY_DAYS} days; send it in parts.")
    return Away(first, last)


def read_date(text: str, today: date) -> date | str:
    """A date a member wrote, or why it cannot be read. Without a year it is the next such day
    on or after `today` (in the member's zone)."""
    text = text.strip()
    for form in _DATE_FORMS:
        m = form.match(text)
        if m is None:
            continue
        groups = m.groupdict()
        month = int(groups["num"]) if groups.get("num") else _MONTHS.get((groups.get("month") or "").lower())
        if month is None:
            return f"\"{text[:40]}\" is not a date I can read; {HOW_TO_WRITE_DATES}."
        day = int(groups["day"])
        try:
            if groups.get("year"):
                found = date(int(groups["year"]), month, day)
            else:
                found = date(today.year, month, day) if _exists(today.year, month, day) else None
                if found is None or found < today:
                    year = today.year + 1
                    while not _exists(year, month, day) and year < today.year + 8:  # 29 February
                        year += 1
                    found = date(year, month, day)
        except ValueError:
            return f"\"{text[:40]}\" is not a day of the calendar."
        if found < today - timedelta(days=366) or found > today + timedelta(days=366 * MAX_YEARS_AHEAD):
            return f"\"{text[:40]}\" is too far from today; {HOW_TO_WRITE_DATES}."
        return found
    return f"\"{text[:40]}\" is not a date I can read; {HOW_TO_WRITE_DATES}."


def _day_before(last: date, day: int) -> date | str:
    """Day `day` of `last`'s month, or of the month before if that is after `last`."""
    year, month = (last.year, last.month) if day <= last.day else (
        (last.year, last.month - 1) if last.month > 1 else (last.year - 1, 12))
    return date(year, month, day) if _exists(year, month, day) else f"day {day} is not a day of that month."


def _exists(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True
