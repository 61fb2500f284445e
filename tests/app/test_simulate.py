"""A simulated year of the example group, read back from the Maildir the simulation wrote."""

from __future__ import annotations

import email
import email.policy
import mailbox
import shutil
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from integrations.calendars import group_availability
from integrations.mail import MaildirTransport
from scheduler.cli.main import main
from scheduler.app.loader import load_config
from scheduler.app.simulate import day_bounds, parse_step, simulate

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "example"


@pytest.fixture(scope="module")
def year(tmp_path_factory):
    """One simulated calendar year (2027) of the example config, ticking every 6 hours."""
    folder = tmp_path_factory.mktemp("cfg")
    shutil.copytree(EXAMPLE, folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns("var"))
    out = tmp_path_factory.mktemp("sim") / "run"
    start, end = day_bounds("2027-01-01", "2027-12-31")
    simulate(folder, start, end, parse_step("6h"), out, availability=group_availability, maildir=MaildirTransport)
    messages = [email.message_from_bytes(m.as_bytes(), policy=email.policy.default)
                for m in mailbox.Maildir(out / "outbox", create=False)]
    return load_config(folder), messages, out


def _by(messages, kind):
    return [m for m in messages if m["X-Friendtor-Kind"] == kind]


@pytest.mark.slow  # the module-wide simulated year (about 20 s)
def test_one_invite_per_member_per_meeting(year):
    """Every cycle's meeting is invited once to each of the twelve members."""
    config, messages, _ = year
    group = config.groups["k-club"]
    per_key = defaultdict(Counter)
    for m in _by(messages, "invite"):
        per_key[m["X-Friendtor-Key"]][m["To"].addresses[0].addr_spec] += 1
    cycles = {k.rsplit(":", 1)[1] for k in per_key}
    assert {f"2027-{mo:02d}" for mo in range(2, 13)} <= cycles
    for key, recipients in per_key.items():
        assert set(recipients) == {m.email for m in group.members}, key
        assert set(recipients.values()) == {1}, key


@pytest.mark.slow  # the module-wide simulated year (about 20 s)
def test_agenda_before_and_follow_up_after_every_meeting(year):
    """For each meeting: an agenda to everyone before it starts, a follow-up after it ends."""
    config, messages, out = year
    from scheduler.app.store import Store

    with Store(out / "state.json", lock=False) as store:
        meetings = {c: m for (g, c), m in store.meetings().items() if g == "k-club"}
    held = {c: m for c, m in meetings.items() if datetime(2027, 1, 3, tzinfo=UTC) < m.start
            and m.end + timedelta(days=2) < datetime(2027, 12, 31, tzinfo=UTC)}
    assert len(held) >= 11
    for cycle, meeting in held.items():
        agendas = [m for m in _by(messages, "agenda") if m["X-Friendtor-Key"] == f"agenda:k-club:{cycle}"]
        follow = [m for m in _by(messages, "follow-up") if m["X-Friendtor-Key"] == f"follow-up:k-club:{cycle}"]
        assert len(agendas) == len(follow) == 12, cycle
        assert all(parsedate_to_datetime(m["Date"]) < meeting.start for m in agendas)
        assert all(parsedate_to_datetime(m["Date"]) > meeting.end for m in follow)


@pytest.mark.slow  # the module-wide simulated year (about 20 s)
def test_reviews_and_year_end(year):
    """A year holds two six-monthly mission reviews and one year-end prompt, each to every member."""
    _, messages, _ = year
    reviews = Counter(m["X-Friendtor-Key"] for m in _by(messages, "review"))
    assert sorted(reviews) == ["review:k-club:2027-01-13", "review:k-club:2027-07-13"]
    assert set(reviews.values()) == {12}
    year_end = Counter(m["X-Friendtor-Key"] for m in _by(messages, "year-end"))
    assert year_end == {"year-end:k-club:2027": 12}


