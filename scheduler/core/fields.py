"""Value types for config fields, each validated once where it is parsed.

Every parser raises `PydanticCustomError` with a message written for a coordinator:
what is wrong and, where we can guess, what was meant.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cached_property, lru_cache, wraps
from pathlib import PurePath
from typing import Annotated, Any, Callable

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict
from pydantic_core import PydanticCustomError

from scheduler.core.regions import holiday_regions

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def fail(message: str) -> PydanticCustomError:
    """A validation error whose text is shown to the user as is."""
    return PydanticCustomError("friendtor", message.replace("{", "{{").replace("}", "}}"))


def closest(value: str, choices: list[str] | tuple[str, ...], *, cutoff: float = 0.6) -> str | None:
    """The choice closest to `value` ignoring case, or None when nothing is close."""
    by_fold = {c.casefold(): c for c in choices}
    match = difflib.get_close_matches(value.casefold(), list(by_fold), n=1, cutoff=cutoff)
    return by_fold[match[0]] if match else None


def did_you_mean(value: str, choices: list[str] | tuple[str, ...], *, cutoff: float = 0.6) -> str:
    """' (did you mean 'x'?)' for the closest choice, or '' when nothing is close."""
    match = closest(value, choices, cutoff=cutoff)
    return f" (did you mean '{match}'?)" if match else ""


def slug(name: str) -> str:
    """A name as an id: "PAS 2027" is "pas-2027" (a gathering's cycle key, conference names compared)."""
    return re.sub(r"[^a-z0-9]+", "-", name.casefold()).strip("-") or "x"


def by_text(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`parse` keeping its answer per text (a bad one raises, so is not kept), for parsers whose answer
    depends on the text alone: an address or a zone recurs across members, goals and groups."""
    known = lru_cache(maxsize=16384)(parse)
    return wraps(parse)(lambda value: known(value) if type(value) is str else parse(value))


def show(value: Any, limit: int = 80) -> str:
    """A value as the user wrote it in TOML (2026-01-13, true, [1, 2]), on one line, cut to `limit`.

    Strings keep Python's quoting, which escapes line breaks and control characters, so a
    message that quotes a bad value is still one line.
    """
    text = _toml_repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _toml_repr(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (date, time)):  # datetime is a date
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_repr(v) for v in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{toml_key(k)} = {_toml_repr(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    return repr(value)


def toml_key(key: Any) -> str:
    """A key as TOML shows it: bare when it can be, else quoted with its escapes."""
    key = str(key)
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else repr(key)


# --- single-line text ------------------------------------------------------------------

# Everything str.splitlines() breaks on. The email package refuses a header value holding
# any of them (ValueError at send time), so they must be caught here, at validation.
LINE_BREAKS = "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


def _one_line_problem(value: str) -> str | None:
    """Why `value` cannot go into an email header or a file path, or None when it can."""
    if value.isprintable():  # every character below is unprintable: nearly every value skips the walk
        return None
    for ch in value:
        if ch in "\r\n":
            return "must be one line: remove the line break (CR/LF)"
        if ch in LINE_BREAKS:
            return f"must be one line: remove the line break (U+{ord(ch):04X})"
        if unicodedata.category(ch) == "Cc" and ch != "\t":
            return f"contains a control character (U+{ord(ch):04X}); remove it"
    return None


def _single_line(value: str) -> str:
    # Names and titles end up in email headers (To, Subject) and iCalendar properties;
    # a CR or LF there is header injection, and other control characters are never meant.
    problem = _one_line_problem(value)
    if problem:
        raise fail(problem)
    stripped = value.strip()
    if not stripped:
        raise fail("must not be empty")
    return stripped


SingleLine = Annotated[str, AfterValidator(_single_line)]


# --- dates -------------------------------------------------------------------------------

# Every date a coordinator writes lies in these years. Far enough for any real group (a
# group started last century, a goal decades ahead), and far enough from year 1 and year
# 9999 that adding months, cycles or a week of grace never leaves what `date` can hold.
FIRST_YEAR, LAST_YEAR = 1900, 2199


def _day(value: date) -> date:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise fail(f"{value.isoformat()} is outside the years friendtor plans for; "
                   f"use a date from {FIRST_YEAR}-01-01 to {LAST_YEAR}-12-31")
    return value


def _toml_date(value: Any) -> Any:
    """A TOML date, not text that looks like one: pydantic would read "2026-11-01" and even a
    midnight timestamp ("1793491200") as a date, and a date-time at midnight as its day."""
    if isinstance(value, datetime):
        raise fail(f"expected a date without a time of day, got {show(value)}; dates are written 2026-11-01")
    if isinstance(value, str):
        quoted = re.fullmatch(r"\s*\d{4}-\d{2}-\d{2}\s*", value)
        raise fail(("a date in quotes is text: remove the quotes" if quoted else f"expected a date, got {show(value)}")
                   + "; dates are written 2026-11-01, without quotes")
    return value


Day = Annotated[date, BeforeValidator(_toml_date), AfterValidator(_day)]


# --- email addresses -------------------------------------------------------------------

@by_text
def _email(value: Any) -> str:
    if not isinstance(value, str):
        raise fail(f"expected an email address in quotes, got {show(value)}")
    problem = _one_line_problem(value)
    if problem:
        raise fail(problem)
    try:
        # Without SMTPUTF8 (RFC 6531) a mailbox name must be ASCII; most relays do not offer it,
        # and a message that needs it would be refused at send time, long after validate.
        result = validate_email(value.strip(), check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        if any(ord(c) > 127 for c in value.partition("@")[0]):
            raise fail(f"{show(value)}: friendtor cannot send to a mailbox name with letters beyond ASCII "
                       "(before the @); ask the member for an ASCII address or alias") from None
        raise fail(f"not a valid email address {show(value)}: {exc}") from None
    # An internationalised domain is sent in its ASCII form (xn--...), which every relay takes.
    # Domains are case-insensitive; local parts are in theory not, but every real mailbox
    # treats them so, and matching coordinators to members needs one spelling.
    return result.ascii_email.lower()


Email = Annotated[str, BeforeValidator(_email)]


# --- time zones ------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _zone_names() -> tuple[str, ...]:
    return tuple(sorted(zoneinfo.available_timezones()))


def _loads_as_zone(name: str) -> bool:
    # The quick yes: `available_timezones()` opens every file in the zoneinfo folders (a fifth of
    # `validate`); loading the one zone asked for is enough, and only a typo pays for the list.
    # What available_timezones() leaves out is left out here too.
    if name.startswith(("posix/", "right/")) or name == "posixrules":
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except Exception:  # noqa: BLE001 (not found, not a zone file, a folder, a bad key: the full list decides)
        return False
    return True


@by_text
def _zone_name(value: Any) -> str:
    if not isinstance(value, str):
        raise fail(f"expected an IANA time zone name such as 'Europe/London', got {show(value)}")
    if _loads_as_zone(value) or value in _zone_names():
        return value
    hint = did_you_mean(value, _zone_names(), cutoff=0.75)
    if not hint and re.fullmatch(r"(UTC|GMT)?[+-]\d{1,2}(:?\d\d)?", value):
        hint = " (use a place name such as 'Europe/Berlin': fixed offsets ignore daylight saving)"
    raise fail(f"unknown time zone {show(value)}{hint}")


TimeZoneName = Annotated[str, BeforeValidator(_zone_name)]


# --- weekdays --------------------------------------------------------------------------

_WEEKDAY_NAMES = {n: i for i, name in enumerate(WEEKDAYS)  # "tue" and "tuesday" -> 1 (2024-01-01: a Monday)
                  for n in (name, date(2024, 1, 1 + i).strftime("%A").casefold())}


def _weekday(value: Any) -> int:
    if isinstance(value, str):
        key = value.strip().casefold()
        if key in _WEEKDAY_NAMES:
            return _WEEKDAY_NAMES[key]
        raise fail(f"unknown weekday {show(value)}{did_you_mean(key, WEEKDAYS)}; use mon, tue, wed, thu, fri, sat or sun")
    raise fail(f"expected a weekday such as \"tue\", got {show(value)}")


Weekday = Annotated[int, BeforeValidator(_weekday)]


def _weekday_set(value: tuple[int, ...]) -> tuple[int, ...]:
    if not value:
        raise fail("list at least one weekday, e.g. [\"tue\", \"wed\"]")
    return tuple(sorted(set(value)))


Weekdays = Annotated[tuple[Weekday, ...], AfterValidator(_weekday_set)]


# --- hours -----------------------------------------------------------------------------

@dataclass(frozen=True, order=True)
class Hours:
    """Local wall-clock hours, e.g. 09:00-17:00; `end` may be 24:00 (midnight at the end of the day)."""

    start: int  # minutes after local midnight
    end: int

    def bounds_on(self, day: date, zone: zoneinfo.ZoneInfo) -> tuple[datetime, datetime]:
        """The hours on one local date, as aware datetimes. Computed per date so DST is right.

        On a DST-change day a boundary is the instant the clock first shows it (zoneinfo's
        fold=0): one that does not exist (02:30 on a spring-forward Sunday) is where the clock
        jumps past it, and one that happens twice (a fall-back 02:15) is its first occurrence.
        """
        start = datetime.combine(day, time(self.start // 60, self.start % 60), zone)
        end_day = day + timedelta(days=self.end // (24 * 60))
        end_min = self.end % (24 * 60)
        end = datetime.combine(end_day, time(end_min // 60, end_min % 60), zone)
        return start, end

    def __str__(self) -> str:
        return f"{self.start // 60:02d}:{self.start % 60:02d}–{self.end // 60:02d}:{self.end % 60:02d}"


_HOURS = re.compile(r"(\d{1,2}):(\d{2})\s*[-–]\s*(\d{1,2}):(\d{2})")


@by_text
def _hours(value: Any) -> Hours:
    if isinstance(value, Hours):
        return value
    if not isinstance(value, str):
        raise fail(f"expected hours as \"HH:MM-HH:MM\" in quotes, e.g. \"09:00-17:00\", got {show(value)}")
    m = _HOURS.fullmatch(value.strip())
    if not m:
        raise fail(f"hours must look like \"09:00-17:00\" (24-hour clock), got {show(value)}")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2):
        raise fail(f"{show(value)} is not a time of day; use 00:00 to 24:00")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if end <= start:
        raise fail(f"hours {show(value)} end before they start; overnight hours are not supported, "
                   "so split the day or use e.g. \"07:00-23:00\"")
    return Hours(start, end)


HoursSpec = Annotated[Hours, BeforeValidator(_hours)]


def _time_of_day(value: Any) -> time:
    """"18:30" (or a TOML local time, 18:30:00): a wall-clock time, read in whatever zone it is used in."""
    if isinstance(value, time) and not (value.second or value.microsecond or value.tzinfo):
        return value
    m = re.fullmatch(r"(\d{1,2}):(\d{2})", value.strip()) if isinstance(value, str) else None
    if not m or int(m[1]) > 23 or int(m[2]) > 59:
        raise fail(f"expected a time of day as \"HH:MM\" in quotes (24-hour clock), e.g. \"18:30\", got {show(value)}")
    return time(int(m[1]), int(m[2]))


TimeOfDay = Annotated[time, BeforeValidator(_time_of_day)]


# --- public holiday regions --------------------------------------------------------------

@by_text
def _holiday_region(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise fail(f"expected a country code such as \"US\" or \"CA-NL\", got {show(value)}")
    country, _, subdiv = value.strip().partition("-")
    country, subdiv = country.upper(), subdiv.upper()
    # A static list, not `holidays.list_supported_countries()`: importing the package and
    # walking every country cost each command a tenth of its time (issue 13).
    regions = holiday_regions()
    if country not in regions:
        raise fail(f"unknown holiday country {country!r}{did_you_mean(country, list(regions))}; "
                   "use an ISO 3166 code such as \"US\", \"GB\" or \"IN\"")
    if subdiv and subdiv not in regions[country]:
        known = ", ".join(regions[country][:12]) + (", ..." if len(regions[country]) > 12 else "")
        raise fail(f"{country} has no subdivision {subdiv!r}" +
                   (f"; known: {known}" if known else f"; use just \"{country}\""))
    return f"{country}-{subdiv}" if subdiv else country


HolidayRegion = Annotated[str, BeforeValidator(_holiday_region)]


# --- calendar sources --------------------------------------------------------------------

def _calendar(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise fail("expected a path to an .ics file, an https URL, \"google:<calendar id>\" "
                   f"or \"caldav:https://...\", got {show(value)}")
    value = value.strip()
    problem = _one_line_problem(value)  # a NUL or line break in a path is never meant
    if problem:
        raise fail(problem)
    lower = value.lower()
    if lower.startswith("google:") and not value[7:].strip():
        raise fail("\"google:\" needs a calendar id, e.g. \"google:primary\"")
    if lower.startswith("caldav:") and not re.match(r"https?://", value[7:], re.I):
        raise fail("\"caldav:\" needs the calendar's URL, e.g. \"caldav:https://dav.example.org/maya/work/\"")
    if lower.startswith("webcal://"):
        value = "https://" + value[9:]
    return value


CalendarSpec = Annotated[str, BeforeValidator(_calendar)]


# A calendar file is read only inside the config folder and the operator's [limits]
# calendar_folders: `calendar = "/proc/self/environ"` or a symlink to the Google token must
# not be read at all (its parse error once mailed an SMTP password to the coordinators).
OUTSIDE_FOLDERS = ("is outside the config folder; move the file into it or list its folder in "
                   "[limits] calendar_folders")


def calendar_folders(config_folder: PurePath, listed: tuple[str, ...]) -> list[PurePath]:
    """The folders calendar files may live in: the config folder and the listed ones
    (relative to the config folder). Pure: the caller resolves them (symlinks, `..`)."""
    return [config_folder, *(config_folder / PurePath(f) for f in listed)]


def inside(path: PurePath, folders: list[PurePath]) -> bool:
    """Whether a resolved path lies in one of the resolved folders."""
    return any(path == f or f in path.parents for f in folders)


def _url(value: str) -> str:
    if not re.match(r"https?://[^\s/]+", value, re.I):
        raise fail(f"expected a link starting with https://, got {show(value)}")
    return value


Url = Annotated[SingleLine, AfterValidator(_url)]


_CYCLE = re.compile(r"(\d{4})-(\d{2})|(\d{4})-W(\d{2})")


def _cycle_key(value: Any) -> str:
    text = str(value).strip() if isinstance(value, str) else None
    m = _CYCLE.fullmatch(text or "")
    ok = m and FIRST_YEAR <= int(m.group(1) or m.group(3)) <= LAST_YEAR and (
        (m.group(2) and 1 <= int(m.group(2)) <= 12) or (m.group(4) and 1 <= int(m.group(4)) <= 53))
    if not ok:
        raise fail(f"cycle must be a month \"2026-12\" or an ISO week \"2026-W50\" in quotes, got {show(value)}")
    return text


CycleKey = Annotated[str, BeforeValidator(_cycle_key)]


class Frozen(BaseModel):
    """Config values: immutable, and any key we do not know is an error (typos surface)."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True, populate_by_name=True,
                              ignored_types=(cached_property,))
