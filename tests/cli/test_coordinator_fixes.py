"""What a new coordinator trips over (issue 12, point 7): `reschedule` names who cannot come at
the new time and refuses one a required member cannot make without --force; `attendance` is
refused for a meeting still to come.

The example group's December meeting (Thu 10 Dec 2026) is scheduled by a `run` at NOW; the
commands run with the clock pinned. Maya Chen, the required coordinator, is busy on Wed 16 Dec
at 12:00 in her calendar, and her hours end at 18:00 New York time.
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine

from builders import example_after_first_run
from scheduler.app.store import Store
from scheduler.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
MAYA = "maya.chen@northeast-childrens.example"


@pytest.fixture
def cfg(tmp_path, capsys):
    folder = example_after_first_run(tmp_path, NOW)
    capsys.readouterr()
    return folder


def command(capsys, folder: Path, *args: str, at: datetime = LATER) -> tuple[int, str, str]:
    with time_machine.travel(at, tick=False):
        code = main([*args, "--config", str(folder)])
    out, err = capsys.readouterr()
    return code, out, err


def december(folder: Path):
    with Store(folder / "var" / "state.json", lock=False) as store:
        return store.meetings()[("k-club", "2026-12")]


@pytest.mark.parametrize(("to", "reason"), [
    ("2026-12-16 12:00", "(busy)"),
    ("2026-12-15 19:00", "(outside 08:00–18:00 local (19:00 in America/New_York))"),
], ids=["busy", "outside-hours"])
def test_reschedule_refuses_a_time_the_required_member_cannot_make(cfg, capsys, to, reason):
    """One line, exit 2, naming the required member and the slot finder's reason; nothing stored
    or handed over."""
    before = december(cfg)
    code, out, err = command(capsys, cfg, "reschedule", "k-club", "--to", to)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    assert f"required Maya Chen <{MAYA}> {reason} cannot come" in err and "--force" in err
    assert december(cfg) == before and not (cfg / "var" / "incoming").exists()


def test_reschedule_with_force_moves_it_and_still_warns(cfg, capsys):
    """--force goes on, and still says the required member (and everyone else) cannot come, and why."""
    code, out, err = command(capsys, cfg, "reschedule", "k-club", "--to", "2026-12-16 12:00", "--force")
    assert code == 0, err
    assert f"warning: required Maya Chen <{MAYA}> cannot come at the new time: busy" in out
    assert december(cfg).start == datetime(2026, 12, 16, 17, tzinfo=UTC)


def test_reschedule_names_every_member_who_cannot_come_and_why(cfg, capsys):
    """A time the required member can make is moved to, and each member who cannot come is named
    with the slot finder's reason, as `slots` gives it."""
    code, out, err = command(capsys, cfg, "reschedule", "k-club", "--to", "2026-12-15 11:00")
    assert code == 0, err
    warnings = [line for line in out.splitlines() if line.startswith("warning:")]
    assert "warning: Priya Raman <priya.raman@pacific-u.example> cannot come at the new time: busy" in warnings
    assert ("warning: Ananya Das <ananya.das@kolkata-ich.example> cannot come at the new time: "
            "outside 14:00–21:30 local (21:30 in Asia/Kolkata)") in warnings
    assert not any(MAYA in line for line in warnings)
    # The same reasons `slots` gives for that start.
    code, slots_out, _ = command(capsys, cfg, "slots", "k-club", "--from", "2026-12-15", "--to", "2026-12-15",
                                 "--json", "--top", "100", at=LATER)
    [candidate] = [c for c in json.loads(slots_out)["candidates"] if c["start"] == "2026-12-15T16:00:00Z"]
    named = {line.split("<")[1].split(">")[0]: line.split("new time: ")[1] for line in warnings}
    assert named == candidate["unavailable"]


