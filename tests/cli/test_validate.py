"""`friendtor validate --config DIR` and `load_config`: exit 0 with one line, or exit 2 with
one line per problem, each naming the file, the field path and what to fix. Never a traceback.

Each case starts from GROUP, a small valid group, and changes one thing. Field paths count
list entries from 1 in file order (members[3] is the third [[members]] block).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.cli.main import main
from scheduler.core.errors import ConfigError
from scheduler.app.loader import load_config

REPO_ROOT = Path(__file__).resolve().parents[2]

# The shape of config/example/groups/k-club.toml, with three members in three zones.
# Every string a case replaces occurs exactly once (mutate() checks).
GROUP = """\
# A small group for tests; the file name is its id.
name = "Test Group"
mission = "Each of us submits one grant application this year."
timezone = "America/Chicago"
coordinators = ["ana@uni-a.example"]
video_link = "https://meet.example.org/test-group"
started = 2026-01-13

[meetings]
cadence = "monthly"
duration_minutes = 60
weekdays = ["tue", "wed", "thu"]
weeks_of_month = [2, 3]
quorum = 0.5
invite_days_before = 21
agenda_days_before = 2
follow_up_days_after = 1

[reviews]
mission_review_months = 6
year_end = true

[[members]]
name = "Ana Lima"
email = "ana@uni-a.example"
institution = "University A"
timezone = "Europe/London"
hours = "09:00-17:00"
preferred_hours = "12:00-14:00"
holidays = "GB-ENG"
required = true

[[members]]
name = "Ben Okoro"
email = "ben@uni-b.example"
institution = "University B"
timezone = "Asia/Kolkata"
hours = "14:00-21:30"
weekdays = ["mon", "tue", "wed", "thu", "fri", "sat"]
holidays = "IN"

[[members]]
name = "Chandra Rao"
email = "chandra@uni-c.example"
institution = "University C"
timezone = "America/New_York"
hours = "08:00-16:00"
holidays = "US-NY"
away = [{ from = 2026-12-21, to = 2027-01-04 }]

[[goals]]
member = "ben@uni-b.example"
text = "Send specific aims page to primary mentor"
due = 2026-12-15

[[milestones]]
member = "ana@uni-a.example"
text = "First paper accepted"
date = 2026-11-30

[[agenda]]
text = "Feedback round on Ben's aims page"
cycle = "2026-12"
"""

SERVICE = """\
state = "var/state.json"
tick_minutes = 5
publish = ["email"]

[mail]
transport = "maildir"
sender = "test-group@mentoring.example.org"
sender_name = "Test Group (friendtor)"
"""

SMTP = """\
[mail]
transport = "smtp"
sender = "test-group@mentoring.example.org"

[mail.smtp]
host = "smtp.example.org"
port = 587
security = "starttls"
username = "test-group@mentoring.example.org"
password_env = "FRIENDTOR_SMTP_PASSWORD"
"""


def mutate(text: str, old: str, new: str) -> str:
    """`text` with its one occurrence of `old` replaced by `new`."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def line_of(text: str, needle: str) -> int:
    """The 1-based line on which `needle` starts in `text`."""
    return text[:text.index(needle)].count("\n") + 1


@dataclass
class Result:
    code: int
    out: str
    err: str


def validate(folder: Path, capsys: pytest.CaptureFixture[str]) -> Result:
    capsys.readouterr()  # drop anything captured before (hypothesis runs many examples per test)
    code = main(["validate", "--config", str(folder)])
    out, err = capsys.readouterr()
    return Result(code, out, err)


def problems(result: Result, count: int) -> list[str]:
    """The stderr lines of a failed run, after checking what every failed run must look like."""
    assert "Traceback" not in result.out + result.err
    assert result.code == 2, result.out + result.err
    assert result.out == ""
    lines = result.err.splitlines()  # splits on U+2028 and friends too: those must not appear
    assert len(lines) == count, result.err
    return lines


def assert_ok(result: Result) -> str:
    """The one stdout line of a successful run."""
    assert "Traceback" not in result.out + result.err
    assert result.code == 0, result.err
    assert result.err == ""
    lines = result.out.splitlines()
    assert len(lines) == 1, result.out
    return lines[0]


# --- one change to the group, one line --------------------------------------------------

LAST_LINE = GROUP.rstrip().count("\n") + 1

