"""Commands start at once (issue 13, point 2): each command imports what it uses and nothing
else. Checked in a fresh process through `sys.modules` after the command ran, never by timing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = REPO_ROOT / "config" / "example"

# Outside libraries no read-only command on the example needs: it publishes by email and reads
# calendar files; `holidays` is loaded where holidays are looked up (slots), not to check a region.
NEVER = ("googleapiclient", "google", "google_auth_oauthlib", "PIL", "radicale", "caldav")

# Runs main(argv) in a fresh interpreter and prints its exit status and the modules then loaded.
RUN = (
    "import json, sys\n"
    "from scheduler.cli.main import main\n"
    "argv = json.loads(sys.argv[1])\n"
    "try:\n"
    "    rc = main(argv) if argv is not None else 0\n"
    "except SystemExit as exc:\n"
    "    rc = exc.code\n"
    "print(json.dumps([rc, sorted(sys.modules)]))\n")


def modules_after(argv: list[str] | None) -> tuple[int, set[str]]:
    """Exit status of `friendtor ARGV` (None: only the import) and every module it left loaded."""
    out = subprocess.run([sys.executable, "-c", RUN, json.dumps(argv)], capture_output=True, text=True,
                         cwd=REPO_ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    rc, modules = json.loads(out.stdout.strip().splitlines()[-1])
    return rc, set(modules)


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """Which of `names` (packages or modules) were imported."""
    return sorted(n for n in names if any(m == n or m.startswith(n + ".") for m in modules))


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A fresh copy of config/example: no state folder yet."""
    target = tmp_path / "example"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("var"))
    return target


def test_importing_the_cli_loads_no_command() -> None:
    """`import scheduler.cli.main` loads argparse and the parser, not the config models, the
    renderer, the store, the calendar gateways or any outside library."""
    rc, modules = modules_after(None)
    assert loaded(modules, ("pydantic", "email_validator", "jinja2", "tinydb", "icalendar",
                            "recurring_ical_events", "multiprocessing", "integrations", "scheduler.core.config",
                            "scheduler.compose", "scheduler.app") + NEVER) == []


def test_help_loads_no_command() -> None:
    """`friendtor --help` prints the usage without importing any command's module."""
    rc, modules = modules_after(["--help"])
    assert rc == 0
    assert loaded(modules, ("pydantic", "scheduler.cli.reports", "scheduler.cli.run", "scheduler.cli.goals",
                            "scheduler.cli.meetings", "scheduler.cli.signin", "scheduler.cli.wiring")) == []


def test_validate_loads_only_the_config(example: Path) -> None:
    """`validate`, once its template check is kept, loads neither the renderer (Jinja), the
    store (TinyDB), the calendar readers nor a worker pool; the first validate did render."""
    rc, first = modules_after(["validate", "--config", str(example)])
    assert rc == 0 and "jinja2" in first  # the templates were checked once...
    rc, modules = modules_after(["validate", "--config", str(example)])
    assert rc == 0
    assert loaded(modules, ("jinja2", "scheduler.compose", "tinydb", "scheduler.app.store", "icalendar",
                            "recurring_ical_events", "integrations", "multiprocessing", "scheduler.cli.wiring",
                            "scheduler.core.planner", "holidays") + NEVER) == []


def test_slots_loads_no_renderer_and_no_store_before_the_first_run(example: Path) -> None:
    """`slots` reads calendars (icalendar) and looks up holidays, but renders nothing, and opens
    no store when there is none yet."""
    assert modules_after(["validate", "--config", str(example)])[0] == 0
    rc, modules = modules_after(["slots", "k-club", "--config", str(example), "--from", "2027-03-01",
                                 "--to", "2027-03-31"])
    assert rc == 0 and "icalendar" in modules
    assert loaded(modules, ("jinja2", "scheduler.compose", "tinydb", "scheduler.app.store") + NEVER) == []


def test_slots_again_on_unchanged_calendars_loads_no_reader_and_no_holidays(example: Path) -> None:
    """The second `slots` finds every calendar's answer and the holiday tables kept in the state
    folder: it loads neither icalendar nor `holidays`, nor the worker pool or the feed gateway."""
    argv = ["slots", "k-club", "--config", str(example), "--from", "2027-03-01", "--to", "2027-03-31"]
    assert modules_after(["validate", "--config", str(example)])[0] == 0
    rc, first = modules_after(argv)
    assert rc == 0 and "holidays" in first and "icalendar" in first
    rc, modules = modules_after(argv)
    assert rc == 0
    assert loaded(modules, ("icalendar", "recurring_ical_events", "holidays", "integrations.workers",
                            "integrations.feeds", "integrations.http", "multiprocessing", "jinja2",
                            "tinydb") + NEVER) == []


@pytest.mark.parametrize("argv", [["status"], ["goals", "k-club"]], ids=["status", "goals"])
def test_reports_before_the_first_run_load_no_store_or_renderer(example: Path, argv: list[str]) -> None:
    """`status` and `goals` with no state yet say so without loading TinyDB or Jinja."""
    assert modules_after(["validate", "--config", str(example)])[0] == 0
    rc, modules = modules_after([*argv, "--config", str(example)])
    assert rc == 0
    assert loaded(modules, ("jinja2", "tinydb", "icalendar", "integrations", "holidays") + NEVER) == []