def test_attendance_for_a_meeting_still_to_come_is_refused(cfg, capsys):
    """Before December's meeting has ended: one line, exit 2, nothing stored; after it, recorded."""
    meeting = december(cfg)
    for at in (LATER, meeting.end - timedelta(minutes=1)):
        code, out, err = command(capsys, cfg, "attendance", "k-club", "2026-12-10", "--present", MAYA, at=at)
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert "meeting of 2026-12-10 has not happened yet (it ends Thu 10 Dec 2026 11:00 America/New_York)" in err
        with Store(cfg / "var" / "state.json", lock=False) as store:
            assert store.attendance("k-club") == []
    code, out, err = command(capsys, cfg, "attendance", "k-club", "2026-12-10", "--present", MAYA, at=meeting.end)
    assert code == 0 and "1 present" in out, err


STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (info|warning|error) ")


def test_a_dry_run_logs_would_schedule_never_scheduled(tmp_path, capsys):
    """`run --dry-run` says what it would do in its log lines as well as in its summary."""
    folder = tmp_path / "cfg"
    shutil.copytree(ROOT / "config" / "example", folder, ignore=shutil.ignore_patterns("var"))
    assert main(["run", "--dry-run", "--config", str(folder), "--now", NOW.isoformat()]) == 0
    out, err = capsys.readouterr()
    assert "would schedule k-club 2026-12" in out
    assert "info meeting would be scheduled group=k-club cycle=2026-12" in err
    assert "scheduled" not in err.replace("would be scheduled", "") and "scheduled" not in out.replace("would schedule", "")


def test_a_dry_run_with_no_quorum_says_coordinators_would_be_alerted(tmp_path, capsys):
    """A window where no time reaches quorum: the dry run's warning says the alert would go, not that it went."""
    folder = tmp_path / "cfg"
    shutil.copytree(ROOT / "config" / "example", folder, ignore=shutil.ignore_patterns("var"))
    toml = folder / "groups" / "k-club.toml"
    toml.write_text(toml.read_text().replace("quorum = 0.5", "quorum = 1.0"))
    assert main(["run", "--dry-run", "--config", str(folder), "--now", NOW.isoformat()]) == 0
    err = capsys.readouterr().err
    assert "warning no time reaches quorum; coordinators would be alerted group=k-club" in err
    assert "coordinators alerted" not in err


def test_text_log_lines_start_with_an_iso_8601_utc_timestamp(tmp_path, capsys):
    """Every text log line starts with the instant it was logged, ISO 8601 in UTC, to the millisecond."""
    folder = tmp_path / "cfg"
    shutil.copytree(ROOT / "config" / "example", folder, ignore=shutil.ignore_patterns("var"))
    before = datetime.now(UTC).replace(microsecond=0)
    assert main(["run", "--once", "--config", str(folder), "--now", NOW.isoformat()]) == 0
    after = datetime.now(UTC)
    lines = capsys.readouterr().err.splitlines()
    assert lines
    for line in lines:
        m = STAMP.match(line)
        assert m, line
        assert before <= datetime.fromisoformat(m.group(1)) <= after


def preview(capsys, folder: Path, kind: str, to: str, now: str, *extra: str) -> str:
    assert main(["preview", "k-club", kind, "--config", str(folder), "--to", to, "--now", now, *extra]) == 0
    return capsys.readouterr().out