GROUP_CASES = [
    # TOML syntax: the line comes first.
    pytest.param('name = "Test Group"', "name = Test Group",
                 f"line {line_of(GROUP, 'name = ')}, column 8: invalid TOML", ["Invalid value", "quotes"],
                 id="toml-unquoted-string"),
    pytest.param("quorum = 0.5", "quorum = 0.5\nquorum = 0.6",
                 f"line {line_of(GROUP, 'quorum') + 1}, column", ["invalid TOML", "overwrite"],
                 id="toml-duplicate-key"),
    pytest.param("[reviews]", "[meetings]",
                 f"line {line_of(GROUP, '[reviews]')}, column", ["[meetings] is declared twice"],
                 id="toml-table-twice"),
    pytest.param('cycle = "2026-12"', 'cycle = ["2026-12"',
                 f"line {LAST_LINE} (end of file): invalid TOML", ["Unclosed array"],
                 id="toml-unclosed-at-end-of-file"),
    # Unknown keys, with the key that was likely meant.
    pytest.param("coordinators = [", "coordinator = [",
                 "coordinator: ", ["unknown key", "did you mean 'coordinators'"], id="unknown-key-top-level"),
    pytest.param('hours = "14:00-21:30"', 'huors = "14:00-21:30"',
                 "members[2] (Ben Okoro).huors: ", ["unknown key", "did you mean 'hours'"], id="unknown-key-member"),
    pytest.param("quorum = 0.5", "quorom = 0.5",
                 "meetings.quorom: ", ["unknown key", "did you mean 'quorum'"], id="unknown-key-in-table"),
    pytest.param("[meetings]", "[meeting]",
                 "meeting: ", ["unknown key", "did you mean 'meetings'"], id="unknown-table"),
    pytest.param("away = [{ from = 2026-12-21,", "away = [{ form = 2026-12-21,",
                 "members[3] (Chandra Rao).away[1].form: ", ["did you mean 'from'"], id="unknown-key-inline-table"),
    pytest.param('name = "Test Group"', 'name = "Test Group"\nid = "g"',
                 "id: ", ["unknown key", "file name"], id="id-key"),
    # Time zones.
    pytest.param('timezone = "America/New_York"', 'timezone = "America/New_Yrok"',
                 "members[3] (Chandra Rao).timezone: ",
                 ["unknown time zone 'America/New_Yrok' (did you mean 'America/New_York'?)"],
                 id="timezone-typo"),
    pytest.param('timezone = "Asia/Kolkata"', 'timezone = "asia/kolkata"',
                 "members[2] (Ben Okoro).timezone: ", ["did you mean 'Asia/Kolkata'"], id="timezone-lowercase"),
    pytest.param('timezone = "Asia/Kolkata"', 'timezone = "UTC+5:30"',
                 "members[2] (Ben Okoro).timezone: ", ["unknown time zone", "place name", "daylight saving"],
                 id="timezone-fixed-offset"),
    pytest.param('timezone = "America/Chicago"', 'timezone = "America/Chicgo"',
                 "timezone: ", ["did you mean 'America/Chicago'"], id="group-timezone-typo"),
    # Email addresses.
    pytest.param('email = "chandra@uni-c.example"', 'email = "chandra@@uni-c.example"',
                 "members[3] (Chandra Rao).email: ", ["not a valid email address"], id="email-double-at"),
    pytest.param('email = "chandra@uni-c.example"', 'email = "chandra.uni-c.example"',
                 "members[3] (Chandra Rao).email: ", ["not a valid email address", "@"], id="email-no-at"),
    pytest.param('email = "chandra@uni-c.example"', 'email = "ben@uni-b.example"',
                 "members[3] (Chandra Rao).email: ", ["ben@uni-b.example is already used by members[2]"], id="email-duplicate"),
    pytest.param('email = "chandra@uni-c.example"', 'email = "Ben@UNI-B.example"',
                 "members[3] (Chandra Rao).email: ", ["ben@uni-b.example is already used by members[2]"],
                 id="email-duplicate-other-case"),
    pytest.param('name = "Test Group"', 'name = """Test\nGroup"""',
                 "name: ", ["must be one line"], id="name-multiline-string"),
    # Hours.
    pytest.param('hours = "14:00-21:30"', 'hours = "9-5"',
                 "members[2] (Ben Okoro).hours: ", ['"09:00-17:00"', "'9-5'"], id="hours-not-hh-mm"),
    pytest.param('hours = "14:00-21:30"', 'hours = "2pm to 9:30pm"',
                 "members[2] (Ben Okoro).hours: ", ['"09:00-17:00"'], id="hours-words"),
    pytest.param('hours = "14:00-21:30"', 'hours = "25:00-26:00"',
                 "members[2] (Ben Okoro).hours: ", ["not a time of day"], id="hours-not-a-time"),
    pytest.param('hours = "14:00-21:30"', 'hours = "21:30-14:00"',
                 "members[2] (Ben Okoro).hours: ", ["end before they start"], id="hours-backwards"),
    pytest.param('hours = "14:00-21:30"', 'hours = "14:00-14:00"',
                 "members[2] (Ben Okoro).hours: ", ["end before they start"], id="hours-empty"),
    pytest.param('preferred_hours = "12:00-14:00"', 'preferred_hours = "14:00-12:00"',
                 "members[1] (Ana Lima).preferred_hours: ", ["end before they start"], id="preferred-hours-backwards"),
    pytest.param('hours = "14:00-21:30"', "hours = 14",
                 "members[2] (Ben Okoro).hours: ", ["in quotes", "got 14"], id="hours-number"),
    # Weekdays.
    pytest.param('weekdays = ["tue", "wed", "thu"]', 'weekdays = ["tue", "wed", "thurs"]',
                 "meetings.weekdays[3]: ", ["unknown weekday 'thurs'", "did you mean 'thu'"],
                 id="weekday-unknown-meetings"),
    pytest.param('"thu", "fri", "sat"]', '"thu", "fry", "sat"]',
                 "members[2] (Ben Okoro).weekdays[5]: ", ["unknown weekday 'fry'", "did you mean 'fri'"],
                 id="weekday-unknown-member"),
    pytest.param('weekdays = ["tue", "wed", "thu"]', "weekdays = []",
                 "meetings.weekdays: ", ["at least one weekday"], id="weekdays-empty"),
    pytest.param('weekdays = ["tue", "wed", "thu"]', 'weekdays = "tue"',
                 "meetings.weekdays: ", ["expected a list", "got 'tue'"], id="weekdays-not-a-list"),
    # Quorum and weeks of the month.
    pytest.param("quorum = 0.5", "quorum = 0", "meetings.quorum: ", ["above 0 and at most 1"], id="quorum-zero"),
    pytest.param("quorum = 0.5", "quorum = 1.5", "meetings.quorum: ", ["above 0 and at most 1", "1.5"],
                 id="quorum-above-one"),
    pytest.param("quorum = 0.5", "quorum = -0.5", "meetings.quorum: ", ["above 0 and at most 1"],
                 id="quorum-negative"),
    pytest.param("quorum = 0.5", "quorum = nan", "meetings.quorum: ", ["above 0 and at most 1"], id="quorum-nan"),
    pytest.param("quorum = 0.5", 'quorum = "half"', "meetings.quorum: ", ["expected a number", "'half'"],
                 id="quorum-wrong-type"),
    pytest.param("weeks_of_month = [2, 3]", "weeks_of_month = [0, 2]", "meetings.weeks_of_month: ",
                 ["1 to 5"], id="weeks-of-month-zero"),
    pytest.param("weeks_of_month = [2, 3]", "weeks_of_month = [2, 6]", "meetings.weeks_of_month: ",
                 ["1 to 5", "[2, 6]"], id="weeks-of-month-six"),
    pytest.param("weeks_of_month = [2, 3]", "weeks_of_month = []", "meetings.weeks_of_month: ",
                 ["1 to 5"], id="weeks-of-month-empty"),
    # Members named elsewhere must be members.
    pytest.param('coordinators = ["ana@uni-a.example"]', 'coordinators = ["zed@uni-z.example"]',
                 "coordinators[1]: ", ["zed@uni-z.example is not a member", "ana@uni-a.example"],
                 id="coordinator-not-member"),
    pytest.param('member = "ben@uni-b.example"', 'member = "benn@uni-b.example"',
                 "goals[1] (benn@uni-b.example).member: ", ["benn@uni-b.example is not a member", "ben@uni-b.example"],
                 id="goal-owner-not-member"),
    pytest.param('member = "ana@uni-a.example"', 'member = "ana@uni-x.example"',
                 "milestones[1] (ana@uni-x.example).member: ", ["is not a member"], id="milestone-owner-not-member"),
    # Files and regions.
    pytest.param('holidays = "IN"', 'holidays = "IN"\ncalendar = "calendars/ben.ics"',
                 "members[2] (Ben Okoro).calendar: ", ["'calendars/ben.ics' does not exist", "relative to the config folder"],
                 id="calendar-file-missing"),
    pytest.param('holidays = "IN"', 'holidays = "IN"\ncalendar = "~no-such-user-here/ben.ics"',
                 "members[2] (Ben Okoro).calendar: ", ["cannot expand", "full path"], id="calendar-unknown-home"),
    pytest.param('holidays = "IN"', 'holidays = "IN"\ncalendar = "calendars/ben\\u0000.ics"',
                 "members[2] (Ben Okoro).calendar: ", ["control character"], id="calendar-nul"),
    pytest.param('holidays = "IN"', 'holidays = "XX"',
                 "members[2] (Ben Okoro).holidays: ", ["unknown holiday country 'XX'", "ISO 3166"], id="holidays-unknown-country"),
    pytest.param('holidays = "US-NY"', 'holidays = "CA-XX"',
                 "members[3] (Chandra Rao).holidays: ", ["CA has no subdivision 'XX'", "NL"], id="holidays-unknown-subdivision"),
    # Missing keys, wrong types, bad dates.
    pytest.param('email = "chandra@uni-c.example"\n', "",
                 "members[3] (Chandra Rao).email: ", ["required key is missing"], id="missing-member-email"),
    pytest.param('name = "Test Group"\n', "", "name: ", ["required key is missing"], id="missing-group-name"),
    pytest.param('coordinators = ["ana@uni-a.example"]', "coordinators = []",
                 "coordinators: ", ["at least 1 entry"], id="coordinators-empty"),
    pytest.param("away = [{ from = 2026-12-21, to = 2027-01-04 }]", 'away = ["2026-12-21"]',
                 "members[3] (Chandra Rao).away[1]: ", ["expected a table", "'2026-12-21'"], id="table-wrong-type"),
    pytest.param("duration_minutes = 60", "duration_minutes = 60.5",
                 "meetings.duration_minutes: ", ["expected a whole number", "60.5"], id="duration-fraction"),
    pytest.param("duration_minutes = 60", "duration_minutes = 5",
                 "meetings.duration_minutes: ", ["15"], id="duration-too-short"),
    pytest.param('cadence = "monthly"', 'cadence = "montly"',
                 "meetings.cadence: ", ["did you mean 'monthly'"], id="cadence-typo"),
    pytest.param("year_end = true", "year_end = 2", "reviews.year_end: ", ["true or false"], id="bool-wrong-type"),
    pytest.param("started = 2026-01-13", "started = 2026-01-13T10:00:00",
                 "started: ", ["expected a date", "2026-01-13T10:00:00"], id="date-with-time"),
    pytest.param("started = 2026-01-13", 'started = "soon"', "started: ", ["expected a date", "'soon'"],
                 id="date-not-a-date"),
    pytest.param("to = 2027-01-04", "to = 2026-12-01",
                 "members[3] (Chandra Rao).away[1]: ", ["'to' (2026-12-01) is before 'from' (2026-12-21)"], id="away-backwards"),
    pytest.param('video_link = "https://meet.example.org/test-group"', 'video_link = "meet.example.org/test-group"',
                 "video_link: ", ["https://"], id="video-link-no-scheme"),
    pytest.param('cycle = "2026-12"', 'cycle = "Dec 2026"', "agenda[1].cycle: ", ['"2026-12"'], id="agenda-cycle"),
]