@pytest.mark.slow  # the module-wide simulated year (about 20 s)
def test_no_duplicate_message_ids_and_dates_are_simulated(year):
    """Every message has its own Message-ID, and its Date is the simulated send time, not today."""
    _, messages, _ = year
    ids = [m["Message-ID"] for m in messages]
    assert len(ids) == len(set(ids)) and len(ids) > 400
    dates = [parsedate_to_datetime(m["Date"]) for m in messages]
    assert min(dates) >= datetime(2027, 1, 1, tzinfo=UTC) and max(dates) <= datetime(2028, 1, 1, tzinfo=UTC)


@pytest.mark.slow  # the module-wide simulated year (about 20 s)
def test_one_recipient_per_message(year):
    """Each message goes to one member, and names no other member's address."""
    config, messages, _ = year
    emails = {m.email for m in config.groups["k-club"].members}
    for m in messages[:60]:
        to = m["To"].addresses
        assert len(to) == 1
        raw = m.as_string()
        assert not (emails - {to[0].addr_spec}) & {e for e in emails if e in raw}


def test_simulation_never_touches_the_real_state(tmp_path):
    """simulate writes only under --out; the config folder's var/ stays as it was."""
    folder = tmp_path / "cfg"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("var"))
    code = main(["simulate", "--config", str(folder), "--from", "2027-01-01", "--to", "2027-01-20",
                 "--step", "1d", "--out", str(tmp_path / "sim")])
    assert code == 0
    assert not (folder / "var").exists()
    assert (tmp_path / "sim" / "state.json").exists()


@pytest.mark.parametrize(("argv", "expected"), [
    (["--from", "2027-13-01", "--to", "2027-02-01"], "--from: '2027-13-01' is not a date"),
    (["--from", "2027-02-01", "--to", "2027-01-01"], "before --from"),
    (["--from", "2027-01-01", "--to", "2027-02-01", "--step", "6 weeks"], "--step: '6 weeks' is not a step"),
    (["--from", "2027-01-01", "--to", "2027-02-01", "--step", "0h"], "is not a step"),
    (["--from", "2020-01-01", "--to", "2027-02-01"], "more than three years"),
], ids=["bad-date", "reversed", "bad-step", "zero-step", "too-long"])
def test_bad_simulate_arguments(capsys, tmp_path, argv, expected):
    """Bad dates and steps exit 2 with one line, and write nothing."""
    code = main(["simulate", "--config", str(EXAMPLE), "--out", str(tmp_path / "sim"), *argv])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and expected in err
    assert not (tmp_path / "sim").exists()


def test_out_folder_that_is_not_a_simulation_is_refused(capsys, tmp_path):
    """--out pointing at a folder with other files in it is refused, not wiped."""
    precious = tmp_path / "docs"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    code = main(["simulate", "--config", str(EXAMPLE), "--from", "2027-01-01", "--to", "2027-01-02",
                 "--out", str(precious)])
    assert code == 2 and "not a friendtor simulation folder" in capsys.readouterr().err
    assert (precious / "thesis.tex").read_text() == "years of work"


def test_the_timeline_shows_each_meeting_and_its_time(tmp_path, capsys):
    """Each meeting scheduled is a timeline row with its cycle and local start and end, in the
    group's zone, before its invites; the summary counts the meetings."""
    folder = tmp_path / "cfg"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("var"))
    assert main(["simulate", "--config", str(folder), "--from", "2026-11-16", "--to", "2026-12-31", "--step", "6h",
                 "--out", str(tmp_path / "sim")]) == 0
    lines = capsys.readouterr().out.splitlines()
    meetings = [line for line in lines if line.split()[3:4] == ["meeting"]]
    assert meetings == [
        "2026-11-16 00:00 UTC  meeting    k-club       2026-11 on Thu 19 Nov 2026 10:00–11:00 America/New_York",
        "2026-11-17 06:00 UTC  meeting    k-club       2026-12 on Thu 10 Dec 2026 10:00–11:00 America/New_York",
        "2026-12-22 06:00 UTC  meeting    k-club       2027-01 on Thu 21 Jan 2027 10:00–11:00 America/New_York",
    ]
    invite = next(i for i, line in enumerate(lines) if "invite:k-club:2026-12" in line)
    assert lines.index(meetings[1]) == invite - 1
    assert lines[-1].startswith("3 meetings scheduled, ")