def example(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    folder = tmp_path / "cfg"
    shutil.copytree(ROOT / "config" / "example", folder, ignore=shutil.ignore_patterns("var"))
    toml = folder / "groups" / "k-club.toml"
    text = toml.read_text()
    for old, new in edits:
        assert old in text
        text = text.replace(old, new, 1)
    toml.write_text(text)
    return folder


def test_the_follow_up_says_nothing_about_these_when_it_lists_no_goals(tmp_path, capsys):
    """James has no goal: his follow-up asks only about something new, in text and HTML; Maya,
    who has goals, is still asked whether one of these is done."""
    folder = example(tmp_path)
    html = tmp_path / "follow-up.html"
    james = preview(capsys, folder, "follow-up", "james.carter@northeast-childrens.example",
                    "2026-12-11T18:00:00Z", "--html", str(html))
    assert "You have no commitments written down" in james
    assert "these" not in james.split("What the others")[0] and "these" not in html.read_text()
    assert "Did you name something new at the meeting?" in james
    maya = preview(capsys, folder, "follow-up", MAYA, "2026-12-11T18:00:00Z")
    assert "Did you name something new at the meeting, or is one of these done?" in maya


def option_blocks(text: str) -> list[list[str]]:
    """The alert's numbered options, each as its lines."""
    body = text.split("The best options it found")[1].split("To go ahead")[0]
    blocks = re.split(r"\n(?=\d\. )", body)[1:]
    return [block.strip().splitlines() for block in blocks]


def test_preview_alert_on_a_group_that_reaches_quorum_does_not_claim_it_does_not(tmp_path, capsys):
    """The example group has times that reach its 50% quorum: the preview says so, subject and
    text, and each option says it is enough to meet, with the numbers."""
    folder = example(tmp_path)
    html = tmp_path / "alert.html"
    text = preview(capsys, folder, "alert", MAYA, "2026-11-20T12:00:00Z", "--html", str(html))
    assert "No time reaches quorum" not in text and "No invitation has gone out" not in text
    assert "Subject: A time reaches quorum for K Club" in text and "no alert is due" in text
    blocks = option_blocks(text)
    assert blocks and all(b[1].strip().startswith("Enough to meet: ") for b in blocks)
    assert "Enough to meet: 10 of 12 expected, 6 needed." in blocks[0][1]
    assert "No time reaches quorum" not in html.read_text() and "Enough to meet" in html.read_text()


def test_an_alert_below_quorum_says_why_each_option_cannot_go_ahead(tmp_path, capsys):
    """With a quorum no time reaches (every member) and James required, every option says it
    cannot go ahead and why: the required member who cannot come, or how many are expected
    against how many are needed; the opening line is true of every option."""
    folder = example(tmp_path, ("quorum = 0.5", "quorum = 1.0"),
                     ('calendar = "calendars/james-carter.ics"', 'calendar = "calendars/james-carter.ics"\nrequired = true'))
    text = preview(capsys, folder, "alert", MAYA, "2026-11-20T12:00:00Z")
    assert "there is no time when at least 100% of the group, and every required member, can come" in text
    assert "Subject: No time reaches quorum for K Club" in text and "Enough to meet" not in text
    blocks = option_blocks(text)
    assert len(blocks) == 3
    for block in blocks:
        reason = block[1].strip()
        if any(line.strip().startswith("James Carter: ") for line in block):
            assert reason == "Cannot go ahead: James Carter cannot come, and is required."
        else:
            assert re.fullmatch(r"Cannot go ahead: \d+(\.5)? of 12 expected, 12 needed \(100% of the group\)\.", reason)


def test_the_quorum_in_people_is_rounded_up_to_the_half_steps_attendance_moves_in(tmp_path, capsys):
    """A 60% quorum of 12 is 7.2 people; attendance moves in halves, so 7.5 are needed."""
    folder = example(tmp_path, ("quorum = 0.5", "quorum = 0.99"))
    text = preview(capsys, folder, "alert", MAYA, "2026-11-20T12:00:00Z")
    assert all("12 needed (99% of the group)." in b[1] for b in option_blocks(text))
    folder = example(tmp_path / "b", ("quorum = 0.5", "quorum = 0.6"))
    text = preview(capsys, folder, "alert", MAYA, "2026-11-20T12:00:00Z")
    assert "7.5 needed" in text


# --- validate ------------------------------------------------------------------------------

SMALL = """\
name = "G"
timezone = "UTC"
coordinators = ["boss@x.example"]
started = 2026-01-01

[[members]]
name = "Ana Lima"
email = "ana@x.example"
timezone = "UTC"

[[members]]
name = "Rafael Souza"
email = "rafael@x.example"
timezone = "UTC"
hours = "9-5"

[[goals]]
member = "ben@uni-b.example"
text = "Send the aims page"
due = 2026-12-15
"""


def validate(capsys, tmp_path: Path, text: str) -> list[str]:
    folder = tmp_path / "v"
    (folder / "groups").mkdir(parents=True, exist_ok=True)
    (folder / "groups" / "g.toml").write_text(text)
    code = main(["validate", "--config", str(folder)])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and "Traceback" not in err, out + err
    return err.splitlines()


def test_validate_reports_cross_references_together_with_field_problems(tmp_path, capsys):
    """A field problem (Rafael's hours) no longer hides the coordinator who is not a member and
    the goal of someone outside the group: all three, in one run, each naming whom it is about."""
    lines = validate(capsys, tmp_path, SMALL)
    assert len(lines) == 3, lines
    assert lines[0].startswith("groups/g.toml: members[2] (Rafael Souza).hours: ")
    assert lines[1].startswith("groups/g.toml: coordinators[1]: boss@x.example is not a member")
    assert lines[2].startswith("groups/g.toml: goals[1] (ben@uni-b.example).member: ben@uni-b.example is not a member")


def test_a_missing_email_names_the_member_and_a_reference_that_may_be_theirs_says_so(tmp_path, capsys):
    """`members[2] (Rafael Souza).email: required key is missing`; a goal for an address no member
    has is still reported, and points at the member whose email is missing."""
    text = SMALL.replace('coordinators = ["boss@x.example"]', 'coordinators = ["ana@x.example"]')
    text = text.replace('email = "rafael@x.example"\n', "").replace('hours = "9-5"\n', "")
    lines = validate(capsys, tmp_path, text)
    assert lines == [
        "groups/g.toml: members[2] (Rafael Souza).email: required key is missing; add it",
        "groups/g.toml: goals[1] (ben@uni-b.example).member: ben@uni-b.example is not a member of this group; "
        "use one of: ana@x.example (or fix members[2]'s email, if it is theirs)",
    ]


def test_calendar_files_are_checked_even_when_a_field_is_wrong(tmp_path, capsys):
    """A missing calendar file is reported beside a field problem of the same file."""
    text = SMALL.replace('coordinators = ["boss@x.example"]', 'coordinators = ["ana@x.example"]')
    text = text.replace('member = "ben@uni-b.example"', 'member = "ana@x.example"')
    text = text.replace('name = "Ana Lima"\n', 'name = "Ana Lima"\ncalendar = "calendars/ana.ics"\n')
    lines = validate(capsys, tmp_path, text)
    assert [line.split(":")[1].strip() for line in lines] == ["members[2] (Rafael Souza).hours",
                                                              "members[1] (Ana Lima).calendar"], lines


@pytest.mark.parametrize("value", ["2026-13-01", "2026-02-30", "2026-1-5", "15/12/2026", "15.12.2026", "2026/12/15"])
def test_an_unquoted_bad_date_gives_the_position_and_the_hint(tmp_path, capsys, value):
    """tomllib sees a broken number; the line says where the value starts and how dates are written."""
    [line] = validate(capsys, tmp_path, SMALL.replace("due = 2026-12-15", f"due = {value}"))
    row = SMALL.splitlines().index("due = 2026-12-15") + 1
    assert line == (f"groups/g.toml: line {row}, column 7: invalid TOML: not a date; "
                    "dates are written 2026-11-01, without quotes")


def test_a_bad_date_inside_an_inline_table_points_at_it(tmp_path, capsys):
    """`away = [{ from = ..., to = 2027-02-30 }]`: the column of the bad date, with the hint."""
    text = SMALL.replace('hours = "9-5"', "away = [{ from = 2027-01-11, to = 2027-02-30 }]")
    [line] = validate(capsys, tmp_path, text)
    assert line.endswith("column 35: invalid TOML: not a date; dates are written 2026-11-01, without quotes")


@pytest.mark.parametrize(("value", "says"), [
    ('"2026-12-15"', "a date in quotes is text: remove the quotes; dates are written 2026-11-01, without quotes"),
    ('"1797292800"', "expected a date, got '1797292800'; dates are written 2026-11-01, without quotes"),
    ("2026-12-15T00:00:00", "expected a date without a time of day, got 2026-12-15T00:00:00; "
                              "dates are written 2026-11-01"),
], ids=["quoted", "timestamp-text", "date-time"])
def test_a_quoted_date_is_refused_with_the_hint(tmp_path, capsys, value, says):
    """Text where a date is expected (which pydantic would quietly read, a midnight timestamp
    included) is one line naming the field, with the hint."""
    text = SMALL.replace('coordinators = ["boss@x.example"]', 'coordinators = ["ana@x.example"]')
    text = text.replace('member = "ben@uni-b.example"', 'member = "ana@x.example"').replace('hours = "9-5"\n', "")
    [line] = validate(capsys, tmp_path, text.replace("due = 2026-12-15", f"due = {value}"))
    assert line == f"groups/g.toml: goals[1] (ana@x.example).due: {says}"


def test_a_name_too_long_or_on_two_lines_is_not_shown_beside_the_path(tmp_path, capsys):
    """Only a one-line name of at most 80 characters is shown; otherwise the path is as before."""
    text = SMALL.replace('coordinators = ["boss@x.example"]', 'coordinators = ["ana@x.example"]')
    text = text.replace('member = "ben@uni-b.example"', 'member = "ana@x.example"')
    lines = validate(capsys, tmp_path, text.replace('name = "Rafael Souza"', f'name = "{"R" * 81}"'))
    assert lines == ["groups/g.toml: members[2].hours: " + lines[0].split(".hours: ")[1]]


def test_a_duplicate_address_names_both_members(tmp_path, capsys):
    """The path and the entry the message refers to both carry the member's name."""
    text = SMALL.replace('coordinators = ["boss@x.example"]', 'coordinators = ["ana@x.example"]')
    text = text.replace('member = "ben@uni-b.example"', 'member = "ana@x.example"').replace('hours = "9-5"\n', "")
    lines = validate(capsys, tmp_path, text.replace('email = "rafael@x.example"', 'email = "ana@x.example"'))
    assert lines == ["groups/g.toml: members[2] (Rafael Souza).email: ana@x.example is already used by "
                     "members[1] (Ana Lima); each member needs their own address"]


# --- README -----------------------------------------------------------------------------------

WORDS = {"invite": "invitation per member", "report": "monthly\nreport", "year-end": "year-end prompt",
         "review": "mission review", "nudge": "nudge", "agenda": "agenda"}


@pytest.mark.parametrize("now", ["2026-12-02T12:00:00Z", "2027-01-14T12:00:00Z", "2027-03-05T12:00:00Z",
                                 "2027-06-20T12:00:00Z"])
def test_the_readme_says_everything_the_first_command_sends(tmp_path, capsys, now):
    """The README's paragraph on the first command names every kind of message its one tick sends
    on the example, whatever the day (December brings the year-end prompt, January a review)."""
    readme = (ROOT / "README.md").read_text()
    paragraph = readme.split("The first command")[1].split("The second command")[0]
    folder = tmp_path / "cfg"
    shutil.copytree(ROOT / "config" / "example", folder, ignore=shutil.ignore_patterns("var"))
    assert main(["run", "--once", "--config", str(folder), "--now", now]) == 0
    sent = re.search(r"sent \d+: (.*)", capsys.readouterr().out).group(1)
    kinds = [part.rsplit(" ", 1)[0] for part in sent.split(", ")]
    assert "invite" in kinds
    for kind in kinds:
        assert " ".join(WORDS[kind].split()) in " ".join(paragraph.split()), kind


def test_reschedule_goes_ahead_when_the_required_members_calendar_is_unreadable_and_says_so(cfg, capsys):
    """An unreadable calendar is not a "cannot come" (the slot finder counts it half): the move is
    made, with a note that the required member may not come, and why."""
    (cfg / "calendars" / "maya-chen.ics").write_text("not a calendar\n")
    code, out, err = command(capsys, cfg, "reschedule", "k-club", "--to", "2026-12-16 12:00")
    assert code == 0, err
    [note] = [line for line in out.splitlines() if MAYA in line]
    assert note.startswith(f"note: required Maya Chen <{MAYA}> may not come at the new time: calendar unknown: ")


def test_preview_year_end_shows_the_prompt_the_service_will_send(tmp_path, capsys):
    """A group started in July previews, in November, next year's prompt, covering July to the
    November after (the service sends none in its first December)."""
    folder = example(tmp_path, ("started = 2026-01-13", "started = 2026-07-01"))
    text = preview(capsys, folder, "year-end", MAYA, "2026-11-20T12:00:00Z")
    assert "(Wed 1 Jul 2026 to Tue 30 Nov 2027)" in text
    folder = example(tmp_path / "b")
    text = preview(capsys, folder, "year-end", MAYA, "2026-11-20T12:00:00Z")
    assert "(Tue 13 Jan 2026 to Mon 30 Nov 2026)" in text
