"""Loading a folder of many group files gives what it gave before loading was made fast (issue 14):
the same Config, value for value, and the same problem lines for broken files.

tests/fixtures/configload/expected.json was written by the loader as it was before (main at
07bdf7e): every group's `model_dump` and the service's, and the problem lines of a folder of
broken files. A change that means to change what is loaded rewrites it with

    python tests/app/test_config_load.py --write      # with the checkout to compare against first on PYTHONPATH

and the diff shows, group by group, what changed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from scheduler.app.loader import load_config
from scheduler.core.errors import ConfigError

EXPECTED = Path(__file__).resolve().parents[1] / "fixtures" / "configload" / "expected.json"

ZONES = ("America/New_York", "Europe/London", "Asia/Kolkata", "America/St_Johns", "Australia/Adelaide",
         "America/Phoenix", "Pacific/Auckland", "Europe/Berlin")
REGIONS = ("US-NY", "GB-ENG", "IN-WB", "CA-NL", "AU-SA", "US", "NZ", "DE-BY")
DAYS = ("mon", "Tuesday", "wed", "thu", "FRI", "sat")
PEOPLE = 23  # people p00..p22; group i takes five of them from i on, so neighbours share members
SERVICE = """\
state = "var/state.json"
[mail]
sender = "Friendtor@Example.org"
[[conferences]]
name = "PAS 2027"
city = "Honolulu"
timezone = "Pacific/Honolulu"
start = 2027-04-24
end = 2027-04-28
"""


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _email(j: int) -> str:
    # Written in mixed case for some, on an internationalised domain for one: loaded lower-case, ASCII.
    return {0: "Staff.Coordinator@Society.example", 7: "p07@bücher.example"}.get(j, f"p{j:02d}@uni-{j % 4}.example")


def _calendar(j: int) -> str | None:
    return (f"calendars/p{j:02d}.ics", f"https://cal.example.org/p{j:02d}.ics", f"webcal://cal.example.org/{j}",
            f"caldav:https://dav.example.org/p{j:02d}/", None)[j % 5]


def group_text(i: int) -> str:
    """Group i: everything a group file can say, varied with i; person 0 is in every group."""
    people = [0] + [(i + k) % (PEOPLE - 1) + 1 for k in range(4)]
    lines = [f"name = {_q(f'Group {i} – Réseau')}", f"mission = {_q(f'Mission {i}: one grant each.')}",
             f"timezone = {_q(ZONES[i % len(ZONES)])}", f"coordinators = [{_q(_email(0))}, {_q(_email(people[1]))}]",
             f'video_link = "https://meet.example.org/g{i}"', f"started = 2026-0{1 + i % 9}-1{i % 10}",
             f"share_member_emails = {'true' if i % 3 == 0 else 'false'}", f"gathering_min = {2 + i % 3}",
             f'gathering_time = "{18 + i % 3}:30"', "", "[meetings]",
             f'cadence = "{("monthly", "weekly", "biweekly")[i % 3]}"', f"duration_minutes = {45 + 15 * (i % 4)}",
             f"weekdays = [{', '.join(_q(d) for d in DAYS[i % 3:i % 3 + 3])}]", f"weeks_of_month = [{1 + i % 4}, 3, 3]",
             f"quorum = {(0.5, 0.75, 1)[i % 3]}", f"grid_minutes = {(15, 30, 60)[i % 3]}", f"call_days_before = {i % 8}",
             "", "[reviews]", f"mission_review_months = {3 + i % 10}", f"year_end_month = {1 + i % 12}", "",
             "[roles]", f'facilitator = {_q(("rotate", _email(people[2]).upper(), "none")[i % 3])}', ""]
    for k, j in enumerate(people):
        lines += ["[[members]]", f"name = {_q(f'  Person {j:02d} Ñúñez ')}", f"email = {_q(_email(j))}",
                  f"timezone = {_q(ZONES[(i + k) % len(ZONES)])}", f'hours = "{7 + k:02d}:{(0, 30)[k % 2]:02d}-{17 + k % 3}:00"']
        if k % 2:
            lines += [f'preferred_hours = "1{k}:00 - 1{k + 1}:30"', f"holidays = {_q(REGIONS[(i + k) % len(REGIONS)].lower())}"]
        if _calendar(j + i):
            lines.append(f"calendar = {_q(_calendar(j + i))}")
        if k == 1:
            lines += ["required = true", 'institution = "University One"', 'conferences = ["pas 2027"]',
                      f"away = [{{ from = 2027-0{1 + i % 9}-01, to = 2027-0{1 + i % 9}-1{i % 10} }}]"]
        if k == 3:
            lines.append('weekdays = ["sunday", "mon", "mon"]')
        lines.append("")
    for n in range(i % 4):
        lines += ["[[goals]]", f"member = {_q(_email(people[n + 1]).title())}", f"text = {_q(f'Goal {n}')}",
                  *([f"due = 2027-0{1 + n}-2{n}"] if n % 2 == 0 else []), f"done = {'true' if n == 2 else 'false'}", ""]
    lines += ["[[milestones]]", f"member = {_q(_email(people[4]))}", 'text = "Award"', "date = 2026-11-30", "",
              "[[agenda]]", 'text = "Every meeting"', "", "[[agenda]]", 'text = "Once"', f'cycle = "2027-{("03", "W10")[i % 2]}"']
    text = "\n".join(lines) + "\n"
    # A file saved by Notepad (byte order mark) and one with Windows line ends load like the others.
    return ("\ufeff" + text) if i == 4 else text.replace("\n", "\r\n") if i == 5 else text


GROUPS = 40


def build_good(folder: Path) -> Path:
    (folder / "groups").mkdir(parents=True)
    (folder / "calendars").mkdir()
    (folder / "service.toml").write_text(SERVICE)
    for j in range(PEOPLE + GROUPS):
        (folder / "calendars" / f"p{j:02d}.ics").write_text("BEGIN:VCALENDAR\nVERSION:2.0\nEND:VCALENDAR\n")
    for i in range(GROUPS):
        (folder / "groups" / f"g{i:02d}.toml").write_bytes(group_text(i).encode())
    return folder


# Each broken file is a good one with one mistake (a replacement of one line); two files share a
# mistake, so that a problem is seen to be reported for each file that has it.
MISTAKES = {
    "typo-key": ('mission = "', 'misison = "'),
    "email-bad": ('email = "p', 'email = "not an address" # '),
    "email-bad-again": ('email = "p', 'email = "not an address" # '),
    "email-list": ('email = "p', 'email = ["p01@uni-1.example"] # '),
    "zone-typo": ('timezone = "', 'timezone = "Europe/Londn" # '),
    "zone-offset": ('timezone = "', 'timezone = "UTC+5" # '),
    "hours-backwards": ('hours = "07', 'hours = "17:00-09:00" # '),
    "region-sub": ('holidays = "', 'holidays = "US-XX" # '),
    "weekday": ('weekdays = ["sunday"', 'weekdays = ["funday"'),
    "not-member": ('coordinators = [', 'coordinators = ["someone@else.example", '),
    "unquoted": ('name = "Group', 'name = Group'),
    "quoted-date": ("started = 2026", 'started = "2026-01-13" # '),
    "conference": ('conferences = ["pas 2027"]', 'conferences = ["PAS 2028"]'),
    "toml-v11": ("away = [{ from", "away = [{\n from"),
}


def build_broken(folder: Path) -> Path:
    build_good(folder)
    for i, (name, (old, new)) in enumerate(MISTAKES.items()):
        text = group_text(8 + 3 * i).replace("\r\n", "\n").lstrip("\ufeff")
        assert old in text, name
        (folder / "groups" / f"{name}.toml").write_text(text.replace(old, new, 1))
    return folder


def loaded(folder: Path) -> dict:
    config = load_config(folder)
    return {"service": config.service.model_dump(mode="json"),
            "groups": {gid: g.model_dump(mode="json") for gid, g in sorted(config.groups.items())}}


def problems(folder: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(folder)
    return [line.replace(str(folder), "<config>") for line in caught.value.lines()]


def test_forty_group_files_load_the_config_they_loaded_before(tmp_path):
    """Forty varied group files sharing members (one person in all), with calendars of every kind,
    a byte order mark and Windows line ends: every group's values are those the loader gave before."""
    got = loaded(build_good(tmp_path / "config"))
    expected = json.loads(EXPECTED.read_text())
    assert got["service"] == expected["service"]
    assert sorted(got["groups"]) == sorted(expected["groups"])
    for gid, dump in expected["groups"].items():
        assert got["groups"][gid] == dump, gid