@pytest.mark.parametrize("old, new, where, words", GROUP_CASES)
def test_one_problem_in_a_group_is_one_line_naming_file_and_field(
        write_config_folder, capsys, old, new, where, words):
    """One mistake in a group file: exit 2 and one line: file, field path, what is wrong and the fix."""
    folder = write_config_folder({"g.toml": mutate(GROUP, old, new)})
    [line] = problems(validate(folder, capsys), 1)
    assert line.startswith(f"groups/g.toml: {where}"), line
    for word in words:
        assert word in line


def test_the_issue_example_is_printed_exactly(write_config_folder, capsys):
    """The issue's example line comes out word for word."""
    group = mutate(GROUP, 'timezone = "America/New_York"', 'timezone = "America/New_Yrok"')
    folder = write_config_folder({"k-club.toml": group})
    assert problems(validate(folder, capsys), 1) == [
        "groups/k-club.toml: members[3] (Chandra Rao).timezone: unknown time zone 'America/New_Yrok' "
        "(did you mean 'America/New_York'?)"]


# --- line breaks in anything that reaches an email header ------------------------------

LINE_BREAKS = [
    pytest.param("\\r\\n", id="CRLF"),
    pytest.param("\\n", id="LF"),
    pytest.param("\\r", id="CR"),
    pytest.param("\\u000D\\u000A", id="CRLF-as-unicode-escapes"),
    pytest.param("\\u2028", id="U+2028"),
    pytest.param("\\u0085", id="NEL"),
]

