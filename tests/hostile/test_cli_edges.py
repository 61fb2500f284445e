"""Every command-line argument at the edge of the calendar (year 1, year 9999, a huge step, an
output path that cannot be written) gets one line and exit 2, never an internal error; dates
and instants take the years config dates take (1900-2199); fuzzed dates, steps and paths
only ever exit 0 or 2."""

from __future__ import annotations

import re
import shutil
import string
import tempfile
import warnings
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.app.store import Store
from scheduler.cli.main import main

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "example"


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """The example config, copied (nothing here may write into the repository)."""
    target = tmp_path_factory.mktemp("edges") / "cfg"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("var"))
    return target


@pytest.fixture(scope="module")
def bare(folder, tmp_path_factory) -> Path:
    """The example without members' calendars: the planner's arithmetic at the ends of the
    years, without walking 170 years of their recurring events (that budget is the calendars')."""
    target = tmp_path_factory.mktemp("bare") / "cfg"
    shutil.copytree(folder, target)
    for path in (target / "groups").glob("*.toml"):
        path.write_text("\n".join(line for line in path.read_text().splitlines()
                                  if not line.startswith("calendar =")) + "\n")
    return target


def run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    """The CLI in this process: exit status, stdout, stderr (argparse's own errors included)."""
    capsys.readouterr()
    # The holidays package warns (on stderr, two lines) for years it has no data for; that is
    # its notice, not friendtor's error line, and pytest's warnings capture is not always on.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Requested Holidays are available only")
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line(code: int, out: str, err: str) -> str:
    assert code == 2, out + err
    assert "Traceback" not in err and "internal error" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


EDGES = [
    pytest.param(["slots", "k-club", "--from", "9999-12-31"], "--from", id="slots-from-9999"),
    pytest.param(["slots", "k-club", "--from", "0001-01-01", "--to", "0001-01-02"], "--from", id="slots-year-1"),
    pytest.param(["slots", "k-club", "--from", "2027-01-01", "--to", "9999-12-31"], "--to", id="slots-to-9999"),
    pytest.param(["simulate", "--from", "0001-01-01", "--to", "0001-01-05"], "--from", id="simulate-year-1"),
    pytest.param(["simulate", "--from", "2027-01-01", "--to", "9999-12-31"], "--to", id="simulate-to-9999"),
    pytest.param(["simulate", "--from", "2027-01-01", "--to", "2027-01-05", "--step", "99999999999d"], "--step",
                 id="simulate-huge-step"),
    pytest.param(["simulate", "--from", "2027-01-01", "--to", "2027-01-05", "--step", "0m"], "--step",
                 id="simulate-zero-step"),
    pytest.param(["simulate", "--from", "2027-01-01", "--to", "2029-12-31", "--step", "1m"], "--step",
                 id="simulate-too-many-ticks"),
    pytest.param(["simulate", "--from", "2027-01-01", "--to", "2027-01-05", "--out", "/proc/x"], "--out",
                 id="simulate-out-proc"),
    pytest.param(["simulate", "--from", "2027-01-01", "--to", "2027-01-05", "--out", "bad\0name"], "--out",
                 id="simulate-out-nul"),
    pytest.param(["preview", "k-club", "agenda", "--now", "9999-12-31T23:59:59Z"], "--now", id="preview-now-9999"),
    pytest.param(["preview", "k-club", "agenda", "--now", "0001-01-01T00:00:00Z"], "--now", id="preview-now-year-1"),
    pytest.param(["preview", "k-club", "agenda", "--now", "2199-12-31T23:00:00-05:00"], "--now",
                 id="preview-now-2200-in-utc"),
    pytest.param(["run", "--dry-run", "--now", "9999-12-31T23:59:59Z"], "--now", id="run-now-9999"),
    pytest.param(["preview", "k-club", "agenda", "--eml", "/proc/x/message.eml"], "--eml", id="preview-eml-proc"),
    pytest.param(["preview", "k-club", "agenda", "--html", "/nonexistent-folder/a.html"], "--html",
                 id="preview-html-no-folder"),
    pytest.param(["preview", "k-club", "agenda", "--eml", "/"], "--eml", id="preview-eml-a-folder"),
    pytest.param(["slots", "k-club", "--heatmap", "/proc/x/map.svg"], "--heatmap", id="slots-heatmap-proc"),
    pytest.param(["attendance", "k-club", "9999-12-31", "--present", "maya.chen@uni-a.example"], "DATE",
                 id="attendance-9999"),
]


@pytest.mark.parametrize("argv, flag", EDGES)
def test_an_argument_at_the_edge_of_the_calendar_is_one_line(folder, capsys, argv, flag):
    """Far dates, huge or zero steps and unwritable outputs: one line naming the flag, exit 2."""
    line = assert_one_line(*run(capsys, [*argv, "--config", str(folder)]))
    assert line.startswith(flag), line


def test_reschedule_to_year_9999_is_one_line(folder, capsys):
    """reschedule --to "9999-12-31 23:59" is refused before any date arithmetic."""
    from datetime import UTC, datetime

    from scheduler.core.meetings import Meeting

    start = datetime(2199, 3, 10, 15, tzinfo=UTC)
    state = folder / "var" / "state.json"
    with Store(state) as store:
        store.save_meeting(Meeting("k-club", "2199-03", "u@x.example", 0, start, start + timedelta(hours=1), start))
        store.commit()
    try:
        for when in ("9999-12-31 23:59", "0001-01-01 00:00"):
            line = assert_one_line(*run(capsys, ["reschedule", "k-club", "--to", when, "--config", str(folder)]))
            assert line.startswith("--to") and "1900 to 2199" in line
    finally:
        shutil.rmtree(folder / "var")