def test_broken_group_files_give_the_problem_lines_they_gave_before(tmp_path):
    """Fourteen kinds of mistake beside the forty good files: the same lines, in the same order."""
    assert problems(build_broken(tmp_path / "config")) == json.loads(EXPECTED.read_text())["problems"]


@pytest.mark.parametrize("key, value", [
    ("name", '{ first = "a",\n last = "b" }'),   # a line break in an inline table
    ("name", '{ first = "a", }'),                # a trailing comma in one
    ("name", '"\\x41"'),                         # a \x escape
    ("name", '"\\e"'),                           # an \e escape
    ("gathering_time", "18:30"),                 # a time without seconds
], ids=["inline-newline", "inline-comma", "x-escape", "e-escape", "time-no-seconds"])
def test_toml_that_only_version_1_1_allows_is_refused_as_by_the_standard_library(tmp_path, key, value):
    """What TOML 1.1 adds is invalid TOML 1.0, as Python 3.11's tomllib reads it: one line, in its words."""
    build_good(tmp_path / "config")
    rest = [line for line in group_text(0).split("\n") if not line.startswith(f"{key} = ")]
    (tmp_path / "config" / "groups" / "g00.toml").write_text("\n".join([f"{key} = {value}", *rest]))
    lines = problems(tmp_path / "config")
    assert len(lines) == 1 and lines[0].startswith("groups/g00.toml: line ") and "invalid TOML" in lines[0]