HEADER_VALUES = [
    pytest.param("groups/g.toml", 'name = "Test Group"', 'name = "Test Group{}Bcc: eve@evil.example"', "name: ",
                 id="group-name"),
    pytest.param("groups/g.toml", 'name = "Ana Lima"', 'name = "Ana Lima{}Bcc: eve@evil.example"',
                 "members[1].name: ", id="member-name"),  # a name on two lines is not shown
    pytest.param("groups/g.toml", 'institution = "University B"', 'institution = "University B{}X: y"',
                 "members[2] (Ben Okoro).institution: ", id="institution"),
    pytest.param("groups/g.toml", 'email = "chandra@uni-c.example"',
                 'email = "chandra@uni-c.example{}Bcc: eve@evil.example"', "members[3] (Chandra Rao).email: ", id="member-email"),
    pytest.param("groups/g.toml", 'coordinators = ["ana@uni-a.example"]',
                 'coordinators = ["ana@uni-a.example{}Bcc: eve@evil.example"]', "coordinators[1]: ",
                 id="coordinator-email"),
    pytest.param("groups/g.toml", 'text = "Send specific aims page to primary mentor"',
                 'text = "Send aims{}Bcc: eve@evil.example"', "goals[1] (ben@uni-b.example).text: ", id="goal-text"),
    pytest.param("groups/g.toml", 'text = "Feedback round on Ben\'s aims page"',
                 'text = "Feedback{}Bcc: eve@evil.example"', "agenda[1].text: ", id="agenda-text"),
    pytest.param("service.toml", 'sender_name = "Test Group (friendtor)"',
                 'sender_name = "Test Group{}Bcc: eve@evil.example"', "mail.sender_name: ", id="sender-name"),
    pytest.param("service.toml", 'sender = "test-group@mentoring.example.org"',
                 'sender = "test-group@mentoring.example.org{}Bcc: eve@evil.example"', "mail.sender: ",
                 id="sender-address"),
]


