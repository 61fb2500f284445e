"""Holiday tables kept in the state folder (scheduler/app/holidaykeep.py): the same holidays as
computing them, written 0600 and only into an existing state folder, never by a dry run, and
any garbage in the file means "compute again", never an error."""

from __future__ import annotations

import json
import os
import shutil
import stat
from datetime import date, timedelta
from pathlib import Path

import pytest

from scheduler.app import holidaykeep
from scheduler.cli.main import main
from scheduler.core import availability
from scheduler.core.availability import holiday_name

REPO_ROOT = Path(__file__).resolve().parents[2]
# Fixed-date, moving (Easter, nth weekday) and substitute holidays; a subdivision; a
# southern-hemisphere state; a half-hour-zone country.
REGIONS = ("US", "CA-NL", "GB-SCT", "DE-BY", "AU-SA", "IN")
YEARS = (2026, 2027)


@pytest.fixture(autouse=True)
def empty_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts as a fresh process would: no table computed or kept."""
    monkeypatch.setattr(availability, "_TABLES", {})
    monkeypatch.setattr(availability, "_NEW", set())


def every_day(region: str, year: int) -> dict[date, str | None]:
    d, out = date(year, 1, 1), {}
    while d.year == year:
        out[d] = holiday_name(region, d)
        d += timedelta(days=1)
    return out


def no_computing(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(region: str, year: int):
        raise AssertionError(f"computed {region} {year} although it was kept")

    monkeypatch.setattr(availability, "_compute_holidays", refuse)


def test_kept_tables_name_the_same_holidays_without_computing(tmp_path: Path, monkeypatch) -> None:
    with holidaykeep.kept_holidays(tmp_path):
        computed = {(r, y): every_day(r, y) for r in REGIONS for y in YEARS}
    path = tmp_path / holidaykeep.FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert any(name for days in computed.values() for name in days.values())

    monkeypatch.setattr(availability, "_TABLES", {})  # a new process...
    no_computing(monkeypatch)  # ...that must not compute what is kept
    with holidaykeep.kept_holidays(tmp_path):
        assert {(r, y): every_day(r, y) for r in REGIONS for y in YEARS} == computed


def test_tables_computed_later_are_added_to_those_kept(tmp_path: Path, monkeypatch) -> None:
    with holidaykeep.kept_holidays(tmp_path):
        holiday_name("US", date(2027, 7, 4))
    monkeypatch.setattr(availability, "_TABLES", {})
    with holidaykeep.kept_holidays(tmp_path):
        assert holiday_name("IN", date(2027, 1, 26)) == "Republic Day"
    kept = json.loads((tmp_path / holidaykeep.FILE).read_text())["tables"]
    assert sorted(kept) == ["IN|2027", "US|2027"]


def test_nothing_is_written_without_a_state_folder(tmp_path: Path) -> None:
    with holidaykeep.kept_holidays(tmp_path / "not-yet"):
        assert holiday_name("US", date(2027, 1, 1)) == "New Year's Day"
    assert not (tmp_path / "not-yet").exists()


def test_a_table_kept_by_another_holidays_installation_is_not_used(tmp_path: Path, monkeypatch) -> None:
    with holidaykeep.kept_holidays(tmp_path):
        holiday_name("US", date(2027, 7, 4))
    monkeypatch.setattr(availability, "_TABLES", {})
    monkeypatch.setattr(holidaykeep, "holidays_stamp", lambda: "another version")
    assert holidaykeep.load(tmp_path) == {}


def _valid_record() -> dict:
    return {"format": 1, "stamp": holidaykeep.holidays_stamp(), "tables": {"US|2027": {"2027-07-04": "Independence Day"}}}


def _garbage() -> dict[str, bytes]:
    def record(**changes) -> bytes:
        r = _valid_record()
        r.update(changes)
        return json.dumps(r).encode()

    return {
        "empty": b"",
        "not json": b"\x00\xff{not json",
        "a list": b"[]",
        "another format": record(format=2),
        "no stamp": record(stamp=None),
        "tables a list": record(tables=[]),
        "a key without a year": record(tables={"US": {"2027-07-04": "x"}}),
        "a year not a number": record(tables={"US|20x7": {"2027-07-04": "x"}}),
        "a day not a date": record(tables={"US|2027": {"July 4": "x"}}),
        "a day of another year": record(tables={"US|2027": {"2026-07-04": "x"}}),
        "a name not text": record(tables={"US|2027": {"2027-07-04": 4}}),
        "days a list": record(tables={"US|2027": ["2027-07-04"]}),
        "too many tables": record(tables={f"US|{y}": {} for y in range(1000, 1000 + holidaykeep.MAX_TABLES + 1)}),
        "too big": b" " * (holidaykeep.MAX_BYTES + 1) + json.dumps(_valid_record()).encode(),
    }


@pytest.mark.parametrize("kind", list(_garbage()))
def test_garbage_in_the_file_means_computing_again(tmp_path: Path, kind: str) -> None:
    path = tmp_path / holidaykeep.FILE
    path.write_bytes(_garbage()[kind])
    assert holidaykeep.load(tmp_path) == {}
    with holidaykeep.kept_holidays(tmp_path):
        assert holiday_name("US", date(2027, 7, 4)) == "Independence Day"
    assert holidaykeep._tables(json.loads(path.read_bytes()), holidaykeep.holidays_stamp())  # rewritten, valid


def test_the_valid_record_used_above_is_read(tmp_path: Path) -> None:
    """The garbage cases differ from a record `load` accepts by one thing each."""
    (tmp_path / holidaykeep.FILE).write_text(json.dumps(_valid_record()))
    assert holidaykeep.load(tmp_path) == {("US", 2027): {date(2027, 7, 4): "Independence Day"}}


@pytest.mark.parametrize("planted", ["symlink", "folder", "fifo"])
def test_a_link_folder_or_fifo_at_the_path_is_neither_read_nor_written_through(tmp_path: Path, planted: str) -> None:
    path = tmp_path / holidaykeep.FILE
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(json.dumps(_valid_record()))
    if planted == "symlink":
        path.symlink_to(elsewhere)
    elif planted == "folder":
        path.mkdir()
    else:
        os.mkfifo(path)
    assert holidaykeep.load(tmp_path) == {}  # a FIFO does not hang the reader
    with holidaykeep.kept_holidays(tmp_path):
        holiday_name("IN", date(2027, 1, 26))
    assert json.loads(elsewhere.read_text()) == _valid_record()  # the link's target untouched


def test_slots_keeps_the_tables_and_a_dry_run_writes_none(tmp_path: Path) -> None:
    folder = tmp_path / "example"
    shutil.copytree(REPO_ROOT / "config" / "example", folder, ignore=shutil.ignore_patterns("var"))
    (folder / "var").mkdir(mode=0o700)
    assert main(["run", "--dry-run", "--now", "2027-03-09T13:00:00Z", "--config", str(folder)]) == 0
    assert not (folder / "var" / holidaykeep.FILE).exists()
    assert main(["slots", "k-club", "--from", "2027-03-01", "--to", "2027-03-31", "--config", str(folder)]) == 0
    assert (folder / "var" / holidaykeep.FILE).is_file()