@pytest.mark.parametrize("depth", [1_000, 200_000])
def test_a_file_nested_too_deeply_is_one_line_not_an_internal_error(tmp_path, depth):
    """`name = [[[[...]]]]` a thousand or 200,000 deep: one line saying so (it was a RecursionError)."""
    build_good(tmp_path / "config")
    (tmp_path / "config" / "groups" / "g00.toml").write_text("name = " + "[" * depth + "]" * depth + "\n")
    lines = problems(tmp_path / "config")
    assert lines == ["groups/g00.toml: invalid TOML: lists or tables nested too deeply; a config file needs "
                     "only a few levels of [ ] and { }"]


SPECS = ["calendars/x.ics", "calendars/link-out.ics", "calendars/link-in.ics", "calendars/dangling.ics",
         "calendars/loop1.ics", "dirlink/o.ics", "loopdir/x.ics", "calendars/../calendars/x.ics", "calendars/sub/..",
         "calendars/sub/../x.ics", "calendars/adir.ics", "calendars/fifo.ics", "calendars/missing.ics",
         "calendars/nodir/x.ics", "calendars/x.ics/y", "calendars//x.ics", "./calendars/x.ics", "calendars/.", "calendars",
         ".", "..", "listed/l.ics", "~/x.ics", "/etc/hostname", "OUTSIDE/o.ics", "CONFIG/calendars/link-in.ics"]


@pytest.mark.parametrize("listed", [(), ("OUTSIDE", "listed", "dirlink")], ids=["config-folder", "listed-folders"])
@pytest.mark.parametrize("relative", [False, True], ids=["absolute", "relative"])
def test_calendar_files_are_refused_and_missing_as_when_every_path_was_resolved(tmp_path, monkeypatch, listed, relative):
    """Links in and out, dangling and looping links, a linked folder, `..`, a folder, a FIFO, a
    missing file, `~`, absolute paths, listed folders: each calendar path is inside or outside,
    present or missing, as resolving it whole (as the loader did for each) says."""
    import os
    from scheduler.app.configpaths import CalendarFiles, real, resolve
    from scheduler.core.config import Service
    from scheduler.core.fields import calendar_folders, inside
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "o.ics").write_text("x")
    config = tmp_path / "config"
    cal = config / "calendars"
    (cal / "sub").mkdir(parents=True)
    (cal / "adir.ics").mkdir()
    (cal / "x.ics").write_text("x")
    os.mkfifo(cal / "fifo.ics")
    for name, target in (("link-out.ics", outside / "o.ics"), ("link-in.ics", cal / "x.ics"),
                         ("dangling.ics", cal / "nothing"), ("loop1.ics", cal / "loop2.ics"), ("loop2.ics", cal / "loop1.ics")):
        (cal / name).symlink_to(target)
    (config / "dirlink").symlink_to(outside)
    (config / "loopdir").symlink_to(config / "loopdir")
    (config / "listed").mkdir()
    (config / "listed" / "l.ics").write_text("x")
    if relative:
        monkeypatch.chdir(tmp_path)
        config = Path("config")
    named = {"OUTSIDE": str(outside), "CONFIG": str(config.absolute())}
    specs = [named.get(s.split("/")[0], s.split("/")[0]) + s[len(s.split("/")[0]):] for s in SPECS]
    service = Service.model_validate({"limits": {"calendar_folders": [named.get(f, f) for f in listed]}})

    def as_before(i: int, spec: str) -> list[tuple[str, str]]:
        path = resolve(spec, config)
        folders = [real(f) for f in calendar_folders(config, service.limits.calendar_folders)]
        if not inside(real(path), folders):
            return [(f"members[{i}].calendar", "outside")]
        return [] if path.is_file() else [(f"members[{i}].calendar", "missing")]

    got = CalendarFiles(config, service).problems(list(enumerate(specs, 1)))
    kinds = [(field, "outside" if "outside the config folder" in msg else "missing") for field, msg in got]
    assert kinds == [p for i, spec in enumerate(specs, 1) for p in as_before(i, spec)]
    assert ("members[1].calendar", "missing") not in kinds  # the plain file is there


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        doc = {**loaded(build_good(Path(tmp) / "good")), "problems": problems(build_broken(Path(tmp) / "broken"))}
    EXPECTED.parent.mkdir(parents=True, exist_ok=True)
    # One group per line: a change shows as the lines of the groups it touched.
    groups = ",\n".join(f"  {json.dumps(gid)}: {json.dumps(d, sort_keys=True, ensure_ascii=False)}"
                        for gid, d in doc["groups"].items())
    EXPECTED.write_text("{\n" + f'"service": {json.dumps(doc["service"], sort_keys=True)},\n"groups": {{\n{groups}\n}},\n'
                        + '"problems": [\n' + ",\n".join(f"  {json.dumps(p, ensure_ascii=False)}" for p in doc["problems"])
                        + "\n]\n}\n")
    print(f"wrote {EXPECTED}: {len(doc['groups'])} groups, {len(doc['problems'])} problem lines")