@pytest.mark.parametrize("payload", LINE_BREAKS)
@pytest.mark.parametrize("file, old, template, where", HEADER_VALUES)
def test_line_break_in_a_header_value_is_rejected(write_config_folder, capsys, file, old, template, where, payload):
    """A CR, LF or other line break in a value that reaches an email header is one error line."""
    group, service = GROUP, SERVICE
    if file == "service.toml":
        service = mutate(service, old, template.format(payload))
    else:
        group = mutate(group, old, template.format(payload))
    folder = write_config_folder({"g.toml": group}, service=service)
    [line] = problems(validate(folder, capsys), 1)
    assert line.startswith(f"{file}: {where}must be one line: remove the line break"), line


# --- service.toml ----------------------------------------------------------------------

SERVICE_CASES = [
    pytest.param(mutate(SMTP, 'password_env = "FRIENDTOR_SMTP_PASSWORD"', 'password = "hunter2"'),
                 "mail.smtp.password: ", ["never read from config files", "password_env"], id="password-in-file"),
    pytest.param(mutate(SMTP, 'password_env = "FRIENDTOR_SMTP_PASSWORD"', 'password_env = "hunter2!"'),
                 "mail.smtp.password_env: ", ["NAME of an environment variable"], id="password-in-password-env"),
    pytest.param('[mail]\ntransport = "smtp"\n', "mail: ", ['transport = "smtp" needs a [mail.smtp] table'],
                 id="smtp-without-table"),
    pytest.param(mutate(SMTP, 'security = "starttls"', 'security = "tls"'),
                 "mail.smtp.security: ", ["'starttls'", "'tls'"], id="smtp-security-unknown"),
    pytest.param(mutate(SMTP, "port = 587", "port = 70000"), "mail.smtp.port: ", ["65535"], id="smtp-port"),
    pytest.param(mutate(SERVICE, "tick_minutes = 5", "tick_minute = 5"),
                 "tick_minute: ", ["unknown key", "did you mean 'tick_minutes'"], id="unknown-key"),
    pytest.param(mutate(SERVICE, 'transport = "maildir"', 'transport = "sendmail"'),
                 "mail.transport: ", ["'maildir'", "'smtp'"], id="unknown-transport"),
    pytest.param(mutate(SERVICE, 'publish = ["email"]', 'publish = ["outlook"]'),
                 "publish[1]: ", ["'email'", "'google'", "'caldav'"], id="unknown-publisher"),
    pytest.param(mutate(SERVICE, 'sender = "test-group@mentoring.example.org"', 'sender = "friendtor"'),
                 "mail.sender: ", ["not a valid email address"], id="sender-malformed"),
    pytest.param(mutate(SERVICE, 'state = "var/state.json"', 'state = "~no-such-user-here/state.json"'),
                 "state: ", ["cannot expand"], id="state-unknown-home"),
    pytest.param(mutate(SERVICE, "tick_minutes = 5", "tick_minutes = five"),
                 f"line {line_of(SERVICE, 'tick_minutes')}, column", ["invalid TOML"], id="toml-syntax"),
    pytest.param(mutate(SERVICE, 'publish = ["email"]', 'publish = ["email", "google"]'),
                 "", ['publish has "google" but there is no [google] table'], id="google-without-table"),
    pytest.param(SERVICE + '\n[google]\ncredentials = "g.json"\nauth = "service-account"\n',
                 "google: ", ["needs subject"], id="service-account-without-subject"),
    pytest.param(mutate(SERVICE, 'publish = ["email"]', 'publish = ["email", "google"]')
                 + '\n[google]\ncredentials = "g.json"\ninvitations = "google"\n',
                 "", ["two invitations"], id="two-invitations"),
    pytest.param(SERVICE + '\n[google]\ncredentials = "g.json"\ninvitations = "outlook"\n',
                 "google.invitations: ", ["'friendtor'", "'google'"], id="google-invitations-unknown"),
    pytest.param(SERVICE + '\n[caldav]\nurl = "ftp://dav.example.org/"\n',
                 "caldav.url: ", ["https://"], id="caldav-url-not-http"),
    pytest.param(SERVICE + '\n[caldav]\nurl = "https://dav.example.org/"\npassword_env = "s3cret pass"\n',
                 "caldav.password_env: ", ["NAME of an environment variable"], id="caldav-password-in-env"),
    pytest.param(mutate(SERVICE, 'transport = "maildir"', 'transport = "maildir"\ninbox = 42'),
                 "mail.inbox: ", ["text in quotes"], id="inbox-not-text"),
]