@pytest.mark.parametrize("argv", [
    ["slots", "k-club", "--from", "2199-12-01", "--to", "2199-12-31"],
    ["slots", "k-club", "--from", "1900-01-01", "--to", "1900-01-31"],
    ["preview", "k-club", "agenda", "--now", "2199-12-31T23:59:59Z"],
    ["preview", "k-club", "review", "--now", "1900-01-01T00:00:00Z"],
    ["run", "--dry-run", "--now", "2199-12-31T23:59:59Z"],
    ["run", "--dry-run", "--now", "1900-01-01T00:00:00Z"],
], ids=lambda a: " ".join(a[:1] + a[-2:]))
def test_the_ends_of_the_accepted_years_run(bare, capsys, argv):
    """The first and last accepted years are planned without an overflow (exit 0)."""
    code, out, err = run(capsys, [*argv, "--config", str(bare)])
    assert code == 0 and "internal error" not in err, err


def test_simulate_at_the_end_of_the_accepted_years_runs(bare, capsys, tmp_path):
    """A simulation over the last days of 2199 runs to its end."""
    code, out, err = run(capsys, ["simulate", "--from", "2199-12-29", "--to", "2199-12-31", "--step", "12h",
                                  "--out", str(tmp_path / "sim"), "--config", str(bare)])
    assert code == 0 and "messages" in out, err


# --- fuzz -------------------------------------------------------------------------------------

FUZZ = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def exits_cleanly(code: int, err: str) -> None:
    assert code in (0, 2), err
    assert "Traceback" not in err and "internal error" not in err, err
    if code == 2:
        logged = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (info|warning) ")  # a log line, not the error
        assert len([line for line in err.strip().splitlines() if not logged.match(line)]) == 1, err


dates = st.one_of(st.dates().map(date.isoformat), st.text(string.digits + "-", max_size=12))


@FUZZ
@given(start=dates, days=st.integers(-3, 400))
def test_fuzzed_slots_dates_exit_0_or_2(bare, capsys, start, days):
    """slots --from D --to D+n for any date: exit 0 or 2, never an internal error."""
    argv = ["slots", "k-club", "--from", start, "--config", str(bare)]
    try:
        argv += ["--to", (date.fromisoformat(start) + timedelta(days=days)).isoformat()]
    except (ValueError, OverflowError):
        pass
    code, out, err = run(capsys, argv)
    exits_cleanly(code, err)


instants = st.one_of(
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
    st.text(max_size=30))


@FUZZ
@given(now=instants)
def test_fuzzed_preview_now_exits_0_or_2(bare, capsys, now):
    """preview --now T for any instant or text: exit 0 or 2."""
    code, out, err = run(capsys, ["preview", "k-club", "nudge", "--now", now, "--config", str(bare)])
    exits_cleanly(code, err)


steps = st.one_of(st.builds(lambda n, u: f"{n}{u}", st.integers(0, 10**15), st.sampled_from("mhdsx")),
                  st.text(max_size=12))


@FUZZ
@given(start=dates, days=st.integers(-2, 3), step=steps)
def test_fuzzed_simulate_dates_and_steps_exit_0_or_2(bare, capsys, start, days, step):
    """simulate --from D --to D+n --step S, any D and S: exit 0 or 2, into a scratch folder."""
    end = start
    try:
        end = (date.fromisoformat(start) + timedelta(days=days)).isoformat()
    except (ValueError, OverflowError):
        pass
    with tempfile.TemporaryDirectory() as scratch:
        code, out, err = run(capsys, ["simulate", "--from", start, "--to", end, "--step", step,
                                      "--out", str(Path(scratch) / "sim"), "--config", str(bare)])
    exits_cleanly(code, err)


paths = st.one_of(
    st.text(max_size=40),
    st.builds(lambda head, tail: head + tail,
              st.sampled_from(["/proc/", "/proc/self/", "/nonexistent/", "/", "/dev/", "./", "../", ""]),
              st.text(max_size=20)))


@FUZZ
@given(path=paths, flag=st.sampled_from(["--eml", "--html"]))
def test_fuzzed_output_paths_exit_0_or_2(bare, capsys, monkeypatch, path, flag):
    """preview --eml/--html PATH for any text: exit 0 or 2 (relative paths land in a scratch folder)."""
    with tempfile.TemporaryDirectory() as scratch:
        monkeypatch.chdir(scratch)
        code, out, err = run(capsys, ["preview", "k-club", "agenda", "--now", "2026-12-01T09:00:00Z",
                                      flag, path, "--config", str(bare)])
    exits_cleanly(code, err)


def test_a_wrong_argument_is_one_line(capsys):
    """argparse's own errors (a flag's value missing, an unknown flag) are one line, exit 2."""
    for argv in (["slots", "k-club", "--from", "-x"], ["simulate", "--from"], ["run", "--bogus"]):
        line = assert_one_line(*run(capsys, argv))
        assert line.startswith("friendtor") and "--help" in line
