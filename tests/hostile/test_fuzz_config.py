"""A fuzz of group files (and of a conference its members attend): whatever a coordinator writes, `validate` either refuses it with
one line per problem (exit 2, no traceback), or the service can plan it (a dry-run tick at
several instants finishes without an internal error)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from scheduler.cli.main import main

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "example"

GROUP = """\
name = "Fuzzed"
timezone = {zone}
coordinators = ["ana@uni-a.example"]
started = {started}
gathering_min = 2
gathering_time = {gathering_time}

[meetings]
cadence = {cadence}
duration_minutes = {duration}
weekdays = {weekdays}
weeks_of_month = {weeks}
quorum = {quorum}
invite_days_before = {invite}
agenda_days_before = {agenda}

[reviews]
mission_review_months = {review}

[[members]]
name = "Ana Lima"
email = "ana@uni-a.example"
timezone = {member_zone}
hours = {hours}
away = [{{ from = {away_from}, to = {away_to} }}]
conferences = ["Fuzz Con"]

[[members]]
name = "Ben Okoro"
email = "ben@uni-b.example"
timezone = "Asia/Kolkata"
conferences = ["fuzz con"]

[[goals]]
member = "ben@uni-b.example"
text = "A goal"
due = {due}

[[milestones]]
member = "ana@uni-a.example"
text = "A milestone"
date = {milestone}

[[agenda]]
text = "An item"
cycle = {cycle}
"""

# A conference both members attend, so a gathering is planned whenever the dates allow.
CONFERENCE = """
[[conferences]]
name = "Fuzz Con"
city = "Adelaide"
timezone = {conf_zone}
start = {conf_start}
end = {conf_end}
"""

ZONES = ["America/St_Johns", "Asia/Kolkata", "Australia/Adelaide", "UTC", "Etc/GMT+12", "Pacific/Kiritimati",
         "Mars/Olympus", "", "america/new_york"]


def toml(value) -> str:
    """A value as TOML: dates bare, strings quoted (JSON's escapes are TOML's), numbers as is."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


days = st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31))
near = st.dates(min_value=date(2025, 1, 1), max_value=date(2028, 12, 31))
numbers = st.one_of(st.integers(-10, 400), st.integers(-2**63, 2**63 - 1))
# Each field: values a coordinator would write (DST weeks, half-hour zones, edges of the
# accepted ranges), and odd ones. A file gets sensible values everywhere but in a few fields,
# so that both halves of the property (refused in one line, or planned) are exercised.
SENSIBLE = {
    "zone": st.sampled_from(ZONES[:6]), "member_zone": st.sampled_from(ZONES[:6]),
    "started": near, "due": near, "milestone": near, "away_from": near, "away_to": near,
    "cadence": st.sampled_from(["monthly", "weekly", "biweekly"]),
    "duration": st.integers(15, 480), "invite": st.integers(1, 120), "agenda": st.integers(0, 30),
    "review": st.integers(1, 24),
    "weekdays": st.lists(st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]), min_size=1,
                         max_size=7, unique=True),
    "weeks": st.lists(st.integers(1, 5), min_size=1, max_size=5, unique=True),
    "quorum": st.sampled_from([0.25, 0.5, 1.0]),
    "hours": st.sampled_from(["09:00-17:00", "00:00-24:00", "23:45-24:00", "06:30-09:00"]),
    "cycle": st.sampled_from(["2026-12", "2026-W50", "2199-12", "1900-W01"]),
    "conf_zone": st.sampled_from(ZONES[:6]), "conf_start": near, "conf_end": near,
    "gathering_time": st.sampled_from(["18:30", "00:00", "23:59", "02:30"]),
}
ODD = {
    **{k: days for k in ("started", "due", "milestone", "away_from", "away_to")},
    "zone": st.sampled_from(ZONES), "member_zone": st.sampled_from(ZONES),
    "cadence": st.sampled_from(["daily", "", "Monthly"]),
    "duration": numbers, "invite": numbers, "agenda": numbers, "review": numbers,
    "weekdays": st.lists(st.sampled_from(["mon", "xyz", "", "Tue"]), max_size=8),
    "weeks": st.lists(st.integers(-1, 7), max_size=6),
    "quorum": st.floats(allow_nan=True, allow_infinity=True),
    "hours": st.sampled_from(["17:00-09:00", "25:00-26:00", "9-5", ""]),
    "cycle": st.one_of(st.sampled_from(["0001-01", "9999-W53", "2026-13", "2026-W54"]), st.text(max_size=12)),
    "conf_zone": st.sampled_from(ZONES), "conf_start": days, "conf_end": days,
    "gathering_time": st.one_of(st.sampled_from(["24:00", "6pm", ""]), st.text(max_size=8)),
}


@st.composite
def fields(draw) -> dict:
    values = {name: draw(strategy) for name, strategy in SENSIBLE.items()}
    for name in draw(st.lists(st.sampled_from(sorted(ODD)), max_size=2, unique=True)):
        values[name] = draw(ODD[name])
    return values


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(values=fields())
def test_validate_refuses_in_one_line_each_or_the_service_plans_it(tmp_path_factory, capsys, values) -> None:
    """No group file, however odd, reaches an internal error: refused by validate, or planned."""
    folder = tmp_path_factory.mktemp("cfg")
    as_toml = {k: toml(v) for k, v in values.items()}
    (folder / "service.toml").write_text((EXAMPLE / "service.toml").read_text() + CONFERENCE.format(**as_toml))
    (folder / "groups").mkdir()
    (folder / "groups" / "fuzzed.toml").write_text(GROUP.format(**as_toml))
    capsys.readouterr()
    code = main(["validate", "--config", str(folder)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and "internal error" not in err, err
    if code == 2:
        lines = err.splitlines()
        assert lines and all(line.startswith(("groups/fuzzed.toml: ", "service.toml: ")) for line in lines), err
        event("refused")
        return
    event("planned")
    assert code == 0, err
    for now in ("2026-12-02T09:00:00Z", "2027-03-28T01:30:00Z", "2027-10-03T16:30:00Z",
                f"{values['conf_start'].isoformat()}T00:00:00Z"):  # a few days into its gathering's window
        code = main(["run", "--dry-run", "--now", now, "--config", str(folder)])
        out, err = capsys.readouterr()
        assert code == 0 and "internal error" not in err, err