@pytest.mark.parametrize("service, where, words", SERVICE_CASES)
def test_one_problem_in_service_toml_is_one_line(write_config_folder, capsys, service, where, words):
    """One mistake in service.toml: exit 2 and one line naming service.toml and the field."""
    folder = write_config_folder({"g.toml": GROUP}, service=service)
    [line] = problems(validate(folder, capsys), 1)
    assert line.startswith(f"service.toml: {where}"), line
    for word in words:
        assert word in line


def test_password_env_holding_a_password_does_not_print_it(write_config_folder, capsys):
    """A password pasted into password_env is not echoed to the terminal or the logs."""
    service = mutate(SMTP, 'password_env = "FRIENDTOR_SMTP_PASSWORD"', 'password_env = "s3cret!pass"')
    result = validate(write_config_folder({"g.toml": GROUP}, service=service), capsys)
    [line] = problems(result, 1)
    assert "s3cret" not in line


# --- valid folders -----------------------------------------------------------------------

def test_group_without_service_toml_is_valid(write_config_folder, capsys):
    """service.toml is optional: a folder with only groups/*.toml validates, one line on stdout."""
    folder = write_config_folder({"g.toml": GROUP})
    line = assert_ok(validate(folder, capsys))
    assert line.startswith(f"{folder}: ok: 1 group: g (3 members)")
    assert "mail via maildir" in line


@pytest.mark.parametrize("service", [
    pytest.param(SERVICE, id="maildir"),
    pytest.param(SMTP, id="smtp"),
    pytest.param("", id="empty-file"),
])
def test_valid_service_toml_is_accepted(write_config_folder, capsys, service):
    """A complete service.toml, an SMTP one, and an empty one (every key has a default) validate."""
    assert_ok(validate(write_config_folder({"g.toml": GROUP}, service=service), capsys))


def test_coordinator_and_owners_in_another_case_are_members(write_config_folder, capsys):
    """Emails match members ignoring case: a coordinator or goal owner in capitals is accepted."""
    group = mutate(GROUP, 'coordinators = ["ana@uni-a.example"]', 'coordinators = ["Ana@UNI-A.example"]')
    group = mutate(group, 'member = "ben@uni-b.example"', 'member = "BEN@uni-b.example"')
    group = mutate(group, 'member = "ana@uni-a.example"', 'member = "Ana@Uni-A.Example"')
    assert_ok(validate(write_config_folder({"g.toml": group}), capsys))


@pytest.mark.parametrize("encode", [
    pytest.param(lambda text: b"\xef\xbb\xbf" + text.encode(), id="utf-8-with-bom"),
    pytest.param(lambda text: text.replace("\n", "\r\n").encode(), id="crlf-line-endings"),
])
def test_files_saved_by_windows_editors_are_accepted(write_config_folder, capsys, encode):
    """A byte order mark or CRLF line endings (as Notepad saves) are not errors."""
    assert_ok(validate(write_config_folder({"g.toml": encode(GROUP)}, service=encode(SERVICE)), capsys))


def test_hidden_files_in_groups_are_not_groups(write_config_folder, capsys):
    """Like the shell's groups/*.toml, editor lock files such as groups/.#g.toml are ignored."""
    folder = write_config_folder({"g.toml": GROUP, ".#g.toml": "not toml at all ["})
    assert "1 group: g " in assert_ok(validate(folder, capsys))


def test_bundled_example_validates(capsys, monkeypatch, tmp_path):
    """config/example (found from this file, whatever the working directory) validates."""
    monkeypatch.chdir(tmp_path)
    line = assert_ok(validate(REPO_ROOT / "config" / "example", capsys))
    assert "ok: 1 group: k-club (12 members)" in line


# --- folder and file level problems ------------------------------------------------------

@pytest.mark.parametrize("name", ["K Club.toml", "k club.toml", "KClub.toml", "k_club.toml", "-club.toml"])
def test_group_file_name_must_be_a_lowercase_id(write_config_folder, capsys, name):
    """The file name is the group's id: capitals, spaces and '_' are one error naming the file."""
    [line] = problems(validate(write_config_folder({name: GROUP}), capsys), 1)
    assert line.startswith(f"groups/{name}: file name ")
    assert "lowercase letters, digits and '-'" in line


def test_non_utf8_file_names_its_line(write_config_folder, capsys):
    """A file saved in Latin-1 is one error with the line of the first bad byte."""
    group = mutate(GROUP, 'institution = "University B"', 'institution = "Université B"').encode("latin-1")
    [line] = problems(validate(write_config_folder({"g.toml": group}), capsys), 1)
    assert line.startswith(f"groups/g.toml: line {line_of(GROUP, 'University B')}: not UTF-8 text")
    assert "save the file as UTF-8" in line


def test_folder_named_like_a_group_file_is_reported(write_config_folder, capsys):
    """A folder called groups/x.toml is a problem with that name, not a traceback."""
    folder = write_config_folder({"g.toml": GROUP})
    (folder / "groups" / "x.toml").mkdir()
    [line] = problems(validate(folder, capsys), 1)
    assert line.startswith("groups/x.toml: cannot read the file")


def test_pipe_named_like_a_group_file_does_not_hang(write_config_folder, capsys):
    """A FIFO called groups/x.toml is one line at once; reading it would wait for a writer forever."""
    folder = write_config_folder({"g.toml": GROUP})
    os.mkfifo(folder / "groups" / "x.toml")
    [line] = problems(validate(folder, capsys), 1)
    assert line == "groups/x.toml: cannot read the file: not a regular file; make it a plain TOML file"


def test_oversized_group_file_is_refused_unread(write_config_folder, capsys):
    """A group file over 1 MB (a link to a log, a runaway paste) is one line, not a reload that fills memory."""
    big = GROUP + "#" + "x" * (1024 * 1024) + "\n"
    [line] = problems(validate(write_config_folder({"g.toml": big}), capsys), 1)
    assert line.startswith("groups/g.toml: cannot read the file: larger than 1 MB; split it")


def test_empty_groups_folder_is_an_error(write_config_folder, capsys):
    """A config folder with no group files says so and how to add one."""
    [line] = problems(validate(write_config_folder({}, service=SERVICE), capsys), 1)
    assert line.startswith("groups/: no group files")
    assert "groups/k-club.toml" in line


def test_missing_groups_folder_is_an_error(write_config_folder, capsys):
    """A config folder without groups/ is the same single error as an empty one."""
    folder = write_config_folder({}, service=SERVICE)
    (folder / "groups").rmdir()
    [line] = problems(validate(folder, capsys), 1)
    assert line.startswith("groups/: no group files")


def test_missing_config_folder_is_an_error(tmp_path, capsys):
    """--config naming a folder that does not exist is one line saying so."""
    folder = tmp_path / "no-such-folder"
    [line] = problems(validate(folder, capsys), 1)
    assert line.startswith(f"{folder}: no such config folder")
    assert "--config" in line


def test_every_problem_in_every_file_is_reported_together(write_config_folder, capsys):
    """Problems in several files come out together, one line each, service.toml first, then by file."""
    service = mutate(SMTP, 'password_env = "FRIENDTOR_SMTP_PASSWORD"', 'password = "hunter2"')
    groups = {
        "a.toml": mutate(GROUP, 'timezone = "America/New_York"', 'timezone = "America/New_Yrok"'),
        "b.toml": mutate(mutate(GROUP, 'hours = "14:00-21:30"', 'huors = "14:00-21:30"'),
                         "quorum = 0.5", "quorum = 2"),
        "c.toml": mutate(GROUP, 'coordinators = ["ana@uni-a.example"]', 'coordinators = ["zed@uni-z.example"]'),
        "d.toml": mutate(GROUP, "quorum = 0.5", "quorum = 0.5 half"),
        "ok.toml": GROUP,
    }
    lines = problems(validate(write_config_folder(groups, service=service), capsys), 6)
    assert [line.split(": ")[:2] for line in lines] == [
        ["service.toml", "mail.smtp.password"],
        ["groups/a.toml", "members[3] (Chandra Rao).timezone"],
        ["groups/b.toml", "meetings.quorum"],
        ["groups/b.toml", "members[2] (Ben Okoro).huors"],
        ["groups/c.toml", "coordinators[1]"],
        ["groups/d.toml", f"line {line_of(GROUP, 'quorum')}, column 14"],
    ]


# --- load_config ------------------------------------------------------------------------

def test_load_config_returns_normalised_values(write_config_folder):
    """load_config: the id comes from the file name, emails are lower-cased, service defaults apply."""
    group = mutate(GROUP, 'coordinators = ["ana@uni-a.example"]', 'coordinators = ["Ana@UNI-A.example"]')
    config = load_config(write_config_folder({"test-group.toml": group}))
    g = config.groups["test-group"]
    assert g.id == "test-group"
    assert g.coordinators == ("ana@uni-a.example",)
    assert g.member("ANA@uni-a.example") is g.members[0]
    assert [m.email for m in g.members] == ["ana@uni-a.example", "ben@uni-b.example", "chandra@uni-c.example"]
    assert config.service.mail.transport == "maildir"
    assert config.service.state == "var/state.json"


def test_load_config_applies_nothing_from_a_broken_folder(write_config_folder):
    """One bad group among good ones raises ConfigError with structured problems; no partial Config."""
    bad = mutate(GROUP, 'hours = "14:00-21:30"', 'hours = "21:30-14:00"')
    with pytest.raises(ConfigError) as caught:
        load_config(write_config_folder({"good.toml": GROUP, "bad.toml": bad}))
    [problem] = caught.value.problems
    assert (problem.file, problem.field) == ("groups/bad.toml", "members[2] (Ben Okoro).hours")
    assert "end before they start" in problem.message


# --- no input makes a traceback ---------------------------------------------------------

def _toml_string(text: str) -> str:
    escaped = "".join(f"\\u{ord(ch):04X}" if ch in '"\\' or ord(ch) < 0x20 or ord(ch) == 0x7F else ch
                      for ch in text)
    return f'"{escaped}"'


def _toml_float(x: float) -> str:
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf") if math.isinf(x) else repr(x)


NEAR_MISSES = ["09:00-17:00", "9:00-17:00", "17:00-09:00", "24:00-24:00", "America/New_York", "UTC",
               "ana@uni-a.example", "ANA@UNI-A.EXAMPLE", "a@b", "", " ", "mon", "Monday", "US", "CA-NL",
               "calendars/x.ics", "google:", "caldav:x", "https://", "~", "2026-12", "{x}", "{{"]

SCALARS = st.one_of(
    st.text(max_size=30).map(_toml_string),
    st.sampled_from(NEAR_MISSES).map(_toml_string),
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(str),
    st.floats().map(_toml_float),
    st.booleans().map(lambda b: "true" if b else "false"),
    st.dates().map(date.isoformat),
    st.datetimes().map(lambda d: d.isoformat()),
    st.times().map(lambda t: t.isoformat()),
)

TOML_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.dictionaries(st.sampled_from(["from", "to", "form", "x"]), inner, max_size=3)
          .map(lambda d: "{ " + ", ".join(f"{k} = {v}" for k, v in d.items()) + " }" if d else "{}"),
    ),
    max_leaves=8,
)

FIELDS = ['hours = "09:00-17:00"', 'timezone = "Asia/Kolkata"', 'email = "chandra@uni-c.example"',
          'name = "Ana Lima"', "quorum = 0.5", 'weekdays = ["tue", "wed", "thu"]',
          'coordinators = ["ana@uni-a.example"]', 'holidays = "IN"', "away = [{ from = 2026-12-21, to = 2027-01-04 }]",
          "started = 2026-01-13", "weeks_of_month = [2, 3]", 'cycle = "2026-12"']

FUZZ = settings(max_examples=75, deadline=None,
                # capsys is read afresh and each example writes a new folder (write_config_folder)
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def assert_clean_outcome(result: Result, file: str) -> None:
    assert "Traceback" not in result.out + result.err
    assert result.code in (0, 2), result.err
    if result.code == 0:
        assert result.err == "" and len(result.out.splitlines()) == 1
    else:
        lines = result.err.splitlines()
        assert result.out == "" and lines
        assert all(line.startswith(f"{file}: ") for line in lines), result.err


@FUZZ
@given(text=st.text())
def test_any_text_as_a_group_file_gives_lines_not_a_traceback(write_config_folder, capsys, text):
    """Arbitrary text as a group file: exit 0 or 2, and on 2 every line names groups/<file>."""
    assert_clean_outcome(validate(write_config_folder({"g.toml": text}), capsys), "groups/g.toml")


@FUZZ
@given(text=st.text())
def test_any_text_as_service_toml_gives_lines_not_a_traceback(write_config_folder, capsys, text):
    """Arbitrary text as service.toml: exit 0 or 2, and on 2 every line names service.toml."""
    assert_clean_outcome(validate(write_config_folder({"g.toml": GROUP}, service=text), capsys), "service.toml")


@FUZZ
@given(field=st.sampled_from(FIELDS), value=st.one_of(TOML_VALUES, st.text(max_size=20)))
def test_any_value_in_a_field_gives_lines_not_a_traceback(write_config_folder, capsys, field, value):
    """Any TOML value (or raw text) in one field: exit 0 or 2, and on 2 every line names groups/<file>."""
    key = field.split(" = ")[0] if " = " in field else field
    group = mutate(GROUP, field, f"{key} = {value}")
    assert_clean_outcome(validate(write_config_folder({"g.toml": group}), capsys), "groups/g.toml")
